//! `gtm render` as an operator runs it, and its output checked by the
//! tools that will run it: `systemd-analyze verify` on the units,
//! `keepalived -t` and `bird -p` on the HA configuration, and `gtmctl`
//! starting, reloading and stopping real `edge` and `gslb` processes.
//! A check whose tool is not installed is skipped with a message (CI
//! installs them all).

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use system_tests::{binary, examples_dir, free_port, http, output_within, temp_dir};

use crate::gtm::{describe, expect};

/// Longest any one command may run in these tests.
const LIMIT: Duration = Duration::from_secs(60);

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(temp_dir(&format!("render-{name}")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A gtmctl test that failed half-way leaves no daemon behind.
        if let Ok(hosts) = std::fs::read_dir(self.path("out")) {
            for host in hosts.flatten() {
                let gtmctl = host.path().join("gtmctl");
                if gtmctl.exists() {
                    let _ = run(gtmctl, &["stop"]);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command.args(args).env("NO_COLOR", "1");
    output_within(command, LIMIT)
}

fn render(topology: &Path, out: &Path) -> Output {
    run(
        binary("gtm"),
        &["render", topology.to_str().unwrap(), out.to_str().unwrap()],
    )
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The multi-host example, copied with its certificates into `scratch`
/// with every host's `init: process` replaced by `hosts`.
fn example_variant(scratch: &Scratch, hosts: &str) -> PathBuf {
    let text = std::fs::read_to_string(examples_dir().join("multi-host.yaml")).unwrap();
    let certs = scratch.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for file in ["example.com.pem", "example.com.key", "peer.key"] {
        std::fs::copy(examples_dir().join("certs").join(file), certs.join(file)).unwrap();
    }
    let path = scratch.path("multi-host.yaml");
    std::fs::write(&path, text.replace("init: process", hosts)).unwrap();
    path
}

/// `dir/bin/edge` and `dir/bin/gslb` as executables that do nothing (the
/// checks only need them to exist).
fn placeholder_binaries(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for name in ["edge", "gslb"] {
        let path = dir.join("bin").join(name);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn render_writes_each_hosts_bundle_with_its_modes_and_a_readme() {
    let scratch = Scratch::new("example");
    let out = scratch.path("out");
    let example = examples_dir().join("multi-host.yaml");
    let stdout = expect(render(&example, &out), 0);
    assert!(stdout.contains("rendered 21 host bundles"), "{stdout}");
    assert!(
        stdout.contains("euw-l4a (process, /var/lib/gtm): gtm-l4-eu-west-l4a, gtm-bird, gtm-announce-eu-west-l4a"),
        "{stdout}"
    );
    let l7 = out.join("use-l7a");
    assert_eq!(mode(&l7.join("gtmctl")), 0o755);
    assert_eq!(mode(&l7.join("certs/example.com.key")), 0o600);
    assert_eq!(mode(&l7.join("topology.yaml")), 0o644);
    assert_eq!(
        std::fs::read(l7.join("topology.yaml")).unwrap(),
        std::fs::read(&example).unwrap()
    );
    let readme = std::fs::read_to_string(out.join("euw-l4a/README")).unwrap();
    let order: Vec<usize> = [
        "gtm-l4-eu-west-l4a ",
        "gtm-bird ",
        "gtm-announce-eu-west-l4a ",
    ]
    .iter()
    .map(|s| readme.find(s).unwrap_or_else(|| panic!("{s} in\n{readme}")))
    .collect();
    assert!(order.is_sorted(), "start order in\n{readme}");
    assert!(readme.contains("/var/lib/gtm/gtmctl start"), "{readme}");

    // Again into the same directory: a fresh rendering replaces the old.
    std::fs::write(out.join("use-l7a/stale"), "").unwrap();
    let json = expect(
        run(
            binary("gtm"),
            &[
                "render",
                example.to_str().unwrap(),
                out.to_str().unwrap(),
                "--json",
            ],
        ),
        0,
    );
    assert!(!out.join("use-l7a/stale").exists());
    assert!(json.contains("\"host\": \"use-ns\""), "{json}");
    assert!(json.contains("\"stage\": \"ha\""), "{json}");

    // A directory gtm did not render is left alone.
    std::fs::remove_file(out.join("use-ns/README")).unwrap();
    let refused = render(&example, &out);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a bundle gtm rendered"));
}

#[test]
fn render_refuses_a_topology_without_hosts() {
    let scratch = Scratch::new("no-hosts");
    let output = render(
        &examples_dir().join("three-regions.yaml"),
        &scratch.path("out"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no `hosts:` section") && stderr.contains("gtm up"),
        "{stderr}"
    );
    assert!(!scratch.path("out").exists());
}

#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    let missing: Vec<&str> = ["systemd-analyze", "keepalived", "bird"]
        .into_iter()
        .filter(|tool| !installed(tool))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {} not installed", missing.join(", "));
        return;
    }
    let scratch = Scratch::new("systemd");
    // verify checks that every ExecStart binary exists: the hosts' dir is
    // a scratch directory with stand-ins for edge and gslb (keepalived
    // and bird come from PATH).
    let dir = scratch.path("host");
    placeholder_binaries(&dir);
    let topology = example_variant(
        &scratch,
        &format!("init: systemd, dir: \"{}\"", dir.display()),
    );
    let out = scratch.path("out");
    expect(render(&topology, &out), 0);
    let mut units = Vec::new();
    for host in std::fs::read_dir(&out).unwrap().flatten() {
        for unit in std::fs::read_dir(host.path().join("units"))
            .unwrap()
            .flatten()
        {
            units.push(unit.path().display().to_string());
        }
    }
    assert_eq!(units.len(), 21 + 4 + 2 * 2, "a unit per service");
    let mut args = vec!["verify"];
    args.extend(units.iter().map(String::as_str));
    let output = run("systemd-analyze", &args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // Directives systemd does not understand are only warnings.
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "{}",
        describe(&output)
    );
}

#[test]
fn rendered_keepalived_and_bird_configurations_pass_their_own_checks() {
    if !installed("keepalived") || !installed("bird") {
        eprintln!("skipped: keepalived or bird not installed");
        return;
    }
    if !nix_is_root() {
        eprintln!("skipped: keepalived -t checks the track script as root");
        return;
    }
    // keepalived wants the interface to exist, and not to be loopback.
    let Some(interface) = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name != "lo")
    else {
        eprintln!("skipped: no network interface but lo for keepalived");
        return;
    };
    let scratch = Scratch::new("ha");
    let dir = scratch.path("host");
    placeholder_binaries(&dir);
    let topology = example_variant(
        &scratch,
        &format!(
            "init: process, interface: {interface}, dir: \"{}\"",
            dir.display()
        ),
    );
    // One region with an IPv6 VIP too: keepalived's rule for two families.
    let text = std::fs::read_to_string(&topology).unwrap().replacen(
        "vip: { ipv4: 203.0.113.1,",
        "vip: { ipv4: 203.0.113.1, ipv6: \"2001:db8:f::1\",",
        1,
    );
    std::fs::write(&topology, text).unwrap();
    let out = scratch.path("out");
    expect(render(&topology, &out), 0);
    for host in ["use-l4a", "use-l4b", "aps-l4a"] {
        let conf = out.join(host).join("keepalived.conf");
        assert!(
            std::fs::read_to_string(&conf)
                .unwrap()
                .contains("virtual_ipaddress")
        );
        let output = run("keepalived", &["-t", "-f", conf.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{host}: {}",
            describe(&output)
        );
    }
    for host in ["euw-l4a", "euw-l4b"] {
        let conf = out.join(host).join("bird.conf");
        let output = run("bird", &["-p", "-c", conf.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{host}: {}",
            describe(&output)
        );
    }
}

fn nix_is_root() -> bool {
    run("id", &["-u"]).stdout == b"0\n"
}

/// One host running two backends and a name server on loopback, from a
/// `gtmctl` in `dir`.
fn process_topology(dir: &Path, web1: u16, web2: u16, dns: u16, admin: u16) -> String {
    format!(
        r#"hosts:
  h1: {{ addresses: [127.0.0.1], init: process, dir: "{dir}" }}
dns:
  nodes:
    - {{ name: ns1, host: h1, listen: ["127.0.0.1:{dns}"], admin: "127.0.0.1:{admin}" }}
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      records:
        - {{ name: "@", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
      geo:
        - {{ name: www, regions: [r1], ttl: 30s }}
regions:
  r1:
    location: {{ lat: 39.04, lon: -77.49 }}
    vip: {{ ipv4: 127.0.1.1 }}
    backends:
      - {{ name: web1, host: h1, listen: "127.0.0.1:{web1}" }}
      - {{ name: web2, host: h1, listen: "127.0.0.1:{web2}" }}
"#,
        dir = dir.display()
    )
}

/// `service`'s pid from `gtmctl status`, if running.
fn pid(status: &str, service: &str) -> Option<u32> {
    status.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(service) && words.next() == Some("running"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

fn healthy(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    http::get(addr, "/healthz").is_ok_and(|r| r.status == 200)
}

#[test]
fn gtmctl_starts_reloads_and_stops_a_process_hosts_services() {
    let scratch = Scratch::new("gtmctl");
    let out = scratch.path("out");
    // The bundle is rendered straight into the host's dir.
    let dir = out.join("h1");
    let (web1, web2, dns, admin) = (free_port(), free_port(), free_port(), free_port());
    let topology = scratch.path("topology.yaml");
    std::fs::write(&topology, process_topology(&dir, web1, web2, dns, admin)).unwrap();
    expect(render(&topology, &out), 0);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for name in ["edge", "gslb"] {
        std::os::unix::fs::symlink(binary(name), dir.join("bin").join(name)).unwrap();
    }
    std::fs::write(dir.join("env"), "GTM_ADMIN_TOKEN=render-test-token\n").unwrap();
    let gtmctl = dir.join("gtmctl");

    let started = expect(run(&gtmctl, &["start"]), 0);
    for service in ["gtm-backend-web1", "gtm-backend-web2", "gtm-gslb-ns1"] {
        assert!(started.contains(&format!("{service} started")), "{started}");
    }
    let status = expect(run(&gtmctl, &["status"]), 0);
    let web1_pid = pid(&status, "gtm-backend-web1").expect("web1 runs");
    let gslb_pid = pid(&status, "gtm-gslb-ns1").expect("gslb runs");
    assert!(healthy(web1) && healthy(web2), "the backends answer");
    let environ = std::fs::read(format!("/proc/{web1_pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"GTM_ADMIN_TOKEN=render-test-token"),
        "env is sourced"
    );
    assert!(dir.join("state").is_dir(), "gslb's state directory");
    // A running service is left alone.
    assert_eq!(expect(run(&gtmctl, &["start"]), 0), "");

    // The backend has no reload: it restarts. gslb takes SIGHUP in place.
    let reloaded = expect(run(&gtmctl, &["reload"]), 0);
    assert!(reloaded.contains("gtm-gslb-ns1 reloaded"), "{reloaded}");
    let status = expect(run(&gtmctl, &["status"]), 0);
    assert_ne!(
        pid(&status, "gtm-backend-web1"),
        Some(web1_pid),
        "restarted"
    );
    assert_eq!(
        pid(&status, "gtm-gslb-ns1"),
        Some(gslb_pid),
        "reloaded in place"
    );
    assert!(healthy(web1));
    let logs = expect(run(&gtmctl, &["logs", "gtm-gslb-ns1", "200"]), 0);
    assert!(logs.contains("SIGHUP"), "{logs}");

    let stopped = expect(run(&gtmctl, &["stop"]), 0);
    let order: Vec<usize> = [
        "gtm-gslb-ns1 stopped",
        "gtm-backend-web2 stopped",
        "gtm-backend-web1 stopped",
    ]
    .iter()
    .map(|s| {
        stopped
            .find(s)
            .unwrap_or_else(|| panic!("{s} in\n{stopped}"))
    })
    .collect();
    assert!(order.is_sorted(), "reverse order:\n{stopped}");
    let status = expect(run(&gtmctl, &["status"]), 1);
    assert!(status.contains("gtm-backend-web1 stopped"), "{status}");
    assert!(!healthy(web1));

    // A service that cannot start (its port is taken) fails `start` with
    // the end of its log.
    let _taken = TcpListener::bind(("127.0.0.1", web2)).unwrap();
    let failed = run(&gtmctl, &["start", "gtm-backend-web2", "gtm-backend-web1"]);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("gtm-backend-web2 on h1 exited at once"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&web2.to_string()),
        "the log names the port: {stderr}"
    );
    let status = expect(run(&gtmctl, &["status"]), 1);
    assert!(pid(&status, "gtm-backend-web1").is_some(), "{status}");
    assert!(status.contains("gtm-backend-web2 stopped"), "{status}");
    let unknown = run(&gtmctl, &["stop", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", describe(&unknown));
    expect(run(&gtmctl, &["stop"]), 0);
}
