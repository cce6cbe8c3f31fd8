//! Why a request was answered by the proxy itself: each [`Fault`] knows
//! where it came from ([`Source`]), whether it may be retried on another
//! server ([`Retry`]), and the status, reason and headers of its answer.
//! Pure, so every HTTP path answers a fault alike.

use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderName, HeaderValue};

/// Where a fault came from: it decides the blame (a backend's faults count
/// against it), the log's `fault_source` and whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client (downstream): its request, its pace, its rate.
    Client,
    /// The proxy itself (internal): limits, no server to send to.
    Proxy,
    /// A backend server (upstream).
    Backend,
}

impl Source {
    /// The label in logs: `downstream`, `internal` or `upstream`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Client => "downstream",
            Source::Proxy => "internal",
            Source::Backend => "upstream",
        }
    }
}

/// Whether a failed attempt may be retried on another server (retry
/// limits and the budget aside; see [`crate::l7::rules::retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never: retrying cannot help, or the request is not the server's.
    Never,
    /// Always: nothing reached the server.
    Always,
    /// Only an idempotent request: the server may have acted on it.
    IfIdempotent,
}

/// Why a request was answered by the proxy itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Both `Content-Length` and `Transfer-Encoding`.
    Framing,
    /// A malformed request.
    BadRequest(&'static str),
    /// No route matched.
    NoRoute,
    /// The client paused too long mid-body.
    ClientTooSlow,
    /// The request body is over the route's `max_body`.
    PayloadTooLarge,
    /// Over the client's rate; it may come back after this long.
    RateLimited(Duration),
    /// The listener is at its concurrency limit.
    ListenerFull,
    /// Every usable server is at its request limit.
    ServerFull,
    /// No server is available and the pool does not fail open.
    NoServer,
    /// No connection to the chosen server.
    ConnectFailed,
    /// The server failed after the request was sent.
    UpstreamFailed,
    /// No response headers in time.
    UpstreamTimeout,
    /// The server switched protocols when the client had not asked.
    UnexpectedUpgrade,
    /// A gRPC call routed to an HTTP/1.1 pool: gRPC needs HTTP/2 to the
    /// server (its status comes in trailers), so it is not sent.
    GrpcToHttp1,
}

impl Fault {
    /// The client's request body failed: not framed as it said.
    pub const BAD_BODY: Fault = Fault::BadRequest("the request body failed");

    /// The status of the proxy's answer.
    pub fn status(self) -> StatusCode {
        match self {
            Fault::Framing | Fault::BadRequest(_) => StatusCode::BAD_REQUEST,
            Fault::NoRoute => StatusCode::NOT_FOUND,
            Fault::ClientTooSlow => StatusCode::REQUEST_TIMEOUT,
            Fault::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Fault::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Fault::ListenerFull | Fault::ServerFull | Fault::NoServer => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Fault::ConnectFailed
            | Fault::UpstreamFailed
            | Fault::UnexpectedUpgrade
            | Fault::GrpcToHttp1 => StatusCode::BAD_GATEWAY,
            Fault::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Where the fault came from.
    pub fn source(self) -> Source {
        match self {
            Fault::Framing
            | Fault::BadRequest(_)
            | Fault::NoRoute
            | Fault::ClientTooSlow
            | Fault::PayloadTooLarge
            | Fault::RateLimited(_) => Source::Client,
            Fault::ListenerFull | Fault::ServerFull | Fault::NoServer | Fault::GrpcToHttp1 => {
                Source::Proxy
            }
            Fault::ConnectFailed
            | Fault::UpstreamFailed
            | Fault::UpstreamTimeout
            | Fault::UnexpectedUpgrade => Source::Backend,
        }
    }

    /// Whether the attempt that failed so may be retried on another server.
    pub fn retry(self) -> Retry {
        match self {
            Fault::ConnectFailed => Retry::Always,
            Fault::UpstreamFailed | Fault::UpstreamTimeout => Retry::IfIdempotent,
            _ => Retry::Never,
        }
    }

    /// A short name for logs and the response body.
    pub fn reason(self) -> &'static str {
        match self {
            Fault::Framing => "conflicting Content-Length and Transfer-Encoding",
            Fault::BadRequest(why) => why,
            Fault::NoRoute => "no route for this host and path",
            Fault::ClientTooSlow => "the request body stopped arriving",
            Fault::PayloadTooLarge => "the request body is over this route's limit",
            Fault::RateLimited(_) => "rate limit exceeded",
            Fault::ListenerFull => "too many requests in flight",
            Fault::ServerFull => "every server is at its request limit",
            Fault::NoServer => "no healthy server",
            Fault::ConnectFailed => "cannot connect to a backend server",
            Fault::UpstreamFailed => "the backend server failed",
            Fault::UpstreamTimeout => "the backend server did not answer in time",
            Fault::UnexpectedUpgrade => "the backend switched protocols unasked",
            Fault::GrpcToHttp1 => {
                "gRPC needs HTTP/2 to the server: give this route's pool protocol h2c (or h2 with tls)"
            }
        }
    }

    /// The `Retry-After` seconds of the answer, for faults that pass.
    pub fn retry_after(self) -> Option<u64> {
        match self {
            Fault::RateLimited(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Some(secs.max(1))
            }
            Fault::ListenerFull | Fault::ServerFull => Some(1),
            _ => None,
        }
    }

    /// Whether the answer closes the connection: after a framing conflict
    /// the rest of the bytes cannot be trusted to be the next request, and
    /// a body refused as too large is left unread; after a body that
    /// stopped arriving or broke its framing they are not all there (both
    /// paths then say `Connection: close`, as HAProxy does).
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Fault::Framing | Fault::PayloadTooLarge | Fault::ClientTooSlow
        ) || self == Fault::BAD_BODY
    }

    /// The body of the answer: the reason and a newline.
    pub fn body(self) -> String {
        let mut body = String::with_capacity(64);
        body.push_str(self.reason());
        body.push('\n');
        body
    }

    /// The fields of the answer besides its framing and `Date`, in order.
    pub fn fields(self, mut field: impl FnMut(HeaderName, HeaderValue)) {
        field(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        field(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            field(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.closes_connection() {
            field(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }

    /// The `grpc-status` of the answer to a gRPC request, which the proxy
    /// gives as a trailers-only response (HTTP 200) so that a gRPC client
    /// reads the proxy's code and reason rather than guessing from a bare
    /// HTTP status. gRPC's own HTTP-to-gRPC table
    /// (`doc/http-grpc-status-mapping.md`) applied to [`Fault::status`] —
    /// 400 INTERNAL, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, the
    /// rest UNKNOWN — except that a backend that did not answer in time is
    /// DEADLINE_EXCEEDED, as Envoy answers since envoyproxy/envoy#44479:
    /// UNAVAILABLE would tell the client to retry a call whose time has run
    /// out; and a call routed to an HTTP/1.1 pool is UNIMPLEMENTED, which no
    /// retry changes. The reason goes in `grpc-message` as it is: every
    /// [`Fault::reason`] is printable ASCII without `%`, which gRPC's
    /// percent-encoding leaves alone.
    pub fn grpc_status(self) -> u8 {
        const UNKNOWN: u8 = 2;
        const DEADLINE_EXCEEDED: u8 = 4;
        const UNIMPLEMENTED: u8 = 12;
        const INTERNAL: u8 = 13;
        const UNAVAILABLE: u8 = 14;
        match self {
            Fault::UpstreamTimeout => return DEADLINE_EXCEEDED,
            Fault::GrpcToHttp1 => return UNIMPLEMENTED,
            _ => {}
        }
        match self.status() {
            StatusCode::BAD_REQUEST => INTERNAL,
            StatusCode::NOT_FOUND => UNIMPLEMENTED,
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => UNAVAILABLE,
            _ => UNKNOWN,
        }
    }

    /// The `reason` label of the shed-load metric, for faults that shed.
    pub fn shed(self) -> Option<&'static str> {
        match self {
            Fault::RateLimited(_) => Some("rate_limit"),
            Fault::ListenerFull => Some("listener_limit"),
            Fault::ServerFull => Some("server_limit"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_say_where_they_came_from() {
        assert_eq!(Fault::ConnectFailed.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Fault::ConnectFailed.source().label(), "upstream");
        assert_eq!(Fault::ServerFull.source().label(), "internal");
        assert_eq!(Fault::NoRoute.source().label(), "downstream");
        let rate = Fault::RateLimited(Duration::from_millis(1500));
        assert_eq!(rate.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(rate.retry_after(), Some(2));
        assert_eq!(Fault::ListenerFull.retry_after(), Some(1));
        assert!(Fault::Framing.closes_connection());
        assert!(Fault::ClientTooSlow.closes_connection());
        assert!(Fault::BAD_BODY.closes_connection());
    }

    #[test]
    fn grpc_requests_get_grpc_statuses() {
        let cases = [
            (Fault::ConnectFailed, 14),
            (Fault::UpstreamFailed, 14),
            (Fault::NoServer, 14),
            (Fault::ServerFull, 14),
            (Fault::RateLimited(Duration::from_secs(1)), 14),
            (Fault::UpstreamTimeout, 4),
            (Fault::NoRoute, 12),
            (Fault::BadRequest("x"), 13),
            (Fault::ClientTooSlow, 2),
        ];
        for (fault, code) in cases {
            assert_eq!(fault.grpc_status(), code, "{fault:?}");
        }
    }

    #[test]
    fn only_backend_faults_may_be_retried() {
        let cases = [
            (Fault::ConnectFailed, Source::Backend, Retry::Always),
            (Fault::UpstreamFailed, Source::Backend, Retry::IfIdempotent),
            (Fault::UpstreamTimeout, Source::Backend, Retry::IfIdempotent),
            (Fault::UnexpectedUpgrade, Source::Backend, Retry::Never),
            (Fault::ClientTooSlow, Source::Client, Retry::Never),
            (Fault::PayloadTooLarge, Source::Client, Retry::Never),
            (Fault::BadRequest("x"), Source::Client, Retry::Never),
            (Fault::NoServer, Source::Proxy, Retry::Never),
            (Fault::ServerFull, Source::Proxy, Retry::Never),
        ];
        for (fault, source, retry) in cases {
            assert_eq!(
                (fault.source(), fault.retry()),
                (source, retry),
                "{fault:?}"
            );
        }
    }
}
