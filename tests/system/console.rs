//! The status page in a real browser: Debian's headless Chromium, driven
//! through `chromedriver` over WebDriver, on the example topology run by
//! `gtm up`. The page shows the regions healthy, follows a real `gtm fail`
//! without a reload, refuses a drain with a wrong token and shows why, and
//! a drain done from it with the right token changes what DNS answers.
//! Screenshots go to `target/screenshots/` (their paths are printed).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use system_tests::{Daemon, free_port, full_topology, http};

use super::gtm::{Scratch, dig, expect, gtm};

/// The admin token the test topology sets (`dns.admin_token`).
const TOKEN: &str = "console-test-token-0123456789abcdef";

/// Longest the page may take to show a change.
const PATIENCE: Duration = Duration::from_secs(45);

/// `program`'s path if it is on PATH.
fn installed(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// The browser and its driver, or a panic saying how to install them: this
/// test must not pass by skipping.
fn browser() -> (PathBuf, PathBuf) {
    match (installed("chromium"), installed("chromedriver")) {
        (Some(chromium), Some(driver)) => (chromium, driver),
        _ => panic!(
            "the status page test needs Debian's headless Chromium and its WebDriver: \
             run `apt-get install -y chromium chromium-driver` (.ci/run does)"
        ),
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshots().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

/// Polls `script` (a JavaScript expression) in the page until it is true;
/// panics naming `what`, with the page's text, after [`PATIENCE`].
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = client
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("evaluating {script}: {e}"));
        if value == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = client
                .execute("return document.body.innerText;", vec![])
                .await
                .map(|v| v.to_string())
                .unwrap_or_default();
            screenshot(
                client,
                &format!("console-timeout-{}", what.replace(' ', "-")),
            )
            .await;
            panic!("timed out waiting until {what}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of the element `css` selects.
async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Types `token` into the page's token field and clicks the drain button
/// of `region`, accepting the confirmation.
async fn drain_from_the_page(client: &Client, region: &str, token: &str) {
    let field = client.find(Locator::Id("token")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(token).await.unwrap();
    client
        .find(Locator::Css(&format!(
            "tr[data-region=\"{region}\"] button.drain"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = client.get_alert_text().await.expect("a confirmation");
    assert!(question.contains(&format!("Drain {region}?")), "{question}");
    client.accept_alert().await.unwrap();
}

/// Starts chromedriver on a free port and waits until it is ready.
fn chromedriver(driver: &Path) -> (Daemon, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = Command::new(driver);
    command.arg(format!("--port={}", addr.port()));
    let daemon = Daemon::spawn(command);
    let deadline = Instant::now() + PATIENCE;
    // Its port accepting is its readiness (its HTTP headers lack the space
    // after the colon that the harness's client expects).
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver on {addr} never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (daemon, addr)
}

/// A Chromium session; `dark` makes the page see `prefers-color-scheme: dark`.
async fn connect(chromium: &Path, driver: SocketAddr, dark: bool) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1800",
    ];
    if dark {
        args.push("--blink-settings=preferredColorScheme=0");
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            // Root in CI containers needs --no-sandbox; /dev/shm is small there.
            "args": args,
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{driver}"))
        .await
        .expect("a Chromium session from chromedriver")
}

#[test]
fn the_status_page_follows_a_failure_and_drains_a_region_with_the_token() {
    let (chromium, driver) = browser();
    let scratch = Scratch::new("console");
    let state = scratch.state();
    let net = system_tests::loopback_net(3);
    let topology = full_topology(net);
    let yaml = topology
        .yaml
        .replacen("dns:\n", &format!("dns:\n  admin_token: \"{TOKEN}\"\n"), 1);
    let file = scratch.write("topology.yaml", &yaml);
    let up = expect(gtm(&state, &["up", file.to_str().unwrap()]), 0);
    let url = up
        .lines()
        .find_map(|line| line.trim().strip_prefix("console"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("gtm up prints no console URL:\n{up}"))
        .to_owned();
    assert!(url.starts_with("http://") && url.ends_with('/'), "{url}");

    let (_driver, driver_addr) = chromedriver(&driver);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = connect(&chromium, driver_addr, false).await;
        client.goto(&url).await.unwrap();
        // Set once: still there later proves the page was never reloaded.
        client
            .execute("window.loadedOnce = true; return true;", vec![])
            .await
            .unwrap();

        // Three healthy regions, each answered on its own continent.
        for region in ["us-east", "eu-west", "ap-south"] {
            until(
                &client,
                &format!("{region} is in service"),
                &format!("document.querySelector('tr[data-region=\"{region}\"][data-state=\"in\"]')"),
            )
            .await;
        }
        until(
            &client,
            "North America is answered by us-east",
            "document.querySelector('tr[data-continent=\"NA\"] .answer-region')?.textContent === 'us-east'",
        )
        .await;
        until(
            &client,
            "every edge node answered and rates are shown",
            "document.querySelectorAll('#edges tr[data-state=\"reachable\"]').length === 9 \
             && !document.querySelector('#edges tr[data-state=\"unreachable\"]') \
             && [...document.querySelectorAll('#edges td.num')].some(td => /^\\d+\\.\\d$/.test(td.textContent))",
        )
        .await;
        // Requests through us-east's VIP while the page samples: each
        // backend server's p50/p99 over the interval is shown (bounded load:
        // at most 300 requests, 20 ms apart).
        let vip = std::net::SocketAddr::new(format!("127.{net}.1.1").parse().unwrap(), topology.http_port);
        let load = std::thread::spawn(move || {
            for _ in 0..300 {
                let _ = http::get(vip, "/");
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        until(
            &client,
            "a backend server's p99 is shown",
            "[...document.querySelectorAll('#servers td.num')].some(td => td.textContent.startsWith('≤ '))",
        )
        .await;
        load.join().unwrap();
        assert!(
            text(&client, "#certs tbody").await.contains("example.com"),
            "the certificate's expiry is shown"
        );
        assert_eq!(text(&client, "tr[data-region=\"us-east\"] .state").await, "in service");
        screenshot(&client, "console-healthy").await;

        // Keyboard focus on a button survives the page's updates.
        client
            .execute(
                "document.querySelector('tr[data-region=\"ap-south\"] button.recover').focus(); \
                 window.focusedAt = document.getElementById('summary').textContent; return true;",
                vec![],
            )
            .await
            .unwrap();
        // The summary line carries the time of the last redraw.
        until(
            &client,
            "the page has redrawn since",
            "document.getElementById('summary').textContent !== window.focusedAt",
        )
        .await;
        let focused = client
            .execute(
                "return document.activeElement.getAttribute('aria-label');",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(focused, serde_json::json!("Recover ap-south"), "focus was lost");

        // A real failure: us-east's L4 tier stops; the page follows.
        expect(gtm(&state, &["fail", "us-east"]), 0);
        until(
            &client,
            "us-east is out of service",
            "document.querySelector('tr[data-region=\"us-east\"][data-state=\"out\"]')",
        )
        .await;
        until(
            &client,
            "North America is answered by another region",
            "(t => t && t !== 'us-east' && t !== 'no answer')(document.querySelector('tr[data-continent=\"NA\"] .answer-region')?.textContent)",
        )
        .await;
        until(
            &client,
            "us-east's stopped L4 node shows unreachable",
            "document.querySelector('#edges tr[data-node=\"us-east-l4\"][data-state=\"unreachable\"]')",
        )
        .await;
        let changes = text(&client, "#changes").await;
        assert!(changes.contains("us-east out of service"), "{changes}");
        screenshot(&client, "console-us-east-failed").await;

        // A wrong token: refused, shown, and DNS unchanged.
        let eu = dig(&state, "81.2.69.160", "A");
        assert_eq!(eu, [format!("127.{net}.2.1")], "EU clients get eu-west");
        drain_from_the_page(&client, "eu-west", "wrong-token-0123456789abcdef").await;
        until(
            &client,
            "the refusal is shown",
            "document.getElementById('action-result').textContent.includes('refused (401)')",
        )
        .await;
        screenshot(&client, "console-wrong-token").await;
        assert_eq!(dig(&state, "81.2.69.160", "A"), eu, "a refused drain changed DNS");
        let logs = expect(gtm(&state, &["logs", "ns1", "-n", "1000"]), 0);
        assert!(logs.contains("admin request refused"), "the refusal is logged:\n{logs}");

        // The right token: the drain takes effect in DNS and on the page.
        drain_from_the_page(&client, "eu-west", TOKEN).await;
        until(
            &client,
            "the drain is acknowledged",
            "document.getElementById('action-result').textContent.startsWith('drained eu-west')",
        )
        .await;
        let deadline = Instant::now() + PATIENCE;
        while dig(&state, "81.2.69.160", "A") == eu {
            assert!(Instant::now() < deadline, "EU clients still get eu-west after the drain");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until(
            &client,
            "eu-west shows out of service, drained by the operator",
            "document.querySelector('tr[data-region=\"eu-west\"][data-state=\"out\"] .reason')?.textContent.includes('operator drain')",
        )
        .await;
        screenshot(&client, "console-eu-west-drained").await;
        // The override is kept with this deployment (gtm's state directory),
        // not in a file every deployment of a node named ns1 would share.
        let kept = std::fs::read_to_string(state.join("gslb/ns1.json")).unwrap_or_default();
        assert!(kept.contains("eu-west"), "the drain is not in the deployment's gslb state: {kept}");

        let source = client.source().await.unwrap();
        assert!(!source.contains(TOKEN), "the page's source shows the token");
        let stored = client
            .execute(
                "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie;",
                vec![],
            )
            .await
            .unwrap();
        assert!(!stored.to_string().contains(TOKEN), "the token was stored: {stored}");
        let reloaded = client.execute("return window.loadedOnce === true;", vec![]).await.unwrap();
        assert_eq!(reloaded, serde_json::Value::Bool(true), "the page reloaded");

        // At phone width.
        client.set_window_size(390, 1600).await.unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                vec![],
            )
            .await
            .unwrap();
        screenshot(&client, "console-phone").await;
        assert_eq!(overflow, serde_json::Value::Bool(true), "the page is wider than a phone");
        client.close().await.unwrap();

        // In a dark scheme.
        let dark = connect(&chromium, driver_addr, true).await;
        dark.goto(&url).await.unwrap();
        until(
            &dark,
            "the dark page is drawn",
            "matchMedia('(prefers-color-scheme: dark)').matches \
             && document.querySelector('tr[data-region=\"ap-south\"][data-state=\"in\"]')",
        )
        .await;
        let background = dark
            .execute("return getComputedStyle(document.body).backgroundColor;", vec![])
            .await
            .unwrap();
        assert_eq!(background, serde_json::json!("rgb(13, 17, 23)"), "not dark");
        screenshot(&dark, "console-dark").await;
        dark.close().await.unwrap();
    });
    expect(gtm(&state, &["down"]), 0);
}
