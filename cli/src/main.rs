//! `gtm`: the operator's CLI. It deploys the whole tiered topology of a
//! topology file on this machine, shows what it is doing, and rehearses
//! region failures — talking to the daemons only through their admin APIs,
//! DNS and signals, never through their internals.
//!
//! # Layout
//! - [`cli`]: the clap definitions (every subcommand and flag, the help).
//! - [`commands`]: one file per subcommand (`up`, `status`, `fail`, …).
//! - [`deployed`]: the deployment a state directory records.
//! - [`drill`]: what `fail` and `recover` share — the watched question and
//!   the watcher that turns observations into the drill's timeline.
//! - [`printer`]: every byte printed goes through it (`--json`, colour).
//! - [`render`]: the topology → each host's bundle (units or `gtmctl`,
//!   keepalived/BIRD configuration), for `render` and `deploy`.
//! - [`plan`]: the topology → the components to run, in start order, with
//!   the addresses each binds and how its readiness is checked (pure).
//! - [`supervise`]: processes — the state directory, pid files, spawning,
//!   readiness, teardown.
//! - [`remote`]: the hosts of a multi-host deployment, over ssh (commands,
//!   file pushes, the preflight survey, service control).
//! - [`admin`]: the HTTP client of the daemons' admin APIs.
//! - [`dns`]: DNS queries with EDNS Client Subnet (the only module naming
//!   hickory types).
//! - [`clients`]: well-known client networks per continent, and choosing
//!   one a region serves.
//! - [`timeline`]: the measured timeline of a drill (pure formatting).
//! - [`error`]: user errors (exit 1) versus unexpected ones (exit 2).

mod admin;
mod cli;
mod clients;
mod commands;
mod deployed;
mod dns;
mod drill;
mod error;
mod plan;
mod printer;
mod remote;
mod render;
mod supervise;
mod timeline;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes: 0 ok, 1 user or configuration error, 2 unexpected failure.
fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // --help and --version are successes; a usage error is the
            // user's (1), not clap's default 2.
            let code = if error.use_stderr() { 1 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let printer = printer::Printer::new(args.json, args.color);
    match commands::run(args, &printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error);
            ExitCode::from(error::exit_code(&error))
        }
    }
}
