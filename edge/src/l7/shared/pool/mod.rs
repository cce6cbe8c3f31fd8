//! Pools at run time: the choice of a server for one attempt, and settling
//! what the attempt came to. Each server's live state (health, ejection,
//! load, latency, the operator's drain and weight) is `server`'s; what a
//! request brings to the choice (hash key, sticky cookie), `affinity`'s.
//!
//! The state is atomics, read lock-free by the request path. What combines
//! them — backups only when no primary is available, fail-open below the
//! pool's threshold, sticky servers, slow start, per-server limits,
//! operator drains and weights, exclusion of servers a retry already
//! tried — is decided here; which eligible server
//! wins is [`crate::l7::rules::balance`]'s job. The ejection back-off is a pure
//! function of the time, which the caller passes in milliseconds of a
//! monotonic clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use topology::tiers::l7::{Algorithm, Pool as PoolConfig};

use crate::l7::rules::balance::{self, Candidates, HashPicker, SmoothWrr, SplitMix64};
use crate::l7::rules::fault::Fault;
use crate::l7::rules::retry::{self, Attempted, Policy, RetryBudget};
use crate::l7::shared::metrics::Metrics;

mod affinity;
mod server;

pub use affinity::{Affinity, RequestAffinity};
pub use server::{EjectionHistory, InFlight, Outcome, ServerState, next_ejection};

/// Primaries or backups of a pool, with their balancer state.
#[derive(Debug)]
struct Group {
    servers: Vec<Arc<ServerState>>,
    wrr: Mutex<SmoothWrr>,
    hash: Option<HashPicker>,
}

impl Group {
    fn new(servers: Vec<Arc<ServerState>>, algorithm: Algorithm) -> Self {
        let hash = (algorithm == Algorithm::Hash && !servers.is_empty())
            .then(|| {
                let names: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
                // The configured weights: the table stays put when an
                // operator changes a weight, so keys do not move.
                let weights: Vec<u32> = servers.iter().map(|s| s.configured_weight).collect();
                HashPicker::new(&names, &weights).ok()
            })
            .flatten();
        Self {
            wrr: Mutex::new(SmoothWrr::new(servers.len())),
            servers,
            hash,
        }
    }
}

/// Whether a view counts health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only available servers.
    Healthy,
    /// Every server (fail-open).
    Any,
}

/// A group as the balancers see it at one instant.
struct View<'a> {
    servers: &'a [Arc<ServerState>],
    now_ms: u64,
    slow_start: Duration,
    mode: Mode,
    max_per_server: Option<u32>,
    exclude: &'a [SocketAddr],
}

impl View<'_> {
    /// Eligible except for the per-server limit.
    fn usable(&self, i: usize) -> bool {
        let s = &self.servers[i];
        let admitted = match self.mode {
            Mode::Healthy => s.available(self.now_ms),
            Mode::Any => !s.drained(),
        };
        admitted && !self.exclude.contains(&s.addr)
    }

    fn under_limit(&self, i: usize) -> bool {
        self.max_per_server
            .is_none_or(|max| self.servers[i].in_flight() < max)
    }
}

impl Candidates for View<'_> {
    fn len(&self) -> usize {
        self.servers.len()
    }
    fn eligible(&self, i: usize) -> bool {
        self.usable(i) && self.under_limit(i)
    }
    fn weight(&self, i: usize) -> u32 {
        self.servers[i].effective_weight(self.slow_start, self.now_ms)
    }
    fn in_flight(&self, i: usize) -> u32 {
        self.servers[i].in_flight()
    }
    fn latency_us(&self, i: usize) -> u64 {
        self.servers[i].latency_us()
    }
}

/// Why no server was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoServer {
    /// No server is available (and fail-open is off, or the pool is empty).
    Down,
    /// Servers are available but every one is at its request limit.
    Full,
}

/// One attempt of a request, as [`PoolState::settle`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// Its number, from 1.
    pub number: u32,
    /// The server it went to.
    pub server: &'a ServerState,
    /// What it came to.
    pub attempted: Attempted,
    /// How long it took.
    pub latency: Duration,
}

impl From<NoServer> for Fault {
    fn from(no: NoServer) -> Self {
        match no {
            NoServer::Full => Fault::ServerFull,
            NoServer::Down => Fault::NoServer,
        }
    }
}

/// A chosen server.
#[derive(Debug)]
pub struct Pick {
    /// The server.
    pub server: Arc<ServerState>,
    /// Whether the request's sticky cookie named another server (or none),
    /// so the response must set it.
    pub set_cookie: bool,
    /// Picked with every server down (fail-open).
    pub fail_open: bool,
}

/// One pool at run time.
#[derive(Debug)]
pub struct PoolState {
    /// Its configuration.
    pub config: PoolConfig,
    primaries: Group,
    backups: Group,
    /// Retry budget.
    pub budget: RetryBudget,
    /// Retry counter.
    pub retries: Counter,
    rng: AtomicU64,
}

impl PoolState {
    /// Builds the pool for `config`, reusing the state of servers of
    /// `previous` (the same pool in the configuration being replaced) whose
    /// address, weight and role are unchanged, and carrying health,
    /// latency and ejection over for those whose weight or role changed.
    pub fn new(
        config: &PoolConfig,
        previous: Option<&PoolState>,
        metrics: &Metrics,
        seed: u64,
    ) -> Self {
        let mut primaries = Vec::new();
        let mut backups = Vec::new();
        for server in &config.servers {
            let old = previous.and_then(|p| p.server(server.addr));
            let state = match old {
                Some(old)
                    if old.configured_weight == server.weight && old.backup == server.backup =>
                {
                    old.clone()
                }
                _ => {
                    let state = Arc::new(ServerState::new(
                        server.addr,
                        server.weight,
                        server.backup,
                        metrics.server(&config.name, &server.addr.to_string()),
                    ));
                    if let Some(old) = old {
                        state.carry_from(old);
                    }
                    state
                }
            };
            if server.backup {
                backups.push(state);
            } else {
                primaries.push(state);
            }
        }
        Self {
            primaries: Group::new(primaries, config.algorithm),
            backups: Group::new(backups, config.algorithm),
            budget: RetryBudget::new(&config.retries),
            retries: metrics.retries(&config.name),
            rng: AtomicU64::new(seed),
            config: config.clone(),
        }
    }

    /// Settles an `attempt`: records its outcome, and returns whether to
    /// retry on another server than those `tried` (as `policy` and the
    /// budget allow; the attempt's server is then added to `tried`): the
    /// back-off to wait first ([`retry::backoff`]), or `None`.
    pub fn settle(
        &self,
        policy: &Policy<'_>,
        attempt: Attempt<'_>,
        tried: &mut Vec<SocketAddr>,
        now_ms: impl Fn() -> u64,
    ) -> Option<Duration> {
        let Attempt {
            number,
            server,
            attempted,
            latency,
        } = attempt;
        if let Some(outcome) = Outcome::of(attempted) {
            self.record_outcome(server, outcome, latency, now_ms());
        }
        let retry = policy.retry(number, attempted, || {
            let now = now_ms();
            let mut tried_now = tried.clone();
            tried_now.push(server.addr);
            self.has_alternative(&tried_now, now) && self.budget.withdraw(now)
        });
        if !retry {
            return None;
        }
        if let Attempted::Status(status) = attempted {
            tracing::debug!(server = %server.addr, status, "retrying on another server");
        }
        self.retries.inc();
        tried.push(server.addr);
        Some(retry::backoff(
            &self.config.retries,
            number,
            balance::mix64(self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)),
        ))
    }

    /// Records an attempt's outcome on `server` at `now_ms`, and logs the
    /// server's ejection when this outcome caused one.
    pub fn record_outcome(
        &self,
        server: &ServerState,
        outcome: Outcome,
        latency: Duration,
        now_ms: u64,
    ) {
        if let Some(period) = server.record(outcome, latency, &self.config.outlier, now_ms) {
            tracing::warn!(
                pool = %self.config.name,
                server = %server.addr,
                ejected_for = ?period,
                "backend server ejected after consecutive failures"
            );
        }
    }

    /// Every server, primaries first.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<ServerState>> {
        self.primaries.servers.iter().chain(&self.backups.servers)
    }

    /// The server at `addr`.
    pub fn server(&self, addr: SocketAddr) -> Option<&Arc<ServerState>> {
        self.servers().find(|s| s.addr == addr)
    }

    /// Whether some server is available (primary or backup): the pool can
    /// serve without failing open.
    pub fn can_serve(&self, now_ms: u64) -> bool {
        self.servers().any(|s| s.available(now_ms))
    }

    /// Whether the pool fails open at `now_ms`: no backup is available
    /// (backups take over first) and its primaries are below the
    /// `fail_open` threshold ([`topology::tiers::l7::FailOpen::panics`]).
    pub fn panics(&self, now_ms: u64) -> bool {
        let primaries = &self.primaries.servers;
        let available = primaries.iter().filter(|s| s.available(now_ms)).count();
        self.config.fail_open.panics(available, primaries.len())
            && !self.backups.servers.iter().any(|s| s.available(now_ms))
    }

    /// Whether a retry could go somewhere: a server not in `exclude` that
    /// [`PoolState::pick`] could choose now.
    pub fn has_alternative(&self, exclude: &[SocketAddr], now_ms: u64) -> bool {
        let open = self.panics(now_ms);
        self.servers().any(|s| {
            !exclude.contains(&s.addr)
                && (open && !s.backup && !s.drained() || !open && s.available(now_ms))
        })
    }

    /// Chooses a server for a request, skipping servers in `exclude`.
    pub fn pick(
        &self,
        affinity: Affinity<'_>,
        exclude: &[SocketAddr],
        now_ms: u64,
    ) -> Result<Pick, NoServer> {
        let config = &self.config;
        let max_per_server = config.max_requests_per_server;
        let under_limit = |s: &ServerState| max_per_server.is_none_or(|m| s.in_flight() < m);
        if let (Some(_), Some(cookie)) = (&config.sticky, affinity.sticky)
            && let Some(server) = self.servers().find(|s| s.token.as_bytes() == cookie)
            && server.available(now_ms)
            && under_limit(server)
            && !exclude.contains(&server.addr)
        {
            return Ok(Pick {
                server: server.clone(),
                set_cookie: false,
                fail_open: false,
            });
        }
        let mut full = false;
        let panics = self.panics(now_ms);
        let attempts = [
            (&self.primaries, Mode::Healthy, !panics),
            (&self.backups, Mode::Healthy, true),
            (&self.primaries, Mode::Any, panics),
        ];
        for (group, mode, tried) in attempts {
            if !tried {
                continue;
            }
            let view = View {
                servers: &group.servers,
                now_ms,
                slow_start: config.slow_start,
                mode,
                max_per_server,
                exclude,
            };
            if !(0..view.servers.len()).any(|i| view.usable(i)) {
                continue;
            }
            let mut rng = SplitMix64(self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed));
            let chosen = match config.algorithm {
                Algorithm::P2c => balance::p2c(&view, &mut rng),
                Algorithm::LeastConn => balance::least_conn(&view, &mut rng),
                Algorithm::LeastTime => balance::least_time(&view, &mut rng),
                Algorithm::Random => balance::random(&view, &mut rng),
                Algorithm::RoundRobin => group
                    .wrr
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pick(&view),
                Algorithm::Hash => match &group.hash {
                    Some(hash) => hash.pick(affinity.hash_key, &view),
                    None => balance::random(&view, &mut rng),
                },
            };
            match chosen {
                Some(i) => {
                    let server = group.servers[i].clone();
                    let set_cookie =
                        config.sticky.is_some() && affinity.sticky != Some(server.token.as_bytes());
                    return Ok(Pick {
                        server,
                        set_cookie,
                        fail_open: mode == Mode::Any,
                    });
                }
                // Usable servers exist but all are at their limit: do not
                // spill over to backups, which would defeat the limit.
                None => {
                    full = true;
                    break;
                }
            }
        }
        Err(if full { NoServer::Full } else { NoServer::Down })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use std::net::IpAddr;

    use http::header::{self, HeaderMap, HeaderValue};
    use topology::tiers::l7::{
        BackendProtocol, FailOpen, HashOn, Outlier, Retries, Server, Sticky,
    };

    fn config(algorithm: Algorithm, servers: &[(u16, u32, bool)]) -> PoolConfig {
        PoolConfig {
            name: "web".into(),
            algorithm,
            hash_on: HashOn::ClientIp,
            protocol: BackendProtocol::Http1,
            tls: None,
            servers: servers
                .iter()
                .map(|&(port, weight, backup)| Server {
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    weight,
                    backup,
                })
                .collect(),
            health: topology::health::HealthCheck {
                kind: topology::health::CheckKind::Tcp,
                path: "/".into(),
                port: None,
                expect: topology::status::StatusSet::default(),
                host: None,
                body: None,
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                rise: 1,
                fall: 1,
                ca: None,
                insecure: false,
                service: None,
            },
            slow_start: Duration::ZERO,
            fail_open: FailOpen::Below(0),
            critical: true,
            max_requests_per_server: None,
            outlier: Outlier::default(),
            sticky: None,
            retries: Retries::default(),
        }
    }

    fn pool(config: &PoolConfig) -> PoolState {
        PoolState::new(config, None, &Metrics::new(&mut Registry::default()), 1)
    }

    fn port(pick: &Pick) -> u16 {
        pick.server.addr.port()
    }

    #[test]
    fn backups_serve_only_when_no_primary_can() {
        let pool = pool(&config(
            Algorithm::RoundRobin,
            &[(1, 1, false), (2, 1, false), (3, 1, true)],
        ));
        let picks: Vec<u16> = (0..4)
            .map(|_| port(&pool.pick(Affinity::default(), &[], 0).unwrap()))
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        pool.server(SocketAddr::from(([127, 0, 0, 1], 1)))
            .unwrap()
            .set_probe_up(false, 0);
        assert_eq!(port(&pool.pick(Affinity::default(), &[], 0).unwrap()), 2);
        pool.server(SocketAddr::from(([127, 0, 0, 1], 2)))
            .unwrap()
            .set_probe_up(false, 0);
        let pick = pool.pick(Affinity::default(), &[], 0).unwrap();
        assert_eq!((port(&pick), pick.fail_open), (3, false));
        assert!(pool.can_serve(0));
    }

    #[test]
    fn fail_open_balances_over_every_primary_or_refuses() {
        let mut cfg = config(Algorithm::RoundRobin, &[(1, 1, false), (2, 1, false)]);
        let pool = pool(&cfg);
        for s in pool.servers() {
            s.set_probe_up(false, 0);
        }
        assert!(!pool.can_serve(0));
        let picks: Vec<(u16, bool)> = (0..2)
            .map(|_| {
                let p = pool.pick(Affinity::default(), &[], 0).unwrap();
                (port(&p), p.fail_open)
            })
            .collect();
        assert_eq!(picks, [(1, true), (2, true)]);
        cfg.fail_open = FailOpen::Off;
        let closed = PoolState::new(
            &cfg,
            Some(&pool),
            &Metrics::new(&mut Registry::default()),
            1,
        );
        assert_eq!(
            closed.pick(Affinity::default(), &[], 0).unwrap_err(),
            NoServer::Down
        );
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// How many of `n` picks at time 0 go to each port, and how many
    /// failed open.
    fn spread(pool: &PoolState, n: usize) -> (std::collections::BTreeMap<u16, usize>, usize) {
        let mut counts = std::collections::BTreeMap::new();
        let mut open = 0;
        for _ in 0..n {
            let pick = pool.pick(Affinity::default(), &[], 0).unwrap();
            *counts.entry(port(&pick)).or_default() += 1;
            open += usize::from(pick.fail_open);
        }
        (counts, open)
    }

    #[test]
    fn a_drained_server_takes_no_new_request_not_even_failing_open() {
        let pool = pool(&config(Algorithm::P2c, &[(1, 1, false), (2, 1, false)]));
        let one = pool.server(addr(1)).unwrap().clone();
        let held = one.start();
        assert!(one.set_drained(true));
        assert!(!one.set_drained(true), "draining twice changes nothing");
        assert_eq!(spread(&pool, 50).0, [(2, 50)].into());
        assert_eq!(one.in_flight(), 1, "what is in flight finishes");
        drop(held);
        assert!(!pool.has_alternative(&[addr(2)], 0));
        // Every other server down: the pool fails open, but not onto the
        // drained one.
        pool.server(addr(2)).unwrap().set_probe_up(false, 0);
        assert_eq!(spread(&pool, 10), ([(2, 10)].into(), 10));
        one.set_drained(false);
        assert_eq!(spread(&pool, 10).0, [(1, 10)].into());
        assert_eq!(one.metrics.drained.get(), 0);
    }

    #[test]
    fn an_operators_weight_shifts_the_share_and_outlives_a_reload() {
        let cfg = config(Algorithm::RoundRobin, &[(1, 1, false), (2, 1, false)]);
        let metrics = Metrics::new(&mut Registry::default());
        let old = PoolState::new(&cfg, None, &metrics, 1);
        assert_eq!(spread(&old, 400).0, [(1, 200), (2, 200)].into());
        let one = old.server(addr(1)).unwrap();
        one.set_weight(Some(3));
        assert_eq!(spread(&old, 400).0, [(1, 300), (2, 100)].into());
        assert_eq!((one.weight(), one.metrics.weight.get()), (3, 3));
        one.set_drained(true);
        // A reload that changes the configured weight keeps the operator's.
        let mut changed = cfg.clone();
        changed.servers[0].weight = 2;
        let new = PoolState::new(&changed, Some(&old), &metrics, 1);
        let one = new.server(addr(1)).unwrap();
        assert_eq!((one.weight(), one.configured_weight), (3, 2));
        assert!(one.drained());
        one.set_drained(false);
        one.set_weight(None);
        assert_eq!(spread(&new, 300).0, [(1, 200), (2, 100)].into());
    }

    #[test]
    fn below_the_panic_threshold_the_pool_balances_over_every_primary() {
        let mut cfg = config(
            Algorithm::RoundRobin,
            &[(1, 1, false), (2, 1, false), (3, 1, false), (4, 1, false)],
        );
        cfg.fail_open = FailOpen::Below(50);
        let pool = pool(&cfg);
        pool.server(addr(1)).unwrap().set_probe_up(false, 0);
        // 3 of 4 available: health decides.
        assert_eq!(spread(&pool, 30), ([(2, 10), (3, 10), (4, 10)].into(), 0));
        pool.server(addr(2)).unwrap().set_probe_up(false, 0);
        // 2 of 4 is not below 50 %.
        assert_eq!(spread(&pool, 20), ([(3, 10), (4, 10)].into(), 0));
        pool.server(addr(3)).unwrap().set_probe_up(false, 0);
        // 1 of 4: panic, every primary shares the load.
        assert!(pool.panics(0));
        assert_eq!(
            spread(&pool, 40),
            ([(1, 10), (2, 10), (3, 10), (4, 10)].into(), 40)
        );
        assert!(pool.has_alternative(&[addr(4)], 0));
        // An available backup takes over before the pool panics.
        cfg.servers.push(Server {
            addr: addr(5),
            weight: 1,
            backup: true,
        });
        let with_backup = PoolState::new(
            &cfg,
            Some(&pool),
            &Metrics::new(&mut Registry::default()),
            1,
        );
        assert!(!with_backup.panics(0));
        assert_eq!(spread(&with_backup, 10), ([(4, 10)].into(), 0));
    }

    #[test]
    fn exclusion_sends_a_retry_elsewhere() {
        let pool = pool(&config(Algorithm::P2c, &[(1, 1, false), (2, 1, false)]));
        let first = SocketAddr::from(([127, 0, 0, 1], 1));
        for _ in 0..20 {
            assert_eq!(
                port(&pool.pick(Affinity::default(), &[first], 0).unwrap()),
                2
            );
        }
    }

    #[test]
    fn per_server_limits_shed_instead_of_spilling() {
        let mut cfg = config(Algorithm::LeastConn, &[(1, 1, false), (2, 1, true)]);
        cfg.max_requests_per_server = Some(1);
        let pool = pool(&cfg);
        let held = pool
            .pick(Affinity::default(), &[], 0)
            .unwrap()
            .server
            .start();
        assert_eq!(held.server().addr.port(), 1);
        assert_eq!(
            pool.pick(Affinity::default(), &[], 0).unwrap_err(),
            NoServer::Full
        );
        drop(held);
        assert!(pool.pick(Affinity::default(), &[], 0).is_ok());
    }

    fn sticky_cookie(name: &str) -> Sticky {
        Sticky {
            cookie: name.into(),
            path: "/".into(),
            max_age: None,
            secure: false,
            http_only: true,
            same_site: topology::tiers::l7::SameSite::Lax,
        }
    }

    #[test]
    fn a_requests_affinity_comes_from_its_configured_source() {
        let client: IpAddr = [192, 0, 2, 7].into();
        let client_key = balance::request_key(&[192, 0, 2, 7]);
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("ann"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("u=bob; S=0123456789abcdef"),
        );
        let mut cfg = config(Algorithm::Hash, &[(1, 1, false)]);
        // (hash on, hash key)
        let cases = [
            (HashOn::ClientIp, client_key),
            (
                HashOn::Header("x-user".into()),
                balance::request_key(b"ann"),
            ),
            (HashOn::Header("x-none".into()), client_key),
            (HashOn::Cookie("u".into()), balance::request_key(b"bob")),
            (HashOn::Cookie("none".into()), client_key),
        ];
        for (hash_on, key) in cases {
            cfg.hash_on = hash_on.clone();
            let affinity = RequestAffinity::of(&cfg, client, &headers);
            assert_eq!(affinity.affinity().hash_key, key, "{hash_on:?}");
            assert_eq!(affinity.affinity().sticky, None, "no sticky configured");
        }
        cfg.algorithm = Algorithm::RoundRobin;
        cfg.sticky = Some(sticky_cookie("S"));
        let affinity = RequestAffinity::of(&cfg, client, &headers);
        assert_eq!(
            affinity.affinity().hash_key,
            0,
            "only the hash algorithm hashes"
        );
        assert_eq!(affinity.affinity().sticky, Some(&b"0123456789abcdef"[..]));
        // A cookie of the wrong length names no server.
        headers.insert(header::COOKIE, HeaderValue::from_static("S=short"));
        let affinity = RequestAffinity::of(&cfg, client, &headers);
        assert_eq!(affinity.affinity().sticky, None);
    }

    #[test]
    fn sticky_cookies_stick_and_are_reissued_when_their_server_is_down() {
        let mut cfg = config(Algorithm::RoundRobin, &[(1, 1, false), (2, 1, false)]);
        cfg.sticky = Some(sticky_cookie("S"));
        let pool = pool(&cfg);
        let first = pool.pick(Affinity::default(), &[], 0).unwrap();
        assert!(first.set_cookie);
        let token = first.server.token.clone();
        for _ in 0..5 {
            let again = pool
                .pick(
                    Affinity {
                        sticky: Some(token.as_bytes()),
                        hash_key: 0,
                    },
                    &[],
                    0,
                )
                .unwrap();
            assert_eq!(again.server.addr, first.server.addr);
            assert!(!again.set_cookie);
        }
        first.server.set_probe_up(false, 0);
        let moved = pool
            .pick(
                Affinity {
                    sticky: Some(token.as_bytes()),
                    hash_key: 0,
                },
                &[],
                0,
            )
            .unwrap();
        assert_ne!(moved.server.addr, first.server.addr);
        assert!(moved.set_cookie);
    }

    #[test]
    fn slow_start_ramps_a_returning_server() {
        let mut cfg = config(Algorithm::RoundRobin, &[(1, 1, false), (2, 1, false)]);
        cfg.slow_start = Duration::from_secs(10);
        let pool = pool(&cfg);
        let back = pool
            .server(SocketAddr::from(([127, 0, 0, 1], 2)))
            .unwrap()
            .clone();
        back.set_probe_up(false, 0);
        back.set_probe_up(true, 1_000);
        let share = |now: u64| {
            let n = (0..1100)
                .filter(|_| port(&pool.pick(Affinity::default(), &[], now).unwrap()) == 2)
                .count();
            n as f64 / 1100.0
        };
        // 10% of full weight at the start: 100 of 1100.
        assert!((share(1_000) - 100.0 / 1100.0).abs() < 0.01);
        // Half way: 55% weight.
        assert!((share(6_000) - 550.0 / 1550.0).abs() < 0.01);
        assert!((share(11_000) - 0.5).abs() < 0.01);
    }

    #[test]
    fn ejection_backs_off_and_recovers() {
        let outlier = Outlier {
            failures: 3,
            ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(5),
        };
        let mut h = EjectionHistory::default();
        let periods: Vec<u64> = [0, 1_000, 3_000, 7_000, 12_000]
            .iter()
            .map(|&now| next_ejection(&outlier, &mut h, now).as_secs())
            .collect();
        assert_eq!(periods, [1, 2, 4, 5, 5]);
        // Quiet for max_ejection after the last return: back to the start.
        let returned = h.returned_at_ms;
        assert_eq!(
            next_ejection(&outlier, &mut h, returned + 5_000).as_secs(),
            1
        );
    }

    #[test]
    fn consecutive_failures_eject_and_successes_reset() {
        let pool = pool(&config(Algorithm::P2c, &[(1, 1, false), (2, 1, false)]));
        let s = pool.server(SocketAddr::from(([127, 0, 0, 1], 1))).unwrap();
        let outlier = Outlier {
            failures: 3,
            ..Outlier::default()
        };
        let ms = Duration::from_millis(1);
        s.record(Outcome::Status(502), ms, &outlier, 0);
        s.record(Outcome::ConnectFailed, ms, &outlier, 0);
        s.record(Outcome::Status(200), ms, &outlier, 0);
        s.record(Outcome::Status(500), ms, &outlier, 0);
        s.record(Outcome::Status(500), ms, &outlier, 0);
        assert!(!s.ejected(0));
        assert_eq!(
            s.record(Outcome::Failed, ms, &outlier, 0),
            Some(Duration::from_secs(10))
        );
        assert!(s.ejected(9_999) && !s.ejected(10_000));
        for _ in 0..20 {
            assert_eq!(
                port(&pool.pick(Affinity::default(), &[], 5_000).unwrap()),
                2
            );
        }
        assert_eq!(s.metrics.ejections.get(), 1);
    }

    #[test]
    fn a_retry_waits_its_jittered_back_off_first() {
        let mut cfg = config(Algorithm::RoundRobin, &[(1, 1, false), (2, 1, false)]);
        cfg.retries.attempts = 2;
        cfg.retries.backoff = Duration::from_millis(100);
        cfg.retries.max_backoff = Duration::from_millis(150);
        cfg.retries.min_per_second = 1000;
        let pool = pool(&cfg);
        let policy = Policy::new(&cfg.retries, &http::Method::GET, true);
        let server = pool.server(addr(1)).unwrap().clone();
        let attempt = |number| Attempt {
            number,
            server: &server,
            attempted: Attempted::Status(502),
            latency: Duration::from_millis(1),
        };
        let mut waits = Vec::new();
        for _ in 0..50 {
            let mut tried = Vec::new();
            let first = pool.settle(&policy, attempt(1), &mut tried, || 0);
            let second = pool.settle(&policy, attempt(2), &mut tried, || 0);
            waits.push((first.unwrap(), second.unwrap()));
            assert_eq!(pool.settle(&policy, attempt(3), &mut tried, || 0), None);
        }
        assert!(
            waits
                .iter()
                .all(|&(a, b)| a <= Duration::from_millis(100) && b <= Duration::from_millis(150))
        );
        // Jittered: the waits differ from one request to the next.
        let distinct: std::collections::BTreeSet<Duration> = waits.iter().map(|w| w.0).collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        cfg.retries.backoff = Duration::ZERO;
        let at_once = PoolState::new(&cfg, None, &Metrics::new(&mut Registry::default()), 1);
        let policy = Policy::new(&cfg.retries, &http::Method::GET, true);
        assert_eq!(
            at_once.settle(&policy, attempt(1), &mut Vec::new(), || 0),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn attempts_charge_only_backend_faults() {
        let cases = [
            (Attempted::Status(503), Some(Outcome::Status(503))),
            (
                Attempted::Fault(Fault::ConnectFailed),
                Some(Outcome::ConnectFailed),
            ),
            (
                Attempted::Fault(Fault::UpstreamFailed),
                Some(Outcome::Failed),
            ),
            (
                Attempted::Fault(Fault::UpstreamTimeout),
                Some(Outcome::Failed),
            ),
            (Attempted::Fault(Fault::ClientTooSlow), None),
            (Attempted::Fault(Fault::BadRequest("body")), None),
        ];
        for (attempted, outcome) in cases {
            assert_eq!(Outcome::of(attempted), outcome, "{attempted:?}");
        }
    }

    #[test]
    fn reloads_keep_unchanged_servers_state() {
        let cfg = config(Algorithm::P2c, &[(1, 1, false), (2, 1, false)]);
        let metrics = Metrics::new(&mut Registry::default());
        let old = PoolState::new(&cfg, None, &metrics, 1);
        old.server(SocketAddr::from(([127, 0, 0, 1], 2)))
            .unwrap()
            .set_probe_up(false, 5);
        let mut changed = cfg.clone();
        changed.servers[0].weight = 3;
        changed.servers.push(Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 3)),
            weight: 1,
            backup: false,
        });
        let new = PoolState::new(&changed, Some(&old), &metrics, 1);
        let s2 = new.server(SocketAddr::from(([127, 0, 0, 1], 2))).unwrap();
        assert!(Arc::ptr_eq(s2, old.server(s2.addr).unwrap()));
        assert!(!s2.probe_up());
        assert_eq!(
            new.server(SocketAddr::from(([127, 0, 0, 1], 1)))
                .unwrap()
                .weight(),
            3
        );
        assert!(
            new.server(SocketAddr::from(([127, 0, 0, 1], 3)))
                .unwrap()
                .probe_up()
        );
    }
}
