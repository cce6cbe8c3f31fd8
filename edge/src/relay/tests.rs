//! Relay tests over real sockets on 127.0.0.1: bulk data both ways,
//! half-close each way, idle timeout on virtual time, reset propagation.
//! Each runs for both copy modes.

use super::*;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const MODES: [CopyMode; 2] = [CopyMode::Auto, CopyMode::Buffered];

/// client <-> (downstream | relay | upstream) <-> server, all connected.
struct Sockets {
    client: TcpStream,
    downstream: TcpStream,
    upstream: TcpStream,
    server: TcpStream,
}

async fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (connected.unwrap(), accepted.unwrap().0)
}

async fn sockets() -> Sockets {
    let (client, downstream) = connected_pair().await;
    let (upstream, server) = connected_pair().await;
    Sockets {
        client,
        downstream,
        upstream,
        server,
    }
}

fn config(mode: CopyMode) -> RelayConfig {
    RelayConfig {
        idle_timeout: Duration::from_secs(30),
        mode,
        ..RelayConfig::default()
    }
}

fn spawn_relay(
    downstream: TcpStream,
    upstream: TcpStream,
    config: RelayConfig,
) -> tokio::task::JoinHandle<Result<RelayStats, RelayError>> {
    tokio::spawn(async move { relay(downstream, upstream, &config).await })
}

/// Deterministic pseudo-random bytes (xorshift64*), `len` of them.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(1, 2);
    h.write(bytes);
    h.finish()
}

/// Writes `data` in uneven pieces, then shuts down writing.
async fn send_all(mut w: OwnedWriteHalf, data: Vec<u8>) {
    for piece in data.chunks(100_003) {
        w.write_all(piece).await.unwrap();
    }
    w.shutdown().await.unwrap();
}

/// Reads to EOF; returns (byte count, digest).
async fn receive_all(mut r: OwnedReadHalf) -> (usize, u64) {
    let mut h = SipHasher13::new_with_keys(1, 2);
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return (total, h.finish());
        }
        h.write(&buf[..n]);
        total += n;
    }
}

#[tokio::test]
async fn eight_mib_each_way_concurrently() {
    const LEN: usize = 8 * 1024 * 1024;
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let up_data = pattern(1, LEN);
        let down_data = pattern(2, LEN);
        let (up_digest, down_digest) = (digest(&up_data), digest(&down_data));
        let (client_r, client_w) = s.client.into_split();
        let (server_r, server_w) = s.server.into_split();
        let (_, _, at_server, at_client) = tokio::join!(
            send_all(client_w, up_data),
            send_all(server_w, down_data),
            receive_all(server_r),
            receive_all(client_r),
        );
        assert_eq!(at_server, (LEN, up_digest), "{mode:?}: client→server");
        assert_eq!(at_client, (LEN, down_digest), "{mode:?}: server→client");
        let stats = relay.await.unwrap().unwrap();
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(
            stats.transferred,
            Transferred {
                downstream_to_upstream: LEN as u64,
                upstream_to_downstream: LEN as u64,
            }
        );
        assert_eq!(
            stats.zero_copy,
            cfg!(target_os = "linux") && mode == CopyMode::Auto,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn client_half_close_still_receives_the_response() {
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let (mut client_r, mut client_w) = s.client.into_split();
        let (mut server_r, mut server_w) = s.server.into_split();

        client_w.write_all(b"request").await.unwrap();
        client_w.shutdown().await.unwrap();
        // The server sees the request and then EOF: the FIN was forwarded.
        let mut request = Vec::new();
        server_r.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"request");
        // Only now does it answer, over the still-open other direction.
        let response = pattern(3, 300_000);
        server_w.write_all(&response).await.unwrap();
        server_w.shutdown().await.unwrap();
        let mut got = Vec::new();
        client_r.read_to_end(&mut got).await.unwrap();
        assert!(got == response, "{mode:?}: response corrupted");

        let stats = relay.await.unwrap().unwrap();
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(stats.transferred.downstream_to_upstream, 7);
        assert_eq!(stats.transferred.upstream_to_downstream, 300_000);
    }
}

#[tokio::test]
async fn server_half_close_still_receives_the_client() {
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let (mut client_r, mut client_w) = s.client.into_split();
        let (mut server_r, mut server_w) = s.server.into_split();

        server_w.write_all(b"banner").await.unwrap();
        server_w.shutdown().await.unwrap();
        let mut banner = Vec::new();
        client_r.read_to_end(&mut banner).await.unwrap();
        assert_eq!(banner, b"banner");
        let upload = pattern(4, 200_000);
        client_w.write_all(&upload).await.unwrap();
        client_w.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_r.read_to_end(&mut got).await.unwrap();
        assert!(got == upload, "{mode:?}: upload corrupted");

        let stats = relay.await.unwrap().unwrap();
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(stats.transferred.downstream_to_upstream, 200_000);
        assert_eq!(stats.transferred.upstream_to_downstream, 6);
    }
}

/// Virtual time applies: the runtime auto-advances the clock to the idle
/// deadline once every task waits, and sockets with no traffic never wake
/// it earlier. Traffic in between pushes the deadline back.
#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_both_sides() {
    for mode in MODES {
        let s = sockets().await;
        let started = Instant::now();
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let (mut client_r, mut client_w) = s.client.into_split();
        let (mut server_r, _server_w) = s.server.into_split();

        // Three writes 20 s apart keep the 30 s timeout from firing.
        let mut buf = [0u8; 16];
        for i in 0..3u8 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            client_w.write_all(&[i]).await.unwrap();
            server_r.read_exact(&mut buf[..1]).await.unwrap();
            assert_eq!(buf[0], i);
        }
        let last_byte = Instant::now();
        assert!(!relay.is_finished(), "{mode:?}: timed out despite traffic");

        let stats = relay.await.unwrap().unwrap();
        let idle = Instant::now() - last_byte;
        assert_eq!(stats.end, RelayEnd::IdleTimeout, "{mode:?}");
        assert!(
            idle >= Duration::from_secs(30) && idle < Duration::from_secs(31),
            "{mode:?}: closed after {idle:?} idle"
        );
        assert!(Instant::now() - started >= Duration::from_secs(90));
        assert_eq!(stats.transferred.downstream_to_upstream, 3);
        // Both peers see the close.
        assert_eq!(client_r.read(&mut buf).await.unwrap(), 0);
        assert_eq!(server_r.read(&mut buf).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn upstream_reset_resets_the_client() {
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let mut client = s.client;
        let mut server = s.server;
        client.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        server.set_zero_linger().unwrap();
        drop(server); // RST

        let err = relay.await.unwrap().unwrap_err();
        assert_eq!(
            (err.side, err.op),
            (Side::Upstream, Operation::Read),
            "{mode:?}: {err}"
        );
        assert!(err.is_peer_reset(), "{mode:?}: {err}");
        assert_eq!(err.transferred.downstream_to_upstream, 5);
        assert!(err.to_string().contains("upstream (L7 node)"), "{err}");
        let read = client.read(&mut [0u8; 8]).await;
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset),
            "{mode:?}: the client must see the reset, not a clean EOF"
        );
    }
}

#[tokio::test]
async fn client_reset_resets_the_server() {
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        let client = s.client;
        let mut server = s.server;
        client.set_zero_linger().unwrap();
        drop(client); // RST

        let err = relay.await.unwrap().unwrap_err();
        assert_eq!(
            (err.side, err.op),
            (Side::Downstream, Operation::Read),
            "{mode:?}: {err}"
        );
        assert!(err.is_peer_reset());
        let read = server.read(&mut [0u8; 8]).await;
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn immediate_close_both_ways_is_a_clean_end() {
    for mode in MODES {
        let s = sockets().await;
        let relay = spawn_relay(s.downstream, s.upstream, config(mode));
        drop(s.client);
        drop(s.server);
        let stats = relay.await.unwrap().unwrap();
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(stats.transferred, Transferred::default());
    }
}

#[test]
fn display_and_defaults() {
    let c = RelayConfig::default();
    assert_eq!(c.mode, CopyMode::Auto);
    assert_eq!(c.chunk_size, 65_536);
    let t = Transferred {
        downstream_to_upstream: 1,
        upstream_to_downstream: 2,
    };
    assert_eq!(
        t.to_string(),
        "1 bytes client→upstream, 2 bytes upstream→client"
    );
    let err = RelayError {
        side: Side::Downstream,
        op: Operation::Write,
        source: io::ErrorKind::BrokenPipe.into(),
        transferred: t,
    };
    assert!(err.is_peer_reset());
    assert!(
        err.to_string().starts_with(
            "relay failed writing to the downstream (client) connection after 1 bytes"
        ),
        "{err}"
    );
}

/// One small exchange through `relay` as a short connection makes it: a
/// request, a response, both sides close.
#[cfg(target_os = "linux")]
async fn short_exchange() -> RelayStats {
    let s = sockets().await;
    let relay = spawn_relay(s.downstream, s.upstream, config(CopyMode::Auto));
    let (mut client, mut server) = (s.client, s.server);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut request = [0u8; 18];
    server.read_exact(&mut request).await.unwrap();
    server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
    drop(server);
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert_eq!(response, b"HTTP/1.1 200 OK\r\n\r\n");
    drop(client);
    relay.await.unwrap().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn short_connections_reuse_the_threads_pipes() {
    // The test's current-thread runtime runs every relay on this thread,
    // so they share its pool.
    assert_eq!(pipes::idle(), 0);
    let first = short_exchange().await;
    assert!(first.zero_copy);
    assert_eq!(pipes::idle(), 2, "both pipes went back to the pool");
    for _ in 0..10 {
        let stats = short_exchange().await;
        assert!(stats.zero_copy);
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(pipes::idle(), 2, "no pipe created, none lost");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_relay_dropped_with_bytes_in_a_pipe_does_not_pool_that_pipe() {
    let s = sockets().await;
    let relay = spawn_relay(s.downstream, s.upstream, config(CopyMode::Auto));
    let (client_r, client_w) = s.client.into_split();
    // The server never reads: the client's bytes pile up in the sockets'
    // buffers and then in the client→server pipe.
    let writer = tokio::spawn(send_all(client_w, pattern(3, 16 * 1024 * 1024)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.abort();
    assert!(relay.await.unwrap_err().is_cancelled());
    assert_eq!(
        pipes::idle(),
        1,
        "only the empty server→client pipe is pooled; the one holding bytes is closed"
    );
    drop((client_r, s.server));
    writer.abort();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_pipe_whose_splice_failed_is_not_pooled() {
    // The client resets: the splice out of its socket fails on the
    // client→server pipe, which is closed; the other one is pooled.
    let s = sockets().await;
    let relay = spawn_relay(s.downstream, s.upstream, config(CopyMode::Auto));
    s.client.set_zero_linger().unwrap();
    drop(s.client);
    relay.await.unwrap().unwrap_err();
    assert_eq!(pipes::idle(), 1);
    drop(s.server);
}
