//! What an address resolves to: [`Location`] and the [`LocationId`] that
//! names a location inside one database.

use std::fmt;

use crate::coordinates::Coordinates;
use crate::country::{self, Continent, CountryCode};

/// Where a range of addresses is, as far as the database knows.
///
/// At least one field is `Some` (ranges the database says nothing useful about
/// have no location at all). `coordinates` are the database's own for city
/// databases and the country centroid from the embedded table for country-level
/// ones; they are `None` when neither is known (e.g. the `EU` region code), and
/// callers should then fall back to `continent`.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Location {
    /// Country the addresses are located in.
    pub country: Option<CountryCode>,
    /// Continent, from the database or else from the country table.
    pub continent: Option<Continent>,
    /// Position: the database's, else the country's centroid.
    pub coordinates: Option<Coordinates>,
    /// English city name, for city databases that have one.
    pub city: Option<String>,
}

impl Location {
    /// A location known only by its country code, completed from the country
    /// table: continent and centroid if the table has them.
    pub fn from_country(code: CountryCode) -> Location {
        let info = country::country(code);
        Location {
            country: Some(code),
            continent: info.and_then(|i| i.continent),
            coordinates: info.and_then(|i| i.centroid),
            city: None,
        }
    }

    /// True when no field is set; such a location is stored as "no location".
    pub fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.continent.is_none()
            && self.coordinates.is_none()
            && self.city.is_none()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(city) = &self.city {
            parts.push(city.clone());
        }
        if let Some(c) = self.country {
            parts.push(c.to_string());
        }
        if let Some(c) = self.continent {
            parts.push(c.to_string());
        }
        if let Some(c) = self.coordinates {
            parts.push(format!("({c})"));
        }
        if parts.is_empty() {
            f.write_str("(nowhere)")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// Index of a distinct [`Location`] inside one [`GeoDb`](crate::GeoDb).
///
/// Ids are dense (`0..db.locations().len()`) and only meaningful for the
/// database that produced them: after a reload, ids from the old database must
/// not be used with the new one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LocationId(pub(crate) u32);

impl LocationId {
    /// The index into [`GeoDb::locations`](crate::GeoDb::locations).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_country_fills_continent_and_centroid_from_the_table() {
        let de = Location::from_country("DE".parse().unwrap());
        assert_eq!(de.continent, Some(Continent::Europe));
        assert!(de.coordinates.is_some());
        let unknown = Location::from_country("QQ".parse().unwrap());
        assert_eq!(
            unknown.country.map(|c| c.to_string()).as_deref(),
            Some("QQ")
        );
        assert_eq!((unknown.continent, unknown.coordinates), (None, None));
        assert!(!unknown.is_empty());
        assert!(Location::default().is_empty());
    }
}
