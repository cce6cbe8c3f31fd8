//! Integration tests for geo-data, one binary: the embedded database, the
//! MaxMind fixtures, flat (ip-location-db) layouts, errors, reloading, and the
//! prefix property.

mod embedded;
mod errors;
mod fixtures;
mod flat;
mod mmdb_writer;
mod oracle;
mod prefix_property;
mod reload;

use std::net::IpAddr;
use std::path::PathBuf;

/// Path of a committed fixture under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Parses an address literal.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
