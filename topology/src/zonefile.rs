//! A zone as an RFC 1035 master file, so its static data can be checked
//! with the usual tools (`kzonecheck`, `named-checkzone`) or loaded into
//! another authoritative server for comparison.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::{GeoName, Topology, Zone};
use crate::rdata::{RecordData, Svcb};

/// The zone's records in master-file form. Geo names, whose answers depend
/// on the client, are written with the addresses of their first listed
/// region that has one, marked by a comment.
pub fn zone_file(topology: &Topology, zone: &Zone) -> String {
    let mut out = String::new();
    let soa = &zone.soa;
    let _ = writeln!(out, "$ORIGIN {}", zone.origin);
    let _ = writeln!(
        out,
        "{} {} IN SOA {} {} {} {} {} {} {}",
        zone.origin,
        zone.soa_ttl,
        soa.mname,
        soa.rname,
        soa.serial,
        soa.refresh,
        soa.retry,
        soa.expire,
        soa.minimum
    );
    for record in &zone.records {
        let _ = writeln!(
            out,
            "{} {} IN {} {}",
            record.name,
            record.ttl,
            record.record_type(),
            presentation(&record.data)
        );
    }
    for geo in &zone.geo {
        let _ = writeln!(
            out,
            "; geo name ({} policy over {} regions): answered per client; first region shown",
            geo.policy.as_str(),
            geo.regions.len()
        );
        let (v4, v6) = geo_addresses(topology, geo);
        if let Some(v4) = v4 {
            let _ = writeln!(out, "{} {} IN A {v4}", geo.name, geo.ttl);
        }
        if let Some(v6) = v6 {
            let _ = writeln!(out, "{} {} IN AAAA {v6}", geo.name, geo.ttl);
        }
        if let Some(https) = geo_https(topology, geo) {
            let _ = writeln!(
                out,
                "{} {} IN HTTPS {}",
                geo.name,
                geo.ttl,
                https.presentation()
            );
        }
    }
    out
}

/// The HTTPS record a master file shows for a geo name with `https:`: the
/// one that sends clients to its first listed region.
pub fn geo_https(topology: &Topology, geo: &GeoName) -> Option<Svcb> {
    let first = topology.region(*geo.regions.first()?);
    Some(geo.https.as_ref()?.record(1, &first.vip))
}

/// The addresses a master file shows for a geo name: the IPv4 and the
/// IPv6 VIP of the first listed region that has one.
pub fn geo_addresses(topology: &Topology, geo: &GeoName) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let vips = geo.regions.iter().map(|id| topology.region(*id).vip);
    (
        vips.clone().find_map(|vip| vip.ipv4),
        vips.clone().find_map(|vip| vip.ipv6),
    )
}

/// Record data in presentation form.
pub fn presentation(data: &RecordData) -> String {
    match data {
        RecordData::A(ip) => ip.to_string(),
        RecordData::Aaaa(ip) => ip.to_string(),
        RecordData::Ns(name) | RecordData::Cname(name) | RecordData::Ptr(name) => name.to_string(),
        RecordData::Mx {
            preference,
            exchange,
        } => format!("{preference} {exchange}"),
        RecordData::Txt(strings) => strings
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {target}"),
        RecordData::Caa(caa) => format!("{} {} {}", caa.flags, caa.tag, quoted(&caa.value)),
        RecordData::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => format!(
            "{key_tag} {algorithm} {digest_type} {}",
            data_encoding::HEXUPPER.encode(digest)
        ),
        RecordData::Naptr(naptr) => format!(
            "{} {} {} {} {} {}",
            naptr.order,
            naptr.preference,
            quoted(&naptr.flags),
            quoted(&naptr.services),
            quoted(&naptr.regexp),
            naptr.replacement
        ),
        RecordData::Sshfp {
            algorithm,
            fingerprint_type,
            fingerprint,
        } => format!(
            "{algorithm} {fingerprint_type} {}",
            data_encoding::HEXUPPER.encode(fingerprint)
        ),
        RecordData::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => format!(
            "{usage} {selector} {matching_type} {}",
            data_encoding::HEXUPPER.encode(data)
        ),
        RecordData::Svcb(svcb) | RecordData::Https(svcb) => svcb.presentation(),
        RecordData::Soa(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
    }
}

/// A character string in double quotes, with `"` and `\` escaped and
/// non-printable bytes written as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_text() {
        assert_eq!(quoted(b"a \"b\" \\c\n"), "\"a \\\"b\\\" \\\\c\\010\"");
    }
}
