//! A minimal DNS client for comparing servers.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};

/// How a query travels.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// UDP with an OPT record offering 1232 bytes.
    UdpEdns,
    /// UDP without EDNS.
    UdpPlain,
    /// TCP with EDNS.
    Tcp,
}

pub const ALL: [Transport; 3] = [Transport::UdpEdns, Transport::UdpPlain, Transport::Tcp];

/// Sends one query and returns the parsed reply.
pub fn query(server: SocketAddr, name: &str, rtype: RecordType, transport: Transport) -> Message {
    let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if !matches!(transport, Transport::UdpPlain) {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        message.edns = Some(edns);
    }
    let bytes = message.to_vec().unwrap();
    let timeout = Some(Duration::from_secs(5));
    let reply = match transport {
        Transport::UdpEdns | Transport::UdpPlain => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(timeout).unwrap();
            socket.send_to(&bytes, server).unwrap();
            let mut buf = vec![0; 65535];
            let (len, _) = socket.recv_from(&mut buf).expect("UDP reply");
            buf.truncate(len);
            buf
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(server).unwrap();
            stream.set_read_timeout(timeout).unwrap();
            stream
                .write_all(&(bytes.len() as u16).to_be_bytes())
                .unwrap();
            stream.write_all(&bytes).unwrap();
            let mut len = [0; 2];
            stream.read_exact(&mut len).expect("TCP reply length");
            let mut buf = vec![0; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).expect("TCP reply");
            buf
        }
    };
    Message::from_vec(&reply).expect("reply parses")
}

/// The A records for www.example.com as seen by a client in `subnet`/24,
/// or `None` when no reply came.
pub fn answer(server: SocketAddr, subnet: &str) -> Option<Vec<IpAddr>> {
    let mut message = Message::new(0x7777, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii("www.example.com.").unwrap(),
        RecordType::A,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.options_mut()
        .insert(EdnsOption::Subnet(ClientSubnet::new(
            subnet.parse().unwrap(),
            24,
            0,
        )));
    message.edns = Some(edns);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket.send_to(&message.to_vec().unwrap(), server).unwrap();
    let mut buf = [0; 1232];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..len]).expect("the reply parses");
    Some(
        reply
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect(),
    )
}
