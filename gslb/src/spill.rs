//! Capacity-aware spill-over: which clients of a region running over its
//! target are answered with the next nearest region that has room, and
//! how that share moves with the region's load.
//!
//! Both halves are pure. [`redirect`] is part of the geo decision: a
//! client is spilled when the named, seeded hash of its /24 (IPv4) or /56
//! (IPv6) falls below the region's share, so raising the share only adds
//! clients and lowering it brings the last ones added back first.
//! [`next_share`] is the controller the telemetry loop runs once per
//! sample: deterministic given the share, the load and the target.

use std::hash::Hasher;
use std::net::IpAddr;

use geo_data::Prefix;
use siphasher::sip::SipHasher13;
use topology::RegionId;

use crate::health::{Load, RegionHealth};

/// Key of the named hash that ranks clients for spill-over: SipHash-1-3
/// keyed with these 16 bytes. Changing it would move different clients.
pub const SPILL_HASH_KEY: &[u8; 16] = b"gslb/spill-ov/v1";

/// Prefix length whose clients spill together, IPv4.
pub const SPILL_PREFIX_V4: u8 = 24;
/// Prefix length whose clients spill together, IPv6.
pub const SPILL_PREFIX_V6: u8 = 56;

/// The load within ± this share of the target holds the spill share
/// where it is: the dead band that keeps it from oscillating.
pub const DEAD_BAND: f64 = 0.05;
/// The most the share moves per sample.
pub const MAX_STEP: f64 = 0.10;
/// The least it moves per sample when outside the dead band, so that it
/// reaches its goal (and 0) in a bounded number of samples.
pub const MIN_STEP: f64 = 0.01;
/// The largest share: a region always keeps its nearest tenth of clients,
/// so its own load stays measured and it is never emptied by spill-over.
pub const MAX_SHARE: f64 = 0.90;

/// A client moved by spill-over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spill {
    /// The region over its target that would have answered.
    pub from: RegionId,
    /// The region that answers instead.
    pub to: RegionId,
    /// `from`'s load, target and share.
    pub load: Load,
}

/// Spill-over applied to one client's preference order.
#[derive(Debug, PartialEq)]
pub struct Redirected {
    /// The order to choose from: unchanged, or only the regions with
    /// headroom (the spilling one left out).
    pub order: Vec<RegionId>,
    /// Set when this client was moved.
    pub spill: Option<Spill>,
    /// When the first region in service spills, the prefix length over
    /// which the answer holds (the hashed network); `None` otherwise.
    pub scope: Option<u8>,
}

/// The region spill-over applies to for `order`: the first in service,
/// when it spills a share of its clients. The fast path leaves such
/// orders to the full decision.
pub fn spilling(order: &[RegionId], health: &RegionHealth) -> Option<(RegionId, Load)> {
    let first = order.iter().copied().find(|id| health.is_up(*id))?;
    health.spilling(first).map(|load| (first, load))
}

/// Applies spill-over to the preference `order` of the client `network`:
/// when the first region in service spills share `s` and the client's
/// [`spill_rank`] is below `s`, it is answered from the regions of the
/// order that have headroom, the spilling one left out, so the next
/// region in service with headroom comes first. With no such region,
/// nobody is moved.
pub fn redirect(order: &[RegionId], health: &RegionHealth, network: Prefix) -> Redirected {
    let unchanged = |scope| Redirected {
        order: order.to_vec(),
        spill: None,
        scope,
    };
    let Some((from, load)) = spilling(order, health) else {
        return unchanged(None);
    };
    let hashed = spill_network(network);
    let scope = Some(hashed.len());
    if spill_rank(hashed) >= load.share() {
        return unchanged(scope);
    }
    // Regions before `from` are out of service: the first in service with
    // headroom is the next after it.
    let with_room: Vec<RegionId> = order
        .iter()
        .copied()
        .filter(|id| *id != from && health.has_headroom(*id))
        .collect();
    let Some(to) = with_room.iter().copied().find(|id| health.is_up(*id)) else {
        return unchanged(scope);
    };
    Redirected {
        order: with_room,
        spill: Some(Spill { from, to, load }),
        scope,
    }
}

/// The network whose clients spill together: `network` truncated to /24
/// (IPv4) or /56 (IPv6), or as it is when it is already wider.
pub fn spill_network(network: Prefix) -> Prefix {
    let len = match network.addr() {
        IpAddr::V4(_) => SPILL_PREFIX_V4,
        IpAddr::V6(_) => SPILL_PREFIX_V6,
    };
    Prefix::new(network.addr(), len.min(network.len())).unwrap_or(network)
}

/// The client network's place in the spill order, in [0, 1): SipHash-1-3
/// keyed with [`SPILL_HASH_KEY`] over the network's address and length.
/// Clients below the share spill.
pub fn spill_rank(network: Prefix) -> f64 {
    let mut hasher = SipHasher13::new_with_key(SPILL_HASH_KEY);
    match network.addr() {
        IpAddr::V4(v4) => hasher.write(&v4.octets()),
        IpAddr::V6(v6) => hasher.write(&v6.octets()),
    }
    hasher.write_u8(network.len());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The controller: the spill share after one more sample of the load, from
/// the share now, the load measured (with that share already spilled) and
/// the target load.
///
/// Within [`DEAD_BAND`] of the target the share holds. Outside it, the
/// share moves toward the one that would bring the load to the target if
/// the load follows the clients kept (`1 − (1 − s)·target/load`), by half
/// the gap, at least [`MIN_STEP`] (never past the goal) and at most
/// [`MAX_STEP`]; kept within [0, [`MAX_SHARE`]]. Halving the gap and the
/// step bound leave room for resolvers' caches to catch up, whose TTL
/// delays the effect of each change.
pub fn next_share(share: f64, load: f64, target: f64) -> f64 {
    let share = share.clamp(0.0, MAX_SHARE);
    if !(load.is_finite() && target > 0.0) {
        return share;
    }
    let utilisation = load / target;
    if (utilisation - 1.0).abs() <= DEAD_BAND {
        return share;
    }
    let goal = if load > 0.0 {
        (1.0 - (1.0 - share) * target / load).clamp(0.0, MAX_SHARE)
    } else {
        0.0
    };
    let gap = goal - share;
    let step = (gap.abs() / 2.0).clamp(MIN_STEP, MAX_STEP).min(gap.abs());
    (share + step.copysign(gap)).clamp(0.0, MAX_SHARE)
}

#[cfg(test)]
mod tests;
