//! The HTTP/1.1 fast path against hyper's path: one corpus of client
//! requests and scripted backend answers, through a node with the fast
//! path on and one with it off (`http1_fast_path: false`); the backend
//! must receive the same requests and the client the same responses.
//!
//! Compared as messages: field names in lowercase, fields in name order
//! (hyper groups a name's values), chunked bodies decoded (chunk sizes
//! follow reads), `Date` dropped and generated request ids masked.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::support::{PATIENCE, Proxy, exchange, request, spec};

/// The backend's answer to a request for `path` (`head`: to a HEAD), and
/// whether it then closes the connection.
fn script(path: &str, head: bool, body: &[u8]) -> (Vec<u8>, bool) {
    let fixed = |text: &str| text.as_bytes().to_vec();
    match path {
        "/cl" if head => (
            fixed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"),
            false,
        ),
        "/cl" => (
            fixed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
            false,
        ),
        "/echo" => {
            let mut out = format!(
                "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            (out, false)
        }
        "/chunked" => (
            fixed(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            ),
            false,
        ),
        "/until-close" => (
            fixed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the close"),
            true,
        ),
        "/hints" => (
            fixed(
                "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
            false,
        ),
        "/204" => (fixed("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"), false),
        "/304" => (
            fixed("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 12\r\n\r\n"),
            false,
        ),
        "/big" => {
            let mut out = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..40 {
                out.extend_from_slice(format!("X-Big-{i}: {}\r\n", "v".repeat(150)).as_bytes());
            }
            let body = "b".repeat(200_000);
            out.extend_from_slice(
                format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
            );
            (out, false)
        }
        "/cut" => (
            fixed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
            true,
        ),
        "/error" => (
            fixed(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown",
            ),
            true,
        ),
        "/hop" => (
            fixed(
                "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nX-Request-ID: from-backend\r\nContent-Length: 0\r\n\r\n",
            ),
            false,
        ),
        _ => (fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false),
    }
}

/// A backend that answers by [`script`] and logs each request it gets,
/// as a message.
struct Scripted {
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let requests = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_backend(stream, requests.clone()));
            }
        });
        Self { addr, log }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

async fn serve_backend(mut stream: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let message = loop {
            if let Some(message) = Message::parse(&buf, Side::Request) {
                break message;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..message.len);
        let path = message.start.split(' ').nth(1).unwrap_or("/").to_owned();
        let head = message.start.starts_with("HEAD ");
        let (answer, close) = script(&path, head, &message.body);
        // The node's health checks come and go as they please.
        let probe = message
            .fields
            .iter()
            .any(|(n, v)| n == "user-agent" && v.starts_with("gtm-probe"));
        if !probe {
            log.lock().unwrap().push(message.text());
        }
        if stream.write_all(&answer).await.is_err() || close {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Request,
    Response,
}

/// One HTTP/1.1 message, normalized.
#[derive(Debug)]
struct Message {
    start: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    complete: bool,
    len: usize,
}

impl Message {
    /// The first message in `buf`, once complete.
    fn parse(buf: &[u8], side: Side) -> Option<Self> {
        Self::parse_framed(buf, side, false)
    }

    /// The first message in `buf`: a request once complete, a response
    /// as far as it goes (`head_request`: it answers a HEAD).
    fn parse_framed(buf: &[u8], side: Side, head_request: bool) -> Option<Self> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let (start, fields, len, status) = match side {
            Side::Request => {
                let mut request = httparse::Request::new(&mut headers);
                let httparse::Status::Complete(len) = request.parse(buf).ok()? else {
                    return None;
                };
                let start = format!(
                    "{} {} HTTP/1.{}",
                    request.method?, request.path?, request.version?
                );
                (start, request.headers.to_vec(), len, 0)
            }
            Side::Response => {
                let mut response = httparse::Response::new(&mut headers);
                let httparse::Status::Complete(len) = response.parse(buf).ok()? else {
                    return None;
                };
                let start = format!(
                    "HTTP/1.{} {} {}",
                    response.version?, response.code?, response.reason?
                );
                (start, response.headers.to_vec(), len, response.code?)
            }
        };
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .filter(|(name, _)| name != "date")
            .map(|(name, value)| {
                let generated = value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
                (
                    name,
                    if generated {
                        "<generated id>".to_owned()
                    } else {
                        value
                    },
                )
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let rest = &buf[len..];
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        let (body, used, complete) = if no_body {
            (Vec::new(), 0, true)
        } else if field("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
            dechunk(rest)
        } else if let Some(length) = field("content-length") {
            let length: usize = length.parse().ok()?;
            let used = length.min(rest.len());
            (rest[..used].to_vec(), used, used == length)
        } else if side == Side::Request {
            (Vec::new(), 0, true)
        } else {
            (rest.to_vec(), rest.len(), true)
        };
        if side == Side::Request && !complete {
            return None;
        }
        Some(Self {
            start,
            fields,
            body,
            complete,
            len: len + used,
        })
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n", self.start);
        for (name, value) in &self.fields {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text.push_str(&format!("\n{}", String::from_utf8_lossy(&self.body)));
        if !self.complete {
            text.push_str("\n(cut short)");
        }
        text
    }
}

/// A chunked body: its data, the bytes it took, whether it ended.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, usize, bool) {
    let total = rest.len();
    let mut data = Vec::new();
    loop {
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            return (data, total, false);
        };
        let line = String::from_utf8_lossy(&rest[..lf]);
        let size = line.trim().split(';').next().unwrap_or("");
        let Ok(size) = usize::from_str_radix(size, 16) else {
            return (data, total, false);
        };
        rest = &rest[lf + 1..];
        if size == 0 {
            // Trailers up to the empty line.
            loop {
                let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                    return (data, total, false);
                };
                let empty = lf <= 1;
                rest = &rest[lf + 1..];
                if empty {
                    return (data, total - rest.len(), true);
                }
            }
        }
        if rest.len() < size + 2 {
            data.extend_from_slice(&rest[..size.min(rest.len())]);
            return (data, total, false);
        }
        data.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The responses in `raw`, read to the connection's end, answering
/// `methods` in order.
fn responses(mut raw: &[u8], methods: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut methods = methods.iter().peekable();
    while !raw.is_empty() {
        // The answer to a HEAD has no body whatever its fields say.
        let head_request = methods.peek().is_some_and(|m| *m == "HEAD");
        let Some(message) = Message::parse_framed(raw, Side::Response, head_request) else {
            out.push(format!("unparsable: {:?}", String::from_utf8_lossy(raw)));
            break;
        };
        // An interim answer (1xx) comes before the request's final one.
        if !message.start.starts_with("HTTP/1.1 1") {
            methods.next();
        }
        raw = &raw[message.len..];
        out.push(message.text());
    }
    out
}

/// The methods of the requests in `raw`, in order.
fn methods(raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(message) = Message::parse(rest, Side::Request) {
        out.push(message.start.split(' ').next().unwrap_or("").to_owned());
        rest = &rest[message.len..];
    }
    out
}

/// The case where the backend breaks off its response.
const CUT: &str = "backend closes mid-response";

/// The client's bytes of each case; each ends its connection (with
/// `Connection: close`, or by a request the node answers by closing).
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let host = "Host: www.example.com\r\n";
    let get = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\n{host}{extra}\r\n");
    let close = "Connection: close\r\n";
    let big_request = {
        let mut extra = String::new();
        for i in 0..60 {
            extra.push_str(&format!("X-Large-{i}: {}\r\n", "h".repeat(100)));
        }
        get("/cl", &format!("{extra}{close}"))
    };
    let upload = "u".repeat(300_000);
    let cases: Vec<(&str, String)> = vec![
        (
            "get, keep-alive, then close",
            get("/cl", "") + &get("/cl", close),
        ),
        (
            "pipelined gets",
            get("/cl", "") + &get("/204", "") + &get("/chunked", "") + &get("/cl", close),
        ),
        ("head", format!("HEAD /cl HTTP/1.1\r\n{host}{close}\r\n")),
        (
            "post with a body",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Content-Length: 11\r\n\r\nhello worldGET /cl HTTP/1.1\r\n{host}{close}\r\n"
            ),
        ),
        (
            "put with a large body",
            format!(
                "PUT /echo HTTP/1.1\r\n{host}Content-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n{upload}",
                upload.len()
            ),
        ),
        (
            "delete",
            format!("DELETE /thing HTTP/1.1\r\n{host}{close}\r\n"),
        ),
        (
            "chunked request body",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n{close}\r\n5\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        ("chunked response with a trailer", get("/chunked", close)),
        (
            "close-delimited response",
            get("/until-close", "") + &get("/cl", close),
        ),
        ("103 early hints", get("/hints", close)),
        (
            "204 and 304",
            get("/204", "") + &get("/304", "If-None-Match: \"v1\"\r\n") + &get("/cl", close),
        ),
        ("large headers both ways", big_request + &get("/big", close)),
        (CUT, get("/cut", "")),
        (
            "backend answers 503",
            get("/error", "") + &get("/cl", close),
        ),
        (
            "hop-by-hop and forwarding fields",
            get(
                "/hop",
                &format!(
                    "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Connection: close\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: gopher\r\nVia: 1.0 earlier\r\nX-Request-ID: client-id\r\n{close}"
                ),
            ),
        ),
        (
            "no route",
            "GET / HTTP/1.1\r\nHost: nowhere.example.net\r\n\r\n".to_owned() + &get("/cl", close),
        ),
        (
            "smuggling: CL and TE",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /cl HTTP/1.1\r\n{host}\r\n"
            ),
        ),
        (
            "smuggling: double CL",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            ),
        ),
        (
            "smuggling: bad chunk size",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            ),
        ),
        (
            "no host",
            "GET /cl HTTP/1.1\r\n\r\n".to_owned() + &get("/cl", close),
        ),
        (
            "http/1.0",
            "GET /cl HTTP/1.0\r\nHost: www.example.com\r\n\r\n".to_owned(),
        ),
        (
            "route: redirect",
            get("/moved/x?a=1", "") + &get("/cl", close),
        ),
        (
            "route: fixed response",
            get("/ping", "") + &format!("HEAD /ping HTTP/1.1\r\n{host}\r\n") + &get("/cl", close),
        ),
        (
            "route: header rules",
            get("/rules", &format!("X-Secret: 1\r\nX-Env: dev\r\n{close}")),
        ),
        (
            "route: body at its limit",
            format!("POST /small HTTP/1.1\r\n{host}Content-Length: 4\r\n\r\nabcd")
                + &get("/cl", close),
        ),
        (
            "route: declared body over its limit",
            format!("POST /small HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nabcde"),
        ),
        (
            "route: chunked body over its limit",
            format!(
                "POST /small HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n"
            ),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect()
}

/// What the first answer of a route case must contain, besides being the
/// same on both paths.
fn route_answer(name: &str) -> Option<&'static str> {
    Some(match name {
        "route: redirect" => "location: https://www.example.com/moved/x?a=1",
        "route: fixed response" => "pong",
        "route: header rules" => "x-served-by: edge",
        "route: body at its limit" => "200 OK",
        "route: declared body over its limit" | "route: chunked body over its limit" => "413",
        _ => return None,
    })
}

/// The backend's and the client's view of one case through `proxy`.
async fn run_case(
    name: &str,
    proxy: &Proxy,
    backend: &Scripted,
    bytes: &[u8],
) -> (Vec<String>, Vec<String>) {
    backend.take();
    let mut stream = TcpStream::connect(proxy.http).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{name}: no answer and close in time; got {:?}",
                String::from_utf8_lossy(&raw)
            )
        })
        .ok();
    (backend.take(), responses(&raw, &methods(bytes)))
}

#[tokio::test]
async fn the_fast_path_answers_as_hyper_does() {
    let backend = Scripted::start().await;
    let node = |fast: bool| {
        spec(&format!(
            "via: true
http1_fast_path: {fast}
routes:
  - {{ path: /moved, redirect: {{ status: 308, location: \"https://{{host}}{{path}}{{query}}\" }} }}
  - {{ path: /ping, respond: {{ status: 200, body: pong, content_type: text/plain }} }}
  - {{ path: /rules, pool: web, request_headers: {{ set: {{ X-Env: prod }}, remove: [X-Secret] }}, response_headers: {{ add: {{ X-Served-By: edge }} }} }}
  - {{ path: /small, max_body: 4, pool: web }}
  - {{ host: www.example.com, pool: web }}
pools:
  web: {{ servers: [{{ addr: \"{}\" }}] }}
",
            backend.addr
        ))
    };
    let fast = Proxy::start(node(true)).await;
    let hyper = Proxy::start(node(false)).await;
    for (name, bytes) in corpus() {
        let (fast_backend, fast_client) = run_case(name, &fast, &backend, &bytes).await;
        let (hyper_backend, hyper_client) = run_case(name, &hyper, &backend, &bytes).await;
        assert_eq!(fast_backend, hyper_backend, "{name}: at the backend");
        if name == CUT {
            // hyper drops a response whose body breaks off before it sent
            // anything; the fast path has sent the head and what came, as
            // HAProxy does. Either way the client sees no complete answer.
            let cut = |answers: &[String]| answers.iter().all(|a| a.ends_with("(cut short)"));
            assert!(
                cut(&fast_client) && cut(&hyper_client),
                "{name}: {fast_client:?} {hyper_client:?}"
            );
            assert!(fast_client.len() == 1 && hyper_client.is_empty());
            continue;
        }
        assert!(!hyper_client.is_empty(), "{name}: hyper answered nothing");
        assert_eq!(fast_client, hyper_client, "{name}: at the client");
        if let Some(want) = route_answer(name) {
            assert!(hyper_client[0].contains(want), "{name}: {hyper_client:?}");
        }
        if name == "route: header rules" {
            let seen = fast_backend.join("\n");
            assert!(
                seen.contains("x-env: prod")
                    && !seen.contains("x-env: dev")
                    && !seen.contains("x-secret"),
                "{seen}"
            );
        }
    }
    // The fast path really served them: it passes the backend's fields as
    // they were written, where hyper lowercases them.
    for (proxy, original_case) in [(&fast, true), (&hyper, false)] {
        let mut stream = TcpStream::connect(proxy.http).await.unwrap();
        let raw = exchange(&mut stream, &request("GET", "/cl", "www.example.com", &[])).await;
        let raw = String::from_utf8_lossy(&raw);
        assert_eq!(
            raw.contains("\r\nContent-Type: text/plain\r\n"),
            original_case,
            "{raw}"
        );
    }
    fast.stop().await.unwrap();
    hyper.stop().await.unwrap();
}
