//! Integration tests of the `gslb` server over real sockets on loopback.

mod authoritative;
mod console;
mod edns;
mod fast_path;
mod geo_answers;
mod health;
mod hostile_input;
mod rrl;
mod support;
mod zone_file;
