//! `edge l4` as a process: exits with code 1 on a bad
//! configuration, naming the problem.

use std::process::Command;

use super::support::{Ports, l7_ip, temp_file, topology_yaml};

#[test]
fn a_bad_configuration_exits_with_code_1_and_says_why() {
    let ports = Ports {
        http: 8080,
        https: 8443,
        l7_admin: 9100,
    };
    let good = topology_yaml(ports, &[("l7a", l7_ip(0))], "");
    let bad_value = topology_yaml(ports, &[("l7a", l7_ip(0))], "      drain_timeout: 30\n");
    // The L7 tier left at the default `proxy_protocol: false`, which the L4
    // tier's PROXY headers would break.
    let header_blind = good.replacen("      proxy_protocol: true\n", "", 1);
    assert_ne!(header_blind, good);
    for (text, node, expected) in [
        (
            good,
            "nope",
            "no L4 node named \"nope\"; the topology's L4 nodes are: test-l4",
        ),
        (
            bad_value,
            "test-l4",
            "regions.test.l4.drain_timeout: \"30\" has no unit",
        ),
        (
            header_blind,
            "test-l4",
            "regions.test.l7.proxy_protocol: the region's L4 tier starts every connection to the L7 nodes with a PROXY v2 header (the client's address); set `proxy_protocol: true` under `l7:`",
        ),
    ] {
        let path = temp_file("bad.yaml");
        std::fs::write(&path, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_edge"))
            .args(["l4", "--config"])
            .arg(&path)
            .args(["--node", node])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
}
