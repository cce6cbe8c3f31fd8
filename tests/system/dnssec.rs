//! DNSSEC as a user meets it: a key from `gtm dnssec keygen`, its DS
//! checked against ldns, gslb serving the example zone signed, and a real
//! validating Unbound, with the DS as its trust anchor, resolving every
//! kind of answer as secure — and a key it does not trust as bogus; signed
//! and unsigned children below delegations; a pre-publish key rollover
//! driven by reloads; delv's validation; the exported signed zone through
//! ldns-verify-zone; and geo answers with ECS through Unbound's
//! subnetcache, one upstream query per returned scope.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use system_tests::{
    Daemon, Gslb, binary, examples_dir, free_port, healthy_region, http, json, start_gslb, temp_dir,
};

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
    keygen_for(dir, "example.com", algorithm)
}

/// Runs `gtm dnssec keygen ZONE` in `dir`, as [`keygen`].
fn keygen_for(dir: &Path, zone: &str, algorithm: &str) -> (PathBuf, String, String) {
    keygen_with(dir, zone, algorithm, &[])
}

/// Runs `gtm dnssec keygen ZONE` with `extra` arguments (`--ksk`, `--zsk`)
/// in `dir`, as [`keygen`]; the DS is empty for a ZSK, which has none.
fn keygen_with(
    dir: &Path,
    zone: &str,
    algorithm: &str,
    extra: &[&str],
) -> (PathBuf, String, String) {
    let output = Command::new(binary("gtm"))
        .args(["--json", "dnssec", "keygen", zone, "--algorithm", algorithm])
        .args(extra)
        .arg("--dir")
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
    let field = |name: &str| match &report[name] {
        json::Value::Str(text) => text.clone(),
        _ => String::new(),
    };
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
    signed_example_with(dir, key, "", "signed.yaml")
}

/// As [`signed_example`], with `records` (YAML lines) added to the zone,
/// written to `file` in `dir`.
fn signed_example_with(dir: &Path, key: &Path, records: &str, file: &str) -> PathBuf {
    example_signed_as(dir, &dnssec_block(&[key], &[]), records, file)
}

/// The lines of a `dnssec:` block signing with `keys` and publishing
/// `published` as well.
fn dnssec_block(keys: &[&Path], published: &[&Path]) -> String {
    let list = |files: &[&Path]| {
        files
            .iter()
            .map(|f| format!("\"{}\"", f.display()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "        keys: [{}]\n        published: [{}]\n",
        list(keys),
        list(published)
    )
}

/// The example topology with `dnssec` (the block's lines) and `records`
/// added to its zone, written to `file` in `dir`.
fn example_signed_as(dir: &Path, dnssec: &str, records: &str, file: &str) -> PathBuf {
    let example = std::fs::read_to_string(examples_dir().join("three-regions.yaml")).unwrap();
    let example = example.replacen("      records:\n", &format!("      records:\n{records}"), 1);
    let signed = example.replacen(
        "    - origin: example.com.\n",
        &format!("    - origin: example.com.\n      dnssec:\n{dnssec}"),
        1,
    );
    assert_ne!(signed, example, "the example's zone moved");
    let path = dir.join(file);
    std::fs::write(&path, signed).unwrap();
    path
}

/// A validating Unbound on a free port that sends example.com to `gslb`
/// and trusts `ds`.
fn start_unbound(dir: &Path, gslb: SocketAddr, ds: &str) -> (Unbound, u16) {
    let unbound = Unbound::start(dir, &[("example.com.", gslb)], &[ds], "");
    let port = unbound.port;
    (unbound, port)
}

/// A validating Unbound on a free port, with a control port for
/// `unbound-control`.
struct Unbound {
    _daemon: Daemon,
    port: u16,
    conf: PathBuf,
}

impl Unbound {
    /// Sends each zone of `stubs` to its server, trusts the DS records
    /// `anchors`, and adds `server` (indented option lines) to its
    /// `server:` block.
    fn start(dir: &Path, stubs: &[(&str, SocketAddr)], anchors: &[&str], server: &str) -> Unbound {
        let port = free_port();
        let control = free_port();
        let conf = dir.join(format!("unbound-{port}.conf"));
        let stubs: String = stubs
            .iter()
            .map(|(zone, server)| {
                format!(
                    "stub-zone:\n    name: \"{zone}\"\n    stub-addr: {}@{}\n",
                    server.ip(),
                    server.port()
                )
            })
            .collect();
        let anchors: String = anchors
            .iter()
            .map(|ds| format!("    trust-anchor: \"{ds}\"\n"))
            .collect();
        let module_config = if server.contains("module-config") {
            ""
        } else {
            "    module-config: \"validator iterator\"\n"
        };
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
{module_config}{anchors}{server}remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: {control}
    control-use-cert: no
{stubs}",
                dir = dir.display(),
            ),
        )
        .unwrap();
        let mut command = Command::new("unbound");
        command.arg("-d").arg("-c").arg(&conf);
        let mut daemon = Daemon::spawn(command);
        daemon.wait_for("start of service");
        Unbound {
            _daemon: daemon,
            port,
            conf,
        }
    }

    /// Forgets everything cached at or below `zone`, validated keys
    /// included: what a resolver holds once the longest TTL has passed.
    fn flush_zone(&self, zone: &str) {
        let output = Command::new("unbound-control")
            .arg("-c")
            .arg(&self.conf)
            .args(["flush_zone", zone])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `dig +dnssec` through the resolver on `port`: the whole output.
fn dig(port: u16, name: &str, rtype: &str) -> String {
    dig_via(SocketAddr::from(([127, 0, 0, 1], port)), &[], name, rtype)
}

/// `dig +dnssec` with `options` at `server`: the whole output.
fn dig_via(server: SocketAddr, options: &[&str], name: &str, rtype: &str) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            "+dnssec",
            "+tries=1",
            "+time=5",
        ])
        .args(options)
        .args([name, rtype])
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
        // Service bindings, DANE, SSH fingerprints and NAPTR, static and
        // geo-steered (the HTTPS record of the region answered).
        ("static.example.com.", "HTTPS", "ipv4hint=127.0.0.80"),
        ("www.example.com.", "HTTPS", "port=8443 ipv4hint=127.0."),
        ("_dns.static.example.com.", "SVCB", "port=853"),
        ("_443._tcp.static.example.com.", "TLSA", "TLSA\t3 1 1 "),
        ("static.example.com.", "SSHFP", "SSHFP\t4 2 "),
        ("sip.example.com.", "NAPTR", "SIP+D2U"),
        ("static.example.com.", "SVCB", ""),
    ];
    let mut failures = Vec::new();
    for (name, rtype, expected) in cases {
        let reply = dig(port, name, rtype);
        let secure = is_secure(&reply);
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

/// The DS record's data (`tag alg type digest`) from `gtm dnssec ds` text.
fn ds_data(ds: &str) -> String {
    let fields: Vec<&str> = ds.split_whitespace().collect();
    fields[fields.len() - 4..].join(" ")
}

/// A gslb topology serving the child zones `dev.example.com.` (unsigned)
/// and `secure.example.com.` (signed by `key`), written to `dir`.
fn child_topology(dir: &Path, key: &Path) -> PathBuf {
    let zone = |origin: &str, host: &str, dnssec: &str| {
        format!(
            "    - origin: {origin}
      soa: {{ mname: ns1.{origin}, rname: hostmaster@example.com }}
{dnssec}      records:
        - {{ name: \"@\", type: NS, value: ns1.{origin} }}
        - {{ name: ns1, type: A, value: 127.0.0.53 }}
        - {{ name: host, type: A, value: {host} }}
"
        )
    };
    let text = format!(
        "dns:
  nodes: [{{ name: ns1, listen: [\"127.0.0.1:53\"] }}]
  zones:
{}{}regions:
  r1:
    location: {{ lat: 39.04, lon: -77.49 }}
    vip: {{ ipv4: 127.0.1.1 }}
",
        zone("dev.example.com.", "127.0.0.54", ""),
        zone(
            "secure.example.com.",
            "127.0.0.55",
            &format!("      dnssec: {{ keys: [\"{}\"] }}\n", key.display())
        ),
    );
    let path = dir.join("child.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `dig +dnssec +norec` straight at an authoritative server.
fn dig_at(server: SocketAddr, name: &str, rtype: &str) -> String {
    dig_via(server, &["+norec"], name, rtype)
}

/// The lines of `reply`'s AUTHORITY section.
fn authority(reply: &str) -> Vec<&str> {
    reply
        .lines()
        .skip_while(|l| !l.starts_with(";; AUTHORITY SECTION"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

fn is_secure(reply: &str) -> bool {
    flags(reply)
        .split(';')
        .nth(2)
        .unwrap_or("")
        .split_whitespace()
        .any(|f| f == "ad")
}

#[test]
fn delegations_prove_a_signed_child_secure_and_an_unsigned_one_insecure() {
    if !have("unbound", "unbound") || !have("dig", "bind9-dnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-delegation");
    let (key, _, ds) = keygen(&dir, "13");
    let (child_key, _, child_ds) = keygen_for(&dir, "secure.example.com", "13");
    let (_child, child) = start_gslb(&child_topology(&dir, &child_key));
    let delegation = |ds: &str| {
        format!(
            "        - {{ name: secure, type: NS, ttl: 1h, value: ns1.secure.example.com. }}
        - {{ name: ns1.secure, type: A, ttl: 1h, value: 127.0.0.53 }}
        - {{ name: secure, type: DS, ttl: 1h, value: \"{}\" }}
",
            ds_data(ds)
        )
    };
    let parent_config = signed_example_with(&dir, &key, &delegation(&child_ds), "parent.yaml");
    let (_parent, parent) = start_gslb(&parent_config);

    // The referrals themselves: the DS RRset signed, or an NSEC at the
    // cut that lists NS but not DS, signed.
    let referral = dig_at(parent, "host.secure.example.com.", "A");
    let lines = authority(&referral);
    for rtype in ["\tNS\t", "\tDS\t", "\tRRSIG\tDS "] {
        assert!(
            lines.iter().any(|l| l.contains(rtype)),
            "no {rtype} in the referral:\n{referral}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("RRSIG\tNS ")),
        "{referral}"
    );
    let referral = dig_at(parent, "host.dev.example.com.", "A");
    let lines = authority(&referral);
    let nsec = lines
        .iter()
        .find(|l| l.contains("\tNSEC\t"))
        .unwrap_or_else(|| panic!("no NSEC in the referral:\n{referral}"));
    assert!(nsec.starts_with("dev.example.com."), "{nsec}");
    assert!(nsec.ends_with("NS RRSIG NSEC"), "{nsec}");
    assert!(
        lines.iter().any(|l| l.contains("RRSIG\tNSEC ")),
        "{referral}"
    );

    // Through a validating resolver trusting only example.com's key: the
    // signed child is secure, the unsigned one insecure (answered, no AD).
    let stubs = [
        ("example.com.", parent),
        ("dev.example.com.", child),
        ("secure.example.com.", child),
    ];
    let unbound = Unbound::start(&dir, &stubs, &[&ds], "");
    let port = unbound.port;
    let reply = dig(port, "host.secure.example.com.", "A");
    assert!(is_secure(&reply) && reply.contains("127.0.0.55"), "{reply}");
    let reply = dig(port, "host.dev.example.com.", "A");
    assert!(
        !is_secure(&reply) && reply.contains("status: NOERROR") && reply.contains("127.0.0.54"),
        "{reply}"
    );

    // A DS that names another key makes the signed child bogus.
    let (_, _, stray_ds) = keygen_for(&temp_dir("dnssec-stray"), "secure.example.com", "13");
    let wrong_config = signed_example_with(&dir, &key, &delegation(&stray_ds), "wrong.yaml");
    let (_wrong, wrong) = start_gslb(&wrong_config);
    let stubs = [("example.com.", wrong), ("secure.example.com.", child)];
    let bogus = Unbound::start(&dir, &stubs, &[&ds], "");
    let reply = dig(bogus.port, "host.secure.example.com.", "A");
    assert!(reply.contains("status: SERVFAIL"), "{reply}");
}

/// The key tag a DS record names.
fn ds_tag(ds: &str) -> String {
    ds_data(ds).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn unbound_keeps_validating_through_a_pre_publish_rollover() {
    if !have("unbound", "unbound")
        || !have("unbound-control", "unbound")
        || !have("dig", "bind9-dnsutils")
    {
        return;
    }
    let dir = temp_dir("dnssec-rollover");
    let (old, _, old_ds) = keygen(&dir, "13");
    let (new, _, new_ds) = keygen(&dir, "13");
    let config = example_signed_as(&dir, &dnssec_block(&[&old], &[]), "", "rollover.yaml");
    let (mut gslb_daemon, gslb) = start_gslb(&config);
    let mut reload = |keys: &[&Path], published: &[&Path]| {
        example_signed_as(&dir, &dnssec_block(keys, published), "", "rollover.yaml");
        gslb_daemon.wait_for("configuration reloaded");
    };
    // The parent holds both DS records through the rollover (a CSK's
    // double-DS: the new one added before the new key signs).
    let unbound = Unbound::start(&dir, &[("example.com.", gslb)], &[&old_ds, &new_ds], "");
    let check = |step: &str, names: &[(&str, &str)]| {
        for (name, rtype) in names {
            let reply = dig(unbound.port, name, rtype);
            assert!(
                is_secure(&reply) && reply.contains("status: NOERROR"),
                "{step}: {name} {rtype} is not secure:\n{reply}"
            );
        }
    };
    let signer_of = |name: &str| {
        let reply = dig_at(gslb, name, "A");
        reply
            .lines()
            .find(|l| l.contains("\tRRSIG\tA "))
            .unwrap_or_else(|| panic!("no RRSIG:\n{reply}"))
            .to_owned()
    };

    check(
        "old key signing",
        &[("static.example.com.", "A"), ("www.example.com.", "A")],
    );

    // 1. Publish the new key; the old one still signs.
    reload(&[&old], &[&new]);
    check(
        "new key published",
        &[("static.example.com.", "A"), ("mail.example.com.", "A")],
    );
    // The DNSKEY TTL passes: resolvers now hold both keys.
    unbound.flush_zone("example.com.");
    let keys = dig(unbound.port, "example.com.", "DNSKEY");
    assert_eq!(keys.matches("\tDNSKEY\t257 3 13 ").count(), 2, "{keys}");
    check("new key published", &[("www.example.com.", "A")]);

    // 2. The new key signs, the old one stays published. Unbound's cached
    // key set validates the new signatures at once, and the answers it
    // cached under the old key stay good.
    reload(&[&new], &[&old]);
    assert!(
        signer_of("static.example.com.").contains(&format!(" {} example.com. ", ds_tag(&new_ds))),
        "the new key does not sign yet"
    );
    check(
        "new key signing",
        &[
            ("static.example.com.", "A"),
            ("mail.example.com.", "AAAA"),
            ("nope.example.com.", "A"),
            ("example.com.", "MX"),
        ],
    );

    // 3. Once the largest TTL has passed, the old key goes.
    reload(&[&new], &[]);
    check("old key removed", &[("static.example.com.", "AAAA")]);
    unbound.flush_zone("example.com.");
    let keys = dig(unbound.port, "example.com.", "DNSKEY");
    assert_eq!(keys.matches("\tDNSKEY\t257 3 13 ").count(), 1, "{keys}");
    check(
        "old key removed",
        &[("static.example.com.", "A"), ("www.example.com.", "A")],
    );

    // What the pre-publish step prevents: switching straight to a key the
    // resolver has not seen makes new answers bogus until its cached key
    // set expires.
    reload(&[&old], &[]);
    let reply = dig(unbound.port, "mail.example.com.", "A");
    assert!(reply.contains("status: SERVFAIL"), "{reply}");
}

#[test]
fn the_exported_signed_zone_passes_ldns_verify_zone() {
    if !have("ldns-verify-zone", "ldnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-export");
    let (key, _, _) = keygen(&dir, "13");
    let (_, _, child_ds) = keygen_for(&dir, "secure.example.com", "13");
    // A signed delegation (DS) beside the example's unsigned one.
    let records = format!(
        "        - {{ name: secure, type: NS, ttl: 1h, value: ns1.secure.example.com. }}
        - {{ name: ns1.secure, type: A, ttl: 1h, value: 127.0.0.53 }}
        - {{ name: secure, type: DS, ttl: 1h, value: \"{}\" }}
",
        ds_data(&child_ds)
    );
    let config = signed_example_with(&dir, &key, &records, "export.yaml");
    let output = Command::new(binary("gslb"))
        .arg("--config")
        .arg(&config)
        .args(["--zone-file", "example.com.", "--signed"])
        .output()
        .unwrap();
    let zone = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verify = |text: &str| {
        let file = dir.join("example.com.zone");
        std::fs::write(&file, text).unwrap();
        Command::new("ldns-verify-zone")
            .arg(&file)
            .output()
            .unwrap()
    };
    let verified = verify(&zone);
    assert!(
        verified.status.success(),
        "{}{}\n{zone}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    for expected in [
        " IN DNSKEY ",
        " IN DS ",
        " IN RRSIG DS ",
        " IN RRSIG A ",
        " IN NSEC ",
    ] {
        assert!(zone.contains(expected), "no {expected:?} in\n{zone}");
    }
    // The delegations' NS RRsets and glue go unsigned.
    assert!(
        !zone.contains("dev.example.com. 3600 IN RRSIG NS"),
        "{zone}"
    );
    // Data changed after signing no longer verifies.
    let tampered = zone.replacen("IN A 127.0.0.80", "IN A 127.0.0.81", 1);
    assert_ne!(tampered, zone);
    assert!(
        !verify(&tampered).status.success(),
        "tampered zone verified"
    );

    // Unsigned zones have nothing to export signed.
    let unsigned = Command::new(binary("gslb"))
        .arg("--config")
        .arg(examples_dir().join("three-regions.yaml"))
        .args(["--zone-file", "example.com.", "--signed"])
        .output()
        .unwrap();
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unsigned.stderr).contains("is not signed"),
        "{}",
        String::from_utf8_lossy(&unsigned.stderr)
    );
}

#[test]
fn delv_fully_validates_signed_answers() {
    if !have("delv", "bind9-dnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-delv");
    let (key, _, ds) = keygen(&dir, "13");
    let (_gslb, gslb) = start_gslb(&signed_example(&dir, &key));
    let fields: Vec<&str> = ds.split_whitespace().collect();
    let [tag, algorithm, digest_type, digest] = fields[fields.len() - 4..] else {
        panic!("not a DS: {ds}");
    };
    let anchors = dir.join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{\n  example.com. static-ds {tag} {algorithm} {digest_type} \"{digest}\";\n}};\n"
        ),
    )
    .unwrap();
    let delv = |name: &str, rtype: &str| {
        let output = Command::new("delv")
            .arg(format!("@{}", gslb.ip()))
            .args(["-p", &gslb.port().to_string(), "-a"])
            .arg(&anchors)
            .args(["+root=example.com", name, rtype])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    for (name, rtype) in [
        ("www.example.com.", "A"),
        ("www.example.com.", "AAAA"),
        ("static.example.com.", "A"),
        ("api.example.com.", "A"),
        ("shop.apps.example.com.", "A"),
    ] {
        let reply = delv(name, rtype);
        assert!(
            reply.contains("; fully validated"),
            "{name} {rtype}:\n{reply}"
        );
    }
    // The same answers against a key delv does not trust are refused.
    let (other, _, _) = keygen(&temp_dir("dnssec-delv-other"), "13");
    let (_untrusted, untrusted) = start_gslb(&signed_example_with(&dir, &other, "", "other.yaml"));
    let output = Command::new("delv")
        .arg(format!("@{}", untrusted.ip()))
        .args(["-p", &untrusted.port().to_string(), "-a"])
        .arg(&anchors)
        .args(["+root=example.com", "static.example.com.", "A"])
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!reply.contains("; fully validated"), "{reply}");
}

/// A topology with the signed zone example.com, whose `www` is answered
/// with the nearer of two healthy regions (us-east 127.0.1.1, eu-west
/// 127.0.2.1), written to `dir`.
fn two_region_topology(dir: &Path, key: &Path) -> PathBuf {
    let mut text = format!(
        "dns:
  nodes: [{{ name: ns1, listen: [\"127.0.0.1:53\"] }}]
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      dnssec: {{ keys: [\"{}\"] }}
      records:
        - {{ name: \"@\", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
      geo:
        - {{ name: www, regions: [us-east, eu-west], ttl: 60s }}
regions:
",
        key.display()
    );
    for (name, place, ip) in [
        ("us-east", "39.04, lon: -77.49", "127.0.1.1"),
        ("eu-west", "53.35, lon: -6.26", "127.0.2.1"),
    ] {
        let health = healthy_region(ip);
        text.push_str(&format!(
            "  {name}:\n    location: {{ lat: {place} }}\n    vip: {{ ipv4: {ip}, ports: {{ http: {} }} }}\n    health: {{ path: /health, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }}\n",
            health.port()
        ));
    }
    let path = dir.join("two-regions.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The geo answers gslb has given (queries counted with a region).
fn geo_answers(admin: SocketAddr) -> f64 {
    let scrape = http::get(admin, "/metrics").unwrap().text();
    scrape
        .lines()
        .filter(|l| l.starts_with("gslb_queries_total{") && !l.contains("region=\"\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The scope of the CLIENT-SUBNET option in a `dig` reply
/// (`; CLIENT-SUBNET: 81.2.69.0/24/14`).
fn scope_of(reply: &str) -> u8 {
    reply
        .lines()
        .find_map(|l| l.strip_prefix("; CLIENT-SUBNET: "))
        .and_then(|ecs| ecs.rsplit('/').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no client subnet scope in\n{reply}"))
}

#[test]
fn unbound_subnetcache_asks_once_per_returned_scope_and_validates() {
    if !have("unbound", "unbound") || !have("dig", "bind9-dnsutils") {
        return;
    }
    let dir = temp_dir("dnssec-subnetcache");
    let (key, _, ds) = keygen(&dir, "13");
    // One UDP worker, so that `counts_settled`'s query is counted after
    // everything before it.
    let gslb = Gslb::start(
        &two_region_topology(&dir, &key),
        &dir.join("state.json"),
        &[("GSLB_UDP_THREADS", "1")],
    );
    let unbound = Unbound::start(
        &dir,
        &[("example.com.", gslb.dns)],
        &[&ds],
        "    module-config: \"subnetcache validator iterator\"
    send-client-subnet: 127.0.0.1
    client-subnet-always-forward: yes
    max-client-subnet-ipv4: 24
",
    );
    let resolver = SocketAddr::from(([127, 0, 0, 1], unbound.port));
    let ask = |subnet: &str| {
        let subnet = format!("+subnet={subnet}");
        dig_via(resolver, &[&subnet], "www.example.com.", "A")
    };
    let in_region = |reply: &str, vip: &str| {
        assert!(is_secure(reply), "not secure:\n{reply}");
        assert!(
            reply.contains(&format!("IN\tA\t{vip}")),
            "not {vip}:\n{reply}"
        );
    };

    // A client in the United Kingdom: eu-west, validated, asked upstream
    // (once, or more if Unbound retried on a busy machine).
    let before = geo_answers(gslb.admin);
    let first = ask("81.2.69.0/24");
    in_region(&first, "127.0.2.1");
    counts_settled(&gslb);
    let after_first = geo_answers(gslb.admin);
    assert!(after_first > before, "Unbound did not ask gslb");

    // Another /24 inside the scope gslb returned (81.2.68.0 shares a /23
    // with 81.2.69.0): served from the resolver's cache.
    let scope = scope_of(&first);
    assert!(
        scope <= 23,
        "scope /{scope}: gslb's answer holds for no other /24"
    );
    in_region(&ask("81.2.68.0/24"), "127.0.2.1");
    counts_settled(&gslb);
    assert_eq!(
        geo_answers(gslb.admin),
        after_first,
        "a client inside the returned /{scope} cost another upstream query"
    );

    // A client in the United States is outside it: its own question, its
    // own (validated) answer.
    in_region(&ask("8.8.8.0/24"), "127.0.1.1");
    counts_settled(&gslb);
    assert!(geo_answers(gslb.admin) > after_first, "not asked upstream");
}

/// Waits until what gslb answered so far is in its metrics. The UDP fast
/// path (signed answers included) counts per worker and hands the counts
/// over every 100 ms; a TXT query sent straight to gslb's one worker is
/// counted no earlier than the queries before it, so once it shows, they
/// have too.
fn counts_settled(gslb: &Gslb) {
    let txt_queries = || {
        http::get(gslb.admin, "/metrics")
            .unwrap()
            .text()
            .lines()
            .filter(|l| l.starts_with("gslb_queries_total{") && l.contains("qtype=\"TXT\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = txt_queries();
    dig_via(gslb.dns, &[], "example.com.", "TXT");
    for _ in 0..200 {
        if txt_queries() > before {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("gslb's query counts did not reach its metrics within 5 s");
}

/// The key tag in a key file's name (`Kexample.com.+013+01234.pem`), as
/// RRSIG and DS records print it.
fn tag_of(key: &Path) -> String {
    let name = key.file_stem().unwrap().to_string_lossy();
    let tag: u16 = name.rsplit('+').next().unwrap().parse().unwrap();
    tag.to_string()
}

/// `kdig +dnssec` at `server`: the whole output.
fn kdig(server: SocketAddr, name: &str, rtype: &str) -> String {
    let output = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            "+dnssec",
            "+retry=0",
            "+timeout=5",
            name,
            rtype,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The key tags of the RRSIGs covering `rtype` in `kdig`/`dig` output.
fn signer_tags(reply: &str, rtype: &str) -> Vec<String> {
    reply
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == "RRSIG")?;
            // RRSIG TYPE ALG LABELS TTL EXPIRATION INCEPTION TAG SIGNER …
            (fields.get(at + 1) == Some(&rtype))
                .then(|| fields.get(at + 7).map(|t| t.to_string()))?
        })
        .collect()
}

#[test]
fn a_ksk_zsk_split_validates_and_rolls_its_ksk_by_double_ds() {
    if !have("kdig", "knot-dnsutils")
        || !have("unbound", "unbound")
        || !have("unbound-control", "unbound")
        || !have("dig", "bind9-dnsutils")
    {
        return;
    }
    let dir = temp_dir("dnssec-split");
    let (ksk, _, ksk_ds) = keygen_with(&dir, "example.com", "13", &["--ksk"]);
    let (zsk, zsk_dnskey, no_ds) = keygen_with(&dir, "example.com", "13", &["--zsk"]);
    let (next_ksk, _, next_ds) = keygen_with(&dir, "example.com", "13", &["--ksk"]);
    assert!(zsk_dnskey.contains("DNSKEY 256 3 13 "), "{zsk_dnskey}");
    assert!(no_ds.is_empty(), "a ZSK has no DS: {no_ds}");
    // `gtm dnssec ds` refuses a ZSK, naming the key to give instead.
    let refused = Command::new(binary("gtm"))
        .args(["dnssec", "ds", "example.com", "--key"])
        .arg(&zsk)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("KSK"));

    let config = example_signed_as(&dir, &dnssec_block(&[&ksk, &zsk], &[]), "", "split.yaml");
    let (mut gslb_daemon, gslb) = start_gslb(&config);
    let (ksk_tag, zsk_tag, next_tag) = (tag_of(&ksk), tag_of(&zsk), tag_of(&next_ksk));
    assert_eq!(ds_tag(&ksk_ds), ksk_tag);
    assert_eq!(ds_tag(&next_ds), next_tag);

    // kdig: the DNSKEY RRset holds both keys, signed by the KSK alone;
    // the data is signed by the ZSK alone.
    let keys = kdig(gslb, "example.com.", "DNSKEY");
    let flat = keys.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("DNSKEY 257 3 13 ") && flat.contains("DNSKEY 256 3 13 "),
        "{keys}"
    );
    assert_eq!(signer_tags(&keys, "DNSKEY"), [ksk_tag.as_str()], "{keys}");
    for (name, rtype) in [("static.example.com.", "A"), ("www.example.com.", "A")] {
        let reply = kdig(gslb, name, rtype);
        assert_eq!(signer_tags(&reply, rtype), [zsk_tag.as_str()], "{reply}");
    }
    let nodata = kdig(gslb, "static.example.com.", "TXT");
    assert_eq!(signer_tags(&nodata, "NSEC"), [zsk_tag.as_str()], "{nodata}");

    // The parent publishes the next KSK's DS beside the current one
    // (double-DS), then the next KSK replaces the current one.
    let unbound = Unbound::start(&dir, &[("example.com.", gslb)], &[&ksk_ds, &next_ds], "");
    let check = |step: &str| {
        for (name, rtype) in [
            ("static.example.com.", "A"),
            ("www.example.com.", "A"),
            ("nope.example.com.", "A"),
            ("example.com.", "DNSKEY"),
        ] {
            let reply = dig(unbound.port, name, rtype);
            assert!(
                is_secure(&reply) && reply.contains("status: NOERROR"),
                "{step}: {name} {rtype} is not secure:\n{reply}"
            );
        }
    };
    check("first KSK");
    example_signed_as(
        &dir,
        &dnssec_block(&[&next_ksk, &zsk], &[]),
        "",
        "split.yaml",
    );
    gslb_daemon.wait_for("configuration reloaded");
    let keys = kdig(gslb, "example.com.", "DNSKEY");
    assert_eq!(signer_tags(&keys, "DNSKEY"), [next_tag.as_str()], "{keys}");
    // Answers cached under the old key set stay good (the ZSK did not
    // change), and the new key set validates through the new DS.
    check("next KSK, cached key set");
    unbound.flush_zone("example.com.");
    check("next KSK, fresh key set");

    // Without the new DS at the parent, the same switch is bogus.
    let (_lagging, lagging_port) = start_unbound(&dir, gslb, &ksk_ds);
    let reply = dig(lagging_port, "static.example.com.", "A");
    assert!(reply.contains("status: SERVFAIL"), "{reply}");
}
