//! Durations written with units (`"30s"`, `"5m"`, `"1h30m"`, `"250ms"`),
//! and their short form in messages.
//!
//! Every duration in the topology carries its unit, so that `ttl: 300` can
//! never be misread as minutes or milliseconds.

use std::time::Duration;

/// Parses a duration such as `"2s"`, `"500ms"`, `"1h30m"` or `"3d"`.
///
/// Units: `ms`, `s`, `m`, `h`, `d`, `w`. The error says what to write.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("is empty; write a duration such as \"30s\" or \"5m\"".into());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{trimmed:?} has no unit; write \"{trimmed}s\" (units: ms, s, m, h, d, w)"
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{trimmed:?} is not a duration; write a number then a unit, such as \"30s\" or \"1h30m\""
            ));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{trimmed:?} has a number too large"))?;
        let unit_millis: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "{trimmed:?} has a number without a unit; units are ms, s, m, h, d, w"
                ));
            }
            other => {
                return Err(format!(
                    "{trimmed:?} has unknown unit {other:?}; units are ms, s, m, h, d, w"
                ));
            }
        };
        let millis = value
            .checked_mul(unit_millis)
            .ok_or_else(|| format!("{trimmed:?} is too long"))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| format!("{trimmed:?} is too long"))?;
        rest = after;
    }
    Ok(total)
}

/// Largest TTL a record may carry (RFC 2181 §8: 2^31 - 1 seconds).
pub const MAX_TTL: u32 = i32::MAX as u32;

/// Parses a TTL: a duration in whole seconds, at most 2^31 - 1 seconds.
pub fn parse_ttl(text: &str) -> Result<u32, String> {
    let duration = parse_duration(text)?;
    if duration.subsec_nanos() != 0 {
        return Err(format!(
            "{text:?} is not a whole number of seconds; TTLs count seconds"
        ));
    }
    u32::try_from(duration.as_secs())
        .ok()
        .filter(|secs| *secs <= MAX_TTL)
        .ok_or_else(|| format!("{text:?} is longer than the largest TTL, 2147483647s (~68 years)"))
}

/// Short human duration for messages and logs: `1s`, `500ms`, `1.5s`,
/// `250us`. Not a topology spelling for every value (`1.5s` is not one).
pub fn fmt_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_owned()
    } else if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{}s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else if d >= Duration::from_millis(1) {
        format!("{}ms", (d.as_secs_f64() * 1e6).round() / 1000.0)
    } else {
        format!("{}us", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("3d").unwrap(), Duration::from_secs(259_200));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
    }

    #[test]
    fn rejects_with_a_suggestion() {
        assert!(
            parse_duration("300")
                .unwrap_err()
                .contains("write \"300s\"")
        );
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn ttls_are_whole_seconds_in_range() {
        assert_eq!(parse_ttl("1h").unwrap(), 3600);
        assert_eq!(parse_ttl("0s").unwrap(), 0);
        assert!(parse_ttl("1500ms").unwrap_err().contains("whole number"));
        assert!(parse_ttl("4000w").unwrap_err().contains("largest TTL"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(fmt_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(fmt_duration(Duration::from_micros(250)), "250us");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }
}
