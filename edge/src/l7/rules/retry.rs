//! The attempt and retry policy of one request, pure and table-tested so
//! every HTTP path retries alike: which results call for another attempt
//! (a failed connection always; a failure after sending, a timeout or a
//! listed status only for idempotent methods), only with a replayable
//! (empty) body, within the pool's attempt limit, when another server is
//! available, and within the pool's [`RetryBudget`]; and how long to
//! wait before a retry ([`backoff`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use topology::tiers::l7::Retries;

use crate::l7::rules::fault::{Fault, Retry};

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    /// Response headers with this status.
    Status(u16),
    /// No response.
    Fault(Fault),
}

impl From<Result<u16, Fault>> for Attempted {
    /// A response's status, or the fault of an attempt that got none.
    fn from(result: Result<u16, Fault>) -> Self {
        match result {
            Ok(status) => Attempted::Status(status),
            Err(fault) => Attempted::Fault(fault),
        }
    }
}

/// The retry policy of one request.
#[derive(Debug)]
pub struct Policy<'a> {
    retries: &'a Retries,
    idempotent: bool,
    replayable: bool,
}

impl<'a> Policy<'a> {
    /// The policy of a `method` request to a pool retrying by `retries`;
    /// `replayable` when its body is empty, so it can be sent again.
    pub fn new(retries: &'a Retries, method: &Method, replayable: bool) -> Self {
        Self {
            retries,
            idempotent: idempotent(method),
            replayable,
        }
    }

    /// Whether attempt number `attempt` (from 1) may be followed by
    /// another: if not, the request need not be kept for a retry.
    pub fn may_follow(&self, attempt: u32) -> bool {
        attempt <= self.retries.attempts && self.replayable
    }

    /// Whether what attempt number `attempt` came to calls for another.
    pub fn wants_retry(&self, attempt: u32, attempted: Attempted) -> bool {
        self.may_follow(attempt)
            && match attempted {
                Attempted::Status(status) => {
                    self.idempotent
                        && self
                            .retries
                            .statuses
                            .iter()
                            .any(|&(lo, hi)| (lo..=hi).contains(&status))
                }
                Attempted::Fault(fault) => match fault.retry() {
                    Retry::Always => true,
                    Retry::IfIdempotent => self.idempotent,
                    Retry::Never => false,
                },
            }
    }

    /// Whether to retry after attempt number `attempt`: when it calls for
    /// another and then `spare` says another server is available and the
    /// budget grants a retry (`spare` is asked only then, as it withdraws).
    pub fn retry(&self, attempt: u32, attempted: Attempted, spare: impl FnOnce() -> bool) -> bool {
        self.wants_retry(attempt, attempted) && spare()
    }
}

/// The wait before retry number `retry` (from 1) of a pool retrying by
/// `retries`, drawn with `random` (a uniformly random `u64`): "full
/// jitter" — uniform in `[0, min(max_backoff, backoff × 2^(retry-1))]` —
/// so clients that failed together do not retry together, and the
/// expected wait still doubles with each retry.
pub fn backoff(retries: &Retries, retry: u32, random: u64) -> Duration {
    let doubled = retries
        .backoff
        .saturating_mul(1 << retry.saturating_sub(1).min(16));
    let ceiling = doubled.min(retries.max_backoff).as_nanos() as u64;
    Duration::from_nanos(random % (ceiling + 1))
}

/// Whether a request with `method` may be sent twice.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The retry budget of a pool: each request deposits `budget_percent`% of
/// a retry, each retry withdraws one; `min_per_second` retries a second are
/// always allowed. Balances are kept in thousandths of a retry.
#[derive(Debug)]
pub struct RetryBudget {
    balance: AtomicI64,
    deposit: i64,
    min_per_second: u32,
    /// `second << 32 | used` of the per-second allowance.
    window: AtomicU64,
}

/// Most retries the budget banks, in thousandths.
const BUDGET_CAP: i64 = 1_000_000;

impl RetryBudget {
    /// A budget for `config`.
    pub fn new(config: &Retries) -> Self {
        Self {
            balance: AtomicI64::new(0),
            deposit: i64::from(config.budget_percent) * 10,
            min_per_second: config.min_per_second,
            window: AtomicU64::new(0),
        }
    }

    /// Deposits one request's share.
    pub fn deposit(&self) {
        if self.deposit > 0 && self.balance.load(Ordering::Relaxed) < BUDGET_CAP {
            self.balance.fetch_add(self.deposit, Ordering::Relaxed);
        }
    }

    /// Takes one retry, if the budget allows it at `now_ms`.
    pub fn withdraw(&self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (window_second, used) = (current >> 32, current & 0xffff_ffff);
            let used = if window_second == second { used } else { 0 };
            if used >= u64::from(self.min_per_second) {
                break;
            }
            let next = (second << 32) | (used + 1);
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        if self.balance.fetch_sub(1000, Ordering::Relaxed) >= 1000 {
            true
        } else {
            self.balance.fetch_add(1000, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retries(attempts: u32) -> Retries {
        Retries {
            attempts,
            statuses: vec![(502, 504)],
            ..Retries::default()
        }
    }

    #[test]
    fn back_off_is_jittered_under_a_doubling_ceiling() {
        use crate::l7::rules::balance::Rng;
        let ms = Duration::from_millis;
        let config = |base, max| Retries {
            backoff: ms(base),
            max_backoff: ms(max),
            ..Retries::default()
        };
        // (base ms, max ms, retry, ceiling ms)
        let cases = [
            (25, 250, 1, 25),
            (25, 250, 2, 50),
            (25, 250, 3, 100),
            (25, 250, 4, 200),
            (25, 250, 5, 250),
            (25, 250, 40, 250),
            (0, 250, 3, 0),
            (100, 100, 2, 100),
        ];
        for (base, max, retry, ceiling) in cases {
            let retries = config(base, max);
            let mut rng = crate::l7::rules::balance::SplitMix64(7);
            let waits: Vec<Duration> = (0..2000)
                .map(|_| backoff(&retries, retry, rng.next_u64()))
                .collect();
            let longest = waits.iter().max().copied().unwrap_or_default();
            let mean = waits.iter().sum::<Duration>() / 2000;
            assert!(
                longest <= ms(ceiling),
                "{base}/{max} retry {retry}: {longest:?}"
            );
            // Uniform over [0, ceiling]: spread out, mean near the middle.
            if ceiling > 0 {
                assert!(longest >= ms(ceiling) * 9 / 10, "{retry}: {longest:?}");
                let half = ms(ceiling) / 2;
                assert!(
                    mean > half * 9 / 10 && mean < half * 11 / 10,
                    "{base}/{max} retry {retry}: mean {mean:?}"
                );
            }
        }
        // The same seed draws the same waits: replicas and reruns agree.
        let retries = config(25, 250);
        let draw = |seed| {
            let mut rng = crate::l7::rules::balance::SplitMix64(seed);
            (1..=4)
                .map(|n| backoff(&retries, n, rng.next_u64()))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn what_calls_for_another_attempt() {
        use Attempted::{Fault as F, Status};
        let one = retries(1);
        // (method, replayable, attempt, result) → retry?
        let cases = [
            (Method::GET, true, 1, Status(502), true),
            (Method::GET, true, 1, Status(504), true),
            (Method::GET, true, 1, Status(500), false),
            (Method::GET, true, 1, Status(200), false),
            (Method::POST, true, 1, Status(502), false),
            (Method::GET, true, 2, Status(502), false),
            (Method::GET, false, 1, Status(502), false),
            (Method::POST, true, 1, F(Fault::ConnectFailed), true),
            (Method::POST, false, 1, F(Fault::ConnectFailed), false),
            (Method::GET, true, 2, F(Fault::ConnectFailed), false),
            (Method::PUT, true, 1, F(Fault::UpstreamFailed), true),
            (Method::POST, true, 1, F(Fault::UpstreamFailed), false),
            (Method::DELETE, true, 1, F(Fault::UpstreamTimeout), true),
            (Method::PATCH, true, 1, F(Fault::UpstreamTimeout), false),
            (Method::GET, true, 1, F(Fault::ClientTooSlow), false),
            (Method::GET, true, 1, F(Fault::UnexpectedUpgrade), false),
        ];
        for (method, replayable, attempt, attempted, expected) in cases {
            let policy = Policy::new(&one, &method, replayable);
            assert_eq!(
                policy.wants_retry(attempt, attempted),
                expected,
                "{method} replayable={replayable} attempt {attempt}: {attempted:?}"
            );
        }
        let off = retries(0);
        let policy = Policy::new(&off, &Method::GET, true);
        assert!(!policy.may_follow(1));
        assert!(!policy.wants_retry(1, F(Fault::ConnectFailed)));
    }

    #[test]
    fn spare_capacity_is_asked_last() {
        let one = retries(1);
        let policy = Policy::new(&one, &Method::GET, true);
        let mut asked = 0;
        assert!(!policy.retry(1, Attempted::Status(200), || {
            asked += 1;
            true
        }));
        assert_eq!(asked, 0, "no withdrawal from the budget without a retry");
        assert!(!policy.retry(1, Attempted::Status(502), || false));
        assert!(policy.retry(1, Attempted::Status(502), || true));
    }

    #[test]
    fn the_retry_budget_bounds_retries() {
        let budget = RetryBudget::new(&Retries {
            attempts: 1,
            statuses: vec![],
            budget_percent: 20,
            min_per_second: 2,
            ..Retries::default()
        });
        // Two free retries in second 0, then nothing without deposits.
        assert!(budget.withdraw(0));
        assert!(budget.withdraw(10));
        assert!(!budget.withdraw(20));
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.withdraw(30));
        assert!(budget.withdraw(40));
        assert!(!budget.withdraw(50));
        // A new second brings the minimum back.
        assert!(budget.withdraw(1_000));
    }
}
