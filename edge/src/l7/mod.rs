//! The L7 tier: TLS termination and HTTP routing to backend pools.

use std::path::Path;

use tokio_util::sync::CancellationToken;

/// Runs the L7 node `node` of the topology at `config` until `shutdown`.
pub async fn run_node(
    config: &Path,
    node: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("L7 node {node}: the L7 tier is not built yet")
}
