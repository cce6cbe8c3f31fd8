//! The end of every request, whichever HTTP path served it: one access
//! log line — text through `tracing`, or a JSON object on stdout, as
//! `l7.access_log.format` says — and the route's metrics, from a
//! [`Record`] kept along the way.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Version};
use serde::Serialize;
use tokio::time::Instant;
use topology::tiers::l7::AccessLogFormat;
use tracing::{debug, info};

use crate::l7::rules::fault::Fault;
use crate::l7::shared::context::{ListenerKind, Shared};
use crate::l7::shared::metrics::class_index;
use crate::l7::shared::state::Snapshot;

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

/// One access log entry: the fields of both formats, in this order.
/// `"-"` (text) or `null` (JSON) stands for an absent value.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// When the request ended, Unix milliseconds.
    pub time_ms: u64,
    /// The client's address (from the PROXY header behind an L4 tier).
    pub client: SocketAddr,
    /// `http` or `https`.
    pub listener: &'static str,
    /// The method.
    pub method: &'a str,
    /// The host asked for.
    pub host: Option<&'a str>,
    /// Path and query as the client sent them.
    pub uri: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub version: String,
    /// The status sent to the client.
    pub status: u16,
    /// The matched rule.
    pub route: Option<&'a str>,
    /// Its pool.
    pub pool: Option<&'a str>,
    /// The server of the last attempt.
    pub server: Option<SocketAddr>,
    /// Attempts made (retries are the rest).
    pub attempts: u32,
    /// Some attempt was picked with the pool failing open.
    pub fail_open: bool,
    /// Time from the request's head to the end of its answer, µs.
    pub duration_us: u64,
    /// The `X-Request-Id` sent to the backend.
    pub request_id: Option<&'a str>,
    /// Why the proxy answered itself.
    pub fault: Option<&'static str>,
    /// `downstream`, `upstream` or `internal`.
    pub fault_source: Option<&'static str>,
}

impl Line<'_> {
    /// The JSON object, on one line.
    pub fn json(&self) -> String {
        // Serializing plain fields cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
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
    let line = Line {
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        client: asked.client,
        listener: asked.listener.name(),
        method: asked.method,
        host: asked.host,
        uri: asked.path_and_query,
        version: format!("{:?}", asked.version),
        status,
        route: record
            .route
            .and_then(|r| snapshot.router.rules().get(r))
            .map(|r| r.label.as_str()),
        pool: record
            .pool
            .and_then(|p| tier.pools.get(p))
            .map(|p| p.name.as_str()),
        server: record.server,
        attempts: record.attempts,
        fail_open: record.fail_open,
        duration_us: elapsed.as_micros() as u64,
        request_id: record.request_id.as_ref().and_then(|h| h.to_str().ok()),
        fault: record.fault.map(Fault::reason),
        fault_source: record.fault.map(|f| f.source().label()),
    };
    match tier.access_log {
        AccessLogFormat::Text => text(&line),
        AccessLogFormat::Json => {
            let mut json = line.json();
            json.push('\n');
            // One write per line, so concurrent requests do not interleave;
            // a closed stdout must not fail the request.
            if let Err(error) = std::io::stdout().lock().write_all(json.as_bytes()) {
                debug!("access log not written: {error}");
            }
        }
    }
}

/// The text form: a `tracing` event at [`ACCESS_LOG`].
fn text(line: &Line<'_>) {
    let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    info!(
        target: ACCESS_LOG,
        client = %line.client,
        listener = line.listener,
        method = line.method,
        host = dash(line.host),
        uri = line.uri,
        version = %line.version,
        status = line.status,
        route = dash(line.route),
        pool = dash(line.pool),
        server = %line.server.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        attempts = line.attempts,
        fail_open = line.fail_open,
        duration_us = line.duration_us,
        request_id = dash(line.request_id),
        fault = line.fault.unwrap_or("-"),
        fault_source = line.fault_source.unwrap_or("-"),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_with_every_documented_field() {
        let line = Line {
            time_ms: 1_700_000_000_123,
            client: "192.0.2.7:51000".parse().unwrap(),
            listener: "https",
            method: "GET",
            host: Some("www.example.com"),
            uri: "/a \"quoted\"\npath?q=1",
            version: format!("{:?}", Version::HTTP_11),
            status: 502,
            route: Some("*/"),
            pool: Some("web"),
            server: Some("127.0.0.1:9000".parse().unwrap()),
            attempts: 2,
            fail_open: false,
            duration_us: 1234,
            request_id: Some("abc"),
            fault: Some("connect_failed"),
            fault_source: Some("upstream"),
        };
        let json = line.json();
        assert!(!json.contains('\n'), "one line: {json}");
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let object = parsed.as_object().unwrap();
        let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut documented = [
            "time_ms",
            "client",
            "listener",
            "method",
            "host",
            "uri",
            "version",
            "status",
            "route",
            "pool",
            "server",
            "attempts",
            "fail_open",
            "duration_us",
            "request_id",
            "fault",
            "fault_source",
        ];
        fields.sort_unstable();
        documented.sort_unstable();
        assert_eq!(fields, documented);
        assert_eq!(object["uri"], "/a \"quoted\"\npath?q=1");
        assert_eq!(object["status"], 502);
        assert_eq!(object["version"], "HTTP/1.1");
        assert_eq!(object["server"], "127.0.0.1:9000");
        let absent = Line {
            host: None,
            route: None,
            pool: None,
            server: None,
            request_id: None,
            fault: None,
            fault_source: None,
            ..line
        };
        let parsed: serde_json::Value = serde_json::from_str(&absent.json()).unwrap();
        assert!(parsed["host"].is_null() && parsed["fault"].is_null());
    }
}
