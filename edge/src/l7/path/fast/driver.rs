//! One client connection on the fast path: its task reads each request
//! head, serves it through the shared decisions (admission, route, pick,
//! attempts and retries) on a backend connection it drives itself, and
//! streams the response back, until the connection closes, goes idle, the
//! node drains, or a request is handed to hyper.
//!
//! Buffers (the client's bytes, the backend's, the heads the proxy adds,
//! the list of slices to write) and the one timer are the connection's,
//! reused from one request to the next; the deadlines (head, idle,
//! response, body pauses) are set on that timer as each wait begins.

use std::borrow::Cow;
use std::io::{self, IoSlice};

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use topology::tiers::l7::L7Tier;
use tracing::{debug, warn};

use super::codec::{self, BadChunk, Chunked, Field, Framing, Parsed, RequestHead, ResponseHead};
use super::{Backend, IdlePool};
use crate::l7::path::access::{self, Asked, Record};
use crate::l7::path::http::{ConnInfo, Hyper, Protocol, serve_connection};
use crate::l7::path::steps::{self, Attempts};
use crate::l7::path::tap::Tapped;
use crate::l7::rules::fault::Fault;
use crate::l7::rules::forward;
use crate::l7::rules::limits::GatePass;
use crate::l7::rules::retry::Attempted;
use crate::l7::rules::route::{Decision, Fields, RequestView};
use crate::l7::rules::sticky;
use crate::l7::shared::connect::connect_tcp;
use crate::l7::shared::context::{ListenerKind, Shared};
use crate::l7::shared::metrics::Held;
use crate::l7::shared::pool::{InFlight, Outcome, Pick, PoolState, RequestAffinity, ServerState};
use crate::l7::shared::state::Snapshot;

/// Room made for each read.
const READ_SIZE: usize = 16 * 1024;

/// Most slices in one vectored write.
const MAX_SLICES: usize = 32;

/// Serves the client connection `io` (plain or TLS, HTTP/1.1 or unknown)
/// on the fast path; when a request is for hyper (see [`super`]), hyper
/// serves the connection from that request on, as `protocol`.
pub(crate) async fn serve<IO>(
    io: Tapped<IO>,
    protocol: Protocol,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
    hyper: &Arc<Hyper>,
    idle: Arc<IdlePool>,
    drain: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client_ip = forward::client_value(info.client.ip());
    let mut conn = Conn {
        io,
        buf: Vec::with_capacity(READ_SIZE),
        pos: 0,
        next: 0,
        body: Body::Unread,
        chunks: Chunked::default(),
        buffered_end: 0,
        whole_body: false,
        head: RequestHead::default(),
        up: Vec::new(),
        response: ResponseHead::default(),
        out: Vec::new(),
        scratch: Vec::new(),
        parts: Vec::new(),
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        info: info.clone(),
        client_ip,
        shared: shared.clone(),
        idle,
        drain: drain.clone(),
        last_active: Instant::now(),
    };
    let force = shared.drain.forced().clone();
    let end = tokio::select! {
        end = conn.run() => end,
        () = force.cancelled() => End::Closed,
    };
    if end == End::Hyper {
        let Conn { io, buf, pos, .. } = conn;
        let io = io.replay(buf[pos..].to_vec());
        serve_connection(io, protocol, info, shared, hyper, drain).await;
    }
}

/// How the fast path let go of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Closed (by either side, a timeout or the drain).
    Closed,
    /// The request at `pos` is for hyper.
    Hyper,
}

/// Where a slice to write lies.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// The client's bytes ([`Conn::buf`]).
    Client,
    /// The backend's bytes ([`Conn::up`]).
    Backend,
    /// Bytes the proxy wrote ([`Conn::out`]).
    Out,
    /// A constant.
    Static(&'static [u8]),
}

/// A routed request's rule, pool and rewritten path.
#[derive(Debug)]
struct Route {
    rule: usize,
    pool: usize,
    rewritten: Option<String>,
}

/// How far a request's body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Not read (none, or not sent anywhere).
    Unread,
    /// Read to its end and sent.
    Read,
    /// Read in part: the connection cannot serve another request.
    Broken,
}

/// How an exchange ended, for the log and the connection.
struct Done {
    status: u16,
    keep: bool,
}

/// Why an attempt got no response.
enum Failed {
    /// As this fault.
    Fault(Fault),
    /// A pooled connection failed before any byte of a response: the
    /// server closed it while it was idle; another connection may do.
    Stale,
}

struct Conn<IO> {
    io: IO,
    /// The client's bytes; the current request starts at `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// Where the next request starts, once the body has been read.
    next: usize,
    /// How far the request's body was read.
    body: Body,
    /// Where a chunked request body's decoder is.
    chunks: Chunked,
    /// The end of the body bytes read with the head.
    buffered_end: usize,
    /// They are the whole body: the request can be sent again.
    whole_body: bool,
    head: RequestHead,
    /// The backend's bytes.
    up: Vec<u8>,
    response: ResponseHead,
    /// Heads and chunk sizes the proxy writes.
    out: Vec<u8>,
    /// For writers that take no vectored writes (TLS).
    scratch: Vec<u8>,
    /// What to write next, in order.
    parts: Vec<(Src, Range<usize>)>,
    timer: Pin<Box<Sleep>>,
    info: Arc<ConnInfo>,
    client_ip: HeaderValue,
    shared: Arc<Shared>,
    idle: Arc<IdlePool>,
    drain: CancellationToken,
    /// When the last response was sent (or the connection opened).
    last_active: Instant,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    async fn run(&mut self) -> End {
        loop {
            match self.read_head().await {
                Some(Parsed::Fast) => {}
                Some(_) => return End::Hyper,
                None => return End::Closed,
            }
            let snapshot = self.shared.snapshot.load_full();
            let Some(route) = self.classify(&snapshot) else {
                return End::Hyper;
            };
            let keep = self.exchange(&snapshot, route).await;
            self.last_active = Instant::now();
            if !keep {
                let _ = self.io.shutdown().await;
                return End::Closed;
            }
        }
    }

    /// Reads until a request head is complete at `pos`: `Some(Fast)` when
    /// the fast path serves it, `Some(Hyper)` when not, `None` when the
    /// connection closed, timed out, or the node drains while it is idle.
    async fn read_head(&mut self) -> Option<Parsed> {
        let (idle_timeout, header_timeout, max_head, max_fields) = {
            let snapshot = self.shared.snapshot.load();
            let tier = &snapshot.spec.tier;
            (
                tier.timeouts.idle,
                tier.timeouts.request_headers,
                tier.limits.max_header_bytes as usize,
                tier.limits.max_header_count as usize,
            )
        };
        let since = Instant::now();
        loop {
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            } else {
                match codec::parse_request(&self.buf[self.pos..], max_fields, &mut self.head) {
                    Parsed::Partial if self.buf.len() - self.pos <= max_head => {}
                    Parsed::Fast if self.head.len <= max_head => return Some(Parsed::Fast),
                    _ => return Some(Parsed::Hyper),
                }
            }
            let idle = self.pos == self.buf.len();
            if idle && self.drain.is_cancelled() {
                return None;
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            self.buf.reserve(READ_SIZE);
            let deadline = (self.last_active + idle_timeout).min(since + header_timeout);
            self.timer.as_mut().reset(deadline);
            let read = tokio::select! {
                read = self.io.read_buf(&mut self.buf) => read,
                () = self.timer.as_mut() => {
                    debug!(client = %self.info.client, "closing a client connection: no request in time");
                    return None;
                }
                () = self.drain.cancelled(), if idle => return None,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return None;
            }
        }
    }

    /// The route of the request at `pos`, or `None` when it is for hyper
    /// all the same: the route's decision is anything but a plain forward
    /// to an HTTP/1.1 pool (header rules, a redirect, a fixed response, a
    /// declared body over the limit), or the body's length is not declared
    /// on a route with a body limit.
    fn classify(&self, snapshot: &Snapshot) -> Option<Option<Route>> {
        if self.info.framing_conflict.load(Ordering::Relaxed) {
            return None;
        }
        let buf = &self.buf[self.pos..];
        let head = &self.head;
        let target = std::str::from_utf8(&buf[head.target.clone()]).ok()?;
        let path = target.split('?').next().unwrap_or(target);
        if path == snapshot.spec.tier.health_path {
            return None;
        }
        let fields = HeadFields {
            buf,
            fields: &head.fields,
        };
        let view = RequestView {
            method: std::str::from_utf8(&buf[head.method.clone()]).ok()?,
            scheme: self.info.listener.name(),
            host: std::str::from_utf8(&buf[head.fields[head.host].value.clone()]).ok()?,
            path_and_query: target,
            content_length: Some(head.content_length),
            fields: &fields,
        };
        let Some(matched) = snapshot.router.route(&view) else {
            return Some(None);
        };
        let Decision::Forward(forwarded) = matched.decision else {
            return None;
        };
        let undeclared = || fields.values("transfer-encoding").next().is_some();
        if !forwarded.plain()
            || !snapshot.pools[forwarded.pool].config.is_plain_http1()
            || (forwarded.max_body.is_some() && undeclared())
        {
            return None;
        }
        Some(Some(Route {
            rule: matched.index,
            pool: forwarded.pool,
            rewritten: match forwarded.path_and_query {
                Cow::Borrowed(_) => None,
                Cow::Owned(path) => Some(path),
            },
        }))
    }

    /// Serves the request at `pos`; whether the connection stays open.
    async fn exchange(&mut self, snapshot: &Snapshot, route: Option<Route>) -> bool {
        let mut record = Record::start();
        let body_start = self.pos + self.head.len;
        self.next = body_start;
        self.body = Body::Unread;
        let (status, mut keep) = match self.proxy(snapshot, route, &mut record).await {
            Ok(done) => (done.status, done.keep),
            Err(fault) => {
                record.fault(fault, &self.shared, self.info.listener);
                let keep = self.answer(fault).await;
                (fault.status().as_u16(), keep)
            }
        };
        if self.body == Body::Broken {
            keep = false;
        } else if self.body == Body::Unread {
            // The body was not read: skip it if it is all here, else close.
            match self.unread_body_end() {
                Some(end) => self.next = end,
                None => keep = false,
            }
        }
        let buf = &self.buf[self.pos..];
        let text = |range: Range<usize>| std::str::from_utf8(&buf[range]).unwrap_or("-");
        let asked = Asked {
            client: self.info.client,
            listener: self.info.listener,
            method: text(self.head.method.clone()),
            host: Some(text(self.head.fields[self.head.host].value.clone())),
            path_and_query: text(self.head.target.clone()),
            version: Version::HTTP_11,
        };
        access::finish(&record, &asked, status, snapshot);
        self.pos = self.next.min(self.buf.len());
        keep
    }

    /// Whether the answer closes the connection: it says so
    /// ([`Conn::announces_close`]), or the request's body is not all read
    /// and cannot be skipped.
    fn closing(&self) -> bool {
        self.announces_close() || (self.body == Body::Unread && self.unread_body_end().is_none())
    }

    /// Whether the answer says that it closes the connection
    /// (`Connection: close`): the client or the drain asks, or the body was
    /// read in part. A body the proxy answers without reading and cannot
    /// skip closes the connection unannounced, as on hyper's path, which
    /// tries to skip the body only once the answer's head is out.
    fn announces_close(&self) -> bool {
        self.head.close || self.drain.is_cancelled() || self.body == Body::Broken
    }

    /// Where the request's body ends when it is all in the buffer (or
    /// there is none); `None` when it is not, or is not a chunked body.
    fn unread_body_end(&self) -> Option<usize> {
        let body_start = self.pos + self.head.len;
        if !self.head.chunked {
            let end = body_start as u64 + self.head.content_length;
            return (end <= self.buf.len() as u64).then_some(end as usize);
        }
        let mut decoder = Chunked::default();
        let mut at = body_start;
        while at < self.buf.len() && !decoder.done() {
            at += decoder.decode(&self.buf[at..]).ok()?.used;
        }
        decoder.done().then_some(at)
    }

    /// Lays out after the head, in [`Conn::parts`], the body bytes read
    /// with it (a chunked body's re-framed); notes whether they are the
    /// whole body.
    fn buffered_body(&mut self) -> Result<(), Fault> {
        let body_start = self.pos + self.head.len;
        if self.head.chunked {
            self.chunks = Chunked::default();
            self.buffered_end = rechunk(
                &mut self.chunks,
                &self.buf,
                body_start,
                &mut self.out,
                &mut self.parts,
            )
            .map_err(|_| {
                self.body = Body::Broken;
                Fault::BAD_BODY
            })?;
            self.whole_body = self.chunks.done();
            return Ok(());
        }
        let buffered = (self.buf.len() - body_start).min(self.head.content_length as usize);
        if buffered > 0 {
            self.parts
                .push((Src::Client, body_start..body_start + buffered));
        }
        self.buffered_end = body_start + buffered;
        self.whole_body = buffered as u64 == self.head.content_length;
        Ok(())
    }

    /// Answers `fault` as the general path does; whether the connection
    /// stays open.
    async fn answer(&mut self, fault: Fault) -> bool {
        let close = fault.closes_connection() || self.closing();
        let announce = self.announces_close() && !fault.closes_connection();
        let out = &mut self.out;
        out.clear();
        codec::status_line(fault.status(), out);
        fault.fields(|name, value| codec::field(out, name.as_str().as_bytes(), value.as_bytes()));
        if announce {
            codec::field(out, b"connection", b"close");
        }
        let body = fault.body();
        codec::field(out, b"content-length", body.len().to_string().as_bytes());
        codec::date_field(out);
        out.extend_from_slice(b"\r\n");
        if &self.buf[self.pos..][self.head.method.clone()] != b"HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        self.io.write_all(&self.out).await.is_ok() && !close
    }

    /// The request's way through the shared decisions and its attempts.
    async fn proxy(
        &mut self,
        snapshot: &Snapshot,
        route: Option<Route>,
        record: &mut Record,
    ) -> Result<Done, Fault> {
        let tier = &snapshot.spec.tier;
        let client = self.info.client.ip();
        let pass = steps::admit(snapshot, &self.shared, self.info.listener, client)?;
        let route = route.ok_or(Fault::NoRoute)?;
        record.route = Some(route.rule);
        record.pool = Some(route.pool);
        let pool = &snapshot.pools[route.pool];

        let buf = &self.buf[self.pos..];
        let head = &self.head;
        let method = Method::from_bytes(&buf[head.method.clone()])
            .map_err(|_| Fault::BadRequest("bad method"))?;
        let affinity = RequestAffinity::of_fields(
            &pool.config,
            client,
            |name| first(buf, &head.fields, name),
            || all(buf, &head.fields, "cookie"),
        );
        let request_id = request_head(
            buf,
            self.pos,
            head,
            &Forwarding {
                rewritten: route.rewritten.as_deref(),
                client: self.client_ip.as_bytes(),
                proto: self.info.listener,
                via: tier.via.then_some(self.shared.via.as_bytes()),
                chunked: head.chunked,
            },
            || self.shared.new_request_id(),
            &mut self.out,
            &mut self.parts,
        );
        record.request_id = Some(request_id.clone());
        let bodyless = head.content_length == 0 && !head.chunked;
        // The body bytes already read go with the head.
        self.buffered_body()?;
        let head_request = method == Method::HEAD;
        let mut attempts = Attempts::new(pool, &method, bodyless, affinity);
        loop {
            let (pick, in_flight) = attempts.start(record, self.shared.now_ms())?;
            let started = Instant::now();
            let result = self
                .attempt(
                    &pick.server,
                    tier,
                    started + tier.timeouts.response,
                    head_request,
                )
                .await;
            let latency = started.elapsed();
            let status = self.response.status;
            let attempted = Attempted::from(result.as_ref().map(|_| status).map_err(|f| *f));
            let now_ms = || self.shared.now_ms();
            if let Some(wait) = attempts.settle(&pick, record, attempted, latency, now_ms) {
                // The failed attempt lets go of its server before the back-off.
                drop((in_flight, result));
                tokio::time::sleep(wait).await;
                continue;
            }
            let backend = result?;
            return Ok(self
                .respond(
                    backend,
                    Reply {
                        pick: &pick,
                        pool,
                        _pass: pass,
                        in_flight,
                        request_id: &request_id,
                        tier,
                        via: tier.via.then(|| self.shared.via.clone()),
                    },
                )
                .await);
        }
    }

    /// One attempt on the server at `addr`, within `deadline`: a pooled
    /// connection or a new one, the request sent (its body streamed), the
    /// response head read into [`Conn::response`] (1xx skipped).
    async fn attempt(
        &mut self,
        server: &ServerState,
        tier: &L7Tier,
        deadline: Instant,
        head_request: bool,
    ) -> Result<Backend, Fault> {
        let addr = server.addr;
        // A stale pooled connection is replaced when the request can be
        // sent again: its body was all in the first write.
        let resendable = self.whole_body;
        loop {
            let pooled = self.idle.take(addr, tier.timeouts.upstream_idle, |b| {
                super::open_and_quiet(b)
            });
            let reused = pooled.is_some();
            let mut backend = match pooled {
                Some(stream) => stream,
                None => {
                    let connect = connect_tcp(addr, tier.timeouts.connect);
                    match before(&mut self.timer, deadline, connect).await {
                        None => return Err(Fault::UpstreamTimeout),
                        Some(Err(error)) => {
                            debug!(server = %addr, "upstream error: {error}");
                            return Err(Fault::ConnectFailed);
                        }
                        Some(Ok(stream)) => {
                            Backend::new(stream, Held::new(&server.metrics.connections))
                        }
                    }
                }
            };
            match self.send(&mut backend, tier, deadline, head_request).await {
                Ok(()) => return Ok(backend),
                Err(Failed::Stale) if reused && resendable => {
                    debug!(server = %addr, "a pooled connection was closed: sending on another");
                }
                Err(Failed::Stale) => return Err(Fault::UpstreamFailed),
                Err(Failed::Fault(fault)) => return Err(fault),
            }
        }
    }

    /// Sends the request on `backend` and reads the response head.
    async fn send(
        &mut self,
        backend: &mut TcpStream,
        tier: &L7Tier,
        deadline: Instant,
        head_request: bool,
    ) -> Result<(), Failed> {
        let write = write_parts(
            backend,
            &self.parts,
            [&self.buf, &self.up, &self.out],
            &mut self.scratch,
        );
        match before(&mut self.timer, deadline, write).await {
            None => return Err(Failed::Fault(Fault::UpstreamTimeout)),
            Some(Err(_)) => return Err(Failed::Stale),
            Some(Ok(())) => {}
        }
        let deadline = self
            .send_rest_of_body(backend, tier)
            .await?
            .unwrap_or(deadline);
        self.up.clear();
        loop {
            match codec::parse_response(&self.up, head_request, &mut self.response) {
                Ok(true)
                    if (100..200).contains(&self.response.status)
                        && self.response.status != 101 =>
                {
                    // Interim responses (103 Early Hints, 100) are not passed on.
                    self.up.drain(..self.response.len);
                    continue;
                }
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => {
                    debug!("upstream error: {error}");
                    return Err(Failed::Fault(Fault::UpstreamFailed));
                }
            }
            self.up.reserve(READ_SIZE);
            let read = backend.read_buf(&mut self.up);
            match before(&mut self.timer, deadline, read).await {
                None => return Err(Failed::Fault(Fault::UpstreamTimeout)),
                Some(Ok(n)) if n > 0 => {}
                Some(_) if self.up.is_empty() => return Err(Failed::Stale),
                Some(_) => return Err(Failed::Fault(Fault::UpstreamFailed)),
            }
        }
    }

    /// Streams the part of the request body not read with the head, each
    /// piece within the request-body pause (the client's time: the
    /// response timeout runs from the body's end, as on the hyper path);
    /// marks where the next request starts. When it streamed, the deadline
    /// of the response head.
    async fn send_rest_of_body(
        &mut self,
        backend: &mut TcpStream,
        tier: &L7Tier,
    ) -> Result<Option<Instant>, Failed> {
        let body_start = self.pos + self.head.len;
        if self.whole_body {
            self.next = self.buffered_end;
            self.body = Body::Read;
            return Ok(None);
        }
        // What was read with the head went with it (a chunked body's end
        // is its decoder's to find).
        let mut remaining = self
            .head
            .content_length
            .saturating_sub((self.buffered_end - body_start) as u64);
        self.buf.truncate(body_start);
        // Until the body is through, the connection cannot be reused.
        self.body = Body::Broken;
        loop {
            self.buf.reserve(READ_SIZE);
            let pause = Instant::now() + tier.timeouts.request_body;
            let read = self.io.read_buf(&mut self.buf);
            match before(&mut self.timer, pause, read).await {
                None => return Err(Failed::Fault(Fault::ClientTooSlow)),
                Some(Ok(n)) if n > 0 => {}
                Some(_) => return Err(Failed::Fault(Fault::BAD_BODY)),
            }
            // The piece of the body among the bytes read, sent on; what
            // came after the body is the next request.
            let (end, done) = if self.head.chunked {
                self.out.clear();
                self.parts.clear();
                let end = rechunk(
                    &mut self.chunks,
                    &self.buf,
                    body_start,
                    &mut self.out,
                    &mut self.parts,
                )
                .map_err(|_| Failed::Fault(Fault::BAD_BODY))?;
                (end, self.chunks.done())
            } else {
                let piece = (self.buf.len() - body_start).min(remaining as usize);
                remaining -= piece as u64;
                self.parts.clear();
                self.parts
                    .push((Src::Client, body_start..body_start + piece));
                (body_start + piece, remaining == 0)
            };
            let write = write_parts(
                backend,
                &self.parts,
                [&self.buf, &self.up, &self.out],
                &mut self.scratch,
            );
            let stalled = Instant::now() + tier.timeouts.response;
            match before(&mut self.timer, stalled, write).await {
                None => return Err(Failed::Fault(Fault::UpstreamTimeout)),
                Some(Err(_)) => return Err(Failed::Fault(Fault::UpstreamFailed)),
                Some(Ok(())) => {}
            }
            self.buf.drain(body_start..end);
            if done {
                break;
            }
        }
        self.next = body_start;
        self.body = Body::Read;
        Ok(Some(Instant::now() + tier.timeouts.response))
    }

    /// Writes [`Conn::parts`] to the client.
    async fn write_to_client(&mut self) -> io::Result<()> {
        write_parts(
            &mut self.io,
            &self.parts,
            [&self.buf, &self.up, &self.out],
            &mut self.scratch,
        )
        .await
    }

    /// Sends the backend's response (in [`Conn::response`] and
    /// [`Conn::up`]) to the client; the connection to the server goes back
    /// to the pool when it may.
    async fn respond(&mut self, mut backend: Backend, reply: Reply<'_>) -> Done {
        let status = self.response.status;
        if status == StatusCode::SWITCHING_PROTOCOLS.as_u16() {
            let fault = Fault::UnexpectedUpgrade;
            let keep = self.answer(fault).await;
            return Done {
                status: fault.status().as_u16(),
                keep,
            };
        }
        let close = self.closing();
        let framing = self.response.framing.unwrap_or(Framing::Close);
        let rechunk = matches!(framing, Framing::Chunked | Framing::Close);
        let sticky = reply
            .pick
            .set_cookie
            .then_some(reply.pool.config.sticky.as_ref())
            .flatten()
            .map(|config| sticky::set_cookie(config, &reply.pick.server.token));
        response_head(
            &self.up,
            &self.response,
            &ResponseAdds {
                via: reply.via.as_ref().map(HeaderValue::as_bytes),
                request_id: reply.request_id.as_bytes(),
                set_cookie: sticky.as_deref().map(str::as_bytes),
                close,
                rechunk,
                status,
            },
            &mut self.out,
            &mut self.parts,
        );
        let body_start = self.response.len;
        let mut complete = true;
        let mut reusable = self.response.keep_alive;
        let pause = reply.tier.timeouts.response;
        let mut stalled = false;
        match framing {
            Framing::Empty => {
                reusable &= self.up.len() == body_start;
                complete = self.write_to_client().await.is_ok();
            }
            Framing::Length(length) => {
                let buffered = (self.up.len() - body_start).min(length as usize);
                reusable &= self.up.len() - body_start <= length as usize;
                self.parts
                    .push((Src::Backend, body_start..body_start + buffered));
                let mut remaining = length - buffered as u64;
                let mut sent = self.write_to_client().await.is_ok();
                while sent && remaining > 0 {
                    self.up.clear();
                    self.up.reserve(READ_SIZE);
                    let read = backend.read_buf(&mut self.up);
                    match before(&mut self.timer, Instant::now() + pause, read).await {
                        None => {
                            stalled = true;
                            break;
                        }
                        Some(Ok(n)) if n > 0 => {}
                        Some(_) => break,
                    }
                    let piece = self.up.len().min(remaining as usize);
                    reusable &= piece == self.up.len();
                    sent = self.io.write_all(&self.up[..piece]).await.is_ok();
                    remaining -= piece as u64;
                }
                complete = sent && remaining == 0;
            }
            Framing::Chunked | Framing::Close => {
                let mut decoder = (framing == Framing::Chunked).then(Chunked::default);
                let mut at = body_start;
                let mut done = false;
                loop {
                    // Everything read so far, as chunks, in one write.
                    while at < self.up.len() && !done {
                        let data = match &mut decoder {
                            Some(decoder) => match decoder.decode(&self.up[at..]) {
                                Ok(piece) => {
                                    let data = at + piece.data.start..at + piece.data.end;
                                    at += piece.used;
                                    done = decoder.done();
                                    data
                                }
                                Err(error) => {
                                    debug!("upstream error: {error}");
                                    complete = false;
                                    break;
                                }
                            },
                            None => {
                                let data = at..self.up.len();
                                at = self.up.len();
                                data
                            }
                        };
                        if !data.is_empty() {
                            let start = self.out.len();
                            codec::chunk_size_line(data.len(), &mut self.out);
                            self.parts.push((Src::Out, start..self.out.len()));
                            self.parts.push((Src::Backend, data));
                            self.parts.push((Src::Static(b"\r\n"), 0..2));
                        }
                    }
                    if !complete {
                        break;
                    }
                    if done {
                        self.parts
                            .push((Src::Static(codec::LAST_CHUNK), 0..codec::LAST_CHUNK.len()));
                        reusable &= at == self.up.len();
                    }
                    if self.write_to_client().await.is_err() {
                        complete = false;
                        break;
                    }
                    if done {
                        break;
                    }
                    self.parts.clear();
                    self.out.clear();
                    self.up.clear();
                    at = 0;
                    self.up.reserve(READ_SIZE);
                    let read = backend.read_buf(&mut self.up);
                    match before(&mut self.timer, Instant::now() + pause, read).await {
                        None => {
                            stalled = true;
                            complete = false;
                            break;
                        }
                        Some(Ok(n)) if n > 0 => {}
                        // A close-delimited body ends here.
                        Some(Ok(_)) if decoder.is_none() => done = true,
                        Some(_) => {
                            complete = false;
                            break;
                        }
                    }
                    if done {
                        self.parts
                            .push((Src::Static(codec::LAST_CHUNK), 0..codec::LAST_CHUNK.len()));
                        complete = self.write_to_client().await.is_ok();
                        reusable = false;
                        break;
                    }
                }
            }
        }
        if stalled {
            let server = reply.in_flight.server();
            warn!(
                pool = %reply.pool.config.name,
                server = %server.addr,
                ?pause,
                "the backend stalled mid-body: response aborted, connection closed"
            );
            reply.pool.record_outcome(
                server,
                Outcome::Aborted,
                Duration::ZERO,
                self.shared.now_ms(),
            );
        }
        if complete && reusable {
            self.idle.put(reply.pick.server.addr, backend);
        }
        Done {
            status,
            keep: complete && !close,
        }
    }
}

/// What the answer to a proxied request is built with, besides the
/// backend's response; its guards are held until the body is sent.
struct Reply<'a> {
    pick: &'a Pick,
    pool: &'a PoolState,
    _pass: GatePass,
    in_flight: InFlight,
    request_id: &'a HeaderValue,
    tier: &'a L7Tier,
    via: Option<HeaderValue>,
}

/// What [`request_head`] adds besides the client's fields.
struct Forwarding<'a> {
    /// The path the route rewrote the target to, if it did.
    rewritten: Option<&'a str>,
    client: &'a [u8],
    proto: ListenerKind,
    via: Option<&'a [u8]>,
    /// The body goes in chunks (its `Transfer-Encoding` is hop-by-hop).
    chunked: bool,
}

/// Lays out the backend's request head in `parts`: the request line (or
/// its rewrite), the client's fields [`forward`] keeps, as slices of
/// `buf` (which starts at `base` of the client's buffer), then the fields
/// it adds, written to `out`. Returns the request id.
fn request_head(
    buf: &[u8],
    base: usize,
    head: &RequestHead,
    f: &Forwarding<'_>,
    new_id: impl FnOnce() -> HeaderValue,
    out: &mut Vec<u8>,
    parts: &mut Vec<(Src, Range<usize>)>,
) -> HeaderValue {
    out.clear();
    parts.clear();
    let at = |range: Range<usize>| base + range.start..base + range.end;
    match f.rewritten {
        None => parts.push((Src::Client, at(head.line.clone()))),
        Some(path) => {
            out.extend_from_slice(&buf[head.method.clone()]);
            out.push(b' ');
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(b" HTTP/1.1\r\n");
            parts.push((Src::Out, 0..out.len()));
        }
    }
    let connection = || all(buf, &head.fields, "connection");
    let client_id = first(buf, &head.fields, forward::X_REQUEST_ID.as_str())
        .filter(|id| forward::keeps_request_id(id));
    let replaced = [
        forward::X_FORWARDED_FOR.as_str(),
        forward::X_FORWARDED_PROTO.as_str(),
        forward::X_FORWARDED_HOST.as_str(),
    ];
    keep_fields(&head.fields, parts, Src::Client, base, |field| {
        forward::is_hop_by_hop(&buf[field.name.clone()], connection())
            || replaced.iter().any(|name| field.is(buf, name))
            || (client_id.is_none() && field.is(buf, forward::X_REQUEST_ID.as_str()))
    });
    let start = out.len();
    out.extend_from_slice(forward::X_FORWARDED_FOR.as_str().as_bytes());
    out.extend_from_slice(b": ");
    forward::forwarded_for(
        all(buf, &head.fields, forward::X_FORWARDED_FOR.as_str()),
        f.client,
        out,
    );
    out.extend_from_slice(b"\r\n");
    codec::field(
        out,
        forward::X_FORWARDED_PROTO.as_str().as_bytes(),
        f.proto.name().as_bytes(),
    );
    codec::field(
        out,
        forward::X_FORWARDED_HOST.as_str().as_bytes(),
        &buf[head.fields[head.host].value.clone()],
    );
    if let Some(via) = f.via {
        codec::field(out, b"via", via);
    }
    if f.chunked {
        codec::field(out, b"transfer-encoding", b"chunked");
    }
    let id = match client_id.and_then(|id| HeaderValue::from_bytes(id).ok()) {
        Some(id) => id,
        None => {
            let id = new_id();
            codec::field(
                out,
                forward::X_REQUEST_ID.as_str().as_bytes(),
                id.as_bytes(),
            );
            id
        }
    };
    out.extend_from_slice(b"\r\n");
    parts.push((Src::Out, start..out.len()));
    id
}

/// What [`response_head`] adds to the backend's fields.
struct ResponseAdds<'a> {
    via: Option<&'a [u8]>,
    request_id: &'a [u8],
    set_cookie: Option<&'a [u8]>,
    /// `Connection: close`.
    close: bool,
    /// The body goes to the client in chunks (`Transfer-Encoding: chunked`).
    rechunk: bool,
    status: u16,
}

/// Lays out the client's response head in `parts`: the status line, the
/// backend's fields [`forward`] keeps (slices of `up`), then the fields
/// the proxy adds, written to `out`.
fn response_head(
    up: &[u8],
    response: &ResponseHead,
    adds: &ResponseAdds<'_>,
    out: &mut Vec<u8>,
    parts: &mut Vec<(Src, Range<usize>)>,
) {
    out.clear();
    parts.clear();
    parts.push((Src::Static(b"HTTP/1.1 "), 0..9));
    parts.push((Src::Backend, response.rest_of_line.clone()));
    let connection = || all(up, &response.fields, "connection");
    // No Content-Length on a 204 or 304 (as the general path, where hyper
    // drops it), nor one the body's framing replaces.
    let drop_length = adds.rechunk || adds.status == 204 || adds.status == 304;
    keep_fields(&response.fields, parts, Src::Backend, 0, |field| {
        forward::is_hop_by_hop(&up[field.name.clone()], connection())
            || (drop_length && field.is(up, "content-length"))
    });
    if let Some(via) = adds.via {
        codec::field(out, b"via", via);
    }
    if first(up, &response.fields, forward::X_REQUEST_ID.as_str()).is_none() {
        codec::field(
            out,
            forward::X_REQUEST_ID.as_str().as_bytes(),
            adds.request_id,
        );
    }
    if let Some(cookie) = adds.set_cookie {
        codec::field(out, b"set-cookie", cookie);
    }
    if adds.close {
        codec::field(out, b"connection", b"close");
    }
    if adds.rechunk {
        codec::field(out, b"transfer-encoding", b"chunked");
    }
    if first(up, &response.fields, "date").is_none() {
        codec::date_field(out);
    }
    out.extend_from_slice(b"\r\n");
    parts.push((Src::Out, 0..out.len()));
}

/// Adds the lines of the `fields` that `drop` does not reject to `parts`,
/// adjacent lines as one slice.
fn keep_fields(
    fields: &[Field],
    parts: &mut Vec<(Src, Range<usize>)>,
    src: Src,
    base: usize,
    drop: impl Fn(&Field) -> bool,
) {
    let mut run: Option<Range<usize>> = None;
    for field in fields {
        if drop(field) {
            if let Some(kept) = run.take() {
                parts.push((src, base + kept.start..base + kept.end));
            }
            continue;
        }
        run = match run {
            Some(kept) if kept.end == field.line.start => Some(kept.start..field.line.end),
            Some(kept) => {
                parts.push((src, base + kept.start..base + kept.end));
                Some(field.line.clone())
            }
            None => Some(field.line.clone()),
        };
    }
    if let Some(kept) = run {
        parts.push((src, base + kept.start..base + kept.end));
    }
}

/// The fields of a request head in the client's buffer, as the router
/// reads them.
struct HeadFields<'b> {
    buf: &'b [u8],
    fields: &'b [Field],
}

impl Fields for HeadFields<'_> {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> {
        self.fields
            .iter()
            .filter(move |f| f.is(self.buf, name))
            .map(|f| &self.buf[f.value.clone()])
    }
}

/// The first value of field `name` (lowercase).
fn first<'b>(buf: &'b [u8], fields: &[Field], name: &str) -> Option<&'b [u8]> {
    fields
        .iter()
        .find(|f| f.is(buf, name))
        .map(|f| &buf[f.value.clone()])
}

/// Every value of field `name` (lowercase).
fn all<'b, 'f>(
    buf: &'b [u8],
    fields: &'f [Field],
    name: &'f str,
) -> impl Iterator<Item = &'b [u8]> + use<'b, 'f> {
    fields
        .iter()
        .filter(move |f| f.is(buf, name))
        .map(move |f| &buf[f.value.clone()])
}

/// Decodes the chunked body in `buf` from `from` on with `decoder`, as far
/// as it goes, and lays its data out in `parts` as chunks of the proxy's
/// own (size lines in `out`), the last chunk too once the body ended
/// (extensions and trailers dropped); where it stopped reading.
fn rechunk(
    decoder: &mut Chunked,
    buf: &[u8],
    from: usize,
    out: &mut Vec<u8>,
    parts: &mut Vec<(Src, Range<usize>)>,
) -> Result<usize, BadChunk> {
    let mut at = from;
    while at < buf.len() && !decoder.done() {
        let piece = decoder.decode(&buf[at..])?;
        if !piece.data.is_empty() {
            let start = out.len();
            codec::chunk_size_line(piece.data.len(), out);
            parts.push((Src::Out, start..out.len()));
            parts.push((Src::Client, at + piece.data.start..at + piece.data.end));
            parts.push((Src::Static(b"\r\n"), 0..2));
        }
        at += piece.used;
    }
    if decoder.done() {
        parts.push((Src::Static(codec::LAST_CHUNK), 0..codec::LAST_CHUNK.len()));
    }
    Ok(at)
}

/// Runs `work` until `deadline` on the connection's one timer; `None`
/// when the deadline came first.
async fn before<F: Future>(
    timer: &mut Pin<Box<Sleep>>,
    deadline: Instant,
    work: F,
) -> Option<F::Output> {
    timer.as_mut().reset(deadline);
    tokio::select! {
        biased;
        out = work => Some(out),
        () = timer.as_mut() => None,
    }
}

/// Writes `parts` (slices of `sources`: client, backend, out) to `w` in
/// as few system calls as it takes: vectored when the writer takes it,
/// else gathered in `scratch` first (TLS makes one record of it).
async fn write_parts<W: AsyncWrite + Unpin>(
    w: &mut W,
    parts: &[(Src, Range<usize>)],
    sources: [&[u8]; 3],
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    if !w.is_write_vectored() {
        scratch.clear();
        for part in parts {
            scratch.extend_from_slice(slice(sources, part));
        }
        w.write_all(scratch).await?;
        return w.flush().await;
    }
    for batch in parts.chunks(MAX_SLICES) {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slot, part) in slices.iter_mut().zip(batch) {
            *slot = IoSlice::new(slice(sources, part));
        }
        let mut pending = &mut slices[..batch.len()];
        while !pending.is_empty() {
            let n = w.write_vectored(pending).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut pending, n);
        }
    }
    w.flush().await
}

/// The bytes of `part` in `sources` (client, backend, out).
fn slice<'a>(sources: [&'a [u8]; 3], (src, range): &(Src, Range<usize>)) -> &'a [u8] {
    match src {
        Src::Client => &sources[0][range.clone()],
        Src::Backend => &sources[1][range.clone()],
        Src::Out => &sources[2][range.clone()],
        Src::Static(bytes) => &bytes[range.clone()],
    }
}
