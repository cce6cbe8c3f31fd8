//! The check description the [`Prober`](crate::Prober) runs: *what* to
//! probe and *how often and how strictly*, with the defaults of
//! [`ProbeSpec::new`].
//!
//! The rules and messages a check shares with the topology file (timing,
//! path, host, body) are `topology::health`'s, applied here to specs built
//! by hand; a spec made from a validated topology check
//! ([`spec_for`](crate::topology::spec_for)) already meets them. This adds
//! the rules of the fields only a spec has (jitter, `fast_interval`, SNI)
//! and the CA file read.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use topology::health::{
    self, CheckError, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE, DEFAULT_TIMEOUT, check_body,
    check_host, check_path, is_dns_name, split_host_port,
};
use topology::status::StatusSet;

use crate::error::{SpecError, SpecErrors};
use crate::hysteresis::Health;
use crate::jitter::{DEFAULT_JITTER, MAX_JITTER};
use crate::tls::{ClientCert, Trust, load_ca_file};

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
    /// [`Trust::CaFile`] and its client certificate (small blocking reads),
    /// so "unreadable CA file" is reported here rather than at the first
    /// probe.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        self.validate_timing(&mut errors);
        if let ProbeKind::Http(check) = &self.kind {
            check.validate_into(&mut errors);
            if check.https
                && let Trust::CaFile(path) = &check.trust
                && let Err(e) = load_ca_file(path)
            {
                errors.push(e);
            }
            if check.https
                && let Some(client) = &check.client_cert
                && let Err(e) = client.load()
            {
                errors.push(e);
            }
        }
        SpecErrors::result(errors)
    }

    /// The timing and threshold checks, shared with the checker builder.
    pub(crate) fn validate_timing(&self, errors: &mut Vec<SpecError>) {
        let mut intervals = vec![("interval", self.interval)];
        intervals.extend(self.fast_interval.map(|fast| ("fast_interval", fast)));
        let mut shared = Vec::new();
        health::check_timing(&intervals, self.timeout, self.rise, self.fall, &mut shared);
        errors.extend(shared.into_iter().map(SpecError::Check));
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
    /// An attempt the caller runs itself ([`CustomCheck`]).
    Custom(CustomCheck),
}

/// What a [`CustomCheck`] runs once per probe: `Ok(detail)` passes,
/// `Err(detail)` fails; the [`Checker`](crate::Checker) bounds it by the
/// spec's timeout and times it.
pub type CustomAttempt =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync;

/// A probe attempt for a protocol this crate does not speak, run by its
/// caller: the L7 tier's gRPC health check goes over its pool's own
/// HTTP/2 connections. The scheduler, hysteresis and timeout are this
/// crate's as for every kind.
///
/// Two compare equal when their targets do, so the target must name
/// everything that decides the attempt (a reload keeps a check whose
/// target is unchanged).
#[derive(Clone)]
pub struct CustomCheck {
    target: String,
    attempt: Arc<CustomAttempt>,
}

impl CustomCheck {
    /// A check described in logs as `target` that runs `attempt`.
    pub fn new(target: impl Into<String>, attempt: Arc<CustomAttempt>) -> Self {
        Self {
            target: target.into(),
            attempt,
        }
    }

    /// Runs one attempt.
    pub(crate) async fn attempt(&self) -> Result<String, String> {
        (self.attempt)().await
    }
}

impl fmt::Debug for CustomCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CustomCheck").field(&self.target).finish()
    }
}

impl PartialEq for CustomCheck {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
    }
}

impl Eq for CustomCheck {}

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
            ProbeKind::Custom(c) => f.write_str(&c.target),
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
    /// If set, the first [`MAX_BODY_BYTES`](topology::health::MAX_BODY_BYTES) of the body must contain this
    /// string (byte-wise) for the probe to succeed.
    pub body_contains: Option<String>,
    /// Which certificates an HTTPS check trusts. Default [`Trust::SystemRoots`].
    pub trust: Trust,
    /// The certificate an HTTPS check presents when the server asks for
    /// one (mTLS). Default none.
    pub client_cert: Option<ClientCert>,
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
            client_cert: None,
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
        errors.extend(check_path(&self.path).err().map(SpecError::Check));
        if let Some(host) = &self.host {
            errors.extend(check_host(host).err().map(SpecError::Check));
        }
        if let Some(sni) = &self.sni {
            if !self.https {
                errors.push(SpecError::SniWithoutHttps);
            }
            if !is_dns_name(sni) {
                errors.push(SpecError::Check(CheckError::BadName {
                    field: "sni",
                    value: sni.clone(),
                }));
            }
        }
        if !self.https && matches!(self.trust, Trust::CaFile(_)) {
            errors.push(SpecError::Check(CheckError::CaFileWithoutHttps));
        }
        if let Some(needle) = &self.body_contains {
            errors.extend(check_body(needle).err().map(SpecError::Check));
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
            SpecError::Check(CheckError::IntervalTooShort { .. })
        ));
        s.fast_interval = None;
        s.timeout = Duration::ZERO;
        assert!(matches!(
            s.validate().unwrap_err().errors()[0],
            SpecError::Check(CheckError::ZeroTimeout)
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
    fn url_names() {
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
