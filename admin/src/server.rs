//! The hyper adapter: accepts connections on a bound listener, turns hyper
//! requests into [`Request`]s for the [`Router`], and shuts down gracefully.
//! The only module that names hyper types.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::auth::{MIN_TOKEN_LEN, TOKEN_ENV, Token};
use crate::request::{Request, decode_component, parse_query};
use crate::response::Response;
use crate::router::{Access, Match, Router};
use crate::{AdminError, StatusCode};

/// How an admin server runs.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The bearer token of mutating routes. Required when the listener is
    /// not on a loopback address. Without one (loopback only), mutating
    /// routes are open to local processes.
    pub token: Option<Token>,
    /// Largest request body read; larger ones get 413 (default 64 KiB).
    pub max_body_bytes: usize,
    /// How long requests in flight may take to finish after shutdown is
    /// requested before their connections are closed (default 5 s).
    pub shutdown_grace: Duration,
    /// Time allowed to send a request's headers (default 10 s), so idle or
    /// slow clients cannot hold connections forever.
    pub header_read_timeout: Duration,
    /// Most connections served at once; further ones wait in the listen
    /// backlog (default 256).
    pub max_connections: usize,
    /// What the start-up error says about setting a token. Defaults to the
    /// [`TOKEN_ENV`] variable; a daemon with another source says so.
    pub token_help: Cow<'static, str>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token: None,
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            token_help: Cow::Owned(format!(
                "set {TOKEN_ENV} to a secret of at least {MIN_TOKEN_LEN} characters in the \
                 daemon's environment (e.g. {TOKEN_ENV}=$(openssl rand -hex 32))"
            )),
        }
    }
}

/// An admin server ready to run: the listener, the routes and the config,
/// checked.
pub struct AdminServer {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_grace: Duration,
    header_read_timeout: Duration,
    max_connections: usize,
}

struct Shared {
    router: Router,
    token: Option<Token>,
    max_body_bytes: usize,
}

impl AdminServer {
    /// Checks the configuration against the listener.
    ///
    /// Refuses ([`AdminError::TokenRequired`]) a listener that is not on a
    /// loopback address when no token is configured: anyone who can reach it
    /// could otherwise mutate.
    pub fn new(
        listener: TcpListener,
        router: Router,
        config: AdminConfig,
    ) -> Result<Self, AdminError> {
        let addr = listener.local_addr().map_err(AdminError::LocalAddr)?;
        if config.token.is_none() && !addr.ip().is_loopback() {
            return Err(AdminError::TokenRequired {
                addr,
                help: config.token_help.into_owned(),
            });
        }
        Ok(Self {
            listener,
            addr,
            shared: Arc::new(Shared {
                router,
                token: config.token,
                max_body_bytes: config.max_body_bytes,
            }),
            shutdown_grace: config.shutdown_grace,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections.max(1),
        })
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets
    /// requests in flight finish for up to the grace period, closes the
    /// remaining connections (logging how many) and returns.
    ///
    /// Accept errors (out of file descriptors, a connection reset before it
    /// was accepted) are logged and retried after a short pause; they never
    /// stop the server.
    pub async fn run(self, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        info!(addr = %self.addr, protected = self.shared.token.is_some(), "admin endpoint listening");
        loop {
            while connections.try_join_next().is_some() {}
            if connections.len() >= self.max_connections {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = connections.join_next() => continue,
                }
            }
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!(addr = %self.addr, "admin endpoint: accept failed: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let shared = Arc::clone(&self.shared);
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(shared.handle(req, peer).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                if let Err(e) = connection.await {
                    debug!(%peer, "admin connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => debug!(addr = %self.addr, "admin endpoint drained"),
            () = tokio::time::sleep(self.shutdown_grace) => {
                while connections.try_join_next().is_some() {}
                warn!(
                    addr = %self.addr,
                    open = connections.len(),
                    "admin endpoint: connections still open after the {:?} grace period; closing them",
                    self.shutdown_grace
                );
            }
        }
        connections.shutdown().await;
        info!(addr = %self.addr, "admin endpoint stopped");
    }
}

/// Checks the config against `listener` and serves until `shutdown`; see
/// [`AdminServer::new`] and [`AdminServer::run`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: AdminConfig,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    AdminServer::new(listener, router, config)?
        .run(shutdown)
        .await;
    Ok(())
}

impl Shared {
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> hyper::Response<Full<Bytes>> {
        let method = req.method().clone();
        let response = self.respond(req, peer).await;
        debug!(%peer, %method, status = response.status().as_u16(), "admin request");
        into_hyper(response)
    }

    async fn respond(&self, req: hyper::Request<Incoming>, peer: SocketAddr) -> Response {
        let (parts, body) = req.into_parts();
        let raw_path = parts.uri.path();
        let (route, raw_params) = match self.router.find(&parts.method, raw_path) {
            Match::Found { route, params } => (route, params),
            Match::MethodNotAllowed { allowed } => {
                return Response::method_not_allowed(parts.method.as_str(), raw_path, &allowed);
            }
            Match::NotFound => {
                return Response::error(
                    StatusCode::NOT_FOUND,
                    &format!("no route for {} {raw_path}", parts.method),
                );
            }
        };
        // Authorize before reading the body: a stranger cannot make us read.
        if route.access == Access::Mutate
            && let Some(token) = &self.token
            && !token.verify(parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
        {
            // Logged: a refused change is what an operator audits.
            warn!(%peer, method = %parts.method, path = raw_path, "admin request refused: missing or wrong bearer token");
            return Response::unauthorized(
                "this route changes state: send `Authorization: Bearer <token>` with the admin token",
            );
        }
        let too_large = || {
            Response::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is over {} bytes", self.max_body_bytes),
            )
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body_bytes as u64) {
            return too_large();
        }
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => {
                return Response::error(
                    StatusCode::BAD_REQUEST,
                    &format!("the request body could not be read: {e}"),
                );
            }
        };
        let mut params = Vec::with_capacity(raw_params.len());
        for (name, raw) in raw_params {
            let Some(value) = decode_component(raw, false) else {
                return Response::error(
                    StatusCode::BAD_REQUEST,
                    &format!("path parameter {name} ({raw:?}) is not UTF-8 once decoded"),
                );
            };
            params.push((name, value));
        }
        let query = match parse_query(parts.uri.query().unwrap_or("")) {
            Ok(query) => query,
            Err(message) => return Response::error(StatusCode::BAD_REQUEST, &message),
        };
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let request = Request {
            method: parts.method.clone(),
            path: decode_component(raw_path, false).unwrap_or_else(|| raw_path.to_owned()),
            params,
            query,
            content_type: header(CONTENT_TYPE),
            accept: header(ACCEPT),
            headers: parts
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body,
            peer,
        };
        route.handler.call(request).await
    }
}

fn into_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(response.status())
        .header(CONTENT_TYPE, response.content_type());
    if let Some(allow) = response.allow() {
        builder = builder.header(ALLOW, allow);
    }
    if response.bearer_challenge() {
        builder = builder.header(WWW_AUTHENTICATE, "Bearer realm=\"gtm-admin\"");
    }
    for (name, value) in response.headers() {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(response.body().clone()))
        .unwrap_or_else(|e| {
            // Only a content type with characters a header cannot carry gets
            // here: a handler bug, answered as such.
            let mut fallback = hyper::Response::new(Full::new(Bytes::from(format!(
                "{{\"error\":\"internal: invalid response header: {e}\"}}\n"
            ))));
            *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
