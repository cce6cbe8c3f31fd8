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
//! Modules follow a request's way through the node. The pure decisions
//! take time and randomness as arguments and are table-tested; only
//! [`http`] (with its backend half, [`http::upstream`]) names hyper types.
//! Two HTTP paths call the same decisions: [`fast`] for the common
//! HTTP/1.1 request, [`http`] (hyper) for the rest.
//!
//! - [`listener`]: accept, PROXY header, per-client connection cap, TLS
//!   handshake and ALPN, then the connection to [`fast`] (or to [`http`]
//!   when the tier turns the fast path off);
//! - [`tap`]: the client stream the HTTP layers read: reads reported to
//!   the drain, HTTP/1 bytes through the smuggling guard, bytes replayed
//!   at a hand-off;
//! - [`framing`]: pure — the request-smuggling guard over HTTP/1 bytes;
//!   [`chunked`]: pure — chunked bodies read in any split (the guard's and
//!   the fast path's);
//! - [`fast`]: the HTTP/1.1 fast path — its codec ([`fast::codec`]: heads
//!   parsed by offsets, framing, chunks) and one task per connection
//!   driving its backend connections ([`fast::driver`]); at a request
//!   boundary it hands what it does not serve (HTTP/2, HTTP/1.0, upgrades,
//!   `Expect`, announced trailers, HTTP/2 and TLS pools, the health path,
//!   anything odd) to [`http`] with the bytes read so far, for good;
//! - [`http`]: the hyper adapter — serving connections, the request path
//!   (admission, route, pick, forward, attempts), WebSocket tunnels, the
//!   access log;
//! - [`http::upstream`]: keep-alive HTTP/1.1 connections to backend servers,
//!   pooled per server and driven in the task of the client connection
//!   using them, or one multiplexed HTTP/2 connection per server (`h2c`
//!   and `h2` pools), over TLS for TLS pools ([`backend_tls`]: trust, SNI,
//!   client certificate, session cache, handshake failures named);
//! - [`idle`]: the idle backend connections of both HTTP/1.1 paths, by
//!   server: a cap per server, none reused past `upstream_idle`, a sweep;
//! - [`limits`]: pure admission — per-client rate limit (GCRA),
//!   connection cap, concurrency gates;
//! - [`route`]: pure — host/path/header matching and prefix rewrites;
//! - [`pool`]: servers' live state and the choice of one (backups,
//!   fail-open, sticky, slow start, limits, ejection back-off);
//!   [`balance`]: pure balancing algorithms; [`sticky`]: pure cookie
//!   handling;
//! - [`retry`]: pure — the attempt and retry policy (which results are
//!   retried, for which methods and bodies, the retry budget);
//! - [`fault`]: pure — why the proxy answered itself: source (client,
//!   proxy, backend), retryability, status and headers;
//! - [`paced_body`]: bodies with a deadline between pieces — the
//!   client's request body (its errors marked as the client's) and the
//!   backend's response body (its stalls charged to the server);
//! - [`forward`]: pure header rewriting (hop-by-hop, `X-Forwarded-*`,
//!   `X-Request-ID`, `Via`), over a `HeaderMap` or field by field;
//! - [`access`]: the end of a request on either path — its access log line
//!   and route metrics;
//! - [`health`]: active checks through the `probe` crate;
//! - [`tls`]: certificates by SNI, reloaded when their files change;
//! - [`context`]: what every connection and request of a node shares
//!   (imported by listener, http, admin and node, importing none of
//!   them); [`drain`]: the drain's phase machine; [`clock`]: the node's
//!   clock;
//! - [`state`]: the immutable snapshot requests are served from (no HTTP
//!   stack in it: hyper's builders and backend client are
//!   [`http::Hyper`]'s);
//!   [`node`]: building, running, reloading and draining a node;
//!   [`config`]: the node's slice of the topology;
//! - [`metrics`], [`admin`]: Prometheus metrics and the admin endpoint.

use std::path::Path;

use anyhow::Context as _;
use lifecycle::watch::ConfigWatch;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

pub mod access;
pub mod admin;
pub mod backend_tls;
pub mod balance;
pub mod chunked;
pub mod clock;
pub mod config;
pub mod context;
pub mod drain;
pub mod fast;
pub mod fault;
pub mod forward;
pub mod framing;
pub mod health;
pub mod http;
pub mod idle;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod paced_body;
pub mod pool;
pub mod retry;
pub mod route;
pub mod state;
pub mod sticky;
pub mod tap;
pub mod tls;

pub use config::NodeSpec;
pub use node::{Handle, L7Error, L7Node, Listeners};

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

/// Runs the L7 node `node` of the topology at `config` until `shutdown`;
/// reloads on SIGHUP and when the file changes.
pub async fn run_node(
    config: &Path,
    node: &str,
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
    let l7 = L7Node::new(spec).map_err(|e| ConfigError(format!("L7 node {node}: {e}")))?;
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
