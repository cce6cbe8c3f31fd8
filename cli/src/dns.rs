//! DNS queries as a stub resolver sends them: EDNS(0), an optional Client
//! Subnet option (RFC 7871) for the client a question is asked for, UDP
//! with a retry over TCP when the reply is truncated. The only module that
//! names hickory types; everything it returns is plain text and numbers.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

/// IPv4 clients are sent as this prefix (what public resolvers send).
pub const V4_SOURCE: u8 = 24;
/// IPv6 clients are sent as this prefix.
pub const V6_SOURCE: u8 = 56;

/// One question.
#[derive(Clone, Debug)]
pub struct Question {
    /// The server.
    pub server: SocketAddr,
    /// The name, absolute (a trailing dot is added if missing).
    pub name: String,
    /// The type mnemonic (`A`, `AAAA`, `SOA`, …).
    pub rtype: String,
    /// The client to send as ECS.
    pub client: Option<IpAddr>,
    /// TCP from the start.
    pub tcp: bool,
    /// How long to wait for the reply.
    pub timeout: Duration,
}

impl Question {
    /// A UDP question without ECS and a short timeout.
    pub fn new(server: SocketAddr, name: &str, rtype: &str) -> Question {
        Question {
            server,
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            client: None,
            tcp: false,
            timeout: Duration::from_secs(2),
        }
    }
}

/// One resource record of a reply, in presentation form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Owner name.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Type mnemonic.
    pub rtype: String,
    /// Record data.
    pub data: String,
}

/// The ECS option of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Subnet {
    /// The address echoed.
    pub address: IpAddr,
    /// The source prefix echoed.
    pub source: u8,
    /// The scope the answer holds for.
    pub scope: u8,
}

/// A parsed reply.
#[derive(Clone, Debug, Serialize)]
pub struct Reply {
    /// `NOERROR`, `NXDOMAIN`, …
    pub rcode: String,
    /// AA.
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Answer>,
    /// Authority section.
    pub authority: Vec<Answer>,
    /// The ECS option, if the server sent one.
    pub subnet: Option<Subnet>,
    /// `udp` or `tcp` (after a truncated UDP reply).
    pub transport: &'static str,
    /// Round-trip time in milliseconds.
    pub elapsed_ms: f64,
}

impl Reply {
    /// The addresses of the A/AAAA answers.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.answers
            .iter()
            .filter(|a| a.rtype == "A" || a.rtype == "AAAA")
            .filter_map(|a| a.data.parse().ok())
            .collect()
    }
}

/// The network sent as ECS for `client`: /24 for IPv4, /56 for IPv6, with
/// the host bits cleared (RFC 7871 §6: bits past the prefix must be zero).
pub fn client_subnet(client: IpAddr) -> (IpAddr, u8) {
    match client {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - V4_SOURCE);
            (IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), V4_SOURCE)
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - V6_SOURCE);
            (IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), V6_SOURCE)
        }
    }
}

/// Whether `text` names a record type this module can ask for.
pub fn valid_type(text: &str) -> bool {
    RecordType::from_str(&text.to_ascii_uppercase()).is_ok()
}

/// Asks `question`; over TCP again when the UDP reply is truncated.
pub fn ask(question: &Question) -> Result<Reply, String> {
    let rtype = RecordType::from_str(&question.rtype.to_ascii_uppercase())
        .map_err(|_| format!("unknown record type {:?}", question.rtype))?;
    let name = if question.name.ends_with('.') {
        question.name.clone()
    } else {
        format!("{}.", question.name)
    };
    let name = Name::from_ascii(&name).map_err(|e| format!("bad name {name:?}: {e}"))?;
    let id = query_id();
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name, rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some(client) = question.client {
        let (address, source) = client_subnet(client);
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(address, source, 0)));
    }
    message.edns = Some(edns);
    let bytes = message
        .to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    let started = Instant::now();
    let (reply, transport) = if question.tcp {
        (exchange_tcp(question, &bytes)?, "tcp")
    } else {
        let reply = exchange_udp(question, &bytes, id)?;
        if reply.metadata.truncation {
            (exchange_tcp(question, &bytes)?, "tcp")
        } else {
            (reply, "udp")
        }
    };
    if reply.metadata.id != id {
        return Err(format!(
            "reply id {} does not match the query's {id}",
            reply.metadata.id
        ));
    }
    let subnet = reply
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Subnet))
        .and_then(|option| match option {
            EdnsOption::Subnet(s) => Some(Subnet {
                address: s.addr(),
                source: s.source_prefix(),
                scope: s.scope_prefix(),
            }),
            _ => None,
        });
    let records = |records: &[hickory_proto::rr::Record]| {
        records
            .iter()
            .map(|r| Answer {
                name: r.name.to_string(),
                ttl: r.ttl,
                rtype: r.record_type().to_string(),
                data: r.data.to_string(),
            })
            .collect()
    };
    Ok(Reply {
        rcode: rcode_name(u16::from(reply.metadata.response_code)),
        authoritative: reply.metadata.authoritative,
        answers: records(&reply.answers),
        authority: records(&reply.authorities),
        subnet,
        transport,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The mnemonic dig prints for an RCODE.
fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        other => format!("RCODE{other}"),
    }
}

fn exchange_udp(question: &Question, bytes: &[u8], id: u16) -> Result<Message, String> {
    let local: SocketAddr = match question.server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(question.server)
        .map_err(|e| format!("{}: {e}", question.server))?;
    socket
        .send(bytes)
        .map_err(|e| format!("{} (UDP): {e}", question.server))?;
    let deadline = Instant::now() + question.timeout;
    let mut buf = vec![0; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{} (UDP): no reply", question.server));
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let len = socket.recv(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("{} (UDP): no reply", question.server)
            }
            _ => format!("{} (UDP): {e}", question.server),
        })?;
        // A stray datagram (an earlier query's late reply) is skipped.
        if let Ok(message) = Message::from_vec(&buf[..len])
            && message.metadata.id == id
        {
            return Ok(message);
        }
    }
}

fn exchange_tcp(question: &Question, bytes: &[u8]) -> Result<Message, String> {
    let server = question.server;
    let mut stream = TcpStream::connect_timeout(&server, question.timeout)
        .map_err(|e| format!("{server} (TCP): {e}"))?;
    stream
        .set_read_timeout(Some(question.timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_owned())?;
    stream
        .write_all(&len.to_be_bytes())
        .and_then(|()| stream.write_all(bytes))
        .map_err(|e| format!("{server} (TCP): {e}"))?;
    let mut len = [0; 2];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("{server} (TCP): no reply: {e}"))?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut buf)
        .map_err(|e| format!("{server} (TCP): short reply: {e}"))?;
    Message::from_vec(&buf).map_err(|e| format!("{server}: the reply does not parse: {e}"))
}

/// A query id that differs between calls (time and process mixed; no
/// security rests on it: the server is ours, on loopback).
fn query_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = (nanos as u16) ^ (std::process::id() as u16);
    mixed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_sent_as_its_network() {
        assert_eq!(
            client_subnet("81.2.69.160".parse().unwrap()),
            ("81.2.69.0".parse().unwrap(), 24)
        );
        assert_eq!(
            client_subnet("2a02:8800:1:2:3::1".parse().unwrap()),
            ("2a02:8800:1::".parse().unwrap(), 56)
        );
    }

    #[test]
    fn record_types_are_checked_case_insensitively() {
        assert!(valid_type("aaaa"));
        assert!(valid_type("TXT"));
        assert!(!valid_type("BOGUS"));
    }
}
