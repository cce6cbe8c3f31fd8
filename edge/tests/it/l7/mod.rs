//! The L7 tier end to end: a node in-process on loopback in front of demo
//! backends, driven by raw HTTP/1.1, hyper (HTTP/2, h2c) and rustls
//! clients.

mod abuse;
mod balancing;
pub mod differential;
mod fast_path;
mod grpc;
mod h2c_backends;
pub mod http1_cases;
mod lifecycle;
mod operator;
mod protocols;
mod resilience;
mod route_actions;
mod routing;
pub mod support;
mod tls_backends;
