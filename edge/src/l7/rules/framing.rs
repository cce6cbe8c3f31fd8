//! Request-smuggling defence: spots HTTP/1 requests that carry both
//! `Content-Length` and `Transfer-Encoding`.
//!
//! hyper follows RFC 9112 §6.3 for such a request: the transfer coding
//! wins, `Content-Length` is dropped, and the connection closes after the
//! response. That is safe, but the request still reaches a backend, and
//! the field it dropped is gone before the proxy could see it. This
//! [`FramingGuard`] reads the same bytes hyper reads, tracking message
//! boundaries (heads, `Content-Length` bodies, chunked bodies), and flags
//! the connection as soon as a head has both fields, so that the request is
//! answered 400 and never forwarded, as HAProxy and Envoy do.
//!
//! Pure and allocation-free: [`FramingGuard::feed`] takes whatever bytes
//! arrived. On anything it does not understand (an HTTP/2 preface, a
//! protocol upgrade, a malformed message, a head longer than the limit) it
//! switches itself off and leaves the verdict to hyper's parser, which
//! rejects malformed input anyway.

use crate::l7::rules::chunked::Chunked;

/// What the guard has concluded so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing wrong seen.
    Clean,
    /// A head with both `Content-Length` and `Transfer-Encoding`.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between messages or inside a head.
    Head,
    /// A body of known length.
    Body(u64),
    Chunked(Chunked),
    /// Not tracking any more.
    Off,
}

/// What the lines of the current head said so far.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    /// Bytes of the head so far.
    len: usize,
    /// Lines completed (the request line is the first).
    lines: usize,
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
}

/// Bytes of a header line kept for inspection: enough for the names and
/// values the guard reads; a longer line is only inspected by its start.
const LINE: usize = 128;

/// Per-connection tracker; see the module docs.
#[derive(Debug, Clone)]
pub struct FramingGuard {
    state: State,
    max_head: usize,
    head: Head,
    line: [u8; LINE],
    /// Bytes of the current line (may exceed `LINE`).
    line_len: usize,
    verdict: Verdict,
}

impl FramingGuard {
    /// A guard for a connection whose heads may be `max_head` bytes long.
    pub fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            max_head,
            head: Head::default(),
            line: [0; LINE],
            line_len: 0,
            verdict: Verdict::Clean,
        }
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Whether the guard stopped tracking.
    pub fn is_off(&self) -> bool {
        matches!(self.state, State::Off)
    }

    /// Feeds the next bytes read from the connection.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Verdict {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Off => break,
                State::Head => {
                    if self.head.len == 0 {
                        // Empty lines before a request line are allowed.
                        let skip = bytes
                            .iter()
                            .position(|&b| b != b'\r' && b != b'\n')
                            .unwrap_or(bytes.len());
                        bytes = &bytes[skip..];
                        if bytes.is_empty() {
                            break;
                        }
                    }
                    let lf = bytes.iter().position(|&b| b == b'\n');
                    let part = &bytes[..lf.unwrap_or(bytes.len())];
                    self.head.len += part.len() + usize::from(lf.is_some());
                    if self.head.len > self.max_head {
                        self.state = State::Off;
                        break;
                    }
                    let kept = self.line_len.min(LINE);
                    let room = (LINE - kept).min(part.len());
                    self.line[kept..kept + room].copy_from_slice(&part[..room]);
                    self.line_len += part.len();
                    bytes = &bytes[part.len() + usize::from(lf.is_some())..];
                    if lf.is_some() {
                        self.state = self.on_line();
                        self.line_len = 0;
                    }
                }
                &mut State::Body(remaining) => {
                    let take = remaining.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    self.state = if take == remaining {
                        State::Head
                    } else {
                        State::Body(remaining - take)
                    };
                }
                State::Chunked(decoder) => match decoder.decode(bytes) {
                    Ok(piece) => {
                        bytes = &bytes[piece.used..];
                        if decoder.done() {
                            self.state = State::Head;
                        }
                    }
                    Err(_) => self.state = State::Off,
                },
            }
        }
        self.verdict
    }

    /// Inspects a completed line of the head; the state that follows.
    fn on_line(&mut self) -> State {
        let kept = self.line_len.min(LINE);
        let full = kept == self.line_len;
        let line = &self.line[..kept];
        let line = if full {
            line.strip_suffix(b"\r").unwrap_or(line)
        } else {
            line
        };
        self.head.lines += 1;
        if self.head.lines == 1 {
            if line.starts_with(b"PRI * HTTP/2.0") || line.starts_with(b"CONNECT ") {
                return State::Off;
            }
            return State::Head;
        }
        if line.is_empty() {
            let head = std::mem::take(&mut self.head);
            return self.on_head_end(head);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return State::Head;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            match parse_decimal(value) {
                Some(n) if full && self.head.content_length.is_none_or(|m| m == n) => {
                    self.head.content_length = Some(n);
                }
                _ => return State::Off, // hyper answers 400
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !full {
                return State::Off;
            }
            self.head.transfer_encoding = true;
            self.head.chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            return State::Off;
        }
        State::Head
    }

    fn on_head_end(&mut self, head: Head) -> State {
        if head.transfer_encoding && head.content_length.is_some() {
            self.verdict = Verdict::Conflict;
            return State::Off;
        }
        if head.transfer_encoding {
            return if head.chunked {
                State::Chunked(Chunked::default())
            } else {
                State::Off
            };
        }
        match head.content_length {
            Some(0) | None => State::Head,
            Some(n) => State::Body(n),
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Verdict, bool) {
        // Feed in every split, so state carries across reads.
        let whole = {
            let mut g = FramingGuard::new(8192);
            (g.feed(input), g.is_off())
        };
        for cut in 0..input.len() {
            let mut g = FramingGuard::new(8192);
            g.feed(&input[..cut]);
            assert_eq!((g.feed(&input[cut..]), g.is_off()), whole, "split at {cut}");
        }
        let mut g = FramingGuard::new(8192);
        for b in input {
            g.feed(std::slice::from_ref(b));
        }
        assert_eq!((g.verdict(), g.is_off()), whole, "byte by byte");
        whole
    }

    #[test]
    fn conflicting_framing_is_flagged_in_any_message() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n",
            // The second message of a keep-alive connection, after a sized body.
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            // After a chunked body with a trailer.
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(
                run(case).0,
                Verdict::Conflict,
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn honest_traffic_is_clean_and_tracked() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello\r\n\r\nxyGET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(
                run(case),
                (Verdict::Clean, false),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        // A body that looks like a smuggled head is skipped, not parsed.
        let body = b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut req =
            format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(body);
        assert_eq!(run(&req), (Verdict::Clean, false));
    }

    #[test]
    fn what_it_cannot_follow_turns_it_off() {
        let cases: &[&[u8]] = &[
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00",
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x85",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(
                run(case),
                (Verdict::Clean, true),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.extend_from_slice(&[b'a'; 300]);
        long.extend_from_slice(b"\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(run(&long), (Verdict::Conflict, true));
        let mut g = FramingGuard::new(16);
        g.feed(b"GET /a-very-long-path HTTP/1.1\r\n");
        assert!(g.is_off());
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"123"), Some(123));
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
    }
}
