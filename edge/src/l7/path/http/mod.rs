//! The hyper adapter: the only module of the L7 tier that names hyper
//! types. It serves client connections (HTTP/1.1, HTTP/2 over TLS by ALPN,
//! h2c by prior knowledge), runs each request through the pure stages
//! (admission, [`crate::l7::rules::route`], [`crate::l7::shared::pool`], [`crate::l7::rules::forward`]) and
//! sends it upstream ([`upstream`]: HTTP/1.1 keep-alive pools, or HTTP/2
//! for `h2c` and `h2` pools, over TLS for TLS pools), with timeouts and
//! WebSocket tunnels, retrying as [`crate::l7::rules::retry`] decides and answering
//! [`crate::l7::rules::fault`]s itself.
//!
//! # A request's way through
//!
//! framing check (smuggling) → `Host` → region health path → rate limit
//! (429) → listener concurrency gate (503) → route (404; or answered here:
//! redirect, fixed response, 413 for a declared body over the limit;
//! a streamed body past it is cut off and answered 413) → pool pick
//! (503 when no server can take it) → headers rewritten → upstream attempt
//! (connect + response timeout) → retry to another server if the policy
//! allows → response headers rewritten, sticky cookie set → body streamed
//! back with the in-flight guards inside it (a stall mid-body aborts it
//! and counts against the server) → access log line and metrics.

pub mod paced_body;
pub mod upstream;

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use topology::tiers::l7::{BackendProtocol, L7Tier, Respond};
use tracing::{debug, warn};

use crate::l7::path::access::{self, Asked, Record};
use crate::l7::path::http::paced_body::{
    BackendBodyError, BodyWitness, Capped, PacedBody, Stopped,
};
use crate::l7::path::steps::{self, Attempts};
use crate::l7::path::tap::Tapped;
use crate::l7::rules::fault::Fault;
use crate::l7::rules::forward::{self, Forwarding, HeaderEdits};
use crate::l7::rules::limits::GatePass;
use crate::l7::rules::retry::Attempted;
use crate::l7::rules::route::{Decision, RequestView, request_host};
use crate::l7::rules::sticky;
use crate::l7::shared::backend_tls::TlsFailure;
use crate::l7::shared::context::{ListenerKind, Shared};
use crate::l7::shared::pool::{InFlight, Outcome, Pick, PoolState, RequestAffinity};
use crate::l7::shared::state::Snapshot;
use upstream::{Upstream, UpstreamBody, UpstreamError};

/// Body of responses sent to the client.
pub(crate) type DownBody = Either<Tracked, Full<Bytes>>;

pub use crate::l7::path::access::ACCESS_LOG;

/// The hyper adapter's own state for one node, beside the serving
/// snapshot (which names no hyper type): the connection builders and the
/// backend client, each kept across a reload unless what it was built
/// from changed. Requests in flight keep the client they started with.
pub struct Hyper {
    builders: ArcSwap<ServerBuilders>,
    upstream: ArcSwap<Upstream>,
}

impl std::fmt::Debug for Hyper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hyper")
    }
}

impl Hyper {
    /// For `snapshot`'s tier.
    pub fn new(snapshot: &Snapshot) -> Self {
        let tier = &snapshot.spec.tier;
        Self {
            builders: ArcSwap::from_pointee(ServerBuilders::new(tier)),
            upstream: ArcSwap::new(Upstream::new(&tier.timeouts)),
        }
    }

    /// Follows a reload from `old` to `new`: the builders are rebuilt when
    /// the limits or timeouts changed, the backend client when its
    /// timeouts did (its idle connections go with it), and the client
    /// forgets the connections made with pools' TLS settings that are gone.
    pub fn reload(&self, old: &Snapshot, new: &Snapshot) {
        let (was, tier) = (&old.spec.tier, &new.spec.tier);
        if was.limits != tier.limits || was.timeouts != tier.timeouts {
            self.builders.store(Arc::new(ServerBuilders::new(tier)));
        }
        if !self.upstream.load().fits(&tier.timeouts) {
            self.upstream.store(Upstream::new(&tier.timeouts));
        }
        let live: Vec<u64> = new.backend_tls.iter().flatten().map(|t| t.id()).collect();
        self.upstream.load().retain_tls(&live);
    }
}

/// hyper's connection builders for one configuration.
///
/// HTTP/1.1 and HTTP/2 are served by hyper's own builders, not
/// hyper-util's `auto` one: that one reads the first 24 bytes alone to
/// look for HTTP/2's preface, so hyper's first parse of a request head saw
/// only those, and hyper parses a head it found incomplete again only once
/// its end arrives — a malformed head cut short was not answered 400 but
/// left to the header timeout. [`serve_connection`] looks for the preface
/// itself and hands hyper every byte read so far.
struct ServerBuilders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl std::fmt::Debug for ServerBuilders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerBuilders")
    }
}

impl ServerBuilders {
    /// Builders applying `tier`'s limits and timeouts.
    fn new(tier: &L7Tier) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(tier.timeouts.request_headers)
            .max_buf_size(tier.limits.max_header_bytes as usize)
            .max_headers(tier.limits.max_header_count as usize)
            .keep_alive(true);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(tier.limits.max_h2_streams)
            .max_header_list_size(tier.limits.max_header_bytes)
            // Rapid reset (CVE-2023-44487) and error-reset floods.
            .max_pending_accept_reset_streams(Some(20))
            .max_local_error_reset_streams(Some(1024))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(10));
        Self { h1, h2 }
    }
}

/// HTTP/2's connection preface (RFC 9113 §3.4), by which a client opens
/// h2c with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (ALPN `h2`).
    Http2,
    /// HTTP/1.1, or HTTP/2 when the client opens with its preface (h2c).
    Auto,
}

/// What the request path knows about the connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// The client (from the PROXY header when there is one).
    pub client: SocketAddr,
    /// The address it connected to (the VIP, from the PROXY header when
    /// there is one): the host of requests that name none.
    pub local: SocketAddr,
    /// The listener it came in on.
    pub listener: ListenerKind,
    /// Set by the framing guard when a head had both `Content-Length` and
    /// `Transfer-Encoding`.
    pub framing_conflict: Arc<AtomicBool>,
}

/// Request activity on one connection, for the idle timeout.
#[derive(Debug, Default)]
struct Activity {
    busy: AtomicU32,
    last_ms: AtomicU64,
}

struct Busy<'a>(&'a Activity, &'a Shared);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.last_ms.store(self.1.now_ms(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one client connection with `hyper`'s current builders until it
/// closes, goes idle, or the node drains (`drain`, the connection's held
/// signal: finish what is in flight) or gives up (the drain is forced).
pub(crate) async fn serve_connection<IO>(
    mut io: Tapped<IO>,
    protocol: Protocol,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
    hyper: &Arc<Hyper>,
    drain: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builders = hyper.builders.load_full();
    let force = shared.drain.forced().clone();
    let client = info.client;
    let idle = shared.snapshot.load().spec.tier.timeouts.idle;
    let http2 = match protocol {
        Protocol::Http1 => false,
        Protocol::Http2 => true,
        Protocol::Auto => {
            let opening =
                io.peek(|bytes| bytes.len() >= H2_PREFACE.len() || !H2_PREFACE.starts_with(bytes));
            tokio::select! {
                read = opening => match read {
                    Ok(bytes) => bytes.starts_with(H2_PREFACE),
                    Err(error) => {
                        debug!(%client, "client connection ended: {error:#}");
                        return;
                    }
                },
                () = tokio::time::sleep(idle) => {
                    debug!("closing an idle client connection");
                    return;
                }
                () = drain.cancelled() => return,
                () = force.cancelled() => return,
            }
        }
    };
    let client_ip = forward::client_value(client.ip());
    let activity = Arc::new(Activity::default());
    activity.last_ms.store(shared.now_ms(), Ordering::Relaxed);
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        let hyper = hyper.clone();
        service_fn(move |request| {
            let shared = shared.clone();
            let activity = activity.clone();
            let info = info.clone();
            let client_ip = client_ip.clone();
            let upstream = hyper.upstream.load_full();
            async move {
                activity.busy.fetch_add(1, Ordering::Relaxed);
                let _busy = Busy(&activity, &shared);
                Ok::<_, Infallible>(handle(request, &info, &client_ip, &shared, &upstream).await)
            }
        })
    };
    let watch = Watch {
        client,
        idle,
        activity: &activity,
        shared: &shared,
        drain: &drain,
        force: &force,
    };
    let io = TokioIo::new(io);
    if http2 {
        let connection = builders.h2.serve_connection(io, service);
        watch.drive(connection, |c| c.graceful_shutdown()).await;
    } else {
        let connection = builders.h1.serve_connection(io, service).with_upgrades();
        watch.drive(connection, |c| c.graceful_shutdown()).await;
    }
}

/// What ends a connection hyper serves besides its client: the idle
/// timeout, the drain, the forced drain.
struct Watch<'a> {
    client: SocketAddr,
    idle: Duration,
    activity: &'a Activity,
    shared: &'a Shared,
    drain: &'a CancellationToken,
    force: &'a CancellationToken,
}

impl Watch<'_> {
    /// Drives `connection` to its end; `shutdown` asks it to finish what
    /// is in flight and close.
    async fn drive<C, E>(&self, connection: C, shutdown: impl Fn(Pin<&mut C>))
    where
        C: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let Self {
            client,
            idle,
            activity,
            shared,
            drain,
            force,
        } = self;
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            let last = activity.last_ms.load(Ordering::Relaxed);
            let deadline = shared.clock.instant_at(last) + *idle;
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        debug!(%client, "client connection ended: {error:#}");
                    }
                    break;
                }
                () = drain.cancelled(), if !closing => {
                    shutdown(connection.as_mut());
                    closing = true;
                }
                () = tokio::time::sleep_until(deadline), if !closing => {
                    let idle_now = activity.busy.load(Ordering::Relaxed) == 0
                        && activity.last_ms.load(Ordering::Relaxed) == last;
                    if idle_now {
                        debug!("closing an idle client connection");
                        shutdown(connection.as_mut());
                        closing = true;
                    }
                }
                () = force.cancelled() => break,
            }
        }
    }
}

/// Whether a request is a gRPC call (`application/grpc`, `+proto`...): the
/// proxy answers its faults in gRPC's terms. gRPC rides on HTTP/2, which
/// only this path serves (the HTTP/1.1 fast path never sees a call).
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Whether the request is a gRPC call proper (`application/grpc`,
/// `application/grpc+proto`, …), which needs HTTP/2 to the server; gRPC-Web
/// (`application/grpc-web…`) travels over HTTP/1.1 and is not one.
fn is_grpc_call(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let rest = v.as_bytes().strip_prefix(b"application/grpc");
        rest.is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
    })
}

/// A response the proxy makes itself.
fn own_response(status: StatusCode, body: Bytes) -> Response<DownBody> {
    let mut response = Response::new(Either::Right(Full::new(body)));
    *response.status_mut() = status;
    response
}

/// A route's fixed response.
fn direct_response(respond: &Respond) -> Response<DownBody> {
    let status = StatusCode::from_u16(respond.status).unwrap_or(StatusCode::OK);
    let mut response = own_response(status, Bytes::from(respond.body.clone()));
    // Validation refuses a content type that is not a field value.
    if let Ok(content_type) = HeaderValue::from_str(&respond.content_type) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// The proxy's own answer to a request it could not pass on: for a gRPC
/// call a trailers-only response (200, no body) carrying
/// [`Fault::grpc_status`] and the reason, else the fault's status and body.
fn fault_response(fault: Fault, grpc: bool) -> Response<DownBody> {
    if grpc {
        let mut response = own_response(StatusCode::OK, Bytes::new());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(fault.grpc_status())),
        );
        headers.insert("grpc-message", HeaderValue::from_static(fault.reason()));
        return response;
    }
    let mut response = own_response(fault.status(), Bytes::from(fault.body()));
    let headers = response.headers_mut();
    fault.fields(|name, value| {
        headers.insert(name, value);
    });
    response
}

/// Answers one request, passing it on with `upstream`; `client_ip` is the
/// client's address as a header value.
async fn handle(
    request: Request<Incoming>,
    info: &ConnInfo,
    client_ip: &HeaderValue,
    shared: &Shared,
    upstream: &Arc<Upstream>,
) -> Response<DownBody> {
    let snapshot = shared.snapshot.load_full();
    let mut record = Record::start();
    let method = request.method().clone();
    let version = request.version();
    let uri = request.uri().clone();
    let host = request.headers().get(header::HOST).cloned();
    let grpc = is_grpc(request.headers());
    // The log keeps the fault's HTTP status, also when a gRPC call was
    // answered with a 200 that carries it as a grpc-status.
    let (response, status) = match proxy(
        request,
        info,
        client_ip,
        shared,
        &snapshot,
        upstream,
        &mut record,
    )
    .await
    {
        Ok(response) => {
            let status = response.status();
            (response, status)
        }
        Err(fault) => {
            record.fault(fault, shared, info.listener);
            (fault_response(fault, grpc), fault.status())
        }
    };
    let asked = Asked {
        client: info.client,
        listener: info.listener,
        method: method.as_str(),
        host: host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .or(uri.authority().map(Authority::as_str)),
        path_and_query: uri.path_and_query().map_or("/", PathAndQuery::as_str),
        version,
    };
    access::finish(&record, &asked, status.as_u16(), &snapshot);
    response
}

fn health_response(snapshot: &Snapshot, shared: &Shared) -> Response<DownBody> {
    let (status, body) = shared.health(snapshot);
    let mut response = own_response(status, Bytes::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn proxy(
    mut request: Request<Incoming>,
    info: &ConnInfo,
    client_ip: &HeaderValue,
    shared: &Shared,
    snapshot: &Snapshot,
    upstream: &Arc<Upstream>,
    record: &mut Record,
) -> Result<Response<DownBody>, Fault> {
    if info.framing_conflict.load(Ordering::Relaxed) {
        return Err(Fault::Framing);
    }
    let tier = &snapshot.spec.tier;
    let host = request_host(
        request.uri(),
        request.version(),
        request.headers(),
        info.local,
    )?;
    if request.uri().path() == tier.health_path {
        return Ok(health_response(snapshot, shared));
    }
    let pass = steps::admit(snapshot, shared, info.listener, info.client.ip())?;

    // Route: what the request gets, decided once.
    let (pool_index, rewritten, edits, max_body) = {
        let host_text = host
            .to_str()
            .map_err(|_| Fault::BadRequest("Host is not text"))?;
        let headers = request.headers();
        let view = RequestView {
            method: request.method().as_str(),
            scheme: info.listener.name(),
            host: host_text,
            path_and_query: request
                .uri()
                .path_and_query()
                .map_or("/", PathAndQuery::as_str),
            content_length: request.body().size_hint().exact(),
            fields: headers,
        };
        let matched = snapshot.router.route(&view).ok_or(Fault::NoRoute)?;
        record.route = Some(matched.index);
        match matched.decision {
            Decision::Forward(forwarded) => (
                forwarded.pool,
                match forwarded.path_and_query {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(path) => Some(path),
                },
                (forwarded.request_headers, forwarded.response_headers),
                forwarded.max_body,
            ),
            Decision::Redirect { status, location } => {
                let mut response = own_response(status, Bytes::new());
                response.headers_mut().insert(header::LOCATION, location);
                return Ok(response);
            }
            Decision::Respond(respond) => return Ok(direct_response(respond)),
            Decision::Refuse(fault) => return Err(fault),
        }
    };
    record.pool = Some(pool_index);
    let pool: &Arc<PoolState> = &snapshot.pools[pool_index];
    if pool.config.protocol == BackendProtocol::Http1 && is_grpc_call(request.headers()) {
        return Err(Fault::GrpcToHttp1);
    }

    let affinity = RequestAffinity::of(&pool.config, info.client.ip(), request.headers());

    // Headers for the backend. An HTTP/2 backend takes no upgrade: the
    // request goes as a plain one, which the backend answers as such.
    let protocol = pool.config.protocol;
    let upgrade = protocol == BackendProtocol::Http1
        && request.version() == Version::HTTP_11
        && forward::is_upgrade(request.headers());
    let on_client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let proto = match info.listener {
        ListenerKind::Http => "http",
        ListenerKind::Https => "https",
    };
    let via = tier.via.then_some(&shared.via);
    let request_id = forward::request_headers(
        &mut parts.headers,
        &Forwarding {
            client: client_ip,
            proto,
            host: &host,
            via,
            upgrade,
            http2: protocol == BackendProtocol::Http2,
        },
        || shared.new_request_id(),
    );
    edits.0.apply(&mut parts.headers);
    record.request_id = Some(request_id.clone());
    let path_and_query = match rewritten {
        None => parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
        Some(path) => PathAndQuery::try_from(path)
            .map_err(|_| Fault::BadRequest("rewritten path is invalid"))?,
    };
    let (version, target) = match protocol {
        BackendProtocol::Http1 => (Version::HTTP_11, Uri::from(path_and_query)),
        BackendProtocol::Http2 => (
            Version::HTTP_2,
            h2_target(
                &mut parts.headers,
                path_and_query,
                pool.config.tls.is_some(),
            )?,
        ),
    };
    let replayable = body.is_end_stream();
    let mut body = Some(body);
    let mut attempts = Attempts::new(pool, &parts.method, replayable, affinity);
    // Connecting (when no pooled connection is idle) counts against it too.
    let response_timeout = tier.timeouts.response;
    let tls = snapshot.backend_tls[pool_index].as_deref();

    loop {
        let now = shared.now_ms();
        let (pick, in_flight) = attempts.start(record, now)?;
        let more = attempts.may_follow(record);
        let mut witness = None;
        let up_body = match body.take() {
            Some(b) if !replayable => {
                let seen = BodyWitness::default();
                let capped = Capped::new(b, max_body, seen.clone());
                let paced = PacedBody::new(capped, tier.timeouts.request_body);
                witness = Some(seen.clone());
                Either::Left(paced.witnessed_by(seen))
            }
            _ => Either::Right(Empty::new()),
        };
        let mut up_request = Request::new(up_body);
        *up_request.method_mut() = parts.method.clone();
        *up_request.version_mut() = version;
        *up_request.uri_mut() = target.clone();
        *up_request.headers_mut() = if more {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        let started = Instant::now();
        let result = answered_within(
            upstream.send(
                pick.server.addr,
                &pick.server.metrics.connections,
                protocol,
                tls,
                up_request,
            ),
            response_timeout,
            witness.as_ref(),
        )
        .await;
        let latency = started.elapsed();
        let result = match result {
            Some(Ok(response)) => Ok(response),
            Some(Err(error)) => {
                if let UpstreamError::Tls(failure) = &error {
                    backend_tls_failed(shared, &pool.config.name, pick.server.addr, failure);
                }
                Err(attempt_fault(&error, witness.as_ref()))
            }
            None => Err(Fault::UpstreamTimeout),
        };
        let attempted =
            Attempted::from(result.as_ref().map(|r| r.status().as_u16()).map_err(|f| *f));
        if let Some(wait) = attempts.settle(&pick, record, attempted, latency, || shared.now_ms()) {
            // The failed attempt lets go of its server before the back-off.
            drop((in_flight, result));
            tokio::time::sleep(wait).await;
            continue;
        }
        return Ok(respond(
            result?,
            Reply {
                guards: Guards {
                    in_flight,
                    _pass: pass,
                },
                pool,
                clock: (now, started),
                pick: &pick,
                via,
                request_id: &request_id,
                edits: edits.1,
                on_client_upgrade,
            },
            shared,
        ));
    }
}

/// Logs and counts a failed TLS handshake with a server (its attempt
/// counts as a connect failure).
fn backend_tls_failed(shared: &Shared, pool: &str, server: SocketAddr, failure: &TlsFailure) {
    warn!(
        pool,
        %server,
        reason = %failure,
        "TLS handshake with the backend failed; request not sent to it"
    );
    shared
        .metrics
        .backend_tls_error(pool, &server.to_string(), failure.reason);
}

/// Runs `send` until the response head comes, `timeout` at most after the
/// request went out: from the end of the client's body (`witness`) when
/// it has one, as the fast path times it. While the body is still coming
/// the time is the client's, bounded by the body's own pause timeout,
/// and the backend is not blamed for not having answered yet.
async fn answered_within<F: Future>(
    send: F,
    timeout: Duration,
    witness: Option<&BodyWitness>,
) -> Option<F::Output> {
    let timer = tokio::time::sleep(timeout);
    tokio::pin!(send, timer);
    loop {
        tokio::select! {
            out = &mut send => return Some(out),
            () = &mut timer => {}
        }
        let now = tokio::time::Instant::now();
        match witness {
            Some(witness) if witness.streaming() => timer.as_mut().reset(now + timeout),
            Some(witness) => match witness.ended() {
                Some(ended) if ended + timeout > now => timer.as_mut().reset(ended + timeout),
                _ => return None,
            },
            None => return None,
        }
    }
}

/// The fault of an attempt that got no response: the client's when its
/// request body stopped (`witness`), not the server's.
fn attempt_fault(error: &UpstreamError, witness: Option<&BodyWitness>) -> Fault {
    if let UpstreamError::Failed(_) = error
        && let Some(stopped) = witness.and_then(BodyWitness::stopped)
    {
        debug!(?stopped, "request body failed: {error}");
        return match stopped {
            Stopped::TooSlow => Fault::ClientTooSlow,
            Stopped::TooLarge => Fault::PayloadTooLarge,
            Stopped::Failed => Fault::BAD_BODY,
        };
    }
    debug!("upstream error: {error:#}");
    match error {
        UpstreamError::Connect(_) | UpstreamError::Tls(_) => Fault::ConnectFailed,
        UpstreamError::Failed(_) => Fault::UpstreamFailed,
    }
}

/// The target of a request to an HTTP/2 backend: an absolute URI whose
/// authority (`:authority`) takes the place of the `Host` field, its
/// scheme (`:scheme`) `https` over TLS.
fn h2_target(
    headers: &mut HeaderMap,
    path_and_query: PathAndQuery,
    tls: bool,
) -> Result<Uri, Fault> {
    let bad = || Fault::BadRequest("Host is not a valid authority");
    let host = headers.remove(header::HOST).ok_or_else(bad)?;
    let authority = Authority::try_from(host.as_bytes()).map_err(|_| bad())?;
    Uri::builder()
        .scheme(if tls { Scheme::HTTPS } else { Scheme::HTTP })
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| bad())
}

/// What a response body keeps alive until it is sent.
struct Guards {
    in_flight: InFlight,
    _pass: GatePass,
}

/// The backend's response body, holding the request's guards until it has
/// been sent (or dropped). A stall mid-body aborts the response (the
/// client sees its connection or stream reset) and counts as a failure of
/// the server.
pub(crate) struct Tracked {
    inner: UpstreamBody,
    guards: Guards,
    /// The pool of the server, charged with a stall.
    pool: Arc<PoolState>,
    /// The node's clock (ms) and the instant, read together when the
    /// attempt began: the node's clock at a stall is read from them.
    clock: (u64, Instant),
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BackendBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BackendBodyError>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Err(BackendBodyError::TooSlow(pause))) = &frame {
            let server = this.guards.in_flight.server();
            warn!(
                pool = %this.pool.config.name,
                server = %server.addr,
                ?pause,
                "the backend stalled mid-body: response aborted, connection closed"
            );
            let (ms, at) = this.clock;
            let now_ms = ms + at.elapsed().as_millis() as u64;
            this.pool
                .record_outcome(server, Outcome::Aborted, Duration::ZERO, now_ms);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the answer to a proxied request is built with, besides the
/// backend's response.
struct Reply<'a> {
    /// Kept alive by the response body.
    guards: Guards,
    /// The pool of the server that answered.
    pool: &'a Arc<PoolState>,
    /// The node's clock (ms) and the instant when the attempt began.
    clock: (u64, Instant),
    /// The server that answered, and whether to set its sticky cookie.
    pick: &'a Pick,
    /// The node's `Via` value, if the tier adds one.
    via: Option<&'a HeaderValue>,
    request_id: &'a HeaderValue,
    /// The route's response header rules.
    edits: &'a HeaderEdits,
    /// The client's side of an upgrade it asked for.
    on_client_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// The client's answer: the backend's `response` with its headers
/// rewritten and its body tracked, or a WebSocket tunnel started.
fn respond(
    response: Response<UpstreamBody>,
    reply: Reply<'_>,
    shared: &Shared,
) -> Response<DownBody> {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let (mut parts, body) = response.into_parts();
    forward::response_headers(&mut parts.headers, switching, reply.via, reply.request_id);
    reply.edits.apply(&mut parts.headers);
    if reply.pick.set_cookie
        && let Some(config) = &reply.pool.config.sticky
        && let Ok(value) =
            HeaderValue::from_str(&sticky::set_cookie(config, &reply.pick.server.token))
    {
        parts.headers.append(header::SET_COOKIE, value);
    }
    if switching {
        let Some(on_client) = reply.on_client_upgrade else {
            // A 101 is HTTP/1.1's, never an answer to a gRPC call.
            return fault_response(Fault::UnexpectedUpgrade, false);
        };
        let force = shared.drain.forced().clone();
        shared
            .drain
            .tunnels()
            .spawn(tunnel(on_client, body.upgrade(), reply.guards, force));
        return Response::from_parts(parts, Either::Right(Full::default()));
    }
    Response::from_parts(
        parts,
        Either::Left(Tracked {
            inner: body,
            guards: reply.guards,
            pool: reply.pool.clone(),
            clock: reply.clock,
        }),
    )
}

/// Relays an upgraded (WebSocket) connection both ways until either side
/// closes or the node gives up draining.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    server: impl Future<Output = Option<hyper::upgrade::Upgraded>>,
    guards: Guards,
    force: CancellationToken,
) {
    let (client, server) = tokio::join!(client, server);
    let (Ok(client), Some(server)) = (client, server) else {
        debug!("an upgrade did not complete");
        return;
    };
    let mut client = TokioIo::new(client);
    let mut server = TokioIo::new(server);
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut server) => {
            if let Err(error) = result {
                debug!("tunnel closed: {error}");
            }
        }
        () = force.cancelled() => {}
    }
    drop(guards);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_answers_carry_their_headers() {
        let r = fault_response(Fault::RateLimited(Duration::from_millis(1500)), false);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = fault_response(Fault::ListenerFull, false);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            fault_response(Fault::Framing, false).headers()[header::CONNECTION],
            "close"
        );
        assert_eq!(
            fault_response(Fault::ConnectFailed, false).status(),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn only_grpc_calls_proper_need_an_http2_pool() {
        let call = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            is_grpc_call(&headers)
        };
        assert!(call("application/grpc"));
        assert!(call("application/grpc+proto"));
        assert!(call("application/grpc;charset=utf-8"));
        assert!(!call("application/grpc-web"), "gRPC-Web goes over HTTP/1.1");
        assert!(!call("application/grpc-web+proto"));
        assert!(!call("application/json"));
        assert!(!is_grpc_call(&HeaderMap::new()));
    }

    #[test]
    fn grpc_calls_get_trailers_only_fault_answers() {
        let mut headers = HeaderMap::new();
        assert!(!is_grpc(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&headers));
        let r = fault_response(Fault::UpstreamTimeout, true);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "4");
        assert_eq!(
            r.headers()["grpc-message"],
            "the backend server did not answer in time"
        );
        assert!(r.body().is_end_stream(), "trailers-only: no body");
    }
}
