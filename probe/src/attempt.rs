//! One probe attempt: build a [`Checker`] once per check, then call
//! [`Checker::probe`] once per interval. Every outcome, including every
//! failure, is a [`ProbeResult`] with a short human detail; nothing is
//! swallowed and nothing panics on what the network sends.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use topology::duration::fmt_duration;

use crate::error::SpecErrors;
use crate::http::HttpProbe;
use crate::outcome::Outcome;
use crate::spec::{CustomCheck, ProbeKind, ProbeSpec};

/// The outcome of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the target passed.
    pub ok: bool,
    /// Time from the start of the attempt to its verdict (the timeout itself
    /// for an attempt that timed out). Measured on tokio's clock, so it is
    /// virtual under `tokio::time::pause`.
    pub latency: Duration,
    /// A short human explanation: `HTTP 200`, `HTTP 503`, `connection
    /// refused`, `timed out after 1s`, `body lacks "ok"`, `TLS: certificate
    /// not trusted`, `connected`.
    pub detail: String,
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok { "ok" } else { "failed" };
        write!(
            f,
            "{verdict} in {}: {}",
            fmt_duration(self.latency),
            self.detail
        )
    }
}

/// A ready-to-run probe for one [`ProbeKind`]: for HTTP(S) it owns the
/// client, built once (TLS trust, name pinning) and reused by every probe.
///
/// Connection policy: **every probe opens a new connection** and asks the
/// server to close it (`Connection: close`; the client keeps no idle
/// connections). Like HAProxy's checks, this makes each probe exercise
/// accept, handshake and request handling, and a probe can never pass on a
/// connection that was established before the target broke.
#[derive(Debug, Clone)]
pub struct Checker {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Tcp(std::net::SocketAddr),
    Http(Box<HttpProbe>),
    Custom(CustomCheck),
}

impl Checker {
    /// Validates `spec` and builds its checker. Reads the CA file of an
    /// HTTPS check with [`Trust::CaFile`](crate::Trust::CaFile); loads the
    /// system trust store on first use of [`Trust::SystemRoots`](crate::Trust::SystemRoots).
    pub fn new(spec: &ProbeSpec) -> Result<Self, SpecErrors> {
        let mut errors = Vec::new();
        spec.validate_timing(&mut errors);
        match Self::for_kind(&spec.kind) {
            Ok(checker) if errors.is_empty() => Ok(checker),
            Ok(_) => Err(SpecErrors(errors)),
            Err(SpecErrors(more)) => {
                errors.extend(more);
                Err(SpecErrors(errors))
            }
        }
    }

    /// Builds the checker for `kind` alone (for one-off probes, e.g. a CLI
    /// `probe` command). Validates the kind's own fields.
    pub fn for_kind(kind: &ProbeKind) -> Result<Self, SpecErrors> {
        let inner = match kind {
            ProbeKind::Tcp { addr } => Inner::Tcp(*addr),
            ProbeKind::Http(check) => {
                let mut errors = Vec::new();
                check.validate_into(&mut errors);
                if !errors.is_empty() {
                    return Err(SpecErrors(errors));
                }
                Inner::Http(Box::new(HttpProbe::new(check)?))
            }
            ProbeKind::Custom(check) => Inner::Custom(check.clone()),
        };
        Ok(Self { inner })
    }

    /// Runs one attempt, bounded by `timeout` (connect, TLS, request and body
    /// read together). Never fails: a failure is a result with `ok == false`.
    /// Dropping the future aborts the attempt and closes its connection.
    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        let start = Instant::now();
        let attempt = async {
            match &self.inner {
                Inner::Tcp(addr) => crate::tcp::attempt(*addr).await,
                Inner::Http(http) => http.attempt().await,
                Inner::Custom(check) => match check.attempt().await {
                    Ok(detail) => Outcome::pass(detail),
                    Err(detail) => Outcome::fail(detail),
                },
            }
        };
        let outcome = match tokio::time::timeout(timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::fail(format!("timed out after {}", fmt_duration(timeout))),
        };
        ProbeResult {
            ok: outcome.ok,
            latency: start.elapsed().min(timeout),
            detail: outcome.detail,
        }
    }
}
