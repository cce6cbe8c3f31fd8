//! What a handler receives: the method, the path with its parameters, the
//! query parameters, the headers it may need and the (bounded) body.

use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::response::Response;
use crate::{Method, StatusCode};

/// One admin request, fully read.
///
/// Path and query parameters are percent-decoded UTF-8; in the query, `+`
/// also stands for a space (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) content_type: Option<String>,
    pub(crate) accept: Option<String>,
    /// Every header whose value is text, names lowercase.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) peer: SocketAddr,
}

impl Request {
    /// A request built by hand, for testing handlers without a server.
    pub fn new(method: Method, target: &str, body: impl Into<Bytes>) -> Result<Self, String> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Ok(Self {
            method,
            path: decode_component(path, false)
                .ok_or_else(|| format!("{path:?} is not UTF-8 once decoded"))?,
            params: Vec::new(),
            query: parse_query(query)?,
            content_type: None,
            accept: None,
            headers: Vec::new(),
            body: body.into(),
            peer: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
    }

    /// This request with path parameter `name` set to `value`, for testing
    /// handlers without a server.
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This request with header `name` set to `value`, for testing
    /// handlers without a server.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The decoded path, without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path parameter `name` (`{name}` in the route's pattern).
    pub fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.params, name)
    }

    /// The first query parameter called `name`; `Some("")` for `?name` or
    /// `?name=`.
    pub fn query(&self, name: &str) -> Option<&str> {
        lookup(&self.query, name)
    }

    /// Every query parameter, in order, repeats included.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The `Content-Type` header, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The `Accept` header, if any.
    pub fn accept(&self) -> Option<&str> {
        self.accept.as_deref()
    }

    /// The first header called `name` (any case), if its value is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body bytes (at most [`crate::AdminConfig::max_body_bytes`]).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The body parsed as JSON, or the 400 response to send when it is not
    /// valid JSON of the expected shape (serde's message included).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Response> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Response::error(
                StatusCode::BAD_REQUEST,
                &format!("the request body is not the expected JSON: {e}"),
            )
        })
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Parses `a=1&b=x+y&c` into decoded pairs. Empty pieces (`a=1&&b=2`) are
/// skipped. An error names the parameter that is not UTF-8 once decoded.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            let key_text = decode_component(key, true)
                .ok_or_else(|| format!("query parameter {key:?} is not UTF-8 once decoded"))?;
            let value = decode_component(value, true).ok_or_else(|| {
                format!("the value of query parameter {key_text:?} is not UTF-8 once decoded")
            })?;
            Ok((key_text, value))
        })
        .collect()
}

/// Percent-decodes `text` (and `+` as a space when `plus_is_space`).
/// A `%` not followed by two hex digits stays as it is, like browsers and
/// the WHATWG URL parser do. `None` if the result is not UTF-8.
pub(crate) fn decode_component(text: &str, plus_is_space: bool) -> Option<String> {
    if !(text.contains('%') || plus_is_space && text.contains('+')) {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_component("a%20b", false).unwrap(), "a b");
        assert_eq!(decode_component("a+b", false).unwrap(), "a+b");
        assert_eq!(decode_component("a+b", true).unwrap(), "a b");
        assert_eq!(decode_component("%e2%82%AC", false).unwrap(), "€");
        assert_eq!(decode_component("100%", false).unwrap(), "100%");
        assert_eq!(decode_component("%zz%4", false).unwrap(), "%zz%4");
        assert_eq!(decode_component("%ff", false), None);
    }

    #[test]
    fn query_parsing() {
        let pairs =
            parse_query("name=www.example.com&client=192.0.2.1&flag&x=a+b%2Bc&&x=2").unwrap();
        assert_eq!(
            pairs,
            [
                ("name".into(), "www.example.com".into()),
                ("client".into(), "192.0.2.1".into()),
                ("flag".into(), String::new()),
                ("x".into(), "a b+c".into()),
                ("x".into(), "2".into()),
            ]
        );
        assert!(parse_query("bad=%ff").unwrap_err().contains("\"bad\""));
        assert_eq!(parse_query("").unwrap(), []);
    }

    #[test]
    fn hand_built_requests_for_handler_tests() {
        let req = Request::new(Method::GET, "/v1/explain?name=www&client=::1", "")
            .unwrap()
            .with_param("region", "eu-west")
            .with_header("X-Gtm-Nonce", "abc");
        assert_eq!(req.path(), "/v1/explain");
        assert_eq!(req.query("name"), Some("www"));
        assert_eq!(req.query("client"), Some("::1"));
        assert_eq!(req.query("nope"), None);
        assert_eq!(req.param("region"), Some("eu-west"));
        assert_eq!(req.header("x-gtm-nonce"), Some("abc"));
        assert_eq!(req.header("x-other"), None);
        let bad = Request::new(Method::POST, "/x", "{").unwrap();
        let err = bad.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
