//! Record types and their data, parsed from the presentation text written
//! in the topology file (`"10 mail.example.com."` for an MX, and so on).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::masterfile::Token;
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
    /// Naming authority pointer (RFC 3403).
    Naptr,
    /// SSH host key fingerprint (RFC 4255).
    Sshfp,
    /// TLS certificate association, for DANE (RFC 6698).
    Tlsa,
    /// Service binding (RFC 9460).
    Svcb,
    /// Service binding for HTTPS origins (RFC 9460 §9).
    Https,
}

impl RecordType {
    /// Every type, in the order `Display` lists them in error messages.
    pub const ALL: [RecordType; 16] = [
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
        RecordType::Https,
        RecordType::Svcb,
        RecordType::Tlsa,
        RecordType::Sshfp,
        RecordType::Naptr,
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
            RecordType::Naptr => 35,
            RecordType::Sshfp => 44,
            RecordType::Tlsa => 52,
            RecordType::Svcb => 64,
            RecordType::Https => 65,
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
            RecordType::Naptr => "NAPTR",
            RecordType::Sshfp => "SSHFP",
            RecordType::Tlsa => "TLSA",
            RecordType::Svcb => "SVCB",
            RecordType::Https => "HTTPS",
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
    Caa(Box<Caa>),
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
    /// Naming authority pointer (RFC 3403 §4.1).
    Naptr(Box<Naptr>),
    /// SSH host key fingerprint (RFC 4255 §3.1).
    Sshfp {
        /// Key algorithm (1 RSA, 2 DSA, 3 ECDSA, 4 Ed25519, 6 Ed448).
        algorithm: u8,
        /// Fingerprint type (1 SHA-1, 2 SHA-256).
        fingerprint_type: u8,
        /// The fingerprint, as many bytes as its type makes.
        fingerprint: Vec<u8>,
    },
    /// TLS certificate association (RFC 6698 §2.1).
    Tlsa {
        /// Certificate usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
        usage: u8,
        /// Selector (0 whole certificate, 1 SubjectPublicKeyInfo).
        selector: u8,
        /// Matching type (0 exact, 1 SHA-256, 2 SHA-512).
        matching_type: u8,
        /// Certificate association data.
        data: Vec<u8>,
    },
    /// Service binding (RFC 9460).
    Svcb(Box<Svcb>),
    /// Service binding for HTTPS (RFC 9460 §9): the same data as SVCB.
    Https(Box<Svcb>),
    /// Start of authority.
    Soa(Box<Soa>),
}

// The rarer, larger types are boxed so that a record of the common ones
// stays small: a zone holds a million of them.
const _: () = assert!(std::mem::size_of::<RecordData>() <= 32);

/// The data of a CAA record (RFC 8659 §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caa {
    /// Flags (128 = issuer critical).
    pub flags: u8,
    /// Property tag (`issue`, `issuewild`, `iodef`, ...).
    pub tag: String,
    /// Property value.
    pub value: Vec<u8>,
}

/// The data of a NAPTR record (RFC 3403 §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Naptr {
    /// Order in which records must be processed, lowest first.
    pub order: u16,
    /// Preference among records of equal order.
    pub preference: u16,
    /// Flags (letters and digits, e.g. `S`, `U`, `A`, `P`).
    pub flags: Vec<u8>,
    /// Service parameters (`SIP+D2U`, `E2U+sip`, ...).
    pub services: Vec<u8>,
    /// Substitution expression; empty when `replacement` is used.
    pub regexp: Vec<u8>,
    /// Next name to look up; the root when `regexp` is used.
    pub replacement: DomainName,
}

/// The data of an SVCB or HTTPS record (RFC 9460 §2.2), checked: in
/// AliasMode (priority 0) no parameters; in ServiceMode parameters sorted
/// by key, each key once, `mandatory` keys present, `no-default-alpn` only
/// beside `alpn`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Svcb {
    /// 0 for AliasMode, otherwise the preference (lower first).
    pub priority: u16,
    /// Where the service is; the root (`.`) means the owner itself in
    /// ServiceMode and "no service" in AliasMode.
    pub target: DomainName,
    /// Parameters, in key order.
    pub params: Vec<SvcParam>,
}

/// One SvcParam (RFC 9460 §7): the keys of the registry's first entries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SvcParam {
    /// Keys a client must understand to use the record (key 0).
    Mandatory(Vec<u16>),
    /// Application protocols offered, e.g. `h2`, `h3` (key 1).
    Alpn(Vec<String>),
    /// The default protocol (`http/1.1` for HTTPS) is not offered (key 2).
    NoDefaultAlpn,
    /// TCP or UDP port (key 3).
    Port(u16),
    /// IPv4 addresses of the target (key 4).
    Ipv4Hint(Vec<Ipv4Addr>),
    /// Encrypted ClientHello configuration list (key 5).
    Ech(Vec<u8>),
    /// IPv6 addresses of the target (key 6).
    Ipv6Hint(Vec<Ipv6Addr>),
}

/// Names of the SvcParam keys, by key number.
const SVC_KEYS: [&str; 7] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
];

impl SvcParam {
    /// The key number (RFC 9460 §14.3.2).
    pub fn key(&self) -> u16 {
        match self {
            SvcParam::Mandatory(_) => 0,
            SvcParam::Alpn(_) => 1,
            SvcParam::NoDefaultAlpn => 2,
            SvcParam::Port(_) => 3,
            SvcParam::Ipv4Hint(_) => 4,
            SvcParam::Ech(_) => 5,
            SvcParam::Ipv6Hint(_) => 6,
        }
    }

    /// The key's name in presentation form.
    pub fn key_name(key: u16) -> String {
        SVC_KEYS
            .get(usize::from(key))
            .map_or_else(|| format!("key{key}"), |name| (*name).to_owned())
    }

    /// The parameter in presentation form (`alpn=h2,http/1.1`).
    pub fn presentation(&self) -> String {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
        let key = Self::key_name(self.key());
        match self {
            SvcParam::Mandatory(keys) => {
                let names: Vec<String> = keys.iter().map(|k| Self::key_name(*k)).collect();
                format!("{key}={}", names.join(","))
            }
            SvcParam::Alpn(ids) => format!("{key}={}", ids.join(",")),
            SvcParam::NoDefaultAlpn => key,
            SvcParam::Port(port) => format!("{key}={port}"),
            SvcParam::Ipv4Hint(ips) => format!("{key}={}", list(ips)),
            SvcParam::Ech(config) => format!("{key}={}", data_encoding::BASE64.encode(config)),
            SvcParam::Ipv6Hint(ips) => format!("{key}={}", list(ips)),
        }
    }
}

impl Svcb {
    /// Checks the rules of RFC 9460 §2.4 and §8 and puts the parameters in
    /// key order, as the wire form needs them.
    pub fn new(
        priority: u16,
        target: DomainName,
        mut params: Vec<SvcParam>,
    ) -> Result<Self, String> {
        if priority == 0 && !params.is_empty() {
            return Err(
                "priority 0 is AliasMode, which takes no SvcParams; give the record a priority of 1 or more to use them"
                    .into(),
            );
        }
        params.sort_by_key(SvcParam::key);
        if let Some(pair) = params.windows(2).find(|p| p[0].key() == p[1].key()) {
            return Err(format!(
                "SvcParam {} is given twice; give it once, with every value in one comma-separated list",
                SvcParam::key_name(pair[0].key())
            ));
        }
        let has = |key: u16| params.iter().any(|p| p.key() == key);
        if let Some(SvcParam::Mandatory(keys)) = params.first() {
            for key in keys {
                if !has(*key) {
                    return Err(format!(
                        "mandatory lists {} but the record does not set it; add it or drop it from mandatory",
                        SvcParam::key_name(*key)
                    ));
                }
            }
        }
        if has(2) && !has(1) {
            return Err(
                "no-default-alpn needs an alpn list beside it (RFC 9460 §7.1.1); add alpn=h2 or similar"
                    .into(),
            );
        }
        Ok(Svcb {
            priority,
            target,
            params,
        })
    }

    /// The record in presentation form (`1 . alpn=h2 port=8443`).
    pub fn presentation(&self) -> String {
        let mut text = format!("{} {}", self.priority, self.target);
        for param in &self.params {
            text.push(' ');
            text.push_str(&param.presentation());
        }
        text
    }
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
            RecordData::Naptr { .. } => RecordType::Naptr,
            RecordData::Sshfp { .. } => RecordType::Sshfp,
            RecordData::Tlsa { .. } => RecordType::Tlsa,
            RecordData::Svcb(_) => RecordType::Svcb,
            RecordData::Https(_) => RecordType::Https,
            RecordData::Soa(_) => RecordType::Soa,
        }
    }

    /// The host name this record points at, for records whose target may
    /// need an address (NS, MX, SRV, SVCB, HTTPS; the root for a service
    /// binding at its owner) or is an alias (CNAME).
    pub fn target(&self) -> Option<&DomainName> {
        match self {
            RecordData::Ns(name) | RecordData::Cname(name) | RecordData::Ptr(name) => Some(name),
            RecordData::Mx { exchange, .. } => Some(exchange),
            RecordData::Srv { target, .. } => Some(target),
            RecordData::Svcb(svcb) | RecordData::Https(svcb) => Some(&svcb.target),
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
            RecordType::Naptr => parse_naptr(value, origin)?,
            RecordType::Sshfp => parse_sshfp(value)?,
            RecordType::Tlsa => parse_tlsa(value)?,
            RecordType::Svcb => RecordData::Svcb(Box::new(parse_svcb(rtype, value, origin)?)),
            RecordType::Https => RecordData::Https(Box::new(parse_svcb(rtype, value, origin)?)),
            RecordType::Soa => {
                return Err(
                    "SOA records are not written as records; set the zone's `soa:` block".into(),
                );
            }
        })
    }
}

impl RecordData {
    /// TXT data from the character strings of a zone file's record, one
    /// per quoted (or bare) field; a string over 255 bytes is split as a
    /// long YAML value is.
    pub fn txt(strings: &[Vec<u8>]) -> Result<Self, String> {
        if strings.is_empty() {
            return Err("TXT data needs at least one string; write e.g. \"v=spf1 -all\"".into());
        }
        Ok(RecordData::Txt(
            strings
                .iter()
                .flat_map(|s| split_character_strings(s))
                .collect(),
        ))
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
    Ok(RecordData::Caa(Box::new(Caa {
        flags,
        tag: tag.to_ascii_lowercase(),
        value: unquoted.as_bytes().to_vec(),
    })))
}

fn parse_ds(value: &str) -> Result<RecordData, String> {
    const FORM: &str = "12345 13 2 <64 hex digits>, as `gtm dnssec ds` prints it";
    let ([key_tag, algorithm, digest_type], digest) = fields_then_hex(value, RecordType::Ds, FORM)?;
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
    let digest = hex_data(&digest, "DS digest")?;
    check_length(
        &digest,
        length,
        "DS digest",
        &format!("digest type {digest_type}"),
    )?;
    Ok(RecordData::Ds {
        key_tag: number(key_tag, "DS key tag")?,
        algorithm: number(algorithm, "DS algorithm")?,
        digest_type,
        digest,
    })
}

/// The `N` leading fields of `value` and the hexadecimal data after them
/// (at least one field), for the types written that way (DS, TLSA, SSHFP).
fn fields_then_hex<'v, const N: usize>(
    value: &'v str,
    rtype: RecordType,
    form: &str,
) -> Result<([&'v str; N], Vec<&'v str>), String> {
    let mut fields = value.split_whitespace();
    let leading: Vec<&str> = fields.by_ref().take(N).collect();
    let hex: Vec<&str> = fields.collect();
    match <[&str; N]>::try_from(leading) {
        Ok(leading) if !hex.is_empty() => Ok((leading, hex)),
        _ => Err(format!(
            "{value:?} is not {rtype} data; write it as {form:?}"
        )),
    }
}

/// Data written in hexadecimal, in one field or several (long digests are
/// often split into groups).
fn hex_data(fields: &[&str], what: &str) -> Result<Vec<u8>, String> {
    let hex: String = fields.concat();
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| format!("{what} {hex:?} is not hexadecimal"))
}

/// Checks that a digest has the `length` its type (`made_by`) makes.
fn check_length(bytes: &[u8], length: usize, what: &str, made_by: &str) -> Result<(), String> {
    if bytes.len() == length {
        Ok(())
    } else {
        Err(format!(
            "{what} is {} bytes; {made_by} makes {length}",
            bytes.len()
        ))
    }
}

/// The fields of a record's data split by the zone-file rules (quoted
/// strings are one field), so a YAML value and a zone file read alike.
fn fields_of(value: &str) -> Result<Vec<Token>, String> {
    crate::masterfile::data_fields(value)
}

fn parse_tlsa(value: &str) -> Result<RecordData, String> {
    const FORM: &str = "3 1 1 <64 hex digits: the SHA-256 of the key>";
    let ([usage, selector, matching_type], data) = fields_then_hex(value, RecordType::Tlsa, FORM)?;
    let usage: u8 = number(usage, "TLSA usage")?;
    if usage > 3 {
        return Err(format!(
            "TLSA usage {usage} is not defined; use 0 (PKIX-TA), 1 (PKIX-EE), 2 (DANE-TA) or 3 (DANE-EE)"
        ));
    }
    let selector: u8 = number(selector, "TLSA selector")?;
    if selector > 1 {
        return Err(format!(
            "TLSA selector {selector} is not defined; use 0 (whole certificate) or 1 (public key)"
        ));
    }
    let matching_type: u8 = number(matching_type, "TLSA matching type")?;
    let data = hex_data(&data, "TLSA data")?;
    let made_by = format!("matching type {matching_type}");
    match matching_type {
        0 if data.is_empty() => {
            return Err("TLSA data is empty; give the certificate or key".into());
        }
        0 => {}
        1 => check_length(&data, 32, "TLSA data", &made_by)?,
        2 => check_length(&data, 64, "TLSA data", &made_by)?,
        other => {
            return Err(format!(
                "TLSA matching type {other} is not defined; use 0 (exact), 1 (SHA-256) or 2 (SHA-512)"
            ));
        }
    }
    Ok(RecordData::Tlsa {
        usage,
        selector,
        matching_type,
        data,
    })
}

fn parse_sshfp(value: &str) -> Result<RecordData, String> {
    const FORM: &str = "4 2 <64 hex digits>, as `ssh-keygen -r HOST` prints it";
    let ([algorithm, fingerprint_type], fingerprint) =
        fields_then_hex(value, RecordType::Sshfp, FORM)?;
    let algorithm: u8 = number(algorithm, "SSHFP algorithm")?;
    if !matches!(algorithm, 1 | 2 | 3 | 4 | 6) {
        return Err(format!(
            "SSHFP algorithm {algorithm} is not defined; use 1 (RSA), 2 (DSA), 3 (ECDSA), 4 (Ed25519) or 6 (Ed448)"
        ));
    }
    let fingerprint_type: u8 = number(fingerprint_type, "SSHFP fingerprint type")?;
    let length = match fingerprint_type {
        1 => 20,
        2 => 32,
        other => {
            return Err(format!(
                "SSHFP fingerprint type {other} is not defined; use 1 (SHA-1) or 2 (SHA-256)"
            ));
        }
    };
    let fingerprint = hex_data(&fingerprint, "SSHFP fingerprint")?;
    check_length(
        &fingerprint,
        length,
        "SSHFP fingerprint",
        &format!("fingerprint type {fingerprint_type}"),
    )?;
    Ok(RecordData::Sshfp {
        algorithm,
        fingerprint_type,
        fingerprint,
    })
}

fn parse_naptr(value: &str, origin: &DomainName) -> Result<RecordData, String> {
    const FORM: &str = "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com.";
    let fields = fields_of(value)?;
    let [order, preference, flags, services, regexp, replacement] = fields.as_slice() else {
        return Err(format!(
            "{value:?} is not NAPTR data (order, preference, flags, services, regexp, replacement); write it as {FORM:?}"
        ));
    };
    let string = |token: &Token, what: &str| {
        if token.bytes.len() > 255 {
            Err(format!(
                "NAPTR {what} is {} bytes; at most 255 fit",
                token.bytes.len()
            ))
        } else {
            Ok(token.bytes.clone())
        }
    };
    let flags = string(flags, "flags")?;
    if !flags.iter().all(u8::is_ascii_alphanumeric) {
        return Err(format!(
            "NAPTR flags {:?} must be letters or digits, such as \"S\", \"A\", \"U\" or \"\"",
            String::from_utf8_lossy(&flags)
        ));
    }
    let regexp = string(regexp, "regexp")?;
    let replacement =
        DomainName::parse_in_zone(&replacement.text, origin).map_err(|e| e.to_string())?;
    if !regexp.is_empty() && replacement != DomainName::root() {
        return Err(
            "a NAPTR record has a regexp or a replacement, not both (RFC 3403 §4.1); write \"\" for the regexp or . for the replacement"
                .into(),
        );
    }
    Ok(RecordData::Naptr(Box::new(Naptr {
        order: number(&order.text, "NAPTR order")?,
        preference: number(&preference.text, "NAPTR preference")?,
        flags,
        services: string(services, "services")?,
        regexp,
        replacement,
    })))
}

fn parse_svcb(rtype: RecordType, value: &str, origin: &DomainName) -> Result<Svcb, String> {
    const FORM: &str = "1 . alpn=h2,http/1.1 port=8443";
    let fields = fields_of(value)?;
    let [priority, target, params @ ..] = fields.as_slice() else {
        return Err(format!(
            "{value:?} is not {rtype} data; write it as {FORM:?} (or \"0 target.example.com.\" for an alias)"
        ));
    };
    let priority = number(&priority.text, &format!("{rtype} priority"))?;
    let target = DomainName::parse_in_zone(&target.text, origin).map_err(|e| e.to_string())?;
    let mut parsed = Vec::new();
    let mut params = params.iter().peekable();
    while let Some(field) = params.next() {
        if field.is_quoted() {
            return Err(format!(
                "{rtype} value {} has no key; write key=\"value\", e.g. alpn=\"h2,h3\"",
                field.text
            ));
        }
        let text = String::from_utf8_lossy(&field.bytes).into_owned();
        let (key, value) = match text.split_once('=') {
            None => (text.as_str(), None),
            // `key="value"`: the quoted value is the next field.
            Some((key, "")) => (
                key,
                params
                    .next_if(|next| next.is_quoted())
                    .map(|next| String::from_utf8_lossy(&next.bytes).into_owned()),
            ),
            Some((key, value)) => (key, Some(value.to_owned())),
        };
        parsed.push(svc_param(key, value.as_deref())?);
    }
    Svcb::new(priority, target, parsed)
}

/// One SvcParam from its key and value as written.
fn svc_param(key: &str, value: Option<&str>) -> Result<SvcParam, String> {
    let needs = |example: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("SvcParam {key} needs a value; write {key}={example}"))
    };
    let addresses =
        |example: &str| -> Result<Vec<&str>, String> { Ok(needs(example)?.split(',').collect()) };
    Ok(match key {
        "mandatory" => {
            let mut keys = Vec::new();
            for name in needs("alpn,port")?.split(',') {
                let key = SVC_KEYS
                    .iter()
                    .position(|k| *k == name)
                    .filter(|k| *k != 0)
                    .ok_or_else(|| {
                        format!(
                            "mandatory lists {name:?}; it may list alpn, no-default-alpn, port, ipv4hint, ech or ipv6hint"
                        )
                    })? as u16;
                if keys.contains(&key) {
                    return Err(format!("mandatory lists {name} twice; list it once"));
                }
                keys.push(key);
            }
            keys.sort_unstable();
            SvcParam::Mandatory(keys)
        }
        "alpn" => {
            let mut ids = Vec::new();
            for id in needs("h2,http/1.1")?.split(',') {
                alpn_id(id)?;
                ids.push(id.to_owned());
            }
            SvcParam::Alpn(ids)
        }
        "no-default-alpn" if value.is_none() => SvcParam::NoDefaultAlpn,
        "no-default-alpn" => {
            return Err("no-default-alpn takes no value; write it alone".into());
        }
        "port" => SvcParam::Port(number(needs("8443")?, "SvcParam port")?),
        "ipv4hint" => SvcParam::Ipv4Hint(
            addresses("192.0.2.1,192.0.2.2")?
                .into_iter()
                .map(|ip| {
                    ip.parse().map_err(|_| {
                        format!("ipv4hint {ip:?} is not an IPv4 address; write ipv4hint=192.0.2.1,192.0.2.2")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "ipv6hint" => SvcParam::Ipv6Hint(
            addresses("2001:db8::1")?
                .into_iter()
                .map(|ip| {
                    ip.parse().map_err(|_| {
                        format!("ipv6hint {ip:?} is not an IPv6 address; write ipv6hint=2001:db8::1,2001:db8::2")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "ech" => SvcParam::Ech(
            data_encoding::BASE64
                .decode(needs("<base64 ECHConfigList>")?.as_bytes())
                .map_err(|_| "ech is not base64; give the ECHConfigList in base64".to_owned())?,
        ),
        other => {
            return Err(format!(
                "unknown SvcParam {other:?}; use mandatory, alpn, no-default-alpn, port, ipv4hint, ech or ipv6hint"
            ));
        }
    })
}

/// Checks one ALPN protocol id as the topology accepts it: 1 to 255
/// printable bytes that need no escaping in a zone file.
pub fn alpn_id(id: &str) -> Result<(), String> {
    let plain = |b: u8| b.is_ascii_graphic() && !b"\",;()\\".contains(&b);
    if id.is_empty() || id.len() > 255 || !id.bytes().all(plain) {
        return Err(format!(
            "ALPN id {id:?} must be 1 to 255 printable characters without commas, quotes, semicolons, parentheses or backslashes, such as h2, h3 or http/1.1"
        ));
    }
    Ok(())
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
            RecordData::Caa(Box::new(Caa {
                flags: 0,
                tag: "issue".into(),
                value: b"letsencrypt.org".to_vec()
            }))
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

    #[test]
    fn parses_service_bindings_in_any_key_order_and_quoting() {
        let o = origin();
        let RecordData::Https(https) = RecordData::parse(
            RecordType::Https,
            r#"1 . ipv6hint=2001:db8::1 port=8443 alpn="h2,http/1.1" ipv4hint=192.0.2.1,192.0.2.2 mandatory=port,alpn"#,
            &o,
        )
        .unwrap() else {
            panic!("not HTTPS");
        };
        assert_eq!(https.target, DomainName::root());
        assert_eq!(
            https.params.iter().map(SvcParam::key).collect::<Vec<_>>(),
            [0, 1, 3, 4, 6],
            "sorted by key for the wire form"
        );
        assert_eq!(
            https.presentation(),
            "1 . mandatory=alpn,port alpn=h2,http/1.1 port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1"
        );
        // What it prints reads back the same.
        assert_eq!(
            RecordData::parse(RecordType::Https, &https.presentation(), &o).unwrap(),
            RecordData::Https(https)
        );
        let alias = RecordData::parse(RecordType::Svcb, "0 svc.example.net.", &o).unwrap();
        assert_eq!(
            alias,
            RecordData::Svcb(Box::new(Svcb {
                priority: 0,
                target: DomainName::parse_absolute("svc.example.net.").unwrap(),
                params: Vec::new(),
            }))
        );
        let ech = RecordData::parse(
            RecordType::Https,
            "1 svc alpn=h3 no-default-alpn ech=AEX+DQ==",
            &o,
        )
        .unwrap();
        let RecordData::Https(ech) = ech else {
            panic!("not HTTPS")
        };
        assert_eq!(ech.target.to_string(), "svc.example.com.");
        assert_eq!(ech.params[2], SvcParam::Ech(vec![0x00, 0x45, 0xfe, 0x0d]));
    }

    #[test]
    fn bad_service_bindings_say_what_to_write() {
        let o = origin();
        for (value, expected) in [
            ("1 . foo=bar", "unknown SvcParam \"foo\""),
            ("1 . key65000=x", "unknown SvcParam"),
            ("1 . port=1 port=2", "port is given twice"),
            (
                "1 . mandatory=port alpn=h2",
                "mandatory lists port but the record does not set it",
            ),
            ("1 . mandatory=mandatory", "it may list alpn"),
            (
                "1 . ipv4hint=192.0.2.300",
                "ipv4hint \"192.0.2.300\" is not an IPv4 address",
            ),
            ("1 . ipv6hint=192.0.2.1", "not an IPv6 address"),
            ("1 . no-default-alpn", "needs an alpn list"),
            ("1 . no-default-alpn=x alpn=h2", "takes no value"),
            ("1 . alpn=", "needs a value; write alpn=h2,http/1.1"),
            ("1 . port=99999", "SvcParam port"),
            ("1 . ech=!!", "not base64"),
            ("0 . alpn=h2", "AliasMode"),
            ("1", "write it as"),
            ("1 . \"h2\"", "has no key"),
        ] {
            let err = RecordData::parse(RecordType::Https, value, &o).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn tlsa_sshfp_and_naptr_are_checked() {
        let o = origin();
        let sha256 = "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6";
        let tlsa = RecordData::parse(RecordType::Tlsa, &format!("3 1 1 {}", sha256), &o).unwrap();
        assert!(
            matches!(tlsa, RecordData::Tlsa { usage: 3, selector: 1, matching_type: 1, ref data } if data.len() == 32)
        );
        let sshfp = RecordData::parse(
            RecordType::Sshfp,
            &format!("4 2 {}", &sha256.to_lowercase()),
            &o,
        )
        .unwrap();
        assert!(matches!(
            sshfp,
            RecordData::Sshfp {
                algorithm: 4,
                fingerprint_type: 2,
                ..
            }
        ));
        let naptr = RecordData::parse(
            RecordType::Naptr,
            r#"100 10 "S" "SIP+D2U" "" _sip._udp"#,
            &o,
        )
        .unwrap();
        assert_eq!(
            naptr,
            RecordData::Naptr(Box::new(Naptr {
                order: 100,
                preference: 10,
                flags: b"S".to_vec(),
                services: b"SIP+D2U".to_vec(),
                regexp: Vec::new(),
                replacement: DomainName::parse_absolute("_sip._udp.example.com.").unwrap(),
            }))
        );
        let enum_naptr = RecordData::parse(
            RecordType::Naptr,
            r#"10 100 "u" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
            &o,
        )
        .unwrap();
        assert!(
            matches!(enum_naptr, RecordData::Naptr(ref naptr) if naptr.regexp == b"!^.*$!sip:info@example.com!")
        );

        for (rtype, value, expected) in [
            (
                RecordType::Tlsa,
                format!("4 1 1 {sha256}"),
                "TLSA usage 4 is not defined",
            ),
            (
                RecordType::Tlsa,
                format!("3 2 1 {sha256}"),
                "TLSA selector 2",
            ),
            (
                RecordType::Tlsa,
                format!("3 1 3 {sha256}"),
                "matching type 3 is not defined",
            ),
            (
                RecordType::Tlsa,
                "3 1 2 abcd".to_owned(),
                "matching type 2 makes 64",
            ),
            (RecordType::Tlsa, "3 1 1 xyz".to_owned(), "not hexadecimal"),
            (RecordType::Tlsa, "3 1".to_owned(), "write it as"),
            (
                RecordType::Sshfp,
                format!("5 2 {sha256}"),
                "SSHFP algorithm 5",
            ),
            (
                RecordType::Sshfp,
                format!("4 1 {sha256}"),
                "fingerprint type 1 makes 20",
            ),
            (
                RecordType::Sshfp,
                "4 3 00".to_owned(),
                "fingerprint type 3 is not defined",
            ),
            (
                RecordType::Naptr,
                r#"100 10 "S" "SIP+D2U" _sip"#.to_owned(),
                "write it as",
            ),
            (
                RecordType::Naptr,
                r#"100 10 "S+" "SIP+D2U" "" ."#.to_owned(),
                "letters or digits",
            ),
            (
                RecordType::Naptr,
                r#"1 1 "u" "E2U+sip" "!^.*$!x!" host"#.to_owned(),
                "not both",
            ),
            (
                RecordType::Naptr,
                r#"1 1 "u" "E2U+sip . ."#.to_owned(),
                "not closed",
            ),
        ] {
            let err = RecordData::parse(rtype, &value, &o).unwrap_err();
            assert!(err.contains(expected), "{rtype} {value}: {err}");
        }
    }
}
