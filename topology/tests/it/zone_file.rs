//! Zone-file import (`dns.zones[].file`): a BIND zone loads as it stands,
//! merged with the YAML records and geo names; the export reads back to
//! the same zone; and every mistake in a zone file names the file, the
//! line, the topology field and the fix.

use std::path::{Path, PathBuf};

use topology::{LoadError, RecordData, RecordType, Topology};

fn zones_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/zones")
}

/// A topology whose one zone, `example.com.`, is `zone` (YAML lines at
/// the zone's indentation), with one region for geo names.
fn topology_text(zone: &str) -> String {
    format!(
        "dns:\n  nodes:\n    - {{ name: ns1, listen: [\"127.0.0.1:5353\"] }}\n  zones:\n    - origin: example.com.\n{zone}regions:\n  us-east:\n    location: {{ lat: 39, lon: -77 }}\n    vip: {{ ipv4: 127.0.1.1 }}\n"
    )
}

/// Loads `zone` as if the topology file sat in `dir`.
fn load_in(dir: &Path, zone: &str) -> Result<Topology, LoadError> {
    topology::parse_file(&topology_text(zone), &dir.join("topology.yaml"))
}

/// A fresh folder holding `files` (name, text).
fn folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("topology-zonefile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

/// The problems reported, as `line N: path: message` strings.
fn refused(dir: &Path, zone: &str) -> Vec<String> {
    super::problems_of(load_in(dir, zone))
}

fn record<'a>(topology: &'a Topology, name: &str, rtype: RecordType) -> Vec<&'a topology::Record> {
    topology.dns.zones[0]
        .records
        .iter()
        .filter(|r| r.name.to_string() == name && r.record_type() == rtype)
        .collect()
}

#[test]
fn a_bind_zone_loads_in_one_line_merged_with_yaml_records_and_geo_names() {
    let topology = load_in(
        &zones_dir(),
        "      file: example.com.zone\n      records:\n        - { name: extra, type: A, value: 192.0.2.7 }\n      geo:\n        - { name: api, regions: [us-east] }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let zone = &topology.dns.zones[0];
    assert_eq!(zone.soa.serial, 2026120301);
    assert_eq!(zone.soa.mname.to_string(), "ns1.example.com.");
    assert_eq!(
        (
            zone.soa.refresh,
            zone.soa.retry,
            zone.soa.expire,
            zone.soa.minimum
        ),
        (3600, 900, 1209600, 300)
    );
    assert_eq!(zone.soa_ttl, 3600, "$TTL 1h");
    assert_eq!(zone.records.len(), 20, "{:#?}", zone.records);

    let ns: Vec<String> = record(&topology, "example.com.", RecordType::Ns)
        .iter()
        .map(|r| topology::zonefile::presentation(&r.data))
        .collect();
    assert_eq!(ns, ["ns1.example.com.", "ns2.example.net."]);
    let mail6 = record(&topology, "mail.example.com.", RecordType::Aaaa);
    assert_eq!(
        mail6[0].ttl, 300,
        "an omitted owner is the previous one, TTL before class"
    );
    assert_eq!(
        record(&topology, "www.example.com.", RecordType::Cname)[0].data,
        RecordData::Cname(topology::DomainName::parse_absolute("web.example.com.").unwrap())
    );
    assert_eq!(
        record(&topology, "*.apps.example.com.", RecordType::A).len(),
        1
    );
    let srv = &record(&topology, "_sip._tcp.example.com.", RecordType::Srv)[0].data;
    assert_eq!(
        topology::zonefile::presentation(srv),
        "10 5 5060 sip.example.com."
    );
    assert_eq!(
        record(&topology, "dkim._domainkey.example.com.", RecordType::Txt)[0].data,
        RecordData::Txt(vec![
            b"v=DKIM1; k=rsa; ".to_vec(),
            b"p=MIIBIjANBgkq".to_vec()
        ]),
        "two quoted strings across parenthesised lines, ';' kept inside quotes"
    );
    assert_eq!(
        record(&topology, "example.com.", RecordType::Txt)[0].data,
        RecordData::Txt(vec![b"v=spf1 mx -all".to_vec()])
    );
    assert_eq!(
        record(&topology, "example.com.", RecordType::Caa)[0].data,
        RecordData::Caa(Box::new(topology::Caa {
            flags: 0,
            tag: "issue".into(),
            value: b"letsencrypt.org".to_vec()
        }))
    );
    assert_eq!(
        record(&topology, "sub.example.com.", RecordType::Ns).len(),
        1
    );
    assert_eq!(
        record(&topology, "ns1.sub.example.com.", RecordType::A).len(),
        1,
        "glue"
    );
    // The include, under its own origin and $TTL.
    let db = record(&topology, "db.internal.example.com.", RecordType::A);
    assert_eq!((db.len(), db[0].ttl), (1, 300));
    assert_eq!(
        record(&topology, "internal.example.com.", RecordType::Txt).len(),
        1
    );
    // Merged with the YAML.
    assert_eq!(
        record(&topology, "extra.example.com.", RecordType::A).len(),
        1
    );
    assert_eq!(zone.geo[0].name.to_string(), "api.example.com.");
    // Both files are reported for the watcher.
    let files: Vec<&Path> = topology.source_files().collect();
    assert_eq!(
        files,
        [
            zones_dir().join("example.com.zone"),
            zones_dir().join("internal.zone")
        ]
    );
}

#[test]
fn the_exported_zone_file_reads_back_to_the_same_zone() {
    let yaml = "      default_ttl: 10m\n      soa: { mname: ns1, rname: hostmaster@example.com, serial: 7, ttl: 1h }\n      records:\n        - { name: \"@\", type: NS, value: ns1 }\n        - { name: ns1, type: A, value: 192.0.2.53 }\n        - { name: ns1, type: AAAA, value: \"2001:db8::53\" }\n        - { name: \"@\", type: MX, value: \"10 mail.example.net.\" }\n        - { name: txt, type: TXT, value: 'quote \" backslash \\ semicolon ; tab\t end' }\n        - { name: long, type: TXT, ttl: 5m, value: \"LONG\" }\n        - { name: www, type: CNAME, value: ns1 }\n        - { name: \"*.w\", type: A, value: 192.0.2.9 }\n        - { name: _x._tcp, type: SRV, value: \"1 2 443 ns1\" }\n        - { name: \"@\", type: CAA, value: '128 iodef \"mailto:sec@example.com\"' }\n        - { name: 4.2.0.192, type: PTR, value: ns1 }\n        - { name: kid, type: NS, value: ns.kid }\n        - { name: ns.kid, type: A, value: 192.0.2.10 }\n        - { name: kid, type: DS, value: \"60485 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118F3A6EE7D2E7D8F2F5F3C2B1A\" }\n        - { name: svc, type: HTTPS, value: '1 . alpn=\"h2,http/1.1\" port=8443 ipv4hint=192.0.2.1 ech=AEX+DQ== mandatory=port' }\n        - { name: \"@\", type: HTTPS, value: \"0 svc\" }\n        - { name: _8443._foo.svc, type: SVCB, value: \"2 ns1 no-default-alpn alpn=foo ipv6hint=2001:db8::1\" }\n        - { name: _443._tcp.svc, type: TLSA, value: \"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6\" }\n        - { name: ns1, type: SSHFP, value: \"4 2 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6\" }\n        - { name: sip, type: NAPTR, value: '100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp' }\n        - { name: sip, type: NAPTR, value: '10 100 \"u\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .' }\n";
    let yaml = yaml.replace("LONG", &"k".repeat(300));
    let dir = folder("roundtrip", &[]);
    let original = load_in(&dir, &yaml).unwrap_or_else(|e| panic!("{e}"));
    let exported = topology::zonefile::zone_file(&original, &original.dns.zones[0]);
    std::fs::write(dir.join("example.com.zone"), &exported).unwrap();
    let imported = load_in(&dir, "      file: example.com.zone\n")
        .unwrap_or_else(|e| panic!("{e}\n{exported}"));
    let (before, after) = (&original.dns.zones[0], &imported.dns.zones[0]);
    assert_eq!(after.records, before.records, "{exported}");
    assert_eq!((&after.soa, after.soa_ttl), (&before.soa, before.soa_ttl));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mistakes_in_a_zone_file_name_the_file_the_line_and_the_fix() {
    let soa = "@ SOA ns1 hostmaster 1 1h 15m 2w 5m\n@ NS ns1\nns1 A 192.0.2.53\n";
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "syntax",
            "www A ( 192.0.2.1\n",
            &["z.zone line 4: this parenthesis is never closed"],
        ),
        (
            "type",
            "www HINFO \"pc\" \"linux\"\n",
            &["z.zone line 4: \"HINFO\" is not a supported record type; use one of A, AAAA"],
        ),
        (
            "outside",
            "www.example.org. A 192.0.2.1\n",
            &["z.zone line 4: www.example.org. is outside zone example.com."],
        ),
        (
            "rdata",
            "www A 300.1.1.1\n",
            &["z.zone line 4: \"300.1.1.1\" is not an IPv4 address"],
        ),
        (
            "signed",
            "www RRSIG A 13 3 300 20270101000000 20261201000000 1 example.com. AAAA\n",
            &["z.zone line 4: RRSIG records are made by gslb's online signing"],
        ),
        (
            "svcparam",
            "www HTTPS 1 . alpn=\"h2\" foo=bar\n",
            &["z.zone line 4: unknown SvcParam \"foo\"; use mandatory, alpn"],
        ),
        (
            "class",
            "www CH A 192.0.2.1\n",
            &["z.zone line 4: class CH is not served"],
        ),
        (
            "directive",
            "$GENERATE 1-9 h$ A 192.0.2.$\n",
            &["z.zone line 4: unknown directive $GENERATE"],
        ),
        (
            "loop",
            "$INCLUDE z.zone\n",
            &[
                "z.zone line 4: include loop: ",
                "remove the $INCLUDE that leads back",
            ],
        ),
        (
            "include",
            "$INCLUDE nowhere.zone\n",
            &["z.zone line 4: cannot read zone file ", "nowhere.zone"],
        ),
        (
            "rules",
            "www CNAME ns1\nwww A 192.0.2.1\n",
            &["z.zone line 4: www.example.com. has a CNAME and also A records"],
        ),
    ];
    for (name, tail, expected) in cases {
        let dir = folder(name, &[("z.zone", &format!("{soa}{tail}"))]);
        let found = refused(&dir, "      file: z.zone\n");
        for want in *expected {
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with("line 6: dns.zones[0].file: ") && p.contains(want)),
                "{name}: {want:?} not among:\n{}",
                found.join("\n")
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_missing_zone_file_and_a_second_soa_are_refused_with_the_fix() {
    let dir = folder("missing", &[]);
    let found = refused(&dir, "      file: absent.zone\n");
    assert!(
        found.iter().any(
            |p| p.starts_with("line 6: dns.zones[0].file: cannot read zone file ")
                && p.contains("absent.zone")
        ),
        "{found:?}"
    );
    let found = refused(&dir, "      file: /dev/zero\n");
    assert!(
        found
            .iter()
            .any(|p| p.contains("cannot read zone file /dev/zero: not a regular file")),
        "{found:?}"
    );
    let dir = folder(
        "two-soa",
        &[(
            "z.zone",
            "@ 1h SOA ns1 hostmaster 1 1h 15m 2w 5m\n@ NS ns1\nns1 A 192.0.2.53\n",
        )],
    );
    let found = refused(
        &dir,
        "      file: z.zone\n      soa: { mname: ns1, rname: hostmaster }\n",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("dns.zones[0].soa: the zone file has an SOA record too")),
        "{found:?}"
    );
    let found = refused(
        &dir,
        "      records: [{ name: \"@\", type: NS, value: ns2.example.net. }]\n",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("the zone has no SOA; add a `soa:` block")),
        "{found:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
