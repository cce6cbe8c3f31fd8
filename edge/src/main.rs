//! `edge`: runs a region's L4 and L7 load-balancing tiers.
//!
//! The building blocks (Maglev selection, PROXY protocol, the byte relay)
//! live in the `edge` library; the tiers that wire them to listeners,
//! health checks and the topology arrive with their own issues. Until then
//! this binary only describes itself.

use clap::Parser;

/// Runs one region's load-balancing tiers (L4 TCP on the VIP, L7 HTTP/TLS
/// proxies) as described by the topology file.
///
/// Not implemented yet: the L4 and L7 tiers land with their own issues.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {}

fn main() {
    Args::parse();
    eprintln!("edge: the L4 and L7 tiers are not implemented yet; see `edge --help`");
    std::process::exit(2);
}
