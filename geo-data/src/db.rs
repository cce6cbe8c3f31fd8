//! [`GeoDb`]: an opened, compiled database answering `lookup(ip)` with a
//! location and the widest prefix over which that answer holds.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::compiled;
use crate::error::GeoError;
use crate::location::{Location, LocationId};
use crate::mmdb;
use crate::prefix::{Family, Prefix, addr_value};
use crate::table::{FamilyTable, Range, id_width_for};

/// The embedded default database, compiled from DB-IP's IP to Country Lite
/// (CC BY 4.0) by `scripts/regenerate.sh`; see `data/PROVENANCE.md`.
static EMBEDDED: &[u8] = include_bytes!("../data/dbip-country-lite.ranges");

/// An IP → location database, compiled into sorted ranges at open time.
///
/// Immutable once built: share it behind an `Arc` (it is `Send + Sync`), and
/// reload by building a new one (see [`WatchedGeoDb`](crate::WatchedGeoDb)).
pub struct GeoDb {
    description: String,
    database_type: String,
    build_epoch: u64,
    locations: Vec<Location>,
    v4: FamilyTable,
    v6: FamilyTable,
}

/// The answer for one address.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// The widest CIDR block containing the address over which the answer is
    /// the same: every address in it has this `location` (or, likewise, none),
    /// and the block one bit wider does not. Canonical (host bits zero). IPv4
    /// and IPv4-mapped IPv6 addresses get IPv4 blocks. Suitable as the EDNS
    /// Client Subnet scope.
    pub network: Prefix,
    /// Where the address is, if the database knows.
    pub location: Option<(LocationId, &'a Location)>,
}

/// Size figures for a [`GeoDb`], for logs and metrics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GeoDbStats {
    /// Distinct locations.
    pub locations: usize,
    /// Merged IPv4 ranges (including ranges with no location).
    pub v4_ranges: usize,
    /// Merged IPv6 ranges (including ranges with no location).
    pub v6_ranges: usize,
    /// Approximate heap bytes held; the embedded database's tables live in the
    /// binary's read-only data and count as 0.
    pub heap_bytes: usize,
}

impl GeoDb {
    /// The database built into the binary: DB-IP IP to Country Lite, with
    /// country centroids as coordinates. Needs no file and cannot fail.
    ///
    /// Cheap: the tables are used in place, so this only decodes a few hundred
    /// location records (well under a millisecond, even in debug builds).
    pub fn embedded() -> GeoDb {
        // The embedded bytes are fixed at build time and fully validated by the
        // `embedded_database_is_valid` test, so failure here is a build defect.
        match GeoDb::from_compiled(EMBEDDED, Path::new("<embedded>"), Cow::Borrowed, false) {
            Ok(db) => {
                let description = format!("embedded {}", db.description);
                db.with_description(description)
            }
            Err(e) => panic!("the embedded geo database is damaged (a build defect): {e}"),
        }
    }

    /// Opens a database file: a GeoIP2/GeoLite2 City or Country MMDB, a DB-IP
    /// or ip-location-db MMDB (country or city flavour), or a file written by
    /// [`write_compiled`](Self::write_compiled). The layout is detected from
    /// the file.
    ///
    /// The whole file is read and compiled into ranges; the file itself is not
    /// kept open. Compiling walks every network, so it takes time proportional
    /// to the database (DB-IP Country Lite, 1.4 million networks: 0.25 s in a
    /// release build, 2.3 s in a debug build); do it off the hot path.
    /// Compiled files load without that walk.
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let bytes = std::fs::read(path).map_err(|error| GeoError::Io {
            path: path.to_owned(),
            error,
        })?;
        if compiled::is_compiled(&bytes) {
            let db = GeoDb::from_compiled(&bytes, path, |b| Cow::Owned(b.to_vec()), true)?;
            let description = format!("{} (compiled from {})", path.display(), db.description);
            return Ok(db.with_description(description));
        }
        let compiled = mmdb::compile(bytes, path)?;
        let id_width = id_width_for(compiled.locations.len());
        Ok(GeoDb {
            description: format!("{} ({})", path.display(), compiled.database_type),
            database_type: compiled.database_type,
            build_epoch: compiled.build_epoch,
            v4: FamilyTable::from_segments(Family::V4, &compiled.v4, id_width),
            v6: FamilyTable::from_segments(Family::V6, &compiled.v6, id_width),
            locations: compiled.locations,
        })
    }

    fn from_compiled<'a>(
        bytes: &'a [u8],
        path: &Path,
        own: impl Fn(&'a [u8]) -> Cow<'static, [u8]>,
        full_check: bool,
    ) -> Result<GeoDb, GeoError> {
        let damaged = |detail: String| GeoError::Compiled {
            path: path.to_owned(),
            detail,
        };
        let parts = compiled::parse(bytes).map_err(damaged)?;
        let [v4, v6] = parts.tables(own, full_check).map_err(damaged)?;
        Ok(GeoDb {
            description: parts.description,
            database_type: parts.database_type,
            build_epoch: parts.build_epoch,
            locations: parts.locations,
            v4,
            v6,
        })
    }

    /// Writes the compiled tables in the format [`open`](Self::open) accepts,
    /// so a large database can be compiled once and loaded quickly. The
    /// embedded database is produced this way.
    pub fn write_compiled(&self, out: &mut dyn Write) -> io::Result<()> {
        compiled::write(
            out,
            &self.description,
            &self.database_type,
            self.build_epoch,
            &self.locations,
            [&self.v4, &self.v6],
        )
    }

    /// Replaces the [`description`](Self::description).
    pub fn with_description(mut self, description: impl Into<String>) -> GeoDb {
        self.description = description.into();
        self
    }

    /// Looks an address up. Never fails: addresses the database does not cover
    /// get `location: None` and the widest block of such addresses around them.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
    /// Other IPv6 addresses embedding IPv4 (`::a.b.c.d`) have no location.
    pub fn lookup(&self, ip: IpAddr) -> Lookup<'_> {
        let ip = ip.to_canonical();
        let table = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        let (network, id) = table.lookup(addr_value(ip));
        Lookup {
            network,
            location: id.and_then(|id| Some((id, self.locations.get(id.index())?))),
        }
    }

    /// The location an id names.
    ///
    /// # Panics
    /// If `id` did not come from this database (ids are indexes; after a
    /// reload use the new database's ids). Use [`locations`](Self::locations)
    /// with `get` for a non-panicking form.
    pub fn location(&self, id: LocationId) -> &Location {
        &self.locations[id.index()]
    }

    /// Every distinct location, indexed by [`LocationId::index`].
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// Human-readable origin, e.g. `embedded DB-IP Country Lite (2026-06, CC BY 4.0)`
    /// or `/var/lib/geoip/GeoLite2-City.mmdb (GeoLite2-City)`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The source database's `database_type` metadata, e.g. `GeoIP2-City`.
    pub fn database_type(&self) -> &str {
        &self.database_type
    }

    /// When the source database was built, per its metadata.
    pub fn build_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.build_epoch)
    }

    /// Every compiled range: IPv4 ranges in address order, then IPv6 ones.
    /// Each family's ranges cover its whole address space without overlap and
    /// neighbours differ in location, so a server can compile its own decision
    /// table from them. IPv6 ranges inside `::/96` and `::ffff:0:0/96` have no
    /// location (those addresses are answered from the IPv4 ranges, or not at
    /// all; see [`lookup`](Self::lookup)).
    pub fn ranges(&self) -> impl Iterator<Item = Range> + '_ {
        let v4 = (0..self.v4.len()).map(|i| self.v4.range(i));
        let v6 = (0..self.v6.len()).map(|i| self.v6.range(i));
        v4.chain(v6)
    }

    /// Counts and memory, for logging what was loaded.
    pub fn stats(&self) -> GeoDbStats {
        let locations_heap: usize = self.locations.capacity() * size_of::<Location>()
            + self
                .locations
                .iter()
                .filter_map(|l| l.city.as_ref())
                .map(String::capacity)
                .sum::<usize>();
        GeoDbStats {
            locations: self.locations.len(),
            v4_ranges: self.v4.len(),
            v6_ranges: self.v6.len(),
            heap_bytes: locations_heap + self.v4.heap_bytes() + self.v6.heap_bytes(),
        }
    }

    /// Checks every table entry; the embedded database skips this at startup.
    #[cfg(test)]
    pub(crate) fn check(&self) -> Result<(), String> {
        self.v4.check(self.locations.len())?;
        self.v6.check(self.locations.len())
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("description", &self.description)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_database_is_valid() {
        let parts = compiled::parse(EMBEDDED).unwrap();
        parts.tables(Cow::Borrowed, true).unwrap();
        let db = GeoDb::embedded();
        db.check().unwrap();
        assert!(
            db.description()
                .starts_with("embedded DB-IP Country Lite ("),
            "{}",
            db.description()
        );
        assert_eq!(
            db.stats().heap_bytes,
            db.stats().locations * size_of::<Location>()
        );
    }

    #[test]
    fn embedded_round_trips_through_the_compiled_format() {
        let db = GeoDb::embedded();
        let mut out = Vec::new();
        db.write_compiled(&mut out).unwrap();
        // Only the description differs ("embedded " prefix).
        let parts = compiled::parse(&out).unwrap();
        assert_eq!(parts.description, db.description());
        assert_eq!(out.len(), EMBEDDED.len() + "embedded ".len());
        assert_eq!(out[out.len() - 1000..], EMBEDDED[EMBEDDED.len() - 1000..]);
    }

    #[test]
    fn mapped_addresses_use_the_ipv4_table() {
        let db = GeoDb::embedded();
        let v4 = db.lookup("8.8.8.8".parse().unwrap());
        let mapped = db.lookup("::ffff:8.8.8.8".parse().unwrap());
        assert_eq!(v4.network, mapped.network);
        assert_eq!(v4.location.map(|l| l.0), mapped.location.map(|l| l.0));
        assert_eq!(v4.network.family(), Family::V4);
        let compat = db.lookup("::8.8.8.8".parse().unwrap());
        assert!(compat.location.is_none());
    }
}
