//! An L4 node's admin API: `GET /v1/status`.

use serde::{Deserialize, Serialize};

/// `GET /v1/status`: the node, its table and its L7 nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This L4 node's name.
    pub node: String,
    /// Its region.
    pub region: String,
    /// The VIP addresses listened on.
    pub listeners: Vec<String>,
    /// Client connections open now.
    pub open_connections: usize,
    /// UDP flows now (`l4.udp`), all L7 nodes.
    #[serde(default)]
    pub udp_flows: i64,
    /// The Maglev table.
    pub table: TableStatus,
    /// Every configured L7 node, in file order.
    pub l7_nodes: Vec<L7Status>,
}

/// The published Maglev table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStatus {
    /// Grows by one per rebuild.
    pub generation: u64,
    /// Slots (`M`).
    pub size: u32,
    /// L7 nodes in the table (healthy, weight above 0).
    pub backends: usize,
}

/// One L7 node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7Status {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Configured weight (0: drained).
    pub weight: u32,
    /// `up` or `down`, as the health checks say.
    pub health: String,
    /// Whether new connections can go to it.
    pub in_table: bool,
    /// Its share of the table, in slots.
    pub slots: u32,
    /// Connections to it open now.
    pub active_connections: i64,
    /// UDP flows to it now.
    #[serde(default)]
    pub udp_flows: i64,
    /// The latest probe, e.g. `ok in 1ms: HTTP 200`.
    pub last_probe: Option<String>,
}
