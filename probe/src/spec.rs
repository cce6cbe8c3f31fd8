//! The check description the config layer builds, its defaults, and the
//! validation that keeps an unusable check from ever reaching the scheduler.
//!
//! These are model types, not serde structs: the config layer parses YAML
//! into its own raw structs and builds a [`ProbeSpec`] from them, then calls
//! [`ProbeSpec::validate`] and prefixes each [`SpecError`] with its field
//! path.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::attempt::fmt_duration;
use crate::hysteresis::Health;

/// Default time between two probe starts (HAProxy `inter` is 2s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default bound on one probe attempt (connect, request and body read).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default consecutive successes needed to go Up (HAProxy `rise 2`).
pub const DEFAULT_RISE: u32 = 2;
/// Default consecutive failures needed to go Down (HAProxy `fall 3`).
pub const DEFAULT_FALL: u32 = 3;
/// Default interval spread: each interval is drawn from ±10% around the
/// configured one, so that many checks started together drift apart.
pub const DEFAULT_JITTER: f64 = 0.10;
/// Largest allowed [`ProbeSpec::jitter`] (HAProxy's `spread-checks` caps at 50%).
pub const MAX_JITTER: f64 = 0.5;
/// Shortest allowed interval: anything faster is a load test, not a health check.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Most body bytes an HTTP probe reads when looking for
/// [`HttpCheck::body_contains`]; also the longest allowed needle.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One health check: what to probe and how strictly to judge it.
///
/// Build with [`ProbeSpec::new`] (all defaults) and adjust fields; call
/// [`ProbeSpec::validate`] (the [`Prober`](crate::Prober) does it too) before
/// use. Two specs compare equal exactly when a reload must not disturb the
/// running check.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// What one probe attempt does.
    pub kind: ProbeKind,
    /// Time between the starts of two consecutive probes while the state is
    /// settled. Default [`DEFAULT_INTERVAL`] (2s).
    pub interval: Duration,
    /// HAProxy's `fastinter`: the interval used while a streak towards a
    /// state change is in progress (Up with some failures, or Down with some
    /// successes), so a change is confirmed sooner. `None` (default) means
    /// use [`interval`](Self::interval) throughout.
    pub fast_interval: Option<Duration>,
    /// Bound on one probe attempt; must be shorter than every interval.
    /// Default [`DEFAULT_TIMEOUT`] (1s).
    pub timeout: Duration,
    /// Consecutive successes needed to go from Down to Up. Default 2.
    pub rise: u32,
    /// Consecutive failures needed to go from Up to Down. Default 3.
    pub fall: u32,
    /// Relative spread of each interval: `0.1` draws every interval from
    /// `[0.9 × interval, 1.1 × interval)`. Between 0 and [`MAX_JITTER`].
    /// Default [`DEFAULT_JITTER`].
    pub jitter: f64,
    /// State before any probe has run. Default [`Health::Up`], as HAProxy
    /// does, so a freshly started GSLB does not blackhole traffic while its
    /// first probes are in flight.
    pub initial: Health,
}

impl ProbeSpec {
    /// A spec for `kind` with every other field at its documented default.
    pub fn new(kind: ProbeKind) -> Self {
        Self {
            kind,
            interval: DEFAULT_INTERVAL,
            fast_interval: None,
            timeout: DEFAULT_TIMEOUT,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            jitter: DEFAULT_JITTER,
            initial: Health::Up,
        }
    }

    /// Checks every field and reports *all* problems at once.
    ///
    /// This reads and parses the CA file of an HTTPS check with
    /// [`Trust::CaFile`] (a small blocking read), so "unreadable CA file" is
    /// reported here rather than at the first probe.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        self.validate_timing(&mut errors);
        if let ProbeKind::Http(check) = &self.kind {
            check.validate_into(&mut errors);
            if check.https
                && let Trust::CaFile(path) = &check.trust
                && let Err(e) = crate::tls::load_ca_file(path)
            {
                errors.push(e);
            }
        }
        SpecErrors::result(errors)
    }

    /// The timing and threshold checks, shared with the checker builder.
    pub(crate) fn validate_timing(&self, errors: &mut Vec<SpecError>) {
        if self.interval < MIN_INTERVAL {
            errors.push(SpecError::IntervalTooShort {
                field: "interval",
                value: self.interval,
            });
        }
        if let Some(fast) = self.fast_interval
            && fast < MIN_INTERVAL
        {
            errors.push(SpecError::IntervalTooShort {
                field: "fast_interval",
                value: fast,
            });
        }
        if self.timeout.is_zero() {
            errors.push(SpecError::ZeroTimeout);
        } else {
            for (field, interval) in [
                ("interval", Some(self.interval)),
                ("fast_interval", self.fast_interval),
            ] {
                if let Some(interval) = interval
                    && self.timeout >= interval
                {
                    errors.push(SpecError::TimeoutNotBelowInterval {
                        field,
                        timeout: self.timeout,
                        interval,
                    });
                }
            }
        }
        if self.rise == 0 {
            errors.push(SpecError::ZeroThreshold { field: "rise" });
        }
        if self.fall == 0 {
            errors.push(SpecError::ZeroThreshold { field: "fall" });
        }
        if !(0.0..=MAX_JITTER).contains(&self.jitter) {
            errors.push(SpecError::JitterOutOfRange { value: self.jitter });
        }
    }
}

/// What one probe attempt does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Open a TCP connection to `addr` and close it: up if the handshake
    /// completes within the timeout.
    Tcp {
        /// Where to connect.
        addr: SocketAddr,
    },
    /// One HTTP or HTTPS GET, judged by status code and optionally body.
    Http(HttpCheck),
}

impl fmt::Display for ProbeKind {
    /// A short target description for logs: `tcp 10.0.0.1:443`,
    /// `https 10.0.0.1:443 /healthz`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeKind::Tcp { addr } => write!(f, "tcp {addr}"),
            ProbeKind::Http(c) => {
                let scheme = if c.https { "https" } else { "http" };
                write!(f, "{scheme} {} {}", c.addr, c.path)
            }
        }
    }
}

/// An HTTP(S) GET check.
///
/// The TCP connection always goes to [`addr`](Self::addr); names only steer
/// what is *said* on it:
///
/// - the URL host (and so the TLS SNI and certificate name check) is
///   [`sni`](Self::sni) if set (HTTPS only), else the name part of
///   [`host`](Self::host) if that is a DNS name, else the IP of `addr` (no
///   SNI is sent for an IP);
/// - the `Host` header is [`host`](Self::host) verbatim if set, else the URL
///   host with the port (omitted when it is the scheme's default).
///
/// Redirects are never followed (a 301 is judged by [`expect`](Self::expect)
/// like any status), no proxy from the environment is used, and each probe
/// opens a new connection (see [`Checker`](crate::Checker)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Speak TLS.
    pub https: bool,
    /// Request path with optional query, starting with `/`. Default `/`.
    pub path: String,
    /// `Host` header override, e.g. `www.example.com` or `www.example.com:8443`.
    pub host: Option<String>,
    /// TLS server name (SNI, and the name the certificate must be valid for).
    /// HTTPS only; must be a DNS name.
    pub sni: Option<String>,
    /// Status codes that count as success. Default `200-399`.
    pub expect: StatusSet,
    /// If set, the first [`MAX_BODY_BYTES`] of the body must contain this
    /// string (byte-wise) for the probe to succeed.
    pub body_contains: Option<String>,
    /// Which certificates an HTTPS check trusts. Default [`Trust::SystemRoots`].
    pub trust: Trust,
}

impl HttpCheck {
    /// A plain-HTTP `GET /` to `addr` expecting 200-399.
    pub fn http(addr: SocketAddr) -> Self {
        Self {
            addr,
            https: false,
            path: "/".to_owned(),
            host: None,
            sni: None,
            expect: StatusSet::default(),
            body_contains: None,
            trust: Trust::SystemRoots,
        }
    }

    /// An HTTPS `GET /` to `addr` expecting 200-399, trusting system roots.
    pub fn https(addr: SocketAddr) -> Self {
        Self {
            https: true,
            ..Self::http(addr)
        }
    }

    /// The checks that need no I/O.
    pub(crate) fn validate_into(&self, errors: &mut Vec<SpecError>) {
        if !self.path.starts_with('/')
            || self
                .path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(SpecError::BadPath {
                path: self.path.clone(),
            });
        }
        if let Some(host) = &self.host
            && !is_host_header(host)
        {
            errors.push(SpecError::BadName {
                field: "host",
                value: host.clone(),
            });
        }
        if let Some(sni) = &self.sni {
            if !self.https {
                errors.push(SpecError::SniWithoutHttps);
            }
            if !is_dns_name(sni) {
                errors.push(SpecError::BadName {
                    field: "sni",
                    value: sni.clone(),
                });
            }
        }
        if !self.https && matches!(self.trust, Trust::CaFile(_)) {
            errors.push(SpecError::CaFileWithoutHttps);
        }
        if let Some(needle) = &self.body_contains
            && (needle.is_empty() || needle.len() > MAX_BODY_BYTES)
        {
            errors.push(SpecError::BadBodyNeedle { len: needle.len() });
        }
    }

    /// The name the URL carries (see the type docs), or `None` for the IP.
    pub(crate) fn url_name(&self) -> Option<&str> {
        if self.https
            && let Some(sni) = &self.sni
        {
            return Some(sni);
        }
        let host = self.host.as_deref()?;
        let name = split_host_port(host).0;
        (is_dns_name(name)).then_some(name)
    }
}

/// Which certificates an HTTPS check accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The operating system's trust store (loaded once per process).
    #[default]
    SystemRoots,
    /// Only the CA certificates in this PEM file (read when the check is
    /// built; a reload re-reads it).
    CaFile(PathBuf),
    /// Skip certificate verification entirely, for self-signed lab setups.
    /// The handshake signature is still checked, but anyone can impersonate
    /// the target.
    Insecure,
}

/// A set of HTTP status codes, written `200,204,300-399`.
///
/// Always non-empty and within 100-599 once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    /// Inclusive ranges, sorted and merged.
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusSet {
    /// `200-399`: success and redirects, like HAProxy's default `http-check`.
    fn default() -> Self {
        Self {
            ranges: vec![(200, 399)],
        }
    }
}

impl StatusSet {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The merged inclusive ranges, ascending.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// The set of the given inclusive ranges (sorted and merged here), for
    /// callers that validated them already, such as the topology loader.
    pub fn from_ranges(ranges: &[(u16, u16)]) -> Self {
        let mut sorted: Vec<(u16, u16)> = ranges.to_vec();
        sorted.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(sorted.len());
        for (lo, hi) in sorted {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Self { ranges: merged }
    }
}

impl fmt::Display for StatusSet {
    /// The canonical form, which [`parse_status_set`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for StatusSet {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_status_set(s)
    }
}

/// Parses a comma-separated list of status codes and inclusive ranges, e.g.
/// `"200,204,300-399"`. Whitespace around items is ignored; overlapping
/// items are merged. Every code must be within 100-599.
pub fn parse_status_set(input: &str) -> Result<StatusSet, SpecError> {
    let mut ranges = Vec::new();
    for item in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (parse_code(lo.trim(), input)?, parse_code(hi.trim(), input)?),
            None => {
                let code = parse_code(item, input)?;
                (code, code)
            }
        };
        if lo > hi {
            return Err(SpecError::StatusRangeReversed {
                lo,
                hi,
                input: input.to_owned(),
            });
        }
        ranges.push((lo, hi));
    }
    if ranges.is_empty() {
        return Err(SpecError::EmptyStatusSet);
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(StatusSet { ranges: merged })
}

fn parse_code(token: &str, input: &str) -> Result<u16, SpecError> {
    let code: u32 = token
        .parse()
        .ok()
        .filter(|_| token.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| SpecError::StatusSyntax {
            token: token.to_owned(),
            input: input.to_owned(),
        })?;
    match u16::try_from(code) {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(SpecError::StatusOutOfRange {
            code,
            input: input.to_owned(),
        }),
    }
}

/// `name` or `name:port`, where name is a DNS name or an IP (v6 in brackets).
fn is_host_header(value: &str) -> bool {
    let (name, port) = split_host_port(value);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    let name_ok = is_dns_name(name)
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok());
    port_ok && name_ok
}

fn split_host_port(value: &str) -> (&str, Option<&str>) {
    // `[v6]:port`, `[v6]`, `name:port`, `name`.
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
pub(crate) fn is_dns_name(name: &str) -> bool {
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

/// One reason a [`ProbeSpec`] cannot be used. Each message names the field,
/// the bad value and what to write instead; the config layer prefixes the
/// field path (`regions.eu-west.health.`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
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
    /// Jitter outside `0..=MAX_JITTER`.
    #[error(
        "jitter {value} is out of range; write a fraction between 0 and {MAX_JITTER} (0.1 = ±10%)"
    )]
    JitterOutOfRange {
        /// The configured value.
        value: f64,
    },
    /// A status code outside 100-599.
    #[error("status code {code} in \"{input}\" is out of range; use codes between 100 and 599")]
    StatusOutOfRange {
        /// The offending code.
        code: u32,
        /// The whole list as written.
        input: String,
    },
    /// A status list item that is not a number or `lo-hi` range.
    #[error(
        "\"{token}\" in status list \"{input}\" is not a status code; write codes and ranges like \"200,204,300-399\""
    )]
    StatusSyntax {
        /// The offending item.
        token: String,
        /// The whole list as written.
        input: String,
    },
    /// A range whose bounds are swapped.
    #[error("status range {lo}-{hi} in \"{input}\" is reversed; write {hi}-{lo}")]
    StatusRangeReversed {
        /// Lower bound as written.
        lo: u16,
        /// Upper bound as written.
        hi: u16,
        /// The whole list as written.
        input: String,
    },
    /// An empty status list.
    #[error("status list is empty; list at least one code, e.g. \"200-399\"")]
    EmptyStatusSet,
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
    /// SNI configured on a plain-HTTP check.
    #[error("sni is set but https is false; remove sni or enable https")]
    SniWithoutHttps,
    /// A CA file configured on a plain-HTTP check.
    #[error("trust names a CA file but https is false; remove the CA file or enable https")]
    CaFileWithoutHttps,
    /// An empty or oversized body needle.
    #[error(
        "body_contains is {len} bytes; use a non-empty string of at most {MAX_BODY_BYTES} bytes"
    )]
    BadBodyNeedle {
        /// Length of the configured needle.
        len: usize,
    },
    /// The CA file could not be read.
    #[error("cannot read CA file {}: {source}; check the path and its permissions", path.display())]
    CaFileUnreadable {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {} {reason}; it must hold PEM \"-----BEGIN CERTIFICATE-----\" blocks", path.display())]
    CaFileInvalid {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with the content.
        reason: String,
    },
    /// The operating system trust store could not be loaded.
    #[error(
        "cannot load the system trust store ({reason}); install CA certificates (e.g. the ca-certificates package) or use a CA file"
    )]
    SystemRoots {
        /// The loader's error.
        reason: String,
    },
    /// The HTTP client could not be built (an internal error, not a config one).
    #[error(
        "cannot build the HTTP client for this check: {reason}; this is a bug, please report it"
    )]
    HttpClient {
        /// The builder's error.
        reason: String,
    },
}

/// Every problem found in one [`ProbeSpec`], in field order.
#[derive(Debug, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    fn result(errors: Vec<SpecError>) -> Result<(), SpecErrors> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// The individual errors.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}

impl fmt::Display for SpecErrors {
    /// One error per line, or the single error as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> ProbeSpec {
        ProbeSpec::new(ProbeKind::Tcp {
            addr: "127.0.0.1:80".parse().unwrap(),
        })
    }

    #[test]
    fn defaults_match_haproxy() {
        let s = tcp();
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.rise, s.fall), (2, 3));
        assert_eq!(s.jitter, 0.10);
        assert_eq!(s.initial, Health::Up);
        assert!(s.validate().is_ok());
        assert_eq!(StatusSet::default().to_string(), "200-399");
    }

    #[test]
    fn status_set_parses_codes_and_ranges() {
        let s = parse_status_set("200, 204,300-399").unwrap();
        assert!(s.contains(200) && s.contains(204) && s.contains(300) && s.contains(399));
        assert!(!s.contains(201) && !s.contains(400));
        assert_eq!(s.to_string(), "200,204,300-399");
        // Merging of overlaps and adjacency.
        assert_eq!(
            parse_status_set("200-250,251,240-260").unwrap().to_string(),
            "200-260"
        );
        assert_eq!("503".parse::<StatusSet>().unwrap().to_string(), "503");
    }

    #[test]
    fn status_set_errors_say_what_to_write() {
        let e = parse_status_set("200,99").unwrap_err();
        assert!(matches!(e, SpecError::StatusOutOfRange { code: 99, .. }));
        assert!(e.to_string().contains("between 100 and 599"), "{e}");
        assert!(matches!(
            parse_status_set("600").unwrap_err(),
            SpecError::StatusOutOfRange { code: 600, .. }
        ));
        assert!(matches!(
            parse_status_set("70000").unwrap_err(),
            SpecError::StatusOutOfRange { code: 70000, .. }
        ));
        assert!(matches!(
            parse_status_set("2xx").unwrap_err(),
            SpecError::StatusSyntax { .. }
        ));
        assert!(matches!(
            parse_status_set("+200").unwrap_err(),
            SpecError::StatusSyntax { .. }
        ));
        let e = parse_status_set("399-300").unwrap_err();
        assert!(e.to_string().contains("write 300-399"), "{e}");
        assert!(matches!(
            parse_status_set(" , ").unwrap_err(),
            SpecError::EmptyStatusSet
        ));
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut s = tcp();
        s.timeout = Duration::from_secs(2);
        s.rise = 0;
        s.fall = 0;
        s.jitter = 0.9;
        let errs = s.validate().unwrap_err();
        let text = errs.to_string();
        assert_eq!(errs.errors().len(), 4, "{text}");
        assert!(
            text.contains(
                "timeout 2s must be shorter than interval 2s; lower timeout or raise interval"
            ),
            "{text}"
        );
        assert!(text.contains("rise is 0"), "{text}");
        assert!(text.contains("fall is 0"), "{text}");
        assert!(text.contains("jitter 0.9"), "{text}");

        let mut s = tcp();
        s.fast_interval = Some(Duration::from_millis(500));
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("fast_interval 500ms")
        );
        s.fast_interval = Some(Duration::from_millis(10));
        assert!(matches!(
            s.validate().unwrap_err().errors()[0],
            SpecError::IntervalTooShort { .. }
        ));
        s.fast_interval = None;
        s.timeout = Duration::ZERO;
        assert!(matches!(
            s.validate().unwrap_err().errors()[0],
            SpecError::ZeroTimeout
        ));
    }

    #[test]
    fn http_validation() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let mut c = HttpCheck::http(addr);
        c.path = "healthz".into();
        c.host = Some("bad host".into());
        c.sni = Some("10.0.0.1".into());
        c.trust = Trust::CaFile("/nonexistent".into());
        c.body_contains = Some(String::new());
        let errs = ProbeSpec::new(ProbeKind::Http(c)).validate().unwrap_err();
        let text = errs.to_string();
        assert!(
            text.contains("path \"healthz\" must start with '/'"),
            "{text}"
        );
        assert!(
            text.contains("host \"bad host\" is not a valid name"),
            "{text}"
        );
        assert!(text.contains("sni is set but https is false"), "{text}");
        assert!(
            text.contains("sni \"10.0.0.1\" is not a valid name"),
            "{text}"
        );
        assert!(
            text.contains("trust names a CA file but https is false"),
            "{text}"
        );
        assert!(text.contains("body_contains is 0 bytes"), "{text}");

        let mut c = HttpCheck::https(addr);
        c.trust = Trust::CaFile("/nonexistent/ca.pem".into());
        let errs = ProbeSpec::new(ProbeKind::Http(c)).validate().unwrap_err();
        assert!(matches!(
            errs.errors(),
            [SpecError::CaFileUnreadable { .. }]
        ));
        assert!(
            errs.to_string()
                .contains("cannot read CA file /nonexistent/ca.pem"),
            "{errs}"
        );
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
            assert!(is_host_header(ok), "{ok}");
        }
        for bad in ["example.com:http", "::1", "exa mple"] {
            assert!(!is_host_header(bad), "{bad}");
        }
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let mut c = HttpCheck::https(addr);
        assert_eq!(c.url_name(), None);
        c.host = Some("www.example:8443".into());
        assert_eq!(c.url_name(), Some("www.example"));
        c.sni = Some("probe.test".into());
        assert_eq!(c.url_name(), Some("probe.test"));
        c.https = false;
        assert_eq!(c.url_name(), Some("www.example"));
        c.host = Some("10.1.1.1".into());
        assert_eq!(c.url_name(), None);
    }
}
