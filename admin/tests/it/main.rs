//! The admin server over real sockets on 127.0.0.1:0: routing, the bearer
//! token, `/metrics`, graceful shutdown.

mod auth;
mod lifecycle;
mod metrics;
mod routing;
mod support;
