//! `gtm status --matrix`: the health matrix as one GSLB node sees it —
//! rows are regions, columns are vantage points (that node and each peer
//! whose view it holds), each cell the vantage point's view with its
//! latest probe latency, then the quorum that decides.

use serde::Serialize;

use crate::admin::{GslbStatus, Quorum};
use crate::printer::{Printer, Style, Table};

/// The matrix, built from one node's `/v1/status`.
#[derive(Debug, PartialEq, Serialize)]
pub struct Matrix {
    /// The GSLB node whose status this is.
    pub from: String,
    /// The vantage points, in the order they first appear.
    pub vantage_points: Vec<String>,
    /// One row per region, in topology order.
    pub regions: Vec<Row>,
}

/// One region's row.
#[derive(Debug, PartialEq, Serialize)]
pub struct Row {
    /// The region.
    pub region: String,
    /// One cell per vantage point (same order as
    /// [`Matrix::vantage_points`]); `None` where that vantage point has
    /// sent no view of the region.
    pub cells: Vec<Option<Cell>>,
    /// `up` or `down`: the quorum's verdict.
    pub verdict: String,
    /// How the fresh views voted, when the node says.
    pub quorum: Option<Quorum>,
    /// Whether answers use the region (verdict up and no override).
    pub in_service: bool,
    /// The operator's override, if any.
    #[serde(rename = "override")]
    pub override_mode: Option<String>,
}

/// One vantage point's view of one region.
#[derive(Debug, PartialEq, Serialize)]
pub struct Cell {
    /// `up` or `down`.
    pub state: String,
    /// Whether the view is fresh enough to vote.
    pub fresh: bool,
    /// Whether its votes are set aside (`dns.breaker`).
    pub abstains: bool,
    /// Whether its latest probe passed.
    pub last_ok: Option<bool>,
    /// What its latest probe saw (`HTTP 200`, `connection refused`, …).
    pub last: Option<String>,
    /// How long its latest probe took.
    pub latency_ms: Option<f64>,
    /// Changes of its view over the last hour.
    pub flaps_last_hour: usize,
}

impl Matrix {
    /// The matrix of `status`, the answer of node `status.node`.
    pub fn of(status: &GslbStatus) -> Matrix {
        let mut vantage_points: Vec<String> = Vec::new();
        for view in status.regions.iter().flat_map(|r| &r.vantage) {
            if !vantage_points.contains(&view.node) {
                vantage_points.push(view.node.clone());
            }
        }
        let regions = status
            .regions
            .iter()
            .map(|region| Row {
                region: region.name.clone(),
                cells: vantage_points
                    .iter()
                    .map(|node| {
                        let view = region.vantage.iter().find(|v| v.node == *node)?;
                        Some(Cell {
                            state: view.state.clone(),
                            fresh: view.fresh,
                            abstains: view.abstains,
                            last_ok: view.last.as_ref().map(|p| p.ok),
                            last: view.last.as_ref().map(|p| p.detail.clone()),
                            latency_ms: view.last.as_ref().map(|p| p.latency_ms),
                            flaps_last_hour: view.flaps_last_hour,
                        })
                    })
                    .collect(),
                verdict: region.verdict.clone(),
                quorum: region.quorum,
                in_service: region.in_service,
                override_mode: region.override_mode.clone(),
            })
            .collect();
        Matrix {
            from: status.node.clone(),
            vantage_points,
            regions,
        }
    }

    /// Prints the matrix as a table, then the failing probes' details.
    pub fn print(&self, p: &Printer) {
        p.line(format_args!(
            "{} {}",
            p.paint(Style::Bold, "Health matrix"),
            p.paint(Style::Dim, format_args!("(as {} sees it)", self.from))
        ));
        let mut header = vec!["REGION"];
        header.extend(self.vantage_points.iter().map(String::as_str));
        header.push("QUORUM");
        let mut table = Table::new(&header);
        let mut notes = Vec::new();
        for row in &self.regions {
            let mut cells = vec![(row.region.clone(), Some(Style::Bold))];
            for (node, cell) in self.vantage_points.iter().zip(&row.cells) {
                cells.push(cell_text(cell.as_ref()));
                if let Some(Cell {
                    last_ok: Some(false),
                    last: Some(detail),
                    ..
                }) = cell
                {
                    notes.push(format!("{} from {node}: {detail}", row.region));
                }
            }
            cells.push(quorum_text(row));
            table.styled_row(cells);
        }
        for line in table.lines(p) {
            p.line(line);
        }
        if !notes.is_empty() {
            p.line("");
            for note in notes {
                p.line(p.paint(Style::Dim, note));
            }
        }
    }
}

/// `up 1.2ms`, `down 0.3ms, 4 flaps`, `up stale`, `-`.
fn cell_text(cell: Option<&Cell>) -> (String, Option<Style>) {
    let Some(cell) = cell else {
        return ("-".into(), Some(Style::Dim));
    };
    let mut text = cell.state.clone();
    if let Some(ms) = cell.latency_ms {
        text.push_str(&format!(" {ms:.1}ms"));
    }
    match cell.flaps_last_hour {
        0 => {}
        1 => text.push_str(", 1 flap"),
        n => text.push_str(&format!(", {n} flaps")),
    }
    if !cell.fresh {
        text.push_str(" stale");
        return (text, Some(Style::Dim));
    }
    if cell.abstains {
        text.push_str(" (set aside)");
        return (text, Some(Style::Warn));
    }
    let style = if cell.state == "up" {
        Style::Good
    } else {
        Style::Bad
    };
    (text, Some(style))
}

/// `up 3/3`, `down 0/3 (override drain)`.
fn quorum_text(row: &Row) -> (String, Option<Style>) {
    let mut text = row.verdict.clone();
    if let Some(q) = row.quorum {
        text.push_str(&format!(" {}/{}", q.up_votes, q.fresh_views));
    }
    if let Some(mode) = &row.override_mode {
        text.push_str(&format!(" (override {mode})"));
    }
    let style = match (row.in_service, row.override_mode.is_some()) {
        (true, _) => Style::Good,
        (false, true) => Style::Warn,
        (false, false) => Style::Bad,
    };
    (text, Some(style))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{RegionStatus, VantageStatus};
    use ::admin::api::gslb::{Config, Probe, Queries, Vip};

    fn view(node: &str, up: bool, fresh: bool, latency_ms: f64, flaps: usize) -> VantageStatus {
        VantageStatus {
            node: node.into(),
            state: if up { "up" } else { "down" }.into(),
            fresh,
            abstains: false,
            last: Some(Probe {
                ok: up,
                detail: if up { "HTTP 200" } else { "connection refused" }.into(),
                latency_ms,
                at_ms: 1,
            }),
            flaps_last_hour: flaps,
        }
    }

    fn region(name: &str, up_votes: usize, vantage: Vec<VantageStatus>) -> RegionStatus {
        let fresh_views = vantage.iter().filter(|v| v.fresh).count();
        let up = up_votes * 2 >= fresh_views;
        RegionStatus {
            name: name.into(),
            vip: Vip {
                ipv4: None,
                ipv6: None,
            },
            verdict: if up { "up" } else { "down" }.into(),
            override_mode: None,
            override_reason: None,
            in_service: up,
            since_ms: 0,
            quorum: Some(Quorum {
                up_votes,
                fresh_views,
            }),
            vantage,
            load: None,
        }
    }

    fn status(regions: Vec<RegionStatus>) -> GslbStatus {
        GslbStatus {
            node: "ns1".into(),
            region: None,
            started_at_ms: 0,
            config: Config {
                version: String::new(),
                loaded_at_ms: 0,
                last_reload: None,
            },
            regions,
            queries: Queries {
                total: 0,
                per_second: 0.0,
            },
        }
    }

    #[test]
    fn columns_are_every_vantage_point_and_missing_views_stay_empty() {
        let matrix = Matrix::of(&status(vec![
            region(
                "us-east",
                0,
                vec![
                    view("ns1", false, true, 0.2, 2),
                    view("ns2", false, true, 0.3, 0),
                ],
            ),
            // ns3's view of eu-west arrived, of us-east not yet.
            region(
                "eu-west",
                3,
                vec![
                    view("ns1", true, true, 1.5, 0),
                    view("ns2", true, true, 1.0, 0),
                    view("ns3", true, false, 9.0, 0),
                ],
            ),
        ]));
        assert_eq!(matrix.vantage_points, ["ns1", "ns2", "ns3"]);
        let us_east = &matrix.regions[0];
        assert_eq!(us_east.verdict, "down");
        assert_eq!(
            us_east.quorum,
            Some(Quorum {
                up_votes: 0,
                fresh_views: 2
            })
        );
        assert!(us_east.cells[2].is_none());
        let cell = us_east.cells[0].as_ref().unwrap();
        assert_eq!(cell.last.as_deref(), Some("connection refused"));
        assert_eq!(cell.flaps_last_hour, 2);
        let eu_west = &matrix.regions[1];
        assert!(eu_west.cells.iter().all(Option::is_some));
        assert!(!eu_west.cells[2].as_ref().unwrap().fresh);
    }

    #[test]
    fn cells_read_state_latency_flaps_and_staleness() {
        let text = |v: &VantageStatus| {
            let matrix = Matrix::of(&status(vec![region("r", 1, vec![v.clone()])]));
            cell_text(matrix.regions[0].cells[0].as_ref()).0
        };
        assert_eq!(text(&view("ns1", true, true, 1.25, 0)), "up 1.2ms");
        assert_eq!(
            text(&view("ns1", false, true, 0.5, 3)),
            "down 0.5ms, 3 flaps"
        );
        assert_eq!(text(&view("ns2", true, false, 2.0, 0)), "up 2.0ms stale");
        let mut cut_off = view("ns3", false, true, 0.1, 1);
        cut_off.abstains = true;
        assert_eq!(text(&cut_off), "down 0.1ms, 1 flap (set aside)");
        assert_eq!(cell_text(None).0, "-");
    }

    #[test]
    fn the_quorum_column_shows_votes_and_overrides() {
        let mut row = Matrix::of(&status(vec![region(
            "r",
            1,
            vec![
                view("a", true, true, 1.0, 0),
                view("b", false, true, 1.0, 0),
            ],
        )]))
        .regions
        .remove(0);
        assert_eq!(quorum_text(&row).0, "up 1/2");
        row.override_mode = Some("drain".into());
        row.in_service = false;
        assert_eq!(
            quorum_text(&row),
            ("up 1/2 (override drain)".into(), Some(Style::Warn))
        );
    }
}
