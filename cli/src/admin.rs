//! The client of the daemons' admin APIs (plain HTTP on loopback, JSON):
//! the GSLB's status, overrides, reload and explain routes, and the edge
//! nodes' `/healthz` and `/v1/status`. The only module naming reqwest.
//!
//! The JSON is the daemons' own types (`admin::api`): a field renamed on
//! their side fails to compile here. A daemon that answers something else
//! (another version) is reported as an unexpected answer, naming the field.

use std::net::SocketAddr;
use std::time::Duration;

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

/// How long a GSLB node may take to compute a what-if.
const WHAT_IF_TIMEOUT: Duration = Duration::from_secs(30);

/// An operator's change to one L7 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerControl {
    /// No new requests.
    Drain,
    /// Back in service.
    Undrain,
    /// This weight, or the configured one (`None`).
    Weight(Option<u32>),
}

/// A connection to the admin APIs of one deployment.
pub struct Admin {
    http: reqwest::blocking::Client,
    token: Option<String>,
}

/// The GSLB's answers, as it writes them.
pub use ::admin::api::gslb::{
    Explanation, OverrideChange, OverrideMode, OverrideRequest, Quorum, Region as RegionStatus,
    ReloadResult, Status as GslbStatus, Vantage as VantageStatus, WhatIf,
};
/// The edge nodes' `/v1/status`, as they write it.
pub use ::admin::api::{l4, l7};

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

    /// `GET /v1/what-if` of a GSLB node: the answers that would change if
    /// `fail` were failed and `recover` recovered, for `clients` too.
    pub fn what_if(
        &self,
        addr: SocketAddr,
        fail: &[String],
        recover: &[String],
        clients: &[std::net::IpAddr],
    ) -> Result<WhatIf, AdminError> {
        let clients: Vec<String> = clients.iter().map(ToString::to_string).collect();
        let url = format!("http://{addr}/v1/what-if");
        let response = self
            .http
            .get(&url)
            .query(&[
                ("fail", fail.join(",")),
                ("recover", recover.join(",")),
                ("client", clients.join(",")),
            ])
            // It decides for every location of the GeoIP database: longer
            // than a status read, above all with a city database.
            .timeout(WHAT_IF_TIMEOUT)
            .send()
            .map_err(|e| AdminError::Unreachable(describe(&e)))?;
        check(response, &url)?
            .json()
            .map_err(|e| AdminError::Decode(format!("{url}: {e}")))
    }

    /// `GET /v1/status` of an L4 node.
    pub fn l4_status(&self, addr: SocketAddr) -> Result<l4::Status, AdminError> {
        self.get_json(addr, "/v1/status", &[])
    }

    /// `GET /v1/status` of an L7 node.
    pub fn l7_status(&self, addr: SocketAddr) -> Result<l7::Status, AdminError> {
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
        let body = OverrideRequest {
            mode: Some(mode),
            reason: Some(reason.to_owned()),
        };
        self.post(addr, &format!("/v1/regions/{region}/fail"), Some(&body))
    }

    /// `POST /v1/regions/{region}/recover`.
    pub fn clear_override(
        &self,
        addr: SocketAddr,
        region: &str,
    ) -> Result<OverrideChange, AdminError> {
        self.post::<(), _>(addr, &format!("/v1/regions/{region}/recover"), None)
    }

    /// A server control of an L7 node: `drain`, `undrain` (`POST`) or, with
    /// `weight`, `PUT …/weight`.
    pub fn server_control(
        &self,
        addr: SocketAddr,
        pool: &str,
        server: &str,
        control: ServerControl,
    ) -> Result<l7::ServerChange, AdminError> {
        let (method, name, body) = match control {
            ServerControl::Drain => (reqwest::Method::POST, "drain", None),
            ServerControl::Undrain => (reqwest::Method::POST, "undrain", None),
            ServerControl::Weight(weight) => (
                reqwest::Method::PUT,
                "weight",
                Some(l7::WeightRequest { weight }),
            ),
        };
        self.send(
            method,
            addr,
            &l7::server_path(pool, server, name),
            body.as_ref(),
        )
    }

    /// `POST /v1/reload`. A refused reload (422 with `{ok, error}`) is a
    /// result, not an error.
    pub fn reload(&self, addr: SocketAddr) -> Result<ReloadResult, AdminError> {
        match self.post::<(), _>(addr, "/v1/reload", None) {
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

    fn post<B: Serialize, T: for<'de> Deserialize<'de>>(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, AdminError> {
        self.send(reqwest::Method::POST, addr, path, body)
    }

    /// A mutating request (the token sent) with an optional JSON body.
    fn send<B: Serialize, T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        addr: SocketAddr,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, AdminError> {
        let url = format!("http://{addr}{path}");
        let mut request = self.http.request(method, &url);
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
    fn a_status_from_a_newer_node_still_decodes() {
        let status: GslbStatus = serde_json::from_str(
            r#"{ "node": "ns1", "region": null, "started_at_ms": 1, "future_field": 1,
                 "config": { "version": "ab", "loaded_at_ms": 1, "last_reload": null },
                 "queries": { "total": 3, "per_second": 0.5 },
                 "regions": [ { "name": "us-east", "verdict": "down",
                   "vip": { "ipv4": "127.0.1.1", "ipv6": null },
                   "override": "drain", "override_reason": null,
                   "in_service": false, "since_ms": 5,
                   "vantage": [ { "node": "ns1", "state": "down", "fresh": true,
                                  "last": null } ] } ] }"#,
        )
        .unwrap();
        let region = &status.regions[0];
        assert_eq!(region.override_mode.as_deref(), Some("drain"));
        assert!(!region.in_service);
        assert!(region.vantage[0].last.is_none());
        assert_eq!(status.queries.total, 3);
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
