//! The compiled range file: a [`GeoDb`](crate::GeoDb)'s tables written out so
//! they can be loaded without walking an MMDB. The embedded default database is
//! one of these; `GeoDb::open` also accepts them.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic    "GEORANGE"             8 bytes
//! version  u16 = 1
//! id_width u8  (1, 2 or 4)        bytes per location id; all-ones = no location
//! epoch    u64                    source database build time (Unix seconds)
//! str16    description            (u16 length + UTF-8)
//! str16    database_type
//! u32      location count, then per location:
//!            country [2] ("\0\0" = none), continent u8 (0 = none, 1.. = AF AN AS EU NA OC SA),
//!            has_coordinates u8, [lat f64, lon f64], str16 city ("" = none)
//! per family, IPv4 then IPv6:
//!   u32 segment count n, n starts (4 or 16 bytes each), n ids (id_width bytes each)
//! ```
//!
//! Segment starts are sorted, the first is 0, and neighbouring segments differ
//! in location: the same invariants as the in-memory table.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::coordinates::Coordinates;
use crate::country::{Continent, CountryCode};
use crate::location::Location;
use crate::prefix::Family;
use crate::table::FamilyTable;

/// First bytes of every compiled file.
pub(crate) const MAGIC: &[u8; 8] = b"GEORANGE";
const VERSION: u16 = 1;

/// Everything a compiled file holds, borrowing the column bytes.
pub(crate) struct Parts<'a> {
    pub(crate) description: String,
    pub(crate) database_type: String,
    pub(crate) build_epoch: u64,
    pub(crate) id_width: u8,
    pub(crate) locations: Vec<Location>,
    /// (starts, ids) for IPv4, then IPv6.
    pub(crate) columns: [(&'a [u8], &'a [u8]); 2],
}

impl<'a> Parts<'a> {
    /// Turns the borrowed columns into tables; `own` decides whether to copy them.
    pub(crate) fn tables(
        &self,
        own: impl Fn(&'a [u8]) -> Cow<'static, [u8]>,
        full_check: bool,
    ) -> Result<[FamilyTable; 2], String> {
        let table = |family: Family, (starts, ids): (&'a [u8], &'a [u8])| {
            FamilyTable::from_columns(
                family,
                self.id_width,
                own(starts),
                own(ids),
                self.locations.len(),
                full_check,
            )
        };
        Ok([
            table(Family::V4, self.columns[0])?,
            table(Family::V6, self.columns[1])?,
        ])
    }
}

/// Whether `bytes` starts like a compiled file.
pub(crate) fn is_compiled(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Splits a compiled file into its parts, checking lengths and the location
/// records (the columns are checked by [`FamilyTable::from_columns`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<Parts<'_>, String> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(8)? != MAGIC {
        return Err("it does not start with GEORANGE".to_owned());
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(format!(
            "format version {version} is not supported (this build reads {VERSION})"
        ));
    }
    let id_width = r.u8()?;
    let build_epoch = r.u64()?;
    let description = r.str16()?.to_owned();
    let database_type = r.str16()?.to_owned();
    let n_locations = r.u32()? as usize;
    // Each location takes at least 6 bytes: refuse counts the file cannot hold
    // before allocating for them.
    if n_locations > r.remaining() / 6 {
        return Err(format!(
            "location count {n_locations} exceeds the file size"
        ));
    }
    let mut locations = Vec::with_capacity(n_locations);
    for i in 0..n_locations {
        locations.push(r.location().map_err(|e| format!("location {i}: {e}"))?);
    }
    let mut columns = [(&[][..], &[][..]); 2];
    for (slot, family) in columns.iter_mut().zip([Family::V4, Family::V6]) {
        let n = r.u32()? as usize;
        let start_bytes = n.checked_mul(usize::from(family.bits() / 8));
        let id_bytes = n.checked_mul(usize::from(id_width));
        let (Some(start_bytes), Some(id_bytes)) = (start_bytes, id_bytes) else {
            return Err(format!("segment count {n} is too large"));
        };
        *slot = (r.take(start_bytes)?, r.take(id_bytes)?);
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes after the tables",
            r.remaining()
        ));
    }
    Ok(Parts {
        description,
        database_type,
        build_epoch,
        id_width,
        locations,
        columns,
    })
}

/// Writes a compiled file (see the module docs for the layout).
pub(crate) fn write(
    out: &mut dyn Write,
    description: &str,
    database_type: &str,
    build_epoch: u64,
    locations: &[Location],
    tables: [&FamilyTable; 2],
) -> io::Result<()> {
    let id_width = tables[0].id_width();
    if tables[1].id_width() != id_width {
        return Err(io::Error::other(
            "IPv4 and IPv6 tables use different id widths",
        ));
    }
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&[id_width])?;
    out.write_all(&build_epoch.to_le_bytes())?;
    write_str16(out, description)?;
    write_str16(out, database_type)?;
    let n = u32::try_from(locations.len()).map_err(|_| io::Error::other("too many locations"))?;
    out.write_all(&n.to_le_bytes())?;
    for loc in locations {
        out.write_all(&loc.country.map_or([0, 0], CountryCode::bytes))?;
        let continent = loc
            .continent
            .and_then(|c| Continent::ALL.iter().position(|&x| x == c))
            .map_or(0, |i| i as u8 + 1);
        out.write_all(&[continent])?;
        match loc.coordinates {
            Some(c) => {
                out.write_all(&[1])?;
                out.write_all(&c.lat.to_le_bytes())?;
                out.write_all(&c.lon.to_le_bytes())?;
            }
            None => out.write_all(&[0])?,
        }
        write_str16(out, loc.city.as_deref().unwrap_or(""))?;
    }
    for table in tables {
        let n = u32::try_from(table.len()).map_err(|_| io::Error::other("too many segments"))?;
        out.write_all(&n.to_le_bytes())?;
        out.write_all(table.starts_bytes())?;
        out.write_all(table.ids_bytes())?;
    }
    Ok(())
}

fn write_str16(out: &mut dyn Write, s: &str) -> io::Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("string of {} bytes is too long (max 65535)", s.len()),
        )
    })?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(s.as_bytes())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated at byte {} (wanted {n} more bytes)",
                self.pos
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    fn f64(&mut self) -> Result<f64, String> {
        self.array().map(f64::from_le_bytes)
    }

    fn str16(&mut self) -> Result<&'a str, String> {
        let len = usize::from(self.u16()?);
        let at = self.pos;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| format!("string at byte {at} is not UTF-8"))
    }

    fn location(&mut self) -> Result<Location, String> {
        let country = match self.array::<2>()? {
            [0, 0] => None,
            code => {
                Some(CountryCode::new(code).ok_or_else(|| format!("bad country code {code:?}"))?)
            }
        };
        let continent = match self.u8()? {
            0 => None,
            n => Some(
                *Continent::ALL
                    .get(usize::from(n) - 1)
                    .ok_or_else(|| format!("bad continent {n}"))?,
            ),
        };
        let coordinates = match self.u8()? {
            0 => None,
            1 => {
                let (lat, lon) = (self.f64()?, self.f64()?);
                Some(
                    Coordinates::checked(lat, lon)
                        .ok_or_else(|| format!("bad coordinates {lat},{lon}"))?,
                )
            }
            n => return Err(format!("bad coordinates flag {n}")),
        };
        let city = Some(self.str16()?)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok(Location {
            country,
            continent,
            coordinates,
            city,
        })
    }
}
