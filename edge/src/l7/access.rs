//! The end of every request, whichever HTTP path served it: one access
//! log line and the route's metrics, from a [`Record`] kept along the way.

use std::net::SocketAddr;

use http::{HeaderValue, Version};
use tokio::time::Instant;
use tracing::info;

use super::context::{ListenerKind, Shared};
use super::fault::Fault;
use super::metrics::class_index;
use super::state::Snapshot;

/// Target of the access log: one line per request at `info`, so it can be
/// filtered (`RUST_LOG=info,gtm::access=off`) or routed on its own.
pub const ACCESS_LOG: &str = "gtm::access";

/// What the access log line and the metrics need about one request.
#[derive(Debug)]
pub struct Record {
    /// When the request's head had been read.
    pub started: Instant,
    /// The matched rule.
    pub route: Option<usize>,
    /// Its pool.
    pub pool: Option<usize>,
    /// The server of the last attempt.
    pub server: Option<SocketAddr>,
    /// Attempts made.
    pub attempts: u32,
    /// The request id sent to the backend.
    pub request_id: Option<HeaderValue>,
    /// Why the proxy answered itself, if it did.
    pub fault: Option<Fault>,
    /// Some attempt was picked with every server down.
    pub fail_open: bool,
}

impl Record {
    /// A record for a request whose head was just read.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            route: None,
            pool: None,
            server: None,
            attempts: 0,
            request_id: None,
            fault: None,
            fail_open: false,
        }
    }

    /// Notes that the proxy answers `fault` itself (and counts the load
    /// it sheds).
    pub(crate) fn fault(&mut self, fault: Fault, shared: &Shared, listener: ListenerKind) {
        self.fault = Some(fault);
        if let Some(reason) = fault.shed() {
            shared.metrics.shed(listener.name(), reason);
        }
    }
}

/// What the request said, as the access log shows it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The client.
    pub client: SocketAddr,
    /// The listener it came in on.
    pub listener: ListenerKind,
    /// The method.
    pub method: &'a str,
    /// The host it asked for, if any.
    pub host: Option<&'a str>,
    /// The path and query (origin form).
    pub path_and_query: &'a str,
    /// The protocol version.
    pub version: Version,
}

/// Counts the request in its route's metrics and writes its access log
/// line, once its answer's `status` is known.
pub fn finish(record: &Record, asked: &Asked<'_>, status: u16, snapshot: &Snapshot) {
    let elapsed = record.started.elapsed();
    let route_metrics = record
        .route
        .and_then(|r| snapshot.routes.get(r))
        .unwrap_or(&snapshot.unrouted);
    route_metrics.by_class[class_index(status)].inc();
    route_metrics.duration.observe(elapsed.as_secs_f64());
    let tier = &snapshot.spec.tier;
    info!(
        target: ACCESS_LOG,
        client = %asked.client,
        listener = asked.listener.name(),
        method = asked.method,
        host = asked.host.unwrap_or("-"),
        uri = asked.path_and_query,
        version = ?asked.version,
        status,
        route = record.route.and_then(|r| snapshot.router.rules().get(r)).map_or("-", |r| r.label.as_str()),
        pool = record.pool.and_then(|p| tier.pools.get(p)).map_or("-", |p| p.name.as_str()),
        server = %record.server.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        attempts = record.attempts,
        fail_open = record.fail_open,
        duration_us = elapsed.as_micros() as u64,
        request_id = record.request_id.as_ref().and_then(|h| h.to_str().ok()).unwrap_or("-"),
        fault = record.fault.map_or("-", Fault::reason),
        fault_source = record.fault.map_or("-", |f| f.source().label()),
        "request"
    );
}
