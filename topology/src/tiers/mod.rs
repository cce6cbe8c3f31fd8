//! A region's load-balancing tiers and demo backends: the L4 tier on the
//! VIP, the L7 proxies behind it, and the backends `gtm up` starts.

pub mod l4;
pub mod l7;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::field::{Problems, Scalar};
use crate::tiers::l7::Cert;

/// A demo backend as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// Unique name.
    pub name: String,
    /// Address it serves HTTP on.
    pub listen: Scalar,
    /// The host it runs on (see `hosts:`).
    #[serde(default)]
    pub host: Option<String>,
    /// HTTPS on a second address (default: none).
    #[serde(default)]
    pub tls: Option<RawBackendTlsListener>,
    /// Address of its UDP echo (default: none).
    #[serde(default)]
    pub udp: Option<Scalar>,
}

/// `backends[].tls` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTlsListener {
    /// Address it serves HTTPS on.
    pub listen: Scalar,
    /// PEM certificate chain (relative paths are relative to the topology
    /// file).
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
}

/// A demo backend: a small HTTP server naming itself and its region, also
/// over TLS and with a UDP echo when asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Unique name.
    pub name: String,
    /// Address it serves HTTP on.
    pub listen: SocketAddr,
    /// The host it runs on.
    pub host: Option<String>,
    /// Where it serves the same over TLS, and with which certificate.
    pub tls: Option<BackendTlsListener>,
    /// Where it answers each UDP datagram with its name and the datagram.
    pub udp: Option<SocketAddr>,
}

/// A demo backend's HTTPS listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendTlsListener {
    /// Address it serves HTTPS on (not the HTTP one).
    pub listen: SocketAddr,
    /// Its certificate and key, paths as written.
    pub cert: Cert,
}

impl Backend {
    /// Every address it binds, with the field that sets it: `listen` (TCP),
    /// `tls.listen` (TCP) and `udp` (UDP).
    pub fn addresses(&self) -> Vec<(SocketAddr, &'static str)> {
        let mut addrs = vec![(self.listen, "listen")];
        addrs.extend(self.tls.as_ref().map(|tls| (tls.listen, "tls.listen")));
        addrs.extend(self.udp.map(|udp| (udp, "udp")));
        addrs
    }
}

/// Parses a `host:port` field.
pub(crate) fn socket_addr(
    text: &Scalar,
    path: &str,
    problems: &mut Problems,
) -> Option<SocketAddr> {
    let text = text.text();
    problems.check(
        path,
        text.parse().map_err(|_| {
            format!("{text:?} is not an address with a port; write e.g. \"127.0.1.101:9000\"")
        }),
    )
}

pub(crate) fn validate_backends(
    raw: &[RawBackend],
    path: &str,
    problems: &mut Problems,
) -> Vec<Backend> {
    raw.iter()
        .enumerate()
        .filter_map(|(index, backend)| {
            let path = format!("{path}[{index}]");
            let listen = socket_addr(&backend.listen, &format!("{path}.listen"), problems);
            let tls = backend.tls.as_ref().and_then(|tls| {
                let field = format!("{path}.tls.listen");
                let listen = socket_addr(&tls.listen, &field, problems)?;
                Some(BackendTlsListener {
                    listen,
                    cert: Cert {
                        cert: tls.cert.clone(),
                        key: tls.key.clone(),
                    },
                })
            });
            let udp = backend
                .udp
                .as_ref()
                .and_then(|udp| socket_addr(udp, &format!("{path}.udp"), problems));
            let listen = listen?;
            if let Some(tls) = &tls
                && tls.listen == listen
            {
                problems.add(
                    format!("{path}.tls.listen"),
                    format!("{listen} is also `listen`, where the backend serves plain HTTP; give HTTPS its own port, e.g. \"{}:9443\"", listen.ip()),
                );
            }
            Some(Backend {
                name: backend.name.clone(),
                listen,
                host: backend.host.clone(),
                tls,
                udp,
            })
        })
        .collect()
}
