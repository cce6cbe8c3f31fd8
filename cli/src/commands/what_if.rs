//! `gtm fail REGION... --dry-run` and `gtm recover REGION... --dry-run`:
//! the answers that would change, per continent and country and for the
//! clients named with `--client`, without touching anything. A GSLB node
//! computes them (`GET /v1/what-if`) with the decision it answers with,
//! over its current health view, so the prediction is what a real drill
//! then does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::admin::WhatIf;
use crate::deployed::Deployed;
use crate::error::user;
use crate::printer::{Printer, Style, Table};

/// The one region a real drill acts on; several only with `--dry-run`.
pub fn single(regions: &[String]) -> anyhow::Result<&str> {
    match regions {
        [region] => Ok(region),
        _ => Err(user(format!(
            "a drill acts on one region at a time, not {}; add --dry-run to see what failing several would do",
            regions.join(", ")
        ))),
    }
}

/// Prints what failing `fail` and recovering `recover` would change.
pub fn run(
    deployed: &Deployed,
    fail: &[String],
    recover: &[String],
    clients: &[IpAddr],
    printer: &Printer,
) -> anyhow::Result<()> {
    for region in fail.iter().chain(recover) {
        deployed.region(region)?;
    }
    let admin = deployed.admin()?;
    let report = deployed.ask_gslb("a what-if", |addr| {
        admin.what_if(addr, fail, recover, clients)
    })?;
    printer.result(&report, |p| print(&report, p));
    Ok(())
}

/// `us-east → eu-west`; `(nothing)` for an empty answer.
fn regions(list: &[String]) -> String {
    if list.is_empty() {
        "(nothing)".into()
    } else {
        list.join(" ")
    }
}

fn print(report: &WhatIf, p: &Printer) {
    let mut change = Vec::new();
    if !report.fail.is_empty() {
        change.push(format!("{} failed", report.fail.join(" and ")));
    }
    if !report.recover.is_empty() {
        change.push(format!("{} recovered", report.recover.join(" and ")));
    }
    p.line(format_args!(
        "{} {}",
        p.paint(Style::Bold, format_args!("What if {}", change.join(", "))),
        p.paint(
            Style::Dim,
            format_args!(
                "(dry run: nothing changed; {}'s own decision on its current health)",
                report.node
            )
        )
    ));
    for name in &report.names {
        p.line("");
        p.line(p.paint(Style::Bold, &name.name));
        if name.places.is_empty() {
            p.line("  no answer changes");
            continue;
        }
        // Countries grouped by continent and move.
        let mut groups: BTreeMap<(&str, String, String), Vec<String>> = BTreeMap::new();
        for place in &name.places {
            let country = if place.locations < place.of_locations {
                format!(
                    "{}({}/{})",
                    place.country, place.locations, place.of_locations
                )
            } else {
                place.country.clone()
            };
            groups
                .entry((
                    &place.continent,
                    regions(&place.before),
                    regions(&place.after),
                ))
                .or_default()
                .push(country);
        }
        let mut table = Table::new(&["  CONTINENT", "NOW", "", "WOULD BE", "COUNTRIES"]);
        for ((continent, before, after), countries) in groups {
            table.styled_row(vec![
                (format!("  {continent}"), None),
                (before, None),
                ("→".into(), Some(Style::Dim)),
                (after, Some(Style::Warn)),
                (countries.join(" "), None),
            ]);
        }
        for line in table.lines(p) {
            p.line(line);
        }
    }
    print_receivers(report, p);
    if report.clients.is_empty() {
        return;
    }
    p.line("");
    let mut table = Table::new(&["CLIENT", "PLACE", "NAME", "NOW", "", "WOULD BE"]);
    for client in &report.clients {
        let answer = |regions: &[String], addresses: &[String]| {
            format!("{} ({})", self::regions(regions), addresses.join(" "))
        };
        table.styled_row(vec![
            (client.client.clone(), Some(Style::Bold)),
            (format!("{} {}", client.continent, client.country), None),
            (client.name.clone(), None),
            (answer(&client.before, &client.before_addresses), None),
            ("→".into(), Some(Style::Dim)),
            if client.changed {
                (
                    answer(&client.after, &client.after_addresses),
                    Some(Style::Warn),
                )
            } else {
                ("unchanged".into(), Some(Style::Dim))
            },
        ]);
    }
    for line in table.lines(p) {
        p.line(line);
    }
}

/// Whether the regions that would take clients have room for them.
fn print_receivers(report: &WhatIf, p: &Printer) {
    if report.receivers.is_empty() {
        return;
    }
    p.line("");
    p.line(p.paint(Style::Bold, "Receiving regions' capacity"));
    for receiver in &report.receivers {
        let unit = match receiver.unit.as_deref() {
            Some("connections") => " connections",
            _ => "/s",
        };
        let incoming = receiver.incoming.map_or_else(String::new, |l| {
            format!("; the regions it takes clients from carry {l}{unit} now")
        });
        let (style, text) = match (receiver.headroom.as_str(), receiver.load, receiver.target) {
            ("room", Some(load), Some(target)) => (
                Style::Good,
                format!(
                    "has room: load {load}{unit} of target {target}{unit}, {}{unit} to spare{incoming}",
                    target - load
                ),
            ),
            ("full", Some(load), Some(target)) => (
                Style::Bad,
                format!("FULL: load {load}{unit} at or over target {target}{unit}{incoming}"),
            ),
            ("unknown", _, _) => (
                Style::Warn,
                "capacity unknown: its load telemetry is missing or stale".to_owned(),
            ),
            _ => (Style::Dim, "no capacity declared".to_owned()),
        };
        p.line(format_args!(
            "  {:<12} {}",
            receiver.region,
            p.paint(style, text)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_drill_takes_one_region() {
        assert_eq!(single(&["us-east".into()]).unwrap(), "us-east");
        let error = single(&["us-east".into(), "eu-west".into()]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("not us-east, eu-west; add --dry-run"),
            "{error}"
        );
    }
}
