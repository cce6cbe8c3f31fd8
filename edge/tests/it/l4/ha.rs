//! VIP high availability, the L4 node's side: listening on a VIP the host
//! does not hold (freebind), `GET /readyz`, and the real `edge check` and
//! `edge announce` against real `edge l4` processes — `announce` driving a
//! real BIRD 2 (as root, with `bird2` installed: CI is both).
//!
//! The VIP is 192.0.2.77 (TEST-NET-1), which is on no interface here:
//! the node binds it, and nothing is ever sent to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{
    FAST_HEALTH, FakeL7, Harness, L4_NAME, Ports, Session, free_port, http_get, l7_ip, l7_name,
    temp_file, topology_yaml,
};

/// A VIP on no interface of this machine.
const FOREIGN_VIP: &str = "192.0.2.77";

/// How long a state may take to reach BIRD, and `check` to start failing.
const BOUND: Duration = Duration::from_secs(5);

/// An `edge` child process, killed (SIGKILL) when dropped.
struct Process(Child);

impl Process {
    fn spawn(args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_edge"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("edge runs");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then the exit code (bounded).
    fn terminate(&mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let exited = poll_within_bound(
            "exit after SIGTERM",
            || self.0.try_wait().expect("wait"),
            Option::is_some,
        );
        exited.and_then(|status| status.code())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `look` every 20 ms until `done` holds for what it saw, and
/// returns that; fails, saying `what` and the last sight, after [`BOUND`].
fn poll_within_bound<T: std::fmt::Debug>(
    what: &str,
    mut look: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        let seen = look();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {seen:?} after {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One healthy fake L7 node and the topology of an L4 node on the foreign
/// VIP with its admin API at `admin`, written to a file.
async fn region(admin: SocketAddr) -> (FakeL7, PathBuf) {
    for _ in 0..20 {
        let ports = Ports {
            http: free_port(),
            https: free_port(),
            l7_admin: free_port(),
        };
        let Ok(fake) = FakeL7::start(&l7_name(0), l7_ip(0), &ports.all()).await else {
            continue;
        };
        let yaml = topology_yaml(ports, &[(&l7_name(0), l7_ip(0))], FAST_HEALTH);
        let yaml = replace_once(&yaml, "ipv4: 127.0.0.1,", &format!("ipv4: {FOREIGN_VIP},"));
        let yaml = replace_once(
            &yaml,
            "admin: \"127.0.0.1:9\"",
            &format!("admin: \"{admin}\""),
        );
        let path = temp_file("ha.yaml");
        std::fs::write(&path, yaml).unwrap();
        return (fake, path);
    }
    panic!("no free ports for the fake L7 node");
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} in the test topology"
    );
    text.replace(from, to)
}

fn start_l4(config: &Path) -> Process {
    Process::spawn(&[
        "l4",
        "--config",
        config.to_str().unwrap(),
        "--node",
        L4_NAME,
    ])
}

/// Polls `/readyz` until it answers `status` (bounded); returns the body.
async fn wait_readyz(admin: SocketAddr, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(admin).await {
            drop(stream);
            let (got, body) = http_get(admin, "/readyz").await;
            if got == status {
                return body;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz at {admin} did not answer {status} within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_l4_node_on_a_vip_this_host_does_not_hold_starts_and_is_ready() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_l7, config) = region(admin).await;
    let _node = start_l4(&config);
    let body = wait_readyz(admin, 200).await;
    assert_eq!(body, "ready: 1 of 1 L7 nodes healthy in the table\n");
    let (_, status) = http_get(admin, "/v1/status").await;
    assert!(
        status.contains(&format!("\"{FOREIGN_VIP}:")),
        "the foreign VIP among the listeners: {status}"
    );
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn readyz_is_503_without_a_healthy_l7_node_and_while_draining() {
    let h = Harness::start(1, FAST_HEALTH).await;
    assert_eq!(
        http_get(h.admin, "/readyz").await,
        (
            200,
            "ready: 1 of 1 L7 nodes healthy in the table\n".to_owned()
        )
    );
    h.l7[0].set_healthy(false);
    h.wait_health(&l7_name(0), "down").await;
    assert_eq!(
        http_get(h.admin, "/readyz").await,
        (
            503,
            "not ready: no L7 node is healthy (0 of 1 in the table)\n".to_owned()
        )
    );
    h.l7[0].set_healthy(true);
    h.wait_health(&l7_name(0), "up").await;
    // An open connection keeps the drain (and the admin API) going.
    let session = Session::open(h.http, "ECHO").await.unwrap();
    h.shutdown.cancel();
    let (status, body) = http_get(h.admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.starts_with("not ready: draining"), "{body}");
    // Liveness is another question: the process is up.
    assert_eq!(http_get(h.admin, "/healthz").await.0, 200);
    session.finish().await;
    h.stop().await;
}

/// Runs `edge check` to completion: exit code, stderr, how long it took.
fn check(admin: SocketAddr) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(["check", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn check_passes_on_a_ready_node_and_fails_fast_once_it_is_killed() {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (l7, config) = region(admin).await;
    let mut node = start_l4(&config);
    wait_readyz(admin, 200).await;

    let (code, stderr, took) = tokio::task::spawn_blocking(move || check(admin))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        took < Duration::from_secs(1),
        "one run fits keepalived's 1 s interval: {took:?}"
    );

    // Not ready (its only L7 node failing): exit 1, saying why.
    l7.set_healthy(false);
    wait_readyz(admin, 503).await;
    let (code, stderr, _) = tokio::task::spawn_blocking(move || check(admin))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no L7 node is healthy"), "{stderr}");
    l7.set_healthy(true);
    wait_readyz(admin, 200).await;

    // Killed in the middle of a run: the run fails about one poll later,
    // well inside its 800 ms window.
    let running = std::thread::spawn(move || check(admin));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let killed = Instant::now();
    node.kill();
    let (code, stderr, _) = running.join().unwrap();
    let detected = killed.elapsed();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(
        detected < Duration::from_millis(400),
        "failure noticed after {detected:?}"
    );
    let _ = std::fs::remove_file(config);
}

/// A stand-in admin API on 127.0.0.1: answers `/readyz` 200, but the
/// first `stalls` connections only after `delay`. Returns its address.
fn slow_admin(stalls: usize, delay: Duration) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                if n < stalls {
                    std::thread::sleep(delay);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nready\n",
                );
            });
        }
    });
    admin
}

#[tokio::test]
async fn check_keeps_the_vip_through_a_late_answer_but_not_through_a_hang() {
    // A busy node answering one poll late (the poll times out at 100 ms)
    // keeps the VIP: giving it up would reset every connection.
    let busy = slow_admin(2, Duration::from_millis(150));
    let (code, stderr, _) = tokio::task::spawn_blocking(move || check(busy))
        .await
        .unwrap();
    assert_eq!(
        code,
        Some(0),
        "two late answers in a row fail nothing: {stderr}"
    );

    // A hung node (accepts, never answers) fails at the third silent poll.
    let hung = slow_admin(usize::MAX, Duration::from_secs(30));
    let (code, stderr, took) = tokio::task::spawn_blocking(move || check(hung))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("3 polls in a row unanswered"), "{stderr}");
    assert!(took < Duration::from_secs(1), "within the run: {took:?}");
}

/// A real BIRD 2 with the VIP's static protocol `disabled`, its control
/// socket in a fresh directory; killed and removed when dropped.
struct Bird {
    dir: PathBuf,
    child: Child,
}

impl Bird {
    /// `None` (after saying why) when BIRD cannot run here: it needs root
    /// and the `bird2` package. CI is root and installs it.
    fn start() -> Option<Self> {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let installed = ["bird", "birdc"].iter().all(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        });
        if !is_root || !installed {
            eprintln!(
                "SKIPPED: edge announce against a real BIRD needs root and the bird2 package \
                 (root: {is_root}, bird and birdc on PATH: {installed}); .ci/run installs it"
            );
            return None;
        }
        let dir = temp_file("bird");
        std::fs::create_dir(&dir).unwrap();
        let conf = dir.join("bird.conf");
        std::fs::write(
            &conf,
            format!(
                "router id 192.0.2.1;\nprotocol device {{}}\n\
                 protocol static vip {{ ipv4; disabled; route {FOREIGN_VIP}/32 blackhole; }}\n"
            ),
        )
        .unwrap();
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bird runs");
        let bird = Self { dir, child };
        bird.wait_for_vip("down");
        Some(bird)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    /// `up` or `down`: the state column of `show protocols vip`, if BIRD
    /// answers.
    fn vip_state(&self) -> Option<String> {
        let output = Command::new("birdc")
            .arg("-s")
            .arg(self.socket())
            .args(["show", "protocols", "vip"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let row = text.lines().find(|l| l.starts_with("vip "))?;
        row.split_whitespace().nth(3).map(str::to_owned)
    }

    /// Polls (bounded) until the protocol is `state`.
    fn wait_for_vip(&self, state: &str) {
        poll_within_bound(
            &format!("BIRD's protocol vip becoming {state:?}"),
            || self.vip_state(),
            |now| now.as_deref() == Some(state),
        );
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn announce_switches_birds_vip_with_the_nodes_readiness_and_withdraws_on_sigterm() {
    let Some(bird) = Bird::start() else {
        return;
    };
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (_l7, config) = region(admin).await;
    let mut node = start_l4(&config);
    let socket = bird.socket();
    let mut announcer = Process::spawn(&[
        "announce",
        "--admin",
        &admin.to_string(),
        "--bird-socket",
        socket.to_str().unwrap(),
    ]);
    let bird = tokio::task::spawn_blocking(move || {
        bird.wait_for_vip("up");
        bird
    })
    .await
    .unwrap();

    // The node dies: the VIP is withdrawn.
    node.kill();
    let bird = tokio::task::spawn_blocking(move || {
        bird.wait_for_vip("down");
        bird
    })
    .await
    .unwrap();

    // A new node on the same admin address: announced again.
    let _node = start_l4(&config);
    let bird = tokio::task::spawn_blocking(move || {
        bird.wait_for_vip("up");
        bird
    })
    .await
    .unwrap();

    // Stopping the announcer takes the node out of ECMP.
    assert_eq!(announcer.terminate(), Some(0));
    assert_eq!(bird.vip_state().as_deref(), Some("down"));
    let _ = std::fs::remove_file(config);
}
