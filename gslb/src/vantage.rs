//! Combining the views of several vantage points into one verdict per
//! region: a region is up when a majority of the *fresh* views say so, as
//! Route 53 and Cloudflare do with their checkers; a vantage point that
//! sees nearly every region down while others do not abstains (the
//! fail-static breaker, [`suspects`]).
//!
//! Pure: views carry their age, the caller supplies the freshness limit
//! and the clock.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How far back [`Flaps`] counts: the health matrix's "flaps in the last
/// hour".
pub const FLAP_WINDOW: Duration = Duration::from_secs(3600);

/// One vantage point's opinion of one region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opinion {
    /// Whether its probes (after hysteresis) say the region is up.
    pub up: bool,
    /// How old the view is.
    pub age: Duration,
}

/// The outcome of a quorum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Up or down.
    pub up: bool,
    /// Fresh views that said up.
    pub up_votes: usize,
    /// Fresh views counted.
    pub fresh: usize,
}

/// The verdict from `opinions`, counting only views younger than
/// `max_age`. Up needs at least half the fresh views (a tie keeps the
/// region in service: a wrong "down" moves traffic, a wrong "up" only
/// delays moving it). With no fresh view at all the region stays up — the
/// same fail-open stance as gdnsd.
pub fn verdict(opinions: &[Opinion], max_age: Duration) -> Verdict {
    let fresh: Vec<&Opinion> = opinions.iter().filter(|o| o.age <= max_age).collect();
    let up_votes = fresh.iter().filter(|o| o.up).count();
    Verdict {
        up: fresh.is_empty() || up_votes * 2 >= fresh.len(),
        up_votes,
        fresh: fresh.len(),
    }
}

/// What one vantage point's fresh views say, over every region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sight {
    /// Regions its fresh views see down.
    pub down: usize,
    /// Regions it has a fresh view of.
    pub fresh: usize,
}

/// Which vantage points abstain, parallel to `sights`: those that see at
/// least `threshold` regions down (`dns.breaker`; `None`: never) while
/// another vantage point with fresh views sees fewer. One node cut off
/// from the regions (its uplink, its resolver, a firewall) then cannot
/// pull them out everywhere. When every vantage point sees that much down
/// nobody abstains: the outage is believed, and the names' `all_down`
/// policy (`last_known_good` to fail static) decides.
pub fn suspects(sights: &[Sight], threshold: Option<usize>) -> Vec<bool> {
    let Some(threshold) = threshold else {
        return vec![false; sights.len()];
    };
    let sees_most_down = |s: &Sight| s.fresh > 0 && s.down >= threshold;
    sights
        .iter()
        .enumerate()
        .map(|(index, sight)| {
            sees_most_down(sight)
                && sights
                    .iter()
                    .enumerate()
                    .any(|(other, s)| other != index && s.fresh > 0 && !sees_most_down(s))
        })
        .collect()
}

/// One vantage point's view of one region, for counting flaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewState {
    /// Up or down (after hysteresis).
    pub up: bool,
    /// Whether a probe has confirmed it: the assumed initial state (up
    /// before the first probes decide) is not, so leaving it is no flap.
    pub settled: bool,
}

impl ViewState {
    /// The view after news of it (`up`, its latest probe passing or not)
    /// following `before`, and whether the news is a flap: a change from a
    /// settled state.
    pub fn after(before: Option<ViewState>, up: bool, probe_ok: Option<bool>) -> (ViewState, bool) {
        let flapped = before.is_some_and(|b| b.settled && b.up != up);
        // Once settled, a change comes from enough agreeing probes
        // (hysteresis), so the new state is settled too.
        let settled = probe_ok == Some(up) || before.is_some_and(|b| b.settled);
        (ViewState { up, settled }, flapped)
    }
}

/// When one vantage point's view of one region changed (up to down or
/// back), over the last [`FLAP_WINDOW`]: a region that flaps from one
/// vantage point only points at that path, not at the region.
#[derive(Clone, Debug, Default)]
pub struct Flaps {
    at: VecDeque<Instant>,
}

impl Flaps {
    /// Records a change at `now`.
    pub fn record(&mut self, now: Instant) {
        self.forget(now);
        self.at.push_back(now);
    }

    /// Changes within [`FLAP_WINDOW`] before `now`.
    pub fn count(&mut self, now: Instant) -> usize {
        self.forget(now);
        self.at.len()
    }

    fn forget(&mut self, now: Instant) {
        while self
            .at
            .front()
            .is_some_and(|at| now.duration_since(*at) > FLAP_WINDOW)
        {
            self.at.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sight(down: usize, fresh: usize) -> Sight {
        Sight { down, fresh }
    }

    #[test]
    fn the_breaker_sets_aside_a_vantage_point_that_alone_sees_everything_down() {
        // Three regions, threshold "all but one" = 2.
        // (sights, threshold, suspects, why)
        type Case<'a> = (&'a [Sight], Option<usize>, &'a [bool], &'a str);
        let cases: [Case; 8] = [
            (
                &[sight(3, 3), sight(0, 3), sight(0, 3)],
                Some(2),
                &[true, false, false],
                "one node cut off",
            ),
            (
                &[sight(2, 3), sight(1, 3), sight(0, 3)],
                Some(2),
                &[true, false, false],
                "all but one is enough",
            ),
            (
                &[sight(1, 3), sight(1, 3), sight(1, 3)],
                Some(2),
                &[false; 3],
                "one region down everywhere: a real outage",
            ),
            (
                &[sight(3, 3), sight(3, 3), sight(3, 3)],
                Some(2),
                &[false; 3],
                "everything down everywhere: believed, all_down decides",
            ),
            (
                &[sight(3, 3), sight(3, 3), sight(0, 3)],
                Some(2),
                &[true, true, false],
                "two cut off, one sees fine",
            ),
            (
                &[sight(3, 3), sight(0, 0)],
                Some(2),
                &[false, false],
                "a peer without fresh views is no witness",
            ),
            (
                &[sight(3, 3)],
                Some(2),
                &[false],
                "a lone node decides alone",
            ),
            (
                &[sight(3, 3), sight(0, 3)],
                None,
                &[false, false],
                "breaker off",
            ),
        ];
        for (sights, threshold, expected, why) in cases {
            assert_eq!(suspects(sights, threshold), expected, "{why}");
        }
    }

    #[test]
    fn abstaining_changes_the_quorum() {
        // ns1 is cut off (sees all down), ns2 sees the region down, ns3 up:
        // counted together the region would go down 2 to 1; with ns1 set
        // aside it is a tie, which keeps it in service.
        let all = [o(false, 0), o(false, 0), o(true, 0)];
        assert!(!verdict(&all, FRESH).up);
        assert!(verdict(&all[1..], FRESH).up);
    }

    #[test]
    fn leaving_the_assumed_initial_state_is_no_flap() {
        // Up assumed; the first probe fails (fall not reached yet).
        let (view, flapped) = ViewState::after(None, true, Some(false));
        assert!(!flapped && !view.settled);
        // The second failure takes it down: the first real verdict.
        let (view, flapped) = ViewState::after(Some(view), false, Some(false));
        assert!(!flapped && view.settled);
        // Back up, then down again: two flaps.
        let (view, flapped) = ViewState::after(Some(view), true, Some(true));
        assert!(flapped && view.settled);
        let (_, flapped) = ViewState::after(Some(view), false, Some(false));
        assert!(flapped);
        // A peer's view with no probe yet settles nothing.
        let (view, _) = ViewState::after(None, true, None);
        assert!(!view.settled);
        let (_, flapped) = ViewState::after(Some(view), false, Some(false));
        assert!(!flapped);
    }

    #[test]
    fn flaps_count_the_last_hour_only() {
        let start = Instant::now();
        let mut flaps = Flaps::default();
        assert_eq!(flaps.count(start), 0);
        flaps.record(start);
        flaps.record(start + Duration::from_secs(600));
        flaps.record(start + Duration::from_secs(1200));
        assert_eq!(flaps.count(start + Duration::from_secs(1800)), 3);
        // The first change is older than an hour now.
        assert_eq!(flaps.count(start + Duration::from_secs(3601)), 2);
        assert_eq!(flaps.count(start + Duration::from_secs(1200 + 3601)), 0);
    }

    fn o(up: bool, age_secs: u64) -> Opinion {
        Opinion {
            up,
            age: Duration::from_secs(age_secs),
        }
    }

    const FRESH: Duration = Duration::from_secs(6);

    #[test]
    fn a_single_node_decides_alone() {
        assert!(verdict(&[o(true, 0)], FRESH).up);
        assert!(!verdict(&[o(false, 0)], FRESH).up);
    }

    #[test]
    fn one_vantage_point_cannot_take_a_region_down() {
        assert!(verdict(&[o(true, 0), o(true, 1), o(false, 0)], FRESH).up);
        assert!(!verdict(&[o(false, 0), o(true, 1), o(false, 0)], FRESH).up);
    }

    #[test]
    fn stale_views_do_not_vote() {
        // The node that still says up has not reported for 10s.
        let v = verdict(&[o(false, 0), o(true, 10)], FRESH);
        assert!(!v.up);
        assert_eq!((v.up_votes, v.fresh), (0, 1));
    }

    #[test]
    fn ties_keep_the_region_in_service() {
        assert!(verdict(&[o(true, 0), o(false, 0)], FRESH).up);
    }
}
