//! Requests for `route_matcher`, in its input format: the method, the
//! host, the path and query, then `name: value` header lines, separated by
//! newlines. The cases of edge/src/l7/rules/route.rs's unit tests and of
//! edge/tests/it/l7/routing.rs, whose routing tables the target combines.

use crate::Seed;

/// (name, host, path and query, headers), sent with GET.
const REQUESTS: &[(&str, &str, &str, &[&str])] = &[
    // route.rs: the_routing_table
    ("www", "www.example.com", "/", &[]),
    ("www-port-case", "WWW.Example.COM:8443", "/x", &[]),
    ("www-trailing-dot", "www.example.com.", "/x", &[]),
    ("static-under", "www.example.com", "/static/a.css", &[]),
    ("static-bare", "www.example.com", "/static", &[]),
    ("api", "www.example.com", "/api", &[]),
    ("api-under-query", "www.example.com", "/api/users?id=1", &[]),
    ("api-query", "www.example.com", "/api?id=1", &[]),
    ("apix", "www.example.com", "/apix", &[]),
    (
        "rewrite-under-query",
        "api.example.com",
        "/v1/users?x=1",
        &[],
    ),
    ("rewrite-exact", "api.example.com", "/v1", &[]),
    ("rewrite-query", "api.example.com", "/v1?q", &[]),
    ("strip-under", "api.example.com", "/strip/a/b", &[]),
    ("strip-exact", "api.example.com", "/strip/", &[]),
    ("api-host-no-route", "api.example.com", "/v2", &[]),
    ("wildcard", "shop.apps.example.com", "/", &[]),
    ("wildcard-deep", "a.b.apps.example.com", "/cart", &[]),
    ("wildcard-parent", "apps.example.com", "/", &[]),
    ("wildcard-lookalike", "xapps.example.com", "/", &[]),
    ("other-host", "example.org", "/", &[]),
    ("canary", "www.example.com", "/", &["x-canary: 1"]),
    (
        "canary-other-value",
        "www.example.com",
        "/",
        &["x-canary: 2"],
    ),
    ("header-present", "anything", "/beta/x", &["x-beta: "]),
    ("header-absent", "anything", "/beta/x", &[]),
    ("ipv6-literal", "[::1]:8080", "/", &[]),
    // route.rs: hosts_normalize
    ("host-port", "Example.com:80", "/", &[]),
    ("ipv6-literal-no-port", "[::1]", "/", &[]),
    ("host-trailing-dot", "a.b.", "/", &[]),
    // l7/routing.rs: the_routing_table_sends_each_request_to_its_pool
    ("routing-port-query", "WWW.EXAMPLE.COM:8080", "/x?y=1", &[]),
    ("routing-rewrite", "www.example.com", "/api/users?id=7", &[]),
    ("routing-wildcard", "shop.apps.example.com", "/cart", &[]),
    ("routing-canary", "www.example.com", "/", &["X-Canary: 1"]),
    ("routing-canary-0", "www.example.com", "/", &["X-Canary: 0"]),
    (
        "routing-any-host-static",
        "other.example.org",
        "/static/a.css",
        &[],
    ),
    ("routing-no-route", "other.example.org", "/", &[]),
];

/// (name, method, path and query, headers), for any host: route.rs's
/// every_matcher_selects_its_pool and redirects_responds_and_body_limits.
const ACTIONS: &[(&str, &str, &str, &[&str])] = &[
    ("method-post", "POST", "/m", &[]),
    ("method-lowercase", "post", "/m", &[]),
    ("regex", "GET", "/items/42", &[]),
    ("regex-suffix", "GET", "/items/42x", &[]),
    ("query-present", "GET", "/q?a=1&debug=0", &[]),
    ("query-plus", "GET", "/q?v=a+b", &[]),
    ("query-escaped-name", "GET", "/q?%76=a%20b", &[]),
    ("query-bad-escape", "GET", "/q?v=a%2", &[]),
    ("cookie-equals", "GET", "/c", &["cookie: a=1; beta=1"]),
    ("cookie-two-fields", "GET", "/c", &["cookie: a=1", "cookie: beta=1"]),
    ("cookie-present", "GET", "/c", &["cookie: beta=2; session=x"]),
    ("header-absent-rules", "GET", "/h", &[]),
    ("header-absent-present", "GET", "/h", &["x-legacy: 1"]),
    ("query-absent", "GET", "/a?w=1", &[]),
    ("cookie-absent", "GET", "/a?v=1", &["cookie: x=1"]),
    ("body-at-limit", "POST", "/upload", &["content-length: 10"]),
    ("body-over-limit", "POST", "/upload", &["content-length: 11"]),
    ("respond", "GET", "/ping", &[]),
    ("redirect", "GET", "/elsewhere/x?y=1", &[]),
];

pub fn seeds() -> Vec<Seed> {
    let seed = |name: &str, method: &str, host: &str, path: &str, headers: &[&str]| {
        let mut lines = vec![method, host, path];
        lines.extend_from_slice(headers);
        (name.to_string(), lines.join("\n").into_bytes())
    };
    let gets = REQUESTS
        .iter()
        .map(|(name, host, path, headers)| seed(name, "GET", host, path, headers));
    let actions = ACTIONS.iter().map(|(name, method, path, headers)| {
        seed(name, method, "other.example.org", path, headers)
    });
    gets.chain(actions).collect()
}
