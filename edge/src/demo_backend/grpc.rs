//! The demo backend's gRPC side, over HTTP/2 (h2c or TLS with ALPN `h2`):
//! `grpc.health.v1.Health/Check` answered from the health switch, and any
//! other call answered with the backend's usual description as its one
//! message, the outcome in trailers.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::WithTrailers;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

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
    let mut framed = Vec::new();
    if let Some(message) = message {
        framed.reserve(5 + message.len());
        framed.push(0);
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(message);
    }
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
    let body = Full::new(Bytes::from(framed)).with_trailers(std::future::ready(Some(Ok(trailers))));
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
    match requested_service(&request) {
        None => answer(
            parts,
            None,
            INVALID_ARGUMENT,
            Some(HeaderValue::from_static(
                "not one uncompressed HealthCheckRequest",
            )),
        ),
        Some(service) if service.is_empty() || service == SERVICE.as_bytes() => {
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
fn requested_service(body: &[u8]) -> Option<&[u8]> {
    let (&[0], rest) = body.split_first_chunk::<1>()? else {
        return None;
    };
    let (len, mut message) = rest.split_first_chunk::<4>()?;
    if message.len() != u32::from_be_bytes(*len) as usize {
        return None;
    }
    let mut service: &[u8] = &[];
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match key & 7 {
            0 => {
                varint(&mut message)?;
            }
            1 => message = message.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut message)?).ok()?;
                let value = message.get(..len)?;
                message = &message[len..];
                if key >> 3 == 1 {
                    service = value;
                }
            }
            5 => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(service)
}

/// Reads one protobuf varint off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *bytes = &bytes[index + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body holding one message with `message` as its bytes.
    fn frame(message: &[u8]) -> Vec<u8> {
        let mut body = vec![0];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        body
    }

    #[test]
    fn the_service_asked_about_is_read() {
        assert_eq!(requested_service(&frame(b"")), Some(&b""[..]));
        assert_eq!(
            requested_service(&frame(b"\x0a\x09demo.Echo")),
            Some(&b"demo.Echo"[..])
        );
        // Unknown fields of every wire type are skipped.
        assert_eq!(
            requested_service(&frame(
                b"\x10\x96\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x25\x01\x02\x03\x04\x0a\x01x"
            )),
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
            &frame(b"\x0a\x09demo"),           // string past the message
            &frame(b"\x0a"),                   // no length
            &frame(b"\x0b"),                   // group wire type
            &frame(&[0xff; 11]),               // varint too long
        ] {
            assert_eq!(requested_service(body), None, "{body:?}");
        }
    }
}
