//! `edge check`: the command keepalived's `vrrp_script` runs every second
//! to decide whether this L4 node may hold the VIP.
//!
//! keepalived runs a script at most once a second (no fractions) and skips a
//! run while the previous one is still going, so one run watches a window
//! just under that second: it polls `/readyz` every `every` (100 ms) for at
//! most `window` (800 ms) and fails at the first poll that is refused or
//! not ready, or at the `misses`-th (3rd) unanswered poll in a row. A node
//! that dies or stops being ready is thus noticed within about one poll,
//! a hung one within a few, and a merely slow answer costs nothing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::ha::ready::{self, Patience};

/// How `edge check` polls.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The L4 node's admin API.
    pub admin: SocketAddr,
    /// How long one run watches (`--for`).
    pub window: Duration,
    /// Time between polls, and the timeout of each (`--every`).
    pub every: Duration,
    /// Unanswered polls in a row that fail the run (`--misses`).
    pub misses: u32,
}

/// Polls `/readyz` at `0, every, 2 × every, …` while that is before
/// `window`. `Ok` unless a poll was refused or not 200, or `misses` polls
/// in a row went unanswered within `every`; then `Err` saying why.
pub async fn run(options: CheckOptions) -> Result<(), String> {
    let started = Instant::now();
    let mut patience = Patience::new(options.misses);
    let mut next = started;
    let mut polls = 0u32;
    while next < started + options.window || polls == 0 {
        tokio::time::sleep_until(next).await;
        polls += 1;
        let poll = ready::poll(options.admin, options.every).await;
        if let Some(Err(reason)) = patience.judge(poll) {
            return Err(format!(
                "{reason} (poll {polls}, {:?} into the check)",
                started.elapsed()
            ));
        }
        next += options.every;
    }
    Ok(())
}
