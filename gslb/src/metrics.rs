//! The GSLB's Prometheus metrics: queries by type, rcode and answered
//! region; how clients were located; probe results, latency and
//! transitions; each vantage point's view and the quorum per region;
//! region service changes (also kept, the latest few, for the status
//! page); config reloads; peer views believed and refused; replies held
//! back by rate limiting; each region's load and spill share; the build.
//!
//! One [`Metrics`] per node, shared by the query path, the monitor and the
//! reloader, and served by the admin API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use probe::ProbeResult;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use topology::RecordType;

use crate::console::changes::Changes;
use crate::peer::Refusal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: &'static str,
    rcode: &'static str,
    region: String,
}

/// The metric label of a query type.
fn qtype_label(qtype: u16) -> &'static str {
    RecordType::from_code(qtype).map_or("OTHER", RecordType::as_str)
}

/// The metric label of a response code the lookup gives (0, 3 or 5).
fn rcode_label(rcode: u16) -> &'static str {
    match rcode {
        3 => "NXDOMAIN",
        5 => "REFUSED",
        _ => "NOERROR",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabels {
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VantageLabels {
    vantage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VantageRegionLabels {
    vantage: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    region: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    region: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    peer: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The node's metrics.
pub struct Metrics {
    registry: Arc<Registry>,
    queries_total: AtomicU64,
    queries: Family<QueryLabels, Counter>,
    client_source: Family<SourceLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    probe_latency: Family<RegionLabels, Histogram>,
    probe_transitions: Family<RegionLabels, Counter>,
    region_in_service: Family<RegionLabels, Gauge>,
    vantage_region_up: Family<VantageRegionLabels, Gauge>,
    region_up: Family<RegionLabels, Gauge>,
    vantage_suspect: Family<VantageLabels, Gauge>,
    region_transitions: Family<TransitionLabels, Counter>,
    reloads: Family<OutcomeLabels, Counter>,
    peer_views_accepted: Family<PeerLabels, Counter>,
    peer_views_refused: Family<RefusedLabels, Counter>,
    rate_limited: Family<ActionLabels, Counter>,
    region_load: Family<RegionLabels, Gauge<f64, AtomicU64>>,
    region_spill_share: Family<RegionLabels, Gauge<f64, AtomicU64>>,
    changes: Changes,
}

/// What rate limiting did with a reply it held back: dropped it, or sent
/// it truncated (a slip, so a real client retries over TCP).
const RATE_LIMIT_ACTIONS: [&str; 2] = ["drop", "slip"];

impl Metrics {
    /// A fresh set of metrics with its registry.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("gslb");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "queries",
            "DNS queries answered, by query type, response code and the region answered (empty for static data)",
            queries.clone(),
        );
        let client_source = Family::<SourceLabels, Counter>::default();
        registry.register(
            "geo_decisions",
            "Geo answers by where the client address came from (ecs or resolver)",
            client_source.clone(),
        );
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("probes", "Health probe results by region", probes.clone());
        let probe_latency = Family::<RegionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        });
        registry.register(
            "probe_latency_seconds",
            "Health probe latency by region",
            probe_latency.clone(),
        );
        let probe_transitions = Family::<RegionLabels, Counter>::default();
        registry.register(
            "probe_transitions",
            "Up/down changes of this node's own probe state, by region",
            probe_transitions.clone(),
        );
        let region_in_service = Family::<RegionLabels, Gauge>::default();
        registry.register(
            "region_in_service",
            "1 when the region may be answered (quorum up and no override), else 0",
            region_in_service.clone(),
        );
        let vantage_region_up = Family::<VantageRegionLabels, Gauge>::default();
        registry.register(
            "vantage_region_up",
            "1 when the vantage point (this node or a peer) sees the region up, else 0; only fresh views, which vote",
            vantage_region_up.clone(),
        );
        let region_up = Family::<RegionLabels, Gauge>::default();
        registry.register(
            "region_up",
            "1 when the quorum of fresh vantage views says the region is up, else 0 (overrides aside: see region_in_service)",
            region_up.clone(),
        );
        let vantage_suspect = Family::<VantageLabels, Gauge>::default();
        registry.register(
            "vantage_suspect",
            "1 while the vantage point's votes are set aside: it sees nearly every region down while others do not (dns.breaker)",
            vantage_suspect.clone(),
        );
        let region_transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "region_transitions",
            "Changes of a region's service state, by direction",
            region_transitions.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Topology reloads by outcome",
            reloads.clone(),
        );
        let peer_views_accepted = Family::<PeerLabels, Counter>::default();
        registry.register(
            "peer_views_accepted",
            "Peer views that passed the checks and were counted, by peer",
            peer_views_accepted.clone(),
        );
        let peer_views_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "peer_views_refused",
            "Peer views refused (unsigned, bad_signature, wrong_node, malformed), by peer and reason",
            peer_views_refused.clone(),
        );
        let rate_limited = Family::<ActionLabels, Counter>::default();
        registry.register(
            "rrl_replies",
            "Replies held back by response rate limiting, by action (drop, slip)",
            rate_limited.clone(),
        );
        for action in RATE_LIMIT_ACTIONS {
            // Present from the start, so a rate over them is 0, not absent.
            let _ = rate_limited.get_or_create(&ActionLabels { action });
        }
        let region_load = Family::<RegionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "region_load",
            "A region's load measured from its edge nodes (requests/s or open connections, as its capacity is declared); absent while its telemetry is missing or stale",
            region_load.clone(),
        );
        let region_spill_share = Family::<RegionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "region_spill_share",
            "Share (0 to 1) of a region's clients answered with another region because it runs over its capacity target",
            region_spill_share.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the version of the running gslb",
            build.clone(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Arc::new(Metrics {
            registry: Arc::new(registry),
            queries_total: AtomicU64::new(0),
            queries,
            client_source,
            probes,
            probe_latency,
            probe_transitions,
            region_in_service,
            vantage_region_up,
            region_up,
            vantage_suspect,
            region_transitions,
            reloads,
            peer_views_accepted,
            peer_views_refused,
            rate_limited,
            region_load,
            region_spill_share,
            changes: Changes::default(),
        })
    }

    /// The recent region transitions, for the status page.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The registry, for the admin API's `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Queries answered since start, all labels together.
    pub fn queries_total(&self) -> u64 {
        self.queries_total.load(Ordering::Relaxed)
    }

    /// Counts `n` answered queries of type `qtype` that got response code
    /// `rcode` (0, 3 or 5: the lookup's outcomes), answered from `region`.
    pub fn record_queries(&self, qtype: u16, rcode: u16, region: Option<&str>, n: u64) {
        self.queries_total.fetch_add(n, Ordering::Relaxed);
        self.queries
            .get_or_create(&QueryLabels {
                qtype: qtype_label(qtype),
                rcode: rcode_label(rcode),
                region: region.unwrap_or_default().to_owned(),
            })
            .inc_by(n);
    }

    /// Counts `n` geo decisions by where the client address came from.
    pub fn record_client_sources(&self, from_ecs: bool, n: u64) {
        self.client_source
            .get_or_create(&SourceLabels {
                source: if from_ecs { "ecs" } else { "resolver" },
            })
            .inc_by(n);
    }

    /// Counts one probe result.
    pub fn record_probe(&self, region: &str, result: &ProbeResult, transition: bool) {
        let m = self;
        m.probes
            .get_or_create(&ProbeLabels {
                region: region.to_owned(),
                result: if result.ok { "ok" } else { "fail" },
            })
            .inc();
        let labels = RegionLabels {
            region: region.to_owned(),
        };
        m.probe_latency
            .get_or_create(&labels)
            .observe(result.latency.as_secs_f64());
        if transition {
            m.probe_transitions.get_or_create(&labels).inc();
        }
    }

    /// Records whether a region is in service.
    pub fn set_region_in_service(&self, region: &str, in_service: bool) {
        self.region_in_service
            .get_or_create(&RegionLabels {
                region: region.to_owned(),
            })
            .set(i64::from(in_service));
    }

    /// Records what `vantage` says of `region`: `None` when its view is
    /// stale and does not vote (the series goes away).
    pub fn set_vantage_region_up(&self, vantage: &str, region: &str, up: Option<bool>) {
        let labels = VantageRegionLabels {
            vantage: vantage.to_owned(),
            region: region.to_owned(),
        };
        match up {
            Some(up) => {
                self.vantage_region_up
                    .get_or_create(&labels)
                    .set(i64::from(up));
            }
            None => {
                self.vantage_region_up.remove(&labels);
            }
        }
    }

    /// Records `region`'s load (`None`: telemetry missing or stale, the
    /// series goes away) and its spill share.
    pub fn set_region_load(&self, region: &str, load: Option<f64>, share: f64) {
        let labels = RegionLabels {
            region: region.to_owned(),
        };
        match load {
            Some(load) => {
                self.region_load.get_or_create(&labels).set(load);
            }
            None => {
                self.region_load.remove(&labels);
            }
        }
        self.region_spill_share.get_or_create(&labels).set(share);
    }

    /// Records the quorum's verdict on `region`.
    pub fn set_region_up(&self, region: &str, up: bool) {
        self.region_up
            .get_or_create(&RegionLabels {
                region: region.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Records whether `vantage`'s votes are set aside.
    pub fn set_vantage_suspect(&self, vantage: &str, suspect: bool) {
        self.vantage_suspect
            .get_or_create(&VantageLabels {
                vantage: vantage.to_owned(),
            })
            .set(i64::from(suspect));
    }

    /// Counts a change of a region's service state, and keeps it for the
    /// status page.
    pub fn record_region_transition(&self, region: &str, in_service: bool) {
        self.changes
            .record(std::time::SystemTime::now(), region, in_service);
        self.region_transitions
            .get_or_create(&TransitionLabels {
                region: region.to_owned(),
                to: if in_service { "in" } else { "out" },
            })
            .inc();
    }

    /// Counts a reload attempt.
    pub fn record_reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts replies rate limiting dropped and sent truncated (slipped).
    pub fn record_rate_limited(&self, dropped: u64, slipped: u64) {
        for (action, n) in RATE_LIMIT_ACTIONS.into_iter().zip([dropped, slipped]) {
            self.rate_limited
                .get_or_create(&ActionLabels { action })
                .inc_by(n);
        }
    }

    /// Counts a peer view, believed (`None`) or refused.
    pub fn record_peer_view(&self, peer: &str, refusal: Option<Refusal>) {
        match refusal {
            None => self.peer_views_accepted.get_or_create(&PeerLabels {
                peer: peer.to_owned(),
            }),
            Some(refusal) => self.peer_views_refused.get_or_create(&RefusedLabels {
                peer: peer.to_owned(),
                reason: refusal.as_str(),
            }),
        }
        .inc();
    }
}
