//! Routing: what a request gets — forwarded to a pool (with the path to
//! forward and the route's header rules), redirected, answered with a fixed
//! response, or refused as too large.
//!
//! Pure: the [`Router`] is built once per configuration and answers
//! [`Router::route`] from a [`RequestView`] (method, scheme, host, path and
//! query, declared body length, header lookup). No I/O; no allocation on a
//! forward without a rewrite. Both request paths (hyper's and the fast
//! path) act on its [`Decision`].
//!
//! Semantics, in the order the rules are written (the first match wins);
//! every condition a rule sets must hold:
//!
//! - **host**: exact (`www.example.com`) or wildcard (`*.example.com`,
//!   which matches one or more labels in front of `example.com` but not
//!   `example.com` itself), compared case-insensitively and without the
//!   port or a trailing dot; no host matches every request;
//! - **path**: a prefix on segment boundaries: `/api` matches `/api`,
//!   `/api/` and `/api/v1` but not `/apix`; a prefix ending in `/` matches
//!   anything under it; `/` matches every path;
//! - **scheme**: the listener the request came in on, `http` or `https`;
//! - **path_regex**: the regex matches the path (without the query, as
//!   sent: percent-encoded);
//! - **methods**: the method is one of them (case-sensitive);
//! - **header**: present (any of its values), absent, or one of its values
//!   equal to the given one;
//! - **query**: a parameter of that name is present, absent, or has the
//!   given value (names and values compared percent-decoded, `+` as space);
//! - **cookie**: a cookie of that name is present, absent, or has the given
//!   value (compared as sent);
//! - **rewrite**: the matched prefix is replaced (`/api` → `/v2` sends
//!   `/api/users?x=1` as `/v2/users?x=1`).
//!
//! A matched rule with a body limit refuses a request whose declared
//! length passes it ([`Decision::Refuse`] with a 413 fault); a body that
//! declares no length is cut off by the caller when it passes the limit.
//! A request no rule matches gets 404 from the caller. The host it is
//! matched on comes from [`request_host`].

use std::borrow::Cow;
use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri, Version};
use topology::tiers::l7::{
    Action, Expect, FieldMatch, L7Tier, Piece, Respond, Route as RouteConfig, Template, Variable,
};

use crate::l7::rules::fault::Fault;
use crate::l7::rules::forward::HeaderEdits;

/// The host a request is for: the URI's authority (absolute form,
/// HTTP/2 `:authority`) or the single `Host` field; a second `Host`, a
/// bad authority, or no host at all on HTTP/1.1 is a bad request. An
/// HTTP/1.0 request that names no host is for `local`, the address its
/// connection reached (RFC 9112 §3.3: the default authority from the
/// connection's context), so that the backend gets an HTTP/1.1 request
/// with a `Host` it accepts.
pub fn request_host(
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    local: SocketAddr,
) -> Result<HeaderValue, Fault> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(Fault::BadRequest("more than one Host field"));
    }
    match (uri.authority(), first) {
        (Some(authority), _) => HeaderValue::from_str(authority.as_str())
            .map_err(|_| Fault::BadRequest("bad authority")),
        (None, Some(host)) => Ok(host.clone()),
        (None, None) if version == Version::HTTP_11 => {
            Err(Fault::BadRequest("HTTP/1.1 request without Host"))
        }
        (None, None) => Ok(HeaderValue::from_str(&local.to_string())
            .expect("a socket address is a valid header value")),
    }
}

/// A request's header fields, as each request path keeps them.
pub trait Fields {
    /// Every value of the field `name` (lowercase), in order.
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]>;
}

impl Fields for HeaderMap {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

/// What the matcher sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a, F: ?Sized> {
    /// The method, as sent.
    pub method: &'a str,
    /// `http` or `https`: the listener it came in on.
    pub scheme: &'a str,
    /// The host, as sent (any case, maybe with a port).
    pub host: &'a str,
    /// The path and query (origin form).
    pub path_and_query: &'a str,
    /// The body length the request declares (`Content-Length`), if any.
    pub content_length: Option<u64>,
    /// Its header fields.
    pub fields: &'a F,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    host: HostMatch,
    config: RouteConfig,
    /// The request and response header rules of a forwarding rule.
    edits: (HeaderEdits, HeaderEdits),
    /// A stable, human-readable label for metrics and logs: `host/path`.
    pub label: String,
}

impl Rule {
    /// The index of the pool the rule forwards to, if it forwards.
    pub fn pool(&self) -> Option<usize> {
        match &self.config.action {
            Action::Forward(forward) => Some(forward.pool),
            Action::Redirect(_) | Action::Respond(_) => None,
        }
    }

    /// The name of its pool in `tier`, or `none` for a rule that answers
    /// itself.
    pub fn pool_name<'t>(&self, tier: &'t L7Tier) -> &'t str {
        self.pool()
            .and_then(|p| tier.pools.get(p))
            .map_or("none", |p| p.name.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Suffix(String),
}

/// The ordered rules of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
}

/// The outcome of a match: the rule's index, the rule and what to do.
#[derive(Debug)]
pub struct Matched<'r, 'q> {
    /// Position of the rule.
    pub index: usize,
    /// The rule.
    pub rule: &'r Rule,
    /// What the request gets.
    pub decision: Decision<'r, 'q>,
}

/// What a matched request gets.
#[derive(Debug)]
pub enum Decision<'r, 'q> {
    /// Forwarded to a pool.
    Forward(Forwarded<'r, 'q>),
    /// Answered with a redirect to `location`.
    Redirect {
        /// 301, 302, 307 or 308.
        status: StatusCode,
        /// The expanded template.
        location: HeaderValue,
    },
    /// Answered with a fixed response.
    Respond(&'r Respond),
    /// Answered with the fault: a declared body over the limit (413), or
    /// a location the request's own text made invalid (400).
    Refuse(Fault),
}

/// A request on its way to a pool: `'r` borrows from the router, `'q`
/// from the request.
#[derive(Debug)]
pub struct Forwarded<'r, 'q> {
    /// Index of the pool in the configuration's list.
    pub pool: usize,
    /// The path and query to send upstream (borrowed unless rewritten).
    pub path_and_query: Cow<'q, str>,
    /// Header rules on the request, after the proxy's own fields.
    pub request_headers: &'r HeaderEdits,
    /// Header rules on the response, after the proxy's own fields.
    pub response_headers: &'r HeaderEdits,
    /// The body limit: a body without a declared length that passes it is
    /// cut off and the request answered 413.
    pub max_body: Option<u64>,
}

impl Forwarded<'_, '_> {
    /// Whether the request goes as the client sent it, but for the
    /// proxy's own fields and a rewritten path: no header rules.
    pub fn plain(&self) -> bool {
        self.request_headers.is_empty() && self.response_headers.is_empty()
    }
}

impl Router {
    /// Compiles the configuration's routes, in order.
    pub fn new(routes: &[RouteConfig]) -> Self {
        let rules = routes
            .iter()
            .map(|route| {
                let host = match route.host.as_deref() {
                    None => HostMatch::Any,
                    Some(h) => match h.strip_prefix('*') {
                        Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                        None => HostMatch::Exact(h.to_ascii_lowercase()),
                    },
                };
                let edits = match &route.action {
                    Action::Forward(forward) => (
                        HeaderEdits::new(&forward.request_headers),
                        HeaderEdits::new(&forward.response_headers),
                    ),
                    Action::Redirect(_) | Action::Respond(_) => Default::default(),
                };
                Rule {
                    host,
                    label: format!("{}{}", route.host.as_deref().unwrap_or("*"), route.path),
                    config: route.clone(),
                    edits,
                }
            })
            .collect();
        Self { rules }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching `request`, and what the request gets.
    pub fn route<'r, 'q, F: Fields + ?Sized>(
        &'r self,
        request: &RequestView<'q, F>,
    ) -> Option<Matched<'r, 'q>> {
        let host = normalize_host(request.host);
        let path_and_query = request.path_and_query;
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let fields = request.fields;
        let (index, rule) = self.rules.iter().enumerate().find(|(_, rule)| {
            let config = &rule.config;
            host_matches(&rule.host, host)
                && prefix_matches(&config.path, path)
                && config.scheme.as_deref().is_none_or(|s| s == request.scheme)
                && (config.methods.is_empty() || config.methods.iter().any(|m| m == request.method))
                && config
                    .path_regex
                    .as_ref()
                    .is_none_or(|re| re.is_match(path))
                && config
                    .header
                    .as_ref()
                    .is_none_or(|m| expect_holds(&m.expect, fields.values(&m.name)))
                && config
                    .query
                    .as_ref()
                    .is_none_or(|m| query_matches(m, query))
                && config
                    .cookie
                    .as_ref()
                    .is_none_or(|m| cookie_matches(m, fields.values("cookie")))
        })?;
        let config = &rule.config;
        let too_large = matches!(
            (config.max_body, request.content_length),
            (Some(max), Some(length)) if length > max
        );
        let decision = match &config.action {
            _ if too_large => Decision::Refuse(Fault::PayloadTooLarge),
            Action::Forward(forward) => Decision::Forward(Forwarded {
                pool: forward.pool,
                path_and_query: match &config.rewrite {
                    None => Cow::Borrowed(path_and_query),
                    Some(rewrite) => {
                        Cow::Owned(rewrite_prefix(&config.path, rewrite, path_and_query))
                    }
                },
                request_headers: &rule.edits.0,
                response_headers: &rule.edits.1,
                max_body: config.max_body,
            }),
            // A host that is no host name (`a@evil.example`, `a/b`) would
            // steer the location elsewhere than the site asked for.
            Action::Redirect(_) if !is_host_name(host) => {
                Decision::Refuse(Fault::BadRequest("the Host is not a host name"))
            }
            Action::Redirect(redirect) => {
                let location = expand(&redirect.location, request.scheme, host, path, query);
                match HeaderValue::from_maybe_shared(location) {
                    Ok(location) => Decision::Redirect {
                        status: StatusCode::from_u16(redirect.status)
                            .unwrap_or(StatusCode::MOVED_PERMANENTLY),
                        location,
                    },
                    Err(_) => Decision::Refuse(Fault::BadRequest(
                        "the redirect location is not a valid header value",
                    )),
                }
            }
            Action::Respond(respond) => Decision::Respond(respond),
        };
        Some(Matched {
            index,
            rule,
            decision,
        })
    }
}

/// The template with its variables replaced: `host` without its port,
/// `query` with its `?` when the request has a non-empty one.
fn expand(
    template: &Template,
    scheme: &str,
    host: &str,
    path: &str,
    query: Option<&str>,
) -> String {
    let mut out = String::with_capacity(64);
    for piece in &template.0 {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Variable(Variable::Scheme) => out.push_str(scheme),
            Piece::Variable(Variable::Host) => out.push_str(host),
            Piece::Variable(Variable::Path) => out.push_str(path),
            Piece::Variable(Variable::Query) => {
                if let Some(query) = query.filter(|q| !q.is_empty()) {
                    out.push('?');
                    out.push_str(query);
                }
            }
        }
    }
    out
}

/// Whether `host` (without its port) is a name or an address: letters,
/// digits, `-`, `.`, `_`, or an IPv6 literal in brackets.
fn is_host_name(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_')
            || (bare.len() < host.len() && b == b':')
    })
}

/// Whether `expect` holds of a field's `values`.
fn expect_holds<'v>(expect: &Expect, mut values: impl Iterator<Item = &'v [u8]>) -> bool {
    match expect {
        Expect::Present => values.next().is_some(),
        Expect::Absent => values.next().is_none(),
        Expect::Equals(want) => values.any(|v| v == want.as_bytes()),
    }
}

/// Whether the query parameter `m` holds of `query` (the text after `?`).
fn query_matches(m: &FieldMatch, query: Option<&str>) -> bool {
    let mut params = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(|(name, _)| decoded_eq(name, &m.name))
        .map(|(_, value)| value);
    match &m.expect {
        Expect::Present => params.count() > 0,
        Expect::Absent => params.count() == 0,
        Expect::Equals(want) => params.any(|v| decoded_eq(v, want)),
    }
}

/// Whether the cookie `m` holds of the `Cookie` fields' `values`.
fn cookie_matches<'v>(m: &FieldMatch, values: impl Iterator<Item = &'v [u8]>) -> bool {
    let name = m.name.as_bytes();
    let cookies = values
        .flat_map(|value| value.split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (&pair[..eq] == name).then_some(&pair[eq + 1..])
        });
    expect_holds(&m.expect, cookies)
}

/// Whether the URL-encoded `raw` (`%XX` escapes, `+` for a space) decodes
/// to `want`; a `%` without two hex digits stands for itself.
fn decoded_eq(raw: &str, want: &str) -> bool {
    let raw = raw.as_bytes();
    let mut want = want.bytes();
    let mut at = 0;
    while at < raw.len() {
        let (byte, used) = match raw[at] {
            b'+' => (b' ', 1),
            b'%' => match raw.get(at + 1..at + 3).and_then(hex_byte) {
                Some(byte) => (byte, 3),
                None => (b'%', 1),
            },
            byte => (byte, 1),
        };
        if want.next() != Some(byte) {
            return false;
        }
        at += used;
    }
    want.next().is_none()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

/// Strips the port and a trailing dot; the caller compares ignoring case.
fn normalize_host(host: &str) -> &str {
    let host = if host.starts_with('[') {
        // An IPv6 literal: keep the brackets, drop the port.
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    host.strip_suffix('.').unwrap_or(host)
}

fn host_matches(rule: &HostMatch, host: &str) -> bool {
    match rule {
        HostMatch::Any => true,
        HostMatch::Exact(want) => host.eq_ignore_ascii_case(want),
        HostMatch::Suffix(suffix) => {
            host.len() > suffix.len()
                && host.is_char_boundary(host.len() - suffix.len())
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

fn rewrite_prefix(prefix: &str, rewrite: &str, path_and_query: &str) -> String {
    let rest = path_and_query.get(prefix.len()..).unwrap_or("");
    let mut out = String::with_capacity(rewrite.len() + rest.len() + 1);
    if rest.is_empty() || rest.starts_with('?') {
        // Nothing below the prefix: the rewrite as written.
        out.push_str(rewrite);
    } else {
        out.push_str(rewrite.trim_end_matches('/'));
        if !rest.starts_with('/') {
            // The prefix ended with '/', which `rest` lost.
            out.push('/');
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use topology::tiers::l7::{Forward, HeaderRules, PathRegex, Redirect};

    #[test]
    fn the_host_comes_from_the_authority_or_one_host_field() {
        let host = |h: &'static str| HeaderValue::from_static(h);
        let headers = |hosts: &[&'static str]| {
            let mut map = HeaderMap::new();
            for h in hosts {
                map.append(header::HOST, HeaderValue::from_static(h));
            }
            map
        };
        let origin: Uri = "/x".parse().unwrap();
        let absolute: Uri = "http://a.example:8080/x".parse().unwrap();
        let cases = [
            (
                &origin,
                Version::HTTP_11,
                headers(&["b.example"]),
                Ok(host("b.example")),
            ),
            (
                &absolute,
                Version::HTTP_11,
                headers(&["b.example"]),
                Ok(host("a.example:8080")),
            ),
            (
                &absolute,
                Version::HTTP_2,
                headers(&[]),
                Ok(host("a.example:8080")),
            ),
            (
                &origin,
                Version::HTTP_11,
                headers(&["a.example", "b.example"]),
                Err(Fault::BadRequest("more than one Host field")),
            ),
            (
                &origin,
                Version::HTTP_11,
                headers(&[]),
                Err(Fault::BadRequest("HTTP/1.1 request without Host")),
            ),
            (
                &origin,
                Version::HTTP_10,
                headers(&[]),
                Ok(host("192.0.2.1:80")),
            ),
        ];
        let local = "192.0.2.1:80".parse().unwrap();
        for (uri, version, headers, expected) in cases {
            assert_eq!(
                request_host(uri, version, &headers, local),
                expected,
                "{uri} {version:?} {headers:?}"
            );
        }
    }

    fn route(host: Option<&str>, path: &str, pool: usize) -> RouteConfig {
        RouteConfig {
            host: host.map(str::to_owned),
            path: path.to_owned(),
            scheme: None,
            path_regex: None,
            methods: Vec::new(),
            header: None,
            query: None,
            cookie: None,
            rewrite: None,
            max_body: None,
            action: Action::Forward(Forward {
                pool,
                request_headers: HeaderRules::default(),
                response_headers: HeaderRules::default(),
            }),
        }
    }

    fn field(name: &str, expect: Expect) -> Option<FieldMatch> {
        Some(FieldMatch {
            name: name.into(),
            expect,
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The pool and forwarded path of a GET over http, or `None`.
    fn forward(
        router: &Router,
        host: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Option<(usize, String)> {
        decide(router, "GET", host, path, fields, None).and_then(|d| match d {
            Outcome::Forward(pool, path) => Some((pool, path)),
            _ => None,
        })
    }

    /// A decision as plain data.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Forward(usize, String),
        Redirect(u16, String),
        Respond(u16),
        Refuse(Fault),
    }

    fn decide(
        router: &Router,
        method: &str,
        host: &str,
        path: &str,
        fields: &[(&str, &str)],
        content_length: Option<u64>,
    ) -> Option<Outcome> {
        let map = headers(fields);
        let view = RequestView {
            method,
            scheme: "http",
            host,
            path_and_query: path,
            content_length,
            fields: &map,
        };
        router.route(&view).map(|m| match m.decision {
            Decision::Forward(f) => Outcome::Forward(f.pool, f.path_and_query.into_owned()),
            Decision::Redirect { status, location } => {
                Outcome::Redirect(status.as_u16(), location.to_str().unwrap().to_owned())
            }
            Decision::Respond(r) => Outcome::Respond(r.status),
            Decision::Refuse(fault) => Outcome::Refuse(fault),
        })
    }

    fn table() -> Router {
        let mut canary = route(Some("www.example.com"), "/", 5);
        canary.header = field("x-canary", Expect::Equals("1".into()));
        let mut present = route(None, "/beta", 6);
        present.header = field("x-beta", Expect::Present);
        let mut rewrite = route(Some("api.example.com"), "/v1", 3);
        rewrite.rewrite = Some("/internal/v1".into());
        let mut strip = route(Some("api.example.com"), "/strip/", 7);
        strip.rewrite = Some("/".into());
        Router::new(&[
            canary,
            present,
            route(Some("www.example.com"), "/static/", 1),
            route(Some("www.example.com"), "/api", 2),
            rewrite,
            strip,
            route(Some("*.apps.example.com"), "/", 4),
            route(Some("www.example.com"), "/", 0),
        ])
    }

    #[test]
    fn the_routing_table() {
        let router = table();
        let none: &[(&str, &str)] = &[];
        // (host, path, headers) → (pool, forwarded path) or None for 404.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<(usize, &'a str)>,
        );
        let cases: &[Case<'_>] = &[
            ("www.example.com", "/", none, Some((0, "/"))),
            ("WWW.Example.COM:8443", "/x", none, Some((0, "/x"))),
            ("www.example.com.", "/x", none, Some((0, "/x"))),
            (
                "www.example.com",
                "/static/a.css",
                none,
                Some((1, "/static/a.css")),
            ),
            ("www.example.com", "/static", none, Some((0, "/static"))),
            ("www.example.com", "/api", none, Some((2, "/api"))),
            (
                "www.example.com",
                "/api/users?id=1",
                none,
                Some((2, "/api/users?id=1")),
            ),
            ("www.example.com", "/api?id=1", none, Some((2, "/api?id=1"))),
            ("www.example.com", "/apix", none, Some((0, "/apix"))),
            (
                "api.example.com",
                "/v1/users?x=1",
                none,
                Some((3, "/internal/v1/users?x=1")),
            ),
            ("api.example.com", "/v1", none, Some((3, "/internal/v1"))),
            (
                "api.example.com",
                "/v1?q",
                none,
                Some((3, "/internal/v1?q")),
            ),
            ("api.example.com", "/strip/a/b", none, Some((7, "/a/b"))),
            ("api.example.com", "/strip/", none, Some((7, "/"))),
            ("api.example.com", "/v2", none, None),
            ("shop.apps.example.com", "/", none, Some((4, "/"))),
            ("a.b.apps.example.com", "/cart", none, Some((4, "/cart"))),
            ("apps.example.com", "/", none, None),
            ("xapps.example.com", "/", none, None),
            ("example.org", "/", none, None),
            ("www.example.com", "/", &[("x-canary", "1")], Some((5, "/"))),
            ("www.example.com", "/", &[("x-canary", "2")], Some((0, "/"))),
            (
                "www.example.com",
                "/",
                &[("x-canary", "2"), ("x-canary", "1")],
                Some((5, "/")),
            ),
            (
                "anything",
                "/beta/x",
                &[("x-beta", "")],
                Some((6, "/beta/x")),
            ),
            ("anything", "/beta/x", none, None),
            ("[::1]:8080", "/", none, None),
        ];
        for (host, path, fields, want) in cases {
            let want = want.map(|(pool, path)| (pool, path.to_owned()));
            assert_eq!(
                forward(&router, host, path, fields),
                want,
                "{host} {path} {fields:?}"
            );
        }
    }

    /// One rule per new matcher, each to its own pool, then a default.
    fn matchers() -> Router {
        let mut methods = route(None, "/m", 1);
        methods.methods = vec!["POST".into(), "PUT".into()];
        let mut regex = route(None, "/", 2);
        regex.path_regex = Some(PathRegex::new("^/items/[0-9]+$").unwrap());
        let mut query_present = route(None, "/q", 3);
        query_present.query = field("debug", Expect::Present);
        let mut query_equals = route(None, "/q", 4);
        query_equals.query = field("v", Expect::Equals("a b".into()));
        let mut cookie_equals = route(None, "/c", 5);
        cookie_equals.cookie = field("beta", Expect::Equals("1".into()));
        let mut cookie_present = route(None, "/c", 6);
        cookie_present.cookie = field("session", Expect::Present);
        let mut header_absent = route(None, "/h", 7);
        header_absent.header = field("x-legacy", Expect::Absent);
        let mut query_absent = route(None, "/a", 8);
        query_absent.query = field("v", Expect::Absent);
        let mut cookie_absent = route(None, "/a", 9);
        cookie_absent.cookie = field("beta", Expect::Absent);
        Router::new(&[
            methods,
            regex,
            query_present,
            query_equals,
            cookie_equals,
            cookie_present,
            header_absent,
            query_absent,
            cookie_absent,
            route(None, "/", 0),
        ])
    }

    #[test]
    fn every_matcher_selects_its_pool() {
        let router = matchers();
        // (method, path, headers) → pool.
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], usize);
        let cases: &[Case<'_>] = &[
            ("POST", "/m", &[], 1),
            ("PUT", "/m/x", &[], 1),
            ("GET", "/m", &[], 0),
            ("post", "/m", &[], 0),
            ("GET", "/items/42", &[], 2),
            ("GET", "/items/42?x=1", &[], 2),
            ("GET", "/items/42x", &[], 0),
            ("GET", "/items/", &[], 0),
            ("GET", "/q?debug", &[], 3),
            ("GET", "/q?a=1&debug=0", &[], 3),
            ("GET", "/q?debugx=1", &[], 0),
            ("GET", "/q?v=a+b", &[], 4),
            ("GET", "/q?v=a%20b", &[], 4),
            ("GET", "/q?%76=a%20b", &[], 4),
            ("GET", "/q?v=ab", &[], 0),
            ("GET", "/q?v=a%2", &[], 0),
            ("GET", "/q", &[], 0),
            ("GET", "/c", &[("cookie", "a=1; beta=1")], 5),
            ("GET", "/c", &[("cookie", "a=1"), ("cookie", "beta=1")], 5),
            ("GET", "/c", &[("cookie", "beta=2; session=x")], 6),
            ("GET", "/c", &[("cookie", "betax=1")], 0),
            ("GET", "/c", &[], 0),
            ("GET", "/h", &[], 7),
            ("GET", "/h", &[("x-legacy", "1")], 0),
            ("GET", "/a?w=1", &[], 8),
            ("GET", "/a?v=1", &[("cookie", "x=1")], 9),
            ("GET", "/a?v=1", &[("cookie", "beta=1")], 0),
        ];
        for (method, path, fields, pool) in cases {
            assert_eq!(
                decide(&router, method, "h", path, fields, None),
                Some(Outcome::Forward(*pool, (*path).to_owned())),
                "{method} {path} {fields:?}"
            );
        }
    }

    #[test]
    fn redirects_responds_and_body_limits() {
        let template = |t: &str| topology::tiers::l7::parse_template(t).unwrap();
        let mut https = route(None, "/", 0);
        https.scheme = Some("http".into());
        https.action = Action::Redirect(Redirect {
            status: 308,
            location: template("https://{host}{path}{query}"),
        });
        let mut ping = route(None, "/ping", 0);
        ping.action = Action::Respond(Respond {
            status: 200,
            body: "pong".into(),
            content_type: "text/plain".into(),
        });
        let mut upload = route(None, "/upload", 1);
        upload.max_body = Some(10);
        let router = Router::new(&[ping, upload, https]);
        let cases: &[(&str, &str, Option<u64>, Outcome)] = &[
            (
                "www.example.com:80",
                "/a/b?x=1&y",
                None,
                Outcome::Redirect(308, "https://www.example.com/a/b?x=1&y".into()),
            ),
            (
                "Example.COM.",
                "/",
                None,
                Outcome::Redirect(308, "https://Example.COM/".into()),
            ),
            (
                "a",
                "/x?",
                None,
                Outcome::Redirect(308, "https://a/x".into()),
            ),
            (
                "[::1]:80",
                "/",
                None,
                Outcome::Redirect(308, "https://[::1]/".into()),
            ),
            (
                "a@evil.example",
                "/",
                None,
                Outcome::Refuse(Fault::BadRequest("the Host is not a host name")),
            ),
            (
                "a/b",
                "/",
                None,
                Outcome::Refuse(Fault::BadRequest("the Host is not a host name")),
            ),
            ("a", "/ping", None, Outcome::Respond(200)),
            ("a", "/ping", Some(1 << 30), Outcome::Respond(200)),
            (
                "a",
                "/upload",
                Some(10),
                Outcome::Forward(1, "/upload".into()),
            ),
            ("a", "/upload", None, Outcome::Forward(1, "/upload".into())),
            (
                "a",
                "/upload",
                Some(11),
                Outcome::Refuse(Fault::PayloadTooLarge),
            ),
        ];
        for (host, path, length, want) in cases {
            assert_eq!(
                decide(&router, "POST", host, path, &[], *length).as_ref(),
                Some(want),
                "{host} {path} {length:?}"
            );
        }
        // The redirect is for the plain HTTP listener only.
        let map = HeaderMap::new();
        let over_https = RequestView {
            method: "GET",
            scheme: "https",
            host: "a",
            path_and_query: "/x",
            content_length: None,
            fields: &map,
        };
        assert!(router.route(&over_https).is_none());
    }

    #[test]
    fn templates_expand() {
        let template = |t: &str| topology::tiers::l7::parse_template(t).unwrap();
        let cases = [
            (
                "https://{host}{path}{query}",
                "http",
                "a.example",
                "/x",
                Some("q=1"),
                "https://a.example/x?q=1",
            ),
            (
                "https://{host}{path}{query}",
                "http",
                "a.example",
                "/x",
                Some(""),
                "https://a.example/x",
            ),
            (
                "https://{host}{path}{query}",
                "http",
                "a.example",
                "/x",
                None,
                "https://a.example/x",
            ),
            (
                "{scheme}://new.example{path}",
                "https",
                "old",
                "/",
                None,
                "https://new.example/",
            ),
            ("/moved", "http", "a", "/old", Some("x"), "/moved"),
            (
                "https://{host}:8443{path}",
                "http",
                "[::1]",
                "/p",
                None,
                "https://[::1]:8443/p",
            ),
        ];
        for (text, scheme, host, path, query, want) in cases {
            assert_eq!(
                expand(&template(text), scheme, host, path, query),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn query_values_compare_decoded() {
        for (raw, want, equal) in [
            ("a+b", "a b", true),
            ("a%20b", "a b", true),
            ("%7e", "~", true),
            ("100%", "100%", true),
            ("%zz", "%zz", true),
            ("ab", "abc", false),
            ("abc", "ab", false),
            ("%41", "a", false),
        ] {
            assert_eq!(decoded_eq(raw, want), equal, "{raw} {want}");
        }
    }

    #[test]
    fn a_default_route_catches_everything() {
        let router = Router::new(&[route(Some("a.example.com"), "/", 1), route(None, "/", 0)]);
        let map = HeaderMap::new();
        let view = RequestView {
            method: "GET",
            scheme: "http",
            host: "b.example.com",
            path_and_query: "/x",
            content_length: None,
            fields: &map,
        };
        let m = router.route(&view).unwrap();
        assert_eq!(
            (m.index, m.rule.pool(), m.rule.label.as_str()),
            (1, Some(0), "*/")
        );
        assert!(Router::default().route(&view).is_none());
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize_host("Example.com:80"), "Example.com");
        assert_eq!(normalize_host("[::1]:443"), "[::1]");
        assert_eq!(normalize_host("[::1]"), "[::1]");
        assert_eq!(normalize_host("a.b."), "a.b");
    }

    #[test]
    fn rewrites() {
        for (prefix, rewrite, path, want) in [
            ("/api", "/v2", "/api/users", "/v2/users"),
            ("/api", "/v2/", "/api/users", "/v2/users"),
            ("/api", "/", "/api/users", "/users"),
            ("/api", "/", "/api", "/"),
            ("/api", "/", "/api?x", "/?x"),
            ("/api/", "/v2", "/api/users", "/v2/users"),
            ("/api/", "/v2/", "/api/users", "/v2/users"),
            ("/", "/base", "/x", "/base/x"),
            ("/", "/base/", "/", "/base/"),
        ] {
            assert_eq!(
                rewrite_prefix(prefix, rewrite, path),
                want,
                "{prefix} {rewrite} {path}"
            );
        }
    }
}
