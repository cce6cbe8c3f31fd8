//! The pieces every stage shares about one field: how a scalar was
//! written ([`Scalar`]) and the problems found in it with their field
//! paths ([`Problem`]). A leaf: the raw structs, the validators and the
//! tiers all import from here, and this imports none of them.

use std::fmt;

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
