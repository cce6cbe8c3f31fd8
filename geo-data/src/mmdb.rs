//! Compiling a MaxMind DB file (GeoIP2/GeoLite2, DB-IP, ip-location-db) into
//! merged range tables: walk every network once, turn each distinct record into
//! a [`Location`], intern it, and hand the ranges to the segment builders.
//!
//! Two record layouts are understood, detected from the first record that has
//! location fields:
//! - nested (GeoIP2, GeoLite2, DB-IP's own MMDBs): `country.iso_code`,
//!   `continent.code`, `location.latitude/longitude`, `city.names.en`;
//! - flat (ip-location-db): `country_code`, `latitude`, `longitude`, `city`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::{LookupResult, Reader, WithinOptions};
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::coordinates::Coordinates;
use crate::country::{Continent, CountryCode};
use crate::error::GeoError;
use crate::location::Location;
use crate::prefix::{Family, host_mask};
use crate::table::SegmentBuilder;

/// What [`compile`] produces.
pub(crate) struct Compiled {
    pub(crate) database_type: String,
    pub(crate) build_epoch: u64,
    pub(crate) locations: Vec<Location>,
    pub(crate) v4: Vec<(u128, Option<u32>)>,
    pub(crate) v6: Vec<(u128, Option<u32>)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Nested,
    Flat,
}

/// IPv6 ranges that embed IPv4 and are answered from the IPv4 table instead:
/// `::/96` (where MMDB files keep IPv4) and `::ffff:0:0/96` (IPv4-mapped).
const V4_COMPATIBLE: (u128, u128) = (0, 0xFFFF_FFFF);
const V4_MAPPED: (u128, u128) = (0xFFFF_0000_0000, 0xFFFF_FFFF_FFFF);

/// Walks the database in `buf` (read from `path`) and compiles it.
pub(crate) fn compile(buf: Vec<u8>, path: &Path) -> Result<Compiled, GeoError> {
    let not_mmdb = |error| GeoError::NotMmdb {
        path: path.to_owned(),
        error,
    };
    let reader = Reader::from_source(buf).map_err(not_mmdb)?;
    let metadata = reader.metadata();
    let mut walk = Walk {
        path,
        layout: None,
        keys_seen: BTreeSet::new(),
        interner: Interner::default(),
    };
    let mut by_offset: HashMap<usize, Option<u32>> = HashMap::new();
    let mut v4 = SegmentBuilder::new(Family::V4);
    let mut v6 = SegmentBuilder::new(Family::V6);

    // Default options skip the IPv4 aliases (::ffff:0:0/96, 2002::/16) so each
    // IPv4 network is seen once, as an IPv4 network.
    for item in reader
        .networks(WithinOptions::default())
        .map_err(not_mmdb)?
    {
        let item = item.map_err(not_mmdb)?;
        let Some(offset) = item.offset() else {
            continue;
        };
        let network = item.network().map_err(not_mmdb)?;
        let id = match by_offset.get(&offset) {
            Some(&id) => id,
            None => {
                let id = walk.location_id(&item, &network)?;
                by_offset.insert(offset, id);
                id
            }
        };
        let Some(id) = id else { continue };
        let ip = network.network();
        let len = network.prefix();
        match ip {
            IpAddr::V4(a) => {
                let first = u128::from(u32::from(a));
                v4.push(first, first | host_mask(32, len), id);
            }
            IpAddr::V6(a) => {
                let first = u128::from(a);
                let last = first | host_mask(128, len);
                // Only without an IPv4 subtree can an IPv6 record cover ::/96;
                // IPv4 lookups then land on it, so the IPv4 table gets it too.
                if first <= V4_COMPATIBLE.1 {
                    v4.push(first, last.min(V4_COMPATIBLE.1), id);
                }
                for (f, l) in subtract(first, last, &[V4_COMPATIBLE, V4_MAPPED]) {
                    v6.push(f, l, id);
                }
            }
        }
    }

    if walk.layout.is_none() {
        let keys = if walk.keys_seen.is_empty() {
            "(none: the database has no records)".to_owned()
        } else {
            format!(
                "[{}]",
                walk.keys_seen
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(GeoError::UnknownLayout {
            path: path.to_owned(),
            database_type: metadata.database_type.clone(),
            keys,
        });
    }
    let corrupt = |family: &str, detail: String| GeoError::BadRecord {
        path: path.to_owned(),
        network: format!("the {family} search tree"),
        detail,
    };
    Ok(Compiled {
        database_type: metadata.database_type.clone(),
        build_epoch: metadata.build_epoch,
        locations: walk.interner.locations,
        v4: v4.finish().map_err(|e| corrupt("IPv4", e))?,
        v6: v6.finish().map_err(|e| corrupt("IPv6", e))?,
    })
}

/// `[first, last]` minus the sorted, disjoint `holes`.
fn subtract(first: u128, last: u128, holes: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut next = Some(first);
    for &(hf, hl) in holes {
        let Some(n) = next else { break };
        if hl < n || hf > last {
            continue;
        }
        if hf > n {
            out.push((n, hf - 1));
        }
        next = hl.checked_add(1);
    }
    if let Some(n) = next.filter(|&n| n <= last) {
        out.push((n, last));
    }
    out
}

struct Walk<'p> {
    path: &'p Path,
    layout: Option<Layout>,
    /// Keys of records seen before the layout was known, for the error message.
    keys_seen: BTreeSet<String>,
    interner: Interner,
}

impl Walk<'_> {
    fn location_id<S: AsRef<[u8]>>(
        &mut self,
        item: &LookupResult<'_, S>,
        network: &impl fmt::Display,
    ) -> Result<Option<u32>, GeoError> {
        let bad = |detail: String| GeoError::BadRecord {
            path: self.path.to_owned(),
            network: network.to_string(),
            detail,
        };
        let layout = match self.layout {
            Some(layout) => layout,
            None => {
                let keys: BTreeMap<String, IgnoredAny> = item
                    .decode()
                    .map_err(|e| bad(format!("expected a map of fields: {e}")))?
                    .unwrap_or_default();
                match detect(keys.keys().map(String::as_str)) {
                    Some(layout) => {
                        self.layout = Some(layout);
                        layout
                    }
                    None => {
                        // No location keys in either layout: this record has no location.
                        if self.keys_seen.len() < 20 {
                            self.keys_seen.extend(keys.into_keys());
                        }
                        return Ok(None);
                    }
                }
            }
        };
        let location = match layout {
            Layout::Nested => {
                let record: NestedRecord<'_> = item
                    .decode()
                    .map_err(|e| bad(e.to_string()))?
                    .unwrap_or_default();
                record.location().map_err(bad)?
            }
            Layout::Flat => {
                let record: FlatRecord<'_> = item
                    .decode()
                    .map_err(|e| bad(e.to_string()))?
                    .unwrap_or_default();
                record.location().map_err(bad)?
            }
        };
        if location.is_empty() {
            return Ok(None);
        }
        self.interner.intern(location).map(Some).map_err(bad)
    }
}

fn detect<'a>(mut keys: impl Iterator<Item = &'a str>) -> Option<Layout> {
    keys.find_map(|k| match k {
        "country_code" | "latitude" | "longitude" => Some(Layout::Flat),
        "country" | "continent" | "location" | "registered_country" => Some(Layout::Nested),
        _ => None,
    })
}

/// Distinct locations, each stored once and named by its index.
#[derive(Default)]
struct Interner {
    ids: HashMap<LocationKey, u32>,
    locations: Vec<Location>,
}

/// `Location` with its floats as bits, so it can be hashed.
#[derive(PartialEq, Eq, Hash)]
struct LocationKey(
    Option<CountryCode>,
    Option<Continent>,
    Option<(u64, u64)>,
    Option<String>,
);

impl Interner {
    fn intern(&mut self, location: Location) -> Result<u32, String> {
        let key = LocationKey(
            location.country,
            location.continent,
            location
                .coordinates
                .map(|c| (c.lat.to_bits(), c.lon.to_bits())),
            location.city.clone(),
        );
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        // u32::MAX is the "no location" marker of 4-byte id columns.
        let id = u32::try_from(self.locations.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .ok_or_else(|| "more than 4 billion distinct locations".to_owned())?;
        self.ids.insert(key, id);
        self.locations.push(location);
        Ok(id)
    }
}

/// A country code from a record; `ZZ` ("unknown") means no country.
fn parse_country(code: &str) -> Result<Option<CountryCode>, String> {
    let code: CountryCode = code.parse().map_err(|e| format!("{e}"))?;
    Ok((code.as_str() != "ZZ").then_some(code))
}

/// Builds a location from record fields, completing it from the country table.
fn complete(
    country: Option<CountryCode>,
    continent: Option<Continent>,
    coordinates: Option<Coordinates>,
    city: Option<&str>,
) -> Location {
    let from_table = country.map(Location::from_country).unwrap_or_default();
    Location {
        country,
        continent: continent.or(from_table.continent),
        coordinates: coordinates.or(from_table.coordinates),
        city: city.filter(|c| !c.is_empty()).map(str::to_owned),
    }
}

#[derive(Deserialize, Default)]
struct NestedRecord<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    continent: Option<ContinentCode<'a>>,
    #[serde(default)]
    location: Option<NestedLocation>,
    #[serde(borrow, default)]
    city: Option<NestedCity<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct ContinentCode<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct NestedLocation {
    #[serde(default, deserialize_with = "lenient_f64")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct NestedCity<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

impl NestedRecord<'_> {
    fn location(&self) -> Result<Location, String> {
        let country = match self.country.as_ref().and_then(|c| c.iso_code) {
            Some(code) => parse_country(code).map_err(|e| format!("country.iso_code: {e}"))?,
            None => None,
        };
        let continent = match self.continent.as_ref().and_then(|c| c.code) {
            Some(code) => Some(code.parse().map_err(|e| format!("continent.code: {e}"))?),
            None => None,
        };
        let coordinates = self
            .location
            .as_ref()
            .and_then(|l| Coordinates::checked(l.latitude?, l.longitude?));
        let city = self.city.as_ref().and_then(|c| c.names.as_ref()?.en);
        Ok(complete(country, continent, coordinates, city))
    }
}

#[derive(Deserialize, Default)]
struct FlatRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default, deserialize_with = "lenient_f64")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    longitude: Option<f64>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
}

impl FlatRecord<'_> {
    fn location(&self) -> Result<Location, String> {
        let country = match self.country_code.filter(|c| !c.is_empty()) {
            Some(code) => parse_country(code).map_err(|e| format!("country_code: {e}"))?,
            None => None,
        };
        let coordinates = Coordinates::checked(
            self.latitude.unwrap_or(f64::NAN),
            self.longitude.unwrap_or(f64::NAN),
        );
        Ok(complete(country, None, coordinates, self.city))
    }
}

/// Accepts a coordinate stored as any numeric type or as a numeric string
/// (flat files written from CSV sometimes keep strings); empty means absent.
fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct Lenient;

    impl<'de> Visitor<'de> for Lenient {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(Lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_cuts_out_the_ipv4_embeddings() {
        let holes = [V4_COMPATIBLE, V4_MAPPED];
        assert_eq!(
            subtract(0, u128::MAX, &holes),
            vec![
                (0x1_0000_0000, 0xFFFF_0000_0000 - 1),
                (0x1_0000_0000_0000, u128::MAX)
            ]
        );
        assert_eq!(subtract(0, 0xFF, &holes), vec![]);
        assert_eq!(
            subtract(1 << 120, 1 << 121, &holes),
            vec![(1 << 120, 1 << 121)]
        );
        assert_eq!(
            subtract(0xFFFF_FFFF, 0x1_0000_0001, &holes),
            vec![(0x1_0000_0000, 0x1_0000_0001)]
        );
    }

    #[test]
    fn layout_detection_uses_location_keys_only() {
        assert_eq!(detect(["traits"].into_iter()), None);
        assert_eq!(
            detect(["city", "country_code"].into_iter()),
            Some(Layout::Flat)
        );
        assert_eq!(
            detect(["continent", "traits"].into_iter()),
            Some(Layout::Nested)
        );
        assert_eq!(detect(["autonomous_system_number"].into_iter()), None);
    }

    #[test]
    fn zz_means_no_country_and_bad_codes_are_errors() {
        assert_eq!(parse_country("ZZ").unwrap(), None);
        assert_eq!(
            parse_country("fr")
                .unwrap()
                .map(|c| c.to_string())
                .as_deref(),
            Some("FR")
        );
        assert!(parse_country("FRA").unwrap_err().contains("two letters"));
    }

    #[test]
    fn records_fall_back_to_the_country_table() {
        let record = FlatRecord {
            country_code: Some("DE"),
            ..FlatRecord::default()
        };
        let loc = record.location().unwrap();
        assert_eq!(loc.continent, Some(Continent::Europe));
        assert_eq!(
            loc.coordinates,
            crate::country("DE".parse().unwrap()).and_then(|c| c.centroid)
        );
        let record = FlatRecord {
            country_code: Some("DE"),
            latitude: Some(52.52),
            longitude: Some(13.405),
            city: Some("Berlin"),
        };
        let loc = record.location().unwrap();
        assert_eq!(
            loc.coordinates,
            Some(Coordinates {
                lat: 52.52,
                lon: 13.405
            })
        );
        assert_eq!(loc.city.as_deref(), Some("Berlin"));
        let record = FlatRecord {
            country_code: Some("ZZ"),
            ..FlatRecord::default()
        };
        assert!(record.location().unwrap().is_empty());
    }

    #[test]
    fn interner_dedupes() {
        let mut i = Interner::default();
        let a = Location::from_country("FR".parse().unwrap());
        let b = Location::from_country("DE".parse().unwrap());
        assert_eq!(i.intern(a.clone()), Ok(0));
        assert_eq!(i.intern(b), Ok(1));
        assert_eq!(i.intern(a), Ok(0));
        assert_eq!(i.locations.len(), 2);
    }
}
