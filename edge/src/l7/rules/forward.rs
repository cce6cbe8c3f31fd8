//! Header rewriting between the client and the backend: hop-by-hop fields
//! stripped, `X-Forwarded-*` and `X-Request-ID` set, `Via` added, and a
//! route's own header rules ([`HeaderEdits`]) applied after them.
//!
//! Pure functions over `http::HeaderMap` (the `http` crate's types, not
//! hyper's), table-tested.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use topology::tiers::l7::HeaderRules;

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Request-ID`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Fields that describe one connection, never forwarded (RFC 9110 §7.6.1),
/// plus the non-standard `Proxy-Connection` and `Keep-Alive`: also every
/// field HTTP/2 forbids (RFC 9113 §8.2.2). Parsed names: removing by name
/// then costs no parsing on every request. `Trailer` is end to end: an
/// HTTP/1.1 client gets a response's trailers only when it lists them.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What the proxy knows about a request it forwards.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The client's address (from the PROXY header when there is one), as
    /// a header value ([`client_value`]): rendered once per connection.
    pub client: &'a HeaderValue,
    /// `http` or `https`: how the client reached us.
    pub proto: &'static str,
    /// The host the client asked for, as sent (with its port, if any).
    pub host: &'a HeaderValue,
    /// `Via` value to append (`1.1 node`), if configured.
    pub via: Option<&'a HeaderValue>,
    /// The request is a protocol upgrade (WebSocket): keep `Upgrade`.
    pub upgrade: bool,
    /// The backend is spoken to over HTTP/2: `TE: trailers` is kept (gRPC
    /// needs it, HTTP/2 allows no other `TE`).
    pub http2: bool,
}

/// The options of `Connection` field values (`close`, field names, …),
/// trimmed; values that are not text are skipped.
pub fn connection_options<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = &'a [u8]> {
    values
        .into_iter()
        .filter_map(text)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Whether `name` is one of the standard hop-by-hop fields (whatever
/// `Connection` names besides).
pub fn is_standard_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
}

/// Whether a field `name` is not forwarded: a standard hop-by-hop field, or
/// one the message's `Connection` values (`connection`) name.
pub fn is_hop_by_hop<'a>(name: &[u8], connection: impl IntoIterator<Item = &'a [u8]>) -> bool {
    is_standard_hop_by_hop(name)
        || connection_options(connection)
            .any(|option| names_field(option) && option.eq_ignore_ascii_case(name))
}

/// Whether a `Connection` option names a field to remove besides the
/// standard ones (`close` names none).
fn names_field(option: &[u8]) -> bool {
    !option.eq_ignore_ascii_case(b"close") && !is_standard_hop_by_hop(option)
}

/// A field value as text (what `HeaderValue::to_str` accepts), else `None`.
fn text(value: &[u8]) -> Option<&[u8]> {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then_some(value)
}

/// Writes the `X-Forwarded-For` value to `out`: every earlier hop (the
/// `earlier` values, as text, non-empty) then the client.
pub fn forwarded_for<'a>(
    earlier: impl IntoIterator<Item = &'a [u8]>,
    client: &[u8],
    out: &mut Vec<u8>,
) {
    for value in earlier.into_iter().filter_map(text) {
        let value = value.trim_ascii();
        if !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(client);
}

/// Whether a client's `X-Request-ID` value is kept (else a new id
/// replaces it).
pub fn keeps_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 200
}

/// Removes hop-by-hop fields and those the `Connection` field names;
/// `keep_upgrade` keeps `Upgrade` and sets `Connection: upgrade`;
/// `keep_te_trailers` keeps `TE: trailers` when the `TE` field offers
/// trailers (the one `TE` HTTP/2 allows).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool, keep_te_trailers: bool) {
    let te_trailers = keep_te_trailers
        && headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let coding = t.split(';').next().unwrap_or_default();
                coding.trim().eq_ignore_ascii_case("trailers")
            });
    if headers.contains_key(header::CONNECTION) {
        // Options that are not field names (`close`) or are removed below
        // anyway (`keep-alive`, `upgrade`) are skipped: the usual
        // `Connection` value then costs no allocation.
        let named: Vec<HeaderName> = connection_options(
            headers
                .get_all(header::CONNECTION)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .filter(|token| names_field(token))
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether the request asks for a protocol upgrade (HTTP/1.1 only).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_options(
            headers
                .get_all(header::CONNECTION)
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// Rewrites a request's headers for the backend. Returns the request id
/// (the client's, or `new_id` when it sent none).
pub fn request_headers(
    headers: &mut HeaderMap,
    f: &Forwarding<'_>,
    new_id: impl FnOnce() -> HeaderValue,
) -> HeaderValue {
    strip_hop_by_hop(headers, f.upgrade, f.http2);
    // One X-Forwarded-For with every earlier hop, then the client.
    let mut xff = Vec::new();
    forwarded_for(
        headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(HeaderValue::as_bytes),
        f.client.as_bytes(),
        &mut xff,
    );
    // Text joined by ", " is always a valid value.
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(f.proto));
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, f.host.clone());
    }
    headers.insert(X_FORWARDED_HOST.clone(), f.host.clone());
    if let Some(via) = f.via {
        headers.append(header::VIA, via.clone());
    }
    match headers.get(&X_REQUEST_ID) {
        Some(id) if keeps_request_id(id.as_bytes()) => id.clone(),
        _ => {
            let id = new_id();
            headers.insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    }
}

/// Rewrites a backend's response headers for the client.
pub fn response_headers(
    headers: &mut HeaderMap,
    switching: bool,
    via: Option<&HeaderValue>,
    request_id: &HeaderValue,
) {
    strip_hop_by_hop(headers, switching, false);
    if let Some(via) = via {
        headers.append(header::VIA, via.clone());
    }
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    }
}

/// A route's header rules, parsed once: applied in the order remove, set,
/// add, after the proxy's own fields (so a rule may replace them).
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderEdits {
    /// Parses validated `rules` (validation refuses names and values that
    /// do not parse; such a rule would be skipped).
    pub fn new(rules: &HeaderRules) -> Self {
        let name = |n: &String| HeaderName::from_bytes(n.as_bytes()).ok();
        let pair = |(n, v): &(String, String)| Some((name(n)?, HeaderValue::from_str(v).ok()?));
        Self {
            remove: rules.remove.iter().filter_map(name).collect(),
            set: rules.set.iter().filter_map(pair).collect(),
            add: rules.add.iter().filter_map(pair).collect(),
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies the rules to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// The client's address as the value [`Forwarding::client`] takes.
pub fn client_value(client: IpAddr) -> HeaderValue {
    // An address's text is always a valid header value.
    HeaderValue::from_str(&client.to_string()).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// 32 hex digits from two 64-bit words.
pub fn format_request_id(hi: u64, lo: u64) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, word) in [hi, lo].into_iter().enumerate() {
        for j in 0..16 {
            out[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    static CLIENT: HeaderValue = HeaderValue::from_static("192.0.2.7");
    static HOST: HeaderValue = HeaderValue::from_static("www.example.com:8443");

    fn fwd(upgrade: bool) -> Forwarding<'static> {
        Forwarding {
            client: &CLIENT,
            proto: "https",
            host: &HOST,
            via: None,
            upgrade,
            http2: false,
        }
    }

    #[test]
    fn hop_by_hop_fields_are_stripped() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-connection", "close"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn http2_backends_get_te_trailers_and_nothing_else_hop_by_hop() {
        let hop = [
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("content-type", "application/grpc"),
        ];
        for (te, kept) in [
            ("trailers", Some("trailers")),
            ("gzip, Trailers;q=1", Some("trailers")),
            ("gzip", None),
        ] {
            let mut h = map(&hop);
            h.append("te", HeaderValue::from_str(te).unwrap());
            strip_hop_by_hop(&mut h, false, true);
            let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            let expected: &[&str] = match kept {
                Some(_) => &["content-type", "te"],
                None => &["content-type"],
            };
            assert_eq!(names, expected, "TE: {te}");
            assert_eq!(h.get("te").map(|v| v.to_str().unwrap()), kept);
        }
        // HTTP/1.1 backends never get TE.
        let mut h = map(&[("te", "trailers")]);
        strip_hop_by_hop(&mut h, false, false);
        assert!(h.is_empty());
    }

    #[test]
    fn trailer_lists_are_forwarded() {
        let mut h = map(&[("trailer", "grpc-status"), ("connection", "close")]);
        response_headers(&mut h, false, None, &HeaderValue::from_static("id"));
        assert_eq!(h["trailer"], "grpc-status");
    }

    #[test]
    fn upgrades_keep_their_upgrade() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true, false);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "upgrade")])));
    }

    #[test]
    fn forwarding_fields_are_set() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "192.0.2.7"),
            (&[("x-forwarded-for", "10.0.0.1")], "10.0.0.1, 192.0.2.7"),
            (
                &[
                    ("x-forwarded-for", "10.0.0.1"),
                    ("x-forwarded-for", "10.0.0.2"),
                ],
                "10.0.0.1, 10.0.0.2, 192.0.2.7",
            ),
        ];
        for (input, xff) in cases {
            let mut h = map(input);
            let id = request_headers(&mut h, &fwd(false), || HeaderValue::from_static("new"));
            assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
            assert_eq!(h["x-forwarded-for"], *xff);
            assert_eq!(h["x-forwarded-proto"], "https");
            assert_eq!(h["x-forwarded-host"], "www.example.com:8443");
            assert_eq!(h["host"], "www.example.com:8443");
            assert_eq!(id, "new");
            assert_eq!(h["x-request-id"], "new");
        }
    }

    #[test]
    fn a_client_request_id_is_kept_and_via_appended() {
        let mut h = map(&[("x-request-id", "abc"), ("host", "a"), ("via", "1.0 other")]);
        let via = HeaderValue::from_static("1.1 l7a");
        let f = Forwarding {
            via: Some(&via),
            ..fwd(false)
        };
        let id = request_headers(&mut h, &f, || unreachable!());
        assert_eq!(id, "abc");
        assert_eq!(h["host"], "a");
        let vias: Vec<&str> = h
            .get_all("via")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(vias, ["1.0 other", "1.1 l7a"]);
        let mut resp = map(&[("connection", "close"), ("content-type", "text/plain")]);
        response_headers(&mut resp, false, Some(&via), &id);
        assert!(!resp.contains_key("connection"));
        assert_eq!(resp["via"], "1.1 l7a");
        assert_eq!(resp["x-request-id"], "abc");
    }

    #[test]
    fn header_rules_remove_then_set_then_add() {
        let rules = HeaderRules {
            remove: vec!["x-secret".into(), "x-gone".into()],
            set: vec![
                ("x-env".into(), "prod".into()),
                ("x-request-id".into(), "mine".into()),
            ],
            add: vec![
                ("x-tag".into(), "b".into()),
                ("x-env".into(), "also".into()),
            ],
        };
        let mut headers = map(&[
            ("x-secret", "1"),
            ("x-env", "dev"),
            ("x-env", "test"),
            ("x-tag", "a"),
            ("x-request-id", "abc"),
        ]);
        HeaderEdits::new(&rules).apply(&mut headers);
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert!(all("x-secret").is_empty());
        assert_eq!(all("x-env"), ["prod", "also"]);
        assert_eq!(all("x-tag"), ["a", "b"]);
        assert_eq!(all("x-request-id"), ["mine"]);
        assert!(HeaderEdits::new(&HeaderRules::default()).is_empty());
    }

    #[test]
    fn client_values_are_the_address() {
        assert_eq!(client_value("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_value("2001:db8::1".parse().unwrap()), "2001:db8::1");
    }

    #[test]
    fn request_ids_are_hex() {
        assert_eq!(
            format_request_id(0x0123_4567_89ab_cdef, 0xf),
            "0123456789abcdef000000000000000f"
        );
    }
}
