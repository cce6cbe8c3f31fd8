//! Admission: the per-client rate limit, the per-client connection cap and
//! the per-listener concurrency gate.
//!
//! The decisions are pure functions of the state and the time ([`gcra`]);
//! the containers around them are sharded maps behind short mutexes (a
//! client address hashes to one of [`SHARDS`] shards) and atomics.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use topology::tiers::l7::RateLimit;

/// Shards of the per-client maps.
pub const SHARDS: usize = 16;

/// Entries a rate-limit shard holds before idle clients are swept out.
const SWEEP_AT: usize = 8192;

/// The generic cell rate algorithm (a token bucket kept as one number per
/// client, the bucket's "theoretical arrival time" `tat`, in nanoseconds).
///
/// `interval` is the time one request costs (`per / requests`) and
/// `tolerance` the burst allowance (`interval × (burst - 1)`). Returns the
/// new `tat` when the request is allowed, or how long to wait.
pub fn gcra(tat: u64, now: u64, interval: u64, tolerance: u64) -> Result<u64, Duration> {
    let tat = tat.max(now);
    if tat - now > tolerance {
        return Err(Duration::from_nanos(tat - now - tolerance));
    }
    Ok(tat + interval)
}

/// The shard of a client address: any spread will do, nothing about it
/// must agree across replicas.
fn shard_of(ip: &IpAddr) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    ip.hash(&mut hasher);
    (hasher.finish() as usize) % SHARDS
}

/// Per-client-address rate limiter.
#[derive(Debug)]
pub struct RateLimiter {
    interval: u64,
    tolerance: u64,
    shards: Vec<Mutex<HashMap<IpAddr, u64>>>,
}

impl RateLimiter {
    /// A limiter for `config`.
    pub fn new(config: &RateLimit) -> Self {
        let interval = (config.per.as_nanos() / u128::from(config.requests.max(1))).max(1) as u64;
        Self {
            interval,
            tolerance: interval * u64::from(config.burst.max(1) - 1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Whether `ip` may send a request at `now` (nanoseconds on any
    /// monotonic clock); `Err` carries the time until it may.
    pub fn check(&self, ip: IpAddr, now: u64) -> Result<(), Duration> {
        let mut shard = self.shards[shard_of(&ip)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= SWEEP_AT {
            // Clients whose bucket is full again hold no information.
            shard.retain(|_, tat| *tat > now);
        }
        let tat = shard.get(&ip).copied().unwrap_or(0);
        let new = gcra(tat, now, self.interval, self.tolerance)?;
        shard.insert(ip, new);
        Ok(())
    }
}

/// Counts open connections per client address.
#[derive(Debug)]
pub struct ConnectionCap {
    max: AtomicU32,
    shards: Vec<Mutex<HashMap<IpAddr, u32>>>,
}

/// Releases a connection slot when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    cap: Arc<ConnectionCap>,
    ip: IpAddr,
}

impl ConnectionCap {
    /// A cap of `max` connections per address; 0 means no cap.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: AtomicU32::new(max),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// Changes the cap (a reload); connections above it stay open.
    pub fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A slot for one more connection from `ip`, or `None` at the cap.
    /// Every slot is counted, even with no cap, so that a reload turning
    /// the cap on sees the connections already open.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let max = self.max.load(Ordering::Relaxed);
        let mut shard = self.shards[shard_of(&ip)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = shard.entry(ip).or_insert(0);
        if max != 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            cap: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut shard = self.cap.shards[shard_of(&self.ip)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = shard.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                shard.remove(&self.ip);
            }
        }
    }
}

/// A counting gate: at most `max` holders at once.
#[derive(Debug)]
pub struct Gate {
    max: AtomicU32,
    held: AtomicU32,
}

/// One place in a [`Gate`], released on drop.
#[derive(Debug)]
pub struct GatePass(Arc<Gate>);

impl Gate {
    /// A gate for `max` holders.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max: AtomicU32::new(max),
            held: AtomicU32::new(0),
        })
    }

    /// Changes the limit (a reload); holders above it finish normally.
    pub fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// How many hold a place now.
    pub fn held(&self) -> u32 {
        self.held.load(Ordering::Relaxed)
    }

    /// A place, or `None` when the gate is full.
    pub fn enter(self: &Arc<Self>) -> Option<GatePass> {
        let max = self.max.load(Ordering::Relaxed);
        let previous = self.held.fetch_add(1, Ordering::AcqRel);
        if previous >= max {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(GatePass(self.clone()))
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        // 10 per second, burst 3: interval 100ms, tolerance 200ms.
        let (t, tau) = (100 * MS, 200 * MS);
        let mut tat = 0;
        for _ in 0..3 {
            tat = gcra(tat, 0, t, tau).unwrap();
        }
        assert_eq!(gcra(tat, 0, t, tau), Err(Duration::from_millis(100)));
        assert_eq!(gcra(tat, 50 * MS, t, tau), Err(Duration::from_millis(50)));
        tat = gcra(tat, 100 * MS, t, tau).unwrap();
        assert!(gcra(tat, 100 * MS, t, tau).is_err());
        // Long idle: the bucket is full again, not over-full.
        let mut tat2 = tat;
        for _ in 0..3 {
            tat2 = gcra(tat2, 10_000 * MS, t, tau).unwrap();
        }
        assert!(gcra(tat2, 10_000 * MS, t, tau).is_err());
    }

    #[test]
    fn rate_limits_are_per_client() {
        let limiter = RateLimiter::new(&RateLimit {
            requests: 2,
            per: Duration::from_secs(1),
            burst: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(a, 0).is_ok());
        assert!(limiter.check(a, 0).is_ok());
        assert!(limiter.check(a, 0).is_err());
        assert!(limiter.check(b, 0).is_ok());
        assert!(limiter.check(a, 500 * MS).is_ok());
    }

    #[test]
    fn connection_caps_release_on_drop() {
        let cap = ConnectionCap::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let one = cap.acquire(ip).unwrap();
        let _two = cap.acquire(ip).unwrap();
        assert!(cap.acquire(ip).is_none());
        assert!(cap.acquire("192.0.2.9".parse().unwrap()).is_some());
        drop(one);
        assert!(cap.acquire(ip).is_some());
        let unlimited = ConnectionCap::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.acquire(ip).unwrap()).collect();
        assert_eq!(held.len(), 100);
    }

    #[test]
    fn gates_count_and_refuse() {
        let gate = Gate::new(2);
        let a = gate.enter().unwrap();
        let _b = gate.enter().unwrap();
        assert!(gate.enter().is_none());
        assert_eq!(gate.held(), 2);
        drop(a);
        assert!(gate.enter().is_some());
        gate.set_max(0);
        assert!(gate.enter().is_none());
    }
}
