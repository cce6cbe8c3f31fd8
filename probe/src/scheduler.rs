//! The [`Prober`]: runs many checks concurrently, one task per check, each
//! probing at a jittered interval and never overlapping itself; feeds every
//! result through the check's [`Hysteresis`]; publishes the latest
//! [`CheckStatus`] per check and sends a [`ProbeEvent`] per result; applies
//! config reloads, carrying hysteresis state over.
//!
//! # Reload and state carry-over
//!
//! [`Prober::upsert`] (one check) and [`Prober::sync`] (the whole desired set)
//! compare the new [`ProbeSpec`] with the running one:
//!
//! - **equal spec**: nothing happens; the task, its timer, its hysteresis
//!   counters and its [`StatusHandle`] are untouched ([`Upsert::Unchanged`]);
//! - **same [`ProbeKind`](crate::ProbeKind), other fields changed** (interval, timeout,
//!   thresholds, jitter, initial): the old task is stopped and awaited, then a
//!   new one starts whose *initial state is the old task's current health*;
//!   the consecutive counters restart from zero, since they were counted
//!   against the old thresholds ([`Upsert::Replaced`] with `carried_over`);
//! - **different kind** (another address, path, name, trust...): the
//!   evidence was about another target, so the new task starts from the
//!   spec's `initial` (`carried_over: false`).
//!
//! A replaced or re-added check gets a new `generation`, and a new
//! [`StatusHandle`]: events of the old generation may still sit in the
//! channel, and a consumer that keys state by check must drop events whose
//! generation is older than the latest it has seen for that check.
//! [`Prober::sync`] validates every spec before changing anything, so a bad
//! reload leaves the running set intact.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use topology::duration::fmt_duration;
use tracing::{debug, error, info, trace};

use crate::attempt::{Checker, ProbeResult};
use crate::error::SpecErrors;
use crate::hysteresis::{Health, Hysteresis, Transition};
use crate::jitter::{SplitMix64, first_delay, jittered};
use crate::spec::ProbeSpec;

/// The caller's name for a check, e.g. `eu-west/vip@ams` or `10.0.0.7:443`.
/// Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(Arc<str>);

impl CheckId {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CheckId {
    fn from(s: &str) -> Self {
        CheckId(s.into())
    }
}

impl From<String> for CheckId {
    fn from(s: String) -> Self {
        CheckId(s.into())
    }
}

impl Borrow<str> for CheckId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The latest known state of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    /// The hysteresis state.
    pub health: Health,
    /// The latest result; `None` until the first probe of this generation.
    pub last: Option<ProbeResult>,
    /// Consecutive successes ending with the latest result.
    pub consecutive_successes: u32,
    /// Consecutive failures ending with the latest result.
    pub consecutive_failures: u32,
    /// Probes completed by this generation.
    pub probes: u64,
    /// The latest transition of this generation, if any.
    pub last_transition: Option<Transition>,
    /// Which (re)start of the check this is; grows by one per start across
    /// the whole prober.
    pub generation: u64,
}

/// One probe result with the state it led to, as sent to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    /// Which check.
    pub id: CheckId,
    /// The generation of the check that produced this (see the module docs:
    /// drop events older than the latest generation seen for `id`).
    pub generation: u64,
    /// The attempt's result.
    pub result: ProbeResult,
    /// The hysteresis state after this result.
    pub health: Health,
    /// The state change this result caused, if any.
    pub transition: Option<Transition>,
}

/// A lock-free view of one check's latest [`CheckStatus`], for hot paths.
/// Stays valid (frozen at its last value) after the check is removed or
/// replaced; fetch a new one after a reload.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<ArcSwap<CheckStatus>>);

impl StatusHandle {
    /// The latest status.
    pub fn load(&self) -> Arc<CheckStatus> {
        self.0.load_full()
    }

    /// The latest health.
    pub fn health(&self) -> Health {
        self.0.load().health
    }
}

/// What [`Prober::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// The check was new and has started.
    Added,
    /// The spec was identical: the running check was left alone.
    Unchanged,
    /// The check was restarted with the new spec.
    Replaced {
        /// Whether the old health became the new initial state (same kind).
        carried_over: bool,
    },
}

/// What [`Prober::sync`] did, check ids in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Checks started.
    pub added: Vec<CheckId>,
    /// Checks restarted with a new spec.
    pub replaced: Vec<CheckId>,
    /// Checks left running as they were.
    pub unchanged: Vec<CheckId>,
    /// Checks stopped.
    pub removed: Vec<CheckId>,
}

/// A reload rejected because some specs are invalid; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub struct ReloadError {
    /// Every invalid check with all of its problems, by id.
    pub errors: Vec<(CheckId, SpecErrors)>,
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "health check reload rejected, nothing changed:")?;
        for (id, errs) in &self.errors {
            for e in errs.errors() {
                write!(f, "\n  check {id}: {e}")?;
            }
        }
        Ok(())
    }
}

/// Runs health checks; see the module docs for reload semantics.
///
/// Lifecycle: every check task runs under a child of the shutdown token
/// given to [`Prober::new`] and is owned by one [`TaskTracker`]. Cancelling
/// that token (or calling [`Prober::shutdown`], or dropping the prober) stops
/// every task at its next await point, aborting an in-flight probe;
/// [`Prober::wait`] returns once all have finished.
///
/// Events: each completed probe is sent on the channel given to
/// [`Prober::new`]. A full channel makes that check wait (it never drops an
/// event, and it never probes meanwhile); a dropped receiver is fine, the
/// status handles keep updating.
#[derive(Debug)]
pub struct Prober {
    events: mpsc::Sender<ProbeEvent>,
    root: CancellationToken,
    _cancel_on_drop: DropGuard,
    tracker: TaskTracker,
    seed: u64,
    next_generation: AtomicU64,
    checks: Mutex<HashMap<CheckId, Running>>,
    /// Serialises upsert/remove/sync so each sees a consistent set.
    reload: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Running {
    spec: ProbeSpec,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    status: StatusHandle,
}

impl Prober {
    /// A prober with no checks yet.
    ///
    /// `seed` determines every jitter draw (per check, from the seed and the
    /// check id): pass a fixed value in tests; in production pass something
    /// that differs between replicas (e.g. derived from the hostname and the
    /// start time) so that replicas do not probe in lockstep.
    pub fn new(events: mpsc::Sender<ProbeEvent>, shutdown: CancellationToken, seed: u64) -> Self {
        let root = shutdown.child_token();
        Self {
            events,
            _cancel_on_drop: root.clone().drop_guard(),
            root,
            tracker: TaskTracker::new(),
            seed,
            next_generation: AtomicU64::new(1),
            checks: Mutex::new(HashMap::new()),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds the check `id`, or applies a new spec to it (see the module docs
    /// for what happens to its state). Validates and builds the check first:
    /// on error nothing changes. Returns once any old task has stopped, so
    /// two probes of one check never overlap even across a reload.
    pub async fn upsert(
        &self,
        id: impl Into<CheckId>,
        spec: ProbeSpec,
    ) -> Result<Upsert, SpecErrors> {
        let id = id.into();
        let checker = Checker::new(&spec)?;
        let _serial = self.reload.lock().await;
        Ok(self.apply(id, spec, checker).await)
    }

    /// Stops and forgets the check `id`; returns whether it existed. Returns
    /// once its task has stopped.
    pub async fn remove(&self, id: &str) -> bool {
        let _serial = self.reload.lock().await;
        let old = self.lock_checks().remove(id);
        match old {
            Some(old) => {
                stop(id, old).await;
                true
            }
            None => false,
        }
    }

    /// Makes the running set equal to `desired` (a config reload): checks
    /// absent from it are removed, the others upserted. Every spec is
    /// validated and built first; if any is invalid, nothing changes and all
    /// problems are returned. A repeated id keeps its last spec.
    pub async fn sync(
        &self,
        desired: impl IntoIterator<Item = (CheckId, ProbeSpec)>,
    ) -> Result<ReloadReport, ReloadError> {
        let desired: BTreeMap<CheckId, ProbeSpec> = desired.into_iter().collect();
        let mut built = Vec::with_capacity(desired.len());
        let mut errors = Vec::new();
        for (id, spec) in desired {
            match Checker::new(&spec) {
                Ok(checker) => built.push((id, spec, checker)),
                Err(e) => errors.push((id, e)),
            }
        }
        if !errors.is_empty() {
            return Err(ReloadError { errors });
        }

        let _serial = self.reload.lock().await;
        let mut report = ReloadReport::default();
        let gone: Vec<(CheckId, Running)> = {
            let mut checks = self.lock_checks();
            let keep: std::collections::HashSet<&CheckId> =
                built.iter().map(|(id, _, _)| id).collect();
            let ids: Vec<CheckId> = checks
                .keys()
                .filter(|id| !keep.contains(id))
                .cloned()
                .collect();
            ids.into_iter()
                .filter_map(|id| checks.remove(&id).map(|r| (id, r)))
                .collect()
        };
        // Cancel all first, then await: stopping N checks costs one wait.
        for (_, running) in &gone {
            running.cancel.cancel();
        }
        for (id, running) in gone {
            stop(id.as_str(), running).await;
            report.removed.push(id);
        }
        report.removed.sort();
        for (id, spec, checker) in built {
            match self.apply(id.clone(), spec, checker).await {
                Upsert::Added => report.added.push(id),
                Upsert::Unchanged => report.unchanged.push(id),
                Upsert::Replaced { .. } => report.replaced.push(id),
            }
        }
        info!(
            added = report.added.len(),
            replaced = report.replaced.len(),
            unchanged = report.unchanged.len(),
            removed = report.removed.len(),
            "health checks reloaded"
        );
        Ok(report)
    }

    /// The latest status of `id`.
    pub fn status(&self, id: &str) -> Option<Arc<CheckStatus>> {
        self.lock_checks().get(id).map(|r| r.status.load())
    }

    /// A lock-free handle on the status of `id` (see [`StatusHandle`]).
    pub fn handle(&self, id: &str) -> Option<StatusHandle> {
        self.lock_checks().get(id).map(|r| r.status.clone())
    }

    /// The latest status of every check.
    pub fn snapshot(&self) -> BTreeMap<CheckId, Arc<CheckStatus>> {
        self.lock_checks()
            .iter()
            .map(|(id, r)| (id.clone(), r.status.load()))
            .collect()
    }

    /// The running spec of `id`.
    pub fn spec(&self, id: &str) -> Option<ProbeSpec> {
        self.lock_checks().get(id).map(|r| r.spec.clone())
    }

    /// How many checks are configured.
    pub fn len(&self) -> usize {
        self.lock_checks().len()
    }

    /// Whether no check is configured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every check (without cancelling the caller's token) and waits
    /// for all tasks to finish.
    pub async fn shutdown(&self) {
        self.root.cancel();
        self.wait().await;
    }

    /// Waits until every check task has finished, i.e. after the shutdown
    /// token was cancelled. Checks upserted afterwards stop at once.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        debug!("all probe tasks stopped");
    }

    fn lock_checks(&self) -> std::sync::MutexGuard<'_, HashMap<CheckId, Running>> {
        // The map is only touched by short non-panicking critical sections;
        // a poisoned lock still holds a consistent map.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one validated spec; the caller holds the reload lock.
    async fn apply(&self, id: CheckId, spec: ProbeSpec, checker: Checker) -> Upsert {
        let old = {
            let mut checks = self.lock_checks();
            if checks.get(&id).is_some_and(|r| r.spec == spec) {
                return Upsert::Unchanged;
            }
            checks.remove(&id)
        };
        let (initial, outcome) = match old {
            None => (spec.initial, Upsert::Added),
            Some(old) => {
                let same_kind = old.spec.kind == spec.kind;
                let health = old.status.health();
                stop(id.as_str(), old).await;
                if same_kind {
                    (health, Upsert::Replaced { carried_over: true })
                } else {
                    (
                        spec.initial,
                        Upsert::Replaced {
                            carried_over: false,
                        },
                    )
                }
            }
        };
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let hysteresis = Hysteresis::new(initial, spec.rise, spec.fall);
        let status = StatusHandle(Arc::new(ArcSwap::from_pointee(CheckStatus {
            health: initial,
            last: None,
            consecutive_successes: 0,
            consecutive_failures: 0,
            probes: 0,
            last_transition: None,
            generation,
        })));
        let cancel = self.root.child_token();
        let task = CheckTask {
            id: id.clone(),
            spec: spec.clone(),
            checker,
            cancel: cancel.clone(),
            events: self.events.clone(),
            status: status.clone(),
            generation,
            rng: SplitMix64::derive(self.seed, id.as_str(), generation),
            hysteresis,
        };
        debug!(check = %id, target = %spec.kind, generation, initial = %initial, ?outcome, "starting health check");
        let task = self.tracker.spawn(task.run());
        self.lock_checks().insert(
            id,
            Running {
                spec,
                cancel,
                task,
                status,
            },
        );
        outcome
    }
}

/// Cancels a check's task and waits for it to end.
async fn stop(id: &str, running: Running) {
    running.cancel.cancel();
    if let Err(e) = running.task.await {
        // Only a panic in the task gets here (it is never aborted).
        error!(check = %id, error = %e, "health check task failed");
    }
}

/// Everything one check's task owns.
struct CheckTask {
    id: CheckId,
    spec: ProbeSpec,
    checker: Checker,
    cancel: CancellationToken,
    events: mpsc::Sender<ProbeEvent>,
    status: StatusHandle,
    generation: u64,
    rng: SplitMix64,
    hysteresis: Hysteresis,
}

impl CheckTask {
    /// The probe loop. Sequential by construction: the next probe is
    /// scheduled only after the previous one finished or timed out, at
    /// `start + jittered interval`, or at once if that has already passed.
    async fn run(mut self) {
        let first = first_delay(self.spec.interval, self.spec.jitter, self.rng.next_u64());
        let mut next = Instant::now() + first;
        let mut probes = 0u64;
        let mut last_transition = None;
        let mut receiver_gone = false;
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = sleep_until(next) => {}
            }
            let started = Instant::now();
            let result = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                r = self.checker.probe(self.spec.timeout) => r,
            };
            probes += 1;
            let transition = self.hysteresis.record(result.ok);
            if transition.is_some() {
                last_transition = transition;
            }
            self.log(&result, transition);
            self.status.0.store(Arc::new(CheckStatus {
                health: self.hysteresis.state(),
                last: Some(result.clone()),
                consecutive_successes: self.hysteresis.consecutive_successes(),
                consecutive_failures: self.hysteresis.consecutive_failures(),
                probes,
                last_transition,
                generation: self.generation,
            }));
            if !receiver_gone {
                let event = ProbeEvent {
                    id: self.id.clone(),
                    generation: self.generation,
                    result,
                    health: self.hysteresis.state(),
                    transition,
                };
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    sent = self.events.send(event) => if sent.is_err() {
                        receiver_gone = true;
                        debug!(check = %self.id, "event receiver dropped; only status handles are updated from now on");
                    }
                }
            }
            let base = match self.spec.fast_interval {
                Some(fast) if self.hysteresis.is_settling() => fast,
                _ => self.spec.interval,
            };
            next = (started + jittered(base, self.spec.jitter, self.rng.next_u64()))
                .max(Instant::now());
        }
        debug!(check = %self.id, generation = self.generation, probes, "health check stopped");
    }

    fn log(&self, result: &ProbeResult, transition: Option<Transition>) {
        let latency = fmt_duration(result.latency);
        if let Some(t) = transition {
            info!(
                check = %self.id,
                target = %self.spec.kind,
                from = %t.from,
                to = %t.to,
                evidence = format_args!("{} consecutive {}", t.streak, if result.ok { "successes" } else { "failures" }),
                detail = %result.detail,
                "health changed"
            );
        } else if result.ok {
            trace!(check = %self.id, target = %self.spec.kind, %latency, detail = %result.detail, "probe ok");
        } else {
            debug!(
                check = %self.id,
                target = %self.spec.kind,
                %latency,
                detail = %result.detail,
                failures = self.hysteresis.consecutive_failures(),
                fall = self.spec.fall,
                "probe failed"
            );
        }
    }
}
