//! `edge`: the building blocks of a region's load-balancing tiers.
//!
//! The region's VIP is served by the L4 tier, which accepts TCP connections
//! (plain or TLS, never terminated), picks an L7 node for each with a Maglev
//! table, announces the client's addresses with a PROXY protocol v2 header
//! and then relays bytes both ways. The L7 tier parses that header.
//!
//! # Layout
//!
//! Modules are named after the stage a connection goes through:
//!
//! - [`maglev`]: pure selection — the Maglev consistent-hashing table over
//!   weighted backends, and the named, seeded flow-key hashes (5-tuple or
//!   client IP). No I/O, no clocks, no randomness.
//! - [`proxy_protocol`]: pure framing — PROXY protocol v1/v2 encoder and
//!   incremental decoder, written by the L4 tier and read by the L7 tier.
//! - [`relay`]: the byte pump between the client and the chosen L7 node:
//!   half-close aware, idle timeout, `splice(2)` on Linux, buffered copy
//!   elsewhere.
//!
//! - [`l4`]: the L4 tier that composes them — VIP listeners, Maglev over
//!   the healthy L7 nodes (health from the `probe` crate), PROXY v2 to the
//!   chosen node, the relay, metrics and status on the `admin` endpoint,
//!   reload and drain.
//! - [`l7`]: the L7 tier — PROXY header, TLS by SNI, HTTP/1.1 and HTTP/2
//!   reverse proxy with routes, balanced and health-checked pools,
//!   retries, limits, the region health path, metrics, reload and drain;
//!   laid out as `node` → `path` (the request's stages) → `shared` →
//!   `rules` (only `l7::path::http`, the gRPC health check and the demo
//!   backend name hyper types).
//! - [`ha`]: the L4 node's side of VIP high availability — `edge check`
//!   (keepalived's track script) and `edge announce` (drives BIRD), both
//!   polling the node's `GET /readyz`.
//! - [`demo_backend`]: the demo backend the topology's `backends:` run.
//!
//! # Unsafe code
//!
//! None: the workspace forbids it. Zero-copy `splice(2)` goes through the
//! safe wrappers of the `nix` crate.

pub mod demo_backend;
pub mod ha;
pub mod l4;
pub mod l7;
pub mod maglev;
pub mod proxy_protocol;
pub mod relay;

/// A problem with the topology or the command line (exit code 1), as
/// opposed to a runtime failure (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
