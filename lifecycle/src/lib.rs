//! What every daemon of the project (`gslb`, `edge`) does at start and
//! stop, in one place so they behave alike:
//!
//! - [`init_logging`]: `tracing` to stderr, level from `RUST_LOG` (default
//!   `info`), colour only on a terminal;
//! - [`stop_on_signal`]: the first SIGTERM or SIGINT cancels the shutdown
//!   token every task watches (stop accepting, drain, exit);
//! - [`watch`]: when to reload the configuration file — it changed
//!   (mtime and length, polled every second) or SIGHUP came;
//! - [`files`]: state files written atomically.

pub mod files;
pub mod watch;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Sets up logging to stderr; `RUST_LOG` picks the level (default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
pub async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received: draining"),
        _ = int.recv() => info!("SIGINT received: draining"),
    }
    shutdown.cancel();
}
