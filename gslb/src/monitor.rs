//! The health monitor: probes every region from this node, gathers the
//! views of the other GSLB nodes, applies operator overrides, and publishes
//! which regions are in service — to the query path as a lock-free
//! [`RegionHealth`], and to the admin API as a [`HealthStatus`].
//!
//! One owner mutates the state; readers only load snapshots.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use admin::api::gslb as api;
use arc_swap::ArcSwap;
use probe::{Health, ProbeEvent, ProbeResult, ProbeSpec, Prober};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use topology::{Breaker, Topology};
use tracing::{debug, info, warn};

use crate::health::{RegionHealth, RegionLoad};
use crate::metrics::Metrics;
use crate::overrides::OverrideMode;
use crate::peer::{self, LastProbe, NodeView, PeerKey, Refusal, RegionOpinion};
use crate::state_file::{StateError, StateStore};
use crate::vantage::{Flaps, Opinion, Sight, ViewState, suspects, verdict};

/// Views older than this many probe intervals do not vote.
const FRESHNESS_INTERVALS: u32 = 3;
/// How often verdicts are recomputed even without news (views age).
const RECOMPUTE_EVERY: Duration = Duration::from_millis(250);
/// How long a peer may take to answer for its view.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin API reports about one region.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionStatus {
    /// Region name.
    pub name: String,
    /// Quorum of fresh vantage views.
    pub verdict: &'static str,
    /// Operator override, if any.
    #[serde(rename = "override")]
    pub override_mode: Option<&'static str>,
    /// Why the override was set.
    pub override_reason: Option<String>,
    /// Whether answers may use it: verdict up and no override.
    pub in_service: bool,
    /// When `in_service` last changed (ms since the epoch).
    pub since_ms: u64,
    /// Fresh views that said up (the quorum's outcome with `fresh_views`).
    pub up_votes: usize,
    /// Fresh views counted.
    pub fresh_views: usize,
    /// Each vantage point's view.
    pub vantage: Vec<VantageStatus>,
    /// Its load and spill share, when it declares a capacity.
    pub load: Option<api::Load>,
}

/// One vantage point's view, for the status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VantageStatus {
    /// The GSLB node.
    pub node: String,
    /// `up` or `down`.
    pub state: &'static str,
    /// Whether it voted (fresh enough).
    pub fresh: bool,
    /// Whether its votes are set aside: it sees nearly every region down
    /// while other vantage points do not (`dns.breaker`).
    pub abstains: bool,
    /// Its latest probe.
    pub last: Option<LastProbe>,
    /// Changes of its view of the region over the last hour, as this node
    /// saw them.
    pub flaps_last_hour: usize,
}

/// The whole health picture.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealthStatus {
    /// Regions in topology order.
    pub regions: Vec<RegionStatus>,
}

/// The GSLB nodes this node exchanges views with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Node name.
    pub name: String,
    /// Its admin API.
    pub admin: SocketAddr,
}

/// What the monitor publishes and what the admin API reads and changes.
pub struct Monitor {
    node: String,
    /// Read by the query path.
    pub view: Arc<ArcSwap<RegionHealth>>,
    status: ArcSwap<HealthStatus>,
    /// Overrides and this node's verdicts, mirrored to the state file.
    persisted: Mutex<StateStore>,
    state: Mutex<State>,
    changed: Notify,
    prober: Prober,
    metrics: Arc<Metrics>,
    /// Signs this node's view and checks the peers' (`dns.peer_key`).
    peer_key: Option<PeerKey>,
}

#[derive(Default)]
struct State {
    /// Region names in topology order, with their probe interval.
    regions: Vec<(String, Duration)>,
    own: HashMap<String, OwnOpinion>,
    peers: HashMap<(String, String), PeerOpinion>,
    in_service: HashMap<String, (bool, SystemTime)>,
    peer_list: Vec<Peer>,
    /// Changes of each (vantage point, region) view.
    flaps: HashMap<(String, String), Flaps>,
    /// `dns.breaker`.
    breaker: Breaker,
    /// Vantage points whose votes are set aside.
    suspects: HashSet<String>,
    /// How many times regions went out of service (all at once counting
    /// once): the clock of `went_out`.
    changes: u64,
    /// The value of `changes` when each region last went out.
    went_out: HashMap<String, u64>,
    /// Each region's load, from [`crate::load`]; regions without one are
    /// [`RegionLoad::Unbounded`].
    loads: HashMap<String, (RegionLoad, api::Load)>,
}

struct OwnOpinion {
    up: bool,
    /// Whether a probe has confirmed `up` (see [`ViewState`]).
    settled: bool,
    last: Option<LastProbe>,
    at: Instant,
}

struct PeerOpinion {
    up: bool,
    /// Whether a probe has confirmed `up` (see [`ViewState`]).
    settled: bool,
    last: Option<LastProbe>,
    received: Instant,
}

/// The probe spec for a region: its health check against its VIP.
pub fn region_probe(topology: &Topology, region: usize) -> Option<ProbeSpec> {
    let region = &topology.regions[region];
    let address = region
        .vip
        .ipv4
        .map(std::net::IpAddr::V4)
        .or(region.vip.ipv6.map(std::net::IpAddr::V6))?;
    Some(probe::topology::spec_for(
        &region.health,
        address,
        region.vip.http_port,
        region.vip.https_port,
    ))
}

impl Monitor {
    /// Starts probing `topology`'s regions as node `node`, with the
    /// overrides and verdicts saved in `persisted`, exchanging views
    /// signed with `peer_key` (unsigned without one). Tasks run in `tasks`
    /// until `shutdown`.
    pub fn start(
        topology: &Topology,
        node: &str,
        persisted: StateStore,
        peer_key: Option<PeerKey>,
        metrics: Arc<Metrics>,
        tasks: &mut JoinSet<()>,
        shutdown: CancellationToken,
    ) -> Arc<Monitor> {
        let (events_tx, events) = mpsc::channel(256);
        let seed = node.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let monitor = Arc::new(Monitor {
            node: node.to_owned(),
            view: Arc::new(ArcSwap::from_pointee(RegionHealth::all_up(
                topology.regions.len(),
            ))),
            status: ArcSwap::from_pointee(HealthStatus::default()),
            persisted: Mutex::new(persisted),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            prober: Prober::new(events_tx, shutdown.clone(), seed),
            metrics,
            peer_key,
        });
        tasks.spawn(monitor.clone().consume(events, shutdown.clone()));
        tasks.spawn(monitor.clone().tick(shutdown.clone()));
        tasks.spawn(monitor.clone().poll_peers(shutdown));
        monitor
    }

    /// Applies a (re)loaded topology: probes are added, replaced or removed
    /// (unchanged ones keep their state), and opinions of regions that are
    /// gone are dropped. A region this node has no opinion of yet starts
    /// from its verdict saved in the state file, if any.
    pub async fn configure(&self, topology: &Topology) {
        let mut specs = BTreeMap::new();
        let mut regions = Vec::new();
        let mut restored = Vec::new();
        {
            let persisted = self.persisted.lock().expect("state file lock");
            let state = self.state.lock().expect("monitor state lock");
            for (index, region) in topology.regions.iter().enumerate() {
                regions.push((region.name.clone(), region.health.interval));
                let Some(mut spec) = region_probe(topology, index) else {
                    warn!(region = %region.name, "region has no VIP address to probe");
                    continue;
                };
                if !state.own.contains_key(&region.name)
                    && let Some(saved) = persisted.health(&region.name)
                {
                    spec.initial = if saved.up { Health::Up } else { Health::Down };
                    restored.push((region.name.clone(), saved.up));
                }
                specs.insert(probe::CheckId::from(region.name.as_str()), spec);
            }
        }
        let names: Vec<&str> = regions.iter().map(|(name, _)| name.as_str()).collect();
        if let Err(error) = self
            .persisted
            .lock()
            .expect("state file lock")
            .retain_health(&names)
        {
            warn!("{error}");
        }
        if let Err(error) = self.prober.sync(specs).await {
            warn!("{error}");
        }
        let peers: Vec<Peer> = topology
            .dns
            .nodes
            .iter()
            .filter(|n| n.name != self.node)
            .filter_map(|n| {
                n.admin.map(|admin| Peer {
                    name: n.name.clone(),
                    admin,
                })
            })
            .collect();
        {
            let mut state = self.state.lock().expect("monitor state lock");
            state
                .own
                .retain(|name, _| regions.iter().any(|(r, _)| r == name));
            for (region, up) in restored {
                info!(%region, up, "probe verdict restored from the state file");
                state.own.insert(
                    region,
                    OwnOpinion {
                        up,
                        settled: false,
                        last: None,
                        at: Instant::now(),
                    },
                );
            }
            let known = |node: &String, region: &String| {
                (*node == self.node || peers.iter().any(|p| &p.name == node))
                    && regions.iter().any(|(r, _)| r == region)
            };
            state.peers.retain(|(node, region), _| known(node, region));
            state.flaps.retain(|(node, region), _| known(node, region));
            state
                .went_out
                .retain(|region, _| regions.iter().any(|(r, _)| r == region));
            state.regions = regions;
            state.peer_list = peers;
            state.breaker = topology.dns.breaker.clone();
        }
        self.recompute();
    }

    /// This node's own opinions and override slots, for its peers.
    pub fn own_view(&self) -> NodeView {
        let overrides = self
            .persisted
            .lock()
            .expect("state file lock")
            .slots()
            .clone();
        let state = self.state.lock().expect("monitor state lock");
        NodeView {
            node: self.node.clone(),
            overrides,
            regions: state
                .regions
                .iter()
                .map(|(name, _)| {
                    let own = state.own.get(name);
                    (
                        name.clone(),
                        RegionOpinion {
                            up: own.is_none_or(|o| o.up),
                            last: own.and_then(|o| o.last.clone()),
                        },
                    )
                })
                .collect(),
        }
    }

    /// This node's view as the bytes to send, and their signature for
    /// `nonce` when this node has a key and the poller sent a nonce.
    pub fn signed_view(&self, nonce: Option<&str>) -> (Vec<u8>, Option<String>) {
        let body = serde_json::to_vec(&self.own_view()).expect("a view serializes");
        let signature = match (&self.peer_key, nonce.filter(|n| peer::is_nonce(n))) {
            (Some(key), Some(nonce)) => Some(key.sign(&self.node, nonce, &body)),
            _ => None,
        };
        (body, signature)
    }

    /// The health picture for the admin API.
    pub fn status(&self) -> Arc<HealthStatus> {
        self.status.load_full()
    }

    /// Forces `region` out of service.
    pub fn set_override(
        &self,
        region: &str,
        mode: OverrideMode,
        reason: Option<String>,
    ) -> Result<(), StateError> {
        let result = self.persisted.lock().expect("state file lock").set(
            region,
            mode,
            reason,
            millis(SystemTime::now()),
        );
        info!(region, mode = mode.as_str(), "override set");
        if let Err(error) = &result {
            warn!(region, "{error}");
        }
        self.recompute();
        result
    }

    /// Clears the override on `region`; returns whether there was one.
    pub fn clear_override(&self, region: &str) -> Result<bool, StateError> {
        let result = self
            .persisted
            .lock()
            .expect("state file lock")
            .clear(region, millis(SystemTime::now()));
        info!(region, "override cleared");
        if let Err(error) = &result {
            warn!(region, "{error}");
        }
        self.recompute();
        result
    }

    /// Publishes the regions' loads and spill shares measured by
    /// [`crate::load`]; regions left out have no capacity.
    pub fn set_loads(&self, loads: Vec<(String, RegionLoad, api::Load)>) {
        {
            let mut state = self.state.lock().expect("monitor state lock");
            state.loads = loads
                .into_iter()
                .map(|(name, load, status)| (name, (load, status)))
                .collect();
        }
        self.recompute();
    }

    async fn consume(
        self: Arc<Self>,
        mut events: mpsc::Receiver<ProbeEvent>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                event = events.recv() => match event { Some(e) => e, None => return },
                () = shutdown.cancelled() => return,
            };
            let region = event.id.as_str().to_owned();
            if let Some(transition) = &event.transition {
                info!(%region, vantage = %self.node, ?transition, result = %event.result, "probe state changed");
            } else {
                debug!(%region, result = %event.result, "probe");
            }
            self.metrics
                .record_probe(&region, &event.result, event.transition.is_some());
            if let Err(error) = self
                .persisted
                .lock()
                .expect("state file lock")
                .record_health(&region, event.health == Health::Up)
            {
                warn!(%region, "{error}");
            }
            {
                let mut state = self.state.lock().expect("monitor state lock");
                let before = state.own.get(&region).map(|o| ViewState {
                    up: o.up,
                    settled: o.settled,
                });
                let (view, flapped) =
                    ViewState::after(before, event.health == Health::Up, Some(event.result.ok));
                if flapped {
                    state
                        .flaps
                        .entry((self.node.clone(), region.clone()))
                        .or_default()
                        .record(Instant::now());
                }
                state.own.insert(
                    region,
                    OwnOpinion {
                        up: view.up,
                        settled: view.settled,
                        last: Some(last_probe(&event.result)),
                        at: Instant::now(),
                    },
                );
            }
            self.recompute();
        }
    }

    async fn tick(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(RECOMPUTE_EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.recompute(),
                () = self.changed.notified() => self.recompute(),
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn poll_peers(self: Arc<Self>, shutdown: CancellationToken) {
        let client = match probe::plain_http_client().timeout(PEER_TIMEOUT).build() {
            Ok(client) => client,
            Err(error) => {
                warn!(
                    "cannot build the peer HTTP client; vantage views will not be exchanged: {error}"
                );
                return;
            }
        };
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut links = HashMap::new();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let peers = self
                .state
                .lock()
                .expect("monitor state lock")
                .peer_list
                .clone();
            for peer in peers {
                let outcome = self.poll_peer(&client, &peer).await;
                self.report_link(&peer.name, outcome, &mut links);
            }
        }
    }

    /// Asks `peer` for its view and records it if it passes the checks;
    /// `None` when the peer could not be asked (its views go stale).
    async fn poll_peer(&self, client: &reqwest::Client, peer: &Peer) -> Option<Option<Refusal>> {
        let nonce = match peer::nonce() {
            Ok(nonce) => nonce,
            Err(error) => {
                warn!(peer = %peer.name, "no randomness for a nonce; peer view not asked: {error}");
                return None;
            }
        };
        let url = format!("http://{}/v1/view", peer.admin);
        let response = match client
            .get(&url)
            .header(peer::NONCE_HEADER, &nonce)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                debug!(peer = %peer.name, status = %response.status(), "peer view refused");
                return None;
            }
            Err(error) => {
                debug!(peer = %peer.name, %error, "peer view unavailable; it will go stale");
                return None;
            }
        };
        let signature = response
            .headers()
            .get(peer::SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                debug!(peer = %peer.name, %error, "peer view unavailable; it will go stale");
                return None;
            }
        };
        let checked = peer::check(
            self.peer_key.as_ref(),
            &peer.name,
            &nonce,
            signature.as_deref(),
            &body,
        );
        self.metrics
            .record_peer_view(&peer.name, checked.as_ref().err().copied());
        Some(match checked {
            Ok(view) => {
                self.record_peer(&peer.name, view);
                None
            }
            Err(refusal) => Some(refusal),
        })
    }

    /// Logs a peer's views being refused, or believed again, once per
    /// change rather than once per poll; `links` holds each peer's last
    /// outcome.
    fn report_link(
        &self,
        peer: &str,
        outcome: Option<Option<Refusal>>,
        links: &mut HashMap<String, Option<Refusal>>,
    ) {
        let Some(refusal) = outcome else { return };
        let before = links.insert(peer.to_owned(), refusal);
        if before == Some(refusal) {
            return;
        }
        match refusal {
            Some(refusal) => warn!(
                peer,
                reason = refusal.as_str(),
                "peer view refused, not counted: {}",
                refusal.explain()
            ),
            None if matches!(before, Some(Some(_))) => info!(peer, "peer views believed again"),
            None => {}
        }
    }

    /// Records a peer's believed view: its opinions vote, and its override
    /// slots merge into this node's (regions this node knows only).
    fn record_peer(&self, peer: &str, view: NodeView) {
        {
            // The order `recompute` takes them in.
            let mut persisted = self.persisted.lock().expect("state file lock");
            let mut state = self.state.lock().expect("monitor state lock");
            let now = Instant::now();
            for (region, opinion) in view.regions {
                if !state.regions.iter().any(|(r, _)| *r == region) {
                    continue;
                }
                let key = (peer.to_owned(), region);
                let before = state.peers.get(&key).map(|o| ViewState {
                    up: o.up,
                    settled: o.settled,
                });
                let (view, flapped) =
                    ViewState::after(before, opinion.up, opinion.last.as_ref().map(|l| l.ok));
                state.peers.insert(
                    key.clone(),
                    PeerOpinion {
                        up: view.up,
                        settled: view.settled,
                        last: opinion.last,
                        received: now,
                    },
                );
                if flapped {
                    state.flaps.entry(key).or_default().record(now);
                }
            }
            for (region, slot) in &view.overrides {
                if !state.regions.iter().any(|(r, _)| r == region) {
                    continue;
                }
                match persisted.merge(region, slot) {
                    Ok(false) => {}
                    Ok(true) => info!(
                        %region,
                        peer,
                        mode = slot.held.as_ref().map(|h| h.mode.as_str()),
                        written_by = %slot.node,
                        at_ms = slot.at,
                        "override {} by a peer's newer slot",
                        if slot.held.is_some() { "set" } else { "cleared" }
                    ),
                    Err(error) => warn!(%region, "{error}"),
                }
            }
        }
        self.changed.notify_one();
    }

    /// Recomputes verdicts and publishes both snapshots.
    fn recompute(&self) {
        let now = Instant::now();
        let persisted = self.persisted.lock().expect("state file lock");
        let mut guard = self.state.lock().expect("monitor state lock");
        // Borrow the fields apart: the flap counters change while the peer
        // list is read.
        let state = &mut *guard;
        let region_list = state.regions.clone();
        // Every vantage point's view of every region; `opinions[i]` is
        // `vantage[i]`'s.
        let mut views: Vec<(Vec<VantageStatus>, Vec<Opinion>, Duration)> =
            Vec::with_capacity(region_list.len());
        for (name, interval) in &region_list {
            let max_age = *interval * FRESHNESS_INTERVALS;
            let own = state.own.get(name);
            // Before its first probe completes, this node's own view is the
            // probe's initial state (up), and fresh.
            let own_age = own.map_or(Duration::ZERO, |o| now.duration_since(o.at));
            let own_up = own.is_none_or(|o| o.up);
            let own_last = own.and_then(|o| o.last.clone());
            let mut opinions = vec![Opinion {
                up: own_up,
                age: own_age.min(max_age),
            }];
            let mut vantage = vec![VantageStatus {
                node: self.node.clone(),
                state: if own_up { "up" } else { "down" },
                fresh: true,
                abstains: false,
                last: own_last,
                flaps_last_hour: flap_count(&mut state.flaps, &self.node, name, now),
            }];
            for peer in &state.peer_list {
                let Some(opinion) = state.peers.get(&(peer.name.clone(), name.clone())) else {
                    continue;
                };
                let age = now.duration_since(opinion.received);
                let (up, last) = (opinion.up, opinion.last.clone());
                opinions.push(Opinion { up, age });
                vantage.push(VantageStatus {
                    node: peer.name.clone(),
                    state: if up { "up" } else { "down" },
                    fresh: age <= max_age,
                    abstains: false,
                    last,
                    flaps_last_hour: flap_count(&mut state.flaps, &peer.name, name, now),
                });
            }
            views.push((vantage, opinions, max_age));
        }
        let suspects = self.breaker(state, &views);

        let mut up = Vec::with_capacity(region_list.len());
        let mut held_list = Vec::with_capacity(region_list.len());
        let mut went_out = Vec::with_capacity(region_list.len());
        let mut loads = Vec::with_capacity(region_list.len());
        let mut regions = Vec::with_capacity(region_list.len());
        // The count regions going out now are stamped with.
        let going_out = state.changes + 1;
        for ((name, _), (mut vantage, opinions, max_age)) in region_list.iter().zip(views) {
            let mut counted = Vec::with_capacity(opinions.len());
            for (view, opinion) in vantage.iter_mut().zip(opinions) {
                view.abstains = suspects.contains(&view.node);
                self.metrics.set_vantage_region_up(
                    &view.node,
                    name,
                    view.fresh.then_some(view.state == "up"),
                );
                if !view.abstains {
                    counted.push(opinion);
                }
            }
            let verdict = verdict(&counted, max_age);
            self.metrics.set_region_up(name, verdict.up);
            let held = persisted.get(name);
            let in_service = crate::health::in_service(verdict.up, held.is_some());
            let since = match state.in_service.get(name) {
                Some((was, since)) if *was == in_service => *since,
                previous => {
                    if previous.is_some() {
                        info!(
                            region = %name,
                            in_service,
                            up_votes = verdict.up_votes,
                            fresh_views = verdict.fresh,
                            override_mode = held.map(|o| o.mode.as_str()),
                            "region {}", if in_service { "back in service" } else { "out of service" }
                        );
                        self.metrics.record_region_transition(name, in_service);
                        if !in_service {
                            state.went_out.insert(name.clone(), going_out);
                        }
                    }
                    SystemTime::now()
                }
            };
            state.in_service.insert(name.clone(), (in_service, since));
            self.metrics.set_region_in_service(name, in_service);
            up.push(in_service);
            held_list.push(held.is_some());
            went_out.push(state.went_out.get(name).copied().unwrap_or(0));
            let load = state.loads.get(name);
            loads.push(load.map_or(RegionLoad::Unbounded, |(load, _)| *load));
            if let Some((_, status)) = load {
                self.metrics
                    .set_region_load(name, status.current, status.share);
            }
            regions.push(RegionStatus {
                name: name.clone(),
                verdict: if verdict.up { "up" } else { "down" },
                override_mode: held.map(|o| o.mode.as_str()),
                override_reason: held.and_then(|o| o.reason.clone()),
                in_service,
                since_ms: millis(since),
                up_votes: verdict.up_votes,
                fresh_views: verdict.fresh,
                vantage,
                load: load.map(|(_, status)| status.clone()),
            });
        }
        if went_out.contains(&going_out) {
            state.changes = going_out;
        }
        let view = RegionHealth::with_overrides(up, held_list)
            .with_went_out(went_out)
            .with_load(loads);
        if **self.view.load() != view {
            self.view.store(Arc::new(view));
        }
        self.status.store(Arc::new(HealthStatus { regions }));
    }

    /// The vantage points whose votes are set aside now ([`suspects`]
    /// under `dns.breaker`), warning and counting when that changes.
    fn breaker(
        &self,
        state: &mut State,
        views: &[(Vec<VantageStatus>, Vec<Opinion>, Duration)],
    ) -> HashSet<String> {
        let mut nodes: Vec<&str> = vec![&self.node];
        nodes.extend(state.peer_list.iter().map(|p| p.name.as_str()));
        let mut sights = vec![Sight::default(); nodes.len()];
        for view in views.iter().flat_map(|(vantage, _, _)| vantage) {
            if let Some(index) = nodes.iter().position(|n| *n == view.node)
                && view.fresh
            {
                sights[index].fresh += 1;
                sights[index].down += usize::from(view.state != "up");
            }
        }
        let threshold = state.breaker.threshold(views.len());
        let flags = suspects(&sights, threshold);
        let mut now_suspect = HashSet::new();
        for ((node, sight), suspect) in nodes.iter().zip(&sights).zip(flags) {
            self.metrics.set_vantage_suspect(node, suspect);
            let was = state.suspects.contains(*node);
            if suspect && !was {
                warn!(
                    vantage = %node,
                    down = sight.down,
                    regions = sight.fresh,
                    "vantage point sees {} of {} regions down while others do not: likelier its own network; its votes are set aside (fail static)",
                    sight.down,
                    sight.fresh
                );
            } else if !suspect && was {
                info!(vantage = %node, "vantage point's votes counted again");
            }
            if suspect {
                now_suspect.insert((*node).to_owned());
            }
        }
        state.suspects = now_suspect.clone();
        now_suspect
    }
}

/// Changes of `vantage`'s view of `region` within the last hour.
fn flap_count(
    flaps: &mut HashMap<(String, String), Flaps>,
    vantage: &str,
    region: &str,
    now: Instant,
) -> usize {
    flaps
        .get_mut(&(vantage.to_owned(), region.to_owned()))
        .map_or(0, |f| f.count(now))
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn last_probe(result: &ProbeResult) -> LastProbe {
    LastProbe {
        ok: result.ok,
        detail: result.detail.clone(),
        latency_ms: result.latency.as_secs_f64() * 1000.0,
        at_ms: millis(SystemTime::now()),
    }
}
