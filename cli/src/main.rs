//! `gtm`: deploys, inspects and drills the whole tiered topology.
//!
//! The subcommands arrive with their own issue; until then this binary only
//! describes itself.

use clap::Parser;

/// Deploys, inspects and rehearses failures of a GSLB topology
/// (`gtm up`, `gtm status`, `gtm fail REGION`, `gtm down`).
///
/// Not implemented yet: until it is, run `gslb --config FILE` directly.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {}

fn main() {
    Args::parse();
    eprintln!("gtm: not implemented yet; run `gslb --config examples/three-regions.yaml`");
    std::process::exit(2);
}
