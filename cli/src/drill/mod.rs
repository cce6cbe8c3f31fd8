//! What `gtm fail` and `gtm recover` share: the question they watch (a geo
//! name, asked for a client of the region, of the deployed GSLB) and the
//! GSLB nodes' view of the region, read from their admin APIs.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use topology::{Region, Topology};

use crate::admin::{Admin, OverrideChange, RegionStatus};
use crate::clients::{Place, clients_for};
use crate::dns::{Question, ask};
use crate::error::user;
use crate::printer::Printer;
use crate::timeline::offset_ms;

use crate::deployed::Deployed;

/// The question a drill keeps asking.
#[derive(Clone, Debug, Serialize)]
pub struct Watch {
    /// The geo name, absolute.
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: &'static str,
    /// The GSLB asked.
    pub server: SocketAddr,
    /// The client it is asked for (sent as ECS).
    pub client: IpAddr,
    /// Where that client is (`United States`), when from the table.
    pub place: Option<String>,
    /// The region's VIP for `rtype`.
    pub vip: IpAddr,
}

impl Watch {
    /// `8.8.8.0/24 (United States)`.
    pub fn client_label(&self) -> String {
        let (network, prefix) = crate::dns::client_subnet(self.client);
        match &self.place {
            Some(place) => format!("{network}/{prefix} ({place})"),
            None => format!("{network}/{prefix}"),
        }
    }

    /// One query: the addresses answered.
    pub fn ask(&self, timeout: Duration) -> Result<Vec<IpAddr>, String> {
        let mut question = Question::new(self.server, &self.name, self.rtype);
        question.client = Some(self.client);
        question.timeout = timeout;
        ask(&question).map(|reply| reply.addresses())
    }
}

/// The first geo name that may answer with `region`, absolute.
pub fn geo_name_for(topology: &Topology, region: &Region) -> Option<String> {
    let id = topology.region_by_name(&region.name)?;
    topology.dns.zones.iter().find_map(|zone| {
        zone.geo
            .iter()
            .find(|g| g.regions.contains(&id))
            .map(|g| g.name.to_string())
    })
}

/// The regions as [`crate::clients`] needs them.
pub fn places(topology: &Topology) -> Vec<Place> {
    topology
        .regions
        .iter()
        .map(|r| Place {
            name: r.name.clone(),
            lat: r.location.lat,
            lon: r.location.lon,
        })
        .collect()
}

/// Sets up the watch of `region`. With `verify`, the client must get the
/// region's VIP now (a drill starts from a healthy region); a client from
/// the table that does not is skipped, and if none does it is a user error.
pub fn choose(
    deployed: &Deployed,
    region: &Region,
    from: Option<IpAddr>,
    name: Option<&str>,
    verify: bool,
) -> anyhow::Result<Watch> {
    let topology = &deployed.topology;
    let name = match name {
        Some(name) => absolute(name),
        None => geo_name_for(topology, region).ok_or_else(|| {
            user(format!(
                "no geo name answers with region {}; add it to a `geo:` entry's regions, or pass --name",
                region.name
            ))
        })?,
    };
    let (rtype, vip) = match (region.vip.ipv4, region.vip.ipv6) {
        (Some(v4), _) => ("A", IpAddr::V4(v4)),
        (None, Some(v6)) => ("AAAA", IpAddr::V6(v6)),
        (None, None) => return Err(user(format!("region {} has no VIP", region.name))),
    };
    let server = deployed
        .dns_server()
        .ok_or_else(|| user("the topology has no DNS node to ask"))?;
    let mut watch = Watch {
        name,
        rtype,
        server,
        client: IpAddr::from([0, 0, 0, 0]),
        place: None,
        vip,
    };
    if let Some(from) = from {
        watch.client = from;
        if verify {
            let answer = watch
                .ask(Duration::from_secs(2))
                .map_err(|e| anyhow::anyhow!("cannot ask the GSLB ({server}): {e}"))?;
            if !answer.contains(&vip) {
                return Err(user(format!(
                    "{} is answered {} for {}, not {}'s VIP {vip}; choose a client of {} with --from",
                    watch.name,
                    crate::deployed::describe_answer(topology, &answer),
                    watch.client_label(),
                    region.name,
                    region.name
                )));
            }
        }
        return Ok(watch);
    }
    let index = topology
        .regions
        .iter()
        .position(|r| r.name == region.name)
        .unwrap_or(0);
    let candidates = clients_for(index, &places(topology), rtype == "AAAA");
    let mut seen = Vec::new();
    for network in &candidates {
        watch.client = network.ip();
        watch.place = Some(network.place.to_owned());
        if !verify {
            return Ok(watch);
        }
        match watch.ask(Duration::from_secs(2)) {
            Ok(answer) if answer.contains(&vip) => return Ok(watch),
            Ok(answer) => seen.push(format!(
                "{} → {}",
                network.place,
                crate::deployed::describe_answer(topology, &answer)
            )),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot ask the GSLB ({server}) for {}: {e}",
                    watch.name
                ));
            }
        }
    }
    Err(user(format!(
        "no well-known client network is answered with {} now ({}); is it already out of service? \
         Check `gtm status`, or pass --from IP",
        region.name,
        seen.join(", ")
    )))
}

/// `www` → `www.` ; names are taken as absolute, as dig does.
pub fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// Each GSLB node's view of `region` (nodes without an admin API are not
/// asked).
pub fn region_views(
    admin: &Admin,
    nodes: &[(String, SocketAddr)],
    region: &str,
) -> Vec<(String, Result<RegionStatus, String>)> {
    nodes
        .iter()
        .map(|(node, addr)| {
            let view = admin
                .gslb_status(*addr)
                .map_err(|e| e.to_string())
                .and_then(|status| {
                    status
                        .regions
                        .into_iter()
                        .find(|r| r.name == region)
                        .ok_or_else(|| format!("its status has no region {region}"))
                });
            (node.clone(), view)
        })
        .collect()
}

/// The earliest probe of `view` with outcome `ok` made at or after `since`:
/// (milliseconds after `since`, vantage node, detail).
pub fn probe_after(
    view: &RegionStatus,
    ok: bool,
    since: SystemTime,
) -> Option<(f64, String, String)> {
    view.vantage
        .iter()
        .filter_map(|v| {
            let last = v.last.as_ref()?;
            if last.ok != ok {
                return None;
            }
            let at = offset_ms(last.time()?, since);
            // A little slack: the GSLB's clock stamps the end of a probe
            // that may have started just before the injection.
            (at >= -50.0).then(|| (at, v.node.clone(), last.detail.clone().unwrap_or_default()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// Warns when `node` could not save an override change to its state file.
pub(crate) fn warn_unsaved(printer: &Printer, node: &str, change: &OverrideChange) {
    if !change.persisted {
        printer.warn(format_args!(
            "{node} applied the change but did not save it: {}",
            change.warning.as_deref().unwrap_or("no reason given")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{ProbeStatus, VantageStatus};
    use crate::timeline::rfc3339;

    #[test]
    fn the_earliest_matching_probe_after_the_start_is_found() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let probe = |node: &str, ok, after_ms: i64| VantageStatus {
            node: node.into(),
            state: None,
            fresh: Some(true),
            last: Some(ProbeStatus {
                ok,
                detail: Some(if ok { "HTTP 200" } else { "connection refused" }.into()),
                latency_ms: Some(1.0),
                // ns3 sends RFC 3339, the others epoch milliseconds.
                at: (node == "ns3")
                    .then(|| rfc3339(start - Duration::from_millis(after_ms.unsigned_abs()))),
                at_ms: (node != "ns3").then(|| {
                    let start_ms = start
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap()
                        .as_millis() as i64;
                    (start_ms + after_ms) as u64
                }),
            }),
        };
        let view = RegionStatus {
            name: "us-east".into(),
            vantage: vec![
                probe("ns1", false, 2000),
                probe("ns2", false, 1000),
                probe("ns3", false, -5000),
                probe("ns4", true, 500),
            ],
            ..RegionStatus::default()
        };
        let (at, node, detail) = probe_after(&view, false, start).unwrap();
        assert_eq!((at.round(), node.as_str()), (1000.0, "ns2"));
        assert_eq!(detail, "connection refused");
        assert_eq!(probe_after(&view, true, start).unwrap().1, "ns4");
    }
}
