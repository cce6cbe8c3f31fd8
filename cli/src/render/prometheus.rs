//! The topology → a Prometheus configuration scraping every component's
//! admin `/metrics`: one job per kind of daemon (`gslb`, `edge-l4`,
//! `edge-l7`), one target per node, labelled with what the dashboard and
//! the alerting rules group by.
//!
//! The GSLB job gets no `region` target label: its own metrics carry
//! `region` (the region answered or probed), which a target label would
//! rename to `exported_region`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use topology::Topology;

use crate::plan::{Component, Kind, plan};

/// The job name of a kind of component, if it serves metrics.
fn job(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Gslb => Some("gslb"),
        Kind::L4 => Some("edge-l4"),
        Kind::L7 => Some("edge-l7"),
        Kind::Backend => None,
    }
}

/// A Prometheus duration: whole seconds as `15s`, else milliseconds.
fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is a subset of it).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The target labels of `component`.
fn labels(component: &Component) -> Vec<(&'static str, &str)> {
    let mut labels = vec![("node", component.name.as_str())];
    if component.kind != Kind::Gslb
        && let Some(region) = &component.region
    {
        labels.push(("region", region));
    }
    if let Some(host) = &component.host {
        labels.push(("host", host));
    }
    labels
}

/// `prometheus.yml` for `topology`: scrape and rule evaluation every
/// `interval`, the rules files `rules`, and every component with an admin
/// address as a target. `source` names the topology in the header comment.
pub fn config(topology: &Topology, source: &str, interval: Duration, rules: &[PathBuf]) -> String {
    let interval = duration(interval);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Prometheus configuration for {source}, written by `gtm prometheus`."
    );
    let _ = writeln!(
        out,
        "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}"
    );
    if !rules.is_empty() {
        out.push_str("rule_files:\n");
        for file in rules {
            let _ = writeln!(out, "  - {}", quoted(&file.display().to_string()));
        }
    }
    out.push_str("scrape_configs:\n");
    // The plan's arguments name a config path; only the admin addresses matter here.
    let components = plan(topology, std::path::Path::new("topology.yaml"));
    for kind in Kind::START_ORDER {
        let Some(job) = job(kind) else { continue };
        let targets: Vec<_> = components
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| c.admin.map(|admin| (c, admin)))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  - job_name: {job}\n    static_configs:");
        for (component, admin) in targets {
            let labels: Vec<String> = labels(component)
                .into_iter()
                .map(|(name, value)| format!("{name}: {}", quoted(value)))
                .collect();
            let _ = writeln!(
                out,
                "      - targets: [{}]\n        labels: {{ {} }}",
                quoted(&admin.to_string()),
                labels.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_daemon_with_an_admin_address_is_a_target_of_its_job() {
        let topology =
            topology::load(std::path::Path::new("../examples/three-regions.yaml")).unwrap();
        let text = config(
            &topology,
            "three-regions.yaml",
            Duration::from_millis(1500),
            &[PathBuf::from("alerts.yml")],
        );
        assert!(text.contains("scrape_interval: 1500ms"), "{text}");
        assert!(text.contains("rule_files:\n  - \"alerts.yml\""), "{text}");
        assert!(
            text.contains("- targets: [\"127.0.0.1:5380\"]\n        labels: { node: \"ns1\" }"),
            "the GSLB has no region target label: {text}"
        );
        assert!(
            text.contains("- targets: [\"127.0.1.11:9100\"]\n        labels: { node: \"us-east-l7a\", region: \"us-east\" }"),
            "{text}"
        );
        let jobs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- job_name: "))
            .collect();
        assert_eq!(jobs, ["edge-l7", "edge-l4", "gslb"]);
        // Six L7 nodes, three L4 nodes, one name server; backends have no metrics.
        assert_eq!(text.matches("- targets:").count(), 10);
    }
}
