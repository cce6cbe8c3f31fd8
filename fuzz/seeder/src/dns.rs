//! Queries for `dns_request` and `fast_slow_equivalence`: the questions gslb's
//! tests and the Knot comparison ask, and every way they ask them, limited
//! to names of examples/three-regions.yaml, the zone both targets load.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::Seed;

/// The questions of gslb/tests/it/{authoritative,edns,geo_answers,
/// hostile_input,fast_path}.rs and tests/system/knot_interop.rs, each once.
/// fast_path.rs's names that only its extended topology has (`big`,
/// `mailer`, `_sip._tcp`, the extra geo names, …) are left out.
const QUESTIONS: &[(&str, RecordType)] = &[
    ("example.com.", RecordType::SOA),
    ("example.com.", RecordType::NS),
    ("example.com.", RecordType::MX),
    ("example.com.", RecordType::TXT),
    ("example.com.", RecordType::CAA),
    ("example.com.", RecordType::A),
    ("example.com.", RecordType::AAAA),
    ("example.com.", RecordType::ANY),
    ("ns1.example.com.", RecordType::A),
    ("ns1.example.com.", RecordType::Unknown(65280)),
    ("mail.example.com.", RecordType::AAAA),
    ("static.example.com.", RecordType::A),
    ("static.example.com.", RecordType::AAAA),
    ("static.example.com.", RecordType::MX),
    ("static.example.com.", RecordType::TXT),
    ("static.example.com.", RecordType::ANY),
    ("static.example.com.", RecordType::Unknown(65280)),
    ("StAtIc.ExAmPlE.cOm.", RecordType::A),
    ("StAtIc.ExAmPlE.CoM.", RecordType::AAAA),
    ("WWW.EXAMPLE.COM.", RecordType::A),
    ("www.example.com.", RecordType::A),
    ("www.example.com.", RecordType::AAAA),
    ("www.example.com.", RecordType::TXT),
    ("www.example.com.", RecordType::ANY),
    ("api.example.com.", RecordType::A),
    ("api.example.com.", RecordType::AAAA),
    ("api.example.com.", RecordType::TXT),
    ("api.example.com.", RecordType::CNAME),
    ("shop.apps.example.com.", RecordType::A),
    ("shop.apps.example.com.", RecordType::AAAA),
    ("x.apps.example.com.", RecordType::TXT),
    ("a.b.apps.example.com.", RecordType::TXT),
    ("apps.example.com.", RecordType::A),
    ("dev.example.com.", RecordType::NS),
    ("dev.example.com.", RecordType::A),
    ("dev.example.com.", RecordType::DS),
    ("host.dev.example.com.", RecordType::A),
    ("deep.host.dev.example.com.", RecordType::MX),
    ("ns1.dev.example.com.", RecordType::A),
    ("nope.example.com.", RecordType::A),
    ("deep.nope.example.com.", RecordType::A),
    ("deep.nope.example.com.", RecordType::AAAA),
    ("x.static.example.com.", RecordType::A),
    ("x.ns1.example.com.", RecordType::A),
    ("a.hostmaster.example.com.", RecordType::TXT),
    ("www.example.org.", RecordType::A),
    ("org.", RecordType::NS),
    ("com.", RecordType::A),
    (".", RecordType::A),
    (".", RecordType::SOA),
];

/// Client subnets: geo_answers.rs's CLIENTS and its City-database cases,
/// fast_path.rs's SUBNETS, hostile_input.rs's seed.
const SUBNETS: &[(&str, u8)] = &[
    ("81.2.69.0", 24),
    ("8.8.8.0", 24),
    ("200.160.0.0", 20),
    ("49.44.0.0", 16),
    ("1.1.1.0", 24),
    ("41.0.0.0", 24),
    ("2a02:8800::", 32),
    ("175.16.199.0", 24),
    ("67.43.156.0", 24),
    ("2a02:cf40::", 32),
    ("81.2.69.192", 26),
    ("2.0.0.0", 8),
    ("203.0.113.77", 32),
    ("2001:db8:1::", 48),
    ("2c0f:f000::", 24),
    ("192.0.2.0", 24),
    ("0.0.0.0", 0),
];

pub fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    // knot_interop.rs asks each question over UDP with and without EDNS.
    for &(name, rtype) in QUESTIONS {
        let label = label(name, rtype);
        seeds.push((label.clone(), Ask::new(name, rtype).bytes()));
        seeds.push((
            format!("{label}-edns"),
            Ask::new(name, rtype).with_edns(1232).bytes(),
        ));
        // fast_path.rs's signed corpus: the same with the DO bit.
        let mut signed = Ask::new(name, rtype).with_edns(1232);
        signed.opt().set_dnssec_ok(true);
        seeds.push((format!("{label}-edns-do"), signed.bytes()));
    }
    // Payload sizes: edns.rs, fast_path.rs's variants, hostile_input.rs.
    for (name, rtype, payload) in [
        ("static.example.com.", RecordType::A, 512),
        ("static.example.com.", RecordType::A, 4096),
        ("static.example.com.", RecordType::A, 65000),
        ("host.dev.example.com.", RecordType::ANY, 512),
        ("api.example.com.", RecordType::AAAA, 4096),
    ] {
        let ask = Ask::new(name, rtype).with_edns(payload);
        seeds.push((format!("{}-edns{payload}", label(name, rtype)), ask.bytes()));
    }
    // Client subnets, for the geo name and for names that ignore them
    // (geo_answers.rs, fast_path.rs).
    for &(address, source) in SUBNETS {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let ask = Ask::new("www.example.com.", rtype).ecs(address, source);
            let name = format!(
                "{}-ecs-{address}-{source}",
                label("www.example.com.", rtype)
            );
            seeds.push((name, ask.bytes()));
        }
    }
    // Signed geo answers (fast_path.rs), and one too big for 512 bytes.
    for &(address, source) in &SUBNETS[..4] {
        let mut ask = Ask::new("www.example.com.", RecordType::A).ecs(address, source);
        ask.opt().set_dnssec_ok(true);
        let name = format!(
            "{}-ecs-{address}-{source}-do",
            label("www.example.com.", RecordType::A)
        );
        seeds.push((name, ask.bytes()));
    }
    let mut small = Ask::new("example.com.", RecordType::NS).with_edns(512);
    small.opt().set_dnssec_ok(true);
    seeds.push((
        format!("{}-edns512-do", label("example.com.", RecordType::NS)),
        small.bytes(),
    ));
    for (name, address) in [
        ("api.example.com.", "81.2.69.0"),
        ("static.example.com.", "81.2.69.0"),
        ("nope.example.com.", "1.1.1.0"),
    ] {
        let ask = Ask::new(name, RecordType::A).ecs(address, 24);
        let label = format!("{}-ecs-{address}-24", label(name, RecordType::A));
        seeds.push((label, ask.bytes()));
    }
    seeds.extend(edge_cases());
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.replace(':', "_"), bytes))
        .collect()
}

/// Flags, opcodes, classes, EDNS versions and options, and malformed
/// packets: one of each, from the test named beside it.
fn edge_cases() -> Vec<Seed> {
    let static_a = || Ask::new("static.example.com.", RecordType::A);
    let www_a = || Ask::new("www.example.com.", RecordType::A);
    let mut rd = static_a();
    rd.0.metadata.recursion_desired = true; // authoritative.rs
    let mut cd = static_a();
    cd.0.metadata.checking_disabled = true; // fast_path.rs
    let mut do_bit = static_a().with_edns(1232); // edns.rs, fast_path.rs
    do_bit.opt().set_dnssec_ok(true);
    let mut version1 = static_a().with_edns(1232); // edns.rs: BADVERS
    version1.opt().set_version(1);
    let mut cookie = www_a().ecs("81.2.69.0", 24); // fast_path.rs
    cookie
        .opt()
        .options_mut()
        .insert(EdnsOption::Unknown(10, vec![1, 2, 3, 4, 5, 6, 7, 8]));
    let mut cases = vec![
        ("static.example.com-A-rd", rd.bytes()),
        ("static.example.com-A-cd", cd.bytes()),
        ("static.example.com-A-do", do_bit.bytes()),
        ("static.example.com-A-edns-version1", version1.bytes()),
        ("www.example.com-A-ecs-cookie", cookie.bytes()),
        (
            "static.example.com-A-class-ch",
            static_a().class(DNSClass::CH).bytes(),
        ),
        (
            "version.bind-TXT-class-ch",
            Ask::new("version.bind.", RecordType::TXT)
                .class(DNSClass::CH)
                .bytes(),
        ),
    ];
    // authoritative.rs: other opcodes are not implemented.
    for (label, opcode) in [
        ("example.com-SOA-opcode-status", OpCode::Status),
        ("example.com-SOA-opcode-notify", OpCode::Notify),
        ("example.com-SOA-opcode-update", OpCode::Update),
        ("example.com-SOA-opcode-3", OpCode::Unknown(3)),
    ] {
        let mut ask = Ask::new("example.com.", RecordType::SOA);
        ask.0.metadata.op_code = opcode;
        cases.push((label, ask.bytes()));
    }
    // authoritative.rs: malformed queries get FORMERR.
    let good = Ask::new("example.com.", RecordType::A).bytes();
    let mut empty = good[..12].to_vec();
    empty[5] = 0;
    let mut two = Ask::new("example.com.", RecordType::A);
    two.0.add_query(two.0.queries[0].clone());
    let mut pointer = good[..12].to_vec();
    pointer.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 0x02, 0, 1, 0, 1]);
    cases.extend([
        ("malformed-question-cut", good[..good.len() - 3].to_vec()),
        ("malformed-no-question", empty),
        ("malformed-two-questions", two.bytes()),
        ("malformed-question-pointer-into-header", pointer),
    ]);
    // geo_answers.rs: malformed client subnets get FORMERR.
    let scope = www_a().ecs_raw("81.2.69.0".parse().unwrap(), 24, 16);
    let beyond = www_a().ecs_raw("81.2.69.0".parse().unwrap(), 20, 0);
    let valid = www_a().ecs("81.2.69.0", 24).bytes();
    let option = valid.len() - 7; // FAMILY(2) SOURCE(1) SCOPE(1) ADDRESS(3)
    let mut too_long = valid.clone();
    too_long[option + 2] = 40;
    let mut family = valid;
    family[option + 1] = 7;
    cases.extend([
        ("malformed-ecs-scope-in-query", scope.bytes()),
        ("malformed-ecs-bits-beyond-source", beyond.bytes()),
        ("malformed-ecs-source-40-for-ipv4", too_long),
        ("malformed-ecs-family-7", family),
    ]);
    cases
        .into_iter()
        .map(|(label, bytes)| (label.to_owned(), bytes))
        .collect()
}

/// `example.com-MX` for `example.com.` MX, `root-SOA` for `.` SOA, and
/// `spelled-StAtIc.ExAmPlE.cOm-A` for a name not in lower case.
fn label(name: &str, rtype: RecordType) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    let name = if name.is_empty() { "root" } else { name };
    if name.bytes().any(|byte| byte.is_ascii_uppercase()) {
        format!("spelled-{name}-{rtype}")
    } else {
        format!("{name}-{rtype}")
    }
}

/// A query built as gslb/tests/it/support.rs's `Ask` builds it.
struct Ask(Message);

impl Ask {
    fn new(name: &str, rtype: RecordType) -> Ask {
        let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        Ask(message)
    }

    fn opt(&mut self) -> &mut Edns {
        self.0.edns.get_or_insert_with(|| {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            edns
        })
    }

    fn with_edns(mut self, payload: u16) -> Ask {
        self.opt().set_max_payload(payload);
        self
    }

    fn ecs(self, address: &str, source: u8) -> Ask {
        self.ecs_raw(address.parse().unwrap(), source, 0)
    }

    fn ecs_raw(mut self, address: IpAddr, source: u8, scope: u8) -> Ask {
        let subnet = ClientSubnet::new(address, source, scope);
        self.opt().options_mut().insert(EdnsOption::Subnet(subnet));
        self
    }

    fn class(mut self, class: DNSClass) -> Ask {
        self.0.queries[0].query_class = class;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.to_vec().unwrap()
    }
}
