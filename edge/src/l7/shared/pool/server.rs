//! One server's live state: health, ejection and its back-off, load,
//! latency, the operator's drain and weight; atomics, read lock-free by the
//! request path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use topology::tiers::l7::Outlier;

use crate::l7::rules::fault::Fault;
use crate::l7::rules::retry::Attempted;
use crate::l7::rules::{balance, sticky};
use crate::l7::shared::metrics::{ServerMetrics, class_index};

/// One server's live state. Shared across configurations while the
/// server's address, weight and role stay the same.
#[derive(Debug)]
pub struct ServerState {
    /// Its address.
    pub addr: SocketAddr,
    /// Configured weight (see [`ServerState::weight`] for the one in use).
    pub configured_weight: u32,
    /// Backup server.
    pub backup: bool,
    /// Its sticky-cookie value.
    pub token: String,
    /// Metric handles.
    pub metrics: ServerMetrics,
    in_flight: AtomicU32,
    latency_us: AtomicU64,
    probe_up: AtomicBool,
    /// When the server last became healthy (ms), 0 if it has been since
    /// start: slow start ramps from there.
    up_since_ms: AtomicU64,
    failures: AtomicU32,
    ejected_until_ms: AtomicU64,
    history: Mutex<EjectionHistory>,
    /// Drained by the operator: no new requests.
    drained: AtomicBool,
    /// The operator's weight, 0 when none is set.
    weight_override: AtomicU32,
}

/// What the back-off remembers between ejections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EjectionHistory {
    /// Ejections in a row, each without a quiet `max_ejection` after the
    /// previous return.
    pub streak: u32,
    /// When the previous ejection ended (ms).
    pub returned_at_ms: u64,
}

/// The ejection period for an ejection at `now_ms`, updating `history`:
/// `ejection × 2^streak`, at most `max_ejection`; a server that stayed in
/// for `max_ejection` since its last return starts over at `ejection`.
pub fn next_ejection(config: &Outlier, history: &mut EjectionHistory, now_ms: u64) -> Duration {
    let quiet = config.max_ejection.as_millis() as u64;
    if history.streak > 0 && now_ms.saturating_sub(history.returned_at_ms) >= quiet {
        history.streak = 0;
    }
    let factor = 1u32 << history.streak.min(16);
    let period = config
        .ejection
        .saturating_mul(factor)
        .min(config.max_ejection);
    history.streak += 1;
    history.returned_at_ms = now_ms + period.as_millis() as u64;
    period
}

/// How an upstream attempt ended, as passive health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Response headers with this status.
    Status(u16),
    /// No connection could be made.
    ConnectFailed,
    /// The connection failed or timed out after the request was sent.
    Failed,
    /// The response stopped mid-body (the backend stalled); its status
    /// has already been recorded.
    Aborted,
}

impl Outcome {
    /// What an attempt charges to its server: nothing when the fault is
    /// not the backend's (the client's request body failed, say).
    pub fn of(attempted: Attempted) -> Option<Outcome> {
        match attempted {
            Attempted::Status(status) => Some(Outcome::Status(status)),
            Attempted::Fault(Fault::ConnectFailed) => Some(Outcome::ConnectFailed),
            Attempted::Fault(Fault::UpstreamFailed | Fault::UpstreamTimeout) => {
                Some(Outcome::Failed)
            }
            Attempted::Fault(_) => None,
        }
    }
}

impl ServerState {
    pub(super) fn new(addr: SocketAddr, weight: u32, backup: bool, metrics: ServerMetrics) -> Self {
        metrics.up.set(1);
        metrics.weight.set(i64::from(weight));
        Self {
            addr,
            configured_weight: weight,
            backup,
            token: sticky::server_token(addr),
            metrics,
            in_flight: AtomicU32::new(0),
            latency_us: AtomicU64::new(0),
            probe_up: AtomicBool::new(true),
            up_since_ms: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            history: Mutex::new(EjectionHistory::default()),
            drained: AtomicBool::new(false),
            weight_override: AtomicU32::new(0),
        }
    }

    /// Whether it may take new requests: the active check says up, it is
    /// not ejected and the operator has not drained it.
    pub fn available(&self, now_ms: u64) -> bool {
        self.probe_up.load(Ordering::Relaxed) && !self.ejected(now_ms) && !self.drained()
    }

    /// Whether the operator drained it: it takes no new request, not even
    /// when the pool fails open; requests in flight finish.
    pub fn drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// Drains it (`true`) or returns it to service; whether that changed
    /// anything.
    pub fn set_drained(&self, drained: bool) -> bool {
        let was = self.drained.swap(drained, Ordering::Relaxed);
        self.metrics.drained.set(i64::from(drained));
        was != drained
    }

    /// The weight in use: the operator's, else the configured one.
    pub fn weight(&self) -> u32 {
        match self.weight_override.load(Ordering::Relaxed) {
            0 => self.configured_weight,
            set => set,
        }
    }

    /// Whether the operator set the weight in use.
    pub fn weight_overridden(&self) -> bool {
        self.weight_override.load(Ordering::Relaxed) != 0
    }

    /// Sets the operator's weight (at least 1), or clears it (`None`).
    pub fn set_weight(&self, weight: Option<u32>) {
        self.weight_override
            .store(weight.map_or(0, |w| w.max(1)), Ordering::Relaxed);
        self.metrics.weight.set(i64::from(self.weight()));
    }

    /// Whether passively ejected at `now_ms`.
    pub fn ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// The active check's verdict.
    pub fn probe_up(&self) -> bool {
        self.probe_up.load(Ordering::Relaxed)
    }

    /// Applies an active-check transition at `now_ms`.
    pub fn set_probe_up(&self, up: bool, now_ms: u64) {
        let was = self.probe_up.swap(up, Ordering::Relaxed);
        if up && !was {
            // `max(1)`: 0 means "up since start", which skips slow start.
            self.up_since_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
        self.metrics.up.set(i64::from(up));
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Peak-EWMA latency in microseconds (0 before the first response).
    pub fn latency_us(&self) -> u64 {
        self.latency_us.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.metrics.in_flight.inc();
        InFlight(self.clone())
    }

    /// Weight with slow start applied, scaled by 1000 (at least 1).
    pub(super) fn effective_weight(&self, slow_start: Duration, now_ms: u64) -> u32 {
        let full = self.weight().saturating_mul(1000);
        let since = self.up_since_ms.load(Ordering::Relaxed);
        let ramp = slow_start.as_millis() as u64;
        if since == 0 || ramp == 0 {
            return full;
        }
        let elapsed = now_ms.saturating_sub(since);
        if elapsed >= ramp {
            return full;
        }
        // Start at 10% so a new server is not starved of its first requests.
        let share = 100 + 900 * elapsed / ramp;
        ((u64::from(full) * share / 1000) as u32).max(1)
    }

    /// Records an attempt's outcome: status metrics, peak-EWMA latency and
    /// passive outlier detection. Returns the ejection period when this
    /// outcome ejected the server.
    pub fn record(
        &self,
        outcome: Outcome,
        latency: Duration,
        outlier: &Outlier,
        now_ms: u64,
    ) -> Option<Duration> {
        let failed = match outcome {
            Outcome::Status(status) => {
                self.metrics.by_class[class_index(status)].inc();
                self.metrics.duration.observe(latency.as_secs_f64());
                let sample = latency.as_micros().min(u128::from(u32::MAX)) as u64;
                let old = self.latency_us.load(Ordering::Relaxed);
                // A racing update loses one sample.
                self.latency_us
                    .store(balance::peak_ewma(old, sample), Ordering::Relaxed);
                status >= 500
            }
            Outcome::ConnectFailed | Outcome::Failed => {
                self.metrics.by_class[4].inc();
                true
            }
            Outcome::Aborted => true,
        };
        if !failed {
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            return None;
        }
        let count = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if outlier.failures == 0 || count < outlier.failures || self.ejected(now_ms) {
            return None;
        }
        let period = {
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            if self.ejected(now_ms) {
                return None;
            }
            next_ejection(outlier, &mut history, now_ms)
        };
        self.failures.store(0, Ordering::Relaxed);
        self.ejected_until_ms
            .store(now_ms + period.as_millis() as u64, Ordering::Relaxed);
        self.metrics.ejections.inc();
        Some(period)
    }

    /// Updates the `ejected` gauge (called periodically).
    pub fn refresh_gauges(&self, now_ms: u64) {
        self.metrics.ejected.set(i64::from(self.ejected(now_ms)));
    }

    pub(super) fn carry_from(&self, old: &ServerState) {
        for (to, from) in [
            (&self.latency_us, &old.latency_us),
            (&self.up_since_ms, &old.up_since_ms),
            (&self.ejected_until_ms, &old.ejected_until_ms),
        ] {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.probe_up.store(old.probe_up(), Ordering::Relaxed);
        self.metrics.up.set(i64::from(old.probe_up()));
        // The operator's drain and weight outlive a reload: they are
        // undone only through the API (or a restart).
        self.set_drained(old.drained());
        if old.weight_overridden() {
            self.set_weight(Some(old.weight()));
        }
        let history = *old.history.lock().unwrap_or_else(PoisonError::into_inner);
        *self.history.lock().unwrap_or_else(PoisonError::into_inner) = history;
    }
}

/// A request in flight on a server; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<ServerState>);

impl InFlight {
    /// The server.
    pub fn server(&self) -> &Arc<ServerState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.in_flight.dec();
    }
}
