//! The steps both HTTP paths run for every request, written once so that
//! they run in one order with one meaning:
//!
//! 1. `admit`: the client's rate limit (429), then a place among the
//!    listener's requests (503);
//! 2. the route (`rules::route`), which each path asks with its own view
//!    of the request;
//! 3. `Attempts`: the request counted into its pool, then attempt after
//!    attempt — a server picked among those not tried yet, the attempt
//!    made by the path, its outcome settled on the server and the retry
//!    policy asked whether another follows, after which back-off.
//!
//! Each step notes what it decided in the request's [`Record`], which the
//! access log reads at the end.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::Method;

use crate::l7::path::access::Record;
use crate::l7::rules::fault::Fault;
use crate::l7::rules::limits::GatePass;
use crate::l7::rules::retry::{Attempted, Policy};
use crate::l7::shared::context::{ListenerKind, Shared};
use crate::l7::shared::pool::{Attempt, InFlight, Pick, PoolState, RequestAffinity};
use crate::l7::shared::state::Snapshot;

/// Admits a request from `client` on `listener`: within the client's rate,
/// then holding a place among the listener's requests until the pass is
/// dropped.
pub(crate) fn admit(
    snapshot: &Snapshot,
    shared: &Shared,
    listener: ListenerKind,
    client: IpAddr,
) -> Result<GatePass, Fault> {
    if let Some(limiter) = &snapshot.rate_limiter {
        limiter
            .check(client, shared.clock.now_ns())
            .map_err(Fault::RateLimited)?;
    }
    shared.gates[listener as usize]
        .enter()
        .ok_or(Fault::ListenerFull)
}

/// One request's attempts on the servers of its pool.
pub(crate) struct Attempts<'r> {
    pool: &'r PoolState,
    policy: Policy<'r>,
    affinity: RequestAffinity,
    tried: Vec<SocketAddr>,
}

impl<'r> Attempts<'r> {
    /// The attempts of a `method` request to `pool`, counted into the
    /// pool's retry budget; `replayable` when its body is empty (it can be
    /// sent again).
    pub(crate) fn new(
        pool: &'r PoolState,
        method: &Method,
        replayable: bool,
        affinity: RequestAffinity,
    ) -> Self {
        pool.budget.deposit();
        Self {
            pool,
            policy: Policy::new(&pool.config.retries, method, replayable),
            affinity,
            tried: Vec::new(),
        }
    }

    /// Starts the next attempt at `now_ms`: the server picked (none tried
    /// before, unless the pool fails open) and its request counted in
    /// flight, both noted in `record`.
    pub(crate) fn start(
        &mut self,
        record: &mut Record,
        now_ms: u64,
    ) -> Result<(Pick, InFlight), Fault> {
        let pick = self
            .pool
            .pick(self.affinity.affinity(), &self.tried, now_ms)?;
        record.server = Some(pick.server.addr);
        record.attempts += 1;
        record.fail_open |= pick.fail_open;
        let in_flight = pick.server.start();
        Ok((pick, in_flight))
    }

    /// Whether the attempt `record` counts last may be followed by another:
    /// if not, the request need not be kept for a retry.
    pub(crate) fn may_follow(&self, record: &Record) -> bool {
        self.policy.may_follow(record.attempts)
    }

    /// Settles the attempt just made on `pick`, which came to `attempted`
    /// in `latency`: its outcome counted on the server, then `Some(wait)`
    /// when another attempt follows after `wait`, else `None`.
    pub(crate) fn settle(
        &mut self,
        pick: &Pick,
        record: &Record,
        attempted: Attempted,
        latency: Duration,
        now_ms: impl Fn() -> u64,
    ) -> Option<Duration> {
        let attempt = Attempt {
            number: record.attempts,
            server: &pick.server,
            attempted,
            latency,
        };
        self.pool
            .settle(&self.policy, attempt, &mut self.tried, now_ms)
    }
}
