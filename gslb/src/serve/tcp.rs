//! DNS over TCP (RFC 7766): length-prefixed messages, answered in order
//! (pipelining), with the limits an internet-facing server needs — at most
//! so many connections in all and per client address, each closed when it
//! stays idle (or trickles a message) longer than the idle timeout.
//!
//! Replies come from the DNS adapter ([`crate::dns::answer_tcp_bytes`]),
//! the same answer as every other path, without size fitting. TCP is never rate limited: a connection
//! proves the client's address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::dns::answer_tcp_bytes;
use crate::health::RegionHealth;
use crate::metrics::Metrics;
use crate::state::ServingState;

/// Limits of the TCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Connections open at once, all clients together; more are closed at
    /// once.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// How long a connection may stay without a complete query.
    pub idle_timeout: Duration,
}

impl Default for TcpOptions {
    /// 1024 connections, 16 per client, 10 s idle.
    fn default() -> TcpOptions {
        TcpOptions {
            max_connections: 1024,
            max_per_client: 16,
            idle_timeout: super::TCP_IDLE_TIMEOUT,
        }
    }
}

/// What connections share.
struct Shared {
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    options: TcpOptions,
    slots: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// Serves `listeners` until `shutdown`; connections are tracked in
/// `connections`, which the caller waits for (within its grace period).
pub(crate) fn spawn(
    listeners: Vec<TcpListener>,
    state: Arc<ArcSwap<ServingState>>,
    health: Arc<ArcSwap<RegionHealth>>,
    metrics: Arc<Metrics>,
    options: TcpOptions,
    shutdown: CancellationToken,
    connections: &TaskTracker,
) {
    let shared = Arc::new(Shared {
        state,
        health,
        metrics,
        options,
        slots: Arc::new(Semaphore::new(options.max_connections.max(1))),
        per_client: Mutex::new(HashMap::new()),
    });
    for listener in listeners {
        connections.spawn(accept_loop(
            listener,
            shared.clone(),
            shutdown.clone(),
            connections.clone(),
        ));
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (stream, src) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: pause rather than spin.
                debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(admission) = Admission::new(&shared, src.ip()) else {
            debug!(%src, "TCP connection refused: too many open");
            continue;
        };
        connections.spawn(connection(
            stream,
            src,
            shared.clone(),
            admission,
            shutdown.clone(),
        ));
    }
}

/// A connection's place in the limits, given back when it closes.
struct Admission {
    shared: Arc<Shared>,
    client: IpAddr,
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    fn new(shared: &Arc<Shared>, client: IpAddr) -> Option<Admission> {
        let slot = shared.slots.clone().try_acquire_owned().ok()?;
        let mut per_client = lock(&shared.per_client);
        let open = per_client.entry(client).or_default();
        if *open >= shared.options.max_per_client {
            return None;
        }
        *open += 1;
        Some(Admission {
            shared: shared.clone(),
            client,
            _slot: slot,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut per_client = lock(&self.shared.per_client);
        if let Some(open) = per_client.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Answers the queries of one connection in order until the client closes
/// it, it idles out, or the server shuts down.
async fn connection(
    mut stream: TcpStream,
    src: SocketAddr,
    shared: Arc<Shared>,
    _admission: Admission,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let idle = shared.options.idle_timeout;
    let mut message = Vec::new();
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(idle, read_message(&mut stream, &mut message)) => read,
            () = shutdown.cancelled() => return,
        };
        match read {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                debug!(%src, %error, "TCP connection closed");
                return;
            }
            Err(_) => {
                debug!(%src, ?idle, "TCP connection idle; closing");
                return;
            }
        }
        let reply = {
            let state = shared.state.load();
            let health = shared.health.load();
            answer_tcp_bytes(&state, &health, &shared.metrics, &message, src)
        };
        let Some(reply) = reply else {
            continue;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(2 + reply.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        match tokio::time::timeout(idle, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

/// Reads one length-prefixed message into `message`.
async fn read_message(stream: &mut TcpStream, message: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    message.resize(usize::from(u16::from_be_bytes(len)), 0);
    stream.read_exact(message).await?;
    Ok(())
}
