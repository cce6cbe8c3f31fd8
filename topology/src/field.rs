//! The pieces every stage shares about one field: how a scalar was
//! written ([`Scalar`]) and the problems found in it with their field
//! paths ([`Problem`]). A leaf: the raw structs, the validators and the
//! tiers all import from here, and this imports none of them.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

/// One problem found in stage two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `dns.zones[0].records[3].ttl`.
    pub path: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Problems found so far; every validator adds to one list.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `path`, turning it into `None`.
    pub(crate) fn check<T>(
        &mut self,
        path: impl Into<String>,
        result: Result<T, impl fmt::Display>,
    ) -> Option<T> {
        result.map_err(|e| self.add(path, e.to_string())).ok()
    }
}

/// Where a value was written, for the problems found in it: a field of
/// the topology file, or a line of a zone file (reported under the
/// topology field that names the file, with the file and line).
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// A field path, such as `dns.zones[0].records[3]`.
    Field(String),
    /// A line of a zone file.
    /// The two names are shared: a zone file of a million records holds
    /// a million of these until the zone is checked.
    Line {
        /// The topology field naming the file: `dns.zones[0].file`.
        field: Arc<str>,
        /// The file (an included one, maybe).
        file: Arc<str>,
        /// 1-based.
        line: usize,
    },
}

impl Place {
    /// The problem path for the part `sub` of the value (`""`: the value
    /// itself). A zone-file line has no sub-fields: its field is the path.
    pub(crate) fn path(&self, sub: &str) -> String {
        match self {
            Place::Field(path) if sub.is_empty() => path.clone(),
            Place::Field(path) => format!("{path}.{sub}"),
            Place::Line { field, .. } => field.to_string(),
        }
    }

    /// Adds a problem with the part `sub` of the value.
    pub(crate) fn add(&self, problems: &mut Problems, sub: &str, message: impl Into<String>) {
        let message = message.into();
        let message = match self {
            Place::Field(_) => message,
            Place::Line { file, line, .. } => format!("{file} line {line}: {message}"),
        };
        problems.add(self.path(sub), message);
    }

    /// Records the error of `result` as a problem with the part `sub`.
    pub(crate) fn check<T>(
        &self,
        problems: &mut Problems,
        sub: &str,
        result: Result<T, impl fmt::Display>,
    ) -> Option<T> {
        result
            .map_err(|e| self.add(problems, sub, e.to_string()))
            .ok()
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Field(path) => f.write_str(path),
            Place::Line { file, line, .. } => write!(f, "{file} line {line}"),
        }
    }
}

/// A scalar the author may have written as a string, a number or a
/// boolean (`value: 10` for a TXT, `ttl: 300`): kept as text for stage two.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// Written as a string.
    Text(String),
    /// Written as an integer.
    Integer(i64),
    /// Written as a float.
    Float(f64),
    /// Written as a boolean.
    Bool(bool),
}

impl Scalar {
    /// The value as text.
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Integer(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}
