//! The pure decisions of the L7 tier: no I/O, time and randomness passed
//! in, each table-tested, each written once and called by both HTTP paths.
//! In a request's order:
//!
//! - [`framing`]: the request-smuggling guard over HTTP/1 bytes, with
//!   [`chunked`] bodies read in any split;
//! - [`limits`]: admission — per-client rate (GCRA), connection cap,
//!   concurrency gates;
//! - [`route`]: host, path, method, query, cookie and header matching;
//!   rewrites, redirects, fixed answers, body limits;
//! - [`forward`]: header rewriting (hop-by-hop, `X-Forwarded-*`,
//!   `X-Request-ID`, `Via`, the route's header rules);
//! - [`balance`]: the balancing algorithms; [`sticky`]: the affinity
//!   cookie;
//! - [`retry`]: which attempts are retried, for which methods and bodies,
//!   and the retry budget;
//! - [`fault`]: why the proxy answered itself — source (client, proxy,
//!   backend), retryability, status and headers.

pub mod balance;
pub mod chunked;
pub mod fault;
pub mod forward;
pub mod framing;
pub mod limits;
pub mod retry;
pub mod route;
pub mod sticky;
