//! The demo backend's UDP echo: each datagram answered, to its sender, with
//! the backend's name and region and then the datagram, so a client of a
//! UDP service behind the L4 tier sees which backend its flow reached.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Largest UDP payload over IPv4; longer answers are cut to it.
const MAX_DATAGRAM: usize = 65_507;

/// What an answer to `datagram` starts with: `NAME (REGION): `.
fn answer(name: &str, region: &str, datagram: &[u8]) -> Vec<u8> {
    let mut reply = format!("{name} ({region}): ").into_bytes();
    reply.extend_from_slice(datagram);
    reply.truncate(MAX_DATAGRAM);
    reply
}

/// Answers every datagram on `socket` until `shutdown`.
pub async fn echo(socket: UdpSocket, name: &str, region: &str, shutdown: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        match received {
            Ok((len, from)) => {
                let reply = answer(name, region, &buf[..len]);
                if let Err(e) = socket.send_to(&reply, from).await {
                    debug!(backend = name, %from, "UDP answer not sent: {e}");
                }
            }
            Err(e) => {
                // An ICMP error from an earlier answer's sender, or a
                // socket fault: logged, then the next datagram; the pause
                // keeps a persistent fault from spinning.
                warn!(backend = name, "UDP receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_names_the_backend_then_echoes() {
        assert_eq!(
            answer("web1", "us-east", b"hi\n"),
            b"web1 (us-east): hi\n".to_vec()
        );
    }

    #[test]
    fn the_largest_datagram_is_answered_cut_to_fit() {
        let reply = answer("web1", "us-east", &[b'x'; MAX_DATAGRAM]);
        assert_eq!(reply.len(), MAX_DATAGRAM);
        assert!(reply.starts_with(b"web1 (us-east): xx"));
    }

    #[tokio::test]
    async fn a_datagram_is_answered_to_its_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { echo(server, "web1", "us-east", stop).await }
        });
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"hi", addr).await.unwrap();
        let mut buf = [0u8; 64];
        let (len, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!((&buf[..len], from), (&b"web1 (us-east): hi"[..], addr));
        stop.cancel();
        task.await.unwrap();
    }
}
