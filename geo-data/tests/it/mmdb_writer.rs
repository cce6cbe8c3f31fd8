//! A minimal MaxMind DB writer for tests: IPv6 trees with 32-bit records,
//! disjoint networks only, and the handful of value types location records
//! use. Its output is read back with the `maxminddb` crate, which serves as the
//! independent oracle; a writer bug shows up as a file that crate rejects.

use std::collections::HashMap;
use std::net::IpAddr;

/// A data-section value.
#[derive(Clone, Debug)]
pub enum Value {
    Str(String),
    F64(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

/// Shorthand for a map value.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Shorthand for a string value.
pub fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(u32),
    Data(u32),
}

/// Builds an IPv6 MMDB (IPv4 networks go under `::/96`, as real files do).
pub struct MmdbWriter {
    database_type: String,
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
    offsets: HashMap<Vec<u8>, u32>,
}

impl MmdbWriter {
    pub fn new(database_type: &str) -> MmdbWriter {
        MmdbWriter {
            database_type: database_type.to_owned(),
            nodes: vec![[Rec::Empty; 2]],
            data: Vec::new(),
            offsets: HashMap::new(),
        }
    }

    /// Inserts `network/len` (an IPv4 or IPv6 network; `len` > 0) with `value`.
    /// Returns false, changing nothing, if it overlaps a network already there.
    pub fn insert(&mut self, network: IpAddr, len: u8, value: &Value) -> bool {
        let (bits, depth) = match network {
            IpAddr::V4(a) => (u128::from(u32::from(a)), len + 96),
            IpAddr::V6(a) => (u128::from(a), len),
        };
        assert!(depth > 0 && depth <= 128, "bad prefix length {len}");
        let bit = |i: u8| ((bits >> (127 - i)) & 1) as usize;
        // Check first so a refused insert leaves the tree untouched.
        let mut node = Some(0usize);
        for i in 0..depth {
            let Some(n) = node else { break };
            match self.nodes[n][bit(i)] {
                Rec::Data(_) => return false,
                Rec::Node(_) if i + 1 == depth => return false,
                Rec::Node(next) => node = Some(next as usize),
                Rec::Empty => node = None,
            }
        }
        let offset = self.data_offset(value);
        let mut node = 0usize;
        for i in 0..depth {
            let b = bit(i);
            if i + 1 == depth {
                self.nodes[node][b] = Rec::Data(offset);
                break;
            }
            node = match self.nodes[node][b] {
                Rec::Node(next) => next as usize,
                Rec::Empty => {
                    self.nodes.push([Rec::Empty; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][b] = Rec::Node(next as u32);
                    next
                }
                Rec::Data(_) => unreachable!("checked above"),
            };
        }
        true
    }

    fn data_offset(&mut self, value: &Value) -> u32 {
        let mut bytes = Vec::new();
        encode(value, &mut bytes);
        if let Some(&offset) = self.offsets.get(&bytes) {
            return offset;
        }
        let offset = self.data.len() as u32;
        self.data.extend_from_slice(&bytes);
        self.offsets.insert(bytes, offset);
        offset
    }

    /// The finished file.
    pub fn finish(&self) -> Vec<u8> {
        let node_count = self.nodes.len() as u32;
        let mut out = Vec::new();
        for node in &self.nodes {
            for rec in node {
                let v = match *rec {
                    Rec::Empty => node_count,
                    Rec::Node(n) => n,
                    Rec::Data(off) => node_count + 16 + off,
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
        let metadata = map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_700_000_000)),
            ("database_type", s(&self.database_type)),
            ("description", map([("en", s("geo-data test database"))])),
            ("ip_version", Value::U16(6)),
            ("languages", Value::Array(vec![s("en")])),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(32)),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (first, extended) = if kind <= 7 {
        (kind << 5, None)
    } else {
        (0, Some(kind - 7))
    };
    let (size_bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 285 {
        (29, vec![(size - 29) as u8])
    } else if size < 65_821 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    out.push(first | size_bits);
    out.extend(extended);
    out.extend(extra);
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(v) => {
            control(out, 2, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        Value::F64(v) => {
            control(out, 3, 8);
            out.extend_from_slice(&v.to_be_bytes());
        }
        Value::U16(v) => uint(out, 5, u64::from(*v)),
        Value::U32(v) => uint(out, 6, u64::from(*v)),
        Value::U64(v) => uint(out, 9, *v),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(&Value::Str(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(v, out);
            }
        }
    }
}
