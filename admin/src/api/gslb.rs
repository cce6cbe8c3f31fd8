//! The GSLB node's admin API: `GET /v1/status`, `POST
//! /v1/regions/{region}/fail` and `/recover`, `POST /v1/reload`, `GET
//! /v1/explain` and `GET /v1/what-if`.

use serde::{Deserialize, Serialize};

/// `GET /v1/status`: the node, its configuration, every region's health
/// and the query rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The node's name (one of the topology's `dns.nodes`).
    pub node: String,
    /// The region it sits in, if the topology says.
    pub region: Option<String>,
    /// When it started (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// The configuration it serves.
    pub config: Config,
    /// Every region, in topology order.
    pub regions: Vec<Region>,
    /// Query counters.
    pub queries: Queries,
}

/// Where the served configuration came from and how its last reload went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// SHA-256 of the topology file's bytes, hex.
    pub version: String,
    /// When it was loaded (ms since the Unix epoch).
    pub loaded_at_ms: u64,
    /// The latest reload attempt, if any.
    pub last_reload: Option<Reload>,
}

/// One reload attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    /// Whether the new configuration is served.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// One region as the node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// The region's name.
    pub name: String,
    /// Its VIP.
    pub vip: Vip,
    /// `up` or `down`: the quorum of fresh vantage views.
    pub verdict: String,
    /// The operator's override, if any: `fail` or `drain` (an
    /// [`OverrideMode`] spelled out).
    #[serde(rename = "override")]
    pub override_mode: Option<String>,
    /// Why the override was set.
    pub override_reason: Option<String>,
    /// Whether answers may use it: verdict up and no override.
    pub in_service: bool,
    /// When `in_service` last changed (ms since the Unix epoch).
    pub since_ms: u64,
    /// How the fresh vantage views voted (absent from nodes that predate
    /// the health matrix).
    #[serde(default)]
    pub quorum: Option<Quorum>,
    /// Each vantage point's view.
    pub vantage: Vec<Vantage>,
    /// Its load and spill share, when it declares a capacity.
    #[serde(default)]
    pub load: Option<Load>,
}

/// A region's load against its capacity, and the share of its clients
/// spilled to other regions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// `requests_per_second` or `connections`.
    pub unit: String,
    /// The declared capacity.
    pub capacity: f64,
    /// `target × capacity`: above it, the region spills.
    pub target: f64,
    /// The load last measured, while fresh.
    pub current: Option<f64>,
    /// Share of its clients answered elsewhere, 0 to 1.
    pub share: f64,
    /// `fresh`; `stale` (no figures for several intervals) or `missing`
    /// (none yet): then it neither spills nor receives spilled clients.
    pub telemetry: String,
    /// Why the last sample of its edge nodes failed, if it did.
    pub error: Option<String>,
}

/// The outcome of a region's quorum: up when at least half of the fresh
/// views say up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Fresh views that said up.
    pub up_votes: usize,
    /// Fresh views counted.
    pub fresh_views: usize,
}

/// A region's VIP addresses, as text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vip {
    /// The IPv4 address.
    pub ipv4: Option<String>,
    /// The IPv6 address.
    pub ipv6: Option<String>,
}

/// One vantage point's view of a region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vantage {
    /// The GSLB node probing.
    pub node: String,
    /// `up` or `down`.
    pub state: String,
    /// Whether it voted (fresh enough).
    pub fresh: bool,
    /// Whether its votes are set aside: it sees nearly every region down
    /// while other vantage points do not (false from nodes that predate
    /// the breaker).
    #[serde(default)]
    pub abstains: bool,
    /// Its latest probe.
    pub last: Option<Probe>,
    /// Changes of its view over the last hour, as the answering node saw
    /// them (0 from nodes that predate the health matrix).
    #[serde(default)]
    pub flaps_last_hour: usize,
}

/// One probe result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Whether it passed.
    pub ok: bool,
    /// `HTTP 200`, `connection refused`, …
    pub detail: String,
    /// How long it took.
    pub latency_ms: f64,
    /// When it finished (ms since the Unix epoch).
    pub at_ms: u64,
}

/// Query counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queries {
    /// Since the node started.
    pub total: u64,
    /// Over the last second or so.
    pub per_second: f64,
}

/// How an override takes a region out of answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideMode {
    /// A rehearsed failure: out at once, as if down.
    Fail,
    /// Planned maintenance.
    Drain,
}

impl OverrideMode {
    /// The spelling used in the API and status.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideMode::Fail => "fail",
            OverrideMode::Drain => "drain",
        }
    }
}

/// The body of `POST /v1/regions/{region}/fail` (an empty body means
/// both fields absent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// How to take the region out (absent: `fail`).
    #[serde(default)]
    pub mode: Option<OverrideMode>,
    /// Free text kept with the override.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer to `POST /v1/regions/{region}/fail` and `/recover`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverrideChange {
    /// The region.
    pub region: String,
    /// The override now in place (`None` after `/recover`).
    #[serde(rename = "override")]
    pub override_mode: Option<OverrideMode>,
    /// Whether the node saved it to its state file (else it holds only
    /// until the node restarts).
    pub persisted: bool,
    /// Why it was not saved.
    pub warning: Option<String>,
}

/// The answer to `POST /v1/reload` (200 when `ok`, else 422).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReloadResult {
    /// Whether the new configuration is served.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// `GET /v1/explain?name=&client=&type=`: the decision trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The trace, as `gslb explain` prints it.
    pub text: String,
    /// The answer records.
    pub answers: Vec<String>,
    /// The rule that chose, for a geo name.
    pub rule: Option<String>,
    /// The ECS scope prefix length.
    pub scope: u8,
}

/// `GET /v1/what-if?fail=R1,R2&recover=R3&client=IP1,IP2`: the answers
/// that would change if those regions were failed (held out, as a drain)
/// or recovered (back in service: no override, probes passing). Nothing
/// is changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// The node that computed it, with its current health view.
    pub node: String,
    /// Regions failed in the scenario.
    pub fail: Vec<String>,
    /// Regions recovered in the scenario.
    pub recover: Vec<String>,
    /// Per geo name, the places whose answer changes.
    pub names: Vec<NameChanges>,
    /// Per client asked for and geo name, its answer before and after.
    pub clients: Vec<ClientMove>,
    /// The regions that would receive clients they do not answer now, with
    /// their capacity headroom.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
}

/// A region that would receive clients in a what-if, and whether it has
/// room for them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receiver {
    /// The region.
    pub region: String,
    /// `room` (its load is under its target), `full` (at or over it),
    /// `unknown` (its load telemetry is missing or stale) or `unbounded`
    /// (no capacity declared).
    pub headroom: String,
    /// `requests_per_second` or `connections`, when it declares a capacity.
    pub unit: Option<String>,
    /// Its load now, when measured.
    pub load: Option<u64>,
    /// Its target load (`target × capacity`), when measured.
    pub target: Option<u64>,
    /// The load now of the regions it would take clients from, in the
    /// same unit, when all of them are measured in it: an upper bound on
    /// what it would receive.
    pub incoming: Option<u64>,
}

/// The places whose answer for one geo name changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NameChanges {
    /// The geo name.
    pub name: String,
    /// One entry per country and move, by continent then country (empty:
    /// nothing changes).
    pub places: Vec<PlaceChange>,
}

/// Clients of one country whose answer moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaceChange {
    /// Continent code (`EU`, `NA`, …; `-` when unknown).
    pub continent: String,
    /// Country code (`-` when unknown).
    pub country: String,
    /// Regions answered now.
    pub before: Vec<String>,
    /// Regions that would be answered.
    pub after: Vec<String>,
    /// GeoIP locations of the country that move this way…
    pub locations: usize,
    /// …out of this many.
    pub of_locations: usize,
}

/// One client's answer for one geo name, now and in the scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientMove {
    /// The client address.
    pub client: String,
    /// Its continent code (`-` when unknown).
    pub continent: String,
    /// Its country code (`-` when unknown).
    pub country: String,
    /// The geo name.
    pub name: String,
    /// Whether the answer changes.
    pub changed: bool,
    /// Regions answered now.
    pub before: Vec<String>,
    /// Addresses answered now.
    pub before_addresses: Vec<String>,
    /// Regions that would be answered.
    pub after: Vec<String>,
    /// Addresses that would be answered.
    pub after_addresses: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_spelled_as_the_api_and_state_file_expect() {
        for mode in [OverrideMode::Fail, OverrideMode::Drain] {
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
    }

    #[test]
    fn an_override_request_may_be_partial_but_not_misspelled() {
        let request: OverrideRequest = serde_json::from_str(r#"{"mode":"drain"}"#).unwrap();
        assert_eq!(request.mode, Some(OverrideMode::Drain));
        assert!(serde_json::from_str::<OverrideRequest>(r#"{"mdoe":"drain"}"#).is_err());
    }
}
