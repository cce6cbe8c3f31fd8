//! Errors: [`GeoError`] for opening databases, [`ParseError`] for the small
//! value types. Every message names the file or value and what was expected.

use std::io;
use std::path::PathBuf;

/// Why a database could not be opened. The old database stays in service when
/// a reload fails (see [`WatchedGeoDb`](crate::WatchedGeoDb)).
///
/// Each message is complete on its own, underlying cause included, so causes
/// are not also chained through `Error::source` (which would print them twice
/// with `{:#}`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The file could not be read at all.
    #[error("cannot read geo database {}: {error}; check the path and its permissions", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: io::Error,
    },

    /// The file is not a MaxMind DB, or its MaxMind DB structure is broken.
    #[error(
        "{} is not a readable MaxMind DB (.mmdb) file: {error}; expected a GeoIP2/GeoLite2 \
         City or Country database, a DB-IP or ip-location-db .mmdb, or a file written by \
         GeoDb::write_compiled",
        path.display()
    )]
    NotMmdb {
        /// The file.
        path: PathBuf,
        /// What the MaxMind DB reader said.
        error: maxminddb::MaxMindDbError,
    },

    /// A valid MaxMind DB whose records carry no location fields we know.
    #[error(
        "{} ({database_type}) has no location data in a layout geo-data understands: \
         its records have the keys {keys}; expected GeoIP2-style `country.iso_code` / \
         `continent.code` / `location.latitude` (GeoIP2, GeoLite2, DB-IP) or flat \
         `country_code` / `latitude` / `longitude` (ip-location-db). Use a City or \
         Country database, not e.g. an ASN or ISP one",
        path.display()
    )]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// The database's `database_type` metadata.
        database_type: String,
        /// Keys seen in its records, e.g. `[autonomous_system_number]`.
        keys: String,
    },

    /// A record could be read but holds a value of the wrong shape.
    #[error("{}: record for {network}: {detail}; the database is damaged or not a location database", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The network the record belongs to.
        network: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A compiled range file (ours, see [`GeoDb::write_compiled`](crate::GeoDb::write_compiled))
    /// is truncated or inconsistent.
    #[error("{} is a damaged compiled geo database: {detail}; regenerate it from the source .mmdb", path.display())]
    Compiled {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

/// A malformed [`CountryCode`](crate::CountryCode), [`Continent`](crate::Continent)
/// or [`Prefix`](crate::Prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not two ASCII letters.
    #[error("{0:?} is not a country code: write two letters (ISO 3166-1 alpha-2), e.g. \"DE\"")]
    CountryCode(String),
    /// Not one of the seven continent codes.
    #[error("{0:?} is not a continent code: write one of AF AN AS EU NA OC SA")]
    Continent(String),
    /// Not `address/length` with zero host bits.
    #[error(
        "{0:?} is not a CIDR prefix: write address/length with the host bits zero, e.g. \"192.0.2.0/24\""
    )]
    Prefix(String),
    /// Length longer than the address.
    #[error("prefix length {len} is too long: it must be at most {max} for this address family")]
    PrefixLength {
        /// The length given.
        len: u8,
        /// 32 or 128.
        max: u8,
    },
}
