//! The topology file: one YAML document describing a whole deployment —
//! the zones the GSLB serves, its name-server nodes, and the regions with
//! their VIPs — read by `gslb`, `edge` and `gtm` alike.
//!
//! # Layout
//! - [`raw`]: stage one, the file's shape (serde, unknown keys refused).
//! - [`validate`]: stage two, every value checked, all problems reported.
//! - [`model`]: the validated [`Topology`] the binaries work from.
//! - [`health`]: health checks (region, L7 node, backend server) and the
//!   rules every check meets, which `probe` applies too.
//! - [`capacity`]: a region's capacity and target, for spill-over.
//! - [`status`]: the HTTP status-set grammar (`"200,300-399"`).
//! - [`tiers`]: a region's L4 and L7 tiers and demo backends.
//! - [`hosts`]: the machines components run on; `placement`: which
//!   component may bind what where (needs the whole model).
//! - [`name`], [`rdata`], [`duration`]: the value types and their parsers.
//! - `field`: what every stage shares about one field (the written
//!   [`Scalar`](raw::Scalar), a [`Problem`](validate::Problem) at a path).
//! - `locate`: field path → line number, for error messages.
//! - [`secret`]: reading a key file the topology names, refused when
//!   others can reach it.
//! - [`zonefile`]: a zone written out as an RFC 1035 master file;
//!   [`masterfile`]: a zone's records read in from one (`file:`).
//! - [`dnssec`]: DNSSEC key files (read, checked, created; DNSKEY and DS).
//!
//! The schema is documented in `docs/topology.md` at the repository root.

pub mod capacity;
pub mod dnssec;
pub mod duration;
mod field;
pub mod health;
pub mod hosts;
mod locate;
pub mod masterfile;
pub mod model;
pub mod name;
mod placement;
pub mod raw;
pub mod rdata;
pub mod secret;
pub mod status;
pub mod tiers;
pub mod validate;
pub mod zonefile;

use std::fmt;
use std::path::Path;

pub use capacity::{Capacity, LoadUnit};
pub use model::{
    AllDown, Breaker, Coordinates, Dns, DnsNode, Dnssec, GeoHttps, GeoIpSource, GeoName, GeoPolicy,
    Overrides, RateLimit, Record, Region, RegionId, Topology, Vip, Zone,
};
pub use name::DomainName;
pub use rdata::{Caa, Naptr, RecordData, RecordType, Soa, SvcParam, Svcb};

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not YAML of the right shape (stage one).
    #[error("{source_name}: {message}")]
    Syntax {
        /// The file (or `<text>`).
        source_name: String,
        /// serde's message, with the field path and line.
        message: String,
    },
    /// Values failed validation (stage two); every problem is listed.
    #[error("{}", Located(.source_name, .problems))]
    Invalid {
        /// The file (or `<text>`).
        source_name: String,
        /// Every problem, with its line when known.
        problems: Vec<LocatedProblem>,
    },
}

/// A stage-two problem with the line it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedProblem {
    /// 1-based line, when the path could be found in the text.
    pub line: Option<usize>,
    /// The field path and message.
    pub problem: validate::Problem,
}

struct Located<'a>(&'a str, &'a [LocatedProblem]);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located(source, problems) = self;
        let count = problems.len();
        write!(
            f,
            "{source}: {count} problem{} found",
            if count == 1 { "" } else { "s" }
        )?;
        for p in problems.iter() {
            write!(f, "\n  ")?;
            if let Some(line) = p.line {
                write!(f, "line {line}: ")?;
            }
            write!(f, "{}: {}", p.problem.path, p.problem.message)?;
        }
        Ok(())
    }
}

/// Reads and validates the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_file(&text, path)
}

/// Parses and validates `text`, the contents of the topology file at
/// `path`, exactly as [`load`] does, for a caller that needs the bytes it
/// read as well (gslb hashes them into the config version).
pub fn parse_file(text: &str, path: &Path) -> Result<Topology, LoadError> {
    let mut topology = parse_in(text, &path.display().to_string(), path.parent())?;
    // A relative database path is relative to the topology file.
    if let model::GeoIpSource::File(db) = &mut topology.dns.geoip
        && db.is_relative()
        && let Some(dir) = path.parent()
    {
        *db = dir.join(&*db);
    }
    if let Some(key) = &mut topology.dns.peer_key
        && key.is_relative()
        && let Some(dir) = path.parent()
    {
        *key = dir.join(&*key);
    }
    check_dnssec_keys(&mut topology, text, path)?;
    Ok(topology)
}

/// Resolves each zone's key files against the topology file's folder and
/// reads them, so a missing, loose or foreign key is refused here — by
/// `gtm validate`, at start and on reload — with the file and the fix.
fn check_dnssec_keys(topology: &mut Topology, text: &str, path: &Path) -> Result<(), LoadError> {
    let mut problems = Vec::new();
    for (zone_index, zone) in topology.dns.zones.iter_mut().enumerate() {
        let Some(dnssec) = &mut zone.dnssec else {
            continue;
        };
        let mut signing = Vec::new();
        let mut roles = Vec::new();
        for (list, files) in [
            ("keys", &mut dnssec.keys),
            ("published", &mut dnssec.published),
        ] {
            for (index, key) in files.iter_mut().enumerate() {
                if key.is_relative()
                    && let Some(dir) = path.parent()
                {
                    *key = dir.join(&*key);
                }
                let field = format!("dns.zones[{zone_index}].dnssec.{list}[{index}]");
                let message = match dnssec::ZoneKey::read(key) {
                    Err(error) => error.to_string(),
                    Ok(key) if list == "keys" => {
                        signing.push(key.algorithm());
                        roles.push(key.role());
                        continue;
                    }
                    // RFC 4035 §2.2: every algorithm in the DNSKEY RRset
                    // signs every RRset, or strict resolvers fail the zone.
                    Ok(key) if !signing.contains(&key.algorithm()) => format!(
                        "{}: algorithm {} signs nothing in this zone; publish only keys of an algorithm listed under `keys` (an algorithm rollover adds the new algorithm's key to `keys` first)",
                        key.path().display(),
                        key.algorithm().number()
                    ),
                    Ok(_) => continue,
                };
                problems.push(LocatedProblem {
                    line: locate::line_of(text, &field),
                    problem: validate::Problem {
                        path: field,
                        message,
                    },
                });
            }
        }
        // A KSK alone leaves the data unsigned, a ZSK alone the DNSKEY
        // RRset: either way resolvers find the zone bogus.
        let missing = if !roles.iter().any(|r| r.signs_keys()) {
            Some("the DNSKEY RRset: add a KSK (`gtm dnssec keygen ZONE --ksk`) or a CSK")
        } else if !roles.iter().any(|r| r.signs_data()) {
            Some("the zone's data: add a ZSK (`gtm dnssec keygen ZONE --zsk`) or a CSK")
        } else {
            None
        };
        // Only when every key read: an unreadable one has its own problem.
        if let Some(missing) = missing
            && !roles.is_empty()
            && roles.len() == dnssec.keys.len()
        {
            let field = format!("dns.zones[{zone_index}].dnssec.keys");
            problems.push(LocatedProblem {
                line: locate::line_of(text, &field),
                problem: validate::Problem {
                    path: field,
                    message: format!("no key here signs {missing}"),
                },
            });
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(LoadError::Invalid {
        source_name: path.display().to_string(),
        problems,
    })
}

/// Parses and validates topology text; `source_name` names it in errors.
/// Zone files it names (`file:`) are read relative to the current
/// directory ([`parse_file`] reads them relative to the topology file).
pub fn parse(text: &str, source_name: &str) -> Result<Topology, LoadError> {
    parse_in(text, source_name, None)
}

/// [`parse`], with zone files read relative to `dir`.
fn parse_in(text: &str, source_name: &str, dir: Option<&Path>) -> Result<Topology, LoadError> {
    let mut raw: raw::RawTopology = serde_yaml::from_str(text).map_err(|e| LoadError::Syntax {
        source_name: source_name.to_owned(),
        message: e.to_string(),
    })?;
    // Zone files are read before stage two, which checks their records
    // with the YAML ones (a bad origin is reported there, not here).
    for zone in &mut raw.dns.zones {
        if let Some(file) = zone.file.as_deref().filter(|f| !f.is_empty())
            && let Ok(origin) = DomainName::parse_absolute(&zone.origin)
        {
            let path = dir.map_or_else(|| file.into(), |dir| dir.join(file));
            zone.master = Some(masterfile::read(&path, &origin));
        }
    }
    validate::validate(raw).map_err(|problems| LoadError::Invalid {
        source_name: source_name.to_owned(),
        problems: problems
            .into_iter()
            .map(|problem| LocatedProblem {
                line: locate::line_of(text, &problem.path),
                problem,
            })
            .collect(),
    })
}
