//! DNSSEC as a user meets it: a key from `gtm dnssec keygen`, its DS
//! checked against ldns, gslb serving the example zone signed, and a real
//! validating Unbound, with the DS as its trust anchor, resolving every
//! kind of answer as secure — and a key it does not trust as bogus.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use system_tests::{Daemon, binary, examples_dir, free_port, json, start_gslb, temp_dir};

/// Whether `tool` runs; in CI it must (`.ci/run` installs it).
fn have(tool: &str, package: &str) -> bool {
    if Command::new(tool).arg("-h").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} must be installed in CI (apt-get install {package})"
    );
    eprintln!("SKIPPED: {tool} is not installed (apt-get install {package})");
    false
}

/// Runs `gtm dnssec keygen example.com` in `dir`; returns the key file
/// and the DNSKEY and DS lines it printed.
fn keygen(dir: &Path, algorithm: &str) -> (PathBuf, String, String) {
    let output = Command::new(binary("gtm"))
        .args([
            "--json",
            "dnssec",
            "keygen",
            "example.com",
            "--algorithm",
            algorithm,
            "--dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json::parse(&stdout);
    let field = |name: &str| report[name].str().to_owned();
    (PathBuf::from(field("file")), field("dnskey"), field("ds"))
}

#[test]
fn the_ds_of_a_generated_key_matches_ldns() {
    if !have("ldns-key2ds", "ldnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-ds");
    for algorithm in ["13", "15"] {
        let (key, dnskey, ds) = keygen(&dir, algorithm);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        let key_file = dir.join(format!("dnskey-{algorithm}.key"));
        std::fs::write(&key_file, format!("{dnskey}\n")).unwrap();
        let output = Command::new("ldns-key2ds")
            .args(["-n", "-2"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let theirs: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        let ours: Vec<String> = ds.split_whitespace().map(str::to_ascii_uppercase).collect();
        // ldns writes `example.com. 3600 IN DS tag alg 2 digest`.
        assert_eq!(
            theirs[theirs.len() - 4..],
            ours[ours.len() - 4..],
            "{theirs:?} vs {ours:?}"
        );
    }
}

/// The example topology with its zone signed by `key`.
fn signed_example(dir: &Path, key: &Path) -> PathBuf {
    let example = std::fs::read_to_string(examples_dir().join("three-regions.yaml")).unwrap();
    let signed = example.replacen(
        "    - origin: example.com.\n",
        &format!(
            "    - origin: example.com.\n      dnssec:\n        keys: [\"{}\"]\n",
            key.display()
        ),
        1,
    );
    assert_ne!(signed, example, "the example's zone moved");
    let path = dir.join("signed.yaml");
    std::fs::write(&path, signed).unwrap();
    path
}

/// A validating Unbound on a free port that sends example.com to `gslb`
/// and trusts `ds`.
fn start_unbound(dir: &Path, gslb: SocketAddr, ds: &str) -> (Daemon, u16) {
    let port = free_port();
    let conf = dir.join(format!("unbound-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    username: \"\"
    chroot: \"\"
    directory: \"{dir}\"
    pidfile: \"\"
    use-syslog: no
    logfile: \"\"
    verbosity: 1
    val-log-level: 2
    module-config: \"validator iterator\"
    trust-anchor: \"{ds}\"
stub-zone:
    name: \"example.com.\"
    stub-addr: {ip}@{gslb_port}
",
            dir = dir.display(),
            ip = gslb.ip(),
            gslb_port = gslb.port(),
        ),
    )
    .unwrap();
    let mut command = Command::new("unbound");
    command.arg("-d").arg("-c").arg(&conf);
    let mut daemon = Daemon::spawn(command);
    daemon.wait_for("start of service");
    (daemon, port)
}

/// `dig +dnssec` through the resolver on `port`: the whole output.
fn dig(port: u16, name: &str, rtype: &str) -> String {
    let output = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+dnssec",
            "+tries=1",
            "+time=5",
            name,
            rtype,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn flags(reply: &str) -> &str {
    reply
        .lines()
        .find(|l| l.contains(";; flags:"))
        .unwrap_or_else(|| panic!("no header in {reply}"))
}

#[test]
fn unbound_validates_every_kind_of_signed_answer() {
    if !have("unbound", "unbound") || !have("dig", "bind9-dnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-unbound");
    let (key, _, ds) = keygen(&dir, "13");
    let (_gslb, gslb) = start_gslb(&signed_example(&dir, &key));
    let (_unbound, port) = start_unbound(&dir, gslb, &ds);

    // (name, type, what the answer must hold; empty for a denial)
    let cases = [
        ("static.example.com.", "A", "127.0.0.80"),
        ("www.example.com.", "A", "IN\tA\t127."),
        ("api.example.com.", "A", "CNAME\twww.example.com."),
        ("shop.apps.example.com.", "A", "127.0.0.90"),
        ("example.com.", "MX", "mail.example.com."),
        ("nope.example.com.", "A", ""),
        ("static.example.com.", "TXT", ""),
        ("www.example.com.", "TXT", ""),
        ("x.apps.example.com.", "AAAA", ""),
    ];
    let mut failures = Vec::new();
    for (name, rtype, expected) in cases {
        let reply = dig(port, name, rtype);
        let header = flags(&reply);
        let secure = header
            .split(';')
            .nth(2)
            .unwrap_or("")
            .split_whitespace()
            .any(|f| f == "ad");
        let status_ok = reply.contains("status: NOERROR") || reply.contains("status: NXDOMAIN");
        let data_ok = if expected.is_empty() {
            !reply.contains("ANSWER SECTION") || reply.contains("ANSWER: 0")
        } else {
            reply.contains(expected)
        };
        if !(secure && status_ok && data_ok) {
            failures.push(format!("{name} {rtype}:\n{reply}"));
        }
    }
    assert!(
        failures.is_empty(),
        "not secure or wrong:\n{}",
        failures.join("\n")
    );

    // The same server behind a resolver that trusts another key: bogus.
    let other = temp_dir("dnssec-other");
    let (_, _, other_ds) = keygen(&other, "13");
    let (_untrusting, bogus_port) = start_unbound(&dir, gslb, &other_ds);
    let reply = dig(bogus_port, "static.example.com.", "A");
    assert!(reply.contains("status: SERVFAIL"), "{reply}");
}
