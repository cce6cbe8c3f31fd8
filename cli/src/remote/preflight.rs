//! What a deploy checks on each host before anything starts: one ssh
//! session per host runs [`survey`] (which commands exist, the host's
//! addresses and interfaces, the hashes of the files already deployed,
//! which services run), and [`problems`] compares that with what the
//! host's components need. Everything but the ssh call is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use topology::Topology;
use topology::hosts::{Host, Init};
use topology::tiers::l4::Ha;

use super::services;
use super::{quote, quote_all};
use crate::plan::Component;

/// A command a host must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Its name on `PATH`.
    pub name: &'static str,
    /// The Debian package that brings it.
    pub package: &'static str,
    /// Who needs it (components, or what for).
    pub by: String,
}

/// An address a component binds on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// The component.
    pub component: String,
    /// What for (`DNS`, `admin`, …).
    pub purpose: &'static str,
}

/// What one host must offer its components.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Commands.
    pub commands: Vec<Command>,
    /// Addresses that must be on one of its interfaces.
    pub addresses: Vec<Address>,
    /// The VRRP interface, with the component that runs VRRP on it.
    pub interface: Option<(String, String)>,
}

/// Every command the survey looks for.
const SURVEYED: [&str; 7] = [
    "tar",
    "sha256sum",
    "ip",
    "keepalived",
    "bird",
    "birdc",
    "systemctl",
];

/// What `host`'s components (of `components`, the whole plan) need there.
/// VIPs are not required on an interface: keepalived or BIRD put them
/// there once the L4 node serves.
pub fn needs(topology: &Topology, components: &[Component], host: &Host) -> Needs {
    let mine: Vec<&Component> = components
        .iter()
        .filter(|c| c.host.as_deref() == Some(host.name.as_str()))
        .collect();
    let names = mine
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut needs = Needs::default();
    let mut command = |name, package, by: &str| {
        needs.commands.push(Command {
            name,
            package,
            by: by.to_owned(),
        })
    };
    command("tar", "tar", "the deploy's file transfer");
    command("sha256sum", "coreutils", "the deploy's file transfer");
    command("ip", "iproute2", &names);
    if host.init == Init::Systemd {
        command("systemctl", "systemd", &names);
    }
    let vips: BTreeSet<IpAddr> = topology
        .regions
        .iter()
        .flat_map(|r| r.vip.addresses())
        .collect();
    for region in &topology.regions {
        let Some(l4) = &region.l4 else { continue };
        for node in l4
            .nodes
            .iter()
            .filter(|n| n.host.as_deref() == Some(host.name.as_str()))
        {
            match &l4.ha {
                Some(Ha::Vrrp(_)) => {
                    command("keepalived", "keepalived", &node.name);
                    needs.interface = Some((host.interface.clone(), node.name.clone()));
                }
                Some(Ha::Bgp(_)) => {
                    command("bird", "bird2", &node.name);
                    command("birdc", "bird2", &node.name);
                }
                None => {}
            }
        }
    }
    for component in mine {
        for bind in &component.binds {
            let addr = bind.addr.ip();
            let known = needs
                .addresses
                .iter()
                .any(|a| a.addr == addr && a.component == component.name);
            if !addr.is_unspecified() && !vips.contains(&addr) && !known {
                needs.addresses.push(Address {
                    addr,
                    component: component.name.clone(),
                    purpose: bind.purpose,
                });
            }
        }
    }
    needs
}

/// What the survey found on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Commands found on `PATH`.
    pub commands: BTreeSet<String>,
    /// Addresses on its interfaces.
    pub addresses: BTreeSet<IpAddr>,
    /// Its interfaces.
    pub links: BTreeSet<String>,
    /// sha256 of the files already under its `dir`, by relative path.
    pub hashes: BTreeMap<String, String>,
    /// Its services that run.
    pub running: Vec<String>,
}

const MARK: &str = "@@gtm ";

/// The command that prints a host's [`Facts`]: `files` are hashed under
/// the host's dir, `services` asked whether they run.
pub fn survey(host: &Host, files: &[String], services: &[&str]) -> String {
    let dir = quote(&host.dir.display().to_string());
    let files = if files.is_empty() {
        String::new()
    } else {
        format!(
            "(cd {dir} 2>/dev/null && sha256sum -- {} 2>/dev/null); ",
            quote_all(files)
        )
    };
    format!(
        "echo '{MARK}commands'; for c in {}; do command -v \"$c\" >/dev/null 2>&1 && echo \"$c\"; done; \
         echo '{MARK}addresses'; ip -o addr show 2>/dev/null; \
         echo '{MARK}links'; ip -o link show 2>/dev/null; \
         echo '{MARK}hashes'; {files}\
         echo '{MARK}running'; {}",
        SURVEYED.join(" "),
        services::status(host, services),
    )
}

/// Parses [`survey`]'s output.
pub fn parse(output: &str) -> Facts {
    let mut facts = Facts::default();
    let mut section = "";
    let mut running = String::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix(MARK) {
            section = name.trim();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match section {
            "commands" if !line.trim().is_empty() => {
                facts.commands.insert(line.trim().to_owned());
            }
            // `2: eth0    inet 198.51.100.11/26 brd … scope global eth0`
            "addresses" => {
                if let Some(addr) = words
                    .get(2)
                    .filter(|family| family.starts_with("inet"))
                    .and_then(|_| words.get(3))
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse().ok())
                {
                    facts.addresses.insert(addr);
                }
            }
            // `2: eth0@if7: <BROADCAST,…> mtu 1500 …`
            "links" => {
                if let Some(name) = words.get(1) {
                    let name = name.trim_end_matches(':');
                    let name = name.split('@').next().unwrap_or(name);
                    facts.links.insert(name.to_owned());
                }
            }
            "hashes" => {
                if let [hash, path] = words[..] {
                    facts
                        .hashes
                        .insert(path.trim_start_matches('*').to_owned(), hash.to_owned());
                }
            }
            "running" => {
                running.push_str(line);
                running.push('\n');
            }
            _ => {}
        }
    }
    facts.running = services::parse_status(&running);
    facts
}

/// Every problem of `host`, each naming the host, who is concerned and
/// the fix.
pub fn problems(host: &Host, needs: &Needs, facts: &Facts) -> Vec<String> {
    let name = &host.name;
    let mut problems = Vec::new();
    let mut packages: Vec<(&str, Vec<&Command>)> = Vec::new();
    for command in needs
        .commands
        .iter()
        .filter(|c| !facts.commands.contains(c.name))
    {
        match packages.iter_mut().find(|(p, _)| *p == command.package) {
            Some((_, commands)) => commands.push(command),
            None => packages.push((command.package, vec![command])),
        }
    }
    for (package, commands) in packages {
        let missing: Vec<&str> = commands.iter().map(|c| c.name).collect();
        problems.push(format!(
            "{name}: {} not installed (needed by {}); apt-get install {package} on {name}",
            if missing.len() == 1 {
                format!("`{}` is", missing[0])
            } else {
                format!("`{}` are", missing.join("`, `"))
            },
            commands[0].by
        ));
    }
    // Without `ip` the addresses cannot be checked: one problem says so.
    if facts.commands.contains("ip") {
        for address in needs
            .addresses
            .iter()
            .filter(|a| !facts.addresses.contains(&a.addr))
        {
            problems.push(format!(
                "{name}: {} ({} {}) is on no interface of {name}; add it there (`ip addr add {}/{} dev {}`) or change the component's address in the topology",
                address.addr,
                address.component,
                address.purpose,
                address.addr,
                if address.addr.is_ipv4() { 32 } else { 128 },
                host.interface,
            ));
        }
        if let Some((interface, component)) = &needs.interface
            && !facts.links.contains(interface)
        {
            problems.push(format!(
                "{name}: interface {interface:?} (VRRP of {component}) does not exist on {name} (it has: {}); set hosts.{name}.interface",
                facts.links.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;

    fn example() -> Topology {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/multi-host.yaml");
        topology::load(std::path::Path::new(path)).unwrap()
    }

    const L4A: &str = "\
@@gtm commands
tar
sha256sum
ip
keepalived
@@gtm addresses
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 198.51.100.11/26 brd 198.51.100.63 scope global eth0\\       valid_lft forever
2: eth0    inet6 2001:db8:1::11/64 scope global \\       valid_lft forever preferred_lft forever
@@gtm links
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if12: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP\\    link/ether 0a:00:00:00:00:0b brd ff:ff:ff:ff:ff:ff link-netns gtm-router
@@gtm hashes
0123abcd  bin/edge
4567ef00  topology.yaml
@@gtm running
gtm-l4-us-east-l4a running 4242
gtm-keepalived stopped
";

    #[test]
    fn the_survey_is_parsed_section_by_section() {
        let facts = parse(L4A);
        assert!(facts.commands.contains("keepalived"));
        assert!(!facts.commands.contains("bird"));
        assert!(facts.addresses.contains(&"198.51.100.11".parse().unwrap()));
        assert!(facts.addresses.contains(&"2001:db8:1::11".parse().unwrap()));
        assert_eq!(
            facts.links.iter().collect::<Vec<_>>(),
            [&"eth0".to_owned(), &"lo".to_owned()]
        );
        assert_eq!(facts.hashes["bin/edge"], "0123abcd");
        assert_eq!(facts.running, ["gtm-l4-us-east-l4a"]);
    }

    #[test]
    fn a_healthy_vrrp_host_has_no_problem_and_its_vip_is_not_required() {
        let topology = example();
        let components = plan(
            &topology,
            std::path::Path::new("/var/lib/gtm/topology.yaml"),
        );
        let host = topology.host("use-l4a").unwrap();
        let needs = needs(&topology, &components, host);
        assert!(needs.commands.iter().any(|c| c.name == "keepalived"));
        assert!(!needs.commands.iter().any(|c| c.name == "systemctl"));
        assert_eq!(needs.interface, Some(("eth0".into(), "us-east-l4a".into())));
        assert!(
            !needs
                .addresses
                .iter()
                .any(|a| a.addr == "203.0.113.1".parse::<IpAddr>().unwrap())
        );
        assert_eq!(problems(host, &needs, &parse(L4A)), Vec::<String>::new());
    }

    #[test]
    fn every_problem_of_a_host_is_reported_with_its_fix() {
        let topology = example();
        let components = plan(
            &topology,
            std::path::Path::new("/var/lib/gtm/topology.yaml"),
        );
        let host = topology.host("use-l4a").unwrap();
        let needs = needs(&topology, &components, host);
        let broken = L4A
            .replace("keepalived\n", "")
            .replace("198.51.100.11/26", "198.51.100.99/26")
            .replace("eth0@if12", "ens3@if12");
        let problems = problems(host, &needs, &parse(&broken));
        assert_eq!(
            problems,
            [
                "use-l4a: `keepalived` is not installed (needed by us-east-l4a); apt-get install keepalived on use-l4a",
                "use-l4a: 198.51.100.11 (us-east-l4a admin) is on no interface of use-l4a; add it there (`ip addr add 198.51.100.11/32 dev eth0`) or change the component's address in the topology",
                "use-l4a: interface \"eth0\" (VRRP of us-east-l4a) does not exist on use-l4a (it has: ens3, lo); set hosts.use-l4a.interface",
            ]
        );
    }

    #[test]
    fn bgp_hosts_need_bird_and_birdc_from_one_package() {
        let topology = example();
        let components = plan(
            &topology,
            std::path::Path::new("/var/lib/gtm/topology.yaml"),
        );
        let host = topology.host("euw-l4a").unwrap();
        let needs = needs(&topology, &components, host);
        let facts = parse("@@gtm commands\ntar\nsha256sum\n@@gtm addresses\n");
        assert_eq!(
            problems(host, &needs, &facts),
            [
                "euw-l4a: `ip` is not installed (needed by eu-west-l4a); apt-get install iproute2 on euw-l4a",
                "euw-l4a: `bird`, `birdc` are not installed (needed by eu-west-l4a); apt-get install bird2 on euw-l4a",
            ]
        );
    }

    #[test]
    fn the_survey_script_asks_everything_in_one_session() {
        let topology = example();
        let host = topology.host("use-ns").unwrap();
        let script = survey(host, &["bin/gslb".into()], &["gtm-gslb-ns1"]);
        assert!(script.contains("sha256sum -- bin/gslb"), "{script}");
        assert!(script.contains("/var/lib/gtm/gtmctl status"), "{script}");
    }
}
