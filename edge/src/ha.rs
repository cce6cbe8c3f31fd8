//! The L4 node's side of VIP high availability: the commands keepalived and
//! BIRD run to learn whether this node should hold the region's VIP.
//!
//! The L4 node itself stays a TCP proxy: it listens on the VIP whether or
//! not the host holds it (freebind, see `l4::bind_vip`) and answers
//! `GET /readyz` on its admin API (ready while at least one L7 node is
//! healthy in its table and it is not draining). The engines move the VIP:
//!
//! - **VRRP** (keepalived, active-passive): a `vrrp_script` runs
//!   [`check`] every second; a failure lowers the node's priority or faults
//!   it, and the VIP moves to the peer.
//! - **BGP** (BIRD 2, active-active with ECMP): [`announce`] runs beside
//!   the node and enables BIRD's static protocol carrying the VIP's /32
//!   while the node is ready, and disables it otherwise.
//!
//! # Layout
//!
//! - `ready`: one poll of `/readyz` (plain HTTP/1.1 over a `TcpStream`).
//! - [`check`]: `edge check`, polls for a bounded window.
//! - [`announce`]: `edge announce`, the long-running BIRD driver, its state
//!   machine pure and tested apart from the I/O.

pub mod announce;
pub mod check;
mod ready;
