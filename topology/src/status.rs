//! Sets of HTTP status codes as the topology writes them (`"200,204,300-399"`):
//! the one grammar for a health check's `expect` and a pool's retry
//! `statuses`, and the [`StatusSet`] both become.

use std::fmt;
use std::str::FromStr;

/// A set of HTTP status codes, written `200,204,300-399`.
///
/// Always non-empty and within 100-599 once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    /// Inclusive ranges, sorted and merged.
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusSet {
    /// `200-399`: success and redirects, like HAProxy's default `http-check`.
    fn default() -> Self {
        Self {
            ranges: vec![(200, 399)],
        }
    }
}

impl StatusSet {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The merged inclusive ranges, ascending.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

impl fmt::Display for StatusSet {
    /// The canonical form, which [`parse_status_set`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for StatusSet {
    type Err = StatusSetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_status_set(s)
    }
}

/// Parses a comma-separated list of status codes and inclusive ranges, e.g.
/// `"200,204,300-399"`. Whitespace around items and bounds is ignored;
/// overlapping and adjacent items are merged (matching is unaffected). Every
/// code must be within 100-599. A list with nothing in it is
/// [`StatusSetError::EmptyStatusSet`]; an empty item beside others (`"200,"`,
/// a stray comma) is [`StatusSetError::StatusSyntax`], since it usually
/// means a code was lost.
pub fn parse_status_set(input: &str) -> Result<StatusSet, StatusSetError> {
    if input.split(',').all(|item| item.trim().is_empty()) {
        return Err(StatusSetError::EmptyStatusSet);
    }
    let mut ranges = Vec::new();
    for item in input.split(',').map(str::trim) {
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (parse_code(lo.trim(), input)?, parse_code(hi.trim(), input)?),
            None => {
                let code = parse_code(item, input)?;
                (code, code)
            }
        };
        if lo > hi {
            return Err(StatusSetError::StatusRangeReversed {
                lo,
                hi,
                input: input.to_owned(),
            });
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(StatusSet { ranges: merged })
}

fn parse_code(token: &str, input: &str) -> Result<u16, StatusSetError> {
    // Digits only: `u32::from_str` would also take a leading `+`.
    let code: u32 = token
        .parse()
        .ok()
        .filter(|_| token.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| StatusSetError::StatusSyntax {
            token: token.to_owned(),
            input: input.to_owned(),
        })?;
    match u16::try_from(code) {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(StatusSetError::StatusOutOfRange {
            code,
            input: input.to_owned(),
        }),
    }
}

/// Why a status list was refused. Each message names the bad item, the
/// whole list and what to write instead; the topology loader prefixes the
/// field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusSetError {
    /// A status code outside 100-599.
    #[error(
        "\"{code}\" is not an HTTP status (100-599); write codes between 100 and 599 in \"{input}\""
    )]
    StatusOutOfRange {
        /// The offending code.
        code: u32,
        /// The whole list as written.
        input: String,
    },
    /// A status list item that is not a number or `lo-hi` range.
    #[error(
        "\"{token}\" in status list \"{input}\" is not a status code; write codes and ranges like \"200,204,300-399\""
    )]
    StatusSyntax {
        /// The offending item.
        token: String,
        /// The whole list as written.
        input: String,
    },
    /// A range whose bounds are swapped.
    #[error("status range {lo}-{hi} in \"{input}\" runs backwards; write {hi}-{lo}")]
    StatusRangeReversed {
        /// Lower bound as written.
        lo: u16,
        /// Upper bound as written.
        hi: u16,
        /// The whole list as written.
        input: String,
    },
    /// An empty status list.
    #[error("status list is empty; list at least one code, e.g. \"200-399\"")]
    EmptyStatusSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        assert_eq!(parse_status_set("200").unwrap().ranges(), [(200, 200)]);
        assert_eq!(
            parse_status_set("200-299, 302").unwrap().ranges(),
            [(200, 299), (302, 302)]
        );
        assert!(
            parse_status_set("99")
                .unwrap_err()
                .to_string()
                .contains("100-599")
        );
        assert!(
            parse_status_set("300-200")
                .unwrap_err()
                .to_string()
                .contains("backwards")
        );
    }

    #[test]
    fn status_set_parses_codes_and_ranges() {
        let s = parse_status_set("200, 204,300-399").unwrap();
        assert!(s.contains(200) && s.contains(204) && s.contains(300) && s.contains(399));
        assert!(!s.contains(201) && !s.contains(400));
        assert_eq!(s.to_string(), "200,204,300-399");
        // Merging of overlaps and adjacency.
        assert_eq!(
            parse_status_set("200-250,251,240-260").unwrap().to_string(),
            "200-260"
        );
        assert_eq!("503".parse::<StatusSet>().unwrap().to_string(), "503");
        assert_eq!(StatusSet::default().to_string(), "200-399");
    }

    #[test]
    fn status_set_errors_say_what_to_write() {
        let e = parse_status_set("200,99").unwrap_err();
        assert!(matches!(
            e,
            StatusSetError::StatusOutOfRange { code: 99, .. }
        ));
        assert!(e.to_string().contains("between 100 and 599"), "{e}");
        assert!(matches!(
            parse_status_set("600").unwrap_err(),
            StatusSetError::StatusOutOfRange { code: 600, .. }
        ));
        assert!(matches!(
            parse_status_set("70000").unwrap_err(),
            StatusSetError::StatusOutOfRange { code: 70000, .. }
        ));
        assert!(matches!(
            parse_status_set("2xx").unwrap_err(),
            StatusSetError::StatusSyntax { .. }
        ));
        assert!(matches!(
            parse_status_set("+200").unwrap_err(),
            StatusSetError::StatusSyntax { .. }
        ));
        let e = parse_status_set("399-300").unwrap_err();
        assert!(e.to_string().contains("write 300-399"), "{e}");
        assert!(matches!(
            parse_status_set(" , ").unwrap_err(),
            StatusSetError::EmptyStatusSet
        ));
    }

    #[test]
    fn a_stray_comma_is_refused() {
        assert!(matches!(
            parse_status_set("200,").unwrap_err(),
            StatusSetError::StatusSyntax { ref token, .. } if token.is_empty()
        ));
        assert!(matches!(
            parse_status_set("").unwrap_err(),
            StatusSetError::EmptyStatusSet
        ));
    }
}
