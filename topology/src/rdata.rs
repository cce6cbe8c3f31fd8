//! Record types and their data, parsed from the presentation text written
//! in the topology file (`"10 mail.example.com."` for an MX, and so on).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::name::DomainName;

/// The record types a zone may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// Name server.
    Ns,
    /// Canonical name (alias).
    Cname,
    /// Start of authority.
    Soa,
    /// Reverse pointer.
    Ptr,
    /// Mail exchange.
    Mx,
    /// Text strings.
    Txt,
    /// IPv6 address.
    Aaaa,
    /// Service location.
    Srv,
    /// Certification authority authorisation.
    Caa,
    /// Delegation signer: the hash of a signed child zone's key, held at
    /// the delegation point (RFC 4034 §5).
    Ds,
}

impl RecordType {
    /// Every type, in the order `Display` lists them in error messages.
    pub const ALL: [RecordType; 11] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Ns,
        RecordType::Ptr,
        RecordType::Soa,
        RecordType::Srv,
        RecordType::Txt,
        RecordType::Caa,
        RecordType::Ds,
    ];

    /// The IANA type code.
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Ns => 2,
            RecordType::Cname => 5,
            RecordType::Soa => 6,
            RecordType::Ptr => 12,
            RecordType::Mx => 15,
            RecordType::Txt => 16,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Caa => 257,
            RecordType::Ds => 43,
        }
    }

    /// The type with IANA code `code`, if the topology supports it.
    pub fn from_code(code: u16) -> Option<RecordType> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The mnemonic, as in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Ns => "NS",
            RecordType::Cname => "CNAME",
            RecordType::Soa => "SOA",
            RecordType::Ptr => "PTR",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Aaaa => "AAAA",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
            RecordType::Ds => "DS",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "{text:?} is not a supported record type; use one of {}",
                    known.join(", ")
                )
            })
    }
}

/// The SOA fields (RFC 1035 §3.3.13), times in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Soa {
    /// Primary name server.
    pub mname: DomainName,
    /// Responsible mailbox, in name form (`hostmaster.example.com.`).
    pub rname: DomainName,
    /// Zone serial.
    pub serial: u32,
    /// Secondary refresh interval.
    pub refresh: u32,
    /// Secondary retry interval.
    pub retry: u32,
    /// Secondary expiry.
    pub expire: u32,
    /// Negative-caching TTL bound (RFC 2308).
    pub minimum: u32,
}

/// One record's data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecordData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Name server host.
    Ns(DomainName),
    /// Alias target.
    Cname(DomainName),
    /// Reverse pointer target.
    Ptr(DomainName),
    /// Mail exchange.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// Mail host.
        exchange: DomainName,
    },
    /// Character strings, each at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    /// Service location (RFC 2782).
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// Service port.
        port: u16,
        /// Service host.
        target: DomainName,
    },
    /// Certification authority authorisation (RFC 8659).
    Caa {
        /// Flags (128 = issuer critical).
        flags: u8,
        /// Property tag (`issue`, `issuewild`, `iodef`, ...).
        tag: String,
        /// Property value.
        value: Vec<u8>,
    },
    /// Delegation signer (RFC 4034 §5.1).
    Ds {
        /// Key tag of the child's key.
        key_tag: u16,
        /// That key's algorithm number.
        algorithm: u8,
        /// Digest algorithm (2 = SHA-256, 4 = SHA-384).
        digest_type: u8,
        /// The digest, as many bytes as `digest_type` makes.
        digest: Vec<u8>,
    },
    /// Start of authority.
    Soa(Soa),
}

impl RecordData {
    /// The record's type.
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Ns(_) => RecordType::Ns,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Ptr(_) => RecordType::Ptr,
            RecordData::Mx { .. } => RecordType::Mx,
            RecordData::Txt(_) => RecordType::Txt,
            RecordData::Srv { .. } => RecordType::Srv,
            RecordData::Caa { .. } => RecordType::Caa,
            RecordData::Ds { .. } => RecordType::Ds,
            RecordData::Soa(_) => RecordType::Soa,
        }
    }

    /// The host name this record points at, for records whose target may
    /// need an address (NS, MX, SRV) or is an alias (CNAME).
    pub fn target(&self) -> Option<&DomainName> {
        match self {
            RecordData::Ns(name) | RecordData::Cname(name) | RecordData::Ptr(name) => Some(name),
            RecordData::Mx { exchange, .. } => Some(exchange),
            RecordData::Srv { target, .. } => Some(target),
            _ => None,
        }
    }

    /// Parses `value` as the data of a `rtype` record in the zone `origin`
    /// (relative names in the value are relative to the origin). SOA data is
    /// not written as a record value; it has its own block.
    pub fn parse(rtype: RecordType, value: &str, origin: &DomainName) -> Result<Self, String> {
        let name = |text: &str| DomainName::parse_in_zone(text, origin).map_err(|e| e.to_string());
        let fields: Vec<&str> = value.split_whitespace().collect();
        let expect = |count: usize, form: &str| {
            if fields.len() == count {
                Ok(())
            } else {
                Err(format!(
                    "{value:?} is not {rtype} data; write it as {form:?}"
                ))
            }
        };
        Ok(match rtype {
            RecordType::A => RecordData::A(value.trim().parse().map_err(|_| {
                format!("{value:?} is not an IPv4 address; write it as \"192.0.2.1\"")
            })?),
            RecordType::Aaaa => RecordData::Aaaa(value.trim().parse().map_err(|_| {
                format!("{value:?} is not an IPv6 address; write it as \"2001:db8::1\"")
            })?),
            RecordType::Ns => {
                expect(1, "ns1.example.com.")?;
                RecordData::Ns(name(fields[0])?)
            }
            RecordType::Cname => {
                expect(1, "www.example.com.")?;
                RecordData::Cname(name(fields[0])?)
            }
            RecordType::Ptr => {
                expect(1, "host.example.com.")?;
                RecordData::Ptr(name(fields[0])?)
            }
            RecordType::Mx => {
                expect(2, "10 mail.example.com.")?;
                RecordData::Mx {
                    preference: number(fields[0], "MX preference")?,
                    exchange: name(fields[1])?,
                }
            }
            RecordType::Srv => {
                expect(4, "10 5 443 host.example.com.")?;
                RecordData::Srv {
                    priority: number(fields[0], "SRV priority")?,
                    weight: number(fields[1], "SRV weight")?,
                    port: number(fields[2], "SRV port")?,
                    target: name(fields[3])?,
                }
            }
            RecordType::Txt => RecordData::Txt(split_character_strings(value.as_bytes())),
            RecordType::Caa => parse_caa(value)?,
            RecordType::Ds => parse_ds(value)?,
            RecordType::Soa => {
                return Err(
                    "SOA records are not written as records; set the zone's `soa:` block".into(),
                );
            }
        })
    }
}

fn number<T: FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not a number in range"))
}

/// Splits text into DNS character strings of at most 255 bytes, so a long
/// TXT value (a DKIM key, say) can be written as one YAML string.
fn split_character_strings(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return vec![Vec::new()];
    }
    bytes.chunks(255).map(<[u8]>::to_vec).collect()
}

fn parse_caa(value: &str) -> Result<RecordData, String> {
    const FORM: &str = "0 issue \"letsencrypt.org\"";
    let mut parts = value.trim().splitn(3, char::is_whitespace);
    let (Some(flags), Some(tag), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{value:?} is not CAA data; write it as {FORM:?}"));
    };
    let flags: u8 = number(flags, "CAA flags")?;
    if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "CAA tag {tag:?} must be 1 to 15 letters or digits, such as \"issue\""
        ));
    }
    let rest = rest.trim();
    let unquoted = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    Ok(RecordData::Caa {
        flags,
        tag: tag.to_ascii_lowercase(),
        value: unquoted.as_bytes().to_vec(),
    })
}

fn parse_ds(value: &str) -> Result<RecordData, String> {
    const FORM: &str = "12345 13 2 <64 hex digits>, as `gtm dnssec ds` prints it";
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [key_tag, algorithm, digest_type, digest @ ..] = fields.as_slice() else {
        return Err(format!("{value:?} is not DS data; write it as {FORM:?}"));
    };
    if digest.is_empty() {
        return Err(format!("{value:?} is not DS data; write it as {FORM:?}"));
    }
    let digest_type: u8 = number(digest_type, "DS digest type")?;
    // RFC 4509, RFC 6605; SHA-1 (1) is no longer to be used (RFC 9904).
    let length = match digest_type {
        2 => 32,
        4 => 48,
        other => {
            return Err(format!(
                "DS digest type {other} is not supported; use 2 (SHA-256) or 4 (SHA-384)"
            ));
        }
    };
    let hex: String = digest.concat();
    let digest = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| format!("DS digest {hex:?} is not hexadecimal"))?;
    if digest.len() != length {
        return Err(format!(
            "DS digest is {} bytes; digest type {digest_type} makes {length}",
            digest.len()
        ));
    }
    Ok(RecordData::Ds {
        key_tag: number(key_tag, "DS key tag")?,
        algorithm: number(algorithm, "DS algorithm")?,
        digest_type,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> DomainName {
        DomainName::parse_absolute("example.com.").unwrap()
    }

    #[test]
    fn parses_each_type() {
        let o = origin();
        assert_eq!(
            RecordData::parse(RecordType::A, "192.0.2.1", &o).unwrap(),
            RecordData::A(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert!(matches!(
            RecordData::parse(RecordType::Aaaa, "2001:db8::1", &o).unwrap(),
            RecordData::Aaaa(_)
        ));
        let mx = RecordData::parse(RecordType::Mx, "10 mail", &o).unwrap();
        assert_eq!(mx.target().unwrap().to_string(), "mail.example.com.");
        let srv = RecordData::parse(RecordType::Srv, "1 2 443 svc.other.org.", &o).unwrap();
        assert_eq!(srv.target().unwrap().to_string(), "svc.other.org.");
        let caa = RecordData::parse(RecordType::Caa, "0 issue \"letsencrypt.org\"", &o).unwrap();
        assert_eq!(
            caa,
            RecordData::Caa {
                flags: 0,
                tag: "issue".into(),
                value: b"letsencrypt.org".to_vec()
            }
        );
    }

    #[test]
    fn parses_a_ds_as_gtm_prints_it() {
        // Written in two groups, as some tools print long digests.
        let half = "2BB183AF5F22588179A53B0A98631FAD";
        let text = format!("60485 13 2 {half} {}", half.to_lowercase());
        let ds = RecordData::parse(RecordType::Ds, &text, &origin()).unwrap();
        let RecordData::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } = ds
        else {
            panic!("not DS");
        };
        assert_eq!((key_tag, algorithm, digest_type), (60485, 13, 2));
        assert_eq!(digest.len(), 32);
        let err = RecordData::parse(RecordType::Ds, "60485 13 2 abcd", &origin()).unwrap_err();
        assert!(err.contains("makes 32"), "{err}");
        let err = RecordData::parse(RecordType::Ds, "60485 13 1 abcd", &origin()).unwrap_err();
        assert!(err.contains("use 2 (SHA-256)"), "{err}");
        let err = RecordData::parse(RecordType::Ds, "60485 13", &origin()).unwrap_err();
        assert!(err.contains("gtm dnssec ds"), "{err}");
    }

    #[test]
    fn long_txt_is_split_into_character_strings() {
        let long = "x".repeat(600);
        let RecordData::Txt(strings) =
            RecordData::parse(RecordType::Txt, &long, &origin()).unwrap()
        else {
            panic!("not TXT");
        };
        assert_eq!(
            strings.iter().map(Vec::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
    }

    #[test]
    fn errors_say_what_to_write() {
        let o = origin();
        let err = RecordData::parse(RecordType::A, "300.1.1.1", &o).unwrap_err();
        assert!(err.contains("not an IPv4 address"), "{err}");
        let err = RecordData::parse(RecordType::Mx, "mail.example.com.", &o).unwrap_err();
        assert!(err.contains("10 mail.example.com."), "{err}");
        let err = RecordData::parse(RecordType::Mx, "70000 mail", &o).unwrap_err();
        assert!(err.contains("MX preference"), "{err}");
        assert!("SPF".parse::<RecordType>().unwrap_err().contains("AAAA"));
        assert_eq!("aaaa".parse::<RecordType>().unwrap(), RecordType::Aaaa);
    }
}
