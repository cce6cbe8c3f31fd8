//! Domain names as the topology stores them: lowercase wire format.
//!
//! Names are kept in DNS wire format (length-prefixed labels, root label
//! last) with ASCII letters folded to lowercase. That makes comparison
//! case-insensitive for free, has no escaping ambiguity, and lets a server
//! walk from a query name to its ancestors by slicing off leading labels
//! without allocating.

use std::fmt;

/// Longest name on the wire, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A fully qualified, lowercase domain name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName {
    wire: Box<[u8]>,
}

/// Why a name in the topology file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The text was empty.
    #[error("the name is empty; write a name such as \"www\" or \"www.example.com.\"")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("{0:?} has an empty label (two dots in a row or a leading dot)")]
    EmptyLabel(String),
    /// A label over 63 bytes.
    #[error("{0:?} has a label longer than 63 characters")]
    LabelTooLong(String),
    /// The whole name is over 255 bytes on the wire.
    #[error("{0:?} is longer than 255 bytes on the wire")]
    TooLong(String),
    /// A character outside letters, digits, `-` and `_`.
    #[error(
        "{name:?} contains {ch:?}; names may use letters, digits, '-' and '_' (write internationalised names in their xn-- form)"
    )]
    BadCharacter {
        /// The name as written.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// `*` somewhere other than as the whole leftmost label.
    #[error("{0:?} uses '*' other than as the whole leftmost label (write \"*.example.com.\")")]
    BadWildcard(String),
}

impl DomainName {
    /// The root name `.`.
    pub fn root() -> Self {
        DomainName {
            wire: Box::new([0]),
        }
    }

    /// Parses an absolute name; the trailing dot is optional.
    pub fn parse_absolute(text: &str) -> Result<Self, NameError> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if text == "." {
            return Ok(Self::root());
        }
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        let mut wire = Vec::with_capacity(trimmed.len() + 2);
        for (index, label) in trimmed.split('.').enumerate() {
            if label.is_empty() {
                return Err(NameError::EmptyLabel(text.to_owned()));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong(text.to_owned()));
            }
            if label.contains('*') && (label != "*" || index != 0) {
                return Err(NameError::BadWildcard(text.to_owned()));
            }
            if let Some(ch) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '*'))
            {
                return Err(NameError::BadCharacter {
                    name: text.to_owned(),
                    ch,
                });
            }
            wire.push(label.len() as u8);
            wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(text.to_owned()));
        }
        Ok(DomainName { wire: wire.into() })
    }

    /// Parses a name as written in a zone: `@` is the origin, a name ending
    /// in `.` is absolute, anything else is relative to `origin`.
    pub fn parse_in_zone(text: &str, origin: &DomainName) -> Result<Self, NameError> {
        if text == "@" {
            return Ok(origin.clone());
        }
        if text.ends_with('.') {
            return Self::parse_absolute(text);
        }
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let relative = Self::parse_absolute(text)?;
        let mut wire = relative.wire.to_vec();
        wire.pop();
        wire.extend_from_slice(&origin.wire);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(format!("{text}.{origin}")));
        }
        Ok(DomainName { wire: wire.into() })
    }

    /// Builds a name from wire-format bytes, lowercasing it. Returns `None`
    /// unless `wire` is exactly one well-formed uncompressed name.
    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut at = 0;
        loop {
            let len = *wire.get(at)? as usize;
            if len > MAX_LABEL_LEN {
                return None;
            }
            at += 1 + len;
            if len == 0 {
                break;
            }
        }
        if at != wire.len() || at > MAX_NAME_LEN {
            return None;
        }
        Some(DomainName {
            wire: wire.iter().map(u8::to_ascii_lowercase).collect(),
        })
    }

    /// The lowercase wire form (length-prefixed labels ending with the root).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, leftmost first, without the root label.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Whether the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.wire.starts_with(&[1, b'*'])
    }

    /// The name with its leftmost label removed; `None` for the root.
    pub fn parent(&self) -> Option<DomainName> {
        let first = self.wire[0] as usize;
        (first != 0).then(|| DomainName {
            wire: self.wire[1 + first..].into(),
        })
    }

    /// `*.` followed by this name.
    pub fn wildcard_child(&self) -> DomainName {
        let mut wire = Vec::with_capacity(self.wire.len() + 2);
        wire.extend_from_slice(&[1, b'*']);
        wire.extend_from_slice(&self.wire);
        DomainName { wire: wire.into() }
    }

    /// Whether this name equals `ancestor` or lies below it.
    pub fn is_at_or_below(&self, ancestor: &DomainName) -> bool {
        is_wire_at_or_below(&self.wire, &ancestor.wire)
    }
}

/// Whether the wire name `name` equals `ancestor` or lies below it, both
/// lowercase. Compares on label boundaries, so `xexample.com.` is not below
/// `example.com.`.
pub fn is_wire_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    let mut at = 0;
    while name.len() - at >= ancestor.len() {
        if &name[at..] == ancestor {
            return true;
        }
        match name.get(at) {
            Some(0) | None => return false,
            Some(&len) => at += 1 + len as usize,
        }
    }
    false
}

/// Iterator over a name's labels, leftmost first.
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.rest.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = &self.rest[1..1 + len];
        self.rest = &self.rest[1 + len..];
        Some(label)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wire.len() == 1 {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &byte in label {
                if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'*' {
                    write!(f, "{}", byte as char)?;
                } else {
                    write!(f, "\\{byte:03}")?;
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> DomainName {
        DomainName::parse_absolute(text).unwrap()
    }

    #[test]
    fn parses_and_lowercases() {
        let n = name("WwW.Example.COM.");
        assert_eq!(n.to_string(), "www.example.com.");
        assert_eq!(n.wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!(n, name("www.example.com"));
    }

    #[test]
    fn relative_names_join_the_origin() {
        let origin = name("example.com.");
        assert_eq!(DomainName::parse_in_zone("@", &origin).unwrap(), origin);
        assert_eq!(
            DomainName::parse_in_zone("a.b", &origin)
                .unwrap()
                .to_string(),
            "a.b.example.com."
        );
        assert_eq!(
            DomainName::parse_in_zone("other.org.", &origin)
                .unwrap()
                .to_string(),
            "other.org."
        );
    }

    #[test]
    fn rejects_bad_names_with_reasons() {
        assert!(matches!(
            DomainName::parse_absolute("a..b"),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            DomainName::parse_absolute(&"a".repeat(64)),
            Err(NameError::LabelTooLong(_))
        ));
        assert!(matches!(
            DomainName::parse_absolute("a b.com"),
            Err(NameError::BadCharacter { ch: ' ', .. })
        ));
        assert!(matches!(
            DomainName::parse_absolute("a.*.com"),
            Err(NameError::BadWildcard(_))
        ));
        let long = vec!["abcdefghi"; 30].join(".");
        assert!(matches!(
            DomainName::parse_absolute(&long),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn ancestry_respects_label_boundaries() {
        let zone = name("example.com.");
        assert!(name("a.example.com.").is_at_or_below(&zone));
        assert!(zone.is_at_or_below(&zone));
        assert!(!name("xexample.com.").is_at_or_below(&zone));
        assert!(!name("com.").is_at_or_below(&zone));
        assert!(zone.is_at_or_below(&DomainName::root()));
    }

    #[test]
    fn wildcards_and_parents() {
        let zone = name("example.com.");
        let wild = zone.wildcard_child();
        assert!(wild.is_wildcard());
        assert_eq!(wild.to_string(), "*.example.com.");
        assert_eq!(wild.parent().unwrap(), zone);
        assert_eq!(DomainName::root().parent(), None);
    }

    #[test]
    fn from_wire_checks_structure() {
        assert_eq!(
            DomainName::from_wire(b"\x03WWW\x00").unwrap().to_string(),
            "www."
        );
        assert!(DomainName::from_wire(b"\x03ww").is_none());
        assert!(DomainName::from_wire(b"\x01a\x00extra").is_none());
        let odd = DomainName::from_wire(b"\x03a.b\x00").unwrap();
        assert_eq!(odd.to_string(), "a\\046b.");
    }
}
