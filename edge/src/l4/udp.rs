//! UDP on the VIP (`l4.udp`): datagrams grouped into flows by the client's
//! address, each flow pinned to one L7 node by the Maglev table, with a
//! connected socket of its own to that node for the replies.
//!
//! ```text
//! client ──► VIP UDP socket (one loop per address and port)
//!              │  flow of the client's address?   FlowTable, owned by the loop
//!              │    yes: its node still up, its port not refusing?  else it moves
//!              │    no:  flows < max_flows?         else dropped and counted
//!              │         key = SipHash(5-tuple | client IP), proto UDP
//!              │         node = Maglev lookup      empty table → dropped
//!              │         socket connected to node:to_port + a reply task
//!              ▼
//!            [PROXY v2 header, DGRAM] + datagram ──► L7 node at to_port
//! client ◄── VIP socket ◄── reply task ◄── the flow's socket
//! ```
//!
//! The same table as TCP, so the same rules: a flow sticks to its node
//! while the node is configured and the health checks have it up (a node
//! drained to weight 0 keeps its flows until they idle out, as TCP
//! connections finish); when its node goes down or leaves the topology,
//! the flow is moved at its next datagram, and no other flow moves. A flow
//! whose node answers ICMP port unreachable (nothing listens at `to_port`,
//! while the health check still passes) moves at its next datagram to the
//! next node of the table for its key, as a TCP connection retries on a
//! failed connect; the datagram that met the closed port is lost, as UDP
//! allows, and counted (`l7_unreachable`).
//!
//! A flow ends after `idle_timeout` without a datagram either way (one
//! sweep of the table, not a timer per flow; see `flows`). Past
//! `max_flows` (per VIP address) the datagrams of new flows are dropped and
//! counted while existing flows carry on. Nothing is drained on shutdown:
//! the loops stop and their flows end with them.

mod flows;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::gauge::Gauge;
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use topology::tiers::l4::UdpService;
use tracing::{debug, warn};

use crate::l4::header::MAX_HEADER_LEN;
use crate::l4::metrics::{UdpDrop, UdpDrops};
use crate::l4::state::{Backend, Shared, Snapshot};
use crate::maglev::{FiveTuple, IpProtocol};
use crate::proxy_protocol::Transport;
use flows::{Activity, FlowTable, sweep_period};

/// The largest UDP payload (IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65_535;

/// One flow: its node, its socket to the node, and its reply task (stopped
/// when the flow is dropped).
struct Flow {
    backend: Arc<Backend>,
    upstream: Arc<UdpSocket>,
    /// The snapshot generation at which `backend` was last seen up.
    generation: u64,
    /// Set when the node answered ICMP port unreachable.
    refused: Arc<AtomicBool>,
    open: Gauge,
    _replies: DropGuard,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.backend.metrics.udp.active.dec();
        self.open.dec();
    }
}

/// Whether a flow on `backend` may stay there: the node is still configured
/// (same name and address) and up in `snapshot`.
fn keeps(snapshot: &Snapshot, backend: &Backend) -> bool {
    snapshot.nodes.iter().any(|view| {
        view.up && view.backend.name == backend.name && view.backend.address == backend.address
    })
}

/// One UDP socket on the VIP and what its flows share.
struct Service {
    socket: Arc<UdpSocket>,
    vip: SocketAddr,
    service: UdpService,
    shared: Arc<Shared>,
    /// Zero of the flows' millisecond clock.
    epoch: Instant,
    replies: TaskTracker,
}

/// Serves the UDP service `service` on `socket` (bound to `vip`) until
/// `stop` is cancelled; its flows end then.
pub(crate) async fn serve(
    socket: UdpSocket,
    vip: SocketAddr,
    service: UdpService,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let this = Service {
        socket: Arc::new(socket),
        vip,
        service,
        shared,
        epoch: Instant::now(),
        replies: TaskTracker::new(),
    };
    let mut flows = FlowTable::new(service.max_flows);
    // The header goes right before the payload: one send, no copy of it.
    let mut buf = vec![0u8; MAX_HEADER_LEN + MAX_DATAGRAM].into_boxed_slice();
    let mut sweep = tokio::time::interval(sweep_period(service.idle_timeout));
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = sweep.tick() => this.sweep(&mut flows),
            received = this.socket.recv_from(&mut buf[MAX_HEADER_LEN..]) => match received {
                Ok((len, client)) => this.forward(&mut flows, &mut buf, len, client).await,
                // Nothing the loop can act on (an unconnected socket reports
                // no ICMP errors); the next datagram is independent.
                Err(e) => warn!(%vip, "UDP receive failed: {e}"),
            },
        }
    }
    let open = flows.len();
    drop(flows);
    this.replies.close();
    this.replies.wait().await;
    debug!(%vip, open, "UDP service stopped; its flows ended");
}

impl Service {
    /// Milliseconds since the service started.
    fn now(&self) -> u64 {
        millis(self.epoch)
    }

    /// Ends the flows idle for the idle timeout.
    fn sweep(&self, flows: &mut FlowTable<Flow>) {
        let expired = flows.expire(self.now(), self.service.idle_timeout);
        if !expired.is_empty() {
            self.shared
                .metrics
                .udp_idle_timeouts
                .inc_by(expired.len() as u64);
            debug!(vip = %self.vip, flows = expired.len(), "UDP flows ended: idle timeout");
        }
    }

    /// Sends the datagram at `buf[MAX_HEADER_LEN..][..len]` from `client` to
    /// its flow's node, opening (or moving) the flow first if needed.
    ///
    /// A send that reports the node's port closed (the ICMP error an earlier
    /// datagram met; the kernel then sends nothing) moves the flow to its
    /// next node and sends there, once.
    async fn forward(
        &self,
        flows: &mut FlowTable<Flow>,
        buf: &mut [u8],
        len: usize,
        client: SocketAddr,
    ) {
        let start = if self.service.proxy_protocol {
            let mut header = [0u8; MAX_HEADER_LEN];
            let n = self
                .shared
                .header
                .write(Transport::Datagram, client, self.vip, &mut header);
            let start = MAX_HEADER_LEN - n;
            buf[start..MAX_HEADER_LEN].copy_from_slice(&header[..n]);
            start
        } else {
            MAX_HEADER_LEN
        };
        let datagram = &buf[start..MAX_HEADER_LEN + len];
        for _ in 0..2 {
            let Some(flow) = self.flow_of(flows, client).await else {
                return;
            };
            match send_now(&flow.upstream, datagram, None) {
                Ok(_) => {
                    let metrics = &flow.backend.metrics.udp;
                    metrics.datagrams_to_l7.inc();
                    metrics.bytes_to_l7.inc_by(len as u64);
                    return;
                }
                Err(e) => {
                    let reason = dropped(&e);
                    self.shared.metrics.udp_dropped.inc(reason);
                    if reason != UdpDrop::L7Unreachable {
                        return;
                    }
                    flow.refused.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// The flow of `client`: the one it has if its node is still up and
    /// has not refused, else a new one (moved off a refusing node to the
    /// next one). `None` when the datagram is dropped (counted here).
    async fn flow_of<'a>(
        &self,
        flows: &'a mut FlowTable<Flow>,
        client: SocketAddr,
    ) -> Option<&'a mut Flow> {
        let now = self.now();
        let snapshot = self.shared.snapshot.load();
        let stays = flows.get(&client, now).map(|flow| {
            if flow.generation != snapshot.generation && keeps(&snapshot, &flow.backend) {
                flow.generation = snapshot.generation;
            }
            flow.generation == snapshot.generation && !flow.refused.load(Ordering::Relaxed)
        });
        let mut avoid = None;
        if stays == Some(false)
            && let Some(flow) = flows.remove(&client)
        {
            self.shared.metrics.udp_moved.inc();
            let refused = flow.refused.load(Ordering::Relaxed);
            debug!(%client, vip = %self.vip, from = %flow.backend.name, refused, "UDP flow moves: its node left the table or refused");
            if refused {
                avoid = Some(Arc::clone(&flow.backend.name));
            }
        }
        if stays != Some(true)
            && let Err(reason) = self
                .open(flows, client, &snapshot, avoid.as_deref(), now)
                .await
        {
            self.shared.metrics.udp_dropped.inc(reason);
            return None;
        }
        flows.get(&client, now)
    }

    /// Opens the flow of `client` on the node the table picks (its
    /// fallback if that is the node `avoid`), or says why not.
    async fn open(
        &self,
        flows: &mut FlowTable<Flow>,
        client: SocketAddr,
        snapshot: &Snapshot,
        avoid: Option<&str>,
        now: u64,
    ) -> Result<(), UdpDrop> {
        if flows.is_full() {
            debug!(%client, vip = %self.vip, max = self.service.max_flows, "UDP datagram dropped: max_flows reached");
            return Err(UdpDrop::MaxFlows);
        }
        let key = snapshot.settings.hasher.key(&FiveTuple {
            source: client,
            destination: self.vip,
            protocol: IpProtocol::UDP,
        });
        let Some((primary, fallback)) = snapshot.selection.pick(key) else {
            debug!(%client, vip = %self.vip, "UDP datagram dropped: no healthy L7 node");
            return Err(UdpDrop::NoHealthy);
        };
        let backend = match fallback {
            Some(fallback) if avoid == Some(&*primary.name) => fallback,
            _ => primary,
        };
        let target = SocketAddr::new(backend.address, self.service.to_port);
        let upstream = match connect(target).await {
            Ok(socket) => Arc::new(socket),
            Err(e) => {
                // Counted, not logged at warn: a flood (out of file
                // descriptors) would flood the log too.
                debug!(%client, l7_node = %backend.name, %target, source = "internal", "cannot open a UDP socket to the L7 node: {e}");
                return Err(UdpDrop::UpstreamSocket);
            }
        };
        let activity = Arc::new(Activity::default());
        let refused = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        self.replies.spawn(
            Replies {
                upstream: Arc::clone(&upstream),
                vip: Arc::clone(&self.socket),
                client,
                backend: Arc::clone(backend),
                activity: Arc::clone(&activity),
                refused: Arc::clone(&refused),
                epoch: self.epoch,
                drops: self.shared.metrics.udp_dropped.clone(),
            }
            .run(stop.clone()),
        );
        backend.metrics.udp.flows.inc();
        backend.metrics.udp.active.inc();
        self.shared.metrics.udp_open.inc();
        let flow = Flow {
            backend: Arc::clone(backend),
            upstream,
            generation: snapshot.generation,
            refused,
            open: self.shared.metrics.udp_open.clone(),
            _replies: stop.drop_guard(),
        };
        debug!(%client, vip = %self.vip, l7_node = %backend.name, "UDP flow opened");
        flows
            .insert(client, flow, activity, now)
            .map_err(|_| UdpDrop::MaxFlows)
    }
}

/// A UDP socket on an ephemeral port, connected to `target`: the kernel
/// then delivers only `target`'s replies to it.
async fn connect(target: SocketAddr) -> io::Result<UdpSocket> {
    let local = match target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// Sends `datagram` on `socket` (to `to`, else to its connected peer) with
/// one non-blocking system call. Not tokio's `try_send`: that answers
/// `WouldBlock` until the reactor has seen a new socket writable, and a UDP
/// send has nothing to wait for (a full buffer is a drop).
fn send_now(socket: &UdpSocket, datagram: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    match to {
        Some(to) => socket.send_to(datagram, &to.into()),
        None => socket.send(datagram),
    }
}

/// The drop reason of a failed send or receive on a flow's socket.
fn dropped(error: &io::Error) -> UdpDrop {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        UdpDrop::L7Unreachable
    } else {
        UdpDrop::SendFailed
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The reply side of one flow: node → flow socket → VIP socket → client.
struct Replies {
    upstream: Arc<UdpSocket>,
    vip: Arc<UdpSocket>,
    client: SocketAddr,
    backend: Arc<Backend>,
    activity: Arc<Activity>,
    refused: Arc<AtomicBool>,
    epoch: Instant,
    drops: UdpDrops,
}

impl Replies {
    /// Relays replies until `stop` (the flow ended) or the socket fails.
    async fn run(self, stop: CancellationToken) {
        loop {
            let ready = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                ready = self.upstream.readable() => ready,
            };
            if let Err(e) = ready.and_then(|()| self.relay_ready()) {
                warn!(client = %self.client, l7_node = %self.backend.name, "UDP flow socket failed: {e}; its replies stop");
                return;
            }
        }
    }

    /// Relays every reply ready now. The buffer lives on this synchronous
    /// frame, not in the task: a flow costs no 64 KiB while it waits.
    fn relay_ready(&self) -> io::Result<()> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let metrics = &self.backend.metrics.udp;
        loop {
            match self.upstream.try_recv(&mut buf) {
                Ok(len) => {
                    self.activity.touch(millis(self.epoch));
                    match send_now(&self.vip, &buf[..len], Some(self.client)) {
                        Ok(_) => {
                            metrics.datagrams_to_client.inc();
                            metrics.bytes_to_client.inc_by(len as u64);
                        }
                        Err(_) => self.drops.inc(UdpDrop::SendFailed),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    // The ICMP error of an earlier datagram to the node:
                    // the flow moves at its next datagram.
                    self.refused.store(true, Ordering::Relaxed);
                    self.drops.inc(UdpDrop::L7Unreachable);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
