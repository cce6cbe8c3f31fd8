//! A region's declared capacity and target utilisation (`capacity:`),
//! which the GSLB holds each region's measured load against to spill a
//! share of its clients to the next nearest region with headroom.

use serde::Deserialize;

use crate::field::Problems;

/// Target utilisation when none is written.
pub const DEFAULT_TARGET: f64 = 0.8;

/// `capacity:` as written: exactly one of `requests_per_second` and
/// `connections`, and optionally `target`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    /// Requests per second the region's L7 tier can serve.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Client connections the region can hold open at once.
    #[serde(default)]
    pub connections: Option<f64>,
    /// Share of the capacity to run at, in (0, 1] (default 0.8).
    #[serde(default)]
    pub target: Option<f64>,
}

/// What a region's load is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadUnit {
    /// Requests answered per second by its L7 nodes, from their request
    /// counters between two samples.
    RequestsPerSecond,
    /// Client connections open now: on its L4 nodes when it has an L4
    /// tier, else on its L7 nodes.
    Connections,
}

impl LoadUnit {
    /// The unit as written after a number: `1200/s`, `300 connections`.
    pub fn suffix(self) -> &'static str {
        match self {
            LoadUnit::RequestsPerSecond => "/s",
            LoadUnit::Connections => " connections",
        }
    }

    /// The unit's name in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadUnit::RequestsPerSecond => "requests_per_second",
            LoadUnit::Connections => "connections",
        }
    }
}

/// A region's validated capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    /// What the load is measured in.
    pub unit: LoadUnit,
    /// How much the region can take, in `unit` (> 0).
    pub limit: f64,
    /// Share of `limit` to run at, in (0, 1].
    pub target: f64,
}

impl Capacity {
    /// The load above which the region spills: `target × limit`.
    pub fn target_load(&self) -> f64 {
        self.limit * self.target
    }
}

/// Checks `capacity:` at `path`.
pub(crate) fn validate(raw: &RawCapacity, path: &str, problems: &mut Problems) -> Option<Capacity> {
    let before = problems.0.len();
    let positive = |value: f64, field: &str, problems: &mut Problems| {
        if !(value.is_finite() && value > 0.0) {
            problems.add(
                format!("{path}.{field}"),
                format!(
                    "capacity {value} must be a positive number; write what the region can take, e.g. `{field}: 1000`"
                ),
            );
        }
    };
    let (unit, limit) = match (raw.requests_per_second, raw.connections) {
        (Some(rps), None) => {
            positive(rps, "requests_per_second", problems);
            (LoadUnit::RequestsPerSecond, rps)
        }
        (None, Some(connections)) => {
            positive(connections, "connections", problems);
            (LoadUnit::Connections, connections)
        }
        (Some(_), Some(_)) => {
            problems.add(
                path,
                "both `requests_per_second` and `connections` are set; keep the one the region's load is measured in",
            );
            return None;
        }
        (None, None) => {
            problems.add(
                path,
                "no capacity given; write `requests_per_second: N` or `connections: N`",
            );
            return None;
        }
    };
    let target = raw.target.unwrap_or(DEFAULT_TARGET);
    if !(target > 0.0 && target <= 1.0) {
        problems.add(
            format!("{path}.target"),
            format!(
                "target {target} is not a share of the capacity; write a number in (0, 1], e.g. 0.8"
            ),
        );
    }
    (problems.0.len() == before).then_some(Capacity {
        unit,
        limit,
        target,
    })
}
