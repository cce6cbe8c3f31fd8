//! The cases of the HTTP/1 fast/slow comparison: client byte streams and
//! a scripted backend's answers. Plain `std`, so that the differential
//! test (`fast_path.rs`), the `http1_equivalence` fuzz target and the fuzz
//! seeder (which writes them as seeds) read the one list.

/// The backend's answer to a request for `path` (`head`: to a HEAD), and
/// whether it then closes the connection.
pub fn script(path: &str, head: bool, body: &[u8]) -> (Vec<u8>, bool) {
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
        // A trailer field's name with bytes no token has.
        "/bad-trailer" => (
            fixed(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Tra\u{a0}er: 1\r\n\r\n",
            ),
            false,
        ),
        // A Content-Length no number, on a response without a body.
        "/bad-length" => (
            fixed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: [5\r\n\r\n"),
            false,
        ),
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

/// The cases where the backend breaks off its response, or sends one
/// that cannot be passed on whole: the client gets no complete answer.
pub const CUT: [&str; 2] = [
    "backend closes mid-response",
    "a response trailer with a malformed name",
];

/// The nodes' timeouts for [`corpus`]: a request body may pause for
/// longer than the backend may take to answer.
pub const TIMEOUTS: &str = "timeouts: { request_body: 2s, response: 1s }\n";

/// The case where the client's chunked body stops: the nodes' body
/// timeout (`timeouts.request_body`) answers it.
pub const STALLED: &str = "chunked request body stalled";

/// The client's bytes of each case; each ends its connection (with
/// `Connection: close`, or by a request the node answers by closing).
pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
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
        (
            // The client's time, not the backend's: 408, not 504 (found
            // by the http1_equivalence fuzz target).
            "a body stalled past the response timeout",
            format!("POST /echo HTTP/1.1\r\n{host}Content-Length: 100\r\n\r\nonly ten b"),
        ),
        (
            "chunked request body with extensions",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n{close}\r\n5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\n\r\n"
            ),
        ),
        (
            "chunked request body, then a pipelined get",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            ) + &get("/cl", close),
        ),
        (
            "chunked request body with a trailer",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
            ) + &get("/cl", close),
        ),
        (
            "chunked request body to no route",
            "POST / HTTP/1.1\r\nHost: nowhere.example.net\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_owned()
                + &get("/cl", close),
        ),
        // Answered without reading a body that cannot be skipped: the
        // connection closes after the answer, which does not say so (hyper
        // tries to skip the body once the answer's head is out).
        (
            "a malformed chunked body to no route",
            "POST / HTTP/1.1\r\nHost: nowhere.example.net\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_owned(),
        ),
        (
            "a body cut short to no route",
            "POST / HTTP/1.1\r\nHost: nowhere.example.net\r\nContent-Length: 100\r\n\r\nonly ten b".to_owned(),
        ),
        // A trailer hyper would refuse, whose section never ends: both
        // wait for the rest of the body (hyper checks trailers at the end).
        (
            "a malformed trailer that never ends",
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-S\x00\x00"
            ),
        ),
        (
            STALLED,
            format!(
                "POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\nhel"
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
        (
            "a malformed length on an answer to HEAD",
            format!("HEAD /bad-length HTTP/1.1\r\n{host}{close}\r\n"),
        ),
        (CUT[0], get("/cut", "")),
        (CUT[1], get("/bad-trailer", close)),
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
            "a malformed head after a served request",
            get("/204", "") + "GET /cl HTTP/1.1\r\nHost: www.example.\x19com\r\nConnection: close\r\n\r\n",
        ),
        // A head that can never become valid, cut short (no empty line):
        // answered 400 at once, not left to the header timeout; hyper
        // once saw only the first 24 bytes of a connection in its first
        // parse, and parses an incomplete head again only once it ends.
        (
            "a malformed head cut short",
            "GET /cl HTTP/1.1\r\nHost: www.example.\x19com\r\n".to_owned(),
        ),
        (
            "a malformed head cut short after a served request",
            get("/204", "") + "GET /cl HTTP/1.1\r\nHost: www.example.\x19com\r\n",
        ),
        // The routes of `differential::node` that do more than forward.
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
pub fn route_answer(name: &str) -> Option<&'static str> {
    Some(match name {
        "route: redirect" => "location: https://www.example.com/moved/x?a=1",
        "route: fixed response" => "pong",
        "route: header rules" => "x-served-by: edge",
        "route: body at its limit" => "200 OK",
        "route: declared body over its limit" | "route: chunked body over its limit" => "413",
        _ => return None,
    })
}
