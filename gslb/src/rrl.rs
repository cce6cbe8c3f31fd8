//! Response rate limiting (RRL) of UDP replies, in the style of Knot and
//! BIND: a spoofed flood must not turn the server into an amplifier, and a
//! real client over the limit still gets through over TCP.
//!
//! Replies are counted per *bucket*: the client's network (/24 or /56 by
//! default), the reply's class (answer, referral, NODATA, NXDOMAIN, error)
//! and, for answers and referrals, the question name — so a flood of
//! random names from one network shares one NXDOMAIN bucket, and a
//! resolver asking many names is not limited by one. Each bucket is a
//! token bucket (GCRA: one timestamp per bucket, lock-free) allowing
//! `responses_per_second` with bursts of `burst`. Over the limit, a reply
//! is dropped, except every `slip`th, which goes out truncated (TC set, no
//! records) so a real client retries over TCP, which is never limited.
//!
//! Buckets live in a fixed table of atomics indexed by a keyed hash;
//! colliding buckets replace each other, which can only let a reply
//! through, never block one wrongly for long. Pure apart from the table:
//! the time is a parameter.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use geo_data::Prefix;
use topology::RateLimit;

/// Buckets in the table (a power of two): 512 KiB of atomics.
const TABLE_SLOTS: usize = 1 << 16;
/// Bits of a slot holding the bucket's theoretical arrival time (µs since
/// the limiter started: about 8.9 years); the rest is a tag of the key.
const TIME_BITS: u32 = 48;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// What kind of reply a bucket counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// NOERROR with answer records.
    Answer,
    /// NOERROR, no answer, AA clear, authority records: a delegation.
    Referral,
    /// NOERROR, no answer, authoritative.
    NoData,
    /// NXDOMAIN.
    NxDomain,
    /// Any other RCODE (REFUSED, FORMERR, NOTIMP, BADVERS…).
    Error,
}

/// What to do with one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: send it.
    Send,
    /// Over the rate, but this one goes out truncated.
    Slip,
    /// Over the rate: drop it.
    Drop,
}

/// The limiter for one configuration; shared by every UDP worker.
pub struct RateLimiter {
    config: RateLimit,
    table: Box<[AtomicU64]>,
    hasher: RandomState,
    epoch: Instant,
    /// Microseconds between two replies at the configured rate.
    interval_us: u64,
    /// How far ahead of now a bucket's time may run: `(burst - 1)` intervals.
    tolerance_us: u64,
    limited: AtomicU64,
    slipped: AtomicU64,
}

impl RateLimiter {
    /// A limiter for `config`, or `None` when rate limiting is off.
    pub fn new(config: &RateLimit, now: Instant) -> Option<RateLimiter> {
        if !config.enabled {
            return None;
        }
        let interval_us = 1_000_000 / u64::from(config.responses_per_second.max(1));
        Some(RateLimiter {
            config: config.clone(),
            table: (0..TABLE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            // Keyed per process: an attacker cannot aim collisions.
            hasher: RandomState::new(),
            epoch: now,
            interval_us: interval_us.max(1),
            tolerance_us: interval_us * u64::from(config.burst.max(1) - 1),
            limited: AtomicU64::new(0),
            slipped: AtomicU64::new(0),
        })
    }

    /// The configuration this limiter enforces.
    pub fn config(&self) -> &RateLimit {
        &self.config
    }

    /// Whether `client` is never limited.
    pub fn is_exempt(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.config.exempt.iter().any(|net| net.contains(client))
    }

    /// Whether one more reply of `class` about `name` (wire form, any case)
    /// to `client` fits its bucket at `now`; counts it if so.
    pub fn allow(&self, client: IpAddr, class: Class, name: &[u8], now: Instant) -> bool {
        let key = self.key(client, class, name);
        let slot = &self.table[(key as usize) & (TABLE_SLOTS - 1)];
        let tag = key >> TIME_BITS;
        let now_us = (now.saturating_duration_since(self.epoch).as_micros() as u64) & TIME_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let arrival = if current >> TIME_BITS == tag {
                (current & TIME_MASK).max(now_us)
            } else {
                // An empty slot, or another bucket's: start afresh.
                now_us
            };
            if arrival - now_us > self.tolerance_us {
                return false;
            }
            let next = (tag << TIME_BITS) | ((arrival + self.interval_us) & TIME_MASK);
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// The verdict on `reply` (the encoded message) to `client` at `now`.
    /// `slips` counts this worker's limited replies, for the slip rate.
    pub fn judge(&self, client: IpAddr, reply: &[u8], now: Instant, slips: &mut u64) -> Verdict {
        let (class, name) = classify(reply);
        if self.allow(client, class, name, now) {
            return Verdict::Send;
        }
        *slips += 1;
        let slip = u64::from(self.config.slip);
        if slip > 0 && slips.is_multiple_of(slip) {
            self.slipped.fetch_add(1, Ordering::Relaxed);
            Verdict::Slip
        } else {
            self.limited.fetch_add(1, Ordering::Relaxed);
            Verdict::Drop
        }
    }

    /// Replies dropped and replies truncated so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.limited.load(Ordering::Relaxed),
            self.slipped.load(Ordering::Relaxed),
        )
    }

    fn key(&self, client: IpAddr, class: Class, name: &[u8]) -> u64 {
        let client = client.to_canonical();
        let len = match client {
            IpAddr::V4(_) => self.config.ipv4_prefix,
            IpAddr::V6(_) => self.config.ipv6_prefix,
        };
        let network = Prefix::new(client, len).map_or(client, |p| p.addr());
        let mut hasher = self.hasher.build_hasher();
        match network {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        hasher.write_u8(class as u8);
        if matches!(class, Class::Answer | Class::Referral) {
            for byte in name {
                hasher.write_u8(byte.to_ascii_lowercase());
            }
        }
        hasher.finish()
    }
}

/// The class of an encoded reply and its question name (empty if none).
pub fn classify(reply: &[u8]) -> (Class, &[u8]) {
    let Some(header) = reply.get(..12) else {
        return (Class::Error, &[]);
    };
    let name = question_name(reply);
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let authoritative = header[2] & 0x04 != 0;
    let class = match header[3] & 0x0F {
        3 => Class::NxDomain,
        0 if count(6) > 0 => Class::Answer,
        0 if !authoritative && count(8) > 0 => Class::Referral,
        0 if authoritative => Class::NoData,
        _ => Class::Error,
    };
    (class, name)
}

/// The question name of a message (uncompressed), or nothing.
fn question_name(message: &[u8]) -> &[u8] {
    if message.get(4..6) != Some(&[0, 1]) {
        return &[];
    }
    let mut at = 12;
    loop {
        match message.get(at) {
            Some(0) => return &message[12..=at],
            Some(&len) if len <= 63 => at += 1 + usize::from(len),
            _ => return &[],
        }
    }
}

/// Rewrites the reply in `reply` (its first `len` bytes) as its truncated
/// form — TC set, the question kept, every section emptied — and returns
/// the new length.
pub fn truncate(reply: &mut [u8], len: usize) -> usize {
    let name = question_name(&reply[..len]).len();
    let keep = if name > 0 && 12 + name + 4 <= len {
        12 + name + 4
    } else {
        12.min(len)
    };
    if keep >= 12 {
        reply[2] |= 0x02;
        if name == 0 {
            reply[4..6].fill(0);
        }
        reply[6..12].fill(0);
    }
    keep
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rate: u32, burst: u32, slip: u32) -> (RateLimiter, Instant) {
        let config = RateLimit {
            responses_per_second: rate,
            burst,
            slip,
            exempt: Vec::new(),
            ..RateLimit::default()
        };
        let now = Instant::now();
        (RateLimiter::new(&config, now).unwrap(), now)
    }

    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let (limiter, start) = limiter(10, 5, 2);
        let client = ip("192.0.2.1");
        let allowed = (0..20)
            .filter(|_| limiter.allow(client, Class::Answer, WWW, start))
            .count();
        assert_eq!(allowed, 5, "the burst, and no more at the same instant");
        // 100 ms later, one more (10 per second).
        assert!(limiter.allow(
            client,
            Class::Answer,
            WWW,
            start + Duration::from_millis(100)
        ));
        assert!(!limiter.allow(
            client,
            Class::Answer,
            WWW,
            start + Duration::from_millis(100)
        ));
        // A second later the bucket has refilled to its burst.
        let later = start + Duration::from_secs(2);
        let allowed = (0..20)
            .filter(|_| limiter.allow(client, Class::Answer, WWW, later))
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn buckets_are_per_network_class_and_name() {
        let (limiter, now) = limiter(1, 1, 2);
        assert!(limiter.allow(ip("192.0.2.1"), Class::Answer, WWW, now));
        // Same /24: same bucket, whatever the case of the name.
        assert!(!limiter.allow(
            ip("192.0.2.200"),
            Class::Answer,
            b"\x03WWW\x07example\x03com\x00",
            now
        ));
        // Another /24, another class, another name: other buckets.
        assert!(limiter.allow(ip("192.0.3.1"), Class::Answer, WWW, now));
        assert!(limiter.allow(ip("192.0.2.1"), Class::NxDomain, WWW, now));
        assert!(limiter.allow(
            ip("192.0.2.1"),
            Class::Answer,
            b"\x03api\x07example\x03com\x00",
            now
        ));
        // Negative answers share one bucket whatever the name.
        assert!(!limiter.allow(ip("192.0.2.1"), Class::NxDomain, b"\x05other\x00", now));
        // IPv6: the /56.
        assert!(limiter.allow(ip("2001:db8:0:100::1"), Class::Answer, WWW, now));
        assert!(!limiter.allow(ip("2001:db8:0:1ff::2"), Class::Answer, WWW, now));
        assert!(limiter.allow(ip("2001:db8:0:200::1"), Class::Answer, WWW, now));
    }

    #[test]
    fn every_slip_th_limited_reply_is_truncated() {
        let (limiter, now) = limiter(1, 1, 3);
        let reply = reply(0x84, 0, 1);
        let mut slips = 0;
        let verdicts: Vec<Verdict> = (0..7)
            .map(|_| limiter.judge(ip("192.0.2.1"), &reply, now, &mut slips))
            .collect();
        use Verdict::*;
        assert_eq!(verdicts, [Send, Drop, Drop, Slip, Drop, Drop, Slip]);
        assert_eq!(limiter.counts(), (4, 2));
    }

    #[test]
    fn loopback_is_exempt_by_default() {
        let limiter = RateLimiter::new(&RateLimit::default(), Instant::now()).unwrap();
        assert!(limiter.is_exempt(ip("127.0.0.1")));
        assert!(limiter.is_exempt(ip("::1")));
        assert!(limiter.is_exempt(ip("::ffff:127.0.0.9")));
        assert!(!limiter.is_exempt(ip("192.0.2.1")));
        let off = RateLimit {
            enabled: false,
            ..RateLimit::default()
        };
        assert!(RateLimiter::new(&off, Instant::now()).is_none());
    }

    /// A reply to www.example.com A with the given flags byte, RCODE and
    /// answer count.
    fn reply(flags: u8, rcode: u8, answers: u16) -> Vec<u8> {
        let mut reply = vec![0x12, 0x34, flags, rcode, 0, 1];
        reply.extend_from_slice(&answers.to_be_bytes());
        reply.extend_from_slice(&[0, 0, 0, 0]);
        reply.extend_from_slice(WWW);
        reply.extend_from_slice(&[0, 1, 0, 1]);
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 0, 0, 1]);
        reply
    }

    #[test]
    fn replies_are_classified_by_rcode_flags_and_counts() {
        assert_eq!(classify(&reply(0x84, 0, 1)), (Class::Answer, WWW));
        assert_eq!(classify(&reply(0x84, 3, 0)).0, Class::NxDomain);
        assert_eq!(classify(&reply(0x84, 0, 0)).0, Class::NoData);
        let mut referral = reply(0x80, 0, 0);
        referral[9] = 1;
        assert_eq!(classify(&referral).0, Class::Referral);
        assert_eq!(classify(&reply(0x80, 5, 0)).0, Class::Error);
        assert_eq!(classify(&[0; 5]).0, Class::Error);
    }

    #[test]
    fn a_truncated_reply_keeps_the_question_only() {
        let mut bytes = reply(0x85, 0, 1);
        let len = bytes.len();
        let cut = truncate(&mut bytes, len);
        assert_eq!(cut, 12 + WWW.len() + 4);
        assert_eq!(bytes[2], 0x87, "TC set, AA and RD kept");
        assert_eq!(&bytes[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[12..12 + WWW.len()], WWW);
    }
}
