//! The Up/Down state machine that turns a stream of probe results into a
//! stable health state: `rise` consecutive successes to go Up, `fall`
//! consecutive failures to go Down (HAProxy's `rise`/`fall`, gdnsd's
//! hysteresis). Pure: no I/O, no clock.

use std::fmt;

/// The health of a target as decided by hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Health {
    /// Serving: traffic may be sent.
    #[default]
    Up,
    /// Not serving: traffic must go elsewhere.
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// A state change and the evidence for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: Health,
    /// The state after.
    pub to: Health,
    /// How many consecutive results of the deciding kind (successes for Up,
    /// failures for Down) ended with this one. Equals `threshold`.
    pub streak: u32,
    /// The configured threshold that was reached (`rise` or `fall`).
    pub threshold: u32,
}

/// Rise/fall hysteresis over consecutive probe results.
///
/// Contract:
/// - In state Up, the state becomes Down exactly on the `fall`-th consecutive
///   failure; any success resets the failure count.
/// - In state Down, the state becomes Up exactly on the `rise`-th consecutive
///   success; any failure resets the success count.
/// - A transition resets the opposite streak, so after going Down at least
///   `rise` successes recorded *after* that transition precede the next Up,
///   and vice versa.
/// - With `rise, fall >= 2`, a strictly alternating stream never transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    state: Health,
    successes: u32,
    failures: u32,
}

impl Hysteresis {
    /// A machine starting in `initial` with no evidence either way.
    ///
    /// A threshold of 0 is treated as 1 (validation rejects 0 before this is
    /// reached; the clamp keeps the machine meaningful regardless).
    pub fn new(initial: Health, rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            state: initial,
            successes: 0,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> Health {
        self.state
    }

    /// Consecutive successes ending with the latest result (0 if it failed).
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// Consecutive failures ending with the latest result (0 if it succeeded).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Whether a streak towards the other state is in progress (HAProxy's
    /// "UP, going down" / "DOWN, going up"): the scheduler probes at the
    /// fast interval meanwhile.
    pub fn is_settling(&self) -> bool {
        match self.state {
            Health::Up => self.failures > 0,
            Health::Down => self.successes > 0,
        }
    }

    /// Records one probe result; returns the transition it caused, if any.
    pub fn record(&mut self, ok: bool) -> Option<Transition> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
        }
        let (to, streak, threshold) = match self.state {
            Health::Up if self.failures >= self.fall => (Health::Down, self.failures, self.fall),
            Health::Down if self.successes >= self.rise => (Health::Up, self.successes, self.rise),
            _ => return None,
        };
        let from = self.state;
        self.state = to;
        Some(Transition {
            from,
            to,
            streak,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn goes_down_on_the_fall_th_failure_and_up_on_the_rise_th_success() {
        let mut h = Hysteresis::new(Health::Up, 2, 3);
        assert_eq!(h.record(false), None);
        assert!(h.is_settling());
        assert_eq!(h.record(false), None);
        let t = h.record(false).unwrap();
        assert_eq!(
            t,
            Transition {
                from: Health::Up,
                to: Health::Down,
                streak: 3,
                threshold: 3
            }
        );
        assert!(!h.is_settling());
        assert_eq!(
            h.record(false),
            None,
            "further failures do not re-transition"
        );
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None, "a failure resets the success streak");
        assert_eq!(h.record(true), None);
        let t = h.record(true).unwrap();
        assert_eq!(
            (t.from, t.to, t.streak, t.threshold),
            (Health::Down, Health::Up, 2, 2)
        );
    }

    #[test]
    fn initial_down_needs_rise_successes() {
        let mut h = Hysteresis::new(Health::Down, 2, 3);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true).map(|t| t.to), Some(Health::Up));
    }

    #[test]
    fn thresholds_of_one_flip_immediately_and_zero_is_clamped() {
        let mut h = Hysteresis::new(Health::Up, 0, 1);
        assert_eq!(h.record(false).map(|t| t.to), Some(Health::Down));
        assert_eq!(h.record(true).map(|t| t.to), Some(Health::Up));
    }

    /// The reference definition: a transition to Down happens at index `i`
    /// iff the state is Up and the last `fall` results, all recorded after
    /// the previous transition, are failures (symmetrically for Up).
    fn oracle(initial: Health, rise: u32, fall: u32, results: &[bool]) -> Vec<(usize, Health)> {
        let mut state = initial;
        let mut last_transition: Option<usize> = None;
        let mut out = Vec::new();
        for i in 0..results.len() {
            let (need, want_ok, to) = match state {
                Health::Up => (fall.max(1) as usize, false, Health::Down),
                Health::Down => (rise.max(1) as usize, true, Health::Up),
            };
            let start = (i + 1).checked_sub(need);
            let window_ok = start.is_some_and(|s| {
                last_transition.is_none_or(|t| s > t)
                    && results[s..=i].iter().all(|&r| r == want_ok)
            });
            // ("after the previous transition" is implied: the result that
            // caused it is of the other kind.)
            if window_ok {
                state = to;
                last_transition = Some(i);
                out.push((i, to));
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_the_reference_definition(
            initial in prop_oneof![Just(Health::Up), Just(Health::Down)],
            rise in 1u32..6,
            fall in 1u32..6,
            results in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut h = Hysteresis::new(initial, rise, fall);
            let mut got = Vec::new();
            let mut state = initial;
            for (i, &ok) in results.iter().enumerate() {
                if let Some(t) = h.record(ok) {
                    prop_assert_eq!(t.from, state, "transition starts from the current state");
                    prop_assert_ne!(t.from, t.to);
                    prop_assert_eq!(t.streak, t.threshold);
                    prop_assert_eq!(t.threshold, if t.to == Health::Up { rise } else { fall });
                    state = t.to;
                    got.push((i, t.to));
                }
                prop_assert_eq!(h.state(), state);
            }
            prop_assert_eq!(got, oracle(initial, rise, fall, &results));
        }

        #[test]
        fn transitions_are_bounded_by_the_thresholds(
            rise in 1u32..6,
            fall in 1u32..6,
            results in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut h = Hysteresis::new(Health::Up, rise, fall);
            let mut transitions = Vec::new();
            for (i, &ok) in results.iter().enumerate() {
                if let Some(t) = h.record(ok) {
                    transitions.push((i, t));
                }
            }
            // Each transition consumes at least its threshold of results
            // recorded after the previous one.
            let mut prev_end: Option<usize> = None;
            for (i, t) in &transitions {
                let consumed = prev_end.map_or(i + 1, |p| i - p);
                prop_assert!(consumed >= t.threshold as usize);
                prev_end = Some(*i);
            }
            let min = rise.min(fall) as usize;
            prop_assert!(transitions.len() <= results.len() / min);
        }

        #[test]
        fn alternating_results_never_transition(
            initial in prop_oneof![Just(Health::Up), Just(Health::Down)],
            rise in 2u32..10,
            fall in 2u32..10,
            first in any::<bool>(),
            len in 0usize..500,
        ) {
            let mut h = Hysteresis::new(initial, rise, fall);
            for i in 0..len {
                prop_assert_eq!(h.record((i % 2 == 0) == first), None);
            }
            prop_assert_eq!(h.state(), initial);
        }

        #[test]
        fn after_down_rise_successes_precede_the_next_up(
            rise in 1u32..6,
            fall in 1u32..6,
            results in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let mut h = Hysteresis::new(Health::Up, rise, fall);
            let mut last_down: Option<usize> = None;
            for (i, &ok) in results.iter().enumerate() {
                match h.record(ok) {
                    Some(t) if t.to == Health::Down => last_down = Some(i),
                    Some(t) if t.to == Health::Up => {
                        let d = last_down.expect("Up only after a Down when starting Up");
                        let since = &results[d + 1..=i];
                        prop_assert!(since.len() >= rise as usize);
                        prop_assert!(since[since.len() - rise as usize..].iter().all(|&r| r));
                    }
                    _ => {}
                }
            }
        }
    }
}
