//! The UDP fast path: answers the common queries from templates the slow
//! path built, without allocating, and leaves everything else to the slow
//! path ([`crate::dns::answer_bytes`]), whose bytes it reproduces exactly.
//!
//! # Layout
//! - `query`: reads a query in the common shape (one question, class IN,
//!   a common type, EDNS 0 without DO and with at most a client subnet).
//! - `template`: canonical replies cut into copy-and-patch templates.
//! - `names`: the static tables — a template per name and type, and per
//!   zone the shared NXDOMAIN, NODATA, referral and REFUSED templates.
//! - `geo`: the geo decision tables (merged GeoIP ranges → region order
//!   → outcome under the health view) and the ECS scope.
//! - [`udp`]: one `SO_REUSEPORT` socket and OS thread per core, batched
//!   with `recvmmsg`/`sendmmsg`.
//!
//! [`Tables`] is one immutable snapshot of all of it, built for one serving
//! state, GeoIP database and health view; [`FastPath`] keeps the current
//! one published, rebuilding in the background when any of the three
//! changes, and the query path answers from it only while it is current.

mod geo;
mod names;
mod query;
mod template;
pub mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use geo_data::GeoDb;
use topology::RegionId;
use tracing::{debug, error, info};

use self::geo::{GeoMaps, GeoOutcomes, Reply};
use self::names::{Route, Statics};
use self::query::{FAST_QTYPES, Query};
use self::template::{Opt, TemplateId, TemplateStore};
use crate::client::Client;
use crate::dns::{CLASSIC_UDP_PAYLOAD, outcome_label_of_rcode, qtype_label};
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::rrl::RateLimiter;
use crate::state::ServingState;

/// How often the builder looks for changes it was not told about, and
/// replays the fast path's query counts into the metrics.
const BUILDER_TICK: Duration = Duration::from_millis(100);
/// How often rate limiting reports what it dropped.
const RRL_REPORT: Duration = Duration::from_secs(60);

/// The fast path's tables for one serving state, database and health view.
pub struct Tables {
    state: Arc<ServingState>,
    health: Arc<RegionHealth>,
    db: Arc<GeoDb>,
    statics: Arc<Statics>,
    maps: Arc<GeoMaps>,
    outcomes: GeoOutcomes,
}

/// What the fast path did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The reply is the first `len` bytes of the output buffer.
    Reply {
        /// Reply length.
        len: usize,
        /// What to count in the metrics.
        count: Count,
    },
    /// Not in the fast path's shape (or not in its tables): the slow path
    /// must answer.
    Slow,
}

/// A query answered by the fast path, as the metrics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    qtype: u16,
    rcode: u8,
    region: Option<RegionId>,
    /// For geo decisions: whether the client came from ECS.
    from_ecs: Option<bool>,
}

impl Tables {
    /// Builds the tables for `state` (with its current GeoIP database) and
    /// `health`, reusing what `previous` holds for the same state and
    /// database.
    pub fn build(
        state: Arc<ServingState>,
        health: Arc<RegionHealth>,
        previous: Option<&Tables>,
    ) -> Tables {
        let db = state.geoip.current();
        let same_state = previous.filter(|p| Arc::ptr_eq(&p.state, &state));
        let statics = match same_state {
            Some(previous) => previous.statics.clone(),
            None => Arc::new(Statics::build(&state)),
        };
        let maps = match same_state.filter(|p| Arc::ptr_eq(&p.db, &db)) {
            Some(previous) => previous.maps.clone(),
            None => Arc::new(GeoMaps::build(&state, &db)),
        };
        let outcomes = GeoOutcomes::build(&state, &statics, &maps, &health);
        Tables {
            state,
            health,
            db,
            statics,
            maps,
            outcomes,
        }
    }

    /// Whether these tables answer for exactly `state` (and its current
    /// database) and `health`.
    pub fn is_current(&self, state: &Arc<ServingState>, health: &Arc<RegionHealth>) -> bool {
        Arc::ptr_eq(&self.state, state)
            && Arc::ptr_eq(&self.health, health)
            && Arc::ptr_eq(&self.db, &state.geoip.load())
    }

    /// Number of templates held (static, geo).
    pub fn templates(&self) -> (usize, usize) {
        (self.statics.templates.len(), self.outcomes.templates.len())
    }

    /// Bytes the templates hold.
    pub fn template_bytes(&self) -> usize {
        self.statics.templates.heap_bytes() + self.outcomes.templates.heap_bytes()
    }

    /// Answers the datagram `packet` from `src` into `out`, as
    /// [`crate::dns::answer_bytes`] would with the same `max_udp`, or says
    /// the slow path must. Does not allocate.
    pub fn answer(&self, packet: &[u8], src: SocketAddr, max_udp: u16, out: &mut [u8]) -> Answer {
        let Some(query) = Query::parse(packet) else {
            return Answer::Slow;
        };
        let ecs = query.edns.and_then(|edns| edns.ecs);
        let route = self.statics.route(query.lower(), query.qtype);
        let mut client = None;
        if ecs.is_some() || matches!(route, Route::Geo { .. }) {
            match Client::new(src.ip(), ecs.map(|e| e.query)) {
                Ok(found) => client = Some(found),
                // FORMERR is the slow path's business.
                Err(_) => return Answer::Slow,
            }
        }
        let (store, id, scope, region, from_ecs) = match route {
            Route::Template(id) => (&self.statics.templates, id, 0, None, None),
            Route::Geo { geo, v6 } => {
                let Some(client) = &client else {
                    return Answer::Slow;
                };
                let decided = self.outcomes.decide(
                    &self.maps,
                    &self.state.topology,
                    &self.db,
                    geo,
                    v6,
                    client,
                );
                let outcome = decided.outcome;
                let scope = if outcome.scope_zero { 0 } else { decided.scope };
                let from_ecs = Some(client.ecs.is_some());
                let (store, id): (&TemplateStore, TemplateId) = match outcome.reply {
                    Reply::Geo(id) => (&self.outcomes.templates, id),
                    Reply::Static(id) => (&self.statics.templates, id),
                    Reply::Slow => return Answer::Slow,
                };
                (store, id, scope, outcome.region, from_ecs)
            }
            Route::Slow => return Answer::Slow,
        };
        let max_udp = max_udp.max(CLASSIC_UDP_PAYLOAD);
        let (limit, opt) = match query.edns {
            None => (CLASSIC_UDP_PAYLOAD, None),
            Some(edns) => {
                let echo = match (ecs, &client) {
                    (Some(ecs), Some(client)) => Some((
                        &packet[ecs.data_at..ecs.data_at + ecs.data_len],
                        client.echo_scope(scope),
                    )),
                    _ => None,
                };
                (
                    edns.payload.clamp(CLASSIC_UDP_PAYLOAD, max_udp),
                    Some(Opt {
                        max_payload: max_udp,
                        ecs: echo,
                    }),
                )
            }
        };
        match store.write(id, &query, opt, usize::from(limit), out) {
            Some(len) => Answer::Reply {
                len,
                count: Count {
                    qtype: query.qtype,
                    rcode: store.rcode(id),
                    region,
                    from_ecs,
                },
            },
            None => Answer::Slow,
        }
    }
}

/// Keeps the fast path's tables current and its query counts flowing into
/// the metrics. Shared by the UDP workers.
pub struct FastPath {
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
    queries: HashMap<(&'static str, &'static str, Option<String>), u64>,
    /// Geo decisions by client source: resolver, ECS.
    sources: [u64; 2],
}

impl FastPath {
    /// A fast path over `state` and `health`, with no tables yet (everything
    /// goes to the slow path until [`FastPath::run_builder`] builds them).
    pub fn new(
        state: Arc<ArcSwap<ServingState>>,
        health: Arc<ArcSwap<RegionHealth>>,
        metrics: Arc<Metrics>,
    ) -> Arc<FastPath> {
        let limiter = RateLimiter::new(&state.load().topology.dns.rate_limit, Instant::now());
        Arc::new(FastPath {
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

    /// Logs what rate limiting dropped since `last` (dropped, truncated).
    fn report_limits(&self, last: &mut (u64, u64)) {
        let Some(limiter) = self.limiter.load_full() else {
            return;
        };
        let now = limiter.counts();
        let (dropped, truncated) = (now.0.wrapping_sub(last.0), now.1.wrapping_sub(last.1));
        if dropped + truncated > 0 {
            info!(
                dropped,
                truncated, "response rate limiting held back replies in the last interval"
            );
        }
        *last = now;
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
    /// and replays query counts into the metrics, until [`FastPath::stop`].
    /// Runs on its own thread.
    pub fn run_builder(&self) {
        *lock(&self.builder) = Some(std::thread::current());
        let mut reported = (Instant::now(), (0, 0));
        // A state and health view whose build panicked: not retried until
        // either changes (the slow path answers meanwhile).
        let mut failed: Option<(Arc<ServingState>, Arc<RegionHealth>)> = None;
        while !self.stop.load(Ordering::Acquire) {
            self.replay_counts();
            if reported.0.elapsed() >= RRL_REPORT {
                self.report_limits(&mut reported.1);
                reported.0 = Instant::now();
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
                let names = tables.statics.names();
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
        let regions = tables.state.topology.regions.len();
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

    /// Hands the counts to `fast` (region names from `tables`, which must
    /// be the tables they were counted with).
    pub fn flush(&mut self, fast: &FastPath, tables: &Tables) {
        if !self.any {
            return;
        }
        let topology = &tables.state.topology;
        let mut pending = lock(&fast.pending);
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
                .entry((
                    qtype_label(FAST_QTYPES[qtype]),
                    outcome_label_of_rcode(RCODES[rcode]),
                    region,
                ))
                .or_default() += *n;
            *n = 0;
        }
        pending.sources[0] += std::mem::take(&mut self.sources[0]);
        pending.sources[1] += std::mem::take(&mut self.sources[1]);
        self.any = false;
    }
}
