//! Rough throughput and connection-rate figures through the L4 node versus
//! straight to the fake L7 node. Ignored by default (they take seconds and
//! measure a debug build); run with
//! `cargo test -p edge --test it l4::bench -- --ignored --nocapture --test-threads 1`.
//! The real comparison with HAProxy is the benchmark document's job.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::{Harness, Session};

const BULK: usize = 1 << 30;

async fn upload(vip: SocketAddr) -> f64 {
    let mut session = Session::open(vip, "DISCARD").await.unwrap();
    let chunk = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut left = BULK;
    while left > 0 {
        let n = left.min(chunk.len());
        session.writer.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    session.writer.shutdown().await.unwrap();
    let mut line = String::new();
    session.reader.read_line(&mut line).await.unwrap();
    assert_eq!(line.trim(), BULK.to_string());
    BULK as f64 / started.elapsed().as_secs_f64() / 1e6
}

async fn download(vip: SocketAddr) -> f64 {
    let mut session = Session::open(vip, &format!("SOURCE {BULK}")).await.unwrap();
    let mut chunk = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut total = 0;
    loop {
        let n = session.reader.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, BULK);
    BULK as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// The fake L7 node's address for the same port, bypassing the L4 node.
fn direct(h: &Harness) -> SocketAddr {
    SocketAddr::new(super::support::l7_ip(0), h.http.port())
}

/// A PROXY header the fake accepts, for direct connections.
fn proxy_header(client: SocketAddr, vip: SocketAddr) -> Vec<u8> {
    edge::proxy_protocol::ProxyHeader::from_l4(client, vip, "bench")
        .encode()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand"]
async fn bench_bulk_throughput() {
    let h = Harness::start(1, "").await;
    let through_up = upload(h.http).await;
    let through_down = download(h.http).await;
    println!("through the L4 node: upload {through_up:.0} MB/s, download {through_down:.0} MB/s");
    // Straight to the fake: its own PROXY header first.
    let mut stream = TcpStream::connect(direct(&h)).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(&proxy_header(local, h.http))
        .await
        .unwrap();
    stream.write_all(b"DISCARD\n").await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut hello = String::new();
    reader.read_line(&mut hello).await.unwrap();
    let chunk = vec![0u8; 256 * 1024];
    let started = Instant::now();
    for _ in 0..BULK / chunk.len() {
        writer.write_all(&chunk).await.unwrap();
    }
    writer.shutdown().await.unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let direct_up = BULK as f64 / started.elapsed().as_secs_f64() / 1e6;
    println!("straight to the fake L7: upload {direct_up:.0} MB/s");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand"]
async fn bench_connection_rate() {
    let h = Harness::start(1, "      max_connections: 100000\n").await;
    const WORKERS: usize = 16;
    const EACH: usize = 250;
    for (label, target, header) in [
        ("through the L4 node", h.http, false),
        ("straight to the fake L7", direct(&h), true),
    ] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let vip = h.http;
            tasks.push(tokio::spawn(async move {
                for _ in 0..EACH {
                    let mut stream = TcpStream::connect(target).await.unwrap();
                    if header {
                        let local = stream.local_addr().unwrap();
                        stream.write_all(&proxy_header(local, vip)).await.unwrap();
                    }
                    stream
                        .write_all(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                        .await
                        .unwrap();
                    let mut reply = Vec::new();
                    stream.read_to_end(&mut reply).await.unwrap();
                    assert!(reply.starts_with(b"HTTP/1.1 200"));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = (WORKERS * EACH) as f64 / started.elapsed().as_secs_f64();
        println!(
            "{label}: {rate:.0} connections/s (connect + request + response + close, {WORKERS} workers)"
        );
    }
    h.stop().await;
}
