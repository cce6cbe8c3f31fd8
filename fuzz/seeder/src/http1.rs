//! Inputs for `http1_codec`: the requests and backend answers of the fast
//! path's differential test (edge/tests/it/l7/fast_path.rs) and of its
//! codec tests (edge/src/l7/path/fast/codec.rs), each behind the byte that
//! picks the parser (0 requests, 1 responses, 2 responses to HEAD, 3
//! chunked bodies, split at the next byte).

use crate::Seed;

const REQUESTS: &[(&str, &[u8])] = &[
    ("get", b"GET /cl HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
    ("get-close", b"GET /cl HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"),
    ("head", b"HEAD /cl HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"),
    ("post", b"POST /echo HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 11\r\n\r\nhello world"),
    ("delete", b"DELETE /thing HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
    ("hop-by-hop", b"GET /hop HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Connection: close\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nVia: 1.0 earlier\r\nX-Request-ID: client-id\r\n\r\n"),
    ("chunked", b"POST /echo HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("cl-and-te", b"POST /echo HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("double-cl", b"POST /echo HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    ("no-host", b"GET /cl HTTP/1.1\r\n\r\n"),
    ("http10", b"GET /cl HTTP/1.0\r\nHost: www.example.com\r\n\r\n"),
    ("upgrade", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
    ("expect", b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("empty-value", b"POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nConnection: close\r\nX-E:\r\n\r\nhello"),
];

const RESPONSES: &[(&str, &[u8])] = &[
    ("cl", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
    ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"),
    ("until-close", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the close"),
    ("hints", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("204", b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"),
    ("304", b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 12\r\n\r\n"),
    ("cut", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
    ("503", b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"),
    ("hop", b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nX-Request-ID: from-backend\r\nContent-Length: 0\r\n\r\n"),
    ("http10-keep-alive", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"),
    ("te-gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    ("double-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
];

const CHUNKED: &[(&str, &[u8])] = &[
    ("trailer", b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"),
    ("partial", b"5\r\nhel"),
    ("bad-size", b"zz\r\n"),
    ("bad-end", b"5\r\nhelloXX"),
    ("long-size", b"1234567890123456\r\n"),
];

/// The seeds of `http1_codec`.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (name, bytes) in REQUESTS {
        out.push((format!("request-{name}"), [&[0u8][..], bytes].concat()));
    }
    for (name, bytes) in RESPONSES {
        out.push((format!("response-{name}"), [&[1u8][..], bytes].concat()));
        out.push((format!("head-response-{name}"), [&[2u8][..], bytes].concat()));
    }
    for (name, bytes) in CHUNKED {
        let split = (bytes.len() / 2) as u8;
        out.push((format!("chunked-{name}"), [&[3u8, split][..], bytes].concat()));
    }
    out
}
