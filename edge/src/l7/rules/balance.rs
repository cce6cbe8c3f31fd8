//! Balancing: which server of a group gets the next request.
//!
//! Pure: every algorithm reads the servers through [`Candidates`] (weight,
//! in-flight requests, latency, eligibility) and takes its randomness as a
//! [`Rng`] argument, so tests drive them with fixed seeds and synthetic
//! loads. The caller decides eligibility (health, ejection, slow start,
//! per-server limits, servers already tried by this request).
//!
//! - [`SmoothWrr`]: nginx's smooth weighted round robin: over any window of
//!   `sum(weights)` picks each server gets exactly its weight, interleaved.
//! - [`least_conn`]: fewest in-flight requests per unit of weight; ties go
//!   to a random one of the tied servers.
//! - [`least_time`]: lowest `(in_flight + 1) × latency / weight` over every
//!   eligible server (p2c's load, compared exhaustively); ties as for
//!   `least_conn`.
//! - [`p2c`]: power of two choices: two distinct eligible servers drawn at
//!   random (weighted), the one with the lower `(in_flight + 1) × latency
//!   EWMA / weight` wins. The default: it reacts to slow and busy servers
//!   without any shared state.
//! - [`HashPicker`]: consistent hashing over a [`MaglevTable`] built from
//!   the configured weights; a key whose server is not eligible is rehashed
//!   (up to [`REHASH_TRIES`] times), so keys of healthy servers never move
//!   when another server goes down.
//! - [`random`]: weighted random.

use crate::maglev::{Backend, HashKey, MaglevError, MaglevTable, TableSize};

/// The named key of the request hash (`hash` algorithm, sticky cookie
/// values): the ASCII bytes `edge/l7/hash/v01`. Every replica uses it, so a
/// client lands on the same server whichever L7 node it reaches.
pub const REQUEST_HASH_KEY: HashKey = HashKey(*b"edge/l7/hash/v01");

/// Maglev table size for pools: a prime that keeps each of up to ~40
/// equally weighted servers within 1% of its share, built in well under a
/// millisecond.
pub const POOL_TABLE_SIZE: u32 = 4099;

/// How often a key whose server is not eligible is rehashed before the
/// picker falls back to the next eligible server in order.
pub const REHASH_TRIES: u64 = 8;

/// The servers of one group as a balancer sees them.
pub trait Candidates {
    /// How many servers (eligible or not).
    fn len(&self) -> usize;
    /// Whether there is no server at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether server `i` may be picked now.
    fn eligible(&self, i: usize) -> bool;
    /// Effective weight of server `i` (slow start applied), at least 1.
    fn weight(&self, i: usize) -> u32;
    /// Requests in flight on server `i`.
    fn in_flight(&self, i: usize) -> u32;
    /// Peak-EWMA latency of server `i` in microseconds (see
    /// [`peak_ewma`]); 0 when unknown.
    fn latency_us(&self, i: usize) -> u64;
}

/// A source of randomness for the balancers.
pub trait Rng {
    /// 64 uniformly random bits.
    fn next_u64(&mut self) -> u64;

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// SplitMix64: tiny, fast and good enough for load balancing.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl Rng for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn eligible_weight_sum(c: &impl Candidates) -> u64 {
    (0..c.len())
        .filter(|&i| c.eligible(i))
        .map(|i| u64::from(c.weight(i).max(1)))
        .sum()
}

/// The eligible server at weighted position `target` (< the eligible
/// weight sum), skipping `skip`.
fn at_weighted(c: &impl Candidates, mut target: u64, skip: Option<usize>) -> Option<usize> {
    for i in 0..c.len() {
        if !c.eligible(i) || Some(i) == skip {
            continue;
        }
        let w = u64::from(c.weight(i).max(1));
        if target < w {
            return Some(i);
        }
        target -= w;
    }
    None
}

/// Weighted random among the eligible servers.
pub fn random(c: &impl Candidates, rng: &mut impl Rng) -> Option<usize> {
    let total = eligible_weight_sum(c);
    if total == 0 {
        return None;
    }
    at_weighted(c, rng.below(total), None)
}

/// The latency estimate after `sample_us` when it was `old_us` (0: never
/// measured): a peak-sensitive EWMA. A sample above the estimate replaces
/// it at once, so a server that turns slow loses traffic on its first slow
/// answer; below it, the estimate decays with α = 1/4, so one fast answer
/// does not clear a slow record. Never 0 once measured.
pub fn peak_ewma(old_us: u64, sample_us: u64) -> u64 {
    if sample_us >= old_us {
        sample_us.max(1)
    } else {
        (old_us - old_us / 4 + sample_us / 4).max(1)
    }
}

/// `(in_flight + 1) × latency`, the load p2c and least_time compare per
/// unit of weight. A server never measured counts as instant, so that it
/// is tried (and measured) as soon as it is drawn instead of starving
/// behind a guess.
fn latency_load(c: &impl Candidates, i: usize) -> u128 {
    u128::from(c.in_flight(i) + 1) * u128::from(c.latency_us(i).max(1))
}

/// Power of two choices on in-flight requests × latency EWMA.
pub fn p2c(c: &impl Candidates, rng: &mut impl Rng) -> Option<usize> {
    let total = eligible_weight_sum(c);
    if total == 0 {
        return None;
    }
    let a = at_weighted(c, rng.below(total), None)?;
    let rest = total - u64::from(c.weight(a).max(1));
    if rest == 0 {
        return Some(a);
    }
    let b = at_weighted(c, rng.below(rest), Some(a))?;
    // Compare load_a / w_a with load_b / w_b without dividing.
    let score_a = latency_load(c, a) * u128::from(c.weight(b).max(1));
    let score_b = latency_load(c, b) * u128::from(c.weight(a).max(1));
    Some(if score_b < score_a { b } else { a })
}

/// Weighted least connections; ties broken at random.
pub fn least_conn(c: &impl Candidates, rng: &mut impl Rng) -> Option<usize> {
    least_by(c, rng, |i| u128::from(c.in_flight(i)))
}

/// Least response time: the lowest `latency_load` per unit of weight;
/// ties broken at random. Servers never measured count as instant, so
/// each is probed as soon as it is eligible.
pub fn least_time(c: &impl Candidates, rng: &mut impl Rng) -> Option<usize> {
    least_by(c, rng, |i| latency_load(c, i))
}

/// The eligible server with the lowest `cost / weight`; among tied servers
/// a random one.
fn least_by(
    c: &impl Candidates,
    rng: &mut impl Rng,
    cost: impl Fn(usize) -> u128,
) -> Option<usize> {
    let n = c.len();
    if n == 0 {
        return None;
    }
    // Start the scan at a random offset: among tied servers the first one
    // scanned wins, so ties are spread.
    let start = rng.below(n as u64) as usize;
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if !c.eligible(i) {
            continue;
        }
        best = Some(match best {
            None => i,
            Some(b) => {
                // cost_i / w_i < cost_b / w_b, without dividing.
                let lhs = cost(i) * u128::from(c.weight(b).max(1));
                let rhs = cost(b) * u128::from(c.weight(i).max(1));
                if lhs < rhs { i } else { b }
            }
        });
    }
    best
}

/// Smooth weighted round robin state for one group of servers.
#[derive(Debug, Clone, Default)]
pub struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    /// State for `n` servers.
    pub fn new(n: usize) -> Self {
        Self {
            current: vec![0; n],
        }
    }

    /// The next server: every eligible server's current weight grows by its
    /// weight, the largest wins and gives back the total.
    pub fn pick(&mut self, c: &impl Candidates) -> Option<usize> {
        if self.current.len() != c.len() {
            self.current = vec![0; c.len()];
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for i in 0..c.len() {
            if !c.eligible(i) {
                continue;
            }
            let w = i64::from(c.weight(i).max(1));
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.current[chosen] -= total;
        Some(chosen)
    }
}

/// Consistent hashing over one group of servers.
#[derive(Debug, Clone)]
pub struct HashPicker {
    table: MaglevTable,
    /// Table backend index → server index in the group.
    to_server: Vec<usize>,
}

impl HashPicker {
    /// A picker over servers named `names` (stable identities, e.g. their
    /// addresses) with `weights`.
    pub fn new(names: &[String], weights: &[u32]) -> Result<Self, MaglevError> {
        let backends: Vec<Backend> = names
            .iter()
            .zip(weights)
            .map(|(name, &weight)| Backend::new(name.clone(), weight))
            .collect();
        let table = MaglevTable::build(&backends, TableSize::new(POOL_TABLE_SIZE)?)?;
        let to_server = table
            .backends()
            .iter()
            .map(|b| names.iter().position(|n| *n == b.name).unwrap_or(0))
            .collect();
        Ok(Self { table, to_server })
    }

    /// The server for `key`: its table slot's server if eligible, else the
    /// first eligible one among up to [`REHASH_TRIES`] rehashes, else the
    /// first eligible server after the key's position.
    pub fn pick(&self, key: u64, c: &impl Candidates) -> Option<usize> {
        let mut k = key;
        for attempt in 0..=REHASH_TRIES {
            if let Some(index) = self.table.lookup(k) {
                let server = self.to_server[index.get()];
                if c.eligible(server) {
                    return Some(server);
                }
            }
            k = mix64(key.wrapping_add(attempt + 1));
        }
        let n = c.len();
        (0..n)
            .map(|d| (key as usize + d) % n)
            .find(|&i| c.eligible(i))
    }
}

/// The hash key of request bytes (client address, header or cookie value)
/// under [`REQUEST_HASH_KEY`].
pub fn request_key(bytes: &[u8]) -> u64 {
    REQUEST_HASH_KEY.hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Fake {
        weight: Vec<u32>,
        in_flight: Vec<u32>,
        latency: Vec<u64>,
        eligible: Vec<bool>,
    }

    impl Fake {
        fn weights(weight: &[u32]) -> Self {
            let n = weight.len();
            Self {
                weight: weight.to_vec(),
                in_flight: vec![0; n],
                latency: vec![0; n],
                eligible: vec![true; n],
            }
        }
    }

    impl Candidates for Fake {
        fn len(&self) -> usize {
            self.weight.len()
        }
        fn eligible(&self, i: usize) -> bool {
            self.eligible[i]
        }
        fn weight(&self, i: usize) -> u32 {
            self.weight[i]
        }
        fn in_flight(&self, i: usize) -> u32 {
            self.in_flight[i]
        }
        fn latency_us(&self, i: usize) -> u64 {
            self.latency[i]
        }
    }

    fn counts(n: usize, picks: impl Iterator<Item = Option<usize>>) -> Vec<u32> {
        let mut counts = vec![0; n];
        for p in picks {
            counts[p.unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn smooth_wrr_is_exact_and_interleaved() {
        let fake = Fake::weights(&[5, 1, 1]);
        let mut wrr = SmoothWrr::new(3);
        let seq: Vec<usize> = (0..7).map(|_| wrr.pick(&fake).unwrap()).collect();
        // nginx's documented sequence for weights 5, 1, 1.
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
        let c = counts(3, (0..700).map(|_| wrr.pick(&fake)));
        assert_eq!(c, [500, 100, 100]);
    }

    #[test]
    fn smooth_wrr_skips_ineligible_servers() {
        let mut fake = Fake::weights(&[1, 1, 1]);
        fake.eligible[1] = false;
        let mut wrr = SmoothWrr::new(3);
        let c = counts(3, (0..100).map(|_| wrr.pick(&fake)));
        assert_eq!(c, [50, 0, 50]);
        fake.eligible = vec![false; 3];
        assert_eq!(wrr.pick(&fake), None);
    }

    #[test]
    fn random_honours_weights() {
        let fake = Fake::weights(&[3, 1]);
        let mut rng = SplitMix64(7);
        let c = counts(2, (0..40_000).map(|_| random(&fake, &mut rng)));
        let share = f64::from(c[0]) / 40_000.0;
        assert!((share - 0.75).abs() < 0.02, "{c:?}");
    }

    #[test]
    fn least_conn_prefers_the_least_loaded_per_weight() {
        let mut fake = Fake::weights(&[1, 1, 2]);
        fake.in_flight = vec![3, 1, 3];
        let mut rng = SplitMix64(1);
        // 1/1 < 3/2 < 3/1
        assert_eq!(least_conn(&fake, &mut rng), Some(1));
        fake.in_flight = vec![3, 2, 3];
        assert_eq!(least_conn(&fake, &mut rng), Some(2));
        fake.eligible[2] = false;
        assert_eq!(least_conn(&fake, &mut rng), Some(1));
    }

    #[test]
    fn least_conn_spreads_ties() {
        let fake = Fake::weights(&[1, 1, 1, 1]);
        let mut rng = SplitMix64(3);
        let c = counts(4, (0..4000).map(|_| least_conn(&fake, &mut rng)));
        assert!(c.iter().all(|&n| (800..1200).contains(&n)), "{c:?}");
    }

    #[test]
    fn p2c_avoids_slow_and_busy_servers() {
        let mut fake = Fake::weights(&[1, 1, 1]);
        fake.latency = vec![1000, 1000, 50_000];
        let mut rng = SplitMix64(11);
        let c = counts(3, (0..3000).map(|_| p2c(&fake, &mut rng)));
        // The slow server only wins when drawn against itself, which p2c
        // never does (two distinct servers): it gets nothing.
        assert_eq!(c[2], 0, "{c:?}");
        fake.latency = vec![0; 3];
        fake.in_flight = vec![0, 10, 10];
        let c = counts(3, (0..3000).map(|_| p2c(&fake, &mut rng)));
        assert!(c[0] > 1900, "{c:?}");
    }

    #[test]
    fn p2c_with_equal_loads_is_uniform_and_honours_weights() {
        let mut fake = Fake::weights(&[1, 1, 2]);
        // Equal load per unit of weight: the first drawn wins, so shares
        // follow the weights.
        fake.in_flight = vec![1, 1, 3];
        let mut rng = SplitMix64(5);
        let c = counts(3, (0..40_000).map(|_| p2c(&fake, &mut rng)));
        assert!((f64::from(c[2]) / 40_000.0 - 0.5).abs() < 0.02, "{c:?}");
        let single = Fake::weights(&[4]);
        assert_eq!(p2c(&single, &mut rng), Some(0));
        assert_eq!(p2c(&Fake::weights(&[]), &mut rng), None);
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        // (old, sample, new)
        let cases = [
            (0, 0, 1),
            (0, 800, 800),
            (1000, 5000, 5000),
            (1000, 1000, 1000),
            (4000, 0, 3000),
            (4000, 2000, 3500),
            (1, 0, 1),
        ];
        for (old, sample, new) in cases {
            assert_eq!(peak_ewma(old, sample), new, "{old} then {sample}");
        }
    }

    #[test]
    fn least_time_picks_the_lowest_latency_load_per_weight() {
        // (weights, in flight, latencies µs, eligible, pick)
        type Case = (
            &'static [u32],
            &'static [u32],
            &'static [u64],
            &'static [bool],
            Option<usize>,
        );
        let cases: [Case; 7] = [
            // Latency alone.
            (
                &[1, 1, 1],
                &[0, 0, 0],
                &[3000, 1000, 2000],
                &[true; 3],
                Some(1),
            ),
            // In flight: 3 × 1000 > 1 × 2000.
            (&[1, 1], &[2, 0], &[1000, 2000], &[true; 2], Some(1)),
            // Weight divides: 2 × 2000 / 4 < 1 × 2000 / 1.
            (&[1, 4], &[0, 1], &[2000, 2000], &[true; 2], Some(1)),
            // Never measured counts as the best, busy or not.
            (&[1, 1], &[0, 5], &[10, 0], &[true; 2], Some(1)),
            // The best server not eligible.
            (
                &[1, 1, 1],
                &[0, 0, 0],
                &[3000, 1000, 2000],
                &[true, false, true],
                Some(2),
            ),
            (&[1], &[0], &[0], &[false], None),
            (&[], &[], &[], &[], None),
        ];
        for (weight, in_flight, latency, eligible, pick) in cases {
            let fake = Fake {
                weight: weight.to_vec(),
                in_flight: in_flight.to_vec(),
                latency: latency.to_vec(),
                eligible: eligible.to_vec(),
            };
            for seed in 0..8 {
                let got = least_time(&fake, &mut SplitMix64(seed));
                assert_eq!(
                    got, pick,
                    "{weight:?} {in_flight:?} {latency:?} {eligible:?}"
                );
            }
        }
    }

    #[test]
    fn least_time_spreads_ties() {
        let mut fake = Fake::weights(&[1, 1, 1, 1]);
        fake.latency = vec![1000; 4];
        let mut rng = SplitMix64(9);
        let c = counts(4, (0..4000).map(|_| least_time(&fake, &mut rng)));
        assert!(c.iter().all(|&n| (800..1200).contains(&n)), "{c:?}");
    }

    #[test]
    fn least_time_starves_a_slow_server() {
        // Three servers answer in 2, 2 and 20 ms; three requests arrive per
        // millisecond. Each answer feeds the server's latency estimate, as
        // the proxy does; in-flight counts rise and fall with the requests.
        let service_ms = [2u64, 2, 20];
        let mut fake = Fake::weights(&[1, 1, 1]);
        let mut rng = SplitMix64(21);
        // (finish time, server) of the requests in flight.
        let mut running: Vec<(u64, usize)> = Vec::new();
        let mut picks = [0u32; 3];
        for now in 0..10_000u64 {
            running.retain(|&(done, server)| {
                if done > now {
                    return true;
                }
                fake.in_flight[server] -= 1;
                fake.latency[server] = peak_ewma(fake.latency[server], service_ms[server] * 1000);
                false
            });
            for _ in 0..3 {
                let server = least_time(&fake, &mut rng).unwrap();
                picks[server] += 1;
                fake.in_flight[server] += 1;
                running.push((now + service_ms[server], server));
            }
        }
        let total: u32 = picks.iter().sum();
        let share = |i: usize| f64::from(picks[i]) / f64::from(total);
        assert!(share(2) < 0.15, "{picks:?}");
        assert!(share(0) > 0.35 && share(1) > 0.35, "{picks:?}");
        assert!((share(0) - share(1)).abs() < 0.1, "{picks:?}");
    }

    #[test]
    fn hashing_is_stable_and_moves_only_the_lost_servers_keys() {
        let names: Vec<String> = (0..5).map(|i| format!("10.0.0.{i}:80")).collect();
        let picker = HashPicker::new(&names, &[1; 5]).unwrap();
        let mut fake = Fake::weights(&[1; 5]);
        let before: Vec<usize> = (0..5000u64)
            .map(|k| picker.pick(request_key(&k.to_be_bytes()), &fake).unwrap())
            .collect();
        let c = counts(5, before.iter().map(|&s| Some(s)));
        assert!(c.iter().all(|&n| (850..1150).contains(&n)), "{c:?}");
        fake.eligible[2] = false;
        let mut moved = 0;
        for (k, &was) in (0..5000u64).zip(&before) {
            let now = picker.pick(request_key(&k.to_be_bytes()), &fake).unwrap();
            assert_ne!(now, 2);
            if was != 2 {
                assert_eq!(now, was, "key {k} moved off a healthy server");
            } else {
                moved += 1;
            }
        }
        assert_eq!(moved, c[2]);
        fake.eligible = vec![false; 5];
        assert_eq!(picker.pick(1, &fake), None);
    }

    #[test]
    fn the_request_hash_is_pinned() {
        // Golden vectors: changing the key or the hash breaks every sticky
        // client of every deployed replica.
        assert_eq!(request_key(b""), 17_291_452_322_634_180_786);
    }
}
