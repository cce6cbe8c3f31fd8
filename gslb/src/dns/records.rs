//! The zone's RRsets as hickory records, made when a reply needs them:
//! keeping a hickory copy of every RRset cost more memory than the rest
//! of a million-name zone, for the few names the slow path answers (the
//! fast path answers from its templates).

use hickory_proto::rr::rdata::svcb::{
    Alpn, EchConfigList, IpHint, Mandatory, SvcParamKey, SvcParamValue,
};
use hickory_proto::rr::rdata::{self, HTTPS, MX, NAPTR, NULL, SOA, SRV, SSHFP, SVCB, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use topology::{DomainName, RecordData, SvcParam, Svcb};

use crate::zone::Rrset;

/// The records of `rrset`, owned by `owner` if given (a name synthesized
/// from a wildcard), else by the RRset's own name.
pub fn rrset_records(rrset: Rrset<'_>, owner: Option<&DomainName>) -> Vec<Record> {
    let owner = to_name(owner.unwrap_or(rrset.name));
    rrset
        .data
        .iter()
        .map(|data| Record::from_rdata(owner.clone(), rrset.ttl, to_rdata(data)))
        .collect()
}

/// Converts a topology name to a hickory name.
pub fn to_name(name: &DomainName) -> Name {
    let mut converted =
        Name::from_labels(name.labels()).expect("topology names are valid wire names");
    converted.set_fqdn(true);
    converted
}

/// Converts a hickory name to its lowercase wire form, if well formed.
pub fn to_wire(name: &Name) -> Option<DomainName> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        wire.push(u8::try_from(label.len()).ok()?);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    DomainName::from_wire(&wire)
}

/// The wire form of SVCB or HTTPS data.
pub(crate) fn to_svcb(svcb: &Svcb) -> SVCB {
    let params = svcb
        .params
        .iter()
        .map(|param| match param {
            SvcParam::Mandatory(keys) => (
                SvcParamKey::Mandatory,
                SvcParamValue::Mandatory(Mandatory(
                    keys.iter().map(|k| SvcParamKey::from(*k)).collect(),
                )),
            ),
            SvcParam::Alpn(ids) => (SvcParamKey::Alpn, SvcParamValue::Alpn(Alpn(ids.clone()))),
            SvcParam::NoDefaultAlpn => (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
            SvcParam::Port(port) => (SvcParamKey::Port, SvcParamValue::Port(*port)),
            SvcParam::Ipv4Hint(ips) => (
                SvcParamKey::Ipv4Hint,
                SvcParamValue::Ipv4Hint(IpHint(ips.iter().map(|ip| rdata::A(*ip)).collect())),
            ),
            SvcParam::Ech(config) => (
                SvcParamKey::EchConfigList,
                SvcParamValue::EchConfigList(EchConfigList(config.clone())),
            ),
            SvcParam::Ipv6Hint(ips) => (
                SvcParamKey::Ipv6Hint,
                SvcParamValue::Ipv6Hint(IpHint(ips.iter().map(|ip| rdata::AAAA(*ip)).collect())),
            ),
        })
        .collect();
    SVCB::new(svcb.priority, to_name(&svcb.target), params)
}

fn to_rdata(data: &RecordData) -> RData {
    match data {
        RecordData::A(ip) => RData::A(rdata::A(*ip)),
        RecordData::Aaaa(ip) => RData::AAAA(rdata::AAAA(*ip)),
        RecordData::Ns(name) => RData::NS(rdata::NS(to_name(name))),
        RecordData::Cname(name) => RData::CNAME(rdata::CNAME(to_name(name))),
        RecordData::Ptr(name) => RData::PTR(rdata::PTR(to_name(name))),
        RecordData::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(*preference, to_name(exchange))),
        RecordData::Txt(strings) => {
            RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
        }
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, to_name(target))),
        RecordData::Caa(caa) => {
            let topology::Caa { flags, tag, value } = &**caa;
            // Written as raw RDATA (RFC 8659 §4.1) so the value goes out
            // byte for byte as configured, whatever the tag.
            let mut raw = Vec::with_capacity(2 + tag.len() + value.len());
            raw.push(*flags);
            raw.push(tag.len() as u8);
            raw.extend_from_slice(tag.as_bytes());
            raw.extend_from_slice(value);
            RData::Unknown {
                code: WireType::CAA,
                rdata: NULL::with(raw),
            }
        }
        RecordData::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => {
            // Raw RDATA (RFC 4034 §5.1), like CAA: no parsing on the way out.
            let mut raw = Vec::with_capacity(4 + digest.len());
            raw.extend_from_slice(&key_tag.to_be_bytes());
            raw.push(*algorithm);
            raw.push(*digest_type);
            raw.extend_from_slice(digest);
            RData::Unknown {
                code: WireType::DS,
                rdata: NULL::with(raw),
            }
        }
        RecordData::Naptr(naptr) => RData::NAPTR(NAPTR::new(
            naptr.order,
            naptr.preference,
            naptr.flags.as_slice().into(),
            naptr.services.as_slice().into(),
            naptr.regexp.as_slice().into(),
            to_name(&naptr.replacement),
        )),
        RecordData::Sshfp {
            algorithm,
            fingerprint_type,
            fingerprint,
        } => RData::SSHFP(SSHFP::new(
            (*algorithm).into(),
            (*fingerprint_type).into(),
            fingerprint.clone(),
        )),
        RecordData::Tlsa {
            usage,
            selector,
            matching_type,
            data,
        } => RData::TLSA(TLSA::new(
            (*usage).into(),
            (*selector).into(),
            (*matching_type).into(),
            data.clone(),
        )),
        RecordData::Svcb(svcb) => RData::SVCB(to_svcb(svcb)),
        RecordData::Https(svcb) => RData::HTTPS(HTTPS(to_svcb(svcb))),
        RecordData::Soa(soa) => RData::SOA(SOA::new(
            to_name(&soa.mname),
            to_name(&soa.rname),
            soa.serial,
            soa.refresh as i32,
            soa.retry as i32,
            soa.expire as i32,
            soa.minimum,
        )),
    }
}
