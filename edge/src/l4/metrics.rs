//! The L4 node's Prometheus metrics (served on the admin endpoint's
//! `/metrics`).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `edge_l4_connections_total` | counter | `l7_node` | connections relayed to the node |
//! | `edge_l4_active_connections` | gauge | `l7_node` | connections to the node open now |
//! | `edge_l4_relayed_bytes_total` | counter | `l7_node`, `direction` (`to_l7`, `to_client`) | bytes delivered, counted when a connection ends |
//! | `edge_l4_connect_failures_total` | counter | `l7_node` | connects (or PROXY header writes) that failed or timed out |
//! | `edge_l4_l7_up` | gauge | `l7_node` | 1 while the health checks say up, else 0 |
//! | `edge_l4_l7_weight` | gauge | `l7_node` | the configured weight (0: drained) |
//! | `edge_l4_table_rebuilds_total` | counter | | Maglev tables built (health changes, reloads) |
//! | `edge_l4_table_backends` | gauge | | L7 nodes in the current table |
//! | `edge_l4_refused_connections_total` | counter | `reason` (`max_connections`, `no_healthy_l7`, `connect_failed`) | client connections closed without being relayed |
//! | `edge_l4_open_connections` | gauge | | client connections open now, all nodes |
//! | `edge_l4_idle_timeouts_total` | counter | | connections closed by the idle timeout |
//! | `edge_l4_relay_errors_total` | counter | `side` (`client`, `l7`) | connections ended by an error or reset |
//! | `edge_l4_drain_forced_closes_total` | counter | | connections closed at the drain deadline |
//! | `edge_l4_reloads_total` | counter | `result` (`ok`, `error`) | configuration reloads |
//! | `edge_l4_udp_flows_total` | counter | `l7_node` | UDP flows sent to the node |
//! | `edge_l4_udp_active_flows` | gauge | `l7_node` | UDP flows to the node now |
//! | `edge_l4_udp_datagrams_total` | counter | `l7_node`, `direction` (`to_l7`, `to_client`) | UDP datagrams relayed |
//! | `edge_l4_udp_relayed_bytes_total` | counter | `l7_node`, `direction` | UDP payload bytes relayed (PROXY headers not counted) |
//! | `edge_l4_udp_dropped_datagrams_total` | counter | `reason` (`max_flows`, `no_healthy_l7`, `upstream_socket`, `send_failed`, `l7_unreachable`) | UDP datagrams not delivered |
//! | `edge_l4_udp_open_flows` | gauge | | UDP flows now, all nodes |
//! | `edge_l4_udp_idle_timeouts_total` | counter | | UDP flows ended by their idle timeout |
//! | `edge_l4_udp_moved_flows_total` | counter | | UDP flows moved because their node left the table |
//!
//! The accept path never looks a label set up: each L7 node's handles are
//! resolved once when the plan is applied ([`NodeMetrics`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    l7_node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    l7_node: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabel {
    side: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Every L4 metric; cheap handles, shared by the tasks.
#[derive(Debug)]
pub(crate) struct Metrics {
    connections: Family<NodeLabel, Counter>,
    active: Family<NodeLabel, Gauge>,
    bytes: Family<BytesLabels, Counter>,
    connect_failures: Family<NodeLabel, Counter>,
    up: Family<NodeLabel, Gauge>,
    weight: Family<NodeLabel, Gauge>,
    pub(crate) table_rebuilds: Counter,
    pub(crate) table_backends: Gauge,
    pub(crate) refused_max_connections: Counter,
    pub(crate) refused_no_healthy: Counter,
    pub(crate) refused_connect_failed: Counter,
    pub(crate) open: Gauge,
    pub(crate) idle_timeouts: Counter,
    pub(crate) relay_errors_client: Counter,
    pub(crate) relay_errors_l7: Counter,
    pub(crate) drain_forced: Counter,
    pub(crate) reloads_ok: Counter,
    pub(crate) reloads_error: Counter,
    udp_flows: Family<NodeLabel, Counter>,
    udp_active: Family<NodeLabel, Gauge>,
    udp_datagrams: Family<BytesLabels, Counter>,
    udp_bytes: Family<BytesLabels, Counter>,
    pub(crate) udp_dropped: UdpDrops,
    pub(crate) udp_open: Gauge,
    pub(crate) udp_idle_timeouts: Counter,
    pub(crate) udp_moved: Counter,
}

/// Why a UDP datagram was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UdpDrop {
    /// A new flow past `max_flows`.
    MaxFlows,
    /// A new flow with no healthy L7 node in the table.
    NoHealthy,
    /// The flow's socket to its node could not be opened.
    UpstreamSocket,
    /// A send (to the node, or a reply to the client) failed, e.g. a full
    /// socket buffer.
    SendFailed,
    /// The node answered with ICMP port unreachable: nothing listens at
    /// `to_port`.
    L7Unreachable,
}

impl UdpDrop {
    const ALL: [Self; 5] = [
        Self::MaxFlows,
        Self::NoHealthy,
        Self::UpstreamSocket,
        Self::SendFailed,
        Self::L7Unreachable,
    ];

    /// The `reason` label.
    fn label(self) -> &'static str {
        match self {
            Self::MaxFlows => "max_flows",
            Self::NoHealthy => "no_healthy_l7",
            Self::UpstreamSocket => "upstream_socket",
            Self::SendFailed => "send_failed",
            Self::L7Unreachable => "l7_unreachable",
        }
    }
}

/// One dropped-datagram counter per [`UdpDrop`], in its order.
#[derive(Debug, Clone)]
pub(crate) struct UdpDrops([Counter; 5]);

impl UdpDrops {
    /// Counts one datagram dropped for `reason`.
    pub(crate) fn inc(&self, reason: UdpDrop) {
        self.0[reason as usize].inc();
    }
}

/// One L7 node's handles.
#[derive(Debug, Clone)]
pub(crate) struct NodeMetrics {
    pub(crate) connections: Counter,
    pub(crate) active: Gauge,
    pub(crate) bytes_to_l7: Counter,
    pub(crate) bytes_to_client: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) up: Gauge,
    pub(crate) weight: Gauge,
    pub(crate) udp: UdpNodeMetrics,
}

/// One L7 node's UDP handles.
#[derive(Debug, Clone)]
pub(crate) struct UdpNodeMetrics {
    pub(crate) flows: Counter,
    pub(crate) active: Gauge,
    pub(crate) datagrams_to_l7: Counter,
    pub(crate) datagrams_to_client: Counter,
    pub(crate) bytes_to_l7: Counter,
    pub(crate) bytes_to_client: Counter,
}

impl Metrics {
    /// The metrics, registered in a new registry (prefix `edge_l4`).
    pub(crate) fn new() -> (Self, Registry) {
        let mut registry = Registry::with_prefix("edge_l4");
        let refused: Family<ReasonLabel, Counter> = Family::default();
        let relay_errors: Family<SideLabel, Counter> = Family::default();
        let reloads: Family<ResultLabel, Counter> = Family::default();
        let udp_dropped: Family<ReasonLabel, Counter> = Family::default();
        // Handles resolved now, so every series exists from the start (a
        // zero, not an absence) and counting never looks a label up.
        let refused_for = |reason| refused.get_or_create_owned(&ReasonLabel { reason });
        let metrics = Self {
            connections: Family::default(),
            active: Family::default(),
            bytes: Family::default(),
            connect_failures: Family::default(),
            up: Family::default(),
            weight: Family::default(),
            table_rebuilds: Counter::default(),
            table_backends: Gauge::default(),
            refused_max_connections: refused_for("max_connections"),
            refused_no_healthy: refused_for("no_healthy_l7"),
            refused_connect_failed: refused_for("connect_failed"),
            open: Gauge::default(),
            idle_timeouts: Counter::default(),
            relay_errors_client: relay_errors.get_or_create_owned(&SideLabel { side: "client" }),
            relay_errors_l7: relay_errors.get_or_create_owned(&SideLabel { side: "l7" }),
            drain_forced: Counter::default(),
            reloads_ok: reloads.get_or_create_owned(&ResultLabel { result: "ok" }),
            reloads_error: reloads.get_or_create_owned(&ResultLabel { result: "error" }),
            udp_flows: Family::default(),
            udp_active: Family::default(),
            udp_datagrams: Family::default(),
            udp_bytes: Family::default(),
            udp_dropped: UdpDrops(UdpDrop::ALL.map(|reason| {
                udp_dropped.get_or_create_owned(&ReasonLabel {
                    reason: reason.label(),
                })
            })),
            udp_open: Gauge::default(),
            udp_idle_timeouts: Counter::default(),
            udp_moved: Counter::default(),
        };
        registry.register(
            "connections",
            "Client connections relayed to each L7 node",
            metrics.connections.clone(),
        );
        registry.register(
            "active_connections",
            "Connections to each L7 node open now",
            metrics.active.clone(),
        );
        registry.register_with_unit(
            "relayed",
            "Bytes delivered per L7 node and direction, counted when a connection ends",
            Unit::Bytes,
            metrics.bytes.clone(),
        );
        registry.register(
            "connect_failures",
            "Connects to an L7 node (or PROXY header writes) that failed or timed out",
            metrics.connect_failures.clone(),
        );
        registry.register(
            "l7_up",
            "Whether the health checks say the L7 node is up (1) or down (0)",
            metrics.up.clone(),
        );
        registry.register(
            "l7_weight",
            "Configured weight of the L7 node (0: drained by the operator)",
            metrics.weight.clone(),
        );
        registry.register(
            "table_rebuilds",
            "Maglev tables built, after health changes and reloads",
            metrics.table_rebuilds.clone(),
        );
        registry.register(
            "table_backends",
            "L7 nodes in the current Maglev table",
            metrics.table_backends.clone(),
        );
        registry.register(
            "refused_connections",
            "Client connections closed without being relayed, by reason",
            refused,
        );
        registry.register(
            "open_connections",
            "Client connections open now",
            metrics.open.clone(),
        );
        registry.register(
            "idle_timeouts",
            "Connections closed because nothing moved for the idle timeout",
            metrics.idle_timeouts.clone(),
        );
        registry.register(
            "relay_errors",
            "Connections ended by an error or a reset, by the side it came from",
            relay_errors,
        );
        registry.register(
            "drain_forced_closes",
            "Connections closed at the drain deadline on shutdown",
            metrics.drain_forced.clone(),
        );
        registry.register("reloads", "Configuration reloads, by result", reloads);
        registry.register(
            "udp_flows",
            "UDP flows sent to each L7 node",
            metrics.udp_flows.clone(),
        );
        registry.register(
            "udp_active_flows",
            "UDP flows to each L7 node now",
            metrics.udp_active.clone(),
        );
        registry.register(
            "udp_datagrams",
            "UDP datagrams relayed per L7 node and direction",
            metrics.udp_datagrams.clone(),
        );
        registry.register_with_unit(
            "udp_relayed",
            "UDP payload bytes relayed per L7 node and direction",
            Unit::Bytes,
            metrics.udp_bytes.clone(),
        );
        registry.register(
            "udp_dropped_datagrams",
            "UDP datagrams not delivered, by reason",
            udp_dropped,
        );
        registry.register(
            "udp_open_flows",
            "UDP flows now, all L7 nodes",
            metrics.udp_open.clone(),
        );
        registry.register(
            "udp_idle_timeouts",
            "UDP flows ended because no datagram moved for the idle timeout",
            metrics.udp_idle_timeouts.clone(),
        );
        registry.register(
            "udp_moved_flows",
            "UDP flows moved to another L7 node because theirs left the table",
            metrics.udp_moved.clone(),
        );
        (metrics, registry)
    }

    /// The handles of the L7 node `name` (the same ones on every call).
    pub(crate) fn node(&self, name: &str) -> NodeMetrics {
        let label = NodeLabel {
            l7_node: name.to_owned(),
        };
        let directed = |family: &Family<BytesLabels, Counter>, direction| {
            family.get_or_create_owned(&BytesLabels {
                l7_node: name.to_owned(),
                direction,
            })
        };
        let bytes = |direction| directed(&self.bytes, direction);
        NodeMetrics {
            connections: self.connections.get_or_create_owned(&label),
            active: self.active.get_or_create_owned(&label),
            bytes_to_l7: bytes("to_l7"),
            bytes_to_client: bytes("to_client"),
            connect_failures: self.connect_failures.get_or_create_owned(&label),
            up: self.up.get_or_create_owned(&label),
            weight: self.weight.get_or_create_owned(&label),
            udp: UdpNodeMetrics {
                flows: self.udp_flows.get_or_create_owned(&label),
                active: self.udp_active.get_or_create_owned(&label),
                datagrams_to_l7: directed(&self.udp_datagrams, "to_l7"),
                datagrams_to_client: directed(&self.udp_datagrams, "to_client"),
                bytes_to_l7: directed(&self.udp_bytes, "to_l7"),
                bytes_to_client: directed(&self.udp_bytes, "to_client"),
            },
        }
    }

    /// Forgets the series of an L7 node removed from the topology (its open
    /// connections keep their handles until they end).
    pub(crate) fn forget(&self, name: &str) {
        let label = NodeLabel {
            l7_node: name.to_owned(),
        };
        self.up.remove(&label);
        self.weight.remove(&label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_handles_are_shared_and_labelled() {
        let (metrics, registry) = Metrics::new();
        metrics.node("l7a").connections.inc();
        metrics.node("l7a").connections.inc();
        metrics.node("l7a").bytes_to_client.inc_by(5);
        metrics.refused_no_healthy.inc();
        metrics.udp_dropped.inc(UdpDrop::L7Unreachable);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("edge_l4_connections_total{l7_node=\"l7a\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "edge_l4_relayed_bytes_total{l7_node=\"l7a\",direction=\"to_client\"} 5\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("edge_l4_refused_connections_total{reason=\"no_healthy_l7\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edge_l4_refused_connections_total{reason=\"max_connections\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("edge_l4_udp_dropped_datagrams_total{reason=\"l7_unreachable\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edge_l4_udp_dropped_datagrams_total{reason=\"max_flows\"} 0\n"),
            "{text}"
        );
    }
}
