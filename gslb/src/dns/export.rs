//! A signed zone as a master file (`gslb --zone-file ORIGIN --signed`), so
//! offline verifiers (`ldns-verify-zone`, `dnssec-verify`) can check what
//! gslb signs: the static data as [`topology::zonefile`] shows it (geo
//! names with their first region's addresses), the apex DNSKEY RRset, an
//! RRSIG over every RRset the zone is authoritative for, and a
//! conventional NSEC chain over its names.
//!
//! The chain exists only here: online answers prove denial with compact
//! NSECs made per answer ([`crate::dnssec::compact_nsec`]), which a zone
//! verifier cannot check because they cover no other name.

use std::fmt::Write;

use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::HTTPS;
use topology::zonefile::{geo_addresses, geo_https, presentation};
use topology::{DomainName, RecordType, Topology};

use super::records::{rrset_records, to_svcb};
use super::signed::canonical_rdata;
use crate::dnssec::{CanonicalRrset, DNSKEY, NSEC, RRSIG, ZoneSigner, nsec_rdata};
use crate::state::ServingState;
use crate::zone::ZoneData;

/// One RRset to write: its records in presentation form beside their
/// canonical RDATA, and whether the zone signs it.
struct Entry {
    rtype: u16,
    ttl: u32,
    text: Vec<String>,
    rdata: Vec<Vec<u8>>,
    signed: bool,
}

/// The zone at `origin` signed at `now` (seconds since the epoch) as a
/// master file, or `None` when `state` serves no signed zone there.
pub fn signed_zone_file(state: &ServingState, origin: &DomainName, now: u32) -> Option<String> {
    let zone = state.zones.zones.iter().find(|z| z.origin == *origin)?;
    let signer = state.signers.get(origin.wire())?;
    let mut names: Vec<(DomainName, Vec<Entry>, bool)> = Vec::new();
    for (wire, node) in &zone.nodes {
        let Some(name) = DomainName::from_wire(wire) else {
            continue;
        };
        let glue = below_cut(zone, wire);
        let mut entries: Vec<Entry> = node
            .rrsets()
            .map(|id| {
                let rrset = state.zones.rrset(id);
                let delegation_ns = node.is_cut && rrset.rtype == RecordType::Ns;
                Entry {
                    rtype: rrset.rtype.code(),
                    ttl: rrset.ttl,
                    text: rrset.data.iter().map(presentation).collect(),
                    rdata: rdata_of(rrset),
                    // A delegation's NS RRset and glue are the child's.
                    signed: !(glue || delegation_ns),
                }
            })
            .collect();
        if let Some(index) = node.geo() {
            entries.extend(geo_entries(&state.topology, zone, index));
        }
        if name == *origin {
            entries.push(dnskey_entry(signer));
        }
        if !entries.is_empty() {
            names.push((name, entries, glue));
        }
    }
    // RFC 4034 §6.1: labels compared from the root, as octet strings.
    names.sort_by(|a, b| labels_from_root(&a.0).cmp(&labels_from_root(&b.0)));
    let chain: Vec<usize> = (0..names.len()).filter(|i| !names[*i].2).collect();
    let negative_ttl = state.zones.rrset(zone.negative_soa).ttl;
    for (at, index) in chain.iter().enumerate() {
        let next = &names[chain[(at + 1) % chain.len()]].0;
        let entries = &names[*index].1;
        let mut types: Vec<u16> = entries.iter().map(|e| e.rtype).collect();
        types.extend([RRSIG, NSEC]);
        let rdata = nsec_rdata(next.wire(), &types);
        let text = format!("{next} {}", type_list(&types));
        names[*index].1.push(Entry {
            rtype: NSEC,
            ttl: negative_ttl,
            text: vec![text],
            rdata: vec![rdata],
            signed: true,
        });
    }

    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {origin}");
    for (name, mut entries, _) in names {
        // The SOA first, as zone file readers expect of the apex.
        entries.sort_by_key(|e| (e.rtype != RecordType::Soa.code(), e.rtype));
        for entry in entries {
            for text in &entry.text {
                let _ = writeln!(
                    out,
                    "{name} {} IN {} {text}",
                    entry.ttl,
                    type_name(entry.rtype)
                );
            }
            if !entry.signed {
                continue;
            }
            let rrset = CanonicalRrset {
                owner: name.wire().to_vec(),
                rtype: entry.rtype,
                ttl: entry.ttl,
                rdata: entry.rdata,
            };
            for rrsig in signer.sign(rrset, now).iter() {
                let _ = writeln!(out, "{name} {} IN RRSIG {}", entry.ttl, rrsig_text(rrsig));
            }
        }
    }
    Some(out)
}

/// Whether `name` lies strictly below a delegation point of `zone`.
fn below_cut(zone: &ZoneData, name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        at += 1 + usize::from(len);
        let Some(ancestor) = name.get(at..) else {
            return false;
        };
        if ancestor.len() <= zone.origin.wire().len() {
            return false;
        }
        if zone.nodes.get(ancestor).is_some_and(|node| node.is_cut) {
            return true;
        }
    }
    false
}

/// The canonical RDATA of `rrset`'s records.
fn rdata_of(rrset: crate::zone::Rrset<'_>) -> Vec<Vec<u8>> {
    rrset_records(rrset, None)
        .iter()
        .filter_map(|record| canonical_rdata(&record.data))
        .collect()
}

/// The A and AAAA RRsets a geo name is shown with, and its HTTPS RRset
/// when it has `https:`.
fn geo_entries(topology: &Topology, zone: &ZoneData, index: usize) -> Vec<Entry> {
    let geo = &zone.geo[index];
    let (v4, v6) = geo_addresses(topology, geo);
    let entry = |rtype: RecordType, text: String, rdata: Vec<u8>| Entry {
        rtype: rtype.code(),
        ttl: geo.ttl,
        text: vec![text],
        rdata: vec![rdata],
        signed: true,
    };
    let mut entries = Vec::new();
    if let Some(v4) = v4 {
        entries.push(entry(RecordType::A, v4.to_string(), v4.octets().to_vec()));
    }
    if let Some(v6) = v6 {
        entries.push(entry(
            RecordType::Aaaa,
            v6.to_string(),
            v6.octets().to_vec(),
        ));
    }
    if let Some(https) = geo_https(topology, geo) {
        let data = RData::HTTPS(HTTPS(to_svcb(&https)));
        if let Some(rdata) = canonical_rdata(&data) {
            entries.push(entry(RecordType::Https, https.presentation(), rdata));
        }
    }
    entries
}

/// The apex DNSKEY RRset, every key's record in presentation form.
fn dnskey_entry(signer: &ZoneSigner) -> Entry {
    let rdata: Vec<Vec<u8>> = signer.dnskeys().collect();
    let text = rdata
        .iter()
        .map(|key| {
            format!(
                "{} {} {} {}",
                u16::from_be_bytes([key[0], key[1]]),
                key[2],
                key[3],
                base64(&key[4..])
            )
        })
        .collect();
    Entry {
        rtype: DNSKEY,
        ttl: topology::dnssec::DNSKEY_TTL,
        text,
        rdata,
        signed: true,
    }
}

/// An RRSIG's RDATA (RFC 4034 §3.1) in presentation form, times as
/// seconds since the epoch (§3.2 allows either form).
fn rrsig_text(rdata: &[u8]) -> String {
    let u16_at = |at: usize| u16::from_be_bytes([rdata[at], rdata[at + 1]]);
    let u32_at =
        |at: usize| u32::from_be_bytes([rdata[at], rdata[at + 1], rdata[at + 2], rdata[at + 3]]);
    let signer_end = 18 + name_length(&rdata[18..]);
    let signer = DomainName::from_wire(&rdata[18..signer_end])
        .map_or_else(|| "?".to_owned(), |name| name.to_string());
    format!(
        "{} {} {} {} {} {} {} {signer} {}",
        type_name(u16_at(0)),
        rdata[2],
        rdata[3],
        u32_at(4),
        u32_at(8),
        u32_at(12),
        u16_at(16),
        base64(&rdata[signer_end..])
    )
}

/// Length of the uncompressed wire name at the start of `wire`.
fn name_length(wire: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    at
}

fn labels_from_root(name: &DomainName) -> Vec<&[u8]> {
    let mut labels: Vec<&[u8]> = name.labels().collect();
    labels.reverse();
    labels
}

fn type_list(types: &[u16]) -> String {
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .into_iter()
        .map(type_name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A type's mnemonic, or RFC 3597's `TYPEnnn`.
fn type_name(code: u16) -> String {
    match code {
        RRSIG => "RRSIG".into(),
        NSEC => "NSEC".into(),
        DNSKEY => "DNSKEY".into(),
        _ => RecordType::from_code(code)
            .map_or_else(|| format!("TYPE{code}"), |t| t.as_str().to_owned()),
    }
}

fn base64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}
