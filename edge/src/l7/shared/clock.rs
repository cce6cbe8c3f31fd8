//! The node's clock: milliseconds and nanoseconds since the node started,
//! on tokio's clock (virtual in tests), as the pure decisions take time.

use std::time::Duration;

use tokio::time::Instant;

/// Time since one start instant.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Self {
            base: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The instant `ms` milliseconds after the start.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }
}
