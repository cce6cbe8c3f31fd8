//! The HTTP/1.1 fast path: the common request served without hyper, in
//! the way of Pingora and Sōzu.
//!
//! One task per client connection reads requests into a reused buffer,
//! parses them with `httparse` ([`codec`]), and drives the backend
//! connection itself ([`driver`]): no channel, no dispatcher, no task per
//! request. The request head goes to the backend as slices of the bytes
//! the client sent, less the hop-by-hop fields, plus the fields
//! [`super::forward`] adds, with the body already read, in one vectored
//! write; keep-alive backend connections are pooled per server and node
//! ([`IdlePool`]). Every decision is the general path's: admission
//! ([`super::limits`]), [`super::route`], [`super::pool`],
//! [`super::retry`], [`super::fault`]'s answers, [`super::access`]'s log
//! line and metrics.
//!
//! # Hand-off
//!
//! At each request boundary, a request the fast path does not serve — not
//! HTTP/1.1 (an HTTP/2 preface, HTTP/1.0), `CONNECT` or a target not in
//! plain origin form, no single `Host`, `Transfer-Encoding` (chunked
//! bodies, and the smuggling guard's `Content-Length` + `Transfer-Encoding`),
//! several `Content-Length`s, `Upgrade`, `Expect`, `TE`, the region health
//! path, a route to an `h2c` pool, a route that does more than forward
//! (header rules, a redirect, a fixed response, a declared body over its
//! `max_body`, an undeclared body length under one), a connection the
//! framing guard flagged,
//! anything `httparse` rejects or a head over the limits — hands the
//! connection to hyper (`l7::http::serve_connection`) with the bytes
//! read so far ([`super::tap::Tapped::replay`]), and hyper serves it from
//! then on.
//! `regions.R.l7.http1_fast_path: false` sends every connection to hyper.
//!
//! This module names no hyper type.

pub mod codec;
pub mod driver;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::metrics::Held;

pub(crate) use driver::serve;

/// A node's idle keep-alive connections to its backend servers, by
/// server. A connection is put back only when its response was read to
/// its end and both sides keep it alive; one idle longer than the tier's
/// `upstream_idle`, or closed by the server meanwhile, is dropped when
/// met.
#[derive(Debug, Default)]
pub struct IdlePool {
    idle: Mutex<HashMap<SocketAddr, Vec<(Backend, Instant)>>>,
}

/// A connection to a backend server, counted in its server's
/// connection gauge while it is open.
#[derive(Debug)]
pub struct Backend {
    stream: TcpStream,
    _held: Held,
}

impl Backend {
    /// `stream`, counted in `held`'s gauge until it closes.
    pub fn new(stream: TcpStream, held: Held) -> Self {
        Self {
            stream,
            _held: held,
        }
    }
}

impl Deref for Backend {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl DerefMut for Backend {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl IdlePool {
    /// An idle connection to `addr` that is still open, if any.
    pub fn take(&self, addr: SocketAddr, max_idle: Duration) -> Option<Backend> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let links = idle.get_mut(&addr)?;
        while let Some((stream, since)) = links.pop() {
            if since.elapsed() < max_idle && open_and_quiet(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps `stream` to `addr` for the next request; those idle too long
    /// are dropped meanwhile.
    pub fn put(&self, addr: SocketAddr, stream: Backend, max_idle: Duration) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let links = idle.entry(addr).or_default();
        links.retain(|(_, since)| since.elapsed() < max_idle);
        links.push((stream, Instant::now()));
    }
}

/// Whether an idle connection is still open with nothing unread: a
/// server that closed it, or sent bytes nobody asked for, makes it unusable.
fn open_and_quiet(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
