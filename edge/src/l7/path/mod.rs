//! The request path, in the order a request goes through it.
//!
//! 1. [`accept`]: a connection arrives — PROXY header, per-client cap, TLS
//!    handshake and ALPN;
//! 2. [`tap`]: the client stream the HTTP layers read (the drain told of
//!    reads, HTTP/1 bytes through the smuggling guard, bytes replayed at a
//!    hand-off);
//! 3. one of two HTTP paths reads the request and writes the answer:
//!    [`fast`] for the common HTTP/1.1 request, [`http`] (hyper) for the
//!    rest, handed the connection by the fast path at a request boundary;
//! 4. [`steps`]: what both paths run for every request, in one order —
//!    admission, route, then the attempts on the pool's servers with
//!    retries — each step a pure decision of [`crate::l7::rules`] applied
//!    to the run-time state of [`crate::l7::shared`];
//! 5. [`access`]: the end — the access log line and the route's metrics.

pub mod accept;
pub mod access;
pub mod fast;
pub mod http;
pub mod steps;
pub mod tap;
