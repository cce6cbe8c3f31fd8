//! `GET /metrics`: a `prometheus_client` registry in a text exposition
//! format.
//!
//! `prometheus_client` (the official Rust client) writes the **OpenMetrics**
//! text format: a counter `conns` is announced as `# TYPE conns counter` and
//! sampled as `conns_total`, and the exposition ends with `# EOF`.
//! Prometheus reads that when it is labelled
//! `application/openmetrics-text; version=1.0.0`, but `promtool check
//! metrics` (and the Prometheus text format 0.0.4 it lints) reads the
//! `conns_total` samples as an untyped family without help text and
//! fails. So the endpoint negotiates:
//!
//! - a scrape whose `Accept` header names `application/openmetrics-text`
//!   (Prometheus sends that by default) gets OpenMetrics, as
//!   [`OPENMETRICS_CONTENT_TYPE`];
//! - anything else (curl, `promtool check metrics`, older scrapers) gets
//!   the **Prometheus text format 0.0.4**, as [`PROMETHEUS_CONTENT_TYPE`]:
//!   the same samples, with each counter's `HELP`/`TYPE` lines naming the
//!   sampled `_total` name, info metrics typed as gauges, `unknown` as
//!   `untyped`, and no `# UNIT`, `# EOF` or exemplars
//!   ([`openmetrics_to_prometheus`]).
//!
//! Both are accepted by Prometheus; the 0.0.4 form passes `promtool check
//! metrics` (checked by a test when `promtool` is installed). Metric names
//! should follow Prometheus conventions (base units, no type in the name)
//! for the lint to pass; help texts must not contain backslashes.
//! Gauge histograms and state sets are not translated and should not be
//! registered.

use std::fmt::Write as _;

use prometheus_client::registry::Registry;

/// Content type of the Prometheus text format 0.0.4 (the default answer).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Content type of the OpenMetrics 1.0 text format (answered when asked for).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes `registry` for a scrape that sent `accept`: the content type and
/// the body. Fails only if a metric's own encoding fails.
pub fn render(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(&'static str, String), std::fmt::Error> {
    let mut openmetrics = String::new();
    prometheus_client::encoding::text::encode(&mut openmetrics, registry)?;
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        Ok((OPENMETRICS_CONTENT_TYPE, openmetrics))
    } else {
        Ok((
            PROMETHEUS_CONTENT_TYPE,
            openmetrics_to_prometheus(&openmetrics),
        ))
    }
}

/// The sum of every sample of the counter `name` (its sampled name,
/// `…_total`) in a text exposition, labels ignored; `None` if it has none.
/// How `gtm` reads the daemons' counters.
pub fn counter_sum(text: &str, name: &str) -> Option<f64> {
    samples(text, name).fold(None, |total, sample| {
        Some(total.unwrap_or(0.0) + sample.value)
    })
}

/// One sample line of a text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Its labels, in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of the series `name` (as sampled: `…_total`, `…_bucket`)
/// in a text exposition (Prometheus 0.0.4 or OpenMetrics). Lines that do
/// not parse are skipped: a scrape of another version's daemon should
/// still show what it can.
pub fn samples<'t>(text: &'t str, name: &'t str) -> impl Iterator<Item = Sample> + 't {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        // The name must end here: `name{…} v` or `name v`.
        let (labels, rest) = match rest.as_bytes().first() {
            Some(b'{') => parse_labels(&rest[1..])?,
            Some(b' ') => (Vec::new(), rest),
            _ => return None,
        };
        let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
        Some(Sample { labels, value })
    })
}

/// `a="x",b="y\"z"} rest` → the labels and ` rest`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (name, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim().to_owned(), value));
        text = &rest[end + 1..];
    }
}

/// Rewrites OpenMetrics text as written by `prometheus_client` into the
/// Prometheus text format 0.0.4 (see the module docs for the rules).
pub fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Held until the TYPE line says what the family is called in 0.0.4.
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            let family = if name.ends_with(suffix) {
                name.to_owned()
            } else {
                format!("{name}{suffix}")
            };
            if let Some((help_name, text)) = help.take()
                && help_name == name
            {
                let _ = writeln!(out, "# HELP {family} {text}");
            }
            let _ = writeln!(out, "# TYPE {family} {kind}");
        } else if line.starts_with("# UNIT ") || line == "# EOF" || line.is_empty() {
            continue;
        } else if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(without_exemplar(line));
            out.push('\n');
        }
    }
    out
}

/// A sample line without its OpenMetrics exemplar (` # {…} value`), which
/// the 0.0.4 format does not have. `#` inside label values is left alone.
fn without_exemplar(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        if in_quotes {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'#' if depth == 0 && i > 0 && bytes[i - 1] == b' ' => {
                return line[..i].trim_end();
            }
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_their_labels() {
        let text = "# HELP edge_l7_requests_total Requests answered\n\
                    # TYPE edge_l7_requests_total counter\n\
                    edge_l7_requests_total{route=\"*/\",pool=\"web\",class=\"2xx\"} 10\n\
                    edge_l7_requests_total{route=\"*/\",pool=\"web\",class=\"5xx\"} 2\n\
                    edge_l7_requests_total_other 100\n\
                    edge_l7_request_duration_seconds_count 7\n";
        assert_eq!(counter_sum(text, "edge_l7_requests_total"), Some(12.0));
        assert_eq!(counter_sum("x 1\n", "edge_l7_requests_total"), None);
        assert_eq!(counter_sum("plain 3\n", "plain"), Some(3.0));
    }

    #[test]
    fn samples_carry_their_labels_unescaped() {
        let text = "# TYPE x counter\nx_total{name=\"a\\\"b\",le=\"0.5\"} 4\nx_total 2\nx_totals 9\nx_total{bad 1\n";
        let all: Vec<Sample> = samples(text, "x_total").collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].label("name"), Some("a\"b"));
        assert_eq!(all[0].label("le"), Some("0.5"));
        assert_eq!(all[0].value, 4.0);
        assert_eq!((all[1].labels.len(), all[1].value), (0, 2.0));
    }
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::exemplar::CounterWithExemplar;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;
    use prometheus_client::registry::Unit;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Node {
        node: String,
    }

    /// A registry with one metric of every translated type.
    pub(crate) fn sample_registry() -> Registry {
        let mut registry = Registry::with_prefix("demo");
        let conns: Family<Node, Counter> = Family::default();
        conns
            .get_or_create(&Node {
                node: "l7 \"a\" # 1".into(),
            })
            .inc_by(3);
        registry.register("connections", "Connections accepted", conns);
        let bytes: Counter = Counter::default();
        bytes.inc_by(1024);
        registry.register_with_unit("sent", "Bytes sent", Unit::Bytes, bytes);
        let active: Gauge = Gauge::default();
        active.set(2);
        registry.register("active_connections", "Connections open now", active);
        let latency = Histogram::new([0.1, 1.0]);
        latency.observe(0.5);
        registry.register_with_unit("connect", "Connect time", Unit::Seconds, latency);
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version".to_owned(), "1.0".to_owned())]),
        );
        let traced: CounterWithExemplar<Vec<(String, String)>> = CounterWithExemplar::default();
        traced.inc_by(
            1,
            Some(vec![("trace_id".to_owned(), "abc".to_owned())]),
            None,
        );
        registry.register("traced", "Counted with an exemplar", traced);
        registry
    }

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let (content_type, text) = render(&sample_registry(), Some("text/plain")).unwrap();
        assert_eq!(content_type, PROMETHEUS_CONTENT_TYPE);
        assert_eq!(
            text,
            "\
# HELP demo_connections_total Connections accepted.
# TYPE demo_connections_total counter
demo_connections_total{node=\"l7 \\\"a\\\" # 1\"} 3
# HELP demo_sent_bytes_total Bytes sent.
# TYPE demo_sent_bytes_total counter
demo_sent_bytes_total 1024
# HELP demo_active_connections Connections open now.
# TYPE demo_active_connections gauge
demo_active_connections 2
# HELP demo_connect_seconds Connect time.
# TYPE demo_connect_seconds histogram
demo_connect_seconds_sum 0.5
demo_connect_seconds_count 1
demo_connect_seconds_bucket{le=\"0.1\"} 0
demo_connect_seconds_bucket{le=\"1.0\"} 1
demo_connect_seconds_bucket{le=\"+Inf\"} 1
# HELP demo_build_info Build information.
# TYPE demo_build_info gauge
demo_build_info{version=\"1.0\"} 1
# HELP demo_traced_total Counted with an exemplar.
# TYPE demo_traced_total counter
demo_traced_total 1
"
        );
    }

    #[test]
    fn openmetrics_on_request() {
        let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let (content_type, text) = render(&sample_registry(), Some(accept)).unwrap();
        assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
        assert!(text.contains("# TYPE demo_connections counter\n"), "{text}");
        assert!(text.contains("# UNIT demo_sent_bytes bytes\n"), "{text}");
        assert!(
            text.contains("demo_traced_total 1 # {trace_id=\"abc\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            render(&sample_registry(), None).unwrap().0,
            PROMETHEUS_CONTENT_TYPE
        );
    }

    #[test]
    fn exemplars_are_cut_outside_label_values_only() {
        assert_eq!(
            without_exemplar("a{x=\"# {\"} 1 # {t=\"1\"} 2"),
            "a{x=\"# {\"} 1"
        );
        assert_eq!(without_exemplar("a 1"), "a 1");
        assert_eq!(without_exemplar("a{x=\"\\\" # \"} 1"), "a{x=\"\\\" # \"} 1");
    }
}
