//! Idle keep-alive connections to backend servers, by server: the one
//! pool both HTTP/1.1 paths keep them in (hyper's connections in
//! [`crate::l7::path::http::upstream`], the fast path's sockets in [`crate::l7::path::fast`]),
//! with its bounds: at most a cap per server (more are closed as they come
//! back), none handed out once idle for `upstream_idle`, and
//! [`Idle::sweep`] closing those past it that nobody asked for.
//!
//! Age is checked when a connection is taken (one clock read, under the
//! lock already held) and by a periodic sweep, not by a timer per
//! connection: the hot path pays nothing per idle connection, and a server
//! no request goes to any more still gets its connections closed.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Most idle connections kept per server, on each path: a burst that
/// opened more leaves only this many open once it is over.
pub const MAX_IDLE_PER_SERVER: usize = 1024;

/// Idle connections (`C`) by server (`K`: its address, or whatever else
/// tells its connections apart, such as the TLS configuration they were
/// made with), each with when it went idle; most recently used at the back.
#[derive(Debug)]
pub struct Idle<C, K = SocketAddr> {
    by_server: Mutex<HashMap<K, VecDeque<(C, Instant)>>>,
    cap: usize,
}

impl<C, K: Eq + Hash> Default for Idle<C, K> {
    fn default() -> Self {
        Self::with_cap(MAX_IDLE_PER_SERVER)
    }
}

impl<C, K: Eq + Hash> Idle<C, K> {
    /// A pool keeping at most `cap` idle connections per server.
    pub fn with_cap(cap: usize) -> Self {
        Self {
            by_server: Mutex::new(HashMap::new()),
            cap,
        }
    }

    /// Keeps `conn` to `addr` for a later request; when the server
    /// already has the cap, `conn` is dropped (closed) instead.
    pub fn put(&self, addr: K, conn: C) {
        let mut by_server = self
            .by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let conns = by_server.entry(addr).or_default();
        if conns.len() < self.cap {
            conns.push_back((conn, Instant::now()));
        }
    }

    /// The most recently used idle connection to `addr` that went idle
    /// less than `max_idle` ago and that `usable` accepts (still open);
    /// the ones it passes over are closed.
    pub fn take(
        &self,
        addr: K,
        max_idle: Duration,
        mut usable: impl FnMut(&mut C) -> bool,
    ) -> Option<C> {
        let now = Instant::now();
        let mut by_server = self
            .by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let conns = by_server.get_mut(&addr)?;
        while let Some((mut conn, since)) = conns.pop_back() {
            if now.duration_since(since) >= max_idle {
                // The rest went idle even earlier.
                conns.clear();
                return None;
            }
            if usable(&mut conn) {
                return Some(conn);
            }
        }
        None
    }

    /// Closes the connections idle for `max_idle` or longer at `now`.
    pub fn sweep(&self, now: Instant, max_idle: Duration) {
        let mut by_server = self
            .by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        by_server.retain(|_, conns| {
            // Oldest first: the expired ones are at the front.
            while conns
                .front()
                .is_some_and(|(_, since)| now.duration_since(*since) >= max_idle)
            {
                conns.pop_front();
            }
            !conns.is_empty()
        });
    }

    /// Closes the idle connections of the servers `keep` refuses.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|server, _| keep(server));
    }

    /// How many connections to `addr` are idle.
    pub fn len(&self, addr: K) -> usize {
        self.by_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr)
            .map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn at_most_the_cap_stay_idle_per_server() {
        let idle = Idle::with_cap(2);
        for n in 0..5 {
            idle.put(addr(1), n);
        }
        idle.put(addr(2), 9);
        assert_eq!((idle.len(addr(1)), idle.len(addr(2))), (2, 1));
        // The most recently used first.
        assert_eq!(
            idle.take(addr(1), Duration::from_secs(60), |_| true),
            Some(1)
        );
        assert_eq!(
            idle.take(addr(1), Duration::from_secs(60), |_| true),
            Some(0)
        );
        assert_eq!(idle.take(addr(1), Duration::from_secs(60), |_| true), None);
    }

    #[test]
    fn closed_connections_are_passed_over_and_dropped() {
        let idle = Idle::default();
        for n in 0..3 {
            idle.put(addr(1), n);
        }
        // 2 is closed: 1 is taken, 2 is gone.
        assert_eq!(
            idle.take(addr(1), Duration::from_secs(60), |n| *n != 2),
            Some(1)
        );
        assert_eq!(idle.len(addr(1)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_idle_too_long_are_neither_taken_nor_kept() {
        let idle = Idle::default();
        idle.put(addr(1), 1);
        idle.put(addr(2), 2);
        tokio::time::advance(Duration::from_secs(30)).await;
        idle.put(addr(1), 3);
        tokio::time::advance(Duration::from_secs(31)).await;
        let max_idle = Duration::from_secs(60);
        // 3 went idle 31 s ago; 1 and 2, 61 s ago.
        idle.sweep(Instant::now(), max_idle);
        assert_eq!((idle.len(addr(1)), idle.len(addr(2))), (1, 0));
        assert_eq!(idle.take(addr(1), max_idle, |_| true), Some(3));
        idle.put(addr(1), 4);
        tokio::time::advance(max_idle).await;
        assert_eq!(idle.take(addr(1), max_idle, |_| true), None);
        assert_eq!(idle.len(addr(1)), 0);
    }
}
