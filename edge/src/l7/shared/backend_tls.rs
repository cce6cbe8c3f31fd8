//! TLS to backend servers (re-encryption): each TLS pool's client
//! configuration — trust, SNI, client certificate, ALPN and session cache
//! — and the handshake, whose failures are named for the log and the
//! `edge_l7_backend_tls_errors_total` metric.
//!
//! The configuration is built by the `probe` crate's [`probe::verified_config`],
//! the one the pool's health checks use ([`check_tls`]), so requests and
//! checks trust the same certificates. "System roots" is the platform
//! verifier (on Linux: the system's CA store, as `rustls-native-certs`
//! reads it): an operator's private CA installed with
//! `update-ca-certificates` is trusted without a `ca:` line, which a
//! built-in Mozilla list (`webpki-roots`) would not do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use topology::tiers::l7::{BackendProtocol, BackendTls, BackendTrust, Pool};
use tracing::warn;

/// Numbers every configuration built: backend connections are pooled by
/// server and number, so a connection made under one configuration (one
/// CA, one client certificate) never carries another's requests.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A TLS pool's client side, built once per configuration load.
pub struct PoolTls {
    id: u64,
    settings: BackendTls,
    protocol: BackendProtocol,
    config: Arc<rustls::ClientConfig>,
    connector: TlsConnector,
    /// The configured SNI name; `None`: each server's IP address.
    name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for PoolTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolTls")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .finish()
    }
}

/// Why a pool's TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("pool {pool}: tls: {problem}")]
pub struct PoolTlsError {
    /// The pool.
    pub pool: String,
    /// What is wrong, naming the file.
    pub problem: String,
}

/// Why a TLS handshake with a backend server failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct TlsFailure {
    /// A short kind, the metric's `reason` label: `unknown_issuer`,
    /// `name_mismatch`, `expired`, `not_yet_valid`, `bad_certificate`,
    /// `alert` (the server refused, e.g. for want of a client
    /// certificate), `no_h2`, `timeout` or `handshake`.
    pub reason: &'static str,
    /// The words for the log.
    pub detail: String,
}

impl TlsFailure {
    fn of(error: &std::io::Error) -> Self {
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => {
                let (reason, detail) = probe::classify_tls_error(tls);
                Self { reason, detail }
            }
            None => Self {
                reason: "handshake",
                detail: format!("connection failed during the handshake: {error}"),
            },
        }
    }
}

/// The trust and client certificate of `tls` as the `probe` crate takes
/// them.
pub fn check_tls(tls: &BackendTls) -> (probe::Trust, Option<probe::ClientCert>) {
    let trust = match &tls.trust {
        BackendTrust::SystemRoots => probe::Trust::SystemRoots,
        BackendTrust::CaFile(path) => probe::Trust::CaFile(path.clone()),
        BackendTrust::Insecure => probe::Trust::Insecure,
    };
    let client = tls.client_cert.as_ref().map(|c| probe::ClientCert {
        cert: c.cert.clone(),
        key: c.key.clone(),
    });
    (trust, client)
}

impl PoolTls {
    /// `pool`'s TLS client, `None` for a plain pool. Reads its files (CA,
    /// client certificate and key). When `previous` has the same settings
    /// and protocol, its session cache and number are kept, so a reload
    /// costs no server a full handshake and open connections stay in use
    /// (connections verified against a CA file's old contents included).
    /// Warns once per load when certificates go unverified.
    pub fn load(
        pool: &Pool,
        previous: Option<&PoolTls>,
    ) -> Result<Option<Arc<Self>>, PoolTlsError> {
        let Some(settings) = &pool.tls else {
            return Ok(None);
        };
        let failed = |problem: String| PoolTlsError {
            pool: pool.name.clone(),
            problem,
        };
        let (trust, client) = check_tls(settings);
        let mut config =
            probe::verified_config(&trust, client.as_ref()).map_err(|e| failed(e.to_string()))?;
        config.alpn_protocols = vec![match pool.protocol {
            BackendProtocol::Http1 => b"http/1.1".to_vec(),
            BackendProtocol::Http2 => b"h2".to_vec(),
        }];
        let kept = previous.filter(|p| p.settings == *settings && p.protocol == pool.protocol);
        if let Some(previous) = kept {
            // A clone shares the cache.
            config.resumption = previous.config.resumption.clone();
        }
        let name = settings
            .sni
            .clone()
            .map(ServerName::try_from)
            .transpose()
            .map_err(|e| failed(format!("sni: {e}")))?;
        if settings.trust == BackendTrust::Insecure {
            warn!(
                pool = %pool.name,
                "tls.insecure: the servers' certificates are not verified; anyone on the path can impersonate them"
            );
        }
        let config = Arc::new(config);
        Ok(Some(Arc::new(Self {
            id: kept.map_or_else(|| NEXT_ID.fetch_add(1, Ordering::Relaxed), |p| p.id),
            settings: settings.clone(),
            protocol: pool.protocol,
            connector: TlsConnector::from(config.clone()),
            config,
            name,
        })))
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &BackendTls {
        &self.settings
    }

    /// The number backend connections made with this configuration are
    /// pooled under.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The TLS handshake over `tcp` to the server at `addr`, within
    /// `timeout`; for an HTTP/2 pool, the server must choose `h2`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, TlsFailure> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        let stream = tokio::time::timeout(timeout, self.connector.connect(name, tcp))
            .await
            .map_err(|_| TlsFailure {
                reason: "timeout",
                detail: format!("no TLS handshake within {timeout:?}"),
            })?
            .map_err(|e| TlsFailure::of(&e))?;
        if self.protocol == BackendProtocol::Http2
            && stream.get_ref().1.alpn_protocol() != Some(b"h2")
        {
            return Err(TlsFailure {
                reason: "no_h2",
                detail: "the server did not choose HTTP/2 (ALPN h2); use an HTTP/1.1 pool".into(),
            });
        }
        Ok(stream)
    }
}
