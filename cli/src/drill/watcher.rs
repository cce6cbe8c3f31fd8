//! The drill watcher: turns what a drill observes — DNS answers and the
//! GSLB nodes' views of the region, each with its time — into the
//! timeline's events, and decides when there is nothing more to wait for.
//! Pure: no sockets, no clock; `gtm fail` moves a region's clients away,
//! `gtm recover` brings them back, and both feed one of these.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use topology::Topology;

use crate::admin::RegionStatus;
use crate::deployed::describe_answer;
use crate::timeline::{Event, epoch_ms, format_duration, offset_ms};

use super::Watch;

/// Which way a drill moves the region's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `gtm fail`: away from the region's VIP.
    Away,
    /// `gtm recover`: back to it.
    Back,
}

/// A moment the GSLB reported: when (ms after the start), which node,
/// what.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    at_ms: f64,
    node: String,
    detail: String,
}

/// The state of one drill's watch.
#[derive(Clone, Debug)]
pub struct Watcher {
    direction: Direction,
    region: String,
    vip: IpAddr,
    client: String,
    /// The wall clock at the start, which the GSLB's timestamps are
    /// measured from.
    start: SystemTime,
    /// Whether any GSLB node has an admin API to read views from.
    gslb: bool,
    /// Whether the region's probes must change their verdict (its L4 was
    /// stopped or restarted), as opposed to an override alone.
    probes: bool,
    moved: Option<(Duration, Vec<IpAddr>)>,
    probe: Option<Seen>,
    marked: Option<Seen>,
    last_answer: Vec<IpAddr>,
    last_error: Option<String>,
}

impl Watcher {
    /// A watch of `watch`'s question for `region`, started at the wall
    /// clock time `start`. `gslb`: GSLB views can be read; `probes`: the
    /// region's probes must change their verdict.
    pub fn new(
        direction: Direction,
        region: &str,
        watch: &Watch,
        start: SystemTime,
        gslb: bool,
        probes: bool,
    ) -> Watcher {
        Watcher {
            direction,
            region: region.to_owned(),
            vip: watch.vip,
            client: watch.client_label(),
            start,
            gslb,
            probes,
            moved: None,
            probe: None,
            marked: None,
            // A failed region's client was answered its VIP when the watch
            // was chosen; a recovering one's answer is not known yet.
            last_answer: match direction {
                Direction::Away => vec![watch.vip],
                Direction::Back => Vec::new(),
            },
            last_error: None,
        }
    }

    /// A DNS answer (or why there was none) `elapsed` after the start.
    pub fn answer(&mut self, elapsed: Duration, answer: Result<Vec<IpAddr>, String>) {
        match answer {
            Ok(answer) => {
                let has_vip = answer.contains(&self.vip);
                let moved = match self.direction {
                    Direction::Away => !has_vip,
                    Direction::Back => has_vip,
                };
                if self.moved.is_none() && moved {
                    self.moved = Some((elapsed, answer.clone()));
                }
                self.last_answer = answer;
            }
            Err(error) => self.last_error = Some(error),
        }
    }

    /// Whether a GSLB view could still add an event.
    pub fn wants_views(&self) -> bool {
        self.gslb && ((self.probes && self.probe.is_none()) || self.marked.is_none())
    }

    /// `node`'s view of the region, read `elapsed` after the start.
    pub fn view(&mut self, elapsed: Duration, node: &str, view: &RegionStatus) {
        let back = self.direction == Direction::Back;
        if self.probes && self.probe.is_none() {
            self.probe = probe_after(view, back, self.start);
        }
        if self.marked.is_none() && view.in_service == back {
            // The GSLB's own time of the change, unless it predates the
            // drill (then the change seen is older: take when it was read).
            let at_ms = Some(offset_ms(epoch_ms(view.since_ms), self.start))
                .filter(|ms| *ms >= -50.0)
                .unwrap_or(elapsed.as_secs_f64() * 1000.0);
            let detail = match (self.direction, &view.override_mode) {
                (Direction::Back, _) => format!("{} in service", self.region),
                (Direction::Away, Some(o)) => {
                    format!("{} out of service (override {o})", self.region)
                }
                (Direction::Away, None) => {
                    format!("{} out of service (verdict {})", self.region, view.verdict)
                }
            };
            self.marked = Some(Seen {
                at_ms,
                node: node.to_owned(),
                detail,
            });
        }
    }

    /// Whether the drill is over: the answers moved, and the GSLB's side
    /// was seen (if it can be). Coming back with no restart, only the
    /// override was in the way: once answered again there is nothing more
    /// to wait for (a region whose probes still fail is answered only while
    /// every region fails open).
    pub fn done(&self) -> bool {
        let gslb_seen =
            !self.gslb || (self.marked.is_some() && (!self.probes || self.probe.is_some()));
        self.moved.is_some() && (gslb_seen || (self.direction == Direction::Back && !self.probes))
    }

    /// How long after the start the answers moved.
    pub fn moved_after(&self) -> Option<Duration> {
        self.moved.as_ref().map(|(at, _)| *at)
    }

    /// The latest answer.
    pub fn last_answer(&self) -> &[IpAddr] {
        &self.last_answer
    }

    /// The timeline's events as observed, for a watch that lasted at most
    /// `timeout`. Away, the GSLB's events not seen are listed with why;
    /// back, only those seen.
    pub fn events(&self, topology: &Topology, timeout: Duration) -> Vec<Event> {
        let (probe, marked, moved) = match self.direction {
            Direction::Away => (
                "first probe failure",
                "region marked down",
                "answered elsewhere",
            ),
            Direction::Back => ("first probe ok", "region back in service", "answered again"),
        };
        let unseen = |label| {
            (self.direction == Direction::Away).then(|| {
                let why = if self.gslb {
                    "not observed in the GSLB's status"
                } else {
                    "not observed: no DNS node has an admin API (dns.nodes[].admin)"
                };
                Event::unseen(label, why)
            })
        };
        let mut events = Vec::new();
        if self.probes {
            events.extend(match &self.probe {
                Some(seen) => Some(Event::at_ms(
                    probe,
                    seen.at_ms,
                    format!("{} → {}: {}", seen.node, self.region, seen.detail),
                )),
                None => unseen(probe),
            });
        }
        events.extend(match &self.marked {
            Some(seen) => Some(Event::at_ms(
                marked,
                seen.at_ms,
                format!("{}: {}", seen.node, seen.detail),
            )),
            None => unseen(marked),
        });
        events.push(match (&self.moved, self.direction) {
            (Some((at, answer)), Direction::Away) => Event::at(
                moved,
                *at,
                format!(
                    "first answer for {} without {}: {}",
                    self.client,
                    self.region,
                    describe_answer(topology, answer)
                ),
            ),
            (Some((at, _)), Direction::Back) => Event::at(
                moved,
                *at,
                format!(
                    "{} gets {}",
                    self.client,
                    describe_answer(topology, &[self.vip])
                ),
            ),
            (None, _) => Event::unseen(
                moved,
                format!(
                    "still {} after {}{}",
                    describe_answer(topology, &self.last_answer),
                    format_duration(timeout),
                    self.last_error
                        .as_ref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
            ),
        });
        events
    }
}

/// The earliest probe of `view` with outcome `ok` made at or after `since`:
/// (milliseconds after `since`, vantage node, detail).
fn probe_after(view: &RegionStatus, ok: bool, since: SystemTime) -> Option<Seen> {
    view.vantage
        .iter()
        .filter_map(|v| {
            let last = v.last.as_ref()?;
            if last.ok != ok {
                return None;
            }
            let at_ms = offset_ms(epoch_ms(last.at_ms), since);
            // A little slack: the GSLB's clock stamps the end of a probe
            // that may have started just before the injection.
            (at_ms >= -50.0).then(|| Seen {
                at_ms,
                node: v.node.clone(),
                detail: last.detail.clone(),
            })
        })
        .min_by(|a, b| a.at_ms.total_cmp(&b.at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::admin::api::gslb::{Probe, Vantage, Vip};

    const START_MS: u64 = 1_800_000_000_000;
    const VIP: [u8; 4] = [127, 0, 1, 1];
    const ELSEWHERE: [u8; 4] = [127, 0, 2, 1];

    fn start() -> SystemTime {
        epoch_ms(START_MS)
    }

    fn topology() -> Topology {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/three-regions.yaml");
        topology::load(&path).expect("the example loads")
    }

    fn watch() -> Watch {
        Watch {
            name: "www.example.com.".into(),
            rtype: "A",
            server: "127.0.0.1:5353".parse().unwrap(),
            client: IpAddr::from([8, 8, 8, 1]),
            place: Some("United States".into()),
            vip: IpAddr::from(VIP),
        }
    }

    fn probe(node: &str, ok: bool, after_ms: i64) -> Vantage {
        Vantage {
            node: node.into(),
            state: if ok { "up" } else { "down" }.into(),
            fresh: true,
            abstains: false,
            last: Some(Probe {
                ok,
                detail: if ok { "HTTP 200" } else { "connection refused" }.into(),
                latency_ms: 1.0,
                at_ms: START_MS.saturating_add_signed(after_ms),
            }),
            flaps_last_hour: 0,
        }
    }

    fn view(in_service: bool, since_after_ms: i64, vantage: Vec<Vantage>) -> RegionStatus {
        RegionStatus {
            name: "us-east".into(),
            vip: Vip {
                ipv4: Some("127.0.1.1".into()),
                ipv6: None,
            },
            verdict: if in_service { "up" } else { "down" }.into(),
            override_mode: None,
            override_reason: None,
            in_service,
            since_ms: START_MS.saturating_add_signed(since_after_ms),
            quorum: None,
            vantage,
            load: None,
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_earliest_matching_probe_after_the_start_is_found() {
        let view = view(
            true,
            0,
            vec![
                probe("ns1", false, 2000),
                probe("ns2", false, 1000),
                probe("ns3", false, -5000),
                probe("ns4", true, 500),
            ],
        );
        let seen = probe_after(&view, false, start()).unwrap();
        assert_eq!((seen.at_ms.round(), seen.node.as_str()), (1000.0, "ns2"));
        assert_eq!(seen.detail, "connection refused");
        assert_eq!(probe_after(&view, true, start()).unwrap().node, "ns4");
    }

    #[test]
    fn a_killed_region_is_followed_until_the_gslb_and_the_answers_agree() {
        let mut watcher = Watcher::new(Direction::Away, "us-east", &watch(), start(), true, true);
        watcher.answer(ms(100), Ok(vec![IpAddr::from(VIP)]));
        watcher.view(
            ms(100),
            "ns1",
            &view(true, -60_000, vec![probe("ns1", true, -900)]),
        );
        assert!(watcher.wants_views() && !watcher.done());
        // The probes fail, the region goes down, then the answers move.
        watcher.view(
            ms(700),
            "ns1",
            &view(false, 650, vec![probe("ns1", false, 400)]),
        );
        assert!(!watcher.wants_views() && !watcher.done());
        watcher.answer(ms(900), Err("timed out".into()));
        watcher.answer(ms(1000), Ok(vec![IpAddr::from(ELSEWHERE)]));
        assert!(watcher.done());
        assert_eq!(watcher.moved_after(), Some(ms(1000)));
        assert_eq!(watcher.last_answer(), [IpAddr::from(ELSEWHERE)]);
        let events = watcher.events(&topology(), Duration::from_secs(10));
        assert_eq!(
            events,
            [
                Event::at_ms(
                    "first probe failure",
                    400.0,
                    "ns1 → us-east: connection refused"
                ),
                Event::at_ms(
                    "region marked down",
                    650.0,
                    "ns1: us-east out of service (verdict down)"
                ),
                Event::at(
                    "answered elsewhere",
                    ms(1000),
                    "first answer for 8.8.8.0/24 (United States) without us-east: 127.0.2.1 (eu-west)"
                ),
            ]
        );
    }

    #[test]
    fn moved_answers_alone_do_not_end_a_drill_the_gslb_has_not_confirmed() {
        let mut watcher = Watcher::new(Direction::Away, "us-east", &watch(), start(), true, false);
        watcher.answer(ms(50), Ok(vec![IpAddr::from(ELSEWHERE)]));
        assert!(!watcher.done());
        let mut drained = view(false, -10_000, Vec::new());
        drained.override_mode = Some("drain".into());
        // `since` before the start: the time it was read is taken.
        watcher.view(ms(80), "ns2", &drained);
        assert!(watcher.done());
        assert_eq!(
            watcher.events(&topology(), ms(500))[0],
            Event::at_ms(
                "region marked down",
                80.0,
                "ns2: us-east out of service (override drain)"
            )
        );
    }

    #[test]
    fn without_a_gslb_admin_api_what_was_not_seen_says_why() {
        let mut watcher = Watcher::new(Direction::Away, "us-east", &watch(), start(), false, true);
        assert!(!watcher.wants_views());
        watcher.answer(ms(100), Err("timed out".into()));
        assert!(!watcher.done());
        let events = watcher.events(&topology(), Duration::from_secs(3));
        let why = "not observed: no DNS node has an admin API (dns.nodes[].admin)";
        assert_eq!(
            events,
            [
                Event::unseen("first probe failure", why),
                Event::unseen("region marked down", why),
                Event::unseen(
                    "answered elsewhere",
                    "still 127.0.1.1 (us-east) after 3.00 s (last error: timed out)"
                ),
            ]
        );
    }

    #[test]
    fn a_recovery_without_restarts_ends_when_answered_again() {
        let mut watcher = Watcher::new(Direction::Back, "us-east", &watch(), start(), true, false);
        watcher.answer(ms(20), Ok(vec![IpAddr::from(ELSEWHERE)]));
        assert!(!watcher.done());
        watcher.answer(ms(120), Ok(vec![IpAddr::from(VIP)]));
        assert!(watcher.done());
        // Nothing seen of the GSLB: nothing listed.
        assert_eq!(
            watcher.events(&topology(), ms(500)),
            [Event::at(
                "answered again",
                ms(120),
                "8.8.8.0/24 (United States) gets 127.0.1.1 (us-east)"
            )]
        );
    }

    #[test]
    fn a_restarted_region_is_back_once_probed_ok_and_in_service() {
        let mut watcher = Watcher::new(Direction::Back, "us-east", &watch(), start(), true, true);
        watcher.answer(ms(300), Ok(vec![IpAddr::from(VIP)]));
        assert!(!watcher.done());
        watcher.view(
            ms(400),
            "ns1",
            &view(true, 350, vec![probe("ns1", true, 200)]),
        );
        assert!(watcher.done());
        let events = watcher.events(&topology(), ms(500));
        assert_eq!(
            events[..2],
            [
                Event::at_ms("first probe ok", 200.0, "ns1 → us-east: HTTP 200"),
                Event::at_ms("region back in service", 350.0, "ns1: us-east in service"),
            ]
        );
    }
}
