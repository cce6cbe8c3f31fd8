//! What a handler answers: a status, a content type, extra headers and a
//! body.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

use crate::StatusCode;

/// The content type of JSON answers.
pub const JSON: &str = "application/json";

/// The content type of plain-text answers.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// An admin response. Errors use the JSON shape `{"error": "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    content_type: Cow<'static, str>,
    body: Bytes,
    allow: Option<String>,
    bearer_challenge: bool,
    headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A response with any content type.
    pub fn new(
        status: StatusCode,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            status,
            content_type: content_type.into(),
            body: body.into(),
            allow: None,
            bearer_challenge: false,
            headers: Vec::new(),
        }
    }

    /// `value` as JSON with `status`. A value that cannot be serialized
    /// (a map with non-string keys, a failing `Serialize`) becomes a 500
    /// saying so: that is a bug in the handler, not in the request.
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Self::new(status, JSON, body)
            }
            Err(e) => Self::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("internal: the response could not be encoded as JSON: {e}"),
            ),
        }
    }

    /// `value` as JSON with 200 OK.
    pub fn ok_json<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// Plain UTF-8 text.
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::new(status, TEXT, text.into())
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: StatusCode, message: &str) -> Self {
        #[derive(Serialize)]
        struct Error<'a> {
            error: &'a str,
        }
        let mut body = serde_json::to_vec(&Error { error: message })
            .unwrap_or_else(|_| br#"{"error":"unprintable error"}"#.to_vec());
        body.push(b'\n');
        Self::new(status, JSON, body)
    }

    /// 405 with the JSON error and an `Allow` header listing `allowed`.
    pub(crate) fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        let mut response = Self::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not allowed on {path}; use {allow}"),
        );
        response.allow = Some(allow);
        response
    }

    /// 401 with the JSON error and a `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn unauthorized(message: &str) -> Self {
        let mut response = Self::error(StatusCode::UNAUTHORIZED, message);
        response.bearer_challenge = true;
        response
    }

    /// This response with header `name: value` added (a value a header
    /// cannot carry makes it a 500, as a bad content type does).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The headers added with [`Response::with_header`].
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The content type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `Allow` header of a 405.
    pub(crate) fn allow(&self) -> Option<&str> {
        self.allow.as_deref()
    }

    /// Whether a `WWW-Authenticate: Bearer` challenge goes with it.
    pub(crate) fn bearer_challenge(&self) -> bool {
        self.bearer_challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn json_and_errors() {
        let ok = Response::ok_json(&serde_json::json!({"a": 1}));
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.content_type(), JSON);
        assert_eq!(&ok.body()[..], b"{\"a\":1}\n");

        let err = Response::error(StatusCode::NOT_FOUND, "no \"x\"");
        assert_eq!(&err.body()[..], b"{\"error\":\"no \\\"x\\\"\"}\n");

        let mut bad = BTreeMap::new();
        bad.insert((1, 2), 3);
        let unencodable = Response::ok_json(&bad);
        assert_eq!(unencodable.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let text = Response::text(StatusCode::OK, "hi");
        assert_eq!(text.content_type(), TEXT);
    }
}
