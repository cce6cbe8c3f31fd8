//! Load telemetry for spill-over: every GSLB node asks the edge nodes of
//! each region that declares a capacity for their figures, turns them
//! into the region's load, steps the spill share's controller
//! ([`crate::spill::next_share`]) and hands both to the
//! [`Monitor`](crate::monitor::Monitor),
//! which publishes them in the health view, the status and the metrics.
//!
//! It runs beside the health probes, on the shortest probe interval of
//! those regions, rather than inside them: probes go to the VIP through
//! the `probe` crate, while the figures come from each edge node's admin
//! API, fetched as the status page does ([`crate::console::edges`]).
//!
//! Fail-static: a region whose figures are missing (a node unreachable,
//! a counter reset) or older than [`STALE_INTERVALS`] intervals spills
//! nothing and receives no spill; its share starts again from 0 when the
//! figures return. Changes of that state are logged once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use admin::api::gslb as api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use topology::{Capacity, LoadUnit, Region, Topology};
use tracing::{info, warn};

use crate::console::edges::{self, Edge, Kind};
use crate::health::{Load, RegionLoad, SHARE_SCALE};
use crate::node::Node;
use crate::spill::next_share;

/// Figures older than this many sampling intervals are stale.
pub const STALE_INTERVALS: u32 = 3;
/// How often the loop looks again when no region declares a capacity.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// What one region's edge nodes gave in one sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// The sum of their request counters (for `requests_per_second`).
    Counter(f64),
    /// The sum of their open client connections (for `connections`).
    Gauge(f64),
    /// Why the region's figures could not be read.
    Failed(String),
}

/// One region's telemetry between samples.
#[derive(Clone, Debug)]
pub struct Tracker {
    capacity: Capacity,
    /// The last counter reading and when it was taken.
    counter: Option<(f64, Instant)>,
    /// The last load measured and when.
    load: Option<(f64, Instant)>,
    share: f64,
    error: Option<String>,
}

impl Tracker {
    /// A region with `capacity` and no figures yet.
    pub fn new(capacity: Capacity) -> Tracker {
        Tracker {
            capacity,
            counter: None,
            load: None,
            share: 0.0,
            error: None,
        }
    }

    /// Takes the sample `reading` made at `now`, with figures older than
    /// `max_age` counting as stale: a new load steps the controller; no
    /// fresh load resets the share to 0.
    pub fn observe(&mut self, reading: Reading, now: Instant, max_age: Duration) {
        let measured = match reading {
            Reading::Gauge(open) => Some(open),
            Reading::Counter(total) => {
                let rate = match self.counter {
                    Some((before, at)) if total >= before && now > at => {
                        Some((total - before) / now.duration_since(at).as_secs_f64())
                    }
                    // First reading, or a node restarted and its counter
                    // began again: a rate from the next pair.
                    _ => None,
                };
                self.counter = Some((total, now));
                rate
            }
            Reading::Failed(error) => {
                self.counter = None;
                self.error = Some(error);
                None
            }
        };
        if let Some(load) = measured {
            self.error = None;
            self.load = Some((load, now));
            self.share = next_share(self.share, load, self.capacity.target_load());
        } else if self.fresh_load(now, max_age).is_none() {
            self.share = 0.0;
        }
    }

    fn fresh_load(&self, now: Instant, max_age: Duration) -> Option<f64> {
        self.load
            .filter(|(_, at)| now.duration_since(*at) <= max_age)
            .map(|(load, _)| load)
    }

    /// The load as the health view holds it.
    pub fn view(&self, now: Instant, max_age: Duration) -> RegionLoad {
        match self.fresh_load(now, max_age) {
            None => RegionLoad::Unknown,
            Some(current) => RegionLoad::Measured(Load {
                unit: self.capacity.unit,
                current: current.round() as u64,
                target: self.capacity.target_load().round() as u64,
                share: (self.share * f64::from(SHARE_SCALE)).round() as u16,
            }),
        }
    }

    /// The load as the admin API shows it.
    pub fn status(&self, now: Instant, max_age: Duration) -> api::Load {
        let current = self.fresh_load(now, max_age);
        api::Load {
            unit: self.capacity.unit.as_str().to_owned(),
            capacity: self.capacity.limit,
            target: self.capacity.target_load(),
            current,
            share: self.share,
            telemetry: match (current, self.load) {
                (Some(_), _) => "fresh",
                (None, Some(_)) => "stale",
                (None, None) => "missing",
            }
            .to_owned(),
            error: self.error.clone(),
        }
    }
}

/// Reads `region`'s figures out of the `edges` gathered: the L7 nodes'
/// request counters, or the client connections open on its L4 nodes (its
/// L7 nodes when it has no L4 tier). Every node counted must have
/// answered: a partial sum would understate the load.
pub fn reading(region: &Region, unit: LoadUnit, edges: &[Edge]) -> Reading {
    let kind = match unit {
        LoadUnit::RequestsPerSecond => Kind::L7,
        LoadUnit::Connections if region.l4.is_some() => Kind::L4,
        LoadUnit::Connections => Kind::L7,
    };
    let nodes: Vec<&Edge> = edges
        .iter()
        .filter(|e| e.region == region.name && e.kind == kind)
        .collect();
    if nodes.is_empty() {
        return Reading::Failed(format!(
            "the region has no {} nodes to measure its load on; add an `{}:` tier or remove `capacity:`",
            kind.as_str(),
            kind.as_str().to_lowercase()
        ));
    }
    let mut sum = 0.0;
    for node in nodes {
        match (&node.metrics, &node.unreachable) {
            (Some(figures), None) => {
                sum += match unit {
                    LoadUnit::RequestsPerSecond => figures.requests_total,
                    LoadUnit::Connections => figures.open_connections,
                };
            }
            (_, unreachable) => {
                return Reading::Failed(format!(
                    "{} node {} ({}): {}",
                    kind.as_str(),
                    node.name,
                    node.admin,
                    unreachable.as_deref().unwrap_or("no figures")
                ));
            }
        }
    }
    match unit {
        LoadUnit::RequestsPerSecond => Reading::Counter(sum),
        LoadUnit::Connections => Reading::Gauge(sum),
    }
}

/// The sampling interval for `topology`: the shortest probe interval of
/// the regions that declare a capacity; `None` when none does.
pub fn interval(topology: &Topology) -> Option<Duration> {
    topology
        .regions
        .iter()
        .filter(|r| r.capacity.is_some())
        .map(|r| r.health.interval)
        .min()
}

/// Samples the regions' load and publishes it through `node`'s monitor
/// until `shutdown`.
pub async fn track(node: Arc<Node>, shutdown: CancellationToken) {
    let client = probe::plain_http_client().timeout(edges::TIMEOUT).build();
    if let Err(error) = &client {
        warn!("cannot build the HTTP client for load telemetry; no region will spill: {error}");
    }
    let client = client.map_err(|e| e.to_string());
    let mut trackers: HashMap<String, Tracker> = HashMap::new();
    let mut logged: HashMap<String, String> = HashMap::new();
    loop {
        let topology = node.topology();
        let period = interval(&topology);
        let wait = period.unwrap_or(IDLE_CHECK);
        if let Some(period) = period {
            let edges = edges::gather(
                client.as_ref().map_err(String::as_str),
                &topology,
                |region| region.capacity.is_some(),
            )
            .await;
            let now = Instant::now();
            let max_age = period * STALE_INTERVALS;
            trackers.retain(|name, tracker| {
                topology
                    .regions
                    .iter()
                    .any(|r| r.name == *name && r.capacity == Some(tracker.capacity))
            });
            let mut loads = Vec::new();
            for region in &topology.regions {
                let Some(capacity) = region.capacity else {
                    continue;
                };
                let tracker = trackers
                    .entry(region.name.clone())
                    .or_insert_with(|| Tracker::new(capacity));
                tracker.observe(reading(region, capacity.unit, &edges), now, max_age);
                let status = tracker.status(now, max_age);
                log_change(&region.name, &status, &mut logged);
                loads.push((region.name.clone(), tracker.view(now, max_age), status));
            }
            logged.retain(|name, _| trackers.contains_key(name));
            node.monitor.set_loads(loads);
        } else if !trackers.is_empty() {
            trackers.clear();
            logged.clear();
            node.monitor.set_loads(Vec::new());
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Logs a region's telemetry state and whether it spills, once per change.
fn log_change(region: &str, status: &api::Load, logged: &mut HashMap<String, String>) {
    let state = match (status.telemetry.as_str(), status.share > 0.0) {
        ("fresh", true) => "spilling",
        (telemetry, _) => telemetry,
    };
    let before = logged.insert(region.to_owned(), state.to_owned());
    if before.as_deref() == Some(state) {
        return;
    }
    match state {
        "spilling" => info!(
            %region,
            load = status.current,
            target = status.target,
            share = status.share,
            "region over its capacity target: a share of its clients is answered with the next region that has room"
        ),
        "fresh" if before.is_some() => {
            info!(%region, load = status.current, target = status.target, "region load telemetry fresh; no spill-over")
        }
        "fresh" => {}
        _ => warn!(
            %region,
            telemetry = %status.telemetry,
            error = status.error.as_deref().unwrap_or("-"),
            "region load telemetry {}: the region neither spills nor receives spilled clients until it returns (fail-static)",
            status.telemetry
        ),
    }
}

#[cfg(test)]
mod tests;
