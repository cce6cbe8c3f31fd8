//! What the accept path reads: the immutable [`Snapshot`] the controller
//! publishes (selection plus settings), and the node-wide [`Shared`] state.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::l4::header::HeaderTemplate;
use crate::l4::metrics::{Metrics, NodeMetrics};
use crate::l4::select::Selection;
use crate::maglev::FlowHasher;
use crate::relay::RelayConfig;

/// One L7 node of one plan: what a connection needs to reach it and count.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) name: Arc<str>,
    pub(crate) address: IpAddr,
    pub(crate) weight: u32,
    pub(crate) metrics: NodeMetrics,
}

/// The reloadable settings of the data path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) hasher: FlowHasher,
    pub(crate) connect_timeout: Duration,
    pub(crate) relay: RelayConfig,
    pub(crate) max_connections: usize,
    pub(crate) drain_timeout: Duration,
}

/// An L7 node and whether the health checks had it up when the snapshot
/// was built.
#[derive(Debug)]
pub(crate) struct NodeView {
    pub(crate) backend: Arc<Backend>,
    pub(crate) up: bool,
}

/// Everything a new connection's decision needs, immutable once published.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Grows by one per publication.
    pub(crate) generation: u64,
    /// Maglev over the healthy, weighted nodes.
    pub(crate) selection: Selection<Arc<Backend>>,
    pub(crate) settings: Settings,
    /// Every configured L7 node, in file order (for status).
    pub(crate) nodes: Vec<NodeView>,
    pub(crate) region: Arc<str>,
}

/// Node-wide state shared by the accept loops, the connections, the
/// controller and the admin API.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The current snapshot: read lock-free by the accept path.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) metrics: Metrics,
    pub(crate) node: Arc<str>,
    pub(crate) header: HeaderTemplate,
    /// Client connections counted against `max_connections`.
    pub(crate) open: AtomicUsize,
    /// Owns every connection task, for the drain.
    pub(crate) tracker: TaskTracker,
    /// Cancelled at the drain deadline: connections still open close.
    pub(crate) force_close: CancellationToken,
    /// The addresses listened on.
    pub(crate) listeners: Vec<SocketAddr>,
}
