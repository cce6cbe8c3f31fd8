//! The `edge` binary: runs one node of a region's tiers — an L4 node on the
//! VIP, an L7 proxy, or a demo backend — as the topology file describes it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs one node of a region's load-balancing tiers.
#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an L4 node: TCP on the region's VIP, Maglev over the L7 nodes.
    L4 {
        /// The topology file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The node's name (`regions.R.l4.nodes[].name`).
        #[arg(long)]
        node: String,
    },
    /// Run an L7 node: TLS termination and HTTP routing to backend pools.
    L7 {
        /// The topology file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The node's name (`regions.R.l7.nodes[].name`).
        #[arg(long)]
        node: String,
    },
    /// Run a demo backend: answers with its name and region.
    Backend {
        /// The topology file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The backend's name (`regions.R.backends[].name`).
        #[arg(long)]
        name: String,
    },
}

const EXAMPLES: &str = "Examples:
  edge l4 --config examples/three-regions.yaml --node us-east-l4
  edge l7 --config examples/three-regions.yaml --node us-east-l7a
  edge backend --config examples/three-regions.yaml --name us-east-web1

Normally `gtm up` starts these. Logging: RUST_LOG=debug (default info).
Threads: TOKIO_WORKER_THREADS=N (default: one per core); with 1, everything
runs on the main thread.";

/// The async runtime: one worker per core, or `TOKIO_WORKER_THREADS`. A
/// single worker is a current-thread runtime on the main thread: no
/// hand-offs between a worker and the I/O driver, no cross-thread wake-ups,
/// which the multi-thread scheduler pays even with one worker.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("TOKIO_WORKER_THREADS").ok();
    let mut builder = if workers.as_deref().map(str::trim) == Some("1") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        // Reads TOKIO_WORKER_THREADS itself.
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

/// Exit codes: 0 ok, 1 configuration or usage error, 2 runtime failure.
fn main() -> ExitCode {
    let args = Args::parse();
    lifecycle::init_logging();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("edge: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    let result = runtime.block_on(async {
        tokio::spawn(lifecycle::stop_on_signal(shutdown.clone()));
        match args.command {
            Command::L4 { config, node } => edge::l4::run_node(&config, &node, shutdown).await,
            Command::L7 { config, node } => edge::l7::run_node(&config, &node, shutdown).await,
            Command::Backend { config, name } => {
                edge::demo_backend::run_named(&config, &name, shutdown).await
            }
        }
    });
    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!("{error:#}");
            eprintln!("edge: {error:#}");
            match error.downcast_ref::<edge::ConfigError>() {
                Some(_) => ExitCode::from(1),
                None => ExitCode::from(2),
            }
        }
    }
}
