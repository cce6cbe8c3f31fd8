//! Traffic during a drill: a client of the watched network that resolves
//! the geo name through the GSLB with that network as its ECS, keeps each
//! answer for its TTL as a caching resolver does, and sends an HTTP request
//! to the address it holds every [`EVERY`]. Where each request landed —
//! the region of the backend that answered (its `X-Backend` header, as the
//! demo backends send), else of the VIP it went to — tells when traffic,
//! not only DNS, moved. [`Summary::of`] is the pure part.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use topology::Topology;

use super::Watch;
use super::watcher::Direction;
use crate::dns::{Question, ask};
use crate::timeline::{Event, format_duration};

/// How often the client sends a request.
const EVERY: Duration = Duration::from_millis(200);

/// One request's bound, connecting included: a VIP whose host is gone may
/// drop packets rather than refuse.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the client waits for the GSLB's answer.
const DNS_TIMEOUT: Duration = Duration::from_millis(500);

/// One request of the client.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// When it was sent, after the drill began.
    pub at: Duration,
    /// The region that answered it, or why none did.
    pub landed: Result<Landing, String>,
}

/// Who answered a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Landing {
    /// The region.
    pub region: String,
    /// The backend, when it said.
    pub backend: Option<String>,
    /// The address the request went to.
    pub address: IpAddr,
}

/// The client's requests, summed up for a drill's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Requests sent.
    pub requests: usize,
    /// Requests that got no answer from a backend (refused, timed out, a
    /// proxy's 5xx, or DNS gave no address).
    pub failed: usize,
    /// Milliseconds after the start of the first request that landed where
    /// the drill moves clients: outside the region (`gtm fail`) or in it
    /// (`gtm recover`).
    pub moved_after_ms: Option<f64>,
    /// Where the latest answered request landed.
    pub now_region: Option<String>,
    /// The longest TTL the client held an answer for, seconds.
    pub ttl: Option<u32>,
    /// The timeline's event.
    #[serde(skip)]
    pub event: Event,
}

impl Summary {
    /// The summary of `samples` for a drill moving clients `direction` from
    /// or to `region`; `ttl` the longest TTL held, `client` the watched
    /// network as shown.
    pub fn of(
        samples: &[Sample],
        direction: Direction,
        region: &str,
        ttl: Option<u32>,
        client: &str,
    ) -> Summary {
        let moved = moved(samples, direction, region);
        let failed = samples.iter().filter(|s| s.landed.is_err()).count();
        let label = "traffic moved";
        let event = match moved {
            Some(sample) => {
                let landing = sample.landed.as_ref().expect("moved samples landed");
                let by = landing
                    .backend
                    .as_ref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default();
                Event::at(
                    label,
                    sample.at,
                    format!(
                        "first request from {client} answered by {}{by} via {}; {failed} of {} requests failed",
                        landing.region,
                        landing.address,
                        samples.len()
                    ),
                )
            }
            None => Event::unseen(
                label,
                match samples.iter().rev().find_map(|s| s.landed.as_ref().ok()) {
                    Some(last) => format!(
                        "requests from {client} still answered by {} ({} sent, {failed} failed)",
                        last.region,
                        samples.len()
                    ),
                    None => format!(
                        "no request from {client} answered ({} sent){}",
                        samples.len(),
                        samples
                            .iter()
                            .rev()
                            .find_map(|s| s.landed.as_ref().err())
                            .map(|e| format!("; last error: {e}"))
                            .unwrap_or_default()
                    ),
                },
            ),
        };
        Summary {
            requests: samples.len(),
            failed,
            moved_after_ms: moved.map(|s| s.at.as_secs_f64() * 1000.0),
            now_region: samples
                .iter()
                .rev()
                .find_map(|s| s.landed.as_ref().ok())
                .map(|l| l.region.clone()),
            ttl,
            event,
        }
    }

    /// How the traffic's move compares with the bar: DNS's `detection`
    /// plus the TTL a caching resolver may keep the old answer for.
    pub fn bar(&self, detection: Duration) -> Option<(Duration, bool)> {
        let moved = self.moved_after_ms?;
        let bar = detection + Duration::from_secs(u64::from(self.ttl.unwrap_or(0)));
        Some((bar, moved <= bar.as_secs_f64() * 1000.0))
    }

    /// One line for the human report.
    pub fn describe(&self, detection: Duration) -> String {
        match (self.moved_after_ms, self.bar(detection)) {
            (Some(ms), Some((bar, within))) => format!(
                "requests moved after {} — {} DNS's bar plus the TTL ({}); {} of {} failed on the way",
                format_duration(Duration::from_secs_f64(ms / 1000.0)),
                if within { "within" } else { "beyond" },
                format_duration(bar),
                self.failed,
                self.requests
            ),
            _ => self.event.detail.clone(),
        }
    }
}

/// The first request that landed where `direction` moves clients, after
/// the last one that did not: a request the old way after a new one means
/// the move was not over.
fn moved<'a>(samples: &'a [Sample], direction: Direction, region: &str) -> Option<&'a Sample> {
    let arrived = |s: &Sample| match (&s.landed, direction) {
        (Ok(l), Direction::Away) => l.region != region,
        (Ok(l), Direction::Back) => l.region == region,
        (Err(_), _) => false,
    };
    let stayed = |s: &Sample| match (&s.landed, direction) {
        (Ok(l), Direction::Away) => l.region == region,
        (Ok(l), Direction::Back) => l.region != region,
        (Err(_), _) => false,
    };
    let after = samples.iter().rposition(stayed).map_or(0, |i| i + 1);
    samples[after..].iter().find(|s| arrived(s))
}

/// Where requests go: each VIP's region and HTTP port, each backend's
/// region.
#[derive(Clone, Debug)]
struct Map {
    vips: HashMap<IpAddr, (String, u16)>,
    backends: HashMap<String, String>,
}

impl Map {
    fn of(topology: &Topology) -> Map {
        let mut vips = HashMap::new();
        let mut backends = HashMap::new();
        for region in &topology.regions {
            let vip = &region.vip;
            for ip in [vip.ipv4.map(IpAddr::V4), vip.ipv6.map(IpAddr::V6)]
                .into_iter()
                .flatten()
            {
                vips.insert(ip, (region.name.clone(), vip.http_port));
            }
            for backend in &region.backends {
                backends.insert(backend.name.clone(), region.name.clone());
            }
        }
        Map { vips, backends }
    }
}

/// The client, in its own thread from [`Traffic::start`] until dropped.
pub struct Traffic {
    samples: Arc<Mutex<Vec<Sample>>>,
    ttl: Arc<Mutex<Option<u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Traffic {
    /// Starts sending requests as a client of `watch`'s network; `t0` is
    /// the drill's start.
    pub fn start(watch: &Watch, topology: &Topology, t0: Instant) -> Traffic {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let ttl = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = Client {
            watch: watch.clone(),
            map: Map::of(topology),
            http: HashMap::new(),
            held: None,
            ttl: ttl.clone(),
        };
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("drill-traffic".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let at = t0.elapsed();
                        let landed = client.request();
                        samples
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Sample { at, landed });
                        std::thread::sleep(EVERY);
                    }
                })
                .ok()
        };
        Traffic {
            samples,
            ttl,
            stop,
            thread,
        }
    }

    /// The summary so far.
    pub fn summary(&self, direction: Direction, region: &str, client: &str) -> Summary {
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let ttl = *self.ttl.lock().unwrap_or_else(PoisonError::into_inner);
        Summary::of(&samples, direction, region, ttl, client)
    }

    /// The longest TTL held so far.
    pub fn ttl(&self) -> Option<u32> {
        *self.ttl.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The client's state: the answer it holds and until when, an HTTP client
/// per address.
struct Client {
    watch: Watch,
    map: Map,
    http: HashMap<IpAddr, reqwest::blocking::Client>,
    held: Option<(IpAddr, Instant)>,
    ttl: Arc<Mutex<Option<u32>>>,
}

impl Client {
    /// The address to use: the one held while its TTL runs, else a new
    /// answer from the GSLB.
    fn resolve(&mut self) -> Result<IpAddr, String> {
        if let Some((address, until)) = self.held
            && Instant::now() < until
        {
            return Ok(address);
        }
        let mut question = Question::new(self.watch.server, &self.watch.name, self.watch.rtype);
        question.client = Some(self.watch.client);
        question.timeout = DNS_TIMEOUT;
        let reply = ask(&question).map_err(|e| format!("DNS: {e}"))?;
        let address = *reply
            .addresses()
            .first()
            .ok_or_else(|| format!("DNS: {} with no address", reply.rcode))?;
        let ttl = reply.answers.iter().map(|a| a.ttl).min().unwrap_or(0);
        let mut longest = self.ttl.lock().unwrap_or_else(PoisonError::into_inner);
        *longest = Some(longest.map_or(ttl, |t| t.max(ttl)));
        self.held = Some((address, Instant::now() + Duration::from_secs(ttl.into())));
        Ok(address)
    }

    /// One request, as a new visitor (a new connection each time).
    fn request(&mut self) -> Result<Landing, String> {
        let address = self.resolve()?;
        let Some((region, port)) = self.map.vips.get(&address).cloned() else {
            return Err(format!("{address} is no region's VIP"));
        };
        let host = self.watch.name.trim_end_matches('.').to_owned();
        let http = match self.http.get(&address) {
            Some(http) => http.clone(),
            None => {
                let http = reqwest::blocking::Client::builder()
                    .resolve(&host, SocketAddr::new(address, port))
                    .timeout(REQUEST_TIMEOUT)
                    .pool_max_idle_per_host(0)
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?;
                self.http.insert(address, http.clone());
                http
            }
        };
        let response = http
            .get(format!("http://{host}:{port}/"))
            .send()
            .map_err(|e| format!("{address}:{port}: {}", error_chain(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(format!("{address}:{port}: {status}"));
        }
        let backend = response
            .headers()
            .get("x-backend")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let region = backend
            .as_ref()
            .and_then(|b| self.map.backends.get(b))
            .cloned()
            .unwrap_or(region);
        Ok(Landing {
            region,
            backend,
            address,
        })
    }
}

/// An error and its causes on one line (reqwest's own message is only
/// "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, landed: Result<&str, &str>) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            landed: landed
                .map(|region| Landing {
                    region: region.into(),
                    backend: Some(format!("{region}-web1")),
                    address: IpAddr::from([127, 0, 0, 1]),
                })
                .map_err(str::to_owned),
        }
    }

    #[test]
    fn traffic_moved_away_at_the_first_request_elsewhere_after_the_last_one_in_the_region() {
        let samples = [
            at(0, Ok("us-east")),
            at(200, Err("refused")),
            at(400, Err("refused")),
            at(600, Ok("eu-west")),
            at(800, Ok("eu-west")),
        ];
        let summary = Summary::of(&samples, Direction::Away, "us-east", Some(5), "8.8.8.0/24");
        assert_eq!(summary.moved_after_ms, Some(600.0));
        assert_eq!((summary.requests, summary.failed), (5, 2));
        assert_eq!(summary.now_region.as_deref(), Some("eu-west"));
        assert!(summary.event.detail.contains("eu-west (eu-west-web1)"));
        assert!(summary.event.detail.contains("2 of 5 requests failed"));
    }

    #[test]
    fn a_request_back_in_the_region_after_one_elsewhere_means_the_move_was_not_over() {
        // Two resolvers' worth of flapping: the move counts from the last
        // request that still landed in the region.
        let samples = [
            at(0, Ok("eu-west")),
            at(200, Ok("us-east")),
            at(400, Ok("eu-west")),
        ];
        let summary = Summary::of(&samples, Direction::Away, "us-east", None, "c");
        assert_eq!(summary.moved_after_ms, Some(400.0));
    }

    #[test]
    fn coming_back_is_the_first_request_in_the_region() {
        let samples = [
            at(0, Ok("eu-west")),
            at(200, Ok("us-east")),
            at(400, Ok("us-east")),
        ];
        let summary = Summary::of(&samples, Direction::Back, "us-east", None, "c");
        assert_eq!(summary.moved_after_ms, Some(200.0));
    }

    #[test]
    fn no_move_is_unseen_with_where_requests_still_go_or_the_last_error() {
        let samples = [at(0, Ok("us-east")), at(200, Ok("us-east"))];
        let summary = Summary::of(&samples, Direction::Away, "us-east", None, "c");
        assert_eq!(summary.moved_after_ms, None);
        assert_eq!(summary.event.offset_ms, None);
        assert!(summary.event.detail.contains("still answered by us-east"));
        let failing = [at(0, Err("refused")), at(200, Err("timed out"))];
        let summary = Summary::of(&failing, Direction::Away, "us-east", None, "c");
        assert!(summary.event.detail.contains("last error: timed out"));
        assert_eq!(summary.now_region, None);
    }

    #[test]
    fn the_bar_is_the_detection_time_plus_the_ttl() {
        let samples = [at(0, Ok("us-east")), at(4500, Ok("eu-west"))];
        let summary = Summary::of(&samples, Direction::Away, "us-east", Some(2), "c");
        let detection = Duration::from_millis(3000);
        assert_eq!(summary.bar(detection), Some((Duration::from_secs(5), true)));
        let summary = Summary::of(&samples, Direction::Away, "us-east", Some(1), "c");
        assert_eq!(
            summary.bar(detection),
            Some((Duration::from_secs(4), false))
        );
    }
}
