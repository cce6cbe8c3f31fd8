//! The route table: method and path pattern to handler.
//!
//! A pattern is a path whose segments are literals or `{name}` parameters:
//! `/v1/regions/{region}/fail`. A parameter matches one non-empty segment.
//! When several patterns match a path, the one with a literal where the
//! others have a parameter wins (at the first segment where they differ),
//! so `/v1/regions/all` beats `/v1/regions/{region}` whatever the order of
//! registration. Matching is pure and allocates only the captured values.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::request::Request;
use crate::response::Response;
use crate::{Method, StatusCode};

/// Whether a route changes state, which decides whether it needs the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: served to anyone who can reach the endpoint.
    Read,
    /// Changes state: needs `Authorization: Bearer TOKEN` when a token is
    /// configured (and one always is off loopback).
    Mutate,
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// An async request handler. Implemented for every
/// `Fn(Request) -> impl Future<Output = Response>` that is `Send + Sync`;
/// capture shared state by cloning an `Arc` into the closure.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`.
    fn call(&self, request: Request) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    fn call(&self, request: Request) -> HandlerFuture {
        Box::pin(self(request))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) pattern: String,
    segments: Vec<Segment>,
    pub(crate) access: Access,
    pub(crate) handler: Arc<dyn Handler>,
}

/// The outcome of matching a request against the table.
pub(crate) enum Match<'r> {
    /// A route, with the raw (still percent-encoded) parameter values.
    Found {
        route: &'r Route,
        params: Vec<(String, &'r str)>,
    },
    /// The path exists, not for this method.
    MethodNotAllowed { allowed: Vec<&'r str> },
    /// No pattern matches the path.
    NotFound,
}

/// The routes of one admin server, built once before serving.
///
/// `GET /healthz` is always there; [`Router::metrics`] adds `GET /metrics`.
pub struct Router {
    routes: Vec<Route>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router with only the built-in `GET /healthz` (200,
    /// `{"status":"ok"}`): the process is up and serving.
    pub fn new() -> Self {
        Self { routes: Vec::new() }.route(Method::GET, "/healthz", Access::Read, |_req| async {
            Response::ok_json(&serde_json::json!({ "status": "ok" }))
        })
    }

    /// Adds a read-only `GET` route. See [`route`](Self::route).
    pub fn get(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::GET, pattern, Access::Read, handler)
    }

    /// Adds a mutating `POST` route (token-protected). A `POST` that only
    /// reads (a query too big for a URL) uses [`route`](Self::route) with
    /// [`Access::Read`].
    pub fn post(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::POST, pattern, Access::Mutate, handler)
    }

    /// Adds a route.
    ///
    /// # Panics
    ///
    /// On a programming error, at start-up: a pattern that does not start
    /// with `/`, has an empty segment, a malformed or repeated `{param}`,
    /// or duplicates a route already registered for the same method.
    pub fn route(
        mut self,
        method: Method,
        pattern: &str,
        access: Access,
        handler: impl Handler,
    ) -> Self {
        let segments = parse_pattern(pattern).unwrap_or_else(|e| panic!("route {pattern:?}: {e}"));
        let shape = |s: &[Segment]| -> Vec<Option<String>> {
            s.iter()
                .map(|seg| match seg {
                    Segment::Literal(l) => Some(l.clone()),
                    Segment::Param(_) => None,
                })
                .collect()
        };
        if let Some(existing) = self
            .routes
            .iter()
            .find(|r| r.method == method && shape(&r.segments) == shape(&segments))
        {
            panic!(
                "route {method} {pattern:?} duplicates {method} {:?}",
                existing.pattern
            );
        }
        self.routes.push(Route {
            method,
            pattern: pattern.to_owned(),
            segments,
            access,
            handler: Arc::new(handler),
        });
        self
    }

    /// Serves `registry` on `GET /metrics` (see [`crate::metrics`] for the
    /// formats). Metric families with labels may gain and lose label sets
    /// while serving; the registry itself is fixed once shared.
    pub fn metrics(self, registry: Arc<Registry>) -> Self {
        self.route(
            Method::GET,
            "/metrics",
            Access::Read,
            move |req: Request| {
                let registry = Arc::clone(&registry);
                async move {
                    let accept = req.accept.as_deref();
                    match crate::metrics::render(&registry, accept) {
                        Ok((content_type, body)) => {
                            Response::new(StatusCode::OK, content_type, body)
                        }
                        Err(e) => Response::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("internal: the metrics could not be encoded: {e}"),
                        ),
                    }
                }
            },
        )
    }

    /// The `(method, pattern, access)` of every route, in registration order.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &str, Access)> {
        self.routes
            .iter()
            .map(|r| (&r.method, r.pattern.as_str(), r.access))
    }

    /// Finds the route for `method` and the raw path `path`.
    pub(crate) fn find<'r>(&'r self, method: &Method, path: &'r str) -> Match<'r> {
        let mut best: Option<(&Route, Vec<(String, &str)>)> = None;
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, path) else {
                continue;
            };
            if route.method != *method {
                allowed.push(route.method.as_str());
                continue;
            }
            let better = match &best {
                None => true,
                Some((current, _)) => more_specific(&route.segments, &current.segments),
            };
            if better {
                best = Some((route, params));
            }
        }
        match best {
            Some((route, params)) => Match::Found { route, params },
            None if !allowed.is_empty() => {
                allowed.sort_unstable();
                allowed.dedup();
                Match::MethodNotAllowed { allowed }
            }
            None => Match::NotFound,
        }
    }
}

/// True when `a` has a literal at the first segment where `a` and `b`
/// differ in kind.
fn more_specific(a: &[Segment], b: &[Segment]) -> bool {
    a.iter()
        .zip(b)
        .find_map(|pair| match pair {
            (Segment::Literal(_), Segment::Param(_)) => Some(true),
            (Segment::Param(_), Segment::Literal(_)) => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err("a pattern starts with '/'".to_owned());
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for piece in rest.split('/') {
        if piece.is_empty() {
            return Err("empty segment (a doubled or trailing '/')".to_owned());
        }
        if let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let valid = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(format!(
                    "parameter {{{name}}} is not a lowercase identifier"
                ));
            }
            if segments.contains(&Segment::Param(name.to_owned())) {
                return Err(format!("parameter {{{name}}} appears twice"));
            }
            segments.push(Segment::Param(name.to_owned()));
        } else if piece.contains(['{', '}']) {
            return Err(format!(
                "segment {piece:?} mixes text and braces; a parameter is a whole segment"
            ));
        } else {
            segments.push(Segment::Literal(piece.to_owned()));
        }
    }
    Ok(segments)
}

/// The captured parameters when `path` matches `segments` exactly.
fn match_segments<'p>(segments: &[Segment], path: &'p str) -> Option<Vec<(String, &'p str)>> {
    let rest = path.strip_prefix('/')?;
    let mut params = Vec::new();
    let mut pieces = rest.split('/');
    if segments.is_empty() {
        return rest.is_empty().then_some(params);
    }
    for segment in segments {
        let piece = pieces.next()?;
        match segment {
            Segment::Literal(literal) if literal == piece => {}
            Segment::Literal(_) => return None,
            Segment::Param(_) if piece.is_empty() => return None,
            Segment::Param(name) => params.push((name.clone(), piece)),
        }
    }
    pieces.next().is_none().then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn noop(_req: Request) -> Response {
        Response::text(StatusCode::OK, "")
    }

    fn router() -> Router {
        Router::new()
            .get("/v1/regions/{region}", noop)
            .get("/v1/regions/all", noop)
            .post("/v1/regions/{region}/fail", noop)
            .get("/v1/explain", noop)
            .get("/", noop)
    }

    fn found(r: &Router, method: Method, path: &str) -> Option<(String, Vec<(String, String)>)> {
        match r.find(&method, path) {
            Match::Found { route, params } => Some((
                route.pattern.clone(),
                params.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
            )),
            _ => None,
        }
    }

    #[test]
    fn matches_literals_and_parameters() {
        let r = router();
        assert_eq!(
            found(&r, Method::GET, "/v1/regions/eu-west"),
            Some((
                "/v1/regions/{region}".into(),
                vec![("region".into(), "eu-west".into())]
            ))
        );
        assert_eq!(
            found(&r, Method::GET, "/v1/regions/all").unwrap().0,
            "/v1/regions/all"
        );
        assert_eq!(
            found(&r, Method::POST, "/v1/regions/us-east/fail")
                .unwrap()
                .1,
            [("region".to_owned(), "us-east".to_owned())]
        );
        assert_eq!(found(&r, Method::GET, "/").unwrap().0, "/");
        assert!(found(&r, Method::GET, "/healthz").is_some());
        for missing in [
            "/v1/regions/",
            "/v1/regions",
            "/v1/regions/a/b",
            "/v1//x",
            "",
            "x",
        ] {
            assert!(
                matches!(r.find(&Method::GET, missing), Match::NotFound),
                "{missing:?}"
            );
        }
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let r = router();
        match r.find(&Method::GET, "/v1/regions/eu/fail") {
            Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["POST"]),
            _ => panic!("expected 405"),
        }
        match r.find(&Method::DELETE, "/v1/regions/all") {
            Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["GET"]),
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (pattern, message) in [
            ("v1", "starts with '/'"),
            ("/v1/", "empty segment"),
            ("/v1//x", "empty segment"),
            ("/v1/{Region}", "lowercase identifier"),
            ("/v1/{}", "lowercase identifier"),
            ("/v1/{a}/{a}", "twice"),
            ("/v1/x{a}", "mixes text"),
        ] {
            let error = parse_pattern(pattern).unwrap_err();
            assert!(error.contains(message), "{pattern}: {error}");
        }
    }

    #[test]
    #[should_panic(expected = "duplicates")]
    fn duplicate_routes_panic_at_start_up() {
        let _ = Router::new().get("/v1/{a}", noop).get("/v1/{b}", noop);
    }

    #[test]
    fn same_path_different_methods_is_fine() {
        let r = Router::new().get("/v1/x", noop).post("/v1/x", noop);
        let routes: Vec<_> = r.routes().map(|(m, p, a)| (m.clone(), p, a)).collect();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[2], (Method::POST, "/v1/x", Access::Mutate));
    }
}
