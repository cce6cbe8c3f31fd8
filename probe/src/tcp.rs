//! The TCP connect probe: up if the three-way handshake completes.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::outcome::Outcome;

/// Connects to `addr` and closes the connection at once. The caller bounds
/// the attempt with its timeout.
pub(crate) async fn attempt(addr: SocketAddr) -> Outcome {
    match TcpStream::connect(addr).await {
        // Dropping the stream closes it; nothing is written, like HAProxy's
        // plain `check` on a TCP server.
        Ok(_stream) => Outcome::pass("connected"),
        Err(e) => Outcome::fail(describe_io(&e)),
    }
}

/// The short detail for an I/O error: the common kinds in plain words,
/// anything else as the OS says it.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".to_owned(),
        ConnectionReset => "connection reset by peer".to_owned(),
        ConnectionAborted => "connection aborted".to_owned(),
        TimedOut => "connect timed out (OS)".to_owned(),
        UnexpectedEof => "connection closed by peer".to_owned(),
        HostUnreachable => "host unreachable".to_owned(),
        NetworkUnreachable => "network unreachable".to_owned(),
        AddrNotAvailable => "address not available".to_owned(),
        _ => e.to_string(),
    }
}
