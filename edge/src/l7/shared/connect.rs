//! Opening a TCP connection to a backend server, for either HTTP path and
//! for the gRPC health check: bounded by the pool's connect timeout, with
//! `TCP_NODELAY` and TCP keep-alive set.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

/// TCP keep-alive on backend connections, so a vanished backend host is
/// noticed on connections that sit idle in the pool.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// A TCP connection to the backend server at `addr` within `timeout`,
/// with `TCP_NODELAY` and keep-alive set (either HTTP path).
pub(crate) async fn connect_tcp(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}
