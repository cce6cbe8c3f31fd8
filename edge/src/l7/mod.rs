//! The L7 tier: TLS termination and HTTP routing to backend pools.
//!
//! Each L7 node listens on its address at the VIP's HTTP and HTTPS ports,
//! behind the L4 tier (which opens every connection with a PROXY protocol
//! header), terminates TLS, and proxies HTTP/1.1 and HTTP/2 requests to
//! pools of backend servers chosen by route, balancing algorithm, health
//! and stickiness. It answers the region health path itself, which is what
//! the GSLB probes through the VIP.
//!
//! # Layout
//!
//! Four places, each importing only those after it:
//!
//! - [`node`]: a node's life — build, run, reload, drain — with its active
//!   health checks and admin endpoint;
//! - [`path`]: the request path in its stages — accept, the tapped client
//!   stream, the two HTTP paths ([`path::fast`] for the common HTTP/1.1
//!   request, [`path::http`] on hyper for the rest), the steps both run for
//!   each request ([`path::steps`]: admission, route, attempts), and the
//!   access log at the end;
//! - [`shared`]: the run-time state every connection shares — the context,
//!   the snapshot with its pools of servers, idle backend connections,
//!   certificates, drain, clock, metrics, the node's configuration;
//! - [`rules`]: the pure decisions, table-tested — framing, admission,
//!   routing, header rewriting, balancing, stickiness, retries, faults.
//!
//! Only [`path::http`] (with its backend half) and the gRPC health check
//! name hyper types.

use std::path::Path;

use anyhow::Context as _;
use lifecycle::watch::ConfigWatch;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

pub mod node;
pub mod path;
pub mod rules;
pub mod shared;

pub use node::{Handle, L7Error, L7Node, Listeners};
pub use shared::config::NodeSpec;

use crate::ConfigError;

fn load_spec(config: &Path, node: &str) -> anyhow::Result<NodeSpec> {
    let topology = topology::load(config).map_err(|e| ConfigError(e.to_string()))?;
    let base = config.parent().unwrap_or(Path::new("."));
    Ok(NodeSpec::from_topology(&topology, node, base)?)
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what}); is another process using it, or is the address not on this host?"))
}

/// Runs the L7 node `node` of the topology at `config` until `shutdown`,
/// keeping the operator's drains and weights in `state_file`; reloads on
/// SIGHUP and when the file changes.
pub async fn run_node(
    config: &Path,
    node: &str,
    state_file: Option<&Path>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let spec = load_spec(config, node)?;
    let listeners = Listeners {
        http: Some(bind(spec.http_addr(), "HTTP").await?),
        https: match spec.https_addr() {
            Some(addr) => Some(bind(addr, "HTTPS").await?),
            None => None,
        },
        admin: Some(bind(spec.node.admin, "admin").await?),
    };
    let mut l7 = L7Node::new(spec).map_err(|e| ConfigError(format!("L7 node {node}: {e}")))?;
    if let Some(path) = state_file {
        l7 = l7.with_state_file(path);
    }
    let handle = l7.handle();
    let watcher = tokio::spawn(watch_config(
        config.to_owned(),
        node.to_owned(),
        handle,
        shutdown.clone(),
    ));
    let result = l7.run(listeners, shutdown).await;
    watcher.abort();
    result
}

/// Reloads on SIGHUP or when the topology file changes (see
/// [`lifecycle::watch`]).
async fn watch_config(
    config: std::path::PathBuf,
    node: String,
    handle: Handle,
    shutdown: CancellationToken,
) {
    let mut watch = ConfigWatch::new(&config, lifecycle::watch::POLL_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = watch.next() => {}
        }
        match load_spec(&config, &node) {
            Ok(spec) => {
                let _ = handle.reload(spec).await;
            }
            Err(e) => error!("reload refused, still serving the old configuration: {e:#}"),
        }
    }
}
