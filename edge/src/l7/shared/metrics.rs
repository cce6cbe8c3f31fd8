//! The L7 node's Prometheus metrics.
//!
//! Families are registered once per node; the request path never looks a
//! label set up: the handles of each route, pool and server (counters and
//! gauges are shared atomics) are resolved when a configuration is built
//! and travel inside it.

use std::sync::{Mutex, PoisonError};

use admin::api::l7 as api;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::l7::shared::tls::Expiry;

/// Status classes, in the order of the `[Counter; 5]` arrays.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index into [`CLASSES`] of `status`.
pub fn class_index(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteClass {
    route: String,
    pool: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerClass {
    pool: String,
    server: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    pool: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsErrorLabels {
    pool: String,
    server: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertLabels {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    listener: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 250µs to ~65s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 19))
}

/// Every family of one node.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RouteClass, Counter>,
    duration: HistogramFamily<RouteLabels>,
    server_requests: Family<ServerClass, Counter>,
    server_in_flight: Family<ServerLabels, Gauge>,
    server_up: Family<ServerLabels, Gauge>,
    server_ejected: Family<ServerLabels, Gauge>,
    server_ejections: Family<ServerLabels, Counter>,
    server_duration: HistogramFamily<ServerLabels>,
    server_connections: Family<ServerLabels, Gauge>,
    server_weight: Family<ServerLabels, Gauge>,
    server_drained: Family<ServerLabels, Gauge>,
    retries: Family<PoolLabels, Counter>,
    shed: Family<ShedLabels, Counter>,
    connections: Family<ListenerLabels, Counter>,
    open_connections: Family<ListenerLabels, Gauge>,
    connection_errors: Family<ErrorLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    certificate_expiry: Family<CertLabels, Gauge>,
    backend_tls_errors: Family<TlsErrorLabels, Counter>,
    /// What `certificate_expiry` shows, so unchanged sets are not re-set.
    certificates: Mutex<Vec<Expiry>>,
}

/// Handles of one route (and its pool).
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    /// Requests by status class.
    pub by_class: [Counter; 5],
    /// Time to response headers, seconds.
    pub duration: Histogram,
}

/// Handles of one server.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    /// Responses by status class (connect failures count as 5xx).
    pub by_class: [Counter; 5],
    /// Requests in flight.
    pub in_flight: Gauge,
    /// 1 while the active check says up.
    pub up: Gauge,
    /// 1 while passively ejected.
    pub ejected: Gauge,
    /// Ejections so far.
    pub ejections: Counter,
    /// Time to the server's response headers, seconds.
    pub duration: Histogram,
    /// Open connections to it (see [`Held`]).
    pub connections: Gauge,
    /// The weight in use.
    pub weight: Gauge,
    /// 1 while the operator has it drained.
    pub drained: Gauge,
}

/// Holds a gauge one higher while it lives: an open backend connection
/// carries one, so the server's connection gauge counts them on either
/// HTTP path, however the connection ends.
#[derive(Debug)]
pub struct Held(Gauge);

impl Held {
    /// Raises `gauge` until the returned value drops.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Registers every family in `registry` under the `edge_l7` prefix
    /// ([`api::METRICS_PREFIX`]; `gtm` reads [`api::REQUESTS_TOTAL`]).
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            server_requests: Family::default(),
            server_in_flight: Family::default(),
            server_up: Family::default(),
            server_ejected: Family::default(),
            server_ejections: Family::default(),
            server_duration: Family::new_with_constructor(latency_histogram),
            server_connections: Family::default(),
            server_weight: Family::default(),
            server_drained: Family::default(),
            retries: Family::default(),
            shed: Family::default(),
            connections: Family::default(),
            open_connections: Family::default(),
            connection_errors: Family::default(),
            reloads: Family::default(),
            certificate_expiry: Family::default(),
            backend_tls_errors: Family::default(),
            certificates: Mutex::new(Vec::new()),
        };
        let r = registry.sub_registry_with_prefix(api::METRICS_PREFIX);
        r.register(
            api::REQUESTS,
            "Requests answered, by route, pool and status class",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from request to response headers, by route and pool",
            m.duration.clone(),
        );
        r.register(
            "server_responses",
            "Upstream attempts by server and status class (connect failures are 5xx)",
            m.server_requests.clone(),
        );
        r.register(
            "server_in_flight_requests",
            "Requests in flight per server",
            m.server_in_flight.clone(),
        );
        r.register(
            "server_up",
            "1 while the server's active health check passes",
            m.server_up.clone(),
        );
        r.register(
            "server_ejected",
            "1 while the server is ejected for consecutive failures",
            m.server_ejected.clone(),
        );
        r.register(
            "server_ejections",
            "Passive outlier ejections per server",
            m.server_ejections.clone(),
        );
        r.register(
            "server_response_duration_seconds",
            "Time from sending a request to the server to its response headers, per server",
            m.server_duration.clone(),
        );
        r.register(
            "server_active_connections",
            "Open connections to each server, idle or carrying requests",
            m.server_connections.clone(),
        );
        r.register(
            "server_weight",
            "The weight each server balances with: the operator's if set, else the configured one",
            m.server_weight.clone(),
        );
        r.register(
            "server_drained",
            "1 while an operator has drained the server (no new requests)",
            m.server_drained.clone(),
        );
        r.register(
            "retries",
            "Retried upstream attempts per pool",
            m.retries.clone(),
        );
        r.register(
            "shed_requests",
            "Requests refused by load shedding or rate limiting, by listener and reason",
            m.shed.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted per listener",
            m.connections.clone(),
        );
        r.register(
            "open_connections",
            "Client connections open per listener",
            m.open_connections.clone(),
        );
        r.register(
            "connection_errors",
            "Client connections closed before HTTP: bad PROXY header, TLS handshake, per-client cap",
            m.connection_errors.clone(),
        );
        r.register(
            "reloads",
            "Configuration reloads by result",
            m.reloads.clone(),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When each served certificate expires (notAfter, Unix time), by its first DNS name",
            m.certificate_expiry.clone(),
        );
        r.register(
            "backend_tls_errors",
            "Failed TLS handshakes with backend servers, by pool, server and reason",
            m.backend_tls_errors.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        r.register(
            "build_info",
            "Always 1; the version of the running edge",
            build.clone(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        m
    }

    /// Sets the expiry gauges to the certificates served now (and drops
    /// those of certificates no longer served).
    pub fn set_certificates(&self, expiries: &[Expiry]) {
        let mut shown = self
            .certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *shown == expiries {
            return;
        }
        expiries.clone_into(&mut shown);
        self.certificate_expiry.clear();
        for expiry in expiries {
            self.certificate_expiry
                .get_or_create(&CertLabels {
                    name: expiry.name.clone(),
                })
                .set(expiry.not_after);
        }
    }

    /// Handles for route `route` (its label) sending to pool `pool`.
    pub fn route(&self, route: &str, pool: &str) -> RouteMetrics {
        RouteMetrics {
            by_class: CLASSES.map(|class| {
                self.requests.get_or_create_owned(&RouteClass {
                    route: route.to_owned(),
                    pool: pool.to_owned(),
                    class,
                })
            }),
            duration: self.duration.get_or_create_owned(&RouteLabels {
                route: route.to_owned(),
                pool: pool.to_owned(),
            }),
        }
    }

    /// Handles for server `server` of pool `pool`.
    pub fn server(&self, pool: &str, server: &str) -> ServerMetrics {
        let labels = ServerLabels {
            pool: pool.to_owned(),
            server: server.to_owned(),
        };
        ServerMetrics {
            by_class: CLASSES.map(|class| {
                self.server_requests.get_or_create_owned(&ServerClass {
                    pool: pool.to_owned(),
                    server: server.to_owned(),
                    class,
                })
            }),
            in_flight: self.server_in_flight.get_or_create_owned(&labels),
            up: self.server_up.get_or_create_owned(&labels),
            ejected: self.server_ejected.get_or_create_owned(&labels),
            ejections: self.server_ejections.get_or_create_owned(&labels),
            duration: self.server_duration.get_or_create_owned(&labels),
            connections: self.server_connections.get_or_create_owned(&labels),
            weight: self.server_weight.get_or_create_owned(&labels),
            drained: self.server_drained.get_or_create_owned(&labels),
        }
    }

    /// Forgets the series of a server no longer configured.
    pub fn remove_server(&self, pool: &str, server: &str) {
        let labels = ServerLabels {
            pool: pool.to_owned(),
            server: server.to_owned(),
        };
        for class in CLASSES {
            self.server_requests.remove(&ServerClass {
                pool: pool.to_owned(),
                server: server.to_owned(),
                class,
            });
        }
        self.server_in_flight.remove(&labels);
        self.server_up.remove(&labels);
        self.server_ejected.remove(&labels);
        self.server_ejections.remove(&labels);
        self.server_duration.remove(&labels);
        self.server_connections.remove(&labels);
        self.server_weight.remove(&labels);
        self.server_drained.remove(&labels);
    }

    /// The retry counter of `pool`.
    pub fn retries(&self, pool: &str) -> Counter {
        self.retries.get_or_create_owned(&PoolLabels {
            pool: pool.to_owned(),
        })
    }

    /// Counts one refused request.
    pub fn shed(&self, listener: &'static str, reason: &'static str) {
        self.shed
            .get_or_create(&ShedLabels { listener, reason })
            .inc();
    }

    /// The accepted-connections counter and open-connections gauge.
    pub fn listener(&self, listener: &'static str) -> (Counter, Gauge) {
        let labels = ListenerLabels { listener };
        (
            self.connections.get_or_create_owned(&labels),
            self.open_connections.get_or_create_owned(&labels),
        )
    }

    /// Counts a connection closed before HTTP started.
    pub fn connection_error(&self, listener: &'static str, kind: &'static str) {
        self.connection_errors
            .get_or_create(&ErrorLabels { listener, kind })
            .inc();
    }

    /// Counts a failed TLS handshake with `server` of `pool`.
    pub fn backend_tls_error(&self, pool: &str, server: &str, reason: &'static str) {
        self.backend_tls_errors
            .get_or_create(&TlsErrorLabels {
                pool: pool.to_owned(),
                server: server.to_owned(),
                reason,
            })
            .inc();
    }

    /// Counts a reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_the_registered_series() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let route = metrics.route("*/", "web");
        route.by_class[class_index(204)].inc();
        route.duration.observe(0.002);
        metrics.server("web", "127.0.0.1:9000").ejections.inc();
        metrics.shed("http", "rate_limit");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("edge_l7_requests_total{route=\"*/\",pool=\"web\",class=\"2xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "edge_l7_server_ejections_total{pool=\"web\",server=\"127.0.0.1:9000\"} 1"
            )
        );
        assert!(
            text.contains("edge_l7_shed_requests_total{listener=\"http\",reason=\"rate_limit\"} 1")
        );
        assert!(
            text.contains("edge_l7_request_duration_seconds_count{route=\"*/\",pool=\"web\"} 1")
        );
    }

    /// `gtm status` sums this counter into a region's request rate; it once
    /// summed `gtm_l7_requests_total`, which no node exports, and showed
    /// no traffic.
    #[test]
    fn gtm_reads_the_request_counter_a_node_exports() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        let route = metrics.route("*/", "web");
        route.by_class[class_index(200)].inc_by(3);
        route.by_class[class_index(503)].inc();
        metrics.route("*/api", "api").by_class[class_index(200)].inc();
        let (_, page) = admin::metrics::render(&registry, None).unwrap();
        assert_eq!(
            admin::metrics::counter_sum(&page, api::REQUESTS_TOTAL),
            Some(5.0),
            "{page}"
        );
    }

    #[test]
    fn classes() {
        assert_eq!(class_index(101), 0);
        assert_eq!(class_index(200), 1);
        assert_eq!(class_index(404), 3);
        assert_eq!(class_index(503), 4);
        assert_eq!(class_index(999), 4);
    }
}
