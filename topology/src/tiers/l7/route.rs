//! `regions.R.l7.routes`: what a route matches (host, path prefix,
//! listener, path regex, method, query parameter, cookie, header) and what it does with a
//! match (forward to a pool with header rules, redirect, or answer
//! directly), with its request body limit.
//!
//! Validation compiles everything a request will need once: the path
//! regex (linear-time, size-limited), the redirect's location template,
//! and reports every mistake with its field path.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::field::{Problems, Scalar};

/// Most bytes the compiled program of a path regex may take; a pattern
/// past it (`a{1000}{1000}`) is refused at validation.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The variables a redirect's location template may use.
pub const TEMPLATE_VARIABLES: [&str; 4] = ["scheme", "host", "path", "query"];

/// One route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Host to match: exact or `*.example.com`.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix to match (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// The listener to match: `http` or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// A regular expression the path (without the query) must match.
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Methods to match (any when absent).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// A request header to match.
    #[serde(default)]
    pub header: Option<RawFieldMatch>,
    /// A query parameter to match.
    #[serde(default)]
    pub query: Option<RawFieldMatch>,
    /// A cookie to match.
    #[serde(default)]
    pub cookie: Option<RawFieldMatch>,
    /// Replace the matched path prefix with this one before forwarding.
    #[serde(default)]
    pub rewrite: Option<String>,
    /// The pool to send matching requests to.
    #[serde(default)]
    pub pool: Option<String>,
    /// Header rules on the request sent to the pool.
    #[serde(default)]
    pub request_headers: Option<RawHeaderRules>,
    /// Header rules on the pool's response.
    #[serde(default)]
    pub response_headers: Option<RawHeaderRules>,
    /// Answer with a redirect instead.
    #[serde(default)]
    pub redirect: Option<RawRedirect>,
    /// Answer with a fixed response instead.
    #[serde(default)]
    pub respond: Option<RawRespond>,
    /// Largest request body (bytes, or with a unit: `10MiB`); overrides
    /// `limits.max_body`.
    #[serde(default)]
    pub max_body: Option<Scalar>,
}

/// `header:`, `query:` or `cookie:` of a route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldMatch {
    /// Name (headers: any case; query parameters and cookies: exact).
    pub name: String,
    /// Exact value; absent means "present".
    #[serde(default)]
    pub value: Option<Scalar>,
    /// `true`: matches when the field is absent.
    #[serde(default)]
    pub absent: bool,
}

/// `request_headers:` / `response_headers:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    /// Fields replaced (or added when missing).
    #[serde(default)]
    pub set: IndexMap<String, Scalar>,
    /// Fields added beside those already there.
    #[serde(default)]
    pub add: IndexMap<String, Scalar>,
    /// Fields removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `redirect:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    /// 301 (default), 302, 307 or 308.
    #[serde(default)]
    pub status: Option<u16>,
    /// The `Location` template, e.g. `https://{host}{path}{query}`.
    pub location: String,
}

/// `respond:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRespond {
    /// The status (200–599).
    pub status: u16,
    /// The body (default empty).
    #[serde(default)]
    pub body: Option<String>,
    /// The `Content-Type` (default `text/plain; charset=utf-8`).
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A routing rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Host match, lowercase: exact, or `*.suffix`.
    pub host: Option<String>,
    /// Path prefix.
    pub path: String,
    /// The listener, `http` or `https`; `None`: both.
    pub scheme: Option<String>,
    /// Path regex, compiled.
    pub path_regex: Option<PathRegex>,
    /// Methods (as written, which is how they are compared); empty: any.
    pub methods: Vec<String>,
    /// Header match (lowercase name).
    pub header: Option<FieldMatch>,
    /// Query parameter match.
    pub query: Option<FieldMatch>,
    /// Cookie match.
    pub cookie: Option<FieldMatch>,
    /// Prefix that replaces `path` before forwarding.
    pub rewrite: Option<String>,
    /// The request body limit: the route's `max_body`, else the tier's
    /// `limits.max_body`.
    pub max_body: Option<u64>,
    /// What a match does.
    pub action: Action,
}

/// A header, query parameter or cookie a route requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMatch {
    /// The name (lowercase for headers).
    pub name: String,
    /// What it must be.
    pub expect: Expect,
}

/// What a matched field must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Present, any value.
    Present,
    /// Absent.
    Absent,
    /// Present with exactly this value.
    Equals(String),
}

/// What a route does with a request it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Forward to a pool.
    Forward(Forward),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    Respond(Respond),
}

/// Forwarding to a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// Index into [`super::L7Tier::pools`].
    pub pool: usize,
    /// Applied to the request after the proxy's own fields.
    pub request_headers: HeaderRules,
    /// Applied to the backend's response after the proxy's own fields.
    pub response_headers: HeaderRules,
}

/// Header rules, applied in this order: remove, set, add. Names are
/// lowercase, values valid field values; neither names a hop-by-hop or
/// framing field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Fields removed.
    pub remove: Vec<String>,
    /// Fields replaced: every existing value goes, this one stays.
    pub set: Vec<(String, String)>,
    /// Fields appended.
    pub add: Vec<(String, String)>,
}

impl HeaderRules {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// A redirect answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// 301, 302, 307 or 308.
    pub status: u16,
    /// The `Location`, parsed.
    pub location: Template,
}

/// A fixed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Respond {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: String,
    /// The `Content-Type`.
    pub content_type: String,
}

/// A location template: literal text and `{variable}`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Copied as written.
    Literal(String),
    /// Replaced per request.
    Variable(Variable),
}

/// A template variable (see [`TEMPLATE_VARIABLES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variable {
    /// `http` or `https`: the listener the request came in on.
    Scheme,
    /// The request's host, without its port.
    Host,
    /// The request's path, without its query.
    Path,
    /// `?` and the query when the request has one, else nothing.
    Query,
}

/// A compiled path regex (the `regex` crate: linear time in the path's
/// length whatever the pattern).
#[derive(Clone, Debug)]
pub struct PathRegex(regex::Regex);

impl PathRegex {
    /// Compiles `pattern` within the size limit.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Self)
    }

    /// Whether the regex matches somewhere in `path` (anchor it with `^`
    /// and `$` to match the whole path).
    pub fn is_match(&self, path: &str) -> bool {
        self.0.is_match(path)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PathRegex {}

/// Parses a location template; the error names the problem and the fix.
pub fn parse_template(text: &str) -> Result<Template, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_owned()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{text:?} has a '{{' without its '}}'"))?;
        let name = &after[..close];
        let variable = match name {
            "scheme" => Variable::Scheme,
            "host" => Variable::Host,
            "path" => Variable::Path,
            "query" => Variable::Query,
            other => {
                return Err(format!(
                    "unknown variable {{{other}}}; variables: {}",
                    TEMPLATE_VARIABLES.map(|v| format!("{{{v}}}")).join(", ")
                ));
            }
        };
        pieces.push(Piece::Variable(variable));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    if pieces.is_empty() {
        return Err("is empty; write e.g. \"https://{host}{path}{query}\"".to_owned());
    }
    Ok(Template(pieces))
}

/// Parses a byte size: an integer, or a number with `B`, `KB`, `MB`,
/// `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse_size(value: &Scalar) -> Result<u64, String> {
    let text = value.text();
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => u64::MAX,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| scale != u64::MAX)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a size; write bytes (1048576) or with a unit (\"1MiB\", \"500KB\")"
            )
        })
}

/// Fields a header rule may not touch: they frame the message or
/// describe one connection, which the proxy owns.
const PROXY_OWNED: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
];

/// Checks an HTTP header name or method: an RFC 9110 token.
pub(super) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Validates one route; `pools` are the tier's pool names, in order.
pub(super) fn validate_route(
    pools: &[&str],
    route: &RawRoute,
    tier_max_body: Option<u64>,
    rpath: &str,
    problems: &mut Problems,
) -> Option<Route> {
    let prefix = route.path.clone().unwrap_or_else(|| "/".to_owned());
    if !prefix.starts_with('/') {
        problems.add(
            format!("{rpath}.path"),
            format!("{prefix:?} must start with '/'; write e.g. \"/api\""),
        );
    }
    if let Some(host) = &route.host {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.is_empty()
            || bare.contains('*')
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            problems.add(
                format!("{rpath}.host"),
                format!(
                    "{host:?} is not a host name; write \"www.example.com\" or \"*.example.com\" (no port, `*.` only at the start)"
                ),
            );
        }
    }
    let path_regex = route
        .path_regex
        .as_ref()
        .and_then(|pattern| match PathRegex::new(pattern) {
            Ok(regex) => Some(regex),
            Err(error) => {
                problems.add(
                    format!("{rpath}.path_regex"),
                    format!("{pattern:?} does not compile: {error}"),
                );
                None
            }
        });
    if let Some(scheme) = &route.scheme
        && scheme != "http"
        && scheme != "https"
    {
        problems.add(
            format!("{rpath}.scheme"),
            format!("{scheme:?} is not a listener; write http or https"),
        );
    }
    let methods = route.methods.clone().unwrap_or_default();
    for (index, method) in methods.iter().enumerate() {
        if !is_token(method) {
            problems.add(
                format!("{rpath}.methods[{index}]"),
                format!("{method:?} is not a method; write e.g. GET"),
            );
        }
    }
    if route.methods.as_ref().is_some_and(Vec::is_empty) {
        problems.add(
            format!("{rpath}.methods"),
            "is empty; list methods ([GET, HEAD]) or drop `methods:` to match any",
        );
    }
    let header = route
        .header
        .as_ref()
        .map(|h| field_match(h, true, &format!("{rpath}.header"), problems));
    let query = route
        .query
        .as_ref()
        .map(|q| field_match(q, false, &format!("{rpath}.query"), problems));
    let cookie = route
        .cookie
        .as_ref()
        .map(|c| field_match(c, false, &format!("{rpath}.cookie"), problems));
    if let Some(rewrite) = &route.rewrite
        && !rewrite.starts_with('/')
    {
        problems.add(
            format!("{rpath}.rewrite"),
            format!("{rewrite:?} must start with '/'; write e.g. \"/v2\""),
        );
    }
    let max_body = match &route.max_body {
        None => tier_max_body,
        Some(value) => problems.check(format!("{rpath}.max_body"), parse_size(value)),
    };
    let action = validate_action(pools, route, rpath, problems)?;
    Some(Route {
        host: route
            .host
            .as_ref()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
        path: prefix,
        scheme: route.scheme.clone(),
        path_regex,
        methods,
        header,
        query,
        cookie,
        rewrite: route.rewrite.clone(),
        max_body,
        action,
    })
}

fn field_match(
    raw: &RawFieldMatch,
    header: bool,
    fpath: &str,
    problems: &mut Problems,
) -> FieldMatch {
    if header && !is_token(&raw.name) {
        problems.add(
            format!("{fpath}.name"),
            format!(
                "{:?} is not a header name; write e.g. \"X-Canary\"",
                raw.name
            ),
        );
    } else if raw.name.is_empty() {
        problems.add(format!("{fpath}.name"), "is empty; write the name to match");
    }
    let expect = match (&raw.value, raw.absent) {
        (Some(_), true) => {
            problems.add(
                format!("{fpath}.absent"),
                "a value cannot be matched on an absent field; drop `value:` or `absent:`",
            );
            Expect::Absent
        }
        (Some(value), false) => Expect::Equals(value.text()),
        (None, true) => Expect::Absent,
        (None, false) => Expect::Present,
    };
    FieldMatch {
        name: if header {
            raw.name.to_ascii_lowercase()
        } else {
            raw.name.clone()
        },
        expect,
    }
}

fn validate_action(
    pools: &[&str],
    route: &RawRoute,
    rpath: &str,
    problems: &mut Problems,
) -> Option<Action> {
    let given = [
        route.pool.as_ref().map(|_| "pool"),
        route.redirect.as_ref().map(|_| "redirect"),
        route.respond.as_ref().map(|_| "respond"),
    ];
    let given: Vec<&str> = given.into_iter().flatten().collect();
    if given.len() != 1 {
        problems.add(
            rpath.to_owned(),
            format!(
                "a route needs exactly one of `pool`, `redirect` or `respond` (has {})",
                if given.is_empty() {
                    "none".to_owned()
                } else {
                    given.join(", ")
                }
            ),
        );
        return None;
    }
    let forwards_only = [
        (route.rewrite.is_some(), "rewrite"),
        (route.request_headers.is_some(), "request_headers"),
        (route.response_headers.is_some(), "response_headers"),
    ];
    if route.pool.is_none() {
        for (set, name) in forwards_only {
            if set {
                problems.add(
                    format!("{rpath}.{name}"),
                    "only applies to a route with a `pool`; drop it",
                );
            }
        }
    }
    if let Some(name) = &route.pool {
        let pool = pools.iter().position(|known| known == name);
        if pool.is_none() {
            problems.add(
                format!("{rpath}.pool"),
                format!(
                    "unknown pool {name:?}; pools: {}",
                    if pools.is_empty() {
                        "none (add a `pools:` block)".to_owned()
                    } else {
                        pools.join(", ")
                    }
                ),
            );
        }
        let rules = |raw: &Option<RawHeaderRules>, field: &str, problems: &mut Problems| {
            raw.as_ref().map_or_else(HeaderRules::default, |r| {
                header_rules(r, &format!("{rpath}.{field}"), problems)
            })
        };
        let request_headers = rules(&route.request_headers, "request_headers", problems);
        let response_headers = rules(&route.response_headers, "response_headers", problems);
        return Some(Action::Forward(Forward {
            pool: pool?,
            request_headers,
            response_headers,
        }));
    }
    if let Some(redirect) = &route.redirect {
        let status = redirect.status.unwrap_or(301);
        if ![301, 302, 307, 308].contains(&status) {
            problems.add(
                format!("{rpath}.redirect.status"),
                format!("{status} is not a redirect status; use 301, 302, 307 or 308"),
            );
        }
        if !redirect.location.bytes().all(is_field_byte) {
            problems.add(
                format!("{rpath}.redirect.location"),
                format!(
                    "{:?} has a character a header cannot carry; percent-encode it",
                    redirect.location
                ),
            );
        }
        let location = problems.check(
            format!("{rpath}.redirect.location"),
            parse_template(&redirect.location),
        )?;
        return Some(Action::Redirect(Redirect { status, location }));
    }
    let respond = route.respond.as_ref()?;
    if !(200..=599).contains(&respond.status) {
        problems.add(
            format!("{rpath}.respond.status"),
            format!("{} is not a final status; use 200-599", respond.status),
        );
    }
    let body = respond.body.clone().unwrap_or_default();
    if matches!(respond.status, 204 | 304) && !body.is_empty() {
        problems.add(
            format!("{rpath}.respond.body"),
            format!("a {} response has no body; drop `body:`", respond.status),
        );
    }
    let content_type = respond
        .content_type
        .clone()
        .unwrap_or_else(|| "text/plain; charset=utf-8".to_owned());
    if !content_type.bytes().all(is_field_byte) {
        problems.add(
            format!("{rpath}.respond.content_type"),
            format!("{content_type:?} is not a header value"),
        );
    }
    Some(Action::Respond(Respond {
        status: respond.status,
        body,
        content_type,
    }))
}

fn header_rules(raw: &RawHeaderRules, path: &str, problems: &mut Problems) -> HeaderRules {
    let name = |field: String, name: &str, problems: &mut Problems| {
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            problems.add(
                field,
                format!("{name:?} is not a header name; write e.g. \"X-Env\""),
            );
        } else if PROXY_OWNED.contains(&lower.as_str()) {
            problems.add(
                field,
                format!(
                    "{name:?} is the proxy's to set (framing or connection field); header rules cannot change {}",
                    PROXY_OWNED.join(", ")
                ),
            );
        }
        lower
    };
    let pairs = |map: &IndexMap<String, Scalar>, verb: &str, problems: &mut Problems| {
        map.iter()
            .map(|(field, value)| {
                let fpath = format!("{path}.{verb}.{field}");
                let lower = name(fpath.clone(), field, problems);
                let value = value.text();
                if !value.bytes().all(is_field_byte) {
                    problems.add(
                        fpath,
                        format!("{value:?} is not a header value (control characters)"),
                    );
                }
                (lower, value)
            })
            .collect::<Vec<_>>()
    };
    let set = pairs(&raw.set, "set", problems);
    let add = pairs(&raw.add, "add", problems);
    let remove = raw
        .remove
        .iter()
        .enumerate()
        .map(|(index, field)| name(format!("{path}.remove[{index}]"), field, problems))
        .collect();
    HeaderRules { remove, set, add }
}

/// A byte a field value may carry: visible ASCII, space, tab.
fn is_field_byte(byte: u8) -> bool {
    byte == b'\t' || (0x20..0x7f).contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_into_literals_and_variables() {
        assert_eq!(
            parse_template("https://{host}{path}{query}"),
            Ok(Template(vec![
                Piece::Literal("https://".into()),
                Piece::Variable(Variable::Host),
                Piece::Variable(Variable::Path),
                Piece::Variable(Variable::Query),
            ]))
        );
        assert_eq!(
            parse_template("/new"),
            Ok(Template(vec![Piece::Literal("/new".into())]))
        );
        assert_eq!(
            parse_template("{scheme}://x{path}"),
            Ok(Template(vec![
                Piece::Variable(Variable::Scheme),
                Piece::Literal("://x".into()),
                Piece::Variable(Variable::Path),
            ]))
        );
        assert_eq!(
            parse_template("https://{hots}/"),
            Err("unknown variable {hots}; variables: {scheme}, {host}, {path}, {query}".into())
        );
        assert!(
            parse_template("https://{host")
                .unwrap_err()
                .contains("without")
        );
        assert!(parse_template("").is_err());
    }

    #[test]
    fn sizes_take_units() {
        let text = |s: &str| Scalar::Text(s.into());
        assert_eq!(parse_size(&Scalar::Integer(1000)), Ok(1000));
        assert_eq!(parse_size(&text("10")), Ok(10));
        assert_eq!(parse_size(&text("2KB")), Ok(2000));
        assert_eq!(parse_size(&text("2 KiB")), Ok(2048));
        assert_eq!(parse_size(&text("1MiB")), Ok(1 << 20));
        assert_eq!(parse_size(&text("3GB")), Ok(3_000_000_000));
        for bad in ["", "1.5MB", "10 bytes", "-1", "MB", "99999999999999GiB"] {
            assert!(parse_size(&text(bad)).is_err(), "{bad:?}");
        }
        assert!(parse_size(&Scalar::Integer(-1)).is_err());
    }

    #[test]
    fn regexes_compile_within_their_limit() {
        assert!(
            PathRegex::new("^/items/[0-9]+$")
                .unwrap()
                .is_match("/items/42")
        );
        assert!(PathRegex::new("(").is_err());
        // Compiles to far more than the limit.
        assert!(PathRegex::new("\\w{1000}{1000}").is_err());
    }
}
