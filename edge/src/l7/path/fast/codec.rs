//! The fast path's HTTP/1.1 codec, pure and allocation-free per message:
//! request and response heads parsed by `httparse` into offsets of the
//! connection's buffer, the hand-off rule (what the fast path leaves to
//! hyper), body framing (RFC 9112 §6), a chunked-body decoder, and the
//! heads the proxy writes itself (its faults' answers, `Date`).

use std::ops::Range;
use std::time::SystemTime;

pub use crate::l7::rules::chunked::{BadChunk, Chunked, Piece};
use crate::l7::rules::forward;

/// Most fields of a head the fast path parses; a longer head goes to
/// hyper, which applies the configured limit.
pub const MAX_FIELDS: usize = 100;

/// One field of a parsed head, by offsets into the buffer it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name.
    pub name: Range<usize>,
    /// The value, without surrounding whitespace.
    pub value: Range<usize>,
    /// The whole line with its CRLF.
    pub line: Range<usize>,
}

impl Field {
    /// Whether the field is called `name` (lowercase).
    pub fn is(&self, buf: &[u8], name: &str) -> bool {
        buf[self.name.clone()].eq_ignore_ascii_case(name.as_bytes())
    }
}

/// A request head the fast path serves.
#[derive(Debug, Default)]
pub struct RequestHead {
    /// Bytes of the head, its final empty line included (from the start
    /// of the buffer given to [`parse_request`]).
    pub len: usize,
    /// The method.
    pub method: Range<usize>,
    /// The request target (origin form).
    pub target: Range<usize>,
    /// The request line with its CRLF.
    pub line: Range<usize>,
    /// The fields, in order; reused from one request to the next.
    pub fields: Vec<Field>,
    /// Index of the `Host` field.
    pub host: usize,
    /// The `Content-Length` (0 without one).
    pub content_length: u64,
    /// The body is chunked (`Transfer-Encoding: chunked`, without
    /// `Content-Length`).
    pub chunked: bool,
    /// The client asked to close the connection after this request.
    pub close: bool,
}

/// What [`parse_request`] made of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A request the fast path serves, in the [`RequestHead`].
    Fast,
    /// A request for hyper (see the module docs of [`super`]).
    Hyper,
}

/// Parses the request head at the start of `buf` into `head`; at most
/// `max_fields` fields.
pub fn parse_request(buf: &[u8], max_fields: usize, head: &mut RequestHead) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut headers[..max_fields.min(MAX_FIELDS)]);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Ok(httparse::Status::Complete(len)) => len,
        Err(_) => return Parsed::Hyper,
    };
    if request.version != Some(1) {
        return Parsed::Hyper;
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Parsed::Hyper;
    };
    if method == "CONNECT" || !plain_target(target.as_bytes()) {
        return Parsed::Hyper;
    }
    let method = offset(buf, method.as_bytes());
    let target = offset(buf, target.as_bytes());
    let Some(line_end) = crlf_line_end(buf, target.end) else {
        return Parsed::Hyper;
    };
    head.len = len;
    head.line = method.start..line_end;
    head.method = method;
    head.target = target;
    head.fields.clear();
    head.content_length = 0;
    head.chunked = false;
    head.close = false;
    let mut next = line_end;
    let mut hosts = 0;
    let mut lengths = 0;
    let mut codings = 0;
    for field in request.headers.iter() {
        let name = offset(buf, field.name.as_bytes());
        if name.start != next {
            return Parsed::Hyper;
        }
        let Some(end) = crlf_line_end(buf, name.end) else {
            return Parsed::Hyper;
        };
        let value = if field.value.is_empty() {
            end - 2..end - 2
        } else {
            offset(buf, field.value)
        };
        next = end;
        let field = Field {
            line: name.start..end,
            name,
            value,
        };
        let value = &buf[field.value.clone()];
        if field.is(buf, "host") {
            if !is_text(value) {
                return Parsed::Hyper;
            }
            hosts += 1;
            head.host = head.fields.len();
        } else if field.is(buf, "content-length") {
            lengths += 1;
            match decimal(value) {
                Some(n) => head.content_length = n,
                None => return Parsed::Hyper,
            }
        } else if field.is(buf, "transfer-encoding") {
            // `chunked` alone; other codings go to hyper, which refuses them.
            codings += 1;
            if !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Parsed::Hyper;
            }
            head.chunked = true;
        } else if field.is(buf, "connection") {
            head.close |= forward::connection_options([value])
                .any(|option| option.eq_ignore_ascii_case(b"close"));
        } else if HYPER_FIELDS.iter().any(|name| field.is(buf, name)) {
            return Parsed::Hyper;
        }
        head.fields.push(field);
    }
    // Both framings is the smuggling guard's case: hyper answers it.
    let framings = lengths + codings;
    if hosts != 1 || framings > 1 || next + 2 != len || &buf[next..len] != b"\r\n" {
        return Parsed::Hyper;
    }
    Parsed::Fast
}

/// Fields that send a request to hyper: an upgrade, `Expect`, `TE` (a
/// client that takes trailers, which the fast path drops) and `Trailer`
/// (a chunked body announcing trailers, which the fast path would drop).
const HYPER_FIELDS: [&str; 4] = ["upgrade", "expect", "te", "trailer"];

/// Where the line holding the byte at `from` ends (after its LF), when it
/// ends in CRLF.
fn crlf_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let lf = from + buf[from..].iter().position(|&b| b == b'\n')?;
    (lf > 0 && buf[lf - 1] == b'\r').then_some(lf + 1)
}

/// The offsets of `part` (a slice of `buf`) in `buf`.
fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// An origin-form target with nothing a URI parser might read otherwise.
fn plain_target(target: &[u8]) -> bool {
    target.first() == Some(&b'/')
        && target
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"\"#<>\\^`{|}".contains(&b))
}

/// What `HeaderValue::to_str` accepts.
fn is_text(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// This many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the backend closes.
    Close,
}

/// A backend's response head.
#[derive(Debug, Default)]
pub struct ResponseHead {
    /// Bytes of the head.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// The status line from its code on, with its CRLF.
    pub rest_of_line: Range<usize>,
    /// The fields, in order; reused.
    pub fields: Vec<Field>,
    /// The body's framing (see [`parse_response`]).
    pub framing: Option<Framing>,
    /// The backend keeps the connection open after this response.
    pub keep_alive: bool,
}

/// Why a backend's response cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    /// Not HTTP/1 or malformed.
    #[error("malformed response head")]
    Malformed,
    /// `Content-Length` values that disagree or are not numbers.
    #[error("bad Content-Length in the response")]
    Length,
    /// A chunked body that is not one.
    #[error("bad chunk in the response body")]
    Chunk(#[from] BadChunk),
}

/// Parses the response head at the start of `buf` into `head`; `Ok(false)`
/// while incomplete. `head_request`: the request was `HEAD` (no body).
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    head: &mut ResponseHead,
) -> Result<bool, BadResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response(&mut response, buf)
    {
        Ok(httparse::Status::Partial) => return Ok(false),
        Ok(httparse::Status::Complete(len)) => len,
        Err(_) => return Err(BadResponse::Malformed),
    };
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return Err(BadResponse::Malformed);
    };
    // "HTTP/1.x " is 9 bytes; the line runs to its LF.
    let start = buf.iter().position(|&b| b == b'H').unwrap_or(0) + 9;
    let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') else {
        return Err(BadResponse::Malformed);
    };
    head.len = len;
    head.status = status;
    head.rest_of_line = start..start + lf + 1;
    head.fields.clear();
    // No body whatever the fields say: hyper's client then reads no
    // framing field, and a malformed one is passed on, not refused.
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let mut length = None;
    let mut chunked = None;
    let mut close = version == 0;
    for field in response.headers.iter() {
        let name = offset(buf, field.name.as_bytes());
        let lf = name.end
            + buf[name.end..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(0);
        let value = if field.value.is_empty() {
            lf..lf
        } else {
            offset(buf, field.value)
        };
        let field = Field {
            line: name.start..lf + 1,
            name,
            value,
        };
        let value = &buf[field.value.clone()];
        if field.is(buf, "content-length") && !bodiless {
            let n = decimal(value).ok_or(BadResponse::Length)?;
            if length.is_some_and(|m| m != n) {
                return Err(BadResponse::Length);
            }
            length = Some(n);
        } else if field.is(buf, "transfer-encoding") {
            chunked = Some(
                value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked")),
            );
        } else if field.is(buf, "connection") {
            for option in forward::connection_options([value]) {
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if version == 0 && option.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
        head.fields.push(field);
    }
    let framing = if bodiless {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::Close,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::Close,
        }
    };
    head.keep_alive = !close && framing != Framing::Close;
    head.framing = Some(framing);
    Ok(true)
}

/// Writes the size line of a chunk of `len` bytes.
pub fn chunk_size_line(len: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(out, "{len:x}\r\n");
}

/// The end of a chunked body the proxy writes (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `Date: …` as hyper writes it, the current second's value
/// formatted once per second and thread.
pub fn date_field(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((u64::MAX, String::new()))
        };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Appends `name: value\r\n`.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the status line of `status` with its canonical reason, as
/// hyper writes it.
pub fn status_line(status: http::StatusCode, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bytes: &[u8]) -> (Parsed, RequestHead) {
        let mut head = RequestHead::default();
        (parse_request(bytes, 100, &mut head), head)
    }

    #[test]
    fn plain_requests_are_fast_and_read_by_offsets() {
        let buf = b"POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nConnection: close\r\nX-E:\r\n\r\nhello";
        let (parsed, head) = request(buf);
        assert_eq!(parsed, Parsed::Fast);
        assert_eq!(&buf[head.method.clone()], b"POST");
        assert_eq!(&buf[head.target.clone()], b"/a?b=1");
        assert_eq!(&buf[head.line.clone()], b"POST /a?b=1 HTTP/1.1\r\n");
        assert_eq!(head.len, buf.len() - 5);
        assert_eq!(head.content_length, 5);
        assert!(head.close);
        let host = &head.fields[head.host];
        assert_eq!(&buf[host.value.clone()], b"example.com");
        assert_eq!(&buf[host.line.clone()], b"Host: example.com\r\n");
        assert_eq!(&buf[head.fields[3].value.clone()], b"");
        assert_eq!(&buf[head.fields[3].line.clone()], b"X-E:\r\n");
        assert_eq!(request(&buf[..30]).0, Parsed::Partial);
        let (parsed, head) =
            request(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n0\r\n\r\n");
        assert_eq!(
            (parsed, head.chunked, head.content_length),
            (Parsed::Fast, true, 0)
        );
    }

    #[test]
    fn what_the_fast_path_leaves_to_hyper() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(
                request(case).0,
                Parsed::Hyper,
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    /// Framing, keep-alive and status of a response head.
    type Read = Result<(Framing, bool, u16), BadResponse>;

    fn response(bytes: &[u8], head_request: bool) -> Read {
        let mut head = ResponseHead::default();
        assert!(parse_response(bytes, head_request, &mut head)?);
        Ok((head.framing.unwrap(), head.keep_alive, head.status))
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let cases: &[(&[u8], bool, Read)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok((Framing::Length(5), true, 200)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                Ok((Framing::Empty, true, 200)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok((Framing::Chunked, true, 200)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Ok((Framing::Close, false, 200)),
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n",
                false,
                Ok((Framing::Close, false, 200)),
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                Ok((Framing::Empty, true, 204)),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                Ok((Framing::Empty, true, 304)),
            ),
            (
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                false,
                Ok((Framing::Empty, true, 103)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok((Framing::Length(0), false, 200)),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok((Framing::Length(0), false, 200)),
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok((Framing::Length(0), true, 200)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false,
                Err(BadResponse::Length),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                false,
                Err(BadResponse::Length),
            ),
            (b"SSH-2.0\r\n\r\n", false, Err(BadResponse::Malformed)),
        ];
        for (bytes, head_request, expected) in cases {
            assert_eq!(
                &response(bytes, *head_request),
                expected,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
