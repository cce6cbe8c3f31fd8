//! The L7 tier: TLS-terminating HTTP proxies routing to backend pools.
//!
//! Everything the proxy can be told lives here: the listener (PROXY
//! protocol, TLS, HTTP/2), timeouts, limits and the per-client rate limit,
//! the routes, and the pools with their balancing, health, outlier
//! ejection, sticky cookie and retry settings. Each field has a documented
//! default (see `docs/topology.md`), so a minimal `l7:` block is just nodes,
//! one route and one pool.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::duration::parse_duration;
use crate::field::{Problems, Scalar};
use crate::health::{self, HealthCheck, RawHealthCheck};
use crate::status::parse_status_set;
use crate::tiers::socket_addr;
use route::is_token;

mod route;

pub use route::{
    Action, Expect, FieldMatch, Forward, HeaderRules, PathRegex, Piece, RawFieldMatch,
    RawHeaderRules, RawRedirect, RawRespond, RawRoute, Redirect, Respond, Route,
    TEMPLATE_VARIABLES, Template, Variable, parse_size, parse_template,
};

/// The path the L7 proxies answer themselves with the region's health.
pub const DEFAULT_HEALTH_PATH: &str = "/.well-known/gtm/health";

/// The sticky cookie's name unless configured.
pub const DEFAULT_STICKY_COOKIE: &str = "GTMSTICKY";

/// `l7:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL7 {
    /// The L7 nodes.
    pub nodes: Vec<RawL7Node>,
    /// Path answered by the proxy itself: 200 while its pools can serve.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Every connection starts with a PROXY protocol header (the L4 tier
    /// sends one); a connection without a valid one is closed.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Serve HTTP/2 (ALPN `h2` over TLS, prior knowledge on plain HTTP).
    #[serde(default)]
    pub http2: Option<bool>,
    /// Add `Via: 1.1 NODE` to requests and responses.
    #[serde(default)]
    pub via: bool,
    /// Serve plain HTTP/1.1 requests with the proxy's own HTTP/1.1 path
    /// (default on); `false` sends every request through hyper, for
    /// comparison or as an escape hatch.
    #[serde(default)]
    pub http1_fast_path: Option<bool>,
    /// How each request is logged.
    #[serde(default)]
    pub access_log: Option<RawAccessLog>,
    /// Certificates for the HTTPS port.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    /// Size and concurrency limits.
    #[serde(default)]
    pub limits: Option<RawLimits>,
    /// Per-client-address request rate limit.
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    /// Ordered routing rules; the first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Backend pools by name.
    #[serde(default)]
    pub pools: IndexMap<String, RawPool>,
}

/// `access_log:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// `text` (default: a log line at target `gtm::access` on stderr) or
    /// `json` (one JSON object per request on stdout).
    #[serde(default)]
    pub format: Option<String>,
}

/// One L7 node as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawL7Node {
    /// Unique name.
    pub name: String,
    /// Address it listens on, at the VIP's ports.
    pub address: Scalar,
    /// Admin API address (metrics, status).
    pub admin: Scalar,
    /// The host it runs on (see `hosts:`).
    #[serde(default)]
    pub host: Option<String>,
}

/// `tls:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Certificate chains and keys; chosen by SNI from their names.
    pub certs: Vec<RawCert>,
    /// Lowest protocol version: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<Scalar>,
    /// Stateless session resumption with tickets (default true); the
    /// in-memory session cache is always on.
    #[serde(default)]
    pub session_tickets: Option<bool>,
    /// The region's shared session-ticket keys (a file, relative to the
    /// topology file), so a ticket made by one node resumes on another.
    #[serde(default)]
    pub ticket_keys: Option<PathBuf>,
}

/// One certificate as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `timeouts:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// Connecting to a backend server (default `2s`).
    #[serde(default)]
    pub connect: Option<Scalar>,
    /// Receiving a request's headers, from the connection's first byte or
    /// the end of the previous request (default `10s`).
    #[serde(default)]
    pub request_headers: Option<Scalar>,
    /// The longest pause between two pieces of a request's body (default
    /// `30s`).
    #[serde(default)]
    pub request_body: Option<Scalar>,
    /// A backend's response headers after the request was sent, and the
    /// longest pause between two pieces of its response body (default `30s`).
    #[serde(default)]
    pub response: Option<Scalar>,
    /// A client connection with no request in flight (default `60s`).
    #[serde(default)]
    pub idle: Option<Scalar>,
    /// A pooled backend connection with no request (default `60s`).
    #[serde(default)]
    pub upstream_idle: Option<Scalar>,
    /// Grace period for requests in flight at shutdown (default `10s`).
    #[serde(default)]
    pub drain: Option<Scalar>,
}

/// `limits:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent requests per listener; more get 503 (default 10000).
    #[serde(default)]
    pub max_requests: Option<u32>,
    /// Concurrent connections per client address; more are closed at
    /// accept (default 1000, 0 = no limit).
    #[serde(default)]
    pub max_connections_per_client: Option<u32>,
    /// Request header fields (default 100); more get 431.
    #[serde(default)]
    pub max_header_count: Option<u32>,
    /// Bytes of request line and headers (default 65536); more get 431.
    #[serde(default)]
    pub max_header_bytes: Option<u32>,
    /// Concurrent streams per HTTP/2 connection (default 100).
    #[serde(default)]
    pub max_h2_streams: Option<u32>,
    /// Largest request body of every route without its own `max_body`
    /// (bytes, or with a unit: `10MiB`; default no limit); more get 413.
    #[serde(default)]
    pub max_body: Option<Scalar>,
}

/// `rate_limit:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests allowed per `per` and client address.
    pub requests: u32,
    /// The period (default `1s`).
    #[serde(default)]
    pub per: Option<Scalar>,
    /// Requests a client may send at once (default `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// One pool as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// `p2c` (default), `round_robin`, `least_conn`, `least_time`, `hash`,
    /// `random`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// What `hash` hashes: `client_ip` (default), `header:NAME` or
    /// `cookie:NAME`.
    #[serde(default)]
    pub hash_on: Option<String>,
    /// How requests reach the servers: `http1` (default), `h2c` (HTTP/2
    /// over plain TCP) or `h2` (HTTP/2 over TLS, needs `tls:`).
    #[serde(default)]
    pub protocol: Option<String>,
    /// TLS to the servers (re-encryption); absent: plain TCP.
    #[serde(default)]
    pub tls: Option<RawBackendTls>,
    /// The servers.
    pub servers: Vec<RawServer>,
    /// Active health check of each server (default HTTP GET /, or a TCP
    /// connect for `h2c` pools).
    #[serde(default)]
    pub health: Option<RawHealthCheck>,
    /// Ramp a server's share up over this long after it becomes healthy
    /// (default `0s`: off).
    #[serde(default)]
    pub slow_start: Option<Scalar>,
    /// When to stop trusting health and balance over every primary:
    /// `true` (default) when none is available, `"50%"` when fewer than
    /// that share are (Envoy's panic threshold), `false` never.
    #[serde(default)]
    pub fail_open: Option<Scalar>,
    /// The region health path fails while this routed pool has no
    /// available server (default true).
    #[serde(default)]
    pub critical: Option<bool>,
    /// Concurrent requests per server; more get 503 (default: no limit).
    #[serde(default)]
    pub max_requests_per_server: Option<u32>,
    /// Passive outlier ejection.
    #[serde(default)]
    pub outlier: Option<RawOutlier>,
    /// Sticky sessions by cookie.
    #[serde(default)]
    pub sticky: Option<RawSticky>,
    /// Retries of idempotent requests.
    #[serde(default)]
    pub retries: Option<RawRetries>,
}

/// `tls:` of a pool as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTls {
    /// PEM file of the CA certificates the servers' certificates must
    /// chain to (default: the system's trust store).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Name sent as SNI and checked against the servers' certificates
    /// (default: none sent, the certificate must name the server's IP).
    #[serde(default)]
    pub sni: Option<String>,
    /// PEM client certificate chain, for servers that require one (mTLS).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (mode 600 or stricter).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Accept any server certificate (logged as a warning): lab set-ups
    /// only.
    #[serde(default)]
    pub insecure: bool,
}

/// One server as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Its address.
    pub addr: Scalar,
    /// Relative weight (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Used only when no primary server is healthy.
    #[serde(default)]
    pub backup: bool,
}

/// `outlier:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlier {
    /// Consecutive 5xx answers or connect failures that eject a server
    /// (default 5; 0 turns ejection off).
    #[serde(default)]
    pub failures: Option<u32>,
    /// First ejection period; doubles on each repeat (default `10s`).
    #[serde(default)]
    pub ejection: Option<Scalar>,
    /// Longest ejection period (default `5m`).
    #[serde(default)]
    pub max_ejection: Option<Scalar>,
}

/// `sticky:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSticky {
    /// Cookie name (default `GTMSTICKY`).
    #[serde(default)]
    pub cookie: Option<String>,
    /// Cookie `Path` (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Cookie `Max-Age` (default: a session cookie).
    #[serde(default)]
    pub max_age: Option<Scalar>,
    /// `Secure` attribute (default false).
    #[serde(default)]
    pub secure: bool,
    /// `HttpOnly` attribute (default true).
    #[serde(default)]
    pub http_only: Option<bool>,
    /// `SameSite`: `lax` (default), `strict` or `none`.
    #[serde(default)]
    pub same_site: Option<String>,
}

/// `retries:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// Extra attempts after the first (default 1; 0 turns retries off).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Statuses retried besides connect failures (default `"502-504"`).
    #[serde(default)]
    pub statuses: Option<Scalar>,
    /// Retries allowed as a percentage of requests (default 20).
    #[serde(default)]
    pub budget_percent: Option<u32>,
    /// Retries always allowed per second, whatever the budget (default 10).
    #[serde(default)]
    pub min_per_second: Option<u32>,
    /// The first back-off before a retry (default `25ms`; `0s` is off).
    #[serde(default)]
    pub backoff: Option<Scalar>,
    /// The longest back-off (default `250ms`).
    #[serde(default)]
    pub max_backoff: Option<Scalar>,
}

/// The validated L7 tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L7Tier {
    /// The nodes.
    pub nodes: Vec<L7Node>,
    /// Path answered with the region's health.
    pub health_path: String,
    /// Connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// HTTP/2 served.
    pub http2: bool,
    /// `Via` added.
    pub via: bool,
    /// HTTP/1.1 requests served by the proxy's own fast path (hyper
    /// serves the rest, and everything when this is off).
    pub http1_fast_path: bool,
    /// How each request is logged.
    pub access_log: AccessLogFormat,
    /// TLS, when the HTTPS port is served.
    pub tls: Option<Tls>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Limits.
    pub limits: Limits,
    /// Per-client rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Routes in order.
    pub routes: Vec<Route>,
    /// Pools; routes refer to them by index.
    pub pools: Vec<Pool>,
}

/// One L7 node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L7Node {
    /// Unique name.
    pub name: String,
    /// Listen address (at the VIP's ports).
    pub address: IpAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    /// The host it runs on.
    pub host: Option<String>,
}

/// TLS settings of the HTTPS listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// Certificates, at least one; the first is served to clients that
    /// send no SNI or an unknown name.
    pub certs: Vec<Cert>,
    /// Lowest protocol version.
    pub min_version: TlsVersion,
    /// Session tickets on.
    pub session_tickets: bool,
    /// The region's shared ticket-key file (relative paths are relative to
    /// the topology file); `None`: each node makes its own rotating keys,
    /// so a ticket resumes only on the node that made it. Only set when
    /// `session_tickets` is on.
    pub ticket_keys: Option<PathBuf>,
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A certificate chain and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    /// PEM chain (relative paths are relative to the topology file).
    pub cert: PathBuf,
    /// PEM key (relative paths are relative to the topology file).
    pub key: PathBuf,
}

/// Timeouts of the L7 tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connect to a backend.
    pub connect: Duration,
    /// Receive a request's headers.
    pub request_headers: Duration,
    /// The longest pause between two pieces of a request's body.
    pub request_body: Duration,
    /// Receive a backend's response headers; also the longest pause
    /// between two pieces of its response body.
    pub response: Duration,
    /// Idle client connection.
    pub idle: Duration,
    /// Idle pooled backend connection.
    pub upstream_idle: Duration,
    /// Drain grace period.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request_headers: Duration::from_secs(10),
            request_body: Duration::from_secs(30),
            response: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            upstream_idle: Duration::from_secs(60),
            drain: Duration::from_secs(10),
        }
    }
}

/// Limits of the L7 tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent requests per listener.
    pub max_requests: u32,
    /// Concurrent connections per client address; 0 = no limit.
    pub max_connections_per_client: u32,
    /// Request header fields.
    pub max_header_count: u32,
    /// Bytes of request line and headers.
    pub max_header_bytes: u32,
    /// Concurrent streams per HTTP/2 connection.
    pub max_h2_streams: u32,
    /// Largest request body of a route without its own limit.
    pub max_body: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_requests: 10_000,
            max_connections_per_client: 1_000,
            max_header_count: 100,
            max_header_bytes: 65_536,
            max_h2_streams: 100,
            max_body: None,
        }
    }
}

/// A token bucket per client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per `per`.
    pub requests: u32,
    /// The refill period.
    pub per: Duration,
    /// Bucket size.
    pub burst: u32,
}

/// Load-balancing algorithm of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Power of two choices on in-flight requests × latency.
    P2c,
    /// Smooth weighted round robin.
    RoundRobin,
    /// Weighted least connections.
    LeastConn,
    /// Lowest peak-EWMA latency × (in-flight + 1), weighted.
    LeastTime,
    /// Consistent hashing.
    Hash,
    /// Uniform random.
    Random,
}

/// What the `hash` algorithm hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashOn {
    /// The client address (from the PROXY header when there is one).
    ClientIp,
    /// A request header's value (lowercase name); client address if absent.
    Header(String),
    /// A cookie's value; client address if absent.
    Cookie(String),
}

/// How the proxy speaks to a pool's servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendProtocol {
    /// HTTP/1.1 over keep-alive connections (ALPN `http/1.1` over TLS).
    Http1,
    /// HTTP/2 (gRPC needs it end to end): one multiplexed connection per
    /// server, with prior knowledge over plain TCP (`h2c`) or ALPN `h2`
    /// over TLS (`h2`).
    Http2,
}

/// TLS from the proxy to a pool's servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendTls {
    /// Which server certificates are accepted.
    pub trust: BackendTrust,
    /// SNI and the name the certificate must be valid for; `None`: no SNI,
    /// and the certificate must carry the server's IP address (IP SAN).
    pub sni: Option<String>,
    /// Client certificate and key presented to the servers (mTLS).
    pub client_cert: Option<Cert>,
}

/// Which certificates a pool's servers may present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendTrust {
    /// Those chaining to the system's trust store.
    SystemRoots,
    /// Those chaining to a CA in this PEM file (relative paths are
    /// relative to the topology file).
    CaFile(PathBuf),
    /// Any: no verification (`insecure: true`).
    Insecure,
}

/// A backend pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Hash input for [`Algorithm::Hash`].
    pub hash_on: HashOn,
    /// Protocol spoken to the servers.
    pub protocol: BackendProtocol,
    /// TLS to the servers, if on.
    pub tls: Option<BackendTls>,
    /// Servers.
    pub servers: Vec<Server>,
    /// Active health check.
    pub health: HealthCheck,
    /// Slow-start ramp; zero is off.
    pub slow_start: Duration,
    /// When the pool balances over every primary, available or not.
    pub fail_open: FailOpen,
    /// Counts for the region health path: while it is routed and has no
    /// available server, the region is down.
    pub critical: bool,
    /// Concurrent requests per server, if limited.
    pub max_requests_per_server: Option<u32>,
    /// Passive outlier ejection.
    pub outlier: Outlier,
    /// Sticky cookie, if on.
    pub sticky: Option<Sticky>,
    /// Retry policy.
    pub retries: Retries,
}

/// How the access log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// A `tracing` line at target `gtm::access` (stderr, with the log).
    #[default]
    Text,
    /// One JSON object per request and line, on stdout.
    Json,
}

/// When a pool stops trusting health and balances over every primary
/// (fails open, Envoy's "panic mode").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOpen {
    /// Never: with no server available, requests get 503.
    Off,
    /// When fewer than this percentage (0–100) of the primaries are
    /// available, and always when none is; `fail_open: true` is 0.
    Below(u8),
}

impl FailOpen {
    /// Whether a pool with `available` of its `total` primaries available
    /// fails open: the one rule of both `fail_open: true` and a threshold.
    pub fn panics(self, available: usize, total: usize) -> bool {
        match self {
            FailOpen::Off => false,
            FailOpen::Below(percent) => {
                available == 0 || available * 100 < usize::from(percent) * total
            }
        }
    }
}

impl Pool {
    /// HTTP/1.1 over plain TCP: what the proxy's own HTTP/1.1 fast path
    /// serves (hyper serves HTTP/2 and TLS pools).
    pub fn is_plain_http1(&self) -> bool {
        self.protocol == BackendProtocol::Http1 && self.tls.is_none()
    }
}

/// A pool member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Address.
    pub addr: SocketAddr,
    /// Weight, at least 1.
    pub weight: u32,
    /// Backup server.
    pub backup: bool,
}

/// Passive outlier ejection settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outlier {
    /// Consecutive failures that eject; 0 is off.
    pub failures: u32,
    /// First ejection period.
    pub ejection: Duration,
    /// Longest ejection period.
    pub max_ejection: Duration,
}

impl Default for Outlier {
    fn default() -> Self {
        Self {
            failures: 5,
            ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
        }
    }
}

/// Sticky-cookie settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sticky {
    /// Cookie name.
    pub cookie: String,
    /// `Path`.
    pub path: String,
    /// `Max-Age`, if not a session cookie.
    pub max_age: Option<Duration>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`.
    pub same_site: SameSite,
}

/// The cookie `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `Lax`.
    Lax,
    /// `Strict`.
    Strict,
    /// `None`.
    None,
}

/// Retry policy of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    /// Extra attempts after the first; 0 is off.
    pub attempts: u32,
    /// Statuses retried, inclusive ranges.
    pub statuses: Vec<(u16, u16)>,
    /// Retries as a percentage of requests.
    pub budget_percent: u32,
    /// Retries always allowed per second.
    pub min_per_second: u32,
    /// The back-off before the first retry; zero is off. Retry `n` waits
    /// a random time up to `backoff × 2^(n-1)`, at most `max_backoff`.
    pub backoff: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            attempts: 1,
            statuses: vec![(502, 504)],
            budget_percent: 20,
            min_per_second: 10,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// A duration field: default when absent, the problem recorded when bad.
fn duration_field(
    problems: &mut Problems,
    path: String,
    value: Option<&Scalar>,
    default: Duration,
) -> Duration {
    match value {
        None => default,
        Some(v) => problems
            .check(path, parse_duration(&v.text()))
            .unwrap_or(default),
    }
}

/// A period that grows up to a ceiling (`ejection` and `max_ejection`,
/// `backoff` and `max_backoff`), the fields `names` under `path`: each its
/// default when absent — the ceiling's at least the start — and a
/// ceiling written shorter than the start refused.
fn start_and_ceiling(
    problems: &mut Problems,
    path: &str,
    names: [&str; 2],
    values: [Option<&Scalar>; 2],
    defaults: [Duration; 2],
) -> (Duration, Duration) {
    let start = duration_field(
        problems,
        format!("{path}.{}", names[0]),
        values[0],
        defaults[0],
    );
    let ceiling = duration_field(
        problems,
        format!("{path}.{}", names[1]),
        values[1],
        defaults[1].max(start),
    );
    if ceiling < start {
        problems.add(
            format!("{path}.{}", names[1]),
            format!(
                "{ceiling:?} is shorter than `{}` ({start:?}); write at least that",
                names[0]
            ),
        );
    }
    (start, ceiling)
}

/// Checks a cookie name (an RFC 6265 token, same as a header name).
fn is_cookie_name(name: &str) -> bool {
    is_token(name)
}

pub(crate) fn validate(raw: &RawL7, path: &str, problems: &mut Problems) -> L7Tier {
    if raw.nodes.is_empty() {
        problems.add(
            format!("{path}.nodes"),
            "no L7 nodes; add { name: l7a, address: 127.0.1.11, admin: \"127.0.1.11:9100\" }",
        );
    }
    let nodes = raw
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let npath = format!("{path}.nodes[{index}]");
            let text = node.address.text();
            let address = problems.check(
                format!("{npath}.address"),
                text.parse::<IpAddr>()
                    .map_err(|_| format!("{text:?} is not an IP address; write e.g. 127.0.1.11")),
            );
            let admin = socket_addr(&node.admin, &format!("{npath}.admin"), problems);
            Some(L7Node {
                name: node.name.clone(),
                address: address?,
                admin: admin?,
                host: node.host.clone(),
            })
        })
        .collect();
    let health_path = raw
        .health_path
        .clone()
        .unwrap_or_else(|| DEFAULT_HEALTH_PATH.to_owned());
    if !health_path.starts_with('/') {
        problems.add(format!("{path}.health_path"), "must start with '/'");
    }
    let tls = raw
        .tls
        .as_ref()
        .map(|tls| validate_tls(tls, &format!("{path}.tls"), problems));
    let timeouts = validate_timeouts(
        raw.timeouts.as_ref().unwrap_or(&RawTimeouts::default()),
        &format!("{path}.timeouts"),
        problems,
    );
    let limits = validate_limits(
        raw.limits.as_ref().unwrap_or(&RawLimits::default()),
        &format!("{path}.limits"),
        problems,
    );
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .map(|rl| validate_rate_limit(rl, &format!("{path}.rate_limit"), problems));
    let pools = raw
        .pools
        .iter()
        .map(|(name, pool)| validate_pool(name, pool, &format!("{path}.pools.{name}"), problems))
        .collect();
    let pool_names: Vec<&str> = raw.pools.keys().map(String::as_str).collect();
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(index, route)| {
            route::validate_route(
                &pool_names,
                route,
                limits.max_body,
                &format!("{path}.routes[{index}]"),
                problems,
            )
        })
        .collect();
    L7Tier {
        nodes,
        health_path,
        proxy_protocol: raw.proxy_protocol,
        http2: raw.http2.unwrap_or(true),
        via: raw.via,
        http1_fast_path: raw.http1_fast_path.unwrap_or(true),
        access_log: access_log_format(raw.access_log.as_ref(), path, problems),
        tls,
        timeouts,
        limits,
        rate_limit,
        routes,
        pools,
    }
}

fn validate_tls(tls: &RawTls, path: &str, problems: &mut Problems) -> Tls {
    if tls.certs.is_empty() {
        problems.add(
            format!("{path}.certs"),
            "no certificates; add { cert: certs/example.com.pem, key: certs/example.com.key }",
        );
    }
    let min_version = match tls.min_version.as_ref().map(Scalar::text).as_deref() {
        None | Some("1.2") => TlsVersion::Tls12,
        Some("1.3") => TlsVersion::Tls13,
        Some(other) => {
            problems.add(
                format!("{path}.min_version"),
                format!(
                    "{other:?} is not a supported TLS version; write \"1.2\" or \"1.3\" (older versions are refused)"
                ),
            );
            TlsVersion::Tls12
        }
    };
    let session_tickets = tls.session_tickets.unwrap_or(true);
    if tls.ticket_keys.is_some() && !session_tickets {
        problems.add(
            format!("{path}.ticket_keys"),
            "shared ticket keys need session tickets; drop `session_tickets: false` or `ticket_keys`",
        );
    }
    Tls {
        certs: tls
            .certs
            .iter()
            .map(|c| Cert {
                cert: c.cert.clone(),
                key: c.key.clone(),
            })
            .collect(),
        min_version,
        session_tickets,
        ticket_keys: tls.ticket_keys.clone(),
    }
}

fn validate_timeouts(raw: &RawTimeouts, path: &str, problems: &mut Problems) -> Timeouts {
    let d = Timeouts::default();
    let mut field = |name: &str, value: Option<&Scalar>, default: Duration| {
        let value = duration_field(problems, format!("{path}.{name}"), value, default);
        if value.is_zero() {
            problems.add(
                format!("{path}.{name}"),
                format!(
                    "must be longer than 0s; write e.g. \"{}s\"",
                    default.as_secs()
                ),
            );
        }
        value
    };
    Timeouts {
        connect: field("connect", raw.connect.as_ref(), d.connect),
        request_headers: field(
            "request_headers",
            raw.request_headers.as_ref(),
            d.request_headers,
        ),
        request_body: field("request_body", raw.request_body.as_ref(), d.request_body),
        response: field("response", raw.response.as_ref(), d.response),
        idle: field("idle", raw.idle.as_ref(), d.idle),
        upstream_idle: field("upstream_idle", raw.upstream_idle.as_ref(), d.upstream_idle),
        drain: field("drain", raw.drain.as_ref(), d.drain),
    }
}

fn validate_limits(raw: &RawLimits, path: &str, problems: &mut Problems) -> Limits {
    let d = Limits::default();
    let max_body = raw
        .max_body
        .as_ref()
        .and_then(|size| problems.check(format!("{path}.max_body"), route::parse_size(size)));
    let mut at_least = |name: &str, value: Option<u32>, default: u32, min: u32| {
        let value = value.unwrap_or(default);
        if value < min {
            problems.add(
                format!("{path}.{name}"),
                format!("{value} is too small; write at least {min} (default {default})"),
            );
        }
        value
    };
    Limits {
        max_requests: at_least("max_requests", raw.max_requests, d.max_requests, 1),
        max_connections_per_client: raw
            .max_connections_per_client
            .unwrap_or(d.max_connections_per_client),
        max_header_count: at_least(
            "max_header_count",
            raw.max_header_count,
            d.max_header_count,
            8,
        ),
        max_header_bytes: at_least(
            "max_header_bytes",
            raw.max_header_bytes,
            d.max_header_bytes,
            // hyper's HTTP/1 read buffer cannot be smaller than this.
            8192,
        ),
        max_h2_streams: at_least("max_h2_streams", raw.max_h2_streams, d.max_h2_streams, 1),
        max_body,
    }
}

fn validate_rate_limit(raw: &RawRateLimit, path: &str, problems: &mut Problems) -> RateLimit {
    if raw.requests == 0 {
        problems.add(
            format!("{path}.requests"),
            "must be at least 1; remove `rate_limit:` to turn the limit off",
        );
    }
    let per = duration_field(
        problems,
        format!("{path}.per"),
        raw.per.as_ref(),
        Duration::from_secs(1),
    );
    if per.is_zero() {
        problems.add(
            format!("{path}.per"),
            "must be longer than 0s; write e.g. \"1s\"",
        );
    }
    let burst = raw.burst.unwrap_or(raw.requests);
    if burst == 0 {
        problems.add(format!("{path}.burst"), "must be at least 1");
    }
    RateLimit {
        requests: raw.requests,
        per,
        burst,
    }
}

fn validate_pool(name: &str, pool: &RawPool, ppath: &str, problems: &mut Problems) -> Pool {
    let algorithm = match pool.algorithm.as_deref() {
        None | Some("p2c") => Algorithm::P2c,
        Some("round_robin") => Algorithm::RoundRobin,
        Some("least_conn") => Algorithm::LeastConn,
        Some("least_time") => Algorithm::LeastTime,
        Some("hash") => Algorithm::Hash,
        Some("random") => Algorithm::Random,
        Some(other) => {
            problems.add(
                format!("{ppath}.algorithm"),
                format!(
                    "unknown algorithm {other:?}; use p2c, round_robin, least_conn, least_time, hash or random"
                ),
            );
            Algorithm::P2c
        }
    };
    let hash_on = match pool.hash_on.as_deref() {
        None | Some("client_ip") => HashOn::ClientIp,
        Some(text) => {
            let parsed = match text.split_once(':') {
                Some(("header", h)) if is_token(h) => Some(HashOn::Header(h.to_ascii_lowercase())),
                Some(("cookie", c)) if is_cookie_name(c) => Some(HashOn::Cookie(c.to_owned())),
                _ => None,
            };
            parsed.unwrap_or_else(|| {
                problems.add(
                    format!("{ppath}.hash_on"),
                    format!(
                        "{text:?} is not a hash input; write client_ip, \"header:X-User\" or \"cookie:session\""
                    ),
                );
                HashOn::ClientIp
            })
        }
    };
    let protocol = match (pool.protocol.as_deref(), &pool.tls) {
        (None | Some("http1"), _) => BackendProtocol::Http1,
        (Some("h2c"), None) | (Some("h2"), Some(_)) => BackendProtocol::Http2,
        (Some("h2c"), Some(_)) => {
            problems.add(
                format!("{ppath}.protocol"),
                "h2c is HTTP/2 over plain TCP; write `protocol: h2` for HTTP/2 over TLS",
            );
            BackendProtocol::Http2
        }
        (Some("h2"), None) => {
            problems.add(
                format!("{ppath}.protocol"),
                "h2 is HTTP/2 over TLS; add `tls:` to the pool, or write `protocol: h2c` for plain TCP",
            );
            BackendProtocol::Http2
        }
        (Some(other), _) => {
            problems.add(
                format!("{ppath}.protocol"),
                format!("unknown protocol {other:?}; use http1, h2c or h2 (with `tls:`)"),
            );
            BackendProtocol::Http1
        }
    };
    let tls = pool
        .tls
        .as_ref()
        .map(|tls| validate_backend_tls(tls, &format!("{ppath}.tls"), problems));
    if pool.hash_on.is_some() && algorithm != Algorithm::Hash {
        problems.add(
            format!("{ppath}.hash_on"),
            "only the hash algorithm uses it; add `algorithm: hash` or remove `hash_on:`",
        );
    }
    if pool.servers.is_empty() {
        problems.add(
            format!("{ppath}.servers"),
            "no servers; add { addr: \"127.0.1.101:9000\" }",
        );
    }
    let servers: Vec<Server> = pool
        .servers
        .iter()
        .enumerate()
        .filter_map(|(index, server)| {
            let spath = format!("{ppath}.servers[{index}]");
            let weight = server.weight.unwrap_or(1);
            if weight == 0 {
                problems.add(
                    format!("{spath}.weight"),
                    "must be at least 1 (remove the server to take it out)",
                );
            }
            Some(Server {
                addr: socket_addr(&server.addr, &format!("{spath}.addr"), problems)?,
                weight,
                backup: server.backup,
            })
        })
        .collect();
    for (index, server) in servers.iter().enumerate() {
        if servers[..index].iter().any(|s| s.addr == server.addr) {
            problems.add(
                format!("{ppath}.servers[{index}].addr"),
                format!(
                    "{} is listed twice; raise the first one's weight instead",
                    server.addr
                ),
            );
        }
    }
    if !servers.is_empty() && servers.iter().all(|s| s.backup) {
        problems.add(
            format!("{ppath}.servers"),
            "every server is a backup; make at least one a primary (remove `backup: true`)",
        );
    }
    let slow_start = duration_field(
        problems,
        format!("{ppath}.slow_start"),
        pool.slow_start.as_ref(),
        Duration::ZERO,
    );
    if pool.max_requests_per_server == Some(0) {
        problems.add(
            format!("{ppath}.max_requests_per_server"),
            "must be at least 1; remove it for no limit",
        );
    }
    let outlier = pool.outlier.as_ref().map_or_else(Outlier::default, |o| {
        let d = Outlier::default();
        let opath = format!("{ppath}.outlier");
        let (ejection, max_ejection) = start_and_ceiling(
            problems,
            &opath,
            ["ejection", "max_ejection"],
            [o.ejection.as_ref(), o.max_ejection.as_ref()],
            [d.ejection, d.max_ejection],
        );
        if ejection.is_zero() {
            problems.add(
                format!("{opath}.ejection"),
                "must be longer than 0s; set `failures: 0` to turn ejection off",
            );
        }
        Outlier {
            failures: o.failures.unwrap_or(d.failures),
            ejection,
            max_ejection,
        }
    });
    let sticky = pool
        .sticky
        .as_ref()
        .map(|s| validate_sticky(s, &format!("{ppath}.sticky"), problems));
    let retries = pool.retries.as_ref().map_or_else(Retries::default, |r| {
        let d = Retries::default();
        let rpath = format!("{ppath}.retries");
        let statuses = match &r.statuses {
            None => d.statuses.clone(),
            Some(text) => problems
                .check(format!("{rpath}.statuses"), parse_status_set(&text.text()))
                .map(|set| set.ranges().to_vec())
                .unwrap_or_default(),
        };
        let budget_percent = r.budget_percent.unwrap_or(d.budget_percent);
        if budget_percent > 100 {
            problems.add(
                format!("{rpath}.budget_percent"),
                format!("{budget_percent} is over 100; write a percentage such as 20"),
            );
        }
        let (backoff, max_backoff) = start_and_ceiling(
            problems,
            &rpath,
            ["backoff", "max_backoff"],
            [r.backoff.as_ref(), r.max_backoff.as_ref()],
            [d.backoff, d.max_backoff],
        );
        Retries {
            attempts: r.attempts.unwrap_or(d.attempts),
            statuses,
            budget_percent,
            min_per_second: r.min_per_second.unwrap_or(d.min_per_second),
            backoff,
            max_backoff,
        }
    });
    // An HTTP/2 server may speak no HTTP/1.1 (gRPC servers do not), so
    // its default check is a connect.
    let tcp_check = RawHealthCheck {
        kind: Some("tcp".to_owned()),
        ..RawHealthCheck::default()
    };
    let health = match (&pool.health, protocol) {
        (None, BackendProtocol::Http2) => Some(&tcp_check),
        (health, _) => health.as_ref(),
    };
    if let (Some(_), Some(check)) = (&pool.tls, &pool.health)
        && (check.ca.is_some() || check.insecure)
    {
        problems.add(
            format!("{ppath}.health"),
            "a TLS pool's checks verify as its `tls:` says; move `ca:`/`insecure:` to the pool's `tls:`",
        );
    }
    Pool {
        name: name.to_owned(),
        algorithm,
        hash_on,
        protocol,
        tls,
        servers,
        health: health::validate(
            health,
            "/",
            (protocol != BackendProtocol::Http2).then_some(
                "a grpc check speaks HTTP/2 to the servers; set the pool's `protocol: h2c` (or `h2` with `tls:`)",
            ),
            &format!("{ppath}.health"),
            problems,
        ),
        slow_start,
        fail_open: fail_open(
            pool.fail_open.as_ref(),
            &format!("{ppath}.fail_open"),
            problems,
        ),
        critical: pool.critical.unwrap_or(true),
        max_requests_per_server: pool.max_requests_per_server,
        outlier,
        sticky,
        retries,
    }
}

/// `access_log.format:` — `text` (default) or `json`.
fn access_log_format(
    raw: Option<&RawAccessLog>,
    path: &str,
    problems: &mut Problems,
) -> AccessLogFormat {
    match raw.and_then(|r| r.format.as_deref()) {
        None | Some("text") => AccessLogFormat::Text,
        Some("json") => AccessLogFormat::Json,
        Some(other) => {
            problems.add(
                format!("{path}.access_log.format"),
                format!("unknown format {other:?}; write text or json"),
            );
            AccessLogFormat::Text
        }
    }
}

/// `fail_open:` — `true` (default), `false` or a percentage `"N%"`.
fn fail_open(raw: Option<&Scalar>, path: &str, problems: &mut Problems) -> FailOpen {
    let parsed = match raw {
        None | Some(Scalar::Bool(true)) => Some(FailOpen::Below(0)),
        Some(Scalar::Bool(false)) => Some(FailOpen::Off),
        Some(Scalar::Text(text)) => text
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u8>().ok())
            .filter(|&n| n <= 100)
            .map(FailOpen::Below),
        Some(_) => None,
    };
    parsed.unwrap_or_else(|| {
        problems.add(
            path.to_owned(),
            format!(
                "{:?} is not true, false or a percentage from 0% to 100%; write \"50%\" to balance over every server when fewer than half are healthy",
                raw.map(Scalar::text).unwrap_or_default()
            ),
        );
        FailOpen::Below(0)
    })
}

fn validate_backend_tls(raw: &RawBackendTls, path: &str, problems: &mut Problems) -> BackendTls {
    let trust = match (&raw.ca, raw.insecure) {
        (Some(ca), insecure) => {
            if insecure {
                problems.add(
                    format!("{path}.insecure"),
                    "set either `ca:` or `insecure: true`, not both",
                );
            }
            BackendTrust::CaFile(ca.clone())
        }
        (None, true) => BackendTrust::Insecure,
        (None, false) => BackendTrust::SystemRoots,
    };
    if let Some(sni) = &raw.sni
        && !health::is_dns_name(sni)
    {
        problems.add(
            format!("{path}.sni"),
            format!(
                "{sni:?} is not a DNS name; write e.g. \"api.internal.example\" (leave it out to verify the server's IP address)"
            ),
        );
    }
    let client_cert = match (&raw.cert, &raw.key) {
        (Some(cert), Some(key)) => Some(Cert {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            problems.add(
                format!("{path}.key"),
                "a client certificate needs its key; add `key: certs/client.key`",
            );
            None
        }
        (None, Some(_)) => {
            problems.add(
                format!("{path}.cert"),
                "a client key needs its certificate; add `cert: certs/client.pem`",
            );
            None
        }
    };
    BackendTls {
        trust,
        sni: raw.sni.clone(),
        client_cert,
    }
}

fn validate_sticky(raw: &RawSticky, path: &str, problems: &mut Problems) -> Sticky {
    let cookie = raw
        .cookie
        .clone()
        .unwrap_or_else(|| DEFAULT_STICKY_COOKIE.to_owned());
    if !is_cookie_name(&cookie) {
        problems.add(
            format!("{path}.cookie"),
            format!("{cookie:?} is not a cookie name; write letters, digits, '-' or '_' such as \"GTMSTICKY\""),
        );
    }
    let cookie_path = raw.path.clone().unwrap_or_else(|| "/".to_owned());
    if !cookie_path.starts_with('/') || cookie_path.contains(';') {
        problems.add(
            format!("{path}.path"),
            format!("{cookie_path:?} must start with '/' and have no ';'"),
        );
    }
    let max_age = raw
        .max_age
        .as_ref()
        .and_then(|v| problems.check(format!("{path}.max_age"), parse_duration(&v.text())));
    let same_site = match raw.same_site.as_deref() {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(other) => {
            problems.add(
                format!("{path}.same_site"),
                format!("unknown SameSite {other:?}; use lax, strict or none"),
            );
            SameSite::Lax
        }
    };
    if same_site == SameSite::None && !raw.secure {
        problems.add(
            format!("{path}.same_site"),
            "browsers drop `SameSite=None` cookies without `Secure`; add `secure: true`",
        );
    }
    Sticky {
        cookie,
        path: cookie_path,
        max_age,
        secure: raw.secure,
        http_only: raw.http_only.unwrap_or(true),
        same_site,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Validates `yaml` as the `l7:` block of a one-region topology;
    /// problems come back as `l7.PATH: message`.
    fn parse(yaml: &str) -> Result<L7Tier, Vec<String>> {
        let indented: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
        let text = format!(
            "dns:
  nodes: [{{ name: ns1, listen: [\"127.0.0.1:5353\"] }}]
  zones:
    - origin: example.com.
      soa: {{ mname: ns1.example.com., rname: hostmaster@example.com }}
      records:
        - {{ name: \"@\", type: NS, value: ns1.example.com. }}
        - {{ name: ns1, type: A, value: 127.0.0.1 }}
regions:
  r:
    location: {{ lat: 0, lon: 0 }}
    vip: {{ ipv4: 127.0.0.1 }}
    l7:
{indented}"
        );
        match crate::parse(&text, "test.yaml") {
            Ok(mut topology) => Ok(topology.regions.remove(0).l7.expect("an l7 block")),
            Err(crate::LoadError::Invalid { problems, .. }) => Err(problems
                .into_iter()
                .map(|p| {
                    let path = p.problem.path.trim_start_matches("regions.r.");
                    format!("{path}: {}", p.problem.message)
                })
                .collect()),
            Err(other) => Err(vec![other.to_string()]),
        }
    }

    const MINIMAL: &str = "
nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
routes: [{ pool: web }]
pools:
  web:
    servers: [{ addr: \"127.0.0.1:9000\" }]
";

    #[test]
    fn a_minimal_tier_gets_every_default() {
        let tier = parse(MINIMAL).unwrap();
        assert!(!tier.proxy_protocol);
        assert!(tier.http2);
        assert!(tier.http1_fast_path);
        assert_eq!(tier.timeouts, Timeouts::default());
        assert_eq!(tier.limits, Limits::default());
        assert_eq!(tier.rate_limit, None);
        let pool = &tier.pools[0];
        assert_eq!(pool.algorithm, Algorithm::P2c);
        assert_eq!(pool.hash_on, HashOn::ClientIp);
        assert_eq!(pool.protocol, BackendProtocol::Http1);
        assert_eq!(pool.health.kind, crate::health::CheckKind::Http);
        assert_eq!(pool.fail_open, FailOpen::Below(0));
        assert!(pool.critical);
        assert_eq!(pool.outlier, Outlier::default());
        assert_eq!(pool.retries, Retries::default());
        assert_eq!(pool.slow_start, Duration::ZERO);
        assert_eq!(tier.routes[0].path, "/");
    }

    #[test]
    fn every_option_is_read() {
        let tier = parse(
            "
nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
proxy_protocol: true
http2: false
via: true
http1_fast_path: false
access_log: { format: json }
tls:
  certs: [{ cert: a.pem, key: a.key }]
  min_version: \"1.3\"
  session_tickets: false
timeouts: { connect: 1s, request_headers: 2s, request_body: 7s, response: 3s, idle: 4s, upstream_idle: 5s, drain: 6s }
limits: { max_requests: 7, max_connections_per_client: 0, max_header_count: 9, max_header_bytes: 10000, max_h2_streams: 11 }
rate_limit: { requests: 50, per: 10s, burst: 60 }
routes:
  - { host: \"*.Example.com\", path: /api, header: { name: X-Canary, value: 1 }, rewrite: /v2, pool: web }
pools:
  web:
    algorithm: hash
    hash_on: \"cookie:session\"
    protocol: h2c
    servers: [{ addr: \"127.0.0.1:9000\", weight: 3 }, { addr: \"127.0.0.1:9001\", backup: true }]
    slow_start: 30s
    fail_open: false
    critical: false
    max_requests_per_server: 12
    outlier: { failures: 3, ejection: 1s, max_ejection: 8s }
    sticky: { cookie: SRV, path: /app, max_age: 1h, secure: true, http_only: false, same_site: none }
    retries: { attempts: 2, statuses: \"500,502-504\", budget_percent: 50, min_per_second: 1, backoff: 10ms, max_backoff: 1s }
",
        )
        .unwrap();
        assert!(tier.proxy_protocol && !tier.http2 && tier.via && !tier.http1_fast_path);
        assert_eq!(tier.access_log, AccessLogFormat::Json);
        let tls = tier.tls.unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert!(!tls.session_tickets);
        assert_eq!(tier.timeouts.drain, Duration::from_secs(6));
        assert_eq!(tier.timeouts.request_body, Duration::from_secs(7));
        assert_eq!(tier.limits.max_h2_streams, 11);
        assert_eq!(
            tier.rate_limit,
            Some(RateLimit {
                requests: 50,
                per: Duration::from_secs(10),
                burst: 60
            })
        );
        let route = &tier.routes[0];
        assert_eq!(route.host.as_deref(), Some("*.example.com"));
        assert_eq!(
            route.header,
            Some(FieldMatch {
                name: "x-canary".into(),
                expect: Expect::Equals("1".into())
            })
        );
        assert_eq!(route.rewrite.as_deref(), Some("/v2"));
        let pool = &tier.pools[0];
        assert_eq!(pool.hash_on, HashOn::Cookie("session".into()));
        assert_eq!(pool.protocol, BackendProtocol::Http2);
        // An h2c server may not speak HTTP/1.1: its default check connects.
        assert_eq!(pool.health.kind, crate::health::CheckKind::Tcp);
        assert!(pool.servers[1].backup);
        assert!(!pool.critical);
        assert_eq!(pool.outlier.max_ejection, Duration::from_secs(8));
        let sticky = pool.sticky.as_ref().unwrap();
        assert_eq!(sticky.same_site, SameSite::None);
        assert_eq!(sticky.max_age, Some(Duration::from_secs(3600)));
        assert_eq!(pool.retries.statuses, [(500, 500), (502, 504)]);
        assert_eq!(pool.fail_open, FailOpen::Off);
        assert_eq!(
            (pool.retries.backoff, pool.retries.max_backoff),
            (Duration::from_millis(10), Duration::from_secs(1))
        );
    }

    #[test]
    fn fail_open_is_on_off_or_a_panic_threshold() {
        let pool_with = |value: &str| {
            parse(&format!(
                "nodes: [{{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }}]
routes: [{{ pool: web }}]
pools:
  web: {{ servers: [{{ addr: \"127.0.0.1:9000\" }}], fail_open: {value} }}
"
            ))
            .map(|tier| tier.pools[0].fail_open)
        };
        // (written, parsed)
        let good = [
            ("true", FailOpen::Below(0)),
            ("false", FailOpen::Off),
            ("\"50%\"", FailOpen::Below(50)),
            ("\"0%\"", FailOpen::Below(0)),
            ("\"100%\"", FailOpen::Below(100)),
        ];
        for (written, parsed) in good {
            assert_eq!(pool_with(written), Ok(parsed), "{written}");
        }
        for bad in ["\"101%\"", "50", "\"half\"", "\"-5%\""] {
            let problems = pool_with(bad).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("l7.pools.web.fail_open: ") && p.contains("\"50%\"")),
                "{bad}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_panic_rule_counts_available_primaries() {
        // (fail_open, available, total, panics)
        let cases = [
            (FailOpen::Off, 0, 3, false),
            (FailOpen::Below(0), 0, 3, true),
            (FailOpen::Below(0), 1, 3, false),
            (FailOpen::Below(50), 1, 3, true),
            (FailOpen::Below(50), 2, 4, false),
            (FailOpen::Below(50), 2, 3, false),
            (FailOpen::Below(100), 2, 3, true),
            (FailOpen::Below(100), 3, 3, false),
            (FailOpen::Below(50), 0, 0, true),
        ];
        for (fail_open, available, total, panics) in cases {
            assert_eq!(
                fail_open.panics(available, total),
                panics,
                "{fail_open:?} {available}/{total}"
            );
        }
    }

    #[test]
    fn a_back_off_longer_than_its_maximum_is_refused() {
        let problems = parse(
            "nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
routes: [{ pool: web }]
pools:
  web: { servers: [{ addr: \"127.0.0.1:9000\" }], retries: { backoff: 2s, max_backoff: 1s } }
",
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("l7.pools.web.retries.max_backoff: ")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_unknown_access_log_format_is_refused() {
        let problems = parse(&format!("{MINIMAL}access_log: {{ format: xml }}\n")).unwrap_err();
        assert_eq!(
            problems,
            ["l7.access_log.format: unknown format \"xml\"; write text or json"]
        );
    }

    #[test]
    fn a_grpc_check_asks_h2c_servers_about_a_service() {
        let yaml = MINIMAL.replace(
            "    servers:",
            "    protocol: h2c\n    health: { kind: grpc, service: demo.Echo }\n    servers:",
        );
        let health = &parse(&yaml).unwrap().pools[0].health;
        assert_eq!(health.kind, crate::health::CheckKind::Grpc);
        assert_eq!(health.service.as_deref(), Some("demo.Echo"));
        let http1 = MINIMAL.replace("    servers:", "    health: { kind: grpc }\n    servers:");
        assert_eq!(
            parse(&http1).unwrap_err(),
            [
                "l7.pools.web.health.kind: a grpc check speaks HTTP/2 to the servers; set the pool's `protocol: h2c` (or `h2` with `tls:`)"
            ]
        );
        let stray = MINIMAL.replace(
            "    servers:",
            "    health: { service: demo.Echo }\n    servers:",
        );
        assert_eq!(
            parse(&stray).unwrap_err(),
            [
                "l7.pools.web.health.service: only a grpc check asks about a service; set `kind: grpc` or remove `service:`"
            ]
        );
    }

    #[test]
    fn least_time_is_an_algorithm() {
        let yaml = MINIMAL.replace("    servers:", "    algorithm: least_time\n    servers:");
        assert_eq!(
            parse(&yaml).unwrap().pools[0].algorithm,
            Algorithm::LeastTime
        );
    }

    #[test]
    fn shared_ticket_keys_are_read_and_off_by_default() {
        let tier = parse(&format!(
            "{MINIMAL}tls: {{ certs: [{{ cert: a.pem, key: a.key }}], ticket_keys: certs/tickets.keys }}\n"
        ))
        .unwrap();
        let tls = tier.tls.unwrap();
        assert!(tls.session_tickets);
        assert_eq!(tls.ticket_keys, Some(PathBuf::from("certs/tickets.keys")));
        let tier = parse(&format!(
            "{MINIMAL}tls: {{ certs: [{{ cert: a.pem, key: a.key }}] }}\n"
        ))
        .unwrap();
        assert_eq!(tier.tls.unwrap().ticket_keys, None);
    }

    #[test]
    fn mistakes_are_reported_with_their_path_and_a_fix() {
        let problems = parse(
            "
nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
tls: { certs: [], min_version: \"1.0\", session_tickets: false, ticket_keys: tickets.keys }
timeouts: { connect: 2, idle: 0s }
limits: { max_header_bytes: 100 }
rate_limit: { requests: 0 }
routes:
  - { host: \"www.*.com\", path: api, header: { name: \"bad name\" }, rewrite: v2, pool: nope }
pools:
  web:
    algorithm: fastest
    hash_on: \"ip\"
    protocol: h3
    servers: [{ addr: \"127.0.0.1:9000\", backup: true }, { addr: \"127.0.0.1:9000\", backup: true }]
    slow_start: 10
    outlier: { ejection: 10s, max_ejection: 1s }
    sticky: { cookie: \"a b\", same_site: none }
    retries: { statuses: \"700\", budget_percent: 150 }
",
        )
        .unwrap_err();
        let expect = [
            "l7.tls.certs: no certificates",
            "l7.tls.min_version: \"1.0\" is not a supported TLS version; write \"1.2\" or \"1.3\"",
            "l7.tls.ticket_keys: shared ticket keys need session tickets",
            "l7.timeouts.connect: \"2\" has no unit; write \"2s\"",
            "l7.timeouts.idle: must be longer than 0s",
            "l7.limits.max_header_bytes: 100 is too small; write at least 8192",
            "l7.rate_limit.requests: must be at least 1",
            "l7.routes[0].pool: unknown pool \"nope\"; pools: web",
            "l7.routes[0].path: \"api\" must start with '/'",
            "l7.routes[0].host: \"www.*.com\" is not a host name",
            "l7.routes[0].header.name: \"bad name\" is not a header name",
            "l7.routes[0].rewrite: \"v2\" must start with '/'",
            "l7.pools.web.algorithm: unknown algorithm \"fastest\"",
            "l7.pools.web.hash_on: \"ip\" is not a hash input",
            "l7.pools.web.protocol: unknown protocol \"h3\"; use http1, h2c or h2",
            "l7.pools.web.servers[1].addr: 127.0.0.1:9000 is listed twice",
            "l7.pools.web.servers: every server is a backup",
            "l7.pools.web.slow_start: \"10\" has no unit",
            "l7.pools.web.outlier.max_ejection: 1s is shorter than `ejection`",
            "l7.pools.web.sticky.cookie: \"a b\" is not a cookie name",
            "l7.pools.web.sticky.same_site: browsers drop `SameSite=None` cookies without `Secure`",
            "l7.pools.web.retries.statuses: \"700\" is not an HTTP status",
            "l7.pools.web.retries.budget_percent: 150 is over 100",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn routes_match_on_more_and_act_in_three_ways() {
        let tier = parse(
            "
nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
limits: { max_body: 1MiB }
routes:
  - path: /items
    path_regex: \"^/items/[0-9]+$\"
    methods: [GET, HEAD]
    query: { name: v, value: 2 }
    cookie: { name: beta }
    header: { name: X-Debug, absent: true }
    pool: web
    max_body: 10KB
    request_headers: { set: { X-Env: prod }, add: { X-Tag: a }, remove: [X-Secret] }
    response_headers: { set: { Cache-Control: no-store } }
  - { host: www.example.com, scheme: http, redirect: { location: \"https://{host}{path}{query}\" } }
  - { path: /ping, respond: { status: 200, body: pong } }
pools:
  web:
    servers: [{ addr: \"127.0.0.1:9000\" }]
",
        )
        .unwrap();
        let [items, redirect, ping] = &tier.routes[..] else {
            panic!("three routes: {:?}", tier.routes);
        };
        assert_eq!(
            items.path_regex.as_ref().map(PathRegex::as_str),
            Some("^/items/[0-9]+$")
        );
        assert_eq!(items.methods, ["GET", "HEAD"]);
        assert_eq!(
            items.query,
            Some(FieldMatch {
                name: "v".into(),
                expect: Expect::Equals("2".into())
            })
        );
        assert_eq!(
            items.cookie,
            Some(FieldMatch {
                name: "beta".into(),
                expect: Expect::Present
            })
        );
        assert_eq!(
            items.header.as_ref().map(|h| &h.expect),
            Some(&Expect::Absent)
        );
        assert_eq!(items.max_body, Some(10_000));
        let Action::Forward(forward) = &items.action else {
            panic!("{:?}", items.action);
        };
        assert_eq!(
            forward.request_headers,
            HeaderRules {
                remove: vec!["x-secret".into()],
                set: vec![("x-env".into(), "prod".into())],
                add: vec![("x-tag".into(), "a".into())],
            }
        );
        assert_eq!(
            forward.response_headers.set,
            [("cache-control".to_owned(), "no-store".to_owned())]
        );
        // The tier's limit where the route sets none.
        assert_eq!(redirect.max_body, Some(1 << 20));
        assert_eq!(redirect.scheme.as_deref(), Some("http"));
        assert!(
            matches!(&redirect.action, Action::Redirect(r) if r.status == 301 && r.location.0.len() == 4)
        );
        assert_eq!(
            ping.action,
            Action::Respond(Respond {
                status: 200,
                body: "pong".into(),
                content_type: "text/plain; charset=utf-8".into()
            })
        );
    }

    #[test]
    fn route_mistakes_name_their_field() {
        let problems = parse(
            "
nodes: [{ name: a, address: 127.0.0.1, admin: \"127.0.0.1:9100\" }]
limits: { max_body: lots }
routes:
  - { path_regex: \"^/items/(\", methods: [\"G T\"], query: { name: v, value: 1, absent: true }, pool: web, max_body: 1.5MB }
  - { redirect: { status: 303, location: \"https://{hots}{path}\" } }
  - { respond: { status: 204, body: x }, rewrite: /x }
  - { pool: web, respond: { status: 200 } }
  - { pool: web, request_headers: { set: { Content-Length: 5, \"a b\": c } }, response_headers: { remove: [Transfer-Encoding] } }
  - { path: /, scheme: ftp }
pools:
  web:
    servers: [{ addr: \"127.0.0.1:9000\" }]
",
        )
        .unwrap_err();
        let expect = [
            "l7.limits.max_body: \"lots\" is not a size",
            "l7.routes[0].path_regex: \"^/items/(\" does not compile: regex parse error",
            "l7.routes[0].methods[0]: \"G T\" is not a method",
            "l7.routes[0].query.absent: a value cannot be matched on an absent field",
            "l7.routes[0].max_body: \"1.5MB\" is not a size",
            "l7.routes[1].redirect.status: 303 is not a redirect status; use 301, 302, 307 or 308",
            "l7.routes[1].redirect.location: unknown variable {hots}; variables: {scheme}, {host}, {path}, {query}",
            "l7.routes[2].respond.body: a 204 response has no body",
            "l7.routes[2].rewrite: only applies to a route with a `pool`",
            "l7.routes[3]: a route needs exactly one of `pool`, `redirect` or `respond` (has pool, respond)",
            "l7.routes[4].request_headers.set.Content-Length: \"Content-Length\" is the proxy's to set",
            "l7.routes[4].request_headers.set.a b: \"a b\" is not a header name",
            "l7.routes[4].response_headers.remove[0]: \"Transfer-Encoding\" is the proxy's to set",
            "l7.routes[5]: a route needs exactly one of `pool`, `redirect` or `respond` (has none)",
            "l7.routes[5].scheme: \"ftp\" is not a listener; write http or https",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing {e:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn backend_tls_is_read_with_its_defaults() {
        let tier = parse(&MINIMAL.replace(
            "    servers:",
            "    protocol: h2\n    tls: { ca: certs/ca.pem, sni: api.internal, cert: certs/c.pem, key: certs/c.key }\n    servers:",
        ))
        .unwrap();
        let pool = &tier.pools[0];
        assert_eq!(pool.protocol, BackendProtocol::Http2);
        assert!(!pool.is_plain_http1());
        assert_eq!(
            pool.tls,
            Some(BackendTls {
                trust: BackendTrust::CaFile("certs/ca.pem".into()),
                sni: Some("api.internal".into()),
                client_cert: Some(Cert {
                    cert: "certs/c.pem".into(),
                    key: "certs/c.key".into()
                }),
            })
        );
        let tier = parse(&MINIMAL.replace("    servers:", "    tls: {}\n    servers:")).unwrap();
        let pool = &tier.pools[0];
        assert_eq!(pool.protocol, BackendProtocol::Http1);
        assert_eq!(
            pool.tls,
            Some(BackendTls {
                trust: BackendTrust::SystemRoots,
                sni: None,
                client_cert: None
            })
        );
        let tier =
            parse(&MINIMAL.replace("    servers:", "    tls: { insecure: true }\n    servers:"))
                .unwrap();
        assert_eq!(
            tier.pools[0].tls.as_ref().unwrap().trust,
            BackendTrust::Insecure
        );
        assert!(parse(MINIMAL).unwrap().pools[0].is_plain_http1());
    }

    #[test]
    fn backend_tls_mistakes_are_reported_with_their_path_and_a_fix() {
        // (pool lines, expected problem)
        let cases = [
            (
                "tls: { ca: ca.pem, insecure: true }",
                "l7.pools.web.tls.insecure: set either `ca:` or `insecure: true`, not both",
            ),
            (
                "tls: { sni: \"10.0.0.1\" }",
                "l7.pools.web.tls.sni: \"10.0.0.1\" is not a DNS name",
            ),
            (
                "tls: { sni: \"bad name\" }",
                "l7.pools.web.tls.sni: \"bad name\" is not a DNS name",
            ),
            (
                "tls: { cert: c.pem }",
                "l7.pools.web.tls.key: a client certificate needs its key",
            ),
            (
                "tls: { key: c.key }",
                "l7.pools.web.tls.cert: a client key needs its certificate",
            ),
            (
                "protocol: h2",
                "l7.pools.web.protocol: h2 is HTTP/2 over TLS; add `tls:`",
            ),
            (
                "protocol: h2c\n    tls: {}",
                "l7.pools.web.protocol: h2c is HTTP/2 over plain TCP; write `protocol: h2`",
            ),
            (
                "tls: {}\n    health: { kind: https, ca: ca.pem }",
                "l7.pools.web.health: a TLS pool's checks verify as its `tls:` says",
            ),
        ];
        for (lines, expected) in cases {
            let yaml = MINIMAL.replace("    servers:", &format!("    {lines}\n    servers:"));
            let problems = parse(&yaml).unwrap_err();
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{lines}: missing {expected:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_in_every_new_block() {
        for block in [
            "timeouts: { connectt: 1s }",
            "limits: { max_request: 1 }",
            "rate_limit: { requests: 1, rps: 2 }",
            "tls: { certs: [], alpn: [h2] }",
        ] {
            let yaml = format!("{MINIMAL}{block}\n");
            let error = parse(&yaml).unwrap_err();
            assert!(error[0].contains("unknown field"), "{block}: {error:?}");
        }
        let yaml = MINIMAL.replace("    servers:", "    tls: { verify: false }\n    servers:");
        let error = parse(&yaml).unwrap_err();
        assert!(
            error[0].contains("pools.web.tls: unknown field `verify`"),
            "{error:?}"
        );
    }
}
