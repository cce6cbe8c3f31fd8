//! The HTTP/1.1 fast path: the common request served without hyper, in
//! the way of Pingora and Sōzu.
//!
//! One task per client connection reads requests into a reused buffer,
//! parses them with `httparse` ([`codec`]), and drives the backend
//! connection itself ([`driver`]): no channel, no dispatcher, no task per
//! request. The request head goes to the backend as slices of the bytes
//! the client sent, less the hop-by-hop fields, plus the fields
//! [`crate::l7::rules::forward`] adds, with the body already read, in one vectored
//! write; a chunked request body is decoded by [`crate::l7::rules::chunked`] and
//! sent in chunks of the proxy's own (extensions and trailers dropped; a
//! malformed one is answered 400 and the connection closed); keep-alive
//! backend connections are pooled per server and node ([`IdlePool`]). Every decision is the general path's: admission
//! ([`crate::l7::rules::limits`]), [`crate::l7::rules::route`], [`crate::l7::shared::pool`],
//! [`crate::l7::rules::retry`], [`crate::l7::rules::fault`]'s answers, [`crate::l7::path::access`]'s log
//! line and metrics.
//!
//! # Hand-off
//!
//! At each request boundary, a request the fast path does not serve — not
//! HTTP/1.1 (an HTTP/2 preface, HTTP/1.0), `CONNECT` or a target not in
//! plain origin form, no single `Host`, a `Transfer-Encoding` other than
//! one `chunked`, the smuggling guard's `Content-Length` +
//! `Transfer-Encoding`, several `Content-Length`s, `Upgrade`, `Expect`,
//! `TE`, `Trailer`, the region health path, a route to an HTTP/2 or TLS
//! pool, a route that does more than forward (header rules, a redirect, a
//! fixed response, a declared body over its `max_body`, a chunked body
//! under one), a connection the framing guard flagged,
//! anything `httparse` rejects or a head over the limits — hands the
//! connection to hyper (`l7::http::serve_connection`) with the bytes
//! read so far ([`crate::l7::path::tap::Tapped::replay`]), and hyper serves it from
//! then on.
//! `regions.R.l7.http1_fast_path: false` sends every connection to hyper.
//!
//! This module names no hyper type.

pub mod codec;
pub mod driver;

use std::io;
use std::ops::{Deref, DerefMut};

use tokio::net::TcpStream;

use crate::l7::shared::idle::Idle;
use crate::l7::shared::metrics::Held;

pub(crate) use driver::serve;

/// A node's idle keep-alive connections to its backend servers, by
/// server, within [`crate::l7::shared::idle`]'s bounds. A connection is put back only
/// when its response was read to its end and both sides keep it alive;
/// one closed by the server meanwhile (`open_and_quiet`) is dropped when
/// met.
pub type IdlePool = Idle<Backend>;

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

/// Whether an idle connection is still open with nothing unread: a
/// server that closed it, or sent bytes nobody asked for, makes it unusable.
pub(crate) fn open_and_quiet(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
