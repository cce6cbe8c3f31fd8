//! What `gtm fail` and `gtm recover` share: the question they watch (a geo
//! name, asked for a client of the region, of the deployed GSLB), the GSLB
//! nodes' view of the region, read from their admin APIs, the polling
//! loop that feeds both to the [`watcher`], and the [`traffic`] of a client
//! of that network, whose requests show when traffic moved.

pub mod traffic;
pub mod watcher;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use topology::{Region, Topology};

use crate::admin::{Admin, OverrideChange, RegionStatus};
use crate::clients::{Place, clients_for};
use crate::dns::{Question, ask};
use crate::error::user;
use crate::printer::Printer;

use traffic::{Summary, Traffic};
use watcher::{Direction, Watcher};

/// How often DNS and the GSLB's status are read during a drill.
const WATCH_EVERY: Duration = Duration::from_millis(100);

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

/// A drill under way: the question watched, the GSLB nodes asked, and
/// when it started.
pub struct Drill<'a> {
    /// The question watched.
    pub watch: Watch,
    /// The admin API client.
    pub admin: &'a Admin,
    /// The GSLB nodes with an admin API.
    pub gslbs: &'a [(String, SocketAddr)],
    /// Raised by Ctrl-C: stop watching.
    pub interrupted: Arc<AtomicBool>,
    /// The watched network's client sending requests, when the region
    /// serves HTTP.
    traffic: Option<Traffic>,
    start: SystemTime,
    t0: Instant,
}

impl<'a> Drill<'a> {
    /// A drill starting now.
    pub fn begin(
        watch: Watch,
        admin: &'a Admin,
        gslbs: &'a [(String, SocketAddr)],
        interrupted: Arc<AtomicBool>,
    ) -> Drill<'a> {
        Drill {
            watch,
            admin,
            gslbs,
            interrupted,
            traffic: None,
            start: SystemTime::now(),
            t0: Instant::now(),
        }
    }

    /// Also sends HTTP requests as a client of the watched network, from
    /// now on, when `region` has an L7 tier to answer them.
    pub fn with_traffic(mut self, topology: &Topology, region: &Region) -> Drill<'a> {
        if region.l7.is_some() {
            self.traffic = Some(Traffic::start(&self.watch, topology, self.t0));
        }
        self
    }

    /// What the client's requests did, for a drill moving clients
    /// `direction` from or to `region`.
    pub fn traffic(&self, direction: Direction, region: &str) -> Option<Summary> {
        let client = self.watch.client_label();
        self.traffic
            .as_ref()
            .map(|t| t.summary(direction, region, &client))
    }

    /// Time since the drill began.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Watches the answers move in `direction` (`probes`: the region's
    /// probes must change their verdict too): feeds a [`Watcher`] the
    /// answers and the GSLB nodes' views of `region`, every
    /// [`WATCH_EVERY`], until it is done and the traffic (if any) moved
    /// too, or Ctrl-C. Bounded: `timeout` after the drill began when the
    /// answers have not moved, that plus the longest TTL the client held
    /// when only its traffic has not.
    pub fn follow(
        &self,
        direction: Direction,
        region: &str,
        probes: bool,
        timeout: Duration,
    ) -> Watcher {
        let mut watcher = Watcher::new(
            direction,
            region,
            &self.watch,
            self.start,
            !self.gslbs.is_empty(),
            probes,
        );
        while !self.interrupted.load(Ordering::Relaxed) {
            watcher.answer(self.elapsed(), self.watch.ask(Duration::from_millis(500)));
            if watcher.wants_views() {
                for (node, view) in region_views(self.admin, self.gslbs, region) {
                    if let Ok(view) = view {
                        watcher.view(self.elapsed(), &node, &view);
                    }
                }
            }
            let traffic = self.traffic.as_ref();
            let moved = |t: &Traffic| t.summary(direction, region, "").moved_after_ms.is_some();
            if watcher.done() && traffic.is_none_or(moved) {
                break;
            }
            let ttl = traffic.and_then(Traffic::ttl).unwrap_or(0);
            let bound = if watcher.done() {
                timeout + Duration::from_secs(ttl.into())
            } else {
                timeout
            };
            if self.elapsed() > bound {
                break;
            }
            std::thread::sleep(WATCH_EVERY);
        }
        watcher
    }
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
