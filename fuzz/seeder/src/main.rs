//! Writes the seed corpus of every fuzz target, `fuzz/seeds/TARGET/`, from
//! the cases the project's tests use, so that libFuzzer starts from inputs
//! that reach deep into each parser rather than from nothing.
//!
//! ```text
//! cargo run --locked --manifest-path fuzz/Cargo.toml -p seeder
//! ```
//!
//! Each module builds one target's seeds and names the tests its cases come
//! from; where a test reads a file (the examples), so does this. Every run
//! rewrites the directories whole, so a case removed here leaves no stale
//! file behind; commit the result.

mod dns;
mod ecs;
mod http1;
mod http1_equivalence;
mod proxy_protocol;
mod route;
mod topology;

// The differential test's cases and the fuzz target's input, read where
// they are written.
#[allow(dead_code)] // its constants are the differential test's
#[path = "../../../edge/tests/it/l7/http1_cases.rs"]
mod http1_cases;
#[path = "../../fuzz_targets/http1_input.rs"]
mod http1_input;

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

/// One input: a file name that says what it is, and its bytes.
pub type Seed = (String, Vec<u8>);

fn main() -> io::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let dns = dns::seeds();
    let targets = [
        ("dns_request", dns.clone()),
        ("fast_slow_equivalence", dns),
        ("ecs_option", ecs::seeds()),
        ("http1_codec", http1::seeds()),
        ("http1_equivalence", http1_equivalence::seeds()),
        ("proxy_protocol", proxy_protocol::seeds()),
        ("route_matcher", route::seeds()),
        ("topology_loader", topology::seeds(&repo)?),
    ];
    for (target, seeds) in targets {
        let dir = repo.join("fuzz/seeds").join(target);
        write(&dir, &seeds)?;
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}

/// Replaces `dir` with one file per seed. Names must differ in more than
/// case, for checkouts on case-insensitive file systems.
fn write(dir: &Path, seeds: &[Seed]) -> io::Result<()> {
    let mut names = BTreeSet::new();
    for (name, _) in seeds {
        let unique = names.insert(name.to_ascii_lowercase());
        assert!(unique, "{}: two seeds named {name}", dir.display());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}
