//! `gtm completions SHELL`: the completion script clap_complete generates
//! from the command line definition.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::printer::Printer;

/// Runs `gtm completions`.
pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "gtm", &mut script);
    printer.raw(&script);
    Ok(())
}
