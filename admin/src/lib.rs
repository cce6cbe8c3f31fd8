//! `admin`: the admin HTTP endpoint every daemon serves (the GSLB, each L4
//! node, each L7 node) on its own address.
//!
//! A small, dependency-light HTTP/1.1 server over hyper 1:
//!
//! - a [`Router`] of `GET`/`POST` routes with path parameters
//!   (`/v1/regions/{region}/fail`), query parameters
//!   (`/v1/explain?name=…&client=…`) and a bounded request body, served by
//!   async handlers that answer a [`Response`] (status, content type, body;
//!   JSON helpers over serde_json);
//! - 404 and 405 (with `Allow`) answered with a JSON error body;
//! - **bearer-token protection of mutating routes**: a route declares its
//!   [`Access`]; `Access::Mutate` routes need `Authorization: Bearer TOKEN`
//!   when a [`Token`] is configured, compared in constant time. A server
//!   whose listener is not on a loopback address must have a token, or it
//!   refuses to start ([`AdminError::TokenRequired`]);
//! - built-in `GET /healthz` and, given a `prometheus_client` registry,
//!   `GET /metrics` (see [`metrics`] for the exposition formats);
//! - graceful shutdown on a `CancellationToken`: stop accepting, let
//!   requests in flight finish within [`AdminConfig::shutdown_grace`], then
//!   close what is left.
//!
//! Servers never bind: [`AdminServer::new`] takes a bound
//! `tokio::net::TcpListener`, so tests bind `127.0.0.1:0`.
//!
//! # Example
//!
//! ```no_run
//! use admin::{AdminConfig, AdminServer, Request, Response, Router, StatusCode};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::new()
//!     .get("/v1/status", |_req: Request| async {
//!         Response::json(StatusCode::OK, &serde_json::json!({ "ok": true }))
//!     })
//!     .post("/v1/regions/{region}/fail", |req: Request| async move {
//!         let region = req.param("region").unwrap_or_default().to_owned();
//!         Response::json(StatusCode::OK, &serde_json::json!({ "failed": region }))
//!     });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
//! let config = AdminConfig { token: admin::Token::from_env()?, ..AdminConfig::default() };
//! let server = AdminServer::new(listener, router, config)?;
//! server.run(CancellationToken::new()).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`api`]: the JSON each daemon's admin API answers, shared by the
//!   daemons and `gtm`.
//! - [`router`]: the route table and its pure path matching.
//! - [`request`] / [`response`]: what handlers receive and answer.
//! - [`auth`]: the bearer token and its constant-time check.
//! - [`metrics`]: the `/metrics` exposition (Prometheus text 0.0.4 or
//!   OpenMetrics, negotiated), and reading a counter back from it.
//! - `server`: the hyper adapter, the only module naming hyper types.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod request;
pub mod response;
pub mod router;
mod server;

pub use auth::{TOKEN_ENV, Token};
pub use hyper::{Method, StatusCode};
pub use request::Request;
pub use response::Response;
pub use router::{Access, Handler, Router};
pub use server::{AdminConfig, AdminServer, serve};

use std::net::SocketAddr;

/// Why an admin server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The listener is reachable from other hosts and no token protects the
    /// mutating routes.
    #[error(
        "admin endpoint {addr} is not on a loopback address and has no bearer token: {help}, \
         or bind the admin address to 127.0.0.1 or [::1]"
    )]
    TokenRequired {
        /// The listener's address.
        addr: SocketAddr,
        /// How to set a token ([`AdminConfig::token_help`]).
        help: String,
    },
    /// The configured token cannot be used.
    #[error("the admin token from {source_name} is unusable: {reason}")]
    BadToken {
        /// Where the token came from (an environment variable, a file field).
        source_name: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The listener's own address could not be read.
    #[error("cannot read the admin listener's address: {0}")]
    LocalAddr(#[source] std::io::Error),
}
