//! A running GSLB node: the state its tasks share — the serving snapshot,
//! the health monitor, the GeoIP database, the config's provenance — and
//! the reload that swaps a new topology in.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use geo_data::WatchedGeoDb;
use lifecycle::watch::ConfigWatch;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use topology::Topology;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::state::ServingState;

/// How a node was started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Which of the topology's `dns.nodes` this is.
    pub node: String,
    /// The topology file, for reloads (none: reload is unavailable).
    pub config_path: Option<PathBuf>,
    /// Where overrides are persisted (none: in memory only).
    pub state_file: Option<PathBuf>,
}

/// Where the running config came from and how its last reload went.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigInfo {
    /// SHA-256 of the file's bytes (hex), or of nothing for an in-memory
    /// topology.
    pub version: String,
    /// When it was loaded (ms since the epoch).
    pub loaded_at_ms: u64,
    /// The latest reload attempt, if any.
    pub last_reload: Option<ReloadOutcome>,
}

/// One reload attempt.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadOutcome {
    /// Whether the new config is serving.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// Why a reload was refused; the previous configuration keeps serving.
/// The admin API and the status show the message.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The node runs a topology given in memory.
    #[error("this node was started without a topology file to reload")]
    NoFile,
    /// The file cannot be read or is not a valid topology.
    #[error(transparent)]
    Topology(#[from] topology::LoadError),
    /// The file no longer names this node.
    #[error("the new file has no node {0:?} in dns.nodes; this process is that node")]
    NodeMissing(String),
    /// The GeoIP database is opened once, at start.
    #[error("dns.geoip changed; restart the node to switch databases")]
    GeoIpChanged,
    /// The peer key is read once, at start.
    #[error("dns.peer_key changed; restart the node to switch keys")]
    PeerKeyChanged,
    /// A signed zone's key file changed under the validated topology.
    #[error(transparent)]
    Key(#[from] topology::dnssec::KeyError),
    /// The blocking read panicked or was cancelled.
    #[error("reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The shared state of a running node.
pub struct Node {
    /// Startup options.
    pub options: Options,
    /// What the query path answers from.
    pub state: Arc<ArcSwap<ServingState>>,
    /// Health probing, vantage views and overrides.
    pub monitor: Arc<Monitor>,
    /// Client locations.
    pub geoip: Arc<WatchedGeoDb>,
    /// Config provenance.
    pub config: ArcSwap<ConfigInfo>,
    /// The node's metrics.
    pub metrics: Arc<Metrics>,
    /// When the node started (ms since the epoch).
    pub started_at_ms: u64,
    queries_per_second: AtomicU64,
    reloading: tokio::sync::Mutex<()>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The SHA-256 of `bytes`, hex.
pub fn version_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Node {
    /// A node serving `state`, with `monitor` and `geoip` already running.
    pub fn new(
        options: Options,
        state: Arc<ArcSwap<ServingState>>,
        monitor: Arc<Monitor>,
        geoip: Arc<WatchedGeoDb>,
        metrics: Arc<Metrics>,
        version: String,
    ) -> Node {
        let now = now_ms();
        Node {
            options,
            state,
            monitor,
            geoip,
            config: ArcSwap::from_pointee(ConfigInfo {
                version,
                loaded_at_ms: now,
                last_reload: None,
            }),
            started_at_ms: now,
            metrics,
            queries_per_second: AtomicU64::new(0f64.to_bits()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The current topology.
    pub fn topology(&self) -> Arc<Topology> {
        self.state.load().topology.clone()
    }

    /// Queries per second over the last second or so.
    pub fn queries_per_second(&self) -> f64 {
        f64::from_bits(self.queries_per_second.load(Ordering::Relaxed))
    }

    /// Re-reads the topology file; on success swaps it in (queries in
    /// flight keep the snapshot they started with, health state of regions
    /// that remain carries over), on failure keeps serving the old one.
    /// Either way the outcome is recorded for the status.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let outcome = self.try_reload().await;
        self.metrics.record_reload(outcome.is_ok());
        let record = ReloadOutcome {
            ok: outcome.is_ok(),
            error: outcome.as_ref().err().map(ToString::to_string),
            at_ms: now_ms(),
        };
        let mut info = (**self.config.load()).clone();
        match &outcome {
            Ok(version) => {
                if *version != info.version {
                    info.loaded_at_ms = record.at_ms;
                }
                info.version = version.clone();
                info!(version = %version, "configuration reloaded");
            }
            Err(error) => {
                warn!("configuration not reloaded, the previous one keeps serving: {error}")
            }
        }
        info.last_reload = Some(record);
        self.config.store(Arc::new(info));
        outcome.map(|_| ())
    }

    async fn try_reload(&self) -> Result<String, ReloadError> {
        let path = self
            .options
            .config_path
            .clone()
            .ok_or(ReloadError::NoFile)?;
        // One read: the bytes validated are the bytes hashed.
        let (text, topology) = tokio::task::spawn_blocking(move || {
            let text =
                std::fs::read_to_string(&path).map_err(|source| topology::LoadError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
            let topology = topology::parse_file(&text, &path)?;
            Ok::<_, topology::LoadError>((text, topology))
        })
        .await??;
        let current = self.topology();
        if !topology
            .dns
            .nodes
            .iter()
            .any(|n| n.name == self.options.node)
        {
            return Err(ReloadError::NodeMissing(self.options.node.clone()));
        }
        if topology.dns.geoip != current.dns.geoip {
            return Err(ReloadError::GeoIpChanged);
        }
        if topology.dns.peer_key != current.dns.peer_key {
            return Err(ReloadError::PeerKeyChanged);
        }
        let topology = Arc::new(topology);
        let state = ServingState::new(
            topology.clone(),
            self.geoip.clone(),
            Some(&self.state.load()),
        )?;
        self.monitor.configure(&topology).await;
        self.state.store(Arc::new(state));
        crate::warm_scopes(&self.state);
        Ok(version_of(text.as_bytes()))
    }

    /// Reloads when the topology file changes and on SIGHUP (see
    /// [`lifecycle::watch`]), until `shutdown`.
    pub async fn watch_config(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(path) = &self.options.config_path else {
            return;
        };
        let mut watch = ConfigWatch::new(path, lifecycle::watch::POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = watch.next() => {}
                () = shutdown.cancelled() => return,
            }
            // The outcome is logged and kept for the status.
            let _ = self.reload().await;
        }
    }

    /// Keeps the queries-per-second figure current until `shutdown`.
    pub async fn track_rate(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut last = (self.metrics.queries_total(), tokio::time::Instant::now());
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let now = (self.metrics.queries_total(), tokio::time::Instant::now());
            let elapsed = now.1.duration_since(last.1).as_secs_f64();
            if elapsed > 0.0 {
                let rate = (now.0 - last.0) as f64 / elapsed;
                self.queries_per_second
                    .store(rate.to_bits(), Ordering::Relaxed);
            }
            last = now;
        }
    }
}
