//! `gtm dnssec keygen ZONE` and `gtm dnssec ds ZONE --key FILE`: create a
//! zone's signing key (a CSK, PKCS#8 PEM, mode 0600) and show the DS record
//! to give the parent. The key file format is `topology::dnssec`'s.

use serde::Serialize;
use topology::DomainName;
use topology::dnssec::{Algorithm, ZoneKey};

use crate::cli::{DnssecArgs, DnssecCommand};
use crate::error::user;
use crate::printer::Printer;

/// What either subcommand prints.
#[derive(Debug, Serialize)]
pub struct KeyReport {
    /// The key file.
    pub file: String,
    /// Its key tag.
    pub key_tag: u16,
    /// The algorithm number (13 or 15).
    pub algorithm: u8,
    /// The DNSKEY record, presentation form.
    pub dnskey: String,
    /// The DS record (SHA-256), presentation form.
    pub ds: String,
}

/// Runs `gtm dnssec …`.
pub fn run(args: &DnssecArgs, printer: &Printer) -> anyhow::Result<()> {
    let (zone, key, created) = match &args.command {
        DnssecCommand::Keygen {
            zone,
            algorithm,
            dir,
        } => {
            let zone = parse_zone(zone)?;
            let algorithm = Algorithm::from_number(*algorithm).ok_or_else(|| {
                user(format!(
                    "--algorithm {algorithm} is not offered; write 13 (ECDSAP256SHA256, the default) or 15 (ED25519)"
                ))
            })?;
            let key = ZoneKey::generate(&zone, algorithm, dir).map_err(|e| user(e.to_string()))?;
            (zone, key, true)
        }
        DnssecCommand::Ds { zone, key } => {
            let zone = parse_zone(zone)?;
            let key = ZoneKey::read(key).map_err(|e| user(e.to_string()))?;
            (zone, key, false)
        }
    };
    let report = KeyReport {
        file: key.path().display().to_string(),
        key_tag: key.key_tag(),
        algorithm: key.algorithm().number(),
        dnskey: key.dnskey_text(&zone),
        ds: key.ds_text(&zone),
    };
    printer.result(&report, |p| {
        if created {
            p.line(format_args!(
                "; created {} (keep it secret; list it under the zone's dnssec.keys)",
                report.file
            ));
            p.line(&report.dnskey);
        }
        p.line(format_args!("; give this DS record to the parent zone"));
        p.line(&report.ds);
    });
    Ok(())
}

fn parse_zone(zone: &str) -> anyhow::Result<DomainName> {
    let absolute = if zone.ends_with('.') {
        zone.to_owned()
    } else {
        format!("{zone}.")
    };
    DomainName::parse_absolute(&absolute).map_err(|e| user(format!("zone {zone:?}: {e}")))
}
