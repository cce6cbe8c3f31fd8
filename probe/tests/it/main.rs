//! Integration tests of the probe crate: real sockets on 127.0.0.1:0,
//! virtual time (`start_paused`) wherever a timer is involved.

mod http;
mod https;
mod reload;
mod scheduler;
mod support;
mod tcp;
