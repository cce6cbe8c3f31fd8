//! IP address → location for the GSLB: which country, continent and point on
//! the globe a client address is at, and the widest prefix over which that
//! answer holds (the EDNS Client Subnet scope).
//!
//! ```
//! use geo_data::GeoDb;
//!
//! let db = GeoDb::embedded();
//! let answer = db.lookup("8.8.8.8".parse().unwrap());
//! let (_, location) = answer.location.expect("8.8.8.8 is in the database");
//! println!("{} is in {location}; same answer for all of {}", "8.8.8.8", answer.network);
//! ```
//!
//! Databases:
//! - [`GeoDb::embedded`]: DB-IP IP to Country Lite (CC BY 4.0, attribution in
//!   the root `NOTICE`), built in, with country centroids as coordinates.
//! - [`GeoDb::open`]: GeoIP2/GeoLite2 City or Country MMDBs, DB-IP and
//!   ip-location-db MMDBs, or a file written by [`GeoDb::write_compiled`].
//! - [`WatchedGeoDb`]: one of those, reopened when its file changes.
//!
//! Every database is compiled into sorted, merged address ranges per family,
//! each pointing at an interned [`Location`]; a lookup is a binary search.
//!
//! # Layout
//! - `country`: [`CountryCode`], [`Continent`] and the embedded country table ([`country`]).
//! - `coordinates`: [`Coordinates`].
//! - `location`: [`Location`], [`LocationId`].
//! - `prefix`: [`Prefix`], [`Family`].
//! - `table`: the compiled range tables and [`Range`].
//! - `mmdb`: compiling MaxMind DB files (layout detection, record decoding).
//! - `compiled`: the compiled range file format (the embedded database is one).
//! - `db`: [`GeoDb`] and [`Lookup`].
//! - `watch`: [`WatchedGeoDb`].
//! - [`samples`]: well-known client networks per continent.
//! - `error`: [`GeoError`], [`ParseError`].
//!
//! Data files and their provenance live in `data/` (`data/PROVENANCE.md`);
//! `scripts/regenerate.sh` rebuilds them.

mod compiled;
mod coordinates;
mod country;
mod db;
mod error;
mod location;
mod mmdb;
mod prefix;
pub mod samples;
mod table;
mod watch;

pub use coordinates::Coordinates;
pub use country::{Continent, CountryCode, CountryInfo, countries, country};
pub use db::{GeoDb, GeoDbStats, Lookup};
pub use error::{GeoError, ParseError};
pub use location::{Location, LocationId};
pub use prefix::{Family, Prefix};
pub use table::Range;
pub use watch::{Refresh, WatchedGeoDb};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_types_are_send_and_sync() {
        assert_send_sync::<GeoDb>();
        assert_send_sync::<WatchedGeoDb>();
        assert_send_sync::<Lookup<'static>>();
    }
}
