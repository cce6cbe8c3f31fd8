//! The L4 tier: TCP on the region's VIP, spread over the L7 nodes by a
//! Maglev table, with the client's addresses announced in a PROXY v2
//! header. TLS passes through untouched. The UDP services of `l4.udp` go
//! over the same table, flow by flow (see `udp`).
//!
//! # How a connection flows
//!
//! ```text
//! client ──► VIP listener (accept loop, per address and port)
//!              │  snapshot = ArcSwap::load()            no lock
//!              │  open < max_connections?               one atomic add, else RST
//!              │  key = SipHash(5-tuple | client IP)
//!              │  (primary, fallback) = Maglev lookup   empty table → RST
//!              ▼
//!            connection task (TaskTracker)
//!              │  connect primary, else fallback        connect_timeout each
//!              │  write PROXY v2 (client → VIP, TLV 0xE0 = node name)
//!              │    with what the client has sent so far: one write
//!              ▼
//!            relay (splice(2), half-close, idle_timeout) ──► L7 node, same port
//! ```
//!
//! # Health, reload, drain
//!
//! The `control` task owns the plan and the `probe` crate's [`Prober`]
//! (HTTP GET of the L7 health path on each L7 node's HTTP port by default,
//! or TCP, with rise/fall). Each health change and each reload (SIGHUP,
//! `POST /v1/reload`, or the topology file changing, as
//! [`lifecycle::watch`] notices) rebuilds
//! the table over the healthy nodes and publishes a new snapshot; open
//! connections keep their node. With no healthy node, new connections are
//! reset, so the region's GSLB health check through the VIP fails and DNS
//! moves away.
//!
//! On shutdown the listeners close at once, open connections get
//! `drain_timeout` to finish, and the rest are closed (and counted).
//!
//! # Layout
//!
//! - [`plan`]: topology → what this node runs (pure).
//! - [`select`]: the Maglev selection with its fallback (pure).
//! - `header`: the PROXY v2 header on the stack.
//! - `listen`: the accept loop and the connection task.
//! - `udp`: the UDP services: flows, their sockets and idle timeout.
//! - `control`: health events, reloads, table publication.
//! - [`status`]: the admin API (`/v1/status`, `/readyz`, `/v1/reload`,
//!   `/metrics`).
//! - `metrics`: the Prometheus metrics (names in its docs and in
//!   `docs/topology.md`).

mod control;
mod header;
mod listen;
mod metrics;
pub mod plan;
pub mod select;
mod state;
pub mod status;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use probe::Prober;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use control::{ReloadError, ReloadSummary};
pub use status::Status;

use crate::ConfigError;
use crate::l4::control::{Controller, ControllerParts, ReloadRequest};
use crate::l4::header::HeaderTemplate;
use crate::l4::metrics::Metrics;
use crate::l4::select::Selection;
use crate::l4::state::{Shared, Snapshot};
use crate::relay::CopyMode;
use topology::tiers::l4::UdpService;

/// The bound sockets an L4 node serves. The node never binds.
#[derive(Debug)]
pub struct Listeners {
    /// The VIP listeners (each address at each port). A connection goes to
    /// its L7 node at the port it arrived on.
    pub vip: Vec<TcpListener>,
    /// The VIP's UDP sockets (each address at each `l4.udp` port); a socket
    /// serves the service of its port.
    pub udp: Vec<UdpSocket>,
    /// The admin endpoint, if served.
    pub admin: Option<TcpListener>,
}

/// How an L4 node runs, beyond the topology.
#[derive(Debug, Clone)]
pub struct Options {
    /// The topology file, re-read on reloads, on SIGHUP and when it
    /// changes. `None`: reloads are refused.
    pub config_path: Option<PathBuf>,
    /// How often to check the file for changes (default
    /// [`lifecycle::watch::POLL_INTERVAL`]; tests pass less).
    pub reload_poll: Duration,
    /// Seeds the health checks' jitter; differ it between replicas.
    pub probe_seed: u64,
    /// The admin endpoint's settings (its token).
    pub admin: admin::AdminConfig,
    /// `splice(2)` (default) or the buffered copy.
    pub copy_mode: CopyMode,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config_path: None,
            reload_poll: lifecycle::watch::POLL_INTERVAL,
            probe_seed: 0,
            admin: admin::AdminConfig::default(),
            copy_mode: CopyMode::Auto,
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections open when shutdown began.
    pub open_at_shutdown: usize,
    /// Connections closed at the drain deadline.
    pub forced: usize,
    /// Time from the shutdown request to the last connection's end.
    pub took: Duration,
}

/// Asks a running node to reload its topology file (what SIGHUP does).
#[derive(Debug, Clone)]
pub struct Reloader(mpsc::Sender<ReloadRequest>);

impl Reloader {
    /// Reloads and reports what changed, or why the previous configuration
    /// keeps running.
    pub async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(reply)
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        answer.await.map_err(|_| ReloadError::ShuttingDown)?
    }
}

/// A running L4 node.
pub struct L4Node {
    shared: Arc<Shared>,
    prober: Arc<Prober>,
    reloads: mpsc::Sender<ReloadRequest>,
    changes: watch::Receiver<u64>,
    shutdown: CancellationToken,
    /// The TCP accept loops and the UDP services.
    accept: Vec<JoinHandle<()>>,
    controller: JoinHandle<()>,
    admin: Option<(SocketAddr, CancellationToken, JoinHandle<()>)>,
}

impl L4Node {
    /// Starts the L4 node `node` of `topology` on `listeners`: health
    /// checks, the first table, the accept loops and the admin endpoint.
    /// Runs until `shutdown`; then [`wait`](Self::wait) drains it.
    ///
    /// Errors (exit code 1): the node is not in the topology, a weight names
    /// an unknown L7 node, a probe spec is refused, or the admin endpoint
    /// is reachable from other hosts without a token.
    pub async fn start(
        topology: &topology::Topology,
        node: &str,
        listeners: Listeners,
        options: Options,
        shutdown: CancellationToken,
    ) -> Result<Self, ConfigError> {
        let plan = plan::plan(topology, node)?;
        let (metrics, registry) = Metrics::new();
        let vip: Vec<(TcpListener, SocketAddr)> = listeners
            .vip
            .into_iter()
            .map(|l| {
                let addr = address_of("a VIP listener", l.local_addr())?;
                Ok((l, addr))
            })
            .collect::<Result<_, ConfigError>>()?;
        let udp: Vec<(UdpSocket, SocketAddr, UdpService)> = listeners
            .udp
            .into_iter()
            .map(|socket| {
                let addr = address_of("a VIP UDP socket", socket.local_addr())?;
                let service = plan.udp.iter().find(|s| s.port == addr.port()).ok_or_else(|| {
                    ConfigError(format!(
                        "the UDP socket {addr} has no service: regions.{}.l4.udp has no `port: {}`",
                        plan.region,
                        addr.port()
                    ))
                })?;
                Ok((socket, addr, *service))
            })
            .collect::<Result<_, ConfigError>>()?;
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(Snapshot {
                generation: 0,
                selection: Selection::empty(),
                settings: control::settings(&plan, options.copy_mode),
                nodes: Vec::new(),
                region: Arc::from(plan.region.as_str()),
            }),
            metrics,
            node: Arc::clone(&plan.node),
            header: HeaderTemplate::new(&plan.node),
            open: AtomicUsize::new(0),
            tracker: TaskTracker::new(),
            force_close: CancellationToken::new(),
            listeners: vip
                .iter()
                .map(|(_, addr)| *addr)
                .chain(udp.iter().map(|(_, addr, _)| *addr))
                .collect(),
        });
        let (events_tx, events) = mpsc::channel(1024);
        let prober = Arc::new(Prober::new(events_tx, shutdown.clone(), options.probe_seed));
        let (reloads, requests) = mpsc::channel(8);
        let (changes_tx, changes) = watch::channel(0);
        let region = plan.region.clone();
        let l7_count = plan.l7.len();
        let controller = Controller::start(
            plan,
            ControllerParts {
                shared: Arc::clone(&shared),
                prober: Arc::clone(&prober),
                events,
                requests,
                changes: changes_tx,
                config_path: options.config_path,
                poll: options.reload_poll,
                copy_mode: options.copy_mode,
            },
        )
        .await?;

        let admin = match listeners.admin {
            None => None,
            Some(listener) => {
                let router = status::router(
                    Arc::clone(&shared),
                    Arc::clone(&prober),
                    reloads.clone(),
                    Arc::new(registry),
                    shutdown.clone(),
                );
                let server = admin::AdminServer::new(listener, router, options.admin)
                    .map_err(|e| ConfigError(format!("L4 node {node}: {e}")))?;
                let addr = server.local_addr();
                let stop = CancellationToken::new();
                let task = tokio::spawn(server.run(stop.clone()));
                Some((addr, stop, task))
            }
        };
        let controller = tokio::spawn(controller.run(shutdown.clone()));
        let accept = vip
            .into_iter()
            .map(|(listener, addr)| {
                tokio::spawn(listen::accept_loop(
                    listener,
                    addr,
                    Arc::clone(&shared),
                    shutdown.clone(),
                ))
            })
            .chain(udp.into_iter().map(|(socket, addr, service)| {
                tokio::spawn(udp::serve(
                    socket,
                    addr,
                    service,
                    Arc::clone(&shared),
                    shutdown.clone(),
                ))
            }))
            .collect();
        info!(
            node, region, l7_nodes = l7_count,
            listeners = ?shared.listeners,
            admin = ?admin.as_ref().map(|(a, _, _)| *a),
            "L4 node serving"
        );
        Ok(Self {
            shared,
            prober,
            reloads,
            changes,
            shutdown,
            accept,
            controller,
            admin,
        })
    }

    /// The VIP addresses served: TCP listeners first, then UDP sockets.
    pub fn listeners(&self) -> &[SocketAddr] {
        &self.shared.listeners
    }

    /// The admin endpoint's address, if served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(addr, _, _)| *addr)
    }

    /// The status (as `GET /v1/status` answers it).
    pub fn status(&self) -> Status {
        status::status(&self.shared, &self.prober)
    }

    /// The generation of the published table; changes on every rebuild
    /// (health change or reload). Tests wait on it instead of sleeping.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// A handle that reloads the topology file.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.reloads.clone())
    }

    /// Waits for the shutdown token, then drains: the listeners are closed
    /// at once (and the UDP services stop, ending their flows), open
    /// connections get the drain timeout to finish, the rest
    /// are closed. Returns when everything has stopped.
    pub async fn wait(self) -> DrainReport {
        self.shutdown.cancelled().await;
        let started = tokio::time::Instant::now();
        for task in self.accept {
            let _ = task.await;
        }
        let open_at_shutdown = self.shared.tracker.len();
        let drain_timeout = self.shared.snapshot.load().settings.drain_timeout;
        info!(
            open = open_at_shutdown,
            "draining: listeners closed; open connections have {drain_timeout:?} to finish"
        );
        self.shared.tracker.close();
        let forced = tokio::select! {
            () = self.shared.tracker.wait() => 0,
            () = tokio::time::sleep(drain_timeout) => {
                let left = self.shared.tracker.len();
                warn!("drain deadline ({drain_timeout:?}) reached: closing {left} connections still open");
                self.shared.force_close.cancel();
                self.shared.tracker.wait().await;
                left
            }
        };
        let _ = self.controller.await;
        self.prober.shutdown().await;
        if let Some((_, stop, task)) = self.admin {
            stop.cancel();
            let _ = task.await;
        }
        let report = DrainReport {
            open_at_shutdown,
            forced,
            took: started.elapsed(),
        };
        info!(
            drained = open_at_shutdown - forced,
            forced,
            took = ?report.took,
            "L4 node stopped"
        );
        report
    }
}

/// The address a bound socket reports, or a [`ConfigError`] naming `what`.
fn address_of(what: &str, addr: std::io::Result<SocketAddr>) -> Result<SocketAddr, ConfigError> {
    addr.map_err(|e| ConfigError(format!("cannot read {what}'s address: {e}")))
}

/// Starts the node and drains it on `shutdown`; see [`L4Node`].
pub async fn run(
    topology: &topology::Topology,
    node: &str,
    listeners: Listeners,
    options: Options,
    shutdown: CancellationToken,
) -> Result<DrainReport, ConfigError> {
    let node = L4Node::start(topology, node, listeners, options, shutdown).await?;
    Ok(node.wait().await)
}

/// Runs the L4 node `node` of the topology at `config` until `shutdown`:
/// binds the VIP (each address, held by this host or not yet; see
/// `bind_vip`) at the HTTP and HTTPS ports (TCP) and the `l4.udp` ports
/// (UDP) and the admin address, reloads on SIGHUP and when the
/// file changes, drains on shutdown.
///
/// A bad topology or node name is a [`ConfigError`] (exit code 1); a
/// socket that cannot be bound is a runtime error (exit code 2).
pub async fn run_node(
    config: &Path,
    node: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topology = topology::load(config).map_err(|e| ConfigError(e.to_string()))?;
    let plan = plan::plan(&topology, node)?;
    let token = admin::Token::from_env().map_err(|e| ConfigError(e.to_string()))?;
    let (vip, udp) = bind_vip(&plan)?;
    let listeners = Listeners {
        vip,
        udp,
        admin: Some(bind(plan.admin).with_context(|| {
            format!(
                "cannot listen on the admin address {} of L4 node {node}",
                plan.admin
            )
        })?),
    };
    let options = Options {
        config_path: Some(config.to_owned()),
        probe_seed: probe_seed(node),
        admin: admin::AdminConfig {
            token,
            ..admin::AdminConfig::default()
        },
        ..Options::default()
    };
    let running = L4Node::start(&topology, node, listeners, options, shutdown).await?;
    running.wait().await;
    Ok(())
}

/// The VIP listeners: every address at both ports, and its UDP sockets:
/// every address at each `l4.udp` port.
///
/// An address this host does not hold (yet) is listened on all the same,
/// with `IP_FREEBIND` / `IPV6_FREEBIND`: in a highly available region
/// keepalived (VRRP) or BIRD (BGP, the VIP on `lo`) puts the VIP on the
/// host when this node should serve it, and the listener then receives its
/// connections without a restart. Each such address is logged once.
fn bind_vip(plan: &plan::Plan) -> anyhow::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
    let mut ports = vec![plan.vip.http_port];
    if plan.vip.https_port != plan.vip.http_port {
        ports.push(plan.vip.https_port);
    }
    let mut listeners = Vec::new();
    let mut udp = Vec::new();
    for ip in [plan.vip.ipv4.map(IpAddr::V4), plan.vip.ipv6.map(IpAddr::V6)]
        .into_iter()
        .flatten()
    {
        let mut held = true;
        for &port in &ports {
            let addr = SocketAddr::new(ip, port);
            let (listener, local) = bind_anywhere(addr).with_context(|| {
                format!(
                    "cannot listen on the VIP {addr} (regions.{}.vip)",
                    plan.region
                )
            })?;
            listeners.push(listener);
            held &= local;
        }
        for service in &plan.udp {
            let addr = SocketAddr::new(ip, service.port);
            let (socket, local) = bind_udp(addr).with_context(|| {
                format!(
                    "cannot bind the VIP's UDP port {addr} (regions.{}.l4.udp)",
                    plan.region
                )
            })?;
            udp.push(socket);
            held &= local;
        }
        if !held {
            info!(
                vip = %ip,
                "the VIP is not on this host yet: listening with freebind; connections \
                 arrive once keepalived (VRRP) or BIRD (BGP) puts it here (on one machine \
                 with loopback addresses it may never be local, which is harmless)"
            );
        }
    }
    Ok((listeners, udp))
}

/// A listener with `SO_REUSEADDR` (restart without waiting for TIME_WAIT)
/// and a backlog of 4096 (bursts of new connections wait there).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(addr, false)
}

/// [`bind`], or, when `addr` is not an address of this host
/// (`EADDRNOTAVAIL`), the same with freebind. The flag says whether the
/// address was local.
fn bind_anywhere(addr: SocketAddr) -> std::io::Result<(TcpListener, bool)> {
    or_freebind(|freebind| bind_with(addr, freebind))
}

/// `bind(false)`, or, when the address is not one of this host's
/// (`EADDRNOTAVAIL`), `bind(true)`: with freebind. The flag says whether
/// the address was local.
fn or_freebind<T>(bind: impl Fn(bool) -> std::io::Result<T>) -> std::io::Result<(T, bool)> {
    match bind(false) {
        Ok(bound) => Ok((bound, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            bind(true).map(|bound| (bound, false))
        }
        Err(e) => Err(e),
    }
}

/// A UDP socket on `addr`, with freebind when `addr` is not an address of
/// this host (as [`bind_anywhere`]); the flag says whether it was local.
fn bind_udp(addr: SocketAddr) -> std::io::Result<(UdpSocket, bool)> {
    or_freebind(|freebind| {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        set_freebind(&socket, addr, freebind)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        UdpSocket::from_std(socket.into())
    })
}

/// Sets `IP_FREEBIND` / `IPV6_FREEBIND` on `socket` when `freebind`.
fn set_freebind(
    socket: impl std::os::fd::AsFd,
    addr: SocketAddr,
    freebind: bool,
) -> std::io::Result<()> {
    if freebind {
        let options = socket2::SockRef::from(&socket);
        match addr {
            SocketAddr::V4(_) => options.set_freebind_v4(true)?,
            SocketAddr::V6(_) => options.set_freebind_v6(true)?,
        }
    }
    Ok(())
}

fn bind_with(addr: SocketAddr, freebind: bool) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    set_freebind(&socket, addr, freebind)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// A seed that differs between replicas and restarts, so that probes of
/// several L4 nodes do not run in lockstep.
fn probe_seed(node: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::maglev::DEFAULT_FLOW_KEY.hash(node.as_bytes()) ^ nanos ^ u64::from(std::process::id())
}
