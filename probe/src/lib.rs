//! Health probes with rise/fall hysteresis, shared by the GSLB (probing each
//! region's VIP), the L4 tier (probing its L7 nodes) and the L7 tier (probing
//! backend servers).
//!
//! A check is described by a [`ProbeSpec`]: *what* to probe ([`ProbeKind`]:
//! a TCP connect or an HTTP(S) GET) and *how often and how strictly*
//! (interval, timeout, jitter, `rise`/`fall` thresholds, initial state). The
//! same vocabulary as HAProxy's `inter`/`fastinter`/`rise`/`fall`, Route 53
//! health checks and Envoy's active health checking.
//!
//! # Layout
//!
//! - [`spec`]: the check description the [`Prober`] runs; the rules it
//!   shares with the topology file (and their messages) are
//!   `topology::health`'s, the status-set grammar ([`parse_status_set`])
//!   is `topology::status`'s.
//! - [`error`]: the [`SpecError`] catalogue: those shared rules, the rules of
//!   the spec's own fields, and the failures of building a client.
//! - [`topology`]: [`ProbeSpec`]s from the topology's validated health checks.
//! - [`attempt`]: one probe attempt ([`Checker::probe`]) bounded by a timeout,
//!   returning a [`ProbeResult`] (or the caller's own attempt, a
//!   [`CustomCheck`], for protocols spoken elsewhere: the L7 tier's gRPC
//!   health check); the TCP and HTTP adapters live beside it
//!   (only `http` imports reqwest, only `tls` imports rustls, and names the
//!   [`Trust`] modes), and report an `outcome` it times.
//! - [`hysteresis`]: the pure Up/Down state machine ([`Hysteresis`]), no I/O
//!   and no clock.
//! - [`jitter`]: the seeded RNG and the pure jittered-interval function.
//! - [`scheduler`]: [`Prober`], which runs many checks concurrently, emits
//!   [`ProbeEvent`]s, publishes the latest [`CheckStatus`] per check and
//!   applies config reloads while carrying hysteresis state over.
//!
//! # Example
//!
//! ```no_run
//! use probe::{Prober, ProbeKind, ProbeSpec};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let shutdown = CancellationToken::new();
//! let (events_tx, mut events) = tokio::sync::mpsc::channel(1024);
//! let prober = Prober::new(events_tx, shutdown.clone(), 42);
//! let spec = ProbeSpec::new(ProbeKind::Tcp { addr: "127.0.0.1:443".parse()? });
//! prober.upsert("eu-west/vip", spec).await?;
//! while let Some(event) = events.recv().await {
//!     if let Some(t) = event.transition {
//!         println!("{} went {} after {} results", event.id, t.to, t.streak);
//!     }
//! }
//! shutdown.cancel();
//! prober.wait().await;
//! # Ok(())
//! # }
//! ```

pub mod attempt;
pub mod error;
mod http;
pub mod hysteresis;
pub mod jitter;
mod outcome;
pub mod scheduler;
pub mod spec;
mod tcp;
mod tls;
pub mod topology;

pub use ::topology::status::{StatusSet, parse_status_set};
pub use attempt::{Checker, ProbeResult};
pub use error::{SpecError, SpecErrors};
pub use hysteresis::{Health, Hysteresis, Transition};
pub use scheduler::{
    CheckId, CheckStatus, ProbeEvent, Prober, ReloadError, ReloadReport, StatusHandle, Upsert,
};
pub use spec::{CustomAttempt, CustomCheck, HttpCheck, ProbeKind, ProbeSpec};
pub use tls::{ClientCert, Trust, classify as classify_tls_error, verified_config};

/// A request error in a few plain words (`connection refused`, the TLS
/// reason), as probe results say it; for callers of
/// [`plain_http_client`] that show why a daemon did not answer.
pub fn request_error(e: &reqwest::Error) -> String {
    http::describe(e)
}

/// A reqwest client builder for plain-HTTP calls between our own daemons
/// (admin APIs, peer views). reqwest is built here without a process-wide
/// crypto provider, so its `build()` panics unless a TLS configuration is
/// supplied — even for plain HTTP; this builder supplies one that refuses
/// every certificate, so the client can never speak TLS by accident.
pub fn plain_http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(
            tls::client_config(false, &Trust::SystemRoots, None)
                .expect("a plain-HTTP TLS config needs no files and always builds"),
        )
}
