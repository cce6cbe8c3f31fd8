//! Interval spreading: a small seeded RNG and the pure function that turns
//! one random draw into a jittered interval. Seeded so tests (and replays of
//! an incident) are deterministic; per-check streams so checks drift apart.

use std::time::Duration;

/// Default interval spread: each interval is drawn from ±10% around the
/// configured one, so that many checks started together drift apart.
pub const DEFAULT_JITTER: f64 = 0.10;
/// Largest allowed [`ProbeSpec::jitter`](crate::ProbeSpec::jitter)
/// (HAProxy's `spread-checks` caps at 50%).
pub const MAX_JITTER: f64 = 0.5;

/// SplitMix64: tiny, fast, statistically fine for spreading timers (not for
/// anything security-related). Same seed, same sequence, on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose sequence is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A seed for the stream of check `name`, derived from the prober seed
    /// with FNV-1a, so adding a check does not shift the others' streams.
    pub fn derive(seed: u64, name: &str, generation: u64) -> Self {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01B3);
        }
        let mut mix = Self::new(seed ^ h ^ generation.rotate_left(32));
        Self::new(mix.next_u64())
    }
}

/// Maps 64 random bits to a uniform float in `[0, 1)`.
pub fn unit(bits: u64) -> f64 {
    // 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// `interval` spread by `±jitter` (a fraction; clamped to `0..=1`) using the
/// random draw `bits`: the result lies in
/// `[interval × (1 − jitter), interval × (1 + jitter)]`, uniformly (the
/// upper bound is reachable only through floating-point rounding).
pub fn jittered(interval: Duration, jitter: f64, bits: u64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let factor = 1.0 + jitter * (2.0 * unit(bits) - 1.0);
    interval.mul_f64(factor)
}

/// The delay before a check's first probe: uniform in
/// `[0, interval × jitter)`, so checks added together (at startup or by a
/// reload) do not all fire in the same instant, while a check never waits
/// long for its first verdict.
pub fn first_delay(interval: Duration, jitter: f64, bits: u64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    interval.mul_f64(jitter * unit(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_sequence() {
        // Pinned so a change of generator is a deliberate, visible change.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn derived_streams_differ_per_check_and_repeat_per_seed() {
        let a = SplitMix64::derive(7, "eu-west", 0).next_u64();
        let b = SplitMix64::derive(7, "us-east", 0).next_u64();
        let c = SplitMix64::derive(7, "eu-west", 1).next_u64();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, SplitMix64::derive(7, "eu-west", 0).next_u64());
    }

    #[test]
    fn extremes() {
        let i = Duration::from_secs(2);
        assert_eq!(jittered(i, 0.1, 0), Duration::from_millis(1800));
        assert!(jittered(i, 0.1, u64::MAX) <= Duration::from_millis(2200));
        assert_eq!(jittered(i, 0.0, 12345), i);
        assert_eq!(jittered(i, f64::NAN, 12345), i);
        assert_eq!(first_delay(i, 0.1, 0), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_bounds(ms in 100u64..100_000, jitter in 0.0f64..=0.5, bits in any::<u64>()) {
            let i = Duration::from_millis(ms);
            let d = jittered(i, jitter, bits);
            prop_assert!(d >= i.mul_f64(1.0 - jitter) - Duration::from_nanos(1));
            prop_assert!(d <= i.mul_f64(1.0 + jitter));
            prop_assert!(first_delay(i, jitter, bits) <= i.mul_f64(jitter));
        }
    }
}
