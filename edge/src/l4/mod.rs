//! The L4 tier: TCP on the region's VIP, spread over the L7 nodes.

use std::path::Path;

use tokio_util::sync::CancellationToken;

/// Runs the L4 node `node` of the topology at `config` until `shutdown`.
pub async fn run_node(
    config: &Path,
    node: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("L4 node {node}: the L4 tier is not built yet")
}
