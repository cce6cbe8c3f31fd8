//! One poll of an L4 node's `GET /readyz`, as plain HTTP/1.1 over a
//! `TcpStream`: the admin API is plain HTTP, and a poll every 100 ms needs
//! nothing more than a status line and the first line of the body.
//!
//! A poll that is refused, or answered with anything but 200, is a verdict:
//! nothing listens, or the node says it cannot serve. A poll that goes
//! unanswered within its timeout is not: a busy host (a failover's burst of
//! connections, a loaded CI machine) answers late without being down, and
//! giving up the VIP for it resets every connection the node carries. So
//! [`Patience`] turns silence into "not ready" only after several
//! unanswered polls in a row, as HAProxy's `fall` does for check timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a reply read: `/readyz` answers one line.
const MAX_REPLY: u64 = 16 * 1024;

/// Why a poll did not find the node ready, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unready {
    /// Refused, cut off, or answered other than 200: a verdict.
    Said(String),
    /// No answer within the poll's timeout: maybe only slow.
    Silent(String),
}

/// Polls `GET /readyz` on `admin`, all within `timeout`. `Ok`: the node is
/// ready (200), with its reason line.
pub(crate) async fn poll(admin: SocketAddr, timeout: Duration) -> Result<String, Unready> {
    match tokio::time::timeout(timeout, fetch(admin)).await {
        Ok(result) => result.map_err(Unready::Said),
        Err(_) => Err(Unready::Silent(format!(
            "no answer from the L4 node's /readyz at {admin} within {timeout:?}"
        ))),
    }
}

/// Turns polls into readiness, tolerating short silences: `misses`
/// unanswered polls in a row count as not ready, fewer decide nothing.
#[derive(Debug, Clone)]
pub(crate) struct Patience {
    misses: u32,
    silent: u32,
}

impl Patience {
    /// Silence is "not ready" at the `misses`-th unanswered poll in a row
    /// (0 counts as 1).
    pub(crate) fn new(misses: u32) -> Self {
        Self {
            misses: misses.max(1),
            silent: 0,
        }
    }

    /// The readiness one poll shows: `None` while a silence is still
    /// shorter than `misses` polls.
    pub(crate) fn judge(
        &mut self,
        poll: Result<String, Unready>,
    ) -> Option<Result<String, String>> {
        let reason = match poll {
            Ok(reason) => {
                self.silent = 0;
                return Some(Ok(reason));
            }
            Err(Unready::Said(reason)) => {
                self.silent = 0;
                return Some(Err(reason));
            }
            Err(Unready::Silent(reason)) => reason,
        };
        self.silent += 1;
        (self.silent >= self.misses).then(|| {
            Err(format!(
                "{reason}, {} polls in a row unanswered",
                self.silent
            ))
        })
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

    #[test]
    fn silence_is_not_ready_only_after_misses_polls_in_a_row() {
        let silent = || Err(Unready::Silent("no answer".to_owned()));
        let mut patience = Patience::new(3);
        assert_eq!(patience.judge(silent()), None);
        assert_eq!(patience.judge(silent()), None);
        assert_eq!(
            patience.judge(silent()),
            Some(Err("no answer, 3 polls in a row unanswered".to_owned()))
        );
        // An answer, ready or not, ends the silence.
        assert_eq!(
            patience.judge(Ok("ready".to_owned())),
            Some(Ok("ready".to_owned()))
        );
        assert_eq!(patience.judge(silent()), None);
        assert_eq!(patience.judge(silent()), None);
        assert_eq!(
            patience.judge(Err(Unready::Said("refused".to_owned()))),
            Some(Err("refused".to_owned())),
            "a refusal is a verdict at once"
        );
        assert_eq!(patience.judge(silent()), None, "counted afresh");
    }
}
