//! The `edge` binary: runs one node of a region's tiers — an L4 node on the
//! VIP, an L7 proxy, or a demo backend — as the topology file describes it;
//! or one of the helpers keepalived and BIRD run beside an L4 node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

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
        /// Where the operator's server drains and weights are kept across
        /// restarts (default $XDG_STATE_HOME/edge/NODE.json, or
        /// ~/.local/state/edge/NODE.json).
        #[arg(long, value_name = "FILE")]
        state_file: Option<PathBuf>,
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
    /// Exit 0 if an L4 node stays ready for a short window, else 1: the
    /// track script keepalived (VRRP) runs every second.
    ///
    /// Polls the node's `GET /readyz` every `--every` for at most `--for`
    /// and fails at the first poll that is refused or not 200, or at the
    /// `--misses`-th poll in a row unanswered within `--every` (a busy node
    /// answering late keeps the VIP), with one line on stderr saying why. The
    /// defaults fit one run inside keepalived's 1 s `vrrp_script` interval
    /// (its floor; a run still going makes it skip the next) while noticing
    /// a node that stops being ready within about 100 ms.
    #[command(after_help = CHECK_EXAMPLE)]
    Check {
        /// The L4 node's admin address (`regions.R.l4.nodes[].admin`).
        #[arg(long, value_name = "ADDR")]
        admin: SocketAddr,
        /// How long one run watches.
        #[arg(long = "for", value_name = "DURATION", default_value = "800ms", value_parser = positive_duration)]
        window: Duration,
        /// Time between polls, and each poll's timeout.
        #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = positive_duration)]
        every: Duration,
        /// Unanswered polls in a row that count as not ready.
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        misses: u32,
    },
    /// Announce the VIP by BGP while an L4 node is ready: switches BIRD's
    /// static protocol with birdc. Runs until SIGTERM/SIGINT, then withdraws.
    ///
    /// Polls the node's `GET /readyz` every `--every`; after `--rise` ready
    /// polls in a row runs `birdc -s SOCKET enable PROTOCOL`, at the first
    /// poll refused or not ready (or `--misses` unanswered in a row)
    /// `disable PROTOCOL`; re-asserts the state every
    /// 10 s in case BIRD restarted. Starts withdrawn: render the protocol
    /// `disabled` in BIRD's configuration so nothing is announced before
    /// the node is ready. Stopping it takes the node out of ECMP.
    #[command(after_help = ANNOUNCE_EXAMPLE)]
    Announce {
        /// The L4 node's admin address (`regions.R.l4.nodes[].admin`).
        #[arg(long, value_name = "ADDR")]
        admin: SocketAddr,
        /// BIRD's control socket (`bird -s PATH`).
        #[arg(long, value_name = "PATH")]
        bird_socket: PathBuf,
        /// The BIRD protocol carrying the VIP's /32.
        #[arg(long, value_name = "NAME", default_value = "vip")]
        protocol: String,
        /// Time between polls, and each poll's timeout.
        #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = positive_duration)]
        every: Duration,
        /// Ready polls in a row before announcing.
        #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        rise: u32,
        /// Unanswered polls in a row that count as not ready.
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        misses: u32,
    },
}

const CHECK_EXAMPLE: &str = "Example (keepalived.conf):
  vrrp_script l4_ready {
    script \"/usr/local/bin/edge check --admin 127.0.1.1:9100\"
    interval 1
    fall 1
    rise 2
  }";

const ANNOUNCE_EXAMPLE: &str = "Example (beside `edge l4`, with BIRD's `protocol static vip { ipv4; disabled; route 203.0.113.1/32 via \"lo\"; }`):
  edge announce --admin 127.0.1.1:9100 --bird-socket /run/bird/bird.ctl";

/// Durations are written as in the topology file (`100ms`, `1s`); zero
/// would poll without pause.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match topology::duration::parse_duration(text)? {
        Duration::ZERO => Err("must be more than zero".into()),
        duration => Ok(duration),
    }
}

const EXAMPLES: &str = "Examples:
  edge l4 --config examples/three-regions.yaml --node us-east-l4
  edge l7 --config examples/three-regions.yaml --node us-east-l7a
  edge backend --config examples/three-regions.yaml --name us-east-web1
  edge check --admin 127.0.1.1:9100
  edge announce --admin 127.0.1.1:9100 --bird-socket /run/bird/bird.ctl

Normally `gtm up` starts these; keepalived runs `check`, and `announce`
runs beside an L4 node whose region announces its VIP by BGP. Logging: RUST_LOG=debug (default info).
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

/// Exit codes: 0 ok, 1 configuration or usage error (for `check`: not
/// ready), 2 runtime failure.
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
    let stop = shutdown.clone();
    let daemon: Pin<Box<dyn Future<Output = anyhow::Result<()>>>> = match args.command {
        Command::Check {
            admin,
            window,
            every,
            misses,
        } => {
            // Not a daemon: one short run, its verdict the exit code and at
            // most one line on stderr (what keepalived logs).
            let options = edge::ha::check::CheckOptions {
                admin,
                window,
                every,
                misses,
            };
            return match runtime.block_on(edge::ha::check::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => {
                    eprintln!("edge check: {reason}");
                    ExitCode::from(1)
                }
            };
        }
        Command::L4 { config, node } => {
            Box::pin(async move { edge::l4::run_node(&config, &node, stop).await })
        }
        Command::L7 {
            config,
            node,
            state_file,
        } => {
            let state_file =
                state_file.or_else(|| lifecycle::files::default_state_file("edge", &node));
            Box::pin(async move {
                edge::l7::run_node(&config, &node, state_file.as_deref(), stop).await
            })
        }
        Command::Backend { config, name } => {
            Box::pin(async move { edge::demo_backend::run_named(&config, &name, stop).await })
        }
        Command::Announce {
            admin,
            bird_socket,
            protocol,
            every,
            rise,
            misses,
        } => {
            let options = edge::ha::announce::AnnounceOptions {
                admin,
                bird_socket,
                protocol,
                every,
                rise,
                misses,
            };
            Box::pin(edge::ha::announce::run(options, stop))
        }
    };
    let result = runtime.block_on(async {
        tokio::spawn(lifecycle::stop_on_signal(shutdown));
        daemon.await
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
