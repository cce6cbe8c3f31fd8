//! A region's load-balancing tiers and demo backends: the L4 tier on the
//! VIP, the L7 proxies behind it, and the backends `gtm up` starts.

pub mod l4;
pub mod l7;

use std::net::SocketAddr;

use serde::Deserialize;

use crate::field::{Problems, Scalar};

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
}

/// A demo backend: a small HTTP server naming itself and its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Unique name.
    pub name: String,
    /// Address it serves HTTP on.
    pub listen: SocketAddr,
    /// The host it runs on.
    pub host: Option<String>,
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
            let listen = socket_addr(
                &backend.listen,
                &format!("{path}[{index}].listen"),
                problems,
            )?;
            Some(Backend {
                name: backend.name.clone(),
                listen,
                host: backend.host.clone(),
            })
        })
        .collect()
}
