//! `gtm prometheus [TOPOLOGY]`: print a Prometheus configuration that
//! scrapes every component of the topology (see
//! [`crate::render::prometheus`]).

use super::validate::load_valid;
use crate::cli::PrometheusArgs;
use crate::printer::Printer;
use crate::render::prometheus::config;

/// Prints the configuration for `args.file` on stdout.
pub fn run(args: &PrometheusArgs, printer: &Printer) -> anyhow::Result<()> {
    let topology = load_valid(&args.file, printer, "no configuration written")?;
    let text = config(
        &topology,
        &args.file.display().to_string(),
        args.interval,
        &args.rules,
    );
    printer.raw(text.as_bytes());
    Ok(())
}
