//! The fast path's tables kept current for the UDP workers: a builder
//! thread rebuilds them when the serving state, GeoIP database or health
//! view changes; the rate limiter follows the configuration; and the
//! workers' query counts are replayed into the metrics.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use tracing::{debug, error, info};

use crate::fast::{Count, FAST_QTYPES, Tables};
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::rrl::RateLimiter;
use crate::state::ServingState;

/// How often the builder looks for changes it was not told about, and
/// replays the fast path's query counts into the metrics.
const BUILDER_TICK: Duration = Duration::from_millis(100);
/// How often rate limiting reports what it dropped.
const RRL_REPORT: Duration = Duration::from_secs(60);

/// Keeps the fast path's tables current and its query counts flowing into
/// the metrics. Shared by the UDP workers.
pub struct TableKeeper {
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    tables: ArcSwapOption<Tables>,
    /// Rate limiting of UDP replies (both paths), as configured.
    limiter: ArcSwapOption<RateLimiter>,
    /// Query counts from the workers, waiting to be replayed.
    pending: Mutex<Pending>,
    builder: Mutex<Option<Thread>>,
    stop: AtomicBool,
}

#[derive(Default)]
struct Pending {
    queries: HashMap<(u16, u16, Option<String>), u64>,
    /// Geo decisions by client source: resolver, ECS.
    sources: [u64; 2],
}

impl TableKeeper {
    /// A keeper of tables over `state` and `health`, with no tables yet (everything
    /// goes to the slow path until [`TableKeeper::run_builder`] builds them).
    pub fn new(
        state: Arc<ArcSwap<ServingState>>,
        health: Arc<ArcSwap<RegionHealth>>,
        metrics: Arc<Metrics>,
    ) -> Arc<TableKeeper> {
        let limiter = RateLimiter::new(&state.load().topology.dns.rate_limit, Instant::now());
        Arc::new(TableKeeper {
            state,
            health,
            metrics,
            tables: ArcSwapOption::empty(),
            limiter: ArcSwapOption::new(limiter.map(Arc::new)),
            pending: Mutex::new(Pending::default()),
            builder: Mutex::new(None),
            stop: AtomicBool::new(false),
        })
    }

    /// The serving state queries are answered from.
    pub fn state(&self) -> &ArcSwap<ServingState> {
        &self.state
    }

    /// The health view queries are answered from.
    pub fn health(&self) -> &ArcSwap<RegionHealth> {
        &self.health
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rate limiter of UDP replies, if rate limiting is on.
    pub fn limiter(&self) -> &ArcSwapOption<RateLimiter> {
        &self.limiter
    }

    /// Replaces the limiter when the configuration changed (a limiter
    /// keeps its buckets across reloads that leave it alone).
    fn configure_limiter(&self, state: &ServingState) {
        let wanted = &state.topology.dns.rate_limit;
        let current = self.limiter.load();
        let same = match current.as_deref() {
            Some(limiter) => limiter.config() == wanted,
            None => !wanted.enabled,
        };
        if !same {
            info!(
                enabled = wanted.enabled,
                "response rate limiting configured"
            );
            self.limiter
                .store(RateLimiter::new(wanted, Instant::now()).map(Arc::new));
        }
    }

    /// Moves what rate limiting held back since the last call into the
    /// metrics, and adds it to `held` (dropped, slipped) for the log.
    fn replay_limits(&self, seen: &mut LimiterCounts, held: &mut (u64, u64)) {
        let Some(limiter) = self.limiter.load_full() else {
            return;
        };
        let now = limiter.counts();
        // A reconfigured limiter counts from zero again.
        let last = match &seen.limiter {
            Some(previous) if Arc::ptr_eq(previous, &limiter) => seen.counts,
            _ => (0, 0),
        };
        let (dropped, slipped) = (now.0 - last.0, now.1 - last.1);
        *seen = LimiterCounts {
            limiter: Some(limiter),
            counts: now,
        };
        self.metrics.record_rate_limited(dropped, slipped);
        held.0 += dropped;
        held.1 += slipped;
    }

    /// The current tables, if they match `state` and `health`; otherwise
    /// `None`, and the builder is woken.
    pub fn current(
        &self,
        state: &Arc<ServingState>,
        health: &Arc<RegionHealth>,
    ) -> Option<Arc<Tables>> {
        let tables = self.tables.load_full();
        match tables {
            Some(tables) if tables.is_current(state, health) => Some(tables),
            _ => {
                self.wake();
                None
            }
        }
    }

    fn wake(&self) {
        if let Some(thread) = lock(&self.builder).as_ref() {
            thread.unpark();
        }
    }

    /// Builds tables whenever the state, database or health view changes,
    /// and replays query counts into the metrics, until [`TableKeeper::stop`].
    /// Runs on its own thread.
    pub fn run_builder(&self) {
        *lock(&self.builder) = Some(std::thread::current());
        let mut limits = LimiterCounts::default();
        // Replies held back since the last log line, and when that was.
        let mut held = (0, 0);
        let mut reported = Instant::now();
        // A state and health view whose build panicked: not retried until
        // either changes (the slow path answers meanwhile).
        let mut failed: Option<(Arc<ServingState>, Arc<RegionHealth>)> = None;
        while !self.stop.load(Ordering::Acquire) {
            self.replay_counts();
            self.replay_limits(&mut limits, &mut held);
            if reported.elapsed() >= RRL_REPORT {
                let (dropped, truncated) = std::mem::take(&mut held);
                if dropped + truncated > 0 {
                    info!(
                        dropped,
                        truncated, "response rate limiting held back replies in the last interval"
                    );
                }
                reported = Instant::now();
            }
            let state = self.state.load_full();
            self.configure_limiter(&state);
            let health = self.health.load_full();
            let previous = self.tables.load_full();
            let stale = previous
                .as_ref()
                .is_none_or(|tables| !tables.is_current(&state, &health));
            let gave_up = failed
                .as_ref()
                .is_some_and(|(s, h)| Arc::ptr_eq(s, &state) && Arc::ptr_eq(h, &health));
            if stale && !gave_up {
                let started = Instant::now();
                let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    Tables::build(state.clone(), health.clone(), previous.as_deref())
                }));
                let tables = match built {
                    Ok(tables) => tables,
                    Err(_) => {
                        error!(
                            "building the fast path tables panicked; the slow path answers every query until the configuration or health changes"
                        );
                        failed = Some((state, health));
                        continue;
                    }
                };
                failed = None;
                let (statics, geo) = tables.templates();
                let names = tables.names();
                let bytes = tables.template_bytes();
                self.tables.store(Some(Arc::new(tables)));
                let took = started.elapsed();
                if previous.is_none() || took > Duration::from_millis(50) {
                    info!(
                        names,
                        static_templates = statics,
                        geo_templates = geo,
                        template_bytes = bytes,
                        ?took,
                        "fast path tables built"
                    );
                } else {
                    debug!(?took, "fast path tables rebuilt");
                }
                continue;
            }
            std::thread::park_timeout(BUILDER_TICK);
        }
        self.replay_counts();
        self.replay_limits(&mut limits, &mut held);
    }

    /// Stops the builder thread (it returns within one tick).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    fn replay_counts(&self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        for ((qtype, rcode, region), n) in pending.queries {
            self.metrics
                .record_queries(qtype, rcode, region.as_deref(), n);
        }
        for (from_ecs, n) in [(false, pending.sources[0]), (true, pending.sources[1])] {
            if n > 0 {
                self.metrics.record_client_sources(from_ecs, n);
            }
        }
    }
}

/// A rate limiter's counts as last replayed into the metrics.
#[derive(Default)]
struct LimiterCounts {
    limiter: Option<Arc<RateLimiter>>,
    counts: (u64, u64),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A worker's query counts since its last flush, without allocating per
/// query: `[qtype slot][rcode slot][region + 1]`.
pub(crate) struct LocalCounts {
    cells: Vec<u64>,
    regions: usize,
    sources: [u64; 2],
    any: bool,
}

const RCODES: [u8; 3] = [0, 3, 5];

impl LocalCounts {
    pub fn new() -> LocalCounts {
        LocalCounts {
            cells: Vec::new(),
            regions: 0,
            sources: [0; 2],
            any: false,
        }
    }

    /// Counts one query answered from `tables`.
    pub fn add(&mut self, tables: &Tables, count: Count) {
        let regions = tables.topology().regions.len();
        if self.cells.is_empty() || regions != self.regions {
            // Sized once per topology; only the first query after a change
            // allocates.
            self.cells = vec![0; FAST_QTYPES.len() * RCODES.len() * (regions + 1)];
            self.regions = regions;
        }
        let (Some(qtype), Some(rcode)) = (
            FAST_QTYPES.iter().position(|t| *t == count.qtype),
            RCODES.iter().position(|r| *r == count.rcode),
        ) else {
            return;
        };
        let region = count.region.map_or(0, |r| r.0 + 1).min(regions);
        self.cells[(qtype * RCODES.len() + rcode) * (regions + 1) + region] += 1;
        if let Some(from_ecs) = count.from_ecs {
            self.sources[usize::from(from_ecs)] += 1;
        }
        self.any = true;
    }

    /// Hands the counts to `keeper` (region names from `tables`, which must
    /// be the tables they were counted with).
    pub fn flush(&mut self, keeper: &TableKeeper, tables: &Tables) {
        if !self.any {
            return;
        }
        let topology = tables.topology();
        let mut pending = lock(&keeper.pending);
        let width = self.regions + 1;
        for (index, n) in self.cells.iter_mut().enumerate() {
            if *n == 0 {
                continue;
            }
            let region = index % width;
            let rcode = (index / width) % RCODES.len();
            let qtype = index / width / RCODES.len();
            let region = (region > 0)
                .then(|| topology.regions.get(region - 1).map(|r| r.name.clone()))
                .flatten();
            *pending
                .queries
                .entry((FAST_QTYPES[qtype], u16::from(RCODES[rcode]), region))
                .or_default() += *n;
            *n = 0;
        }
        pending.sources[0] += std::mem::take(&mut self.sources[0]);
        pending.sources[1] += std::mem::take(&mut self.sources[1]);
        self.any = false;
    }
}
