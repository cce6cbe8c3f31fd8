//! The L4 tier end to end, in process: a real `L4Node` on 127.0.0.1 in front
//! of fake L7 nodes (127.0.0.2, .3, …) that decode the PROXY v2 header and
//! report what they saw, and UDP echo servers (`udp`). `binary` and `ha`
//! run the real `edge` binary.

mod bench;
mod binary;
mod drain;
mod failover;
mod ha;
mod limits;
mod proxy;
mod reload;
pub mod support;
mod transfer;
mod udp;
