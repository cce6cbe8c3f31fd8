//! One file per subcommand; what several share lives beside this module
//! (`crate::deployed`, `crate::drill`).

mod completions;
mod deploy;
mod dig;
mod dnssec;
mod down;
mod fail;
mod logs;
mod prometheus;
mod recover;
mod reload;
mod render;
mod server;
mod status;
mod up;
mod validate;
mod what_if;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{Cli, Command};
use crate::printer::Printer;
use crate::supervise::state::StateDir;

/// Runs the subcommand `args` names.
pub fn run(args: Cli, printer: &Printer) -> anyhow::Result<()> {
    match args.command {
        Command::Validate(a) => validate::run(&a, printer),
        Command::Completions(a) => completions::run(&a, printer),
        Command::Render(a) => render::run(&a, printer),
        Command::Dnssec(a) => dnssec::run(&a, printer),
        Command::Prometheus(a) => prometheus::run(&a, printer),
        command => {
            let state = StateDir::resolve(args.state_dir)?;
            match command {
                Command::Up(a) => up::run(&a, &state, printer),
                Command::Deploy(a) => deploy::run(&a, &state, printer),
                Command::Status(a) => status::run(&a, &state, printer),
                Command::Fail(a) => fail::run(&a, &state, printer),
                Command::Recover(a) => recover::run(&a, &state, printer),
                Command::Dig(a) => dig::run(&a, &state, printer),
                Command::Reload(a) => reload::run(&a, &state, printer),
                Command::Logs(a) => logs::run(&a, &state, printer),
                Command::Down(a) => down::run(&a, &state, printer),
                Command::Server(a) => server::run(&a, &state, printer),
                Command::Validate(_)
                | Command::Completions(_)
                | Command::Render(_)
                | Command::Dnssec(_)
                | Command::Prometheus(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// A flag raised by Ctrl-C (SIGINT) or SIGTERM, for commands that must
/// clean up what they started instead of dying half-way.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while cleaning up ends gtm at once (exit 1); the
        // pid files still let `gtm down` finish the job. If the handlers
        // cannot be installed, the default (die) applies.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, flag.clone());
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
    flag
}
