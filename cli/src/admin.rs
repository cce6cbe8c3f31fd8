//! The client of the daemons' admin APIs (plain HTTP on loopback, JSON):
//! the GSLB's status, overrides, reload and explain routes, and the edge
//! nodes' `/healthz` and `/v1/status`. The only module naming reqwest.
//!
//! Response types are lenient: every field the `gtm` output can do without
//! is optional, so a daemon that answers less than the contract still gets
//! a status line rather than an error.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// What went wrong talking to an admin API.
#[derive(Debug)]
pub enum AdminError {
    /// Nothing answered (refused, timed out, reset).
    Unreachable(String),
    /// 401/403: a token is needed, or the one sent is wrong.
    Unauthorized(String),
    /// 404.
    NotFound(String),
    /// Another non-2xx status.
    Status(u16, String),
    /// 2xx, but not the JSON expected.
    Decode(String),
}

impl std::error::Error for AdminError {}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Unreachable(detail) => write!(f, "no answer: {detail}"),
            AdminError::Unauthorized(url) => write!(
                f,
                "{url} refused the request: set GTM_ADMIN_TOKEN (or dns.admin_token in the topology) to the daemons' admin token"
            ),
            AdminError::NotFound(body) => write!(f, "not found: {body}"),
            AdminError::Status(code, body) => write!(f, "HTTP {code}: {body}"),
            AdminError::Decode(detail) => write!(f, "unexpected answer: {detail}"),
        }
    }
}

/// A connection to the admin APIs of one deployment.
pub struct Admin {
    http: reqwest::blocking::Client,
    token: Option<String>,
}

/// `GET /v1/status` of a GSLB node.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GslbStatus {
    /// The node's name.
    pub node: Option<String>,
    /// The node's region.
    pub region: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: Option<String>,
    /// When it started (ms since the epoch).
    pub started_at_ms: Option<u64>,
    /// The configuration it serves.
    pub config: Option<ConfigStatus>,
    /// Every region's view.
    pub regions: Vec<RegionStatus>,
    /// Query counters.
    pub queries: Option<QueryStats>,
}

/// The configuration a GSLB node serves.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ConfigStatus {
    /// sha256 of the file, hex.
    pub version: Option<String>,
    /// When it was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    /// When it was loaded (ms since the epoch).
    pub loaded_at_ms: Option<u64>,
    /// The last reload attempt.
    pub last_reload: Option<ReloadStatus>,
}

/// A reload attempt.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ReloadStatus {
    /// Whether it took.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// When (RFC 3339).
    pub at: Option<String>,
    /// When (ms since the epoch).
    pub at_ms: Option<u64>,
}

/// One region as a GSLB node sees it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RegionStatus {
    /// The region.
    pub name: String,
    /// Its VIP.
    pub vip: Option<serde_json::Value>,
    /// `up` or `down`: the probes' verdict.
    pub verdict: Option<String>,
    /// `fail`, `drain` or none.
    #[serde(rename = "override")]
    pub override_: Option<String>,
    /// Why the override was set.
    pub override_reason: Option<String>,
    /// Whether it is answered.
    pub in_service: Option<bool>,
    /// When `in_service` last changed (RFC 3339).
    pub since: Option<String>,
    /// When `in_service` last changed (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Each vantage point's view.
    pub vantage: Vec<VantageStatus>,
}

/// One vantage point's view of a region.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct VantageStatus {
    /// The GSLB node probing.
    pub node: String,
    /// `up` or `down`.
    pub state: Option<String>,
    /// Whether the view is recent enough to count.
    pub fresh: Option<bool>,
    /// The last probe.
    pub last: Option<ProbeStatus>,
}

/// One probe result.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ProbeStatus {
    /// Whether it passed.
    pub ok: bool,
    /// `HTTP 200`, `connection refused`, …
    pub detail: Option<String>,
    /// How long it took.
    pub latency_ms: Option<f64>,
    /// When it finished (RFC 3339).
    pub at: Option<String>,
    /// When it finished (ms since the epoch).
    pub at_ms: Option<u64>,
}

impl ProbeStatus {
    /// When it finished.
    pub fn time(&self) -> Option<SystemTime> {
        stamp(self.at.as_deref(), self.at_ms)
    }
}

impl RegionStatus {
    /// When `in_service` last changed.
    pub fn since_time(&self) -> Option<SystemTime> {
        stamp(self.since.as_deref(), self.since_ms)
    }
}

/// A time the daemons send as RFC 3339 text or as milliseconds since the
/// Unix epoch (either is accepted; the epoch form wins when both are).
pub fn stamp(rfc3339: Option<&str>, ms: Option<u64>) -> Option<SystemTime> {
    match (ms, rfc3339) {
        (Some(ms), _) if ms > 0 => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        (_, Some(text)) => crate::timeline::parse_rfc3339(text),
        _ => None,
    }
}

/// Query counters of a GSLB node.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct QueryStats {
    /// Since start.
    pub total: Option<u64>,
    /// Recent rate.
    pub per_second: Option<f64>,
}

/// `POST /v1/regions/{region}/fail` and `/recover`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OverrideChange {
    /// Whether the node saved it to its state file (else it holds only
    /// until the node restarts).
    pub persisted: bool,
    /// Why it was not saved.
    pub warning: Option<String>,
}

/// `POST /v1/reload`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ReloadResult {
    /// Whether the new configuration is served.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// `GET /v1/explain`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Explanation {
    /// The trace, as `gslb explain` prints it.
    pub text: String,
    /// The answer records.
    pub answers: Vec<String>,
    /// The rule that chose.
    pub rule: Option<String>,
    /// The ECS scope.
    pub scope: Option<u8>,
}

/// How a region is taken out of answers by an override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideMode {
    /// Out of answers at once, as if down.
    Fail,
    /// Planned maintenance.
    Drain,
}

impl Admin {
    /// A client sending `token` on mutating routes.
    pub fn new(token: Option<String>) -> anyhow::Result<Admin> {
        // reqwest built with `rustls-no-provider` (feature unification with
        // the probe crate in workspace builds) panics without a process-wide
        // provider; installing one is harmless otherwise. An error means one
        // is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Admin { http, token })
    }

    /// The token to use: `GTM_ADMIN_TOKEN`, else the topology's.
    pub fn token_for(topology: &topology::Topology) -> Option<String> {
        std::env::var("GTM_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| topology.dns.admin_token.clone())
    }

    /// `GET path` with a short timeout; the status code.
    pub fn probe(&self, addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16, String> {
        self.http
            .get(format!("http://{addr}{path}"))
            .timeout(timeout)
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| describe(&e))
    }

    /// `GET /v1/status` of a GSLB node.
    pub fn gslb_status(&self, addr: SocketAddr) -> Result<GslbStatus, AdminError> {
        self.get_json(addr, "/v1/status", &[])
    }

    /// `GET /v1/status` of an edge node, as loose JSON (its shape is the
    /// edge's to decide).
    pub fn edge_status(&self, addr: SocketAddr) -> Result<serde_json::Value, AdminError> {
        self.get_json(addr, "/v1/status", &[])
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics(&self, addr: SocketAddr) -> Result<String, AdminError> {
        let url = format!("http://{addr}/metrics");
        let response = self
            .http
            .get(&url)
            .send()
            .map_err(|e| AdminError::Unreachable(describe(&e)))?;
        check(response, &url)?
            .text()
            .map_err(|e| AdminError::Decode(format!("{url}: {e}")))
    }

    /// `POST /v1/regions/{region}/fail`.
    pub fn set_override(
        &self,
        addr: SocketAddr,
        region: &str,
        mode: OverrideMode,
        reason: &str,
    ) -> Result<OverrideChange, AdminError> {
        let body = serde_json::json!({ "mode": mode, "reason": reason });
        self.post(addr, &format!("/v1/regions/{region}/fail"), Some(&body))
    }

    /// `POST /v1/regions/{region}/recover`.
    pub fn clear_override(
        &self,
        addr: SocketAddr,
        region: &str,
    ) -> Result<OverrideChange, AdminError> {
        self.post(addr, &format!("/v1/regions/{region}/recover"), None)
    }

    /// `POST /v1/reload`. A refused reload (422 with `{ok, error}`) is a
    /// result, not an error.
    pub fn reload(&self, addr: SocketAddr) -> Result<ReloadResult, AdminError> {
        match self.post(addr, "/v1/reload", None) {
            Err(AdminError::Status(422, error)) => Ok(ReloadResult {
                ok: false,
                error: Some(error),
            }),
            other => other,
        }
    }

    /// `GET /v1/explain?name=…&client=…&type=…`.
    pub fn explain(
        &self,
        addr: SocketAddr,
        name: &str,
        client: std::net::IpAddr,
        rtype: &str,
    ) -> Result<Explanation, AdminError> {
        let client = client.to_string();
        self.get_json(
            addr,
            "/v1/explain",
            &[("name", name), ("client", &client), ("type", rtype)],
        )
    }

    fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        addr: SocketAddr,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, AdminError> {
        let url = format!("http://{addr}{path}");
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .map_err(|e| AdminError::Unreachable(describe(&e)))?;
        check(response, &url)?
            .json()
            .map_err(|e| AdminError::Decode(format!("{url}: {e}")))
    }

    fn post<T: for<'de> Deserialize<'de>>(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, AdminError> {
        let url = format!("http://{addr}{path}");
        let mut request = self.http.post(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(body) => request.json(body),
            None => request.header("content-length", "0"),
        };
        let response = request
            .send()
            .map_err(|e| AdminError::Unreachable(describe(&e)))?;
        check(response, &url)?
            .json()
            .map_err(|e| AdminError::Decode(format!("{url}: {e}")))
    }
}

fn check(
    response: reqwest::blocking::Response,
    url: &str,
) -> Result<reqwest::blocking::Response, AdminError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body = response.text().unwrap_or_default();
    let body = error_text(&body);
    Err(match status {
        401 | 403 => AdminError::Unauthorized(url.to_owned()),
        404 => AdminError::NotFound(body),
        _ => AdminError::Status(status, body),
    })
}

/// The `error` field of a JSON error body, else the body itself.
fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().chars().take(200).collect())
}

/// reqwest's error with its cause (`connection refused`), without the URL
/// noise repeated.
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_status_still_decodes() {
        let status: GslbStatus = serde_json::from_str(
            r#"{ "node": "ns1", "regions": [ { "name": "us-east", "verdict": "down",
                 "override": "drain", "in_service": false,
                 "vantage": [ { "node": "ns1", "state": "down", "last": null } ] } ],
                 "future_field": 1 }"#,
        )
        .unwrap();
        let region = &status.regions[0];
        assert_eq!(region.override_.as_deref(), Some("drain"));
        assert_eq!(region.in_service, Some(false));
        assert!(region.vantage[0].last.is_none());
        assert!(status.queries.is_none());
    }

    #[test]
    fn json_error_bodies_are_shortened_to_their_message() {
        assert_eq!(
            error_text(r#"{"error":"unknown region \"mars\""}"#),
            "unknown region \"mars\""
        );
        assert_eq!(error_text("  plain text\n"), "plain text");
    }
}
