//! `gtm dnssec keygen ZONE` and `gtm dnssec ds ZONE --key FILE`: create a
//! zone's signing key (a CSK, or with `--ksk`/`--zsk` one half of a split;
//! PKCS#8 PEM, mode 0600) and show the DS record to give the parent. The
//! key file format is `topology::dnssec`'s.

use serde::Serialize;
use topology::DomainName;
use topology::dnssec::{Algorithm, Role, ZoneKey};

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
    /// What it signs: `CSK`, `KSK` or `ZSK`.
    pub role: &'static str,
    /// The DNSKEY record, presentation form.
    pub dnskey: String,
    /// The DS record (SHA-256), presentation form; none for a ZSK, which
    /// the parent never names.
    pub ds: Option<String>,
}

/// Runs `gtm dnssec …`.
pub fn run(args: &DnssecArgs, printer: &Printer) -> anyhow::Result<()> {
    let (zone, key, created) = match &args.command {
        DnssecCommand::Keygen {
            zone,
            algorithm,
            ksk,
            zsk,
            dir,
        } => {
            let zone = parse_zone(zone)?;
            let algorithm = Algorithm::from_number(*algorithm).ok_or_else(|| {
                user(format!(
                    "--algorithm {algorithm} is not offered; write 13 (ECDSAP256SHA256, the default) or 15 (ED25519)"
                ))
            })?;
            let role = match (*ksk, *zsk) {
                (true, _) => Role::Ksk,
                (_, true) => Role::Zsk,
                _ => Role::Csk,
            };
            let key = ZoneKey::generate_as(&zone, algorithm, role, dir)
                .map_err(|e| user(e.to_string()))?;
            (zone, key, true)
        }
        DnssecCommand::Ds { zone, key } => {
            let zone = parse_zone(zone)?;
            let key = ZoneKey::read(key).map_err(|e| user(e.to_string()))?;
            if key.role() == Role::Zsk {
                return Err(user(format!(
                    "{}: a ZSK has no DS record; the parent's DS names the zone's KSK (or CSK): pass that key's file",
                    key.path().display()
                )));
            }
            (zone, key, false)
        }
    };
    let report = KeyReport {
        file: key.path().display().to_string(),
        key_tag: key.key_tag(),
        algorithm: key.algorithm().number(),
        role: key.role().name(),
        dnskey: key.dnskey_text(&zone),
        ds: (key.role() != Role::Zsk).then(|| key.ds_text(&zone)),
    };
    printer.result(&report, |p| {
        if created {
            p.line(format_args!(
                "; created {} {} (keep it secret; list it under the zone's dnssec.keys)",
                report.role, report.file
            ));
            p.line(&report.dnskey);
        }
        if let Some(ds) = &report.ds {
            p.line(format_args!("; give this DS record to the parent zone"));
            p.line(ds);
        }
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
