//! The topology → each host's bundle: the files (the topology and what it
//! references, systemd units or `gtmctl`, keepalived/BIRD configuration)
//! and the services that run the host's components, in start order. Pure
//! apart from reading the topology file and the files it references.
//!
//! `gtm render` writes the bundles out for the operator's own
//! configuration management; `gtm deploy` pushes them over SSH.
//!
//! # Layout
//! - [`files`]: the topology text and the files it references.
//! - [`systemd`]: a unit per service (`init: systemd`).
//! - [`gtmctl`]: the start/stop script of hosts without systemd.
//! - [`keepalived`]: VRRP for regions in `l4.ha.mode: vrrp`.
//! - [`bird`]: BGP for regions in `l4.ha.mode: bgp`.
//! - [`prometheus`]: a Prometheus configuration scraping every component
//!   (`gtm prometheus`; not part of a host's bundle).

mod bird;
mod files;
mod gtmctl;
mod keepalived;
pub mod prometheus;
mod systemd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use topology::Region;
use topology::Topology;
use topology::hosts::{Host, Init};
use topology::tiers::l4::{Ha, L4Node, L4Tier};

use crate::plan::{Kind, plan};

/// Everything one host needs, as files relative to the host's `dir`.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The host: name, ssh, addresses, interface, dir, init.
    pub host: Host,
    /// Every file to write under `host.dir`.
    pub files: Vec<BundleFile>,
    /// The host's services, in start order.
    pub services: Vec<Service>,
}

/// One file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFile {
    /// Relative to the host's `dir`.
    pub path: PathBuf,
    /// Its bytes.
    pub contents: Vec<u8>,
    /// Its permission bits (e.g. `0o644`, `0o755` for `gtmctl`).
    pub mode: u32,
    /// Owned by the service user and readable by it alone (0600): keys.
    pub secret: bool,
}

/// One long-running process on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The systemd unit name without `.service`, e.g. `gtm-l4-us-east-l4a`,
    /// `gtm-keepalived`, `gtm-bird`, `gtm-announce-us-east-l4a`.
    pub name: String,
    /// The topology component it runs (`None` for keepalived and BIRD).
    pub component: Option<String>,
    /// Its place in the cross-host start order (stop in reverse).
    pub stage: Stage,
    /// The absolute argv on the host (`{dir}/bin/gslb`, `{dir}/bin/edge`;
    /// keepalived and bird from `PATH`).
    pub argv: Vec<String>,
    /// How a configuration change reaches it.
    pub reload: Reload,
}

/// The cross-host start order: every host's backends before any L7 node,
/// and so on; stop in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Demo backends.
    Backend,
    /// L7 nodes.
    L7,
    /// L4 nodes.
    L4,
    /// keepalived, BIRD and `edge announce`: the VIP moves to a node only
    /// once its L4 node serves.
    Ha,
    /// GSLB name servers, last: they answer with VIPs that now work.
    Gslb,
}

impl Stage {
    /// The spelling used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Backend => "backend",
            Stage::L7 => "l7",
            Stage::L4 => "l4",
            Stage::Ha => "ha",
            Stage::Gslb => "gslb",
        }
    }
}

/// How a service takes a new configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP: it re-reads its files in place.
    Sighup,
    /// Stop and start again.
    Restart,
}

/// One bundle per host that runs something, in `topology.hosts` order.
/// `topology_path` is the file `topology` was loaded from: its text and
/// the files it references (relative to it) go into the bundles of the
/// hosts whose services read them.
pub fn bundles(topology: &Topology, topology_path: &Path) -> anyhow::Result<Vec<Bundle>> {
    let text = std::fs::read(topology_path).map_err(|e| {
        crate::error::user(format!(
            "cannot read topology file {}: {e}",
            topology_path.display()
        ))
    })?;
    let mut bundles = Vec::new();
    for host in &topology.hosts {
        let units = units(topology, host)?;
        if units.is_empty() {
            continue;
        }
        let mut files = vec![BundleFile {
            path: PathBuf::from(files::TOPOLOGY),
            contents: text.clone(),
            mode: 0o644,
            secret: false,
        }];
        files.extend(files::referenced(topology, topology_path, host)?);
        if let Some(conf) = keepalived::config(topology, host)? {
            files.push(BundleFile {
                path: PathBuf::from(keepalived::CONFIG),
                contents: conf.into_bytes(),
                mode: 0o644,
                secret: false,
            });
        }
        if let Some(conf) = bird::config(topology, host)? {
            files.push(BundleFile {
                path: PathBuf::from(bird::CONFIG),
                contents: conf.into_bytes(),
                mode: 0o644,
                secret: false,
            });
        }
        match host.init {
            Init::Systemd => files.extend(units.iter().map(|unit| BundleFile {
                path: Path::new("units").join(format!("{}.service", unit.service.name)),
                contents: systemd::unit(host, unit, &units).into_bytes(),
                mode: 0o644,
                secret: false,
            })),
            Init::Process => files.push(BundleFile {
                path: PathBuf::from(gtmctl::SCRIPT),
                contents: gtmctl::script(host, &units).into_bytes(),
                mode: 0o755,
                secret: false,
            }),
        }
        bundles.push(Bundle {
            host: host.clone(),
            files,
            services: units.into_iter().map(|unit| unit.service).collect(),
        });
    }
    Ok(bundles)
}

/// A service with what only the unit and `gtmctl` renderers need.
#[derive(Clone, Debug)]
struct Unit {
    /// The public part.
    service: Service,
    /// One line for `Description=` and `gtmctl status`.
    description: String,
    /// Runs as root: keepalived and BIRD change addresses and routes, and
    /// `edge announce` talks to BIRD's root-owned control socket.
    root: bool,
    /// Commands run as root before it starts (the VIP on `lo` for BIRD).
    pre: Vec<Vec<String>>,
    /// Directories it writes, created before it starts.
    writes: Vec<PathBuf>,
    /// Services of the same stage on this host it needs started first.
    needs: Vec<String>,
    /// How long it may take to stop before it is killed.
    stop_timeout: Duration,
}

/// How long a service may take to stop when nothing says otherwise.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's services, in start order.
fn units(topology: &Topology, host: &Host) -> anyhow::Result<Vec<Unit>> {
    let bin = |binary: &str| host.dir.join("bin").join(binary).display().to_string();
    let config = host.dir.join(files::TOPOLOGY);
    let mut units = Vec::new();
    for component in plan(topology, &config) {
        if component.host.as_deref() != Some(&host.name) {
            continue;
        }
        let mut argv = vec![bin(component.kind.binary())];
        argv.extend(component.args.iter().cloned());
        let mut writes = Vec::new();
        if matches!(component.kind, Kind::Gslb | Kind::L7) {
            // Operator overrides (and a name server's last verdicts)
            // survive a restart; the default (under $HOME) is not writable
            // under systemd. Component names are unique in a topology.
            let state = host.dir.join("state");
            argv.push("--state-file".into());
            argv.push(
                state
                    .join(format!("{}.json", component.name))
                    .display()
                    .to_string(),
            );
            writes.push(state);
        }
        let stop_timeout = match component.kind {
            // Open connections get the whole drain before a KILL.
            Kind::L4 => l4_of(topology, &component.name).map_or(STOP_TIMEOUT, |(_, l4, _)| {
                l4.drain_timeout + Duration::from_secs(5)
            }),
            _ => STOP_TIMEOUT,
        };
        units.push(Unit {
            service: Service {
                name: format!("gtm-{}-{}", component.kind.as_str(), component.name),
                component: Some(component.name.clone()),
                stage: match component.kind {
                    Kind::Backend => Stage::Backend,
                    Kind::L7 => Stage::L7,
                    Kind::L4 => Stage::L4,
                    Kind::Gslb => Stage::Gslb,
                },
                argv,
                // The demo backend has no configuration to reload: SIGHUP
                // would end it.
                reload: if component.kind == Kind::Backend {
                    Reload::Restart
                } else {
                    Reload::Sighup
                },
            },
            description: format!("gtm {} {}", component.kind.as_str(), component.name),
            root: false,
            pre: Vec::new(),
            writes,
            needs: Vec::new(),
            stop_timeout,
        });
    }
    units.extend(ha_units(topology, host)?);
    units.sort_by_key(|unit| unit.service.stage);
    Ok(units)
}

/// keepalived, or BIRD and one announcer per L4 node, for the host's L4
/// nodes in a region with `l4.ha`.
fn ha_units(topology: &Topology, host: &Host) -> anyhow::Result<Vec<Unit>> {
    let run = |file: &str| host.dir.join("run").join(file).display().to_string();
    let ha_unit = |name: &str, description: String, argv: Vec<String>, pre| Unit {
        service: Service {
            name: name.to_owned(),
            component: None,
            stage: Stage::Ha,
            argv,
            reload: Reload::Sighup,
        },
        description,
        root: true,
        pre,
        writes: vec![host.dir.join("run")],
        needs: Vec::new(),
        stop_timeout: STOP_TIMEOUT,
    };
    let mut units = Vec::new();
    let nodes = l4_nodes_on(topology, host);
    if nodes
        .iter()
        .any(|(_, l4, _)| matches!(l4.ha, Some(Ha::Vrrp(_))))
    {
        // In the foreground on both kinds of host: systemd and gtmctl both
        // supervise the process they started, and the pid files keep two
        // keepalived on one machine (the lab's hosts share /run) apart.
        units.push(ha_unit(
            keepalived::SERVICE,
            "gtm VRRP (keepalived): moves the VIP to the ready L4 node".into(),
            vec![
                "keepalived".into(),
                "--dont-fork".into(),
                "--log-console".into(),
                "-f".into(),
                host.dir.join(keepalived::CONFIG).display().to_string(),
                "-p".into(),
                run("keepalived.pid"),
                "-r".into(),
                run("vrrp.pid"),
            ],
            Vec::new(),
        ));
    }
    let bgp: Vec<_> = nodes
        .iter()
        .filter(|(_, l4, _)| matches!(l4.ha, Some(Ha::Bgp(_))))
        .collect();
    if let Some((region, _, _)) = bgp.first() {
        // BIRD routes the VIP "via lo" and the L4 node receives it there.
        let pre = region
            .vip
            .ipv4
            .map(|vip| {
                [
                    "/sbin/ip",
                    "addr",
                    "replace",
                    &format!("{vip}/32"),
                    "dev",
                    "lo",
                ]
                .map(String::from)
                .to_vec()
            })
            .into_iter()
            .collect();
        units.push(ha_unit(
            bird::SERVICE,
            "gtm BGP (BIRD): announces the VIP while the L4 node is ready".into(),
            vec![
                "bird".into(),
                "-f".into(),
                "-c".into(),
                host.dir.join(bird::CONFIG).display().to_string(),
                "-s".into(),
                run(bird::SOCKET),
            ],
            pre,
        ));
        for (_, _, node) in &bgp {
            let mut unit = ha_unit(
                &format!("gtm-announce-{}", node.name),
                format!(
                    "gtm announcer of {}: enables the VIP route while it is ready",
                    node.name
                ),
                vec![
                    host.dir.join("bin/edge").display().to_string(),
                    "announce".into(),
                    "--admin".into(),
                    node.admin.to_string(),
                    "--bird-socket".into(),
                    run(bird::SOCKET),
                    "--protocol".into(),
                    bird::PROTOCOL.into(),
                ],
                Vec::new(),
            );
            unit.service.component = Some(node.name.clone());
            unit.needs.push(bird::SERVICE.into());
            // It reads no configuration, and SIGHUP would end it.
            unit.service.reload = Reload::Restart;
            units.push(unit);
        }
    }
    Ok(units)
}

/// The L4 nodes on `host`, with their region and tier.
fn l4_nodes_on<'a>(
    topology: &'a Topology,
    host: &Host,
) -> Vec<(&'a Region, &'a L4Tier, &'a L4Node)> {
    topology
        .regions
        .iter()
        .filter_map(|region| region.l4.as_ref().map(|l4| (region, l4)))
        .flat_map(|(region, l4)| l4.nodes.iter().map(move |node| (region, l4, node)))
        .filter(|(_, _, node)| node.host.as_deref() == Some(&host.name))
        .collect()
}

/// The L4 node named `name`, with its region and tier.
fn l4_of<'a>(topology: &'a Topology, name: &str) -> Option<(&'a Region, &'a L4Tier, &'a L4Node)> {
    topology.regions.iter().find_map(|region| {
        let l4 = region.l4.as_ref()?;
        let node = l4.nodes.iter().find(|n| n.name == name)?;
        Some((region, l4, node))
    })
}

/// An error for a state validation rules out.
fn invariant(what: String) -> anyhow::Error {
    anyhow!("{what} (the topology's validation should have refused this; please report it)")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The multi-host example's path.
    pub fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/multi-host.yaml")
    }

    /// The multi-host example with `from` replaced by `to` in its text.
    pub fn example_with(from: &str, to: &str) -> Topology {
        let text = std::fs::read_to_string(example_path()).expect("the example reads");
        assert!(text.contains(from), "the example has {from:?}");
        topology::parse(&text.replace(from, to), "multi-host.yaml").expect("the variant loads")
    }

    fn example_bundles() -> Vec<Bundle> {
        let path = example_path();
        let topology = topology::load(&path).expect("the example loads");
        bundles(&topology, &path).expect("the example renders")
    }

    fn bundle<'a>(bundles: &'a [Bundle], host: &str) -> &'a Bundle {
        bundles.iter().find(|b| b.host.name == host).expect(host)
    }

    fn names(bundle: &Bundle) -> Vec<&str> {
        bundle.services.iter().map(|s| s.name.as_str()).collect()
    }

    fn file<'a>(bundle: &'a Bundle, path: &str) -> Option<&'a BundleFile> {
        bundle.files.iter().find(|f| f.path == Path::new(path))
    }

    #[test]
    fn every_host_of_the_example_gets_its_services_in_start_order() {
        let bundles = example_bundles();
        assert_eq!(bundles.len(), 21, "one bundle per host");
        let hosts: Vec<&str> = bundles.iter().map(|b| b.host.name.as_str()).collect();
        assert_eq!(&hosts[..3], ["use-ns", "use-l4a", "use-l4b"], "hosts order");
        assert_eq!(
            names(bundle(&bundles, "use-l4a")),
            ["gtm-l4-us-east-l4a", "gtm-keepalived"]
        );
        assert_eq!(
            names(bundle(&bundles, "euw-l4b")),
            ["gtm-l4-eu-west-l4b", "gtm-bird", "gtm-announce-eu-west-l4b"]
        );
        assert_eq!(
            names(bundle(&bundles, "aps-web2")),
            ["gtm-backend-ap-south-web2"]
        );
        for b in &bundles {
            let stages: Vec<Stage> = b.services.iter().map(|s| s.stage).collect();
            assert!(stages.is_sorted(), "{}: {stages:?}", b.host.name);
        }
    }

    #[test]
    fn services_run_the_planned_command_lines_from_the_host_dir() {
        let bundles = example_bundles();
        let web = &bundle(&bundles, "use-web1").services[0];
        assert_eq!(
            web.argv,
            [
                "/var/lib/gtm/bin/edge",
                "backend",
                "--config",
                "/var/lib/gtm/topology.yaml",
                "--name",
                "us-east-web1"
            ]
        );
        assert_eq!((web.stage, web.reload), (Stage::Backend, Reload::Restart));
        assert_eq!(web.component.as_deref(), Some("us-east-web1"));
        let ns = &bundle(&bundles, "euw-ns").services[0];
        assert_eq!(ns.name, "gtm-gslb-ns2");
        assert_eq!(
            ns.argv[1..],
            [
                "--config",
                "/var/lib/gtm/topology.yaml",
                "--node",
                "ns2",
                "--state-file",
                "/var/lib/gtm/state/ns2.json"
            ]
        );
        // An operator's drains and weights survive a restart of the node.
        let l7 = &bundle(&bundles, "use-l7a").services[0];
        assert_eq!(
            l7.argv[l7.argv.len() - 2..],
            ["--state-file", "/var/lib/gtm/state/us-east-l7a.json"]
        );
        let l4 = bundle(&bundles, "use-l4a");
        assert_eq!(l4.services[0].reload, Reload::Sighup);
        let keepalived = &l4.services[1];
        assert_eq!(
            (keepalived.stage, keepalived.component.as_deref()),
            (Stage::Ha, None)
        );
        assert_eq!(
            keepalived.argv.join(" "),
            "keepalived --dont-fork --log-console -f /var/lib/gtm/keepalived.conf \
             -p /var/lib/gtm/run/keepalived.pid -r /var/lib/gtm/run/vrrp.pid"
        );
        let bgp = bundle(&bundles, "euw-l4a");
        assert_eq!(
            bgp.services[1].argv.join(" "),
            "bird -f -c /var/lib/gtm/bird.conf -s /var/lib/gtm/run/bird.ctl"
        );
        let announce = &bgp.services[2];
        assert_eq!(
            announce.argv.join(" "),
            "/var/lib/gtm/bin/edge announce --admin 198.51.100.75:9100 \
             --bird-socket /var/lib/gtm/run/bird.ctl --protocol vip"
        );
        assert_eq!(announce.reload, Reload::Restart);
    }

    #[test]
    fn each_host_gets_the_files_its_services_read_and_keys_are_secret() {
        let bundles = example_bundles();
        let text = std::fs::read(example_path()).unwrap();
        let l7 = bundle(&bundles, "use-l7a");
        assert_eq!(file(l7, "topology.yaml").unwrap().contents, text);
        let key = file(l7, "certs/example.com.key").expect("the L7 key");
        assert_eq!((key.secret, key.mode), (true, 0o600));
        let cert = file(l7, "certs/example.com.pem").expect("the L7 cert");
        assert_eq!((cert.secret, cert.mode), (false, 0o644));
        assert_eq!(file(l7, "gtmctl").expect("process host").mode, 0o755);
        let web = bundle(&bundles, "use-web1");
        assert!(
            file(web, "certs/example.com.key").is_none(),
            "no key where no L7 runs"
        );
        assert!(file(bundle(&bundles, "use-l4a"), "keepalived.conf").is_some());
        assert!(file(bundle(&bundles, "use-l4a"), "bird.conf").is_none());
        assert!(file(bundle(&bundles, "euw-l4a"), "bird.conf").is_some());
        assert!(file(l7, "units/gtm-l7-us-east-l7a.service").is_none());
        let peer_key = file(bundle(&bundles, "euw-ns"), "certs/peer.key").expect("the peer key");
        assert_eq!((peer_key.secret, peer_key.mode), (true, 0o600));
        assert!(
            file(l7, "certs/peer.key").is_none(),
            "the peer key only where a name server runs"
        );
    }

    #[test]
    fn systemd_hosts_get_a_unit_per_service_and_no_gtmctl() {
        let path = example_path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("init: process", "init: systemd");
        let topology = topology::parse(&text, "multi-host.yaml").unwrap();
        let bundles = bundles(&topology, &path).unwrap();
        let l4 = bundle(&bundles, "euw-l4a");
        assert!(file(l4, "gtmctl").is_none());
        let unit = |name: &str| {
            String::from_utf8(
                file(l4, &format!("units/{name}.service"))
                    .expect(name)
                    .contents
                    .clone(),
            )
            .unwrap()
        };
        let node = unit("gtm-l4-eu-west-l4a");
        for line in [
            "User=gtm",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "ProtectSystem=strict",
            "ExecStart=/var/lib/gtm/bin/edge l4 --config /var/lib/gtm/topology.yaml --node eu-west-l4a",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "EnvironmentFile=-/var/lib/gtm/env",
            // The default 30 s drain, and 5 s more.
            "TimeoutStopSec=35",
            "WantedBy=multi-user.target",
        ] {
            assert!(node.lines().any(|l| l == line), "{line} in\n{node}");
        }
        let bird = unit("gtm-bird");
        assert!(!bird.contains("User="), "BIRD runs as root");
        assert!(bird.contains("ExecStartPre=+/sbin/ip addr replace 203.0.113.2/32 dev lo\n"));
        assert!(
            bird.contains("After=gtm-l4-eu-west-l4a.service\n"),
            "{bird}"
        );
        let announce = unit("gtm-announce-eu-west-l4a");
        assert!(announce.contains("Wants=gtm-bird.service\n"));
        assert!(!announce.contains("ExecReload"), "SIGHUP would end it");
        let ns = bundle(&bundles, "use-ns");
        let gslb = String::from_utf8(
            file(ns, "units/gtm-gslb-ns1.service")
                .unwrap()
                .contents
                .clone(),
        )
        .unwrap();
        assert!(
            gslb.contains("ReadWritePaths=/var/lib/gtm/state\n"),
            "{gslb}"
        );
        assert!(gslb.contains("TimeoutStopSec=10\n"));
    }

    #[test]
    fn shared_ticket_keys_go_to_the_regions_l7_hosts_as_secrets() {
        // Any file present serves: the bundle copies it, the node parses it.
        let certs = "certs: [{ cert: certs/example.com.pem, key: certs/example.com.key }]";
        let topology = example_with(
            certs,
            &format!("{certs}\n        ticket_keys: certs/ca.key"),
        );
        let bundles = bundles(&topology, &example_path()).unwrap();
        let keys = file(bundle(&bundles, "use-l7a"), "certs/ca.key").expect("the ticket keys");
        assert_eq!((keys.secret, keys.mode), (true, 0o600));
        assert!(file(bundle(&bundles, "use-web1"), "certs/ca.key").is_none());
    }

    #[test]
    fn a_pools_backend_tls_files_go_to_the_regions_l7_hosts_key_as_a_secret() {
        // Any file present serves: the bundle copies it, the node parses it.
        let topology = example_with(
            "      pools:\n        web:\n",
            "      pools:\n        web:\n          tls: { ca: certs/ca.pem, cert: certs/example.com.pem, key: certs/ca.key }\n",
        );
        let bundles = bundles(&topology, &example_path()).unwrap();
        let l7 = bundle(&bundles, "use-l7a");
        let ca = file(l7, "certs/ca.pem").expect("the backend CA");
        assert_eq!((ca.secret, ca.mode), (false, 0o644));
        let key = file(l7, "certs/ca.key").expect("the client key");
        assert_eq!((key.secret, key.mode), (true, 0o600));
        assert!(file(bundle(&bundles, "use-web1"), "certs/ca.pem").is_none());
    }

    #[test]
    fn a_demo_backends_certificate_goes_to_its_own_host_key_as_a_secret() {
        let topology = example_with(
            "listen: \"198.51.100.31:9000\" }",
            "listen: \"198.51.100.31:9000\", tls: { listen: \"198.51.100.31:9443\", cert: certs/example.com.pem, key: certs/example.com.key } }",
        );
        let bundles = bundles(&topology, &example_path()).unwrap();
        let web1 = bundle(&bundles, "use-web1");
        let cert = file(web1, "certs/example.com.pem").expect("the backend's certificate");
        assert_eq!((cert.secret, cert.mode), (false, 0o644));
        let key = file(web1, "certs/example.com.key").expect("its key");
        assert_eq!((key.secret, key.mode), (true, 0o600));
        assert!(file(bundle(&bundles, "use-web2"), "certs/example.com.key").is_none());
    }

    #[test]
    fn a_reference_outside_the_topology_directory_is_refused() {
        let path = example_path();
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "key: certs/example.com.key",
            "key: ../secret.key",
            1,
        );
        let topology = topology::parse(&text, "multi-host.yaml").unwrap();
        let error = bundles(&topology, &path).unwrap_err().to_string();
        assert!(
            error.contains(
                "regions.us-east.l7.tls.certs[0].key: ../secret.key leaves the topology's directory"
            ),
            "{error}"
        );
        let text = text.replace("../secret.key", "certs/missing.key");
        let topology = topology::parse(&text, "multi-host.yaml").unwrap();
        let error = bundles(&topology, &path).unwrap_err().to_string();
        assert!(
            error.contains("cannot read") && error.contains("missing.key"),
            "{error}"
        );
    }
}
