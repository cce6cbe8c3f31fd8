//! Binding the DNS listen addresses: one UDP socket and one TCP listener
//! per address, on the same port.
//!
//! Servers receive bound listeners and never bind themselves, so tests can
//! bind port 0 and know the address before the server starts.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

/// Everything a GSLB node listens on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// DNS over UDP and TCP.
    pub dns: DnsListeners,
    /// The admin API, if the node serves one.
    pub admin: Option<TcpListener>,
}

/// Bound sockets for the DNS server.
#[derive(Debug, Default)]
pub struct DnsListeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, one beside each UDP socket.
    pub tcp: Vec<TcpListener>,
}

/// A listen address that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({transport}): {error}; {hint}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// The OS error.
    pub error: io::Error,
    /// What to do about it.
    pub hint: &'static str,
}

/// Attempts at finding a port free for both UDP and TCP when asked for port 0.
const PORT_ZERO_ATTEMPTS: usize = 16;

impl Listeners {
    /// Binds DNS (UDP and TCP) on each of `dns` and the admin API on `admin`.
    /// For port 0, the kernel picks the UDP port and TCP takes the same one,
    /// so both transports share it.
    pub async fn bind(
        dns: &[SocketAddr],
        admin: Option<SocketAddr>,
    ) -> Result<Listeners, BindError> {
        let mut listeners = Listeners::default();
        for &addr in dns {
            let (udp, tcp) = bind_pair(addr).await?;
            listeners.dns.udp.push(udp);
            listeners.dns.tcp.push(tcp);
        }
        if let Some(addr) = admin {
            let admin = TcpListener::bind(addr).await.map_err(|source| BindError {
                addr,
                transport: "admin, tcp",
                hint: hint(source.kind()),
                error: source,
            })?;
            listeners.admin = Some(admin);
        }
        Ok(listeners)
    }

    /// The DNS addresses actually bound (after port 0 was resolved).
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        self.dns
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }
}

fn hint(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::AddrInUse => {
            "another process holds it: stop that process or change the node's address in the topology"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: use a port such as 5353 or run with CAP_NET_BIND_SERVICE"
        }
        io::ErrorKind::AddrNotAvailable => "no local interface has this address",
        _ => "check the node's addresses in the topology",
    }
}

async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), BindError> {
    let error = |transport, source: io::Error| BindError {
        addr,
        transport,
        hint: hint(source.kind()),
        error: source,
    };
    let attempts = if addr.port() == 0 {
        PORT_ZERO_ATTEMPTS
    } else {
        1
    };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await.map_err(|e| error("udp", e))?;
        let bound = udp.local_addr().map_err(|e| error("udp", e))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(error(
        "tcp",
        last.unwrap_or_else(|| io::Error::other("no attempt made")),
    ))
}
