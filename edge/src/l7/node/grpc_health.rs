//! The `grpc` health check of a pool's servers: one
//! `grpc.health.v1.Health/Check` call over a new HTTP/2 connection made by
//! the pool's own connector (over TLS with the pool's TLS client, for an
//! `h2` pool), up only when the answer is SERVING. It runs
//! as a [`probe::CustomCheck`], so the prober's schedule, timeout and
//! rise/fall apply as to every other kind.
//!
//! The two messages have one field each, so they are encoded and decoded
//! here by hand (protobuf wire format) rather than through generated code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use probe::CustomCheck;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::l7::shared::backend_tls::PoolTls;
use crate::l7::shared::connect::connect_tcp;

/// The method every gRPC health server answers.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Most bytes of an answer read: a `HealthCheckResponse` is 2 bytes.
const MAX_ANSWER_BYTES: usize = 4096;

/// `HealthCheckResponse.ServingStatus` SERVING.
const SERVING: u64 = 1;

/// The check of the server at `addr`, asking about `service` (`None`: the
/// server as a whole), connecting (and for a TLS pool, `tls`, shaking
/// hands) within `connect_timeout`.
pub fn check(
    addr: SocketAddr,
    service: Option<&str>,
    connect_timeout: Duration,
    tls: Option<Arc<PoolTls>>,
) -> CustomCheck {
    let service = service.unwrap_or_default().to_owned();
    let target = if service.is_empty() {
        format!("grpc {addr}")
    } else {
        format!("grpc {addr} {service}")
    };
    let request = Bytes::from(frame(&encode_request(&service)));
    CustomCheck::new(
        target,
        Arc::new(move || Box::pin(attempt(addr, request.clone(), connect_timeout, tls.clone()))),
    )
}

/// One call: `Ok("SERVING")`, or why the server is not up.
async fn attempt(
    addr: SocketAddr,
    message: Bytes,
    connect_timeout: Duration,
    tls: Option<Arc<PoolTls>>,
) -> Result<String, String> {
    let stream = connect_tcp(addr, connect_timeout)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    match tls {
        None => call(stream, "http", addr, message).await,
        Some(tls) => {
            let stream = tls
                .handshake(stream, addr, connect_timeout)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            call(stream, "https", addr, message).await
        }
    }
}

/// The call over `io`, a connection to `addr` (`scheme` `https` over TLS).
async fn call<IO>(io: IO, scheme: &str, addr: SocketAddr, message: Bytes) -> Result<String, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    let call = async move {
        let request = Request::post(format!("{scheme}://{addr}{CHECK_PATH}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Full::new(message))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let (head, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("answer: {e}"))?;
        let trailers = body.trailers().cloned().unwrap_or_default();
        judge(&head.headers, &trailers, body.to_bytes())
    };
    // The connection is driven beside the call and closed when it ends.
    tokio::select! {
        verdict = call => verdict,
        closed = connection => Err(match closed {
            Ok(()) => "the server closed the connection".to_owned(),
            Err(e) => format!("connection failed: {e}"),
        }),
    }
}

/// The verdict on an answer: its `grpc-status` (trailers, or the headers of
/// a trailers-only answer) must be 0 and its one message SERVING.
fn judge(headers: &HeaderMap, trailers: &HeaderMap, body: Bytes) -> Result<String, String> {
    let field = |name: &str| {
        trailers
            .get(name)
            .or_else(|| headers.get(name))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    match field("grpc-status").as_deref() {
        Some("0") => {}
        Some(code) => {
            let message = field("grpc-message").unwrap_or_default();
            return Err(format!("grpc-status {code} {message}")
                .trim_end()
                .to_owned());
        }
        None => return Err("no grpc-status".to_owned()),
    }
    let message = unframe(body)?;
    match decode_status(message)? {
        SERVING => Ok("SERVING".to_owned()),
        other => Err(status_name(other)),
    }
}

fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".to_owned(),
        2 => "NOT_SERVING".to_owned(),
        3 => "SERVICE_UNKNOWN".to_owned(),
        other => format!("serving status {other}"),
    }
}

/// `HealthCheckRequest { string service = 1; }`; the default (empty)
/// service is sent as no field at all, as protobuf does.
fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        out.push(0x0a); // field 1, length-delimited
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// One gRPC message frame: uncompressed flag, 4-byte length, message.
pub(crate) fn frame(message: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out
}

/// The one message of a unary answer.
pub(crate) fn unframe(mut body: Bytes) -> Result<Bytes, String> {
    if body.len() < 5 {
        return Err("no message in the answer".to_owned());
    }
    let compressed = body.get_u8();
    let len = body.get_u32() as usize;
    if compressed != 0 {
        return Err("a compressed answer (not asked for)".to_owned());
    }
    if body.len() != len {
        return Err(format!(
            "a message of {len} bytes framed in {} bytes",
            body.len()
        ));
    }
    Ok(body)
}

/// `HealthCheckResponse.status` (field 1, varint; absent means 0,
/// UNKNOWN). Other fields are skipped, as protobuf readers do.
fn decode_status(mut message: Bytes) -> Result<u64, String> {
    let malformed = || "a malformed HealthCheckResponse".to_owned();
    let mut status = 0;
    while message.has_remaining() {
        let key = get_varint(&mut message).ok_or_else(malformed)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(&mut message).ok_or_else(malformed)?,
            (_, 0) => {
                get_varint(&mut message).ok_or_else(malformed)?;
            }
            (_, 2) => {
                let len = get_varint(&mut message).ok_or_else(malformed)?;
                let len = usize::try_from(len).map_err(|_| malformed())?;
                if len > message.len() {
                    return Err(malformed());
                }
                message.advance(len);
            }
            _ => return Err(malformed()),
        }
    }
    Ok(status)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one protobuf varint off the front of `buf`.
pub(crate) fn get_varint(buf: &mut Bytes) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ok_trailers() -> HeaderMap {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t
    }

    #[test]
    fn requests_are_protobuf_in_a_grpc_frame() {
        assert_eq!(&frame(&encode_request(""))[..], b"\0\0\0\0\0");
        assert_eq!(
            &frame(&encode_request("demo.Echo"))[..],
            b"\0\0\0\0\x0b\x0a\x09demo.Echo"
        );
        let long = "s".repeat(300);
        let encoded = encode_request(&long);
        assert_eq!(&encoded[..3], &[0x0a, 0xac, 0x02]); // 300 as a varint
        assert_eq!(encoded.len(), 303);
    }

    #[test]
    fn only_serving_is_up() {
        let answer = |status: &[u8]| Bytes::from(frame(status));
        let none = HeaderMap::new();
        assert_eq!(
            judge(&none, &ok_trailers(), answer(&[0x08, 1])),
            Ok("SERVING".into())
        );
        assert_eq!(
            judge(&none, &ok_trailers(), answer(&[0x08, 2])),
            Err("NOT_SERVING".into())
        );
        assert_eq!(
            judge(&none, &ok_trailers(), answer(&[0x08, 3])),
            Err("SERVICE_UNKNOWN".into())
        );
        // No field: UNKNOWN. Unknown fields before it are skipped.
        assert_eq!(
            judge(&none, &ok_trailers(), answer(&[])),
            Err("UNKNOWN".into())
        );
        assert_eq!(
            judge(
                &none,
                &ok_trailers(),
                answer(&[0x12, 2, b'h', b'i', 0x08, 1])
            ),
            Ok("SERVING".into())
        );
    }

    #[test]
    fn a_failed_call_is_down_with_its_status() {
        // Trailers-only: the status is in the headers.
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("5"));
        headers.insert("grpc-message", HeaderValue::from_static("unknown service"));
        assert_eq!(
            judge(&headers, &HeaderMap::new(), Bytes::new()),
            Err("grpc-status 5 unknown service".into())
        );
        assert_eq!(
            judge(&HeaderMap::new(), &HeaderMap::new(), Bytes::new()),
            Err("no grpc-status".into())
        );
    }

    #[test]
    fn malformed_answers_are_down_not_a_panic() {
        let t = ok_trailers();
        let none = HeaderMap::new();
        for body in [
            &b""[..],
            b"\0\0\0",
            b"\x01\0\0\0\x02\x08\x01",
            b"\0\0\0\0\x05\x08\x01",
            b"\0\0\0\0\x01\x08",
            b"\0\0\0\0\x02\x12\x09",
            b"\0\0\0\0\x01\x0b",
            b"\0\0\0\0\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(
                judge(&none, &t, Bytes::copy_from_slice(body)).is_err(),
                "{body:?}"
            );
        }
    }
}
