//! The node's drain as one phase machine: serving → lingering → closing →
//! forced. Every part of the node that behaves differently while draining
//! (the health path, the listeners, each connection, the admin status)
//! reads its phase here, and the sequence from shutdown to the last closed
//! connection runs here.
//!
//! - **Lingering**: the health path answers 503, so the L4 tier's checks
//!   take the node out of its table; until they do, new connections keep
//!   coming and are served. The listeners stay open until no connection
//!   has arrived for [`DRAIN_QUIET`], or min([`DRAIN_LINGER`],
//!   `timeouts.drain`) has passed.
//! - **Closing**: the listeners serve what the kernel has queued and close;
//!   each connection gets the drain signal once its next request is read
//!   ([`Drain::hold`]), so a kept-alive one answers it with
//!   `Connection: close`; requests in flight get `timeouts.drain`.
//! - **Forced**: the deadline passed; what is left is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::l7::shared::clock::Clock;

/// While lingering, the listeners stay open while new connections keep
/// arriving less than this far apart …
pub const DRAIN_QUIET: Duration = Duration::from_millis(250);

/// … for at most this long (and at most `timeouts.drain`).
pub const DRAIN_LINGER: Duration = Duration::from_secs(5);

/// Once the node closes, how long a connection with no request on its way
/// is kept open for its next one (at most `timeouts.request_headers`).
pub const NEXT_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Where a node is in its drain; phases only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// No drain.
    Serving = 0,
    /// The health path fails; connections are still accepted.
    Lingering = 1,
    /// No new connections; requests in flight finish.
    Closing = 2,
    /// The deadline passed; what is left is being closed.
    Forced = 3,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Phase::Serving,
            1 => Phase::Lingering,
            2 => Phase::Closing,
            _ => Phase::Forced,
        }
    }

    /// Whether the health path answers 503 (the node is draining).
    pub fn health_fails(self) -> bool {
        self >= Phase::Lingering
    }

    /// Whether the listeners accept connections.
    pub fn accepting(self) -> bool {
        self < Phase::Closing
    }
}

/// The drain state of one node.
#[derive(Debug)]
pub struct Drain {
    phase: AtomicU8,
    /// When the last connection was accepted ([`Clock::now_ms`]).
    last_accept_ms: AtomicU64,
    /// Cancelled on entering [`Phase::Closing`].
    closing: CancellationToken,
    /// Cancelled on entering [`Phase::Forced`].
    forced: CancellationToken,
    /// WebSocket tunnels, drained with the connections.
    tunnels: TaskTracker,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Serving as u8),
            last_accept_ms: AtomicU64::new(0),
            closing: CancellationToken::new(),
            forced: CancellationToken::new(),
            tunnels: TaskTracker::new(),
        }
    }
}

impl Drain {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    fn enter(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::Relaxed);
        match phase {
            Phase::Serving | Phase::Lingering => {}
            Phase::Closing => self.closing.cancel(),
            Phase::Forced => self.forced.cancel(),
        }
    }

    /// Notes a connection accepted at `now_ms`: while lingering, arrivals
    /// keep the listeners open.
    pub fn accepted(&self, now_ms: u64) {
        self.last_accept_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Cancelled when the node stops accepting ([`Phase::Closing`]).
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// Cancelled when the drain deadline passes ([`Phase::Forced`]).
    pub fn forced(&self) -> &CancellationToken {
        &self.forced
    }

    /// The WebSocket tunnels, waited for like connections.
    pub fn tunnels(&self) -> &TaskTracker {
        &self.tunnels
    }

    /// Drains the node: lingers, closes, waits up to `grace` for
    /// `connections` and the tunnels, then forces what is left and waits
    /// for it to go.
    pub async fn run(&self, clock: &Clock, grace: Duration, connections: &TaskTracker, node: &str) {
        self.enter(Phase::Lingering);
        self.linger(clock, grace.min(DRAIN_LINGER), node).await;
        info!(node = %node, ?grace, "draining: no new connections, finishing requests in flight");
        self.enter(Phase::Closing);
        connections.close();
        self.tunnels.close();
        let drained = tokio::time::timeout(grace, async {
            connections.wait().await;
            self.tunnels.wait().await;
        })
        .await;
        if drained.is_err() {
            warn!(
                node = %node,
                connections = connections.len(),
                tunnels = self.tunnels.len(),
                "drain deadline hit: closing what is left"
            );
            self.enter(Phase::Forced);
            connections.wait().await;
            self.tunnels.wait().await;
        }
    }

    /// The lingering phase. Closing the listeners while connections still
    /// come would reset the ones in the kernel's accept queue — connections
    /// the L4 tier has opened and already sent a request on, which it
    /// cannot send elsewhere. After it, a connection is refused outright
    /// and the L4 tier tries the next node.
    async fn linger(&self, clock: &Clock, most: Duration, node: &str) {
        let deadline = Instant::now() + most;
        let mut told = false;
        loop {
            let last = self.last_accept_ms.load(Ordering::Relaxed);
            let Some(wake_ms) = linger_until(clock.now_ms(), last) else {
                return;
            };
            if Instant::now() >= deadline {
                return;
            }
            if !told {
                info!(node = %node, ?most, "draining: health path says 503; accepting while connections keep arriving");
                told = true;
            }
            tokio::time::sleep_until(clock.instant_at(wake_ms).min(deadline)).await;
        }
    }

    /// The node's closing signal, passed on to one connection only when the
    /// client's next bytes have been read after it (see [`ReadSignal`]) or
    /// `grace` has passed.
    ///
    /// hyper closes an HTTP/1 connection with no request in progress as
    /// soon as it is asked to shut down gracefully. A request already on
    /// its way — the first one of a connection the L4 tier has just opened,
    /// or the next one on a kept-alive connection — would meet a closed
    /// connection and get no answer. Held back, the signal reaches hyper
    /// once that request is read; hyper answers it with `Connection: close`
    /// and closes, and the client's next request opens a connection the L4
    /// tier sends elsewhere.
    pub fn hold(
        &self,
        reads: Arc<ReadSignal>,
        grace: Duration,
    ) -> HeldDrain<impl std::future::Future<Output = ()> + use<>> {
        let closing = self.closing.clone();
        let token = CancellationToken::new();
        let own = token.clone();
        let relay = async move {
            closing.cancelled().await;
            reads.armed.store(true, Ordering::SeqCst);
            tokio::select! {
                () = reads.read.notified() => {}
                () = tokio::time::sleep(grace) => {}
            }
            own.cancel();
            // The connection ends the select it runs in.
            std::future::pending::<()>().await;
        };
        HeldDrain { token, relay }
    }
}

/// While lingering, with the last connection accepted at `last_accept_ms`:
/// `None` once no connection has come for [`DRAIN_QUIET`] (the listeners
/// may close), else the time (ms) at which to look again.
pub fn linger_until(now_ms: u64, last_accept_ms: u64) -> Option<u64> {
    let quiet = DRAIN_QUIET.as_millis() as u64;
    (now_ms.saturating_sub(last_accept_ms) < quiet).then_some(last_accept_ms + quiet)
}

/// A connection's own drain signal and the future that fires it; the
/// connection runs `relay` beside its serving and ends with it.
pub struct HeldDrain<F> {
    /// Cancelled when the connection should close after its current request.
    pub token: CancellationToken,
    /// Fires `token`; never completes.
    pub relay: F,
}

/// Tells a connection's held drain that bytes came in.
#[derive(Debug, Default)]
pub struct ReadSignal {
    /// Set when the node starts closing; reads before it are not reported.
    armed: AtomicBool,
    read: Notify,
}

impl ReadSignal {
    /// Reports that the client sent bytes (called on every read).
    pub fn bytes_read(&self) {
        if self.armed.load(Ordering::Relaxed) {
            // A stored permit: the waiter may come later.
            self.read.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingering_ends_after_a_quiet_period() {
        // (now, last accept) → look again at, or None: close.
        let cases: &[(u64, u64, Option<u64>)] = &[
            (0, 0, Some(250)),
            (249, 0, Some(250)),
            (250, 0, None),
            (1_000, 900, Some(1_150)),
            (1_150, 900, None),
            // An accept stamped after the clock was read.
            (100, 120, Some(370)),
        ];
        for &(now, last, expected) in cases {
            assert_eq!(linger_until(now, last), expected, "now {now}, last {last}");
        }
    }

    #[test]
    fn phases_only_move_forward() {
        let drain = Drain::default();
        assert_eq!(drain.phase(), Phase::Serving);
        assert!(!drain.phase().health_fails() && drain.phase().accepting());
        drain.enter(Phase::Lingering);
        assert!(drain.phase().health_fails() && drain.phase().accepting());
        assert!(!drain.closing().is_cancelled());
        drain.enter(Phase::Closing);
        assert!(!drain.phase().accepting() && drain.closing().is_cancelled());
        drain.enter(Phase::Lingering);
        assert_eq!(drain.phase(), Phase::Closing);
        drain.enter(Phase::Forced);
        assert!(drain.forced().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_drain_waits_for_the_next_request() {
        let drain = Drain::default();
        let reads = Arc::new(ReadSignal::default());
        let held = drain.hold(reads.clone(), Duration::from_secs(1));
        let token = held.token.clone();
        let relay = tokio::spawn(held.relay);
        // Bytes before the node closes are not the next request.
        reads.bytes_read();
        drain.enter(Phase::Closing);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!token.is_cancelled());
        reads.bytes_read();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(token.is_cancelled());
        relay.abort();
    }
}
