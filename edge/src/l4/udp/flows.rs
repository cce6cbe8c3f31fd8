//! The flow table of one UDP socket on the VIP: flows by client address,
//! bounded by `max_flows`, expired by one periodic sweep. Pure: the clock
//! is a millisecond count passed in.
//!
//! A flow's last activity is an atomic shared with the task that relays
//! its replies, so a reply keeps a flow alive without touching the table.
//! Expiry is a sweep every [`sweep_period`] rather than a timer per flow:
//! touching a flow is one atomic store, and a flow ends between
//! `idle_timeout` and `idle_timeout + sweep_period` after its last
//! datagram.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When a flow last moved a datagram, in milliseconds of its table's clock.
#[derive(Debug, Default)]
pub(crate) struct Activity(AtomicU64);

impl Activity {
    /// Records a datagram at `now`.
    pub(crate) fn touch(&self, now: u64) {
        self.0.fetch_max(now, Ordering::Relaxed);
    }

    fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How often the table is swept for idle flows: an eighth of the idle
/// timeout (a flow outlives its timeout by at most that), at least 10 ms.
pub(crate) fn sweep_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 8).max(Duration::from_millis(10))
}

/// Flows keyed by the client's address.
#[derive(Debug)]
pub(crate) struct FlowTable<F> {
    flows: HashMap<SocketAddr, (F, Arc<Activity>)>,
    max: usize,
}

impl<F> FlowTable<F> {
    /// An empty table that holds at most `max` flows.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            flows: HashMap::new(),
            max,
        }
    }

    /// Flows held.
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether a new flow would go past `max`.
    pub(crate) fn is_full(&self) -> bool {
        self.flows.len() >= self.max
    }

    /// The flow of `client`, marked active at `now`.
    pub(crate) fn get(&mut self, client: &SocketAddr, now: u64) -> Option<&mut F> {
        let (flow, activity) = self.flows.get_mut(client)?;
        activity.touch(now);
        Some(flow)
    }

    /// Removes the flow of `client`.
    pub(crate) fn remove(&mut self, client: &SocketAddr) -> Option<F> {
        self.flows.remove(client).map(|(flow, _)| flow)
    }

    /// Adds (or replaces) the flow of `client`, active at `now`. The caller
    /// checked [`is_full`](Self::is_full); a new flow past `max` is refused
    /// (returned) all the same, so the bound holds whatever the caller does.
    pub(crate) fn insert(
        &mut self,
        client: SocketAddr,
        flow: F,
        activity: Arc<Activity>,
        now: u64,
    ) -> Result<(), F> {
        if self.is_full() && !self.flows.contains_key(&client) {
            return Err(flow);
        }
        activity.touch(now);
        self.flows.insert(client, (flow, activity));
        Ok(())
    }

    /// Removes and returns the flows idle for `idle` or longer at `now`.
    pub(crate) fn expire(&mut self, now: u64, idle: Duration) -> Vec<F> {
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let stale: Vec<SocketAddr> = self
            .flows
            .iter()
            .filter(|(_, (_, activity))| now.saturating_sub(activity.last()) >= idle)
            .map(|(client, _)| *client)
            .collect();
        stale
            .iter()
            .filter_map(|client| self.remove(client))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 7], port))
    }

    #[test]
    fn the_bound_holds() {
        let mut table = FlowTable::new(2);
        for port in [1, 2] {
            assert!(!table.is_full());
            table.insert(client(port), port, Arc::default(), 0).unwrap();
        }
        assert!(table.is_full());
        assert_eq!(table.insert(client(3), 3, Arc::default(), 0), Err(3));
        assert_eq!(table.len(), 2);
        // Replacing an existing flow is not a new one.
        assert!(table.insert(client(2), 20, Arc::default(), 0).is_ok());
        assert_eq!(table.get(&client(2), 0), Some(&mut 20));
        assert_eq!(table.remove(&client(1)), Some(1));
        assert!(!table.is_full());
    }

    #[test]
    fn idle_flows_expire_and_active_ones_stay() {
        let idle = Duration::from_secs(30);
        let mut table = FlowTable::new(10);
        let replied = Arc::new(Activity::default());
        table.insert(client(1), "quiet", Arc::default(), 0).unwrap();
        table
            .insert(client(2), "asking", Arc::default(), 0)
            .unwrap();
        table
            .insert(client(3), "answered", Arc::clone(&replied), 0)
            .unwrap();
        assert!(table.expire(29_999, idle).is_empty());
        // A datagram from the client, and a reply from the node, keep a
        // flow alive.
        table.get(&client(2), 20_000);
        replied.touch(25_000);
        assert_eq!(table.expire(30_000, idle), ["quiet"]);
        assert_eq!(table.get(&client(1), 30_000), None);
        let mut later = table.expire(55_000, idle);
        later.sort_unstable();
        assert_eq!(later, ["answered", "asking"]);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn activity_never_goes_back() {
        let activity = Activity::default();
        activity.touch(10);
        activity.touch(5);
        assert_eq!(activity.last(), 10);
    }

    #[test]
    fn sweeps_are_an_eighth_of_the_timeout() {
        assert_eq!(
            sweep_period(Duration::from_secs(60)),
            Duration::from_millis(7_500)
        );
        assert_eq!(
            sweep_period(Duration::from_millis(20)),
            Duration::from_millis(10)
        );
    }
}
