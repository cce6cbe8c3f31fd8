//! One poll of an L4 node's `GET /readyz`, as plain HTTP/1.1 over a
//! `TcpStream`: the admin API is plain HTTP, and a poll every 100 ms needs
//! nothing more than a status line and the first line of the body.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a reply read: `/readyz` answers one line.
const MAX_REPLY: u64 = 16 * 1024;

/// Polls `GET /readyz` on `admin`, all within `timeout`. `Ok`: the node is
/// ready (200), with its reason line. `Err`: it is not, or could not be
/// asked, with one line saying why.
pub(crate) async fn poll(admin: SocketAddr, timeout: Duration) -> Result<String, String> {
    match tokio::time::timeout(timeout, fetch(admin)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer from the L4 node's /readyz at {admin} within {timeout:?}"
        )),
    }
}

async fn fetch(admin: SocketAddr) -> Result<String, String> {
    let io_error = |what: &str, e: std::io::Error| {
        format!("cannot {what} the L4 node's admin API at {admin}: {e}")
    };
    let mut stream = TcpStream::connect(admin)
        .await
        .map_err(|e| io_error("connect to", e))?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| io_error("send to", e))?;
    let mut reply = Vec::new();
    stream
        .take(MAX_REPLY)
        .read_to_end(&mut reply)
        .await
        .map_err(|e| io_error("read from", e))?;
    interpret(&reply).map_err(|e| format!("{admin}: {e}"))
}

/// The verdict of a `/readyz` reply: ready only on status 200.
fn interpret(reply: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(reply);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err("the admin API closed the connection before a complete reply".into());
    };
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("");
    let reason = body.lines().next().unwrap_or("").trim().to_owned();
    match status {
        "200" => Ok(reason),
        "" => Err("the admin API answered something that is not HTTP".into()),
        _ => Err(format!("/readyz answered {status}: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_200_is_ready_and_the_first_body_line_is_the_reason() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nready: 1 of 1\n";
        assert_eq!(interpret(ok), Ok("ready: 1 of 1".to_owned()));
        let down = b"HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready: draining\n";
        assert_eq!(
            interpret(down),
            Err("/readyz answered 503: not ready: draining".to_owned())
        );
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"no route\"}\n";
        assert!(interpret(missing).unwrap_err().contains("404"));
        assert!(interpret(b"HTTP/1.1 200 OK\r\n").is_err(), "cut short");
        assert!(interpret(b"\r\n\r\n").is_err(), "not HTTP");
    }
}
