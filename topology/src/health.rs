//! Health checks as the topology writes them: how the GSLB probes a
//! region, the L4 tier its L7 nodes, and the L7 tier its backends. The
//! `probe` crate runs them; this is only the validated description.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::field::{Problems, Scalar};

/// `health:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// `http` (default), `https` or `tcp`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Request path for HTTP(S) checks.
    #[serde(default)]
    pub path: Option<String>,
    /// Port to probe instead of the target's own.
    #[serde(default)]
    pub port: Option<u16>,
    /// Expected statuses, e.g. `"200"` or `"200-299,302"` (default `200-399`).
    #[serde(default)]
    pub expect: Option<Scalar>,
    /// Host header and TLS SNI name.
    #[serde(default)]
    pub host: Option<String>,
    /// A substring the response body must contain.
    #[serde(default)]
    pub body: Option<String>,
    /// Time between probes (default `2s`).
    #[serde(default)]
    pub interval: Option<Scalar>,
    /// Time a probe may take (default `1s`).
    #[serde(default)]
    pub timeout: Option<Scalar>,
    /// Consecutive successes to come back (default 2).
    #[serde(default)]
    pub rise: Option<u32>,
    /// Consecutive failures to leave (default 3).
    #[serde(default)]
    pub fall: Option<u32>,
    /// CA certificate (PEM) trusted for HTTPS checks.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Skip certificate verification for HTTPS checks (lab set-ups only).
    #[serde(default)]
    pub insecure: bool,
}

/// What a check sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// HTTP GET.
    Http,
    /// HTTPS GET.
    Https,
    /// TCP connect.
    Tcp,
}

/// A validated health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is sent.
    pub kind: CheckKind,
    /// Request path (HTTP(S)).
    pub path: String,
    /// Port override.
    pub port: Option<u16>,
    /// Accepted status ranges, inclusive.
    pub expect: Vec<(u16, u16)>,
    /// Host header / SNI.
    pub host: Option<String>,
    /// Required body substring.
    pub body: Option<String>,
    /// Time between probes.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Consecutive successes to come back.
    pub rise: u32,
    /// Consecutive failures to leave.
    pub fall: u32,
    /// CA file for HTTPS.
    pub ca: Option<PathBuf>,
    /// Skip certificate verification.
    pub insecure: bool,
}

/// Defaults in the spirit of HAProxy (`inter 2s`, `rise 2`, `fall 3`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Parses `"200,204,300-399"` into inclusive ranges.
pub fn parse_status_set(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|code| (100..=599).contains(code))
                .ok_or_else(|| {
                    format!(
                        "{s:?} is not an HTTP status (100-599); write e.g. \"200\" or \"200-399\""
                    )
                })
        };
        let (low, high) = (parse(low)?, parse(high)?);
        if low > high {
            return Err(format!("range {part:?} runs backwards; write it low-high"));
        }
        ranges.push((low, high));
    }
    Ok(ranges)
}

/// Validates `raw` (or the defaults when absent), with `default_path` for
/// HTTP checks that name none.
pub(crate) fn validate(
    raw: Option<&RawHealthCheck>,
    default_path: &str,
    path: &str,
    problems: &mut Problems,
) -> HealthCheck {
    let defaults = RawHealthCheck::default();
    let raw = raw.unwrap_or(&defaults);
    let kind = match raw.kind.as_deref() {
        None | Some("http") => CheckKind::Http,
        Some("https") => CheckKind::Https,
        Some("tcp") => CheckKind::Tcp,
        Some(other) => {
            problems.add(
                format!("{path}.kind"),
                format!("unknown check kind {other:?}; use http, https or tcp"),
            );
            CheckKind::Http
        }
    };
    let check_path = raw.path.clone().unwrap_or_else(|| default_path.to_owned());
    if !check_path.starts_with('/') {
        problems.add(
            format!("{path}.path"),
            format!("{check_path:?} must start with '/'"),
        );
    }
    let expect = match &raw.expect {
        None => vec![(200, 399)],
        Some(text) => problems
            .check(format!("{path}.expect"), parse_status_set(&text.text()))
            .unwrap_or_default(),
    };
    let mut duration = |field: &str, value: &Option<Scalar>, default: Duration| match value {
        None => default,
        Some(v) => problems
            .check(format!("{path}.{field}"), parse_duration(&v.text()))
            .unwrap_or(default),
    };
    let interval = duration("interval", &raw.interval, DEFAULT_INTERVAL);
    let timeout = duration("timeout", &raw.timeout, DEFAULT_TIMEOUT);
    if interval.is_zero() {
        problems.add(format!("{path}.interval"), "must be longer than 0s");
    }
    if timeout.is_zero() || timeout >= interval {
        problems.add(
            format!("{path}.timeout"),
            format!(
                "{timeout:?} must be above 0 and shorter than the interval ({interval:?}), so probes never overlap"
            ),
        );
    }
    let rise = raw.rise.unwrap_or(2);
    let fall = raw.fall.unwrap_or(3);
    for (field, value) in [("rise", rise), ("fall", fall)] {
        if value == 0 {
            problems.add(format!("{path}.{field}"), "must be at least 1");
        }
    }
    if raw.insecure && raw.ca.is_some() {
        problems.add(
            format!("{path}.insecure"),
            "set either `ca:` or `insecure: true`, not both",
        );
    }
    HealthCheck {
        kind,
        path: check_path,
        port: raw.port,
        expect,
        host: raw.host.clone(),
        body: raw.body.clone(),
        interval,
        timeout,
        rise,
        fall,
        ca: raw.ca.clone(),
        insecure: raw.insecure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        assert_eq!(parse_status_set("200").unwrap(), [(200, 200)]);
        assert_eq!(
            parse_status_set("200-299, 302").unwrap(),
            [(200, 299), (302, 302)]
        );
        assert!(parse_status_set("99").unwrap_err().contains("100-599"));
        assert!(
            parse_status_set("300-200")
                .unwrap_err()
                .contains("backwards")
        );
    }
}
