//! Maps a field path (`dns.zones[0].records[3].ttl`) back to its line in
//! the file, so stage-two errors point where stage-one errors do.
//!
//! serde does not keep positions, so the text is parsed a second time, by a
//! YAML parser that does, only when there are errors to place.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// The 1-based line of the deepest node along `path` that exists in `text`
/// (a missing field points at its parent), or `None` if the text does not
/// parse.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let documents = MarkedYaml::load_from_str(text).ok()?;
    let mut node = documents.first()?;
    for segment in segments(path) {
        let next = match (&node.data, segment) {
            (YamlData::Mapping(map), Segment::Key(key)) => map
                .iter()
                .find(|(k, _)| scalar_text(k).as_deref() == Some(key))
                .map(|(_, v)| v),
            (YamlData::Sequence(items), Segment::Index(index)) => items.get(index),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => break,
        }
    }
    Some(node.span.start.line())
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into `a`, `b`, `2`, `c`. Region names contain `-` but
/// never `.` or `[`, so splitting on those is unambiguous.
fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').flat_map(|part| {
        let mut pieces = part.split('[');
        let key = pieces.next().filter(|k| !k.is_empty()).map(Segment::Key);
        key.into_iter()
            .chain(pieces.filter_map(|p| p.trim_end_matches(']').parse().ok().map(Segment::Index)))
    })
}

fn scalar_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(n)) => Some(n.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "dns:\n  zones:\n    - origin: example.com.\n      records:\n        - { name: a, type: A, value: 1.2.3.4 }\n        - name: b\n          ttl: 5\nregions:\n  us-east:\n    vip: { ipv4: x }\n";

    #[test]
    fn finds_block_and_flow_nodes() {
        assert_eq!(line_of(TEXT, "dns.zones[0].origin"), Some(3));
        assert_eq!(line_of(TEXT, "dns.zones[0].records[0].value"), Some(5));
        assert_eq!(line_of(TEXT, "dns.zones[0].records[1].ttl"), Some(7));
        assert_eq!(line_of(TEXT, "regions.us-east.vip.ipv4"), Some(10));
    }

    #[test]
    fn missing_fields_point_at_the_parent() {
        assert_eq!(line_of(TEXT, "dns.zones[0].records[1].value"), Some(6));
    }
}
