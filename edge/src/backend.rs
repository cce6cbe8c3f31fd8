//! The demo backend: a small HTTP server naming itself and its region.

use std::path::Path;

use tokio_util::sync::CancellationToken;

/// Runs the demo backend `name` of the topology at `config` until `shutdown`.
pub async fn run_named(
    config: &Path,
    name: &str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("backend {name}: the demo backend is not built yet")
}
