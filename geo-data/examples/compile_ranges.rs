//! Compiles a MaxMind DB into the compiled range format that `GeoDb::open` and
//! the embedded database use, then checks the result against the source with
//! the `maxminddb` reader. Used by `scripts/regenerate.sh`:
//!
//! ```text
//! cargo run -p geo-data --example compile_ranges -- IN.mmdb OUT.ranges "DESCRIPTION"
//! ```
//!
//! The check looks up the first and last address of every compiled range in
//! the source and compares countries, so it exercises the whole table.

use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use geo_data::{GeoDb, Range};
use maxminddb::{PathElement, Reader};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, description] = args.as_slice() else {
        return Err("usage: compile_ranges IN.mmdb OUT.ranges DESCRIPTION".into());
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));

    let started = Instant::now();
    let db = GeoDb::open(&input)?.with_description(description.as_str());
    eprintln!(
        "compiled {} in {:.2?}: {:?}",
        input.display(),
        started.elapsed(),
        db.stats()
    );

    let tmp = output.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    db.write_compiled(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &output)?;

    let reloaded = GeoDb::open(&output)?;
    let source = Reader::open_readfile(&input)?;
    let mut checked = 0usize;
    for range in reloaded.ranges() {
        for ip in [range.first, range.last] {
            check(&reloaded, &source, &range, ip)?;
            checked += 1;
        }
    }
    eprintln!(
        "wrote {} ({} bytes); {checked} range ends agree with the source",
        output.display(),
        std::fs::metadata(&output)?.len()
    );
    std::io::stderr().flush()?;
    Ok(())
}

/// The compiled answer for `ip` must name the country the source does.
fn check(
    db: &GeoDb,
    source: &Reader<Vec<u8>>,
    range: &Range,
    ip: IpAddr,
) -> Result<(), Box<dyn Error>> {
    // The compiled IPv6 table leaves the IPv4 embeddings empty on purpose.
    if let IpAddr::V6(v6) = ip {
        let high = u128::from(v6) >> 32;
        if high == 0 || high == 0xFFFF {
            return Ok(());
        }
    }
    let found = source.lookup(ip)?;
    let flat: Option<String> = found.decode_path(&[PathElement::Key("country_code")])?;
    let nested: Option<String> =
        found.decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])?;
    let expected = flat.or(nested).filter(|c| c != "ZZ");
    let got = db
        .lookup(ip)
        .location
        .and_then(|(_, l)| l.country)
        .map(|c| c.to_string());
    if got != expected {
        return Err(format!(
            "{ip} (range {}-{}): compiled says {got:?}, source says {expected:?}",
            range.first, range.last
        )
        .into());
    }
    Ok(())
}
