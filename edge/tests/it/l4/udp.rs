//! UDP services on the VIP (`l4.udp`): real datagrams from many client
//! sockets through a real L4 node to UDP echo servers on the fake L7 nodes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use edge::l4::{L4Node, Listeners, Options};
use edge::proxy_protocol::Transport;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::support::{
    FAST_HEALTH, Harness, L4_NAME, PATIENCE, Ports, SeenDatagram, eventually, l7_ip, topology_yaml,
    udp_ask,
};

/// A client socket on 127.0.0.1: one flow.
async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Sends `text` from `client` through the VIP and returns the node that
/// answered, checking the payload came back intact.
async fn node_of(h: &Harness, client: &UdpSocket, text: &str) -> String {
    let answer = udp_ask(client, h.udp.unwrap(), text, PATIENCE)
        .await
        .unwrap_or_else(|| panic!("no answer to {text:?}"));
    let (node, echoed) = answer.split_once('|').expect("NAME|payload");
    assert_eq!(echoed, text);
    node.to_owned()
}

/// `count` flows through the VIP, each with the node that answered it.
async fn open_flows(h: &Harness, count: usize) -> Vec<(UdpSocket, String)> {
    let mut flows = Vec::new();
    for i in 0..count {
        let client = client().await;
        let node = node_of(h, &client, &format!("before {i}")).await;
        flows.push((client, node));
    }
    flows
}

/// The sum of a per-node UDP metric over the harness's nodes.
async fn per_node_sum(h: &Harness, metric: &str, labels: &str) -> f64 {
    let mut sum = 0.0;
    for echo in &h.echoes {
        sum += h
            .metric(&format!("{metric}{{l7_node=\"{}\"{labels}}}", echo.name))
            .await;
    }
    sum
}

#[tokio::test]
async fn flows_spread_over_the_nodes_and_each_sticks_to_one() {
    let h = Harness::start_udp(3, "", "idle_timeout: 5m").await;
    let mut clients = Vec::new();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..48 {
        let client = client().await;
        let node = node_of(&h, &client, &format!("hello {i}")).await;
        *per_node.entry(node).or_default() += 1;
        clients.push(client);
    }
    assert_eq!(per_node.len(), 3, "every node gets flows: {per_node:?}");

    // One flow's datagrams all go to one node, over one socket of the L4's.
    let first = node_of(&h, &clients[0], "again 0").await;
    for i in 1..20 {
        assert_eq!(node_of(&h, &clients[0], &format!("again {i}")).await, first);
    }
    let echo = h.echoes.iter().find(|e| e.name == first).unwrap();
    let peers = echo.peers();
    let flow_socket = *peers.last().unwrap();
    assert_eq!(
        peers.iter().filter(|&&p| p == flow_socket).count(),
        21,
        "\"hello 0\" and the 20 more came over one socket"
    );

    let status = h.status();
    assert_eq!(status.udp_flows, 48);
    assert_eq!(status.l7_nodes.iter().map(|n| n.udp_flows).sum::<i64>(), 48);
    assert_eq!(per_node_sum(&h, "edge_l4_udp_flows_total", "").await, 48.0);
    assert_eq!(h.metric("edge_l4_udp_open_flows").await, 48.0);
    for direction in ["to_l7", "to_client"] {
        let labels = format!(",direction=\"{direction}\"");
        assert_eq!(
            per_node_sum(&h, "edge_l4_udp_datagrams_total", &labels).await,
            48.0 + 20.0,
            "{direction}"
        );
    }
    // "hello 0".."hello 47" and "again 0".."again 19": each way the same.
    let bytes: usize = (0..48).map(|i| format!("hello {i}").len()).sum::<usize>()
        + (0..20).map(|i| format!("again {i}").len()).sum::<usize>();
    assert_eq!(
        per_node_sum(
            &h,
            "edge_l4_udp_relayed_bytes_total",
            ",direction=\"to_l7\""
        )
        .await,
        bytes as f64
    );
}

#[tokio::test]
async fn a_node_going_down_moves_only_its_flows() {
    let mut h = Harness::start_udp(3, FAST_HEALTH, "idle_timeout: 5m").await;
    let clients = open_flows(&h, 30).await;
    let victim = clients[0].1.clone();
    let on_victim = clients.iter().filter(|(_, n)| *n == victim).count();
    let flows_before = |h: &Harness| {
        h.status()
            .l7_nodes
            .iter()
            .map(|n| (n.name.clone(), n.udp_flows))
            .collect::<HashMap<_, _>>()
    };
    let before = flows_before(&h);
    let opened_elsewhere = per_node_sum(&h, "edge_l4_udp_flows_total", "").await;

    // The node dies mid-stream: its UDP socket closes, its health fails.
    let index = h.echoes.iter().position(|e| e.name == victim).unwrap();
    h.echoes[index].kill().await;
    h.l7[index].set_healthy(false);
    h.wait_health(&victim, "down").await;

    for (i, (client, node)) in clients.iter().enumerate() {
        let now = node_of(&h, client, &format!("after {i}")).await;
        if *node == victim {
            assert_ne!(now, victim, "flow {i} left the dead node");
        } else {
            assert_eq!(now, *node, "flow {i} stayed on its healthy node");
        }
    }
    assert_eq!(
        h.metric("edge_l4_udp_moved_flows_total").await,
        on_victim as f64
    );
    // Exactly the victim's flows were opened anew; the others kept theirs.
    assert_eq!(
        per_node_sum(&h, "edge_l4_udp_flows_total", "").await,
        opened_elsewhere + on_victim as f64
    );
    let after = flows_before(&h);
    assert_eq!(after[&victim], 0);
    assert_eq!(after.values().sum::<i64>(), 30);
    for (name, count) in &before {
        if *name != victim {
            assert!(after[name] >= *count, "{name} kept its flows");
        }
    }
}

#[tokio::test]
async fn a_closed_udp_port_moves_only_its_flows_while_the_node_stays_healthy() {
    // Health checks far apart: only the ICMP errors can move the flows.
    let mut h = Harness::start_udp(3, "      health: { interval: 1h, timeout: 1s }\n", "").await;
    let clients = open_flows(&h, 30).await;
    let victim = clients[0].1.clone();
    let index = h.echoes.iter().position(|e| e.name == victim).unwrap();
    h.echoes[index].kill().await;

    let vip = h.udp.unwrap();
    let mut moved = 0;
    for (i, (client, node)) in clients.iter().enumerate() {
        if *node != victim {
            assert_eq!(node_of(&h, client, &format!("after {i}")).await, *node);
            continue;
        }
        moved += 1;
        // This one meets the closed port: lost, and the port's ICMP error
        // waits on the flow's socket.
        client.send_to(b"lost", vip).await.unwrap();
        // The next one moves. Loopback delivers the ICMP error before the
        // L4 node reads this datagram; should it not, this one is lost too
        // and the next try moves.
        let mut answer = None;
        for _ in 0..5 {
            answer = udp_ask(client, vip, "after", Duration::from_secs(2)).await;
            if answer.is_some() {
                break;
            }
        }
        let answer = answer.expect("the flow moved to another node");
        assert!(!answer.starts_with(&format!("{victim}|")), "{answer}");
    }
    assert!(moved > 0);
    assert_eq!(
        h.metric("edge_l4_udp_moved_flows_total").await,
        f64::from(moved)
    );
    assert!(
        h.metric("edge_l4_udp_dropped_datagrams_total{reason=\"l7_unreachable\"}")
            .await
            >= f64::from(moved)
    );
    assert_eq!(h.status().l7_nodes[index].health, "up");
    assert_eq!(h.status().l7_nodes[index].udp_flows, 0);
}

#[tokio::test]
async fn idle_flows_end_and_the_next_datagram_opens_a_new_one() {
    let h = Harness::start_udp(1, "", "idle_timeout: 200ms").await;
    let client = client().await;
    assert_eq!(node_of(&h, &client, "one").await, "l7a");
    eventually("the idle flow to end", async || {
        h.metric("edge_l4_udp_idle_timeouts_total").await == 1.0
    })
    .await;
    assert_eq!(h.status().udp_flows, 0);
    assert_eq!(
        h.metric("edge_l4_udp_active_flows{l7_node=\"l7a\"}").await,
        0.0
    );

    assert_eq!(node_of(&h, &client, "two").await, "l7a");
    assert_eq!(
        h.metric("edge_l4_udp_flows_total{l7_node=\"l7a\"}").await,
        2.0
    );
    let peers = h.echoes[0].peers();
    assert_eq!(peers.len(), 2);
    assert_ne!(peers[0], peers[1], "the new flow has a socket of its own");
}

#[tokio::test]
async fn a_flood_past_max_flows_is_dropped_and_counted_while_flows_carry_on() {
    let h = Harness::start_udp(2, "", "max_flows: 4").await;
    let vip = h.udp.unwrap();
    let mut kept = Vec::new();
    for i in 0..4 {
        let client = client().await;
        node_of(&h, &client, &format!("kept {i}")).await;
        kept.push(client);
    }
    let mut flood = Vec::new();
    for _ in 0..50 {
        let client = client().await;
        client.send_to(b"flood", vip).await.unwrap();
        flood.push(client);
    }
    eventually("50 datagrams dropped for max_flows", async || {
        h.metric("edge_l4_udp_dropped_datagrams_total{reason=\"max_flows\"}")
            .await
            == 50.0
    })
    .await;
    for (i, client) in kept.iter().enumerate() {
        node_of(&h, client, &format!("still {i}")).await;
    }
    let mut buf = [0u8; 64];
    for client in &flood {
        assert!(
            client.try_recv_from(&mut buf).is_err(),
            "a dropped flow got an answer"
        );
    }
    assert_eq!(h.status().udp_flows, 4);
    assert_eq!(per_node_sum(&h, "edge_l4_udp_flows_total", "").await, 4.0);
}

#[tokio::test]
async fn with_proxy_protocol_each_datagram_announces_its_client() {
    let h = Harness::start_udp(1, "", "proxy_protocol: true").await;
    let client = client().await;
    assert_eq!(node_of(&h, &client, "first").await, "l7a");
    assert_eq!(node_of(&h, &client, "second").await, "l7a");
    let expected = SeenDatagram {
        source: client.local_addr().unwrap(),
        destination: h.udp.unwrap(),
        l4_node: L4_NAME.to_owned(),
        transport: Transport::Datagram,
    };
    assert_eq!(h.echoes[0].headers(), [expected.clone(), expected]);
    // The header is not counted as relayed payload.
    assert_eq!(
        h.metric("edge_l4_udp_relayed_bytes_total{l7_node=\"l7a\",direction=\"to_l7\"}")
            .await,
        ("first".len() + "second".len()) as f64
    );
}

#[tokio::test]
async fn without_a_healthy_node_new_flows_are_dropped_and_counted() {
    let h = Harness::start_udp(1, FAST_HEALTH, "").await;
    h.l7[0].set_healthy(false);
    h.wait_health("l7a", "down").await;
    let client = client().await;
    client.send_to(b"anyone?", h.udp.unwrap()).await.unwrap();
    eventually("the datagram to be dropped", async || {
        h.metric("edge_l4_udp_dropped_datagrams_total{reason=\"no_healthy_l7\"}")
            .await
            == 1.0
    })
    .await;
    assert_eq!(h.status().udp_flows, 0);

    h.l7[0].set_healthy(true);
    h.wait_health("l7a", "up").await;
    assert_eq!(node_of(&h, &client, "now?").await, "l7a");
    let distinct: HashSet<SocketAddr> = h.echoes[0].peers().into_iter().collect();
    assert_eq!(distinct.len(), 1);
}

#[tokio::test]
async fn a_udp_socket_without_a_service_is_refused_at_start() {
    let ports = Ports {
        http: 8080,
        https: 8443,
        l7_admin: 9100,
    };
    let yaml = topology_yaml(ports, &[("l7a", l7_ip(0))], "      udp: [{ port: 53 }]\n");
    let topology = topology::parse(&yaml, "test.yaml").unwrap();
    let socket = client().await;
    let port = socket.local_addr().unwrap().port();
    let refused = L4Node::start(
        &topology,
        L4_NAME,
        Listeners {
            vip: Vec::new(),
            udp: vec![socket],
            admin: None,
        },
        Options::default(),
        CancellationToken::new(),
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(
        refused.contains(&format!(
            "the UDP socket 127.0.0.1:{port} has no service: regions.test.l4.udp has no `port: {port}`"
        )),
        "{refused}"
    );
}
