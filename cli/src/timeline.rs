//! The measured timeline of a drill (`gtm fail`, `gtm recover`): events at
//! offsets from the moment the failure was injected, some observed by
//! `gtm` itself, some read from the GSLB's own timestamps. Pure formatting
//! and time arithmetic.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One step of a drill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// What happened: `failure injected`, `first probe failure`, …
    pub label: String,
    /// When, in milliseconds after the start; `None` when not observed.
    pub offset_ms: Option<f64>,
    /// Who, what, where.
    pub detail: String,
}

impl Event {
    /// An event observed at `offset`.
    pub fn at(label: &str, offset: Duration, detail: impl Into<String>) -> Event {
        Event {
            label: label.to_owned(),
            offset_ms: Some(offset.as_secs_f64() * 1000.0),
            detail: detail.into(),
        }
    }

    /// An event at `offset_ms` (from a timestamp; may be negative with
    /// clock skew).
    pub fn at_ms(label: &str, offset_ms: f64, detail: impl Into<String>) -> Event {
        Event {
            label: label.to_owned(),
            offset_ms: Some(offset_ms),
            detail: detail.into(),
        }
    }

    /// An event that was not seen, and why.
    pub fn unseen(label: &str, why: impl Into<String>) -> Event {
        Event {
            label: label.to_owned(),
            offset_ms: None,
            detail: why.into(),
        }
    }
}

/// `+0 ms`, `+412 ms`, `+2.41 s`, `+61.0 s`; `—` when not observed.
pub fn format_offset(offset_ms: Option<f64>) -> String {
    let Some(ms) = offset_ms else {
        return "—".to_owned();
    };
    let sign = if ms < 0.0 { "-" } else { "+" };
    let ms = ms.abs();
    if ms < 1000.0 {
        format!("{sign}{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{sign}{:.2} s", ms / 1000.0)
    } else {
        format!("{sign}{:.1} s", ms / 1000.0)
    }
}

/// A duration as people read it: `850 ms`, `2.41 s`.
pub fn format_duration(duration: Duration) -> String {
    format_offset(Some(duration.as_secs_f64() * 1000.0))
        .trim_start_matches('+')
        .to_owned()
}

/// The timeline as aligned lines: offset, label, detail. Events are shown
/// in time order; unobserved ones last.
pub fn render(events: &[Event]) -> Vec<String> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| match (a.offset_ms, b.offset_ms) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let offsets: Vec<String> = sorted.iter().map(|e| format_offset(e.offset_ms)).collect();
    let width_offset = offsets.iter().map(|o| o.chars().count()).max().unwrap_or(0);
    let width_label = sorted
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0);
    sorted
        .iter()
        .zip(offsets)
        .map(|(event, offset)| {
            format!(
                "{offset:>width_offset$}  {:<width_label$}  {}",
                event.label, event.detail
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

/// Milliseconds from `base` to `at` (negative when `at` is earlier).
pub fn offset_ms(at: SystemTime, base: SystemTime) -> f64 {
    match at.duration_since(base) {
        Ok(after) => after.as_secs_f64() * 1000.0,
        Err(before) => -before.duration().as_secs_f64() * 1000.0,
    }
}

/// A time the daemons send as milliseconds since the Unix epoch.
pub fn epoch_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// Now, as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `time` as RFC 3339 (UTC).
pub fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_as_people_expect() {
        assert_eq!(format_offset(Some(0.2)), "+0 ms");
        assert_eq!(format_offset(Some(412.4)), "+412 ms");
        assert_eq!(format_offset(Some(2412.0)), "+2.41 s");
        assert_eq!(format_offset(Some(61_000.0)), "+61.0 s");
        assert_eq!(format_offset(Some(-15.0)), "-15 ms");
        assert_eq!(format_offset(None), "—");
        assert_eq!(format_duration(Duration::from_millis(3500)), "3.50 s");
    }

    #[test]
    fn the_timeline_is_sorted_and_aligned() {
        let events = vec![
            Event::at(
                "answered elsewhere",
                Duration::from_millis(2450),
                "127.0.2.1 (eu-west)",
            ),
            Event::unseen("region marked down", "no admin API"),
            Event::at(
                "failure injected",
                Duration::ZERO,
                "stopped us-east-l4 (SIGKILL)",
            ),
            Event::at_ms("first probe failure", 412.0, "ns1: connection refused"),
        ];
        assert_eq!(
            render(&events),
            [
                "  +0 ms  failure injected     stopped us-east-l4 (SIGKILL)",
                "+412 ms  first probe failure  ns1: connection refused",
                "+2.45 s  answered elsewhere   127.0.2.1 (eu-west)",
                "      —  region marked down   no admin API",
            ]
        );
    }

    #[test]
    fn gslb_timestamps_become_offsets() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = epoch_ms(1_700_000_000_412); // base + 412 ms
        assert!((offset_ms(at, base) - 412.0).abs() < 0.01);
        let later = epoch_ms(1_700_000_001_000); // base + 1 s
        assert!((offset_ms(later, base) - 1000.0).abs() < 0.01);
        assert!((offset_ms(base, later) + 1000.0).abs() < 0.01);
        assert_eq!(rfc3339(base), "2023-11-14T22:13:20Z");
    }
}
