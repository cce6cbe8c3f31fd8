//! The controller: the one owner of the plan, the health checks and the
//! table. It combines the pieces (plan → probes → healthy set → Maglev) and
//! publishes each result to the accept path as an immutable snapshot.
//!
//! It rebuilds the table when a probe changes an L7 node's health and when
//! the topology is reloaded (`POST /v1/reload`, or SIGHUP or the file
//! changing, as [`lifecycle::watch`] reports them). A reload re-reads and
//! validates the whole file first; if anything is wrong it logs why, counts
//! it and keeps running the old configuration. Established connections
//! never notice: they hold their own references to their L7 node.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lifecycle::watch::ConfigWatch;
use probe::{CheckId, Health, ProbeEvent, Prober};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::ConfigError;
use crate::l4::plan::{self, Plan};
use crate::l4::select::Selection;
use crate::l4::state::{Backend, NodeView, Settings, Shared, Snapshot};
use crate::maglev::{self, FlowHasher, TableSize};
use crate::relay::{CopyMode, RelayConfig};

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadSummary {
    /// The table generation now published.
    pub generation: u64,
    /// L7 nodes now configured.
    pub l7_nodes: Vec<String>,
    /// Health checks started.
    pub checks_added: Vec<String>,
    /// Health checks restarted with a changed spec.
    pub checks_replaced: Vec<String>,
    /// Health checks stopped.
    pub checks_removed: Vec<String>,
}

/// Why a reload was refused; the previous configuration keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The node was given its topology in memory.
    #[error("this node was started from a topology in memory; there is no file to reload")]
    NoFile,
    /// The file cannot be read or is not a valid topology.
    #[error(transparent)]
    Topology(#[from] topology::LoadError),
    /// The topology is valid but not for this node (it is missing, or a
    /// weight names an unknown L7 node).
    #[error(transparent)]
    Plan(#[from] ConfigError),
    /// The prober refused a health check spec; no check changed.
    #[error(transparent)]
    Probes(#[from] probe::ReloadError),
    /// The controller has stopped.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// A reload request and where its answer goes.
pub(crate) type ReloadRequest = oneshot::Sender<Result<ReloadSummary, ReloadError>>;

pub(crate) struct Controller {
    shared: Arc<Shared>,
    prober: Arc<Prober>,
    events: mpsc::Receiver<ProbeEvent>,
    requests: mpsc::Receiver<ReloadRequest>,
    changes: watch::Sender<u64>,
    plan: Plan,
    backends: Vec<Arc<Backend>>,
    generation: u64,
    config_path: Option<PathBuf>,
    poll: Duration,
    copy_mode: CopyMode,
}

pub(crate) struct ControllerParts {
    pub(crate) shared: Arc<Shared>,
    pub(crate) prober: Arc<Prober>,
    pub(crate) events: mpsc::Receiver<ProbeEvent>,
    pub(crate) requests: mpsc::Receiver<ReloadRequest>,
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) poll: Duration,
    pub(crate) copy_mode: CopyMode,
}

/// The settings of `plan` for the data path.
pub(crate) fn settings(plan: &Plan, copy_mode: CopyMode) -> Settings {
    Settings {
        hasher: FlowHasher::new(maglev::DEFAULT_FLOW_KEY, plan.affinity),
        connect_timeout: plan.connect_timeout,
        relay: RelayConfig {
            idle_timeout: plan.idle_timeout,
            mode: copy_mode,
            ..RelayConfig::default()
        },
        max_connections: plan.max_connections,
        drain_timeout: plan.drain_timeout,
    }
}

impl Controller {
    /// Starts the health checks of `plan` and publishes the first table.
    /// A probe spec the prober refuses (an unreadable CA file, say) is a
    /// configuration error.
    pub(crate) async fn start(plan: Plan, parts: ControllerParts) -> Result<Self, ConfigError> {
        let mut controller = Self {
            shared: parts.shared,
            prober: parts.prober,
            events: parts.events,
            requests: parts.requests,
            changes: parts.changes,
            plan: plan.clone(),
            backends: Vec::new(),
            generation: 0,
            config_path: parts.config_path,
            poll: parts.poll,
            copy_mode: parts.copy_mode,
        };
        controller
            .apply(plan)
            .await
            .map_err(|e| ConfigError(format!("L4 node {}: {e}", controller.plan.node)))?;
        Ok(controller)
    }

    /// Serves health events and reloads until `shutdown`.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let mut watch = self
            .config_path
            .as_ref()
            .map(|path| ConfigWatch::new(path, self.poll));
        let watched = async |watch: &mut Option<ConfigWatch>| match watch {
            Some(watch) => watch.next().await,
            None => std::future::pending().await,
        };
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(event) = self.events.recv() => self.on_probe(event),
                Some(reply) = self.requests.recv() => {
                    // Remember this version even if it is bad: the poll
                    // reports it once, not again.
                    if let Some(watch) = &mut watch {
                        watch.mark_seen();
                    }
                    let result = self.reload().await;
                    let _ = reply.send(result);
                }
                _ = watched(&mut watch) => {
                    let _ = self.reload().await;
                }
            }
        }
    }

    fn on_probe(&mut self, event: ProbeEvent) {
        let Some(transition) = event.transition else {
            return;
        };
        if !self.backends.iter().any(|b| *b.name == *event.id.as_str()) {
            return; // a check removed by a reload since
        }
        info!(
            l7_node = %event.id, from = %transition.from, to = %transition.to,
            detail = %event.result.detail, "L7 node health changed"
        );
        self.rebuild("health change");
    }

    /// Re-reads the topology file and applies it, or keeps the running
    /// configuration and says why.
    async fn reload(&mut self) -> Result<ReloadSummary, ReloadError> {
        let Some(path) = self.config_path.clone() else {
            return Err(ReloadError::NoFile);
        };
        let result = match topology::load(&path) {
            Ok(topology) => match plan::plan(&topology, &self.plan.node) {
                Ok(plan) => self.apply(plan).await,
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(summary) => {
                self.shared.metrics.reloads_ok.inc();
                info!(
                    generation = summary.generation,
                    l7_nodes = summary.l7_nodes.len(),
                    "topology reloaded"
                );
            }
            Err(e) => {
                self.shared.metrics.reloads_error.inc();
                error!(
                    path = %path.display(),
                    "reload failed; still running the previous configuration:\n{e}"
                );
            }
        }
        result
    }

    /// Makes `plan` the running configuration: health checks first (if the
    /// prober refuses a spec nothing changes), then the table.
    async fn apply(&mut self, plan: Plan) -> Result<ReloadSummary, ReloadError> {
        if self.generation > 0 {
            if plan.vip != self.plan.vip {
                warn!("the VIP changed in the topology; the listeners change only on restart");
            }
            if plan.admin != self.plan.admin {
                warn!("the admin address changed in the topology; it changes only on restart");
            }
            if plan.udp != self.plan.udp {
                warn!(
                    "the UDP services (l4.udp) changed in the topology; they change only on restart"
                );
            }
        }
        let specs = plan
            .l7
            .iter()
            .map(|t| (CheckId::from(&*t.name), t.probe.clone()));
        let report = self.prober.sync(specs).await?;
        for gone in &report.removed {
            self.shared.metrics.forget(gone.as_str());
        }
        self.backends = plan
            .l7
            .iter()
            .map(|t| {
                let metrics = self.shared.metrics.node(&t.name);
                metrics.weight.set(i64::from(t.weight));
                Arc::new(Backend {
                    name: Arc::clone(&t.name),
                    address: t.address,
                    weight: t.weight,
                    metrics,
                })
            })
            .collect();
        self.plan = plan;
        self.rebuild("configuration");
        let names = |ids: &[CheckId]| ids.iter().map(|id| id.to_string()).collect();
        Ok(ReloadSummary {
            generation: self.generation,
            l7_nodes: self.backends.iter().map(|b| b.name.to_string()).collect(),
            checks_added: names(&report.added),
            checks_replaced: names(&report.replaced),
            checks_removed: names(&report.removed),
        })
    }

    /// Whether the health checks have `name` up. A check not started yet
    /// counts as its spec's initial state (up).
    fn is_up(&self, name: &str) -> bool {
        self.prober
            .status(name)
            .is_none_or(|status| status.health == Health::Up)
    }

    /// Builds the table over the healthy nodes and publishes a snapshot.
    fn rebuild(&mut self, reason: &str) {
        let views: Vec<NodeView> = self
            .backends
            .iter()
            .map(|b| NodeView {
                backend: Arc::clone(b),
                up: self.is_up(&b.name),
            })
            .collect();
        let candidates = views
            .iter()
            .filter(|v| v.up)
            .map(|v| {
                (
                    maglev::Backend::new(v.backend.name.to_string(), v.backend.weight),
                    Arc::clone(&v.backend),
                )
            })
            .collect();
        let selection = match Selection::build(candidates, TableSize::default()) {
            Ok(selection) => selection,
            Err(e) => {
                // Names are validated unique and non-empty by the topology;
                // should that ever slip, refuse new connections loudly
                // rather than route them wrongly.
                error!("cannot build the Maglev table ({e}); new connections are refused");
                Selection::empty()
            }
        };
        for view in &views {
            view.backend.metrics.up.set(i64::from(view.up));
        }
        let in_table = selection.payloads().len();
        self.generation += 1;
        self.shared.metrics.table_rebuilds.inc();
        self.shared.metrics.table_backends.set(in_table as i64);
        let up: Vec<&str> = views
            .iter()
            .filter(|v| v.up)
            .map(|v| &*v.backend.name)
            .collect();
        info!(
            generation = self.generation,
            reason,
            in_table,
            up = %up.join(","),
            "Maglev table published"
        );
        if in_table == 0 {
            warn!("no L7 node is healthy: new connections are refused");
        }
        self.shared.snapshot.store(Arc::new(Snapshot {
            generation: self.generation,
            selection,
            settings: settings(&self.plan, self.copy_mode),
            nodes: views,
            region: Arc::from(self.plan.region.as_str()),
        }));
        self.changes.send_replace(self.generation);
    }
}
