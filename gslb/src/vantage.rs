//! Combining the views of several vantage points into one verdict per
//! region: a region is up when a majority of the *fresh* views say so, as
//! Route 53 and Cloudflare do with their checkers.
//!
//! Pure: views carry their age, the caller supplies the freshness limit.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
