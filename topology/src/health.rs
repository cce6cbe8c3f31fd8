//! Health checks as the topology writes them: how the GSLB probes a
//! region, the L4 tier its L7 nodes, and the L7 tier its backends. The
//! `probe` crate runs them; this is the validated description and the one
//! set of rules a check must meet, with their messages ([`CheckError`]),
//! which `probe` applies to the checks it is handed as well.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::{fmt_duration, parse_duration};
use crate::field::{Problems, Scalar};
use crate::status::{StatusSet, parse_status_set};

/// `health:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// `http` (default), `https`, `tcp`, or `grpc` (L7 pools speaking
    /// HTTP/2 only: `grpc.health.v1.Health/Check`).
    #[serde(default)]
    pub kind: Option<String>,
    /// The service a `grpc` check asks about (default `""`: the server as
    /// a whole).
    #[serde(default)]
    pub service: Option<String>,
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
    /// `grpc.health.v1.Health/Check` over the pool's own HTTP/2
    /// connections: up when it answers SERVING. Only an L7 pool's servers
    /// are checked so (its node runs the check with the pool's connector).
    Grpc,
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
    /// Accepted statuses.
    pub expect: StatusSet,
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
    /// The service a gRPC check asks about (`None`: the whole server).
    pub service: Option<String>,
}

/// Default time between two probe starts (HAProxy `inter` is 2s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default bound on one probe attempt (connect, request and body read).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default consecutive successes needed to go Up (HAProxy `rise 2`).
pub const DEFAULT_RISE: u32 = 2;
/// Default consecutive failures needed to go Down (HAProxy `fall 3`).
pub const DEFAULT_FALL: u32 = 3;
/// Shortest allowed interval: anything faster is a load test, not a health check.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Most body bytes an HTTP probe reads when looking for the `body`
/// substring; also the longest allowed substring.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One rule a health check breaks. Each message names the field, the bad
/// value and what to write instead; the topology loader prefixes the field
/// path (`regions.eu-west.health.`), `probe` the check's id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An interval below [`MIN_INTERVAL`].
    #[error("{field} {} is too short; use at least {}", fmt_duration(*value), fmt_duration(MIN_INTERVAL))]
    IntervalTooShort {
        /// `interval` or `fast_interval`.
        field: &'static str,
        /// The configured value.
        value: Duration,
    },
    /// A zero timeout.
    #[error("timeout is 0; set a timeout shorter than the interval, e.g. 1s")]
    ZeroTimeout,
    /// A timeout that would let probes of one check pile up.
    #[error(
        "timeout {} must be shorter than {field} {}; lower timeout or raise {field}",
        fmt_duration(*timeout),
        fmt_duration(*interval)
    )]
    TimeoutNotBelowInterval {
        /// `interval` or `fast_interval`.
        field: &'static str,
        /// The configured timeout.
        timeout: Duration,
        /// The interval it collides with.
        interval: Duration,
    },
    /// `rise` or `fall` is zero.
    #[error(
        "{field} is 0; it counts consecutive results needed to change state and must be at least 1"
    )]
    ZeroThreshold {
        /// `rise` or `fall`.
        field: &'static str,
    },
    /// A path that is not origin-form.
    #[error("path {path:?} must start with '/' and contain no spaces, e.g. \"/healthz\"")]
    BadPath {
        /// The configured path.
        path: String,
    },
    /// A `host` or `sni` that is not a valid name.
    #[error("{field} {value:?} is not a valid name; write a DNS name like \"www.example.com\"{}", if *field == "host" { " (optionally with :port)" } else { "" })]
    BadName {
        /// `host` or `sni`.
        field: &'static str,
        /// The configured value.
        value: String,
    },
    /// A CA file configured on a plain-HTTP check.
    #[error("trust names a CA file but https is false; remove the CA file or enable https")]
    CaFileWithoutHttps,
    /// An empty or oversized body substring.
    #[error(
        "body_contains is {len} bytes; use a non-empty string of at most {MAX_BODY_BYTES} bytes"
    )]
    BadBodyNeedle {
        /// Length of the configured substring.
        len: usize,
    },
}

impl CheckError {
    /// The topology key the rule concerns, under `health:`.
    pub fn field(&self) -> &'static str {
        match self {
            CheckError::IntervalTooShort { field, .. } | CheckError::ZeroThreshold { field } => {
                field
            }
            CheckError::BadName { field, .. } => field,
            CheckError::ZeroTimeout | CheckError::TimeoutNotBelowInterval { .. } => "timeout",
            CheckError::BadPath { .. } => "path",
            CheckError::CaFileWithoutHttps => "ca",
            CheckError::BadBodyNeedle { .. } => "body",
        }
    }
}

/// The timing rules: every interval (named, e.g. `interval`) at least
/// [`MIN_INTERVAL`], a timeout above 0 and shorter than every interval so
/// that probes of one check never overlap, and `rise`/`fall` at least 1.
/// Problems are appended in that order.
pub fn check_timing(
    intervals: &[(&'static str, Duration)],
    timeout: Duration,
    rise: u32,
    fall: u32,
    errors: &mut Vec<CheckError>,
) {
    for &(field, value) in intervals {
        if value < MIN_INTERVAL {
            errors.push(CheckError::IntervalTooShort { field, value });
        }
    }
    if timeout.is_zero() {
        errors.push(CheckError::ZeroTimeout);
    } else {
        for &(field, interval) in intervals {
            if timeout >= interval {
                errors.push(CheckError::TimeoutNotBelowInterval {
                    field,
                    timeout,
                    interval,
                });
            }
        }
    }
    for (field, value) in [("rise", rise), ("fall", fall)] {
        if value == 0 {
            errors.push(CheckError::ZeroThreshold { field });
        }
    }
}

/// The request path rule: origin-form, starting with `/`, no whitespace or
/// control characters (a query is fine).
pub fn check_path(path: &str) -> Result<(), CheckError> {
    if path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(CheckError::BadPath {
            path: path.to_owned(),
        })
    }
}

/// The `Host` header rule: `name` or `name:port`, where name is a DNS name
/// or an IP (v6 in brackets).
pub fn check_host(value: &str) -> Result<(), CheckError> {
    let (name, port) = split_host_port(value);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    let name_ok = is_dns_name(name)
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok());
    if port_ok && name_ok {
        Ok(())
    } else {
        Err(CheckError::BadName {
            field: "host",
            value: value.to_owned(),
        })
    }
}

/// The body rule: a non-empty substring of at most [`MAX_BODY_BYTES`].
pub fn check_body(needle: &str) -> Result<(), CheckError> {
    if needle.is_empty() || needle.len() > MAX_BODY_BYTES {
        Err(CheckError::BadBodyNeedle { len: needle.len() })
    } else {
        Ok(())
    }
}

/// Splits `[v6]:port`, `[v6]`, `name:port` or `name` into the name and the
/// port as written.
pub fn split_host_port(value: &str) -> (&str, Option<&str>) {
    if value.starts_with('[') {
        return match value.rfind("]:") {
            Some(i) => (&value[..=i], Some(&value[i + 2..])),
            None => (value, None),
        };
    }
    match value.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (value, None),
    }
}

/// A DNS name usable as a URL host and TLS server name (not an IP literal).
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.parse::<IpAddr>().is_err()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // An all-numeric last label would be read as an IPv4 address by URL parsers.
        && !name.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Why `kind: grpc` is refused outside L7 pools.
pub const GRPC_CHECKS_POOLS_ONLY: &str =
    "a grpc check runs only on an L7 pool's servers; use http, https or tcp here";

/// Longest `service` of a gRPC check (gRPC service names are short).
pub const MAX_SERVICE_BYTES: usize = 1024;

/// Validates `raw` (or the defaults when absent), with `default_path` for
/// HTTP checks that name none. `grpc_refused` is `None` where a `grpc`
/// check may run, else the message refusing one (why, and the fix).
pub(crate) fn validate(
    raw: Option<&RawHealthCheck>,
    default_path: &str,
    grpc_refused: Option<&str>,
    path: &str,
    problems: &mut Problems,
) -> HealthCheck {
    let defaults = RawHealthCheck::default();
    let raw = raw.unwrap_or(&defaults);
    let kind = match raw.kind.as_deref() {
        None | Some("http") => CheckKind::Http,
        Some("https") => CheckKind::Https,
        Some("tcp") => CheckKind::Tcp,
        Some("grpc") => {
            if let Some(why) = grpc_refused {
                problems.add(format!("{path}.kind"), why);
            }
            CheckKind::Grpc
        }
        Some(other) => {
            problems.add(
                format!("{path}.kind"),
                format!("unknown check kind {other:?}; use http, https, tcp or grpc"),
            );
            CheckKind::Http
        }
    };
    match &raw.service {
        Some(_) if kind != CheckKind::Grpc => problems.add(
            format!("{path}.service"),
            "only a grpc check asks about a service; set `kind: grpc` or remove `service:`",
        ),
        Some(service)
            if service.len() > MAX_SERVICE_BYTES || service.chars().any(char::is_control) =>
        {
            problems.add(
                format!("{path}.service"),
                format!(
                    "{service:?} is not a gRPC service name; write one like \"demo.Echo\" (at most {MAX_SERVICE_BYTES} bytes)"
                ),
            );
        }
        _ => {}
    }
    let request_path = raw.path.clone().unwrap_or_else(|| default_path.to_owned());
    let expect = match &raw.expect {
        None => StatusSet::default(),
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
    let rise = raw.rise.unwrap_or(DEFAULT_RISE);
    let fall = raw.fall.unwrap_or(DEFAULT_FALL);
    let mut errors = Vec::new();
    check_timing(&[("interval", interval)], timeout, rise, fall, &mut errors);
    errors.extend(check_path(&request_path).err());
    errors.extend(raw.host.as_deref().and_then(|h| check_host(h).err()));
    errors.extend(raw.body.as_deref().and_then(|b| check_body(b).err()));
    // A TCP check ignores `ca:`; a plain-HTTP one would be handed a CA
    // file it cannot use.
    if kind == CheckKind::Http && raw.ca.is_some() {
        errors.push(CheckError::CaFileWithoutHttps);
    }
    for e in errors {
        problems.add(format!("{path}.{}", e.field()), e.to_string());
    }
    if raw.insecure && raw.ca.is_some() {
        problems.add(
            format!("{path}.insecure"),
            "set either `ca:` or `insecure: true`, not both",
        );
    }
    HealthCheck {
        kind,
        path: request_path,
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
        service: raw.service.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_rules_report_every_problem() {
        let mut errors = Vec::new();
        check_timing(
            &[("interval", Duration::from_secs(2))],
            Duration::from_secs(2),
            0,
            0,
            &mut errors,
        );
        let fields: Vec<_> = errors.iter().map(CheckError::field).collect();
        assert_eq!(fields, ["timeout", "rise", "fall"]);
        assert_eq!(
            errors[0].to_string(),
            "timeout 2s must be shorter than interval 2s; lower timeout or raise interval"
        );
    }

    #[test]
    fn grpc_checks_are_refused_where_the_caller_says() {
        let raw = RawHealthCheck {
            kind: Some("grpc".into()),
            ..RawHealthCheck::default()
        };
        let mut problems = Problems::default();
        let check = validate(
            Some(&raw),
            "/",
            Some(GRPC_CHECKS_POOLS_ONLY),
            "regions.r.health",
            &mut problems,
        );
        assert_eq!(check.kind, CheckKind::Grpc);
        assert_eq!(problems.0.len(), 1);
        assert_eq!(problems.0[0].path, "regions.r.health.kind");
        assert_eq!(problems.0[0].message, GRPC_CHECKS_POOLS_ONLY);
        let mut problems = Problems::default();
        validate(Some(&raw), "/", None, "p.health", &mut problems);
        assert!(problems.0.is_empty());
    }

    #[test]
    fn names() {
        for ok in [
            "example.com",
            "a-b.example",
            "localhost",
            "probe.test.",
            "_svc.example",
        ] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "::1",
            "a..b",
            "-a.example",
            "a b",
            "example.123",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        for ok in [
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in ["example.com:http", "::1", "exa mple"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }
}
