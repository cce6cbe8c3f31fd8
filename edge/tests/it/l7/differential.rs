//! The fast/slow comparison of HTTP/1: a client byte stream through a
//! node with the fast path on and one with it off
//! (`http1_fast_path: false`) in front of one scripted raw-TCP backend;
//! the backend must receive the same requests and the client the same
//! responses. Used by the differential test (`fast_path.rs`) and the
//! `http1_equivalence` fuzz target (which includes this file).
//!
//! Compared as messages: field names in lowercase, fields in name order
//! (hyper groups a name's values), chunked bodies decoded (chunk sizes
//! follow reads), `Date` dropped, generated request ids masked, and a
//! response the backend broke off left out (hyper sends nothing of it;
//! the fast path has sent its head and what came, as HAProxy does:
//! either way the client has no complete answer).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::support::{PATIENCE, Proxy, spec};

/// The backend's answer to a request, and whether it then closes the
/// connection.
pub type Script = dyn Fn(&Message) -> (Vec<u8>, bool) + Send + Sync;

/// A backend that answers each request by its script and logs each
/// request it gets, as a message; the nodes' health checks get a plain
/// 200 and are not logged (they come and go as they please).
pub struct Scripted {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    counts: Arc<Counts>,
    /// The bytes of the request being received, latest first.
    partial: watch::Sender<Vec<u8>>,
}

/// The connections that carried requests (health checks' aside).
#[derive(Debug, Default)]
struct Counts {
    /// Opened.
    opened: AtomicUsize,
    /// Closed by the node (the backend read their end).
    closed_by_node: AtomicUsize,
}

impl Scripted {
    pub async fn start(script: Arc<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Counts::default());
        let partial = watch::Sender::new(Vec::new());
        let (requests, counted, received) = (log.clone(), counts.clone(), partial.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_backend(
                    stream,
                    requests.clone(),
                    script.clone(),
                    counted.clone(),
                    received.clone(),
                ));
            }
        });
        Self {
            addr,
            log,
            counts,
            partial,
        }
    }

    /// Waits (bounded) until a request is arriving whose bytes so far
    /// hold `part`: the node has sent on that much of it.
    pub async fn received_part(&self, part: &[u8]) {
        let mut partial = self.partial.subscribe();
        tokio::time::timeout(
            PATIENCE,
            partial.wait_for(|bytes| bytes.windows(part.len()).any(|w| w == part)),
        )
        .await
        .expect("the backend received it in time")
        .unwrap();
    }

    /// What the backend received since it was last asked, and the
    /// responses in `raw` (read to the end) to the requests in `sent`.
    pub fn view(&self, raw: &[u8], sent: &[u8]) -> View {
        View {
            backend: self.take(),
            client: responses(raw, &methods(sent)),
        }
    }

    /// Connections opened so far that carried requests.
    pub fn opened(&self) -> usize {
        self.counts.opened.load(Ordering::SeqCst)
    }

    /// Of those, the ones the node closed.
    pub fn closed_by_node(&self) -> usize {
        self.counts.closed_by_node.load(Ordering::SeqCst)
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

async fn serve_backend(
    mut stream: TcpStream,
    log: Arc<Mutex<Vec<String>>>,
    script: Arc<Script>,
    counts: Arc<Counts>,
    partial: watch::Sender<Vec<u8>>,
) {
    let mut buf = Vec::new();
    let mut counted = false;
    loop {
        let message = loop {
            if let Some(message) = Message::parse(&buf, Side::Request) {
                break message;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) if counted => {
                    counts.closed_by_node.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            partial.send_replace(buf.clone());
        };
        buf.drain(..message.len);
        let probe = message
            .fields
            .iter()
            .any(|(n, v)| n == "user-agent" && v.starts_with("gtm-probe"));
        let (answer, close) = if probe {
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
                false,
            )
        } else {
            if !counted {
                counted = true;
                counts.opened.fetch_add(1, Ordering::SeqCst);
            }
            log.lock().unwrap().push(message.text());
            script(&message)
        };
        if stream.write_all(&answer).await.is_err() || close {
            return;
        }
    }
}

/// Settings of the two nodes besides the fast path's switch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings<'a> {
    /// Lines of the `l7:` block (such as `timeouts:`).
    pub tier: &'a str,
    /// Fields of the pool (such as `retries:`), comma-separated.
    pub pool: &'a str,
}

/// The `l7:` block of a node with the fast path on or off in front of
/// `backend`. Outlier ejection is off: its ejections end with time, which
/// would make two nodes' pools part ways.
pub fn node(backend: SocketAddr, fast: bool, settings: Settings<'_>) -> String {
    let Settings { tier, pool } = settings;
    let pool = if pool.is_empty() {
        String::new()
    } else {
        format!(", {pool}")
    };
    // Besides the catch-all, routes that redirect, answer themselves,
    // rewrite headers and limit bodies (`http1_cases::route_answer`).
    format!(
        "via: true
http1_fast_path: {fast}
{tier}routes:
  - {{ path: /moved, redirect: {{ status: 308, location: \"https://{{host}}{{path}}{{query}}\" }} }}
  - {{ path: /ping, respond: {{ status: 200, body: pong, content_type: text/plain }} }}
  - {{ path: /rules, pool: web, request_headers: {{ set: {{ X-Env: prod }}, remove: [X-Secret] }}, response_headers: {{ add: {{ X-Served-By: edge }} }} }}
  - {{ path: /small, max_body: 4, pool: web }}
  - {{ host: www.example.com, pool: web }}
pools:
  web: {{ servers: [{{ addr: \"{backend}\" }}], outlier: {{ failures: 0 }}{pool} }}
"
    )
}

/// A node with the fast path and one without, in front of one backend.
pub struct Pair {
    pub fast: Proxy,
    pub hyper: Proxy,
}

/// What the backend and the client saw of one client byte stream.
#[derive(Debug, PartialEq)]
pub struct View {
    pub backend: Vec<String>,
    pub client: Vec<String>,
}

impl Pair {
    /// Both nodes in front of `backend`.
    pub async fn start(backend: &Scripted, settings: Settings<'_>) -> Self {
        Self {
            fast: Proxy::start(spec(&node(backend.addr, true, settings))).await,
            hyper: Proxy::start(spec(&node(backend.addr, false, settings))).await,
        }
    }

    /// Sends `bytes` through each node (waiting `patience` at most for
    /// each to answer and close); their common view, or how they differ.
    pub async fn compare(
        &self,
        backend: &Scripted,
        bytes: &[u8],
        patience: Duration,
    ) -> Result<View, String> {
        let fast = view(self.fast.http, backend, bytes, patience).await?;
        let hyper = view(self.hyper.http, backend, bytes, patience).await?;
        if fast.backend != hyper.backend {
            return Err(format!(
                "at the backend: fast path {:#?}\nhyper {:#?}",
                fast.backend, hyper.backend
            ));
        }
        if fast.client != hyper.client {
            return Err(format!(
                "at the client: fast path {:#?}\nhyper {:#?}",
                fast.client, hyper.client
            ));
        }
        Ok(fast)
    }

    pub async fn stop(self) {
        self.fast.stop().await.unwrap();
        self.hyper.stop().await.unwrap();
    }
}

/// The backend's and the client's view of `bytes` sent to `proxy`.
async fn view(
    proxy: SocketAddr,
    backend: &Scripted,
    bytes: &[u8],
    patience: Duration,
) -> Result<View, String> {
    backend.take();
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    // The node may close before it read everything (an error answered).
    let _ = stream.write_all(bytes).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(patience, stream.read_to_end(&mut raw)).await;
    if read.is_err() {
        return Err(format!(
            "{proxy}: no answer and close in {patience:?}; got {:?}",
            String::from_utf8_lossy(&raw)
        ));
    }
    Ok(backend.view(&raw, bytes))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Request,
    Response,
}

/// One HTTP/1.1 message, normalized.
#[derive(Debug)]
pub struct Message {
    pub start: String,
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
    complete: bool,
    len: usize,
}

impl Message {
    /// The request's path.
    pub fn path(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or("/")
    }

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

/// The complete responses in `raw`, read to the connection's end,
/// answering `methods` in order.
fn responses(mut raw: &[u8], methods: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut methods = methods.iter().peekable();
    while !raw.is_empty() {
        let head_request = methods.peek().is_some_and(|m| *m == "HEAD");
        let Some(message) = Message::parse_framed(raw, Side::Response, head_request) else {
            out.push(format!("unparsable: {:?}", String::from_utf8_lossy(raw)));
            break;
        };
        if !message.complete {
            break;
        }
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
