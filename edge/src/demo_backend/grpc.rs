//! The demo backend's gRPC side, over HTTP/2 (h2c or TLS with ALPN `h2`):
//! `grpc.health.v1.Health/Check` answered from the health switch, and any
//! other call answered with the backend's usual description as its one
//! message, the outcome in trailers.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::WithTrailers;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::l7::node::grpc_health::{frame, get_varint, unframe};

/// The health-checking method of `grpc.health.v1`.
pub(super) const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// The service the demo backend serves and reports on (besides `""`, the
/// server as a whole).
pub const SERVICE: &str = "demo.Echo";

/// Largest health-check request read.
const MAX_REQUEST: usize = 4096;

/// The trailers of a gRPC answer, ready at once.
type Trailers = std::future::Ready<Option<Result<HeaderMap, Infallible>>>;

/// A gRPC answer's body: the messages, then the trailers.
pub(super) type GrpcBody = WithTrailers<Full<Bytes>, Trailers>;

/// gRPC status codes used here.
const OK: u8 = 0;
const UNKNOWN: u8 = 2;
const INVALID_ARGUMENT: u8 = 3;
const NOT_FOUND: u8 = 5;

/// `HealthCheckResponse.ServingStatus` values.
const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;

/// An HTTP/2 200 carrying `message` (if any) length-prefixed, and `status`
/// (with `detail` as `grpc-message`) in trailers; `parts` keeps the other
/// headers (`X-Backend`).
fn answer(
    mut parts: http::response::Parts,
    message: Option<&[u8]>,
    status: u8,
    detail: Option<HeaderValue>,
) -> Response<GrpcBody> {
    let framed = message.map_or_else(Bytes::new, |m| frame(m).freeze());
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(u16::from(status)));
    if let Some(detail) = detail {
        trailers.insert("grpc-message", detail);
    }
    parts.status = StatusCode::OK;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let body = Full::new(framed).with_trailers(std::future::ready(Some(Ok(trailers))));
    Response::from_parts(parts, body)
}

/// `response` the way gRPC answers: status 200, the body as one
/// length-prefixed message, the outcome in trailers (`grpc-status` 0, or 2
/// with the HTTP status in `grpc-message`).
pub(super) async fn framed(response: Response<Full<Bytes>>) -> Response<GrpcBody> {
    let (parts, body) = response.into_parts();
    let message = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(never) => match never {},
    };
    if parts.status.is_success() {
        answer(parts, Some(&message), OK, None)
    } else {
        let detail = HeaderValue::from(parts.status.as_u16());
        answer(parts, Some(&message), UNKNOWN, Some(detail))
    }
}

/// Answers a `grpc.health.v1.Health/Check` call: `SERVING` while
/// `healthy` (else `NOT_SERVING`) for `""` and [`SERVICE`], `NOT_FOUND`
/// for any other service; `parts` gives the answer's other headers.
pub(super) async fn health_check(
    body: Incoming,
    healthy: bool,
    parts: http::response::Parts,
) -> Response<GrpcBody> {
    let request = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            let detail = HeaderValue::from_str(&format!("request not read: {e}"))
                .unwrap_or(HeaderValue::from_static("request not read"));
            return answer(parts, None, INVALID_ARGUMENT, Some(detail));
        }
    };
    match requested_service(request) {
        None => answer(
            parts,
            None,
            INVALID_ARGUMENT,
            Some(HeaderValue::from_static(
                "not one uncompressed HealthCheckRequest",
            )),
        ),
        Some(service) if service.is_empty() || service == SERVICE => {
            let status = if healthy { SERVING } else { NOT_SERVING };
            // HealthCheckResponse { status = 1 (varint) }.
            answer(parts, Some(&[0x08, status]), OK, None)
        }
        Some(_) => answer(
            parts,
            None,
            NOT_FOUND,
            Some(HeaderValue::from_static("unknown service")),
        ),
    }
}

/// The `service` field of the one `HealthCheckRequest` in a request body
/// (empty when absent), or `None` when the body is not one uncompressed
/// length-prefixed message of well-formed protobuf.
fn requested_service(body: Bytes) -> Option<Bytes> {
    let mut message = unframe(body).ok()?;
    let mut service = Bytes::new();
    while message.has_remaining() {
        let key = get_varint(&mut message)?;
        let len = match key & 7 {
            0 => {
                get_varint(&mut message)?;
                0
            }
            1 => 8,
            2 => usize::try_from(get_varint(&mut message)?).ok()?,
            5 => 4,
            _ => return None,
        };
        if len > message.len() {
            return None;
        }
        let value = message.split_to(len);
        // Field 1, length-delimited.
        if key == (1 << 3 | 2) {
            service = value;
        }
    }
    Some(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `requested_service` of a body holding one message, `message`.
    fn service_in(message: &[u8]) -> Option<Bytes> {
        requested_service(frame(message).freeze())
    }

    #[test]
    fn the_service_asked_about_is_read() {
        assert_eq!(service_in(b""), Some(Bytes::new()));
        assert_eq!(
            service_in(b"\x0a\x09demo.Echo").as_deref(),
            Some(&b"demo.Echo"[..])
        );
        // Unknown fields of every wire type are skipped.
        assert_eq!(
            service_in(
                b"\x10\x96\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x25\x01\x02\x03\x04\x0a\x01x"
            )
            .as_deref(),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn malformed_requests_are_refused_not_read_past() {
        for body in [
            &b""[..],
            b"\x00\x00\x00",
            b"\x01\x00\x00\x00\x00",           // compressed
            b"\x00\x00\x00\x00\x05\x0a\x09ab", // length past the frame
        ] {
            let body = Bytes::copy_from_slice(body);
            assert_eq!(requested_service(body.clone()), None, "{body:?}");
        }
        for message in [
            &b"\x0a\x09demo"[..], // string past the message
            b"\x0a",              // no length
            b"\x0b",              // group wire type
            &[0xff; 11],          // varint too long
        ] {
            assert_eq!(service_in(message), None, "{message:?}");
        }
    }
}
