//! The recent region transitions (in service ↔ out of service), kept in a
//! bounded in-memory ring for the status page. Lost on restart; the
//! `gslb_region_transitions_total` counter and the logs keep the history.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Transitions kept; older ones are dropped first.
pub const KEPT: usize = 50;

/// One region transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// The region.
    pub region: String,
    /// Whether it went into service (else out of it).
    pub in_service: bool,
}

/// The ring. Writers are the monitor's recomputations (rare); readers the
/// page's polls. A poisoned lock (a panic while holding it) still holds a
/// consistent ring, so it is used as is.
#[derive(Debug, Default)]
pub struct Changes {
    ring: Mutex<VecDeque<Change>>,
}

impl Changes {
    /// Records a transition of `region` at `at`, dropping the oldest
    /// beyond [`KEPT`].
    pub fn record(&self, at: SystemTime, region: &str, in_service: bool) {
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(Change {
            at_ms,
            region: region.to_owned(),
            in_service,
        });
    }

    /// The transitions kept, newest first.
    pub fn newest_first(&self) -> Vec<Change> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_first_and_forgets_the_oldest() {
        let changes = Changes::default();
        for i in 0..(KEPT as u64 + 3) {
            let at = UNIX_EPOCH + std::time::Duration::from_millis(i);
            changes.record(at, "us-east", i % 2 == 0);
        }
        let kept = changes.newest_first();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].at_ms, KEPT as u64 + 2);
        assert_eq!(kept[KEPT - 1].at_ms, 3);
        assert!(kept[0].in_service);
    }
}
