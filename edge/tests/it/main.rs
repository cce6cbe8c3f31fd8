//! The `edge` crate's one integration-test binary (one binary per crate:
//! each links separately and the machine has two cores).
//!
//! Every module here talks to real sockets on loopback only, binds port 0
//! (or 127.0.0.x at a port it was just given), and bounds its waits.
//!
//! **To the L7 engineer:** add your modules below (e.g. `mod l7;` with
//! `tests/it/l7/mod.rs`), next to `mod l4;`. The L4 helpers in
//! `l4/support.rs` (fake L7 nodes that decode PROXY v2, a YAML topology
//! builder) are `pub` if you want them.

mod l4;
mod l7;
