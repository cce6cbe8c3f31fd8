//! The `edge` crate's one integration-test binary (one binary per crate:
//! each links separately and the machine has two cores).
//!
//! Every module here talks to real sockets on loopback only, binds port 0
//! (or 127.0.0.x at a port it was just given), and bounds its waits;
//! `l4::ha` also listens on a TEST-NET VIP that is on no interface (and
//! sends nothing there) and, as root, drives a real BIRD.
//!
//! - `l4`: the L4 tier in process, in front of fake L7 nodes that decode
//!   the PROXY v2 header;
//! - `l7`: the L7 tier in process, in front of demo backends.

mod l4;
mod l7;
