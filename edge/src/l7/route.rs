//! Routing: which pool a request goes to, and the path it is forwarded with.
//!
//! Pure: the [`Router`] is built once per configuration and answers
//! [`Router::route`] from the request's host, path and a header lookup. No
//! I/O, no allocation on a match without a rewrite.
//!
//! Semantics, in the order the rules are written (the first match wins):
//!
//! - **host**: exact (`www.example.com`) or wildcard (`*.example.com`,
//!   which matches one or more labels in front of `example.com` but not
//!   `example.com` itself), compared case-insensitively and without the
//!   port or a trailing dot; no host matches every request;
//! - **path**: a prefix on segment boundaries: `/api` matches `/api`,
//!   `/api/` and `/api/v1` but not `/apix`; a prefix ending in `/` matches
//!   anything under it; `/` matches every path;
//! - **header**: when set, the header must be present (and equal `value`
//!   exactly, when a value is given);
//! - **rewrite**: the matched prefix is replaced (`/api` → `/v2` sends
//!   `/api/users?x=1` as `/v2/users?x=1`).
//!
//! A request no rule matches gets 404 from the caller. The host it is
//! matched on comes from [`request_host`].

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Uri, Version};
use topology::tiers::l7::Route as RouteConfig;

use super::fault::Fault;

/// The host a request is for: the URI's authority (absolute form,
/// HTTP/2 `:authority`) or the single `Host` field; a second `Host`, a
/// bad authority, or no host at all on HTTP/1.1 is a bad request.
pub fn request_host(
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
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
        (None, None) => Ok(HeaderValue::from_static("")),
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    host: HostMatch,
    path: String,
    header: Option<(String, Option<String>)>,
    rewrite: Option<String>,
    /// Index of the pool in the configuration's list.
    pub pool: usize,
    /// A stable, human-readable label for metrics and logs: `host/path`.
    pub label: String,
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

/// The outcome of a match: the rule's index, the rule and the path to
/// forward (borrowed unless rewritten).
#[derive(Debug)]
pub struct Matched<'a> {
    /// Position of the rule.
    pub index: usize,
    /// The rule.
    pub rule: &'a Rule,
    /// The path and query to send upstream.
    pub path_and_query: Cow<'a, str>,
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
                let label = format!("{}{}", route.host.as_deref().unwrap_or("*"), route.path);
                Rule {
                    host,
                    path: route.path.clone(),
                    header: route
                        .header
                        .as_ref()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.clone())),
                    rewrite: route.rewrite.clone(),
                    pool: route.pool,
                    label,
                }
            })
            .collect();
        Self { rules }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching a request for `host` (as sent: any case,
    /// maybe with a port) and `path_and_query` (origin form); `header`
    /// looks a request header up by lowercase name.
    pub fn route<'a, 'h>(
        &'a self,
        host: &str,
        path_and_query: &'a str,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Option<Matched<'a>> {
        let host = normalize_host(host);
        let path_end = path_and_query.find('?').unwrap_or(path_and_query.len());
        let path = &path_and_query[..path_end];
        self.rules.iter().enumerate().find_map(|(index, rule)| {
            if !host_matches(&rule.host, host) || !prefix_matches(&rule.path, path) {
                return None;
            }
            if let Some((name, value)) = &rule.header {
                match (header(name), value) {
                    (None, _) => return None,
                    (Some(got), Some(want)) if got != want.as_bytes() => return None,
                    _ => {}
                }
            }
            let path_and_query = match &rule.rewrite {
                None => Cow::Borrowed(path_and_query),
                Some(rewrite) => Cow::Owned(rewrite_prefix(&rule.path, rewrite, path_and_query)),
            };
            Some(Matched {
                index,
                rule,
                path_and_query,
            })
        })
    }
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
    use topology::tiers::l7::HeaderMatch;

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
            (&origin, Version::HTTP_10, headers(&[]), Ok(host(""))),
        ];
        for (uri, version, headers, expected) in cases {
            assert_eq!(
                request_host(uri, version, &headers),
                expected,
                "{uri} {version:?} {headers:?}"
            );
        }
    }

    fn route(host: Option<&str>, path: &str, pool: usize) -> RouteConfig {
        RouteConfig {
            host: host.map(str::to_owned),
            path: path.to_owned(),
            header: None,
            rewrite: None,
            pool,
        }
    }

    fn table() -> Router {
        let mut canary = route(Some("www.example.com"), "/", 5);
        canary.header = Some(HeaderMatch {
            name: "x-canary".into(),
            value: Some("1".into()),
        });
        let mut present = route(None, "/beta", 6);
        present.header = Some(HeaderMatch {
            name: "x-beta".into(),
            value: None,
        });
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
        let headers: &[(&str, &[u8])] = &[];
        // (host, path, headers) → (pool, forwarded path) or None for 404.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a [u8])],
            Option<(usize, &'a str)>,
        );
        let cases: &[Case<'_>] = &[
            ("www.example.com", "/", headers, Some((0, "/"))),
            ("WWW.Example.COM:8443", "/x", headers, Some((0, "/x"))),
            ("www.example.com.", "/x", headers, Some((0, "/x"))),
            (
                "www.example.com",
                "/static/a.css",
                headers,
                Some((1, "/static/a.css")),
            ),
            ("www.example.com", "/static", headers, Some((0, "/static"))),
            ("www.example.com", "/api", headers, Some((2, "/api"))),
            (
                "www.example.com",
                "/api/users?id=1",
                headers,
                Some((2, "/api/users?id=1")),
            ),
            (
                "www.example.com",
                "/api?id=1",
                headers,
                Some((2, "/api?id=1")),
            ),
            ("www.example.com", "/apix", headers, Some((0, "/apix"))),
            (
                "api.example.com",
                "/v1/users?x=1",
                headers,
                Some((3, "/internal/v1/users?x=1")),
            ),
            ("api.example.com", "/v1", headers, Some((3, "/internal/v1"))),
            (
                "api.example.com",
                "/v1?q",
                headers,
                Some((3, "/internal/v1?q")),
            ),
            ("api.example.com", "/strip/a/b", headers, Some((7, "/a/b"))),
            ("api.example.com", "/strip/", headers, Some((7, "/"))),
            ("api.example.com", "/v2", headers, None),
            ("shop.apps.example.com", "/", headers, Some((4, "/"))),
            ("a.b.apps.example.com", "/cart", headers, Some((4, "/cart"))),
            ("apps.example.com", "/", headers, None),
            ("xapps.example.com", "/", headers, None),
            ("example.org", "/", headers, None),
            (
                "www.example.com",
                "/",
                &[("x-canary", b"1")],
                Some((5, "/")),
            ),
            (
                "www.example.com",
                "/",
                &[("x-canary", b"2")],
                Some((0, "/")),
            ),
            (
                "anything",
                "/beta/x",
                &[("x-beta", b"")],
                Some((6, "/beta/x")),
            ),
            ("anything", "/beta/x", headers, None),
            ("[::1]:8080", "/", headers, None),
        ];
        for (host, path, hdrs, want) in cases {
            let got = router
                .route(host, path, |name| {
                    hdrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
                })
                .map(|m| (m.rule.pool, m.path_and_query.into_owned()));
            let want = want.map(|(pool, path)| (pool, path.to_owned()));
            assert_eq!(got, want, "{host} {path} {hdrs:?}");
        }
    }

    #[test]
    fn a_default_route_catches_everything() {
        let router = Router::new(&[route(Some("a.example.com"), "/", 1), route(None, "/", 0)]);
        let m = router.route("b.example.com", "/x", |_| None).unwrap();
        assert_eq!((m.index, m.rule.pool, m.rule.label.as_str()), (1, 0, "*/"));
        assert!(Router::default().route("a", "/", |_| None).is_none());
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
