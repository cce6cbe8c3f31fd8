//! The health view the query path reads: which regions may be answered.
//!
//! Probes, vantage-point quorum and operator overrides produce it; the
//! decision only reads it.

use topology::{LoadUnit, RegionId};

/// Whether a region may be answered: its probe verdict (the quorum) says
/// up and no operator override holds it out.
pub fn in_service(verdict_up: bool, held: bool) -> bool {
    verdict_up && !held
}

/// Spill shares are kept in basis points: whole numbers keep the view
/// comparable (`Eq`), so an unchanged view is not republished.
pub const SHARE_SCALE: u16 = 10_000;

/// A region's load as the spill-over rule reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegionLoad {
    /// No capacity declared: it never spills and always has room.
    #[default]
    Unbounded,
    /// A capacity is declared but its telemetry is missing or stale: it
    /// never spills (fail-static) and receives no spill, since its
    /// headroom is not known.
    Unknown,
    /// Measured from its edge nodes.
    Measured(Load),
}

/// A region's measured load against its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// What it is measured in.
    pub unit: LoadUnit,
    /// The load now, rounded.
    pub current: u64,
    /// `target × capacity`, rounded.
    pub target: u64,
    /// The share of its clients answered elsewhere, in 1/[`SHARE_SCALE`]
    /// (below 1).
    pub share: u16,
}

impl Load {
    /// The spill share as a fraction in [0, 1).
    pub fn share(&self) -> f64 {
        f64::from(self.share) / f64::from(SHARE_SCALE)
    }

    /// Whether the region runs at or over its target.
    pub fn is_full(&self) -> bool {
        self.current >= self.target
    }
}

/// Whether each region is in service, indexed by [`RegionId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionHealth {
    up: Vec<bool>,
    /// Regions an operator took out (`fail`/`drain`): never answered while
    /// any other candidate remains, even when failing open.
    held: Vec<bool>,
    /// When each region last went out of service, as a count of the
    /// monitor's changes (0: not since the node started). Regions that
    /// went out together share the count; the `last_known_good` policy
    /// answers those that went out last.
    went_out: Vec<u64>,
    /// Each region's load and spill share.
    load: Vec<RegionLoad>,
}

impl RegionHealth {
    /// Every one of `regions` regions in service.
    pub fn all_up(regions: usize) -> RegionHealth {
        RegionHealth::from_states(vec![true; regions])
    }

    /// A view with the given states and no overrides.
    pub fn from_states(up: Vec<bool>) -> RegionHealth {
        let held = vec![false; up.len()];
        RegionHealth::with_overrides(up, held)
    }

    /// A view with the given states, `held` marking regions out by operator
    /// override (which are never `up`).
    pub fn with_overrides(up: Vec<bool>, held: Vec<bool>) -> RegionHealth {
        let went_out = vec![0; up.len()];
        let load = vec![RegionLoad::Unbounded; up.len()];
        RegionHealth {
            up,
            held,
            went_out,
            load,
        }
    }

    /// This view with each region's load, indexed by [`RegionId`].
    pub fn with_load(mut self, load: Vec<RegionLoad>) -> RegionHealth {
        self.load = load;
        self
    }

    /// `region`'s load as last measured.
    pub fn load(&self, region: RegionId) -> RegionLoad {
        self.load.get(region.0).copied().unwrap_or_default()
    }

    /// The measured load of `region` when it spills a share of its
    /// clients (the share is above 0).
    pub fn spilling(&self, region: RegionId) -> Option<Load> {
        match self.load(region) {
            RegionLoad::Measured(load) if load.share > 0 => Some(load),
            _ => None,
        }
    }

    /// Whether `region` may take clients spilled from another: it has no
    /// capacity declared, or its fresh load is under its target.
    pub fn has_headroom(&self, region: RegionId) -> bool {
        match self.load(region) {
            RegionLoad::Unbounded => true,
            RegionLoad::Unknown => false,
            RegionLoad::Measured(load) => !load.is_full(),
        }
    }

    /// This view with when each region last went out of service (see
    /// [`RegionHealth::went_out`]), indexed by [`RegionId`].
    pub fn with_went_out(mut self, went_out: Vec<u64>) -> RegionHealth {
        self.went_out = went_out;
        self
    }

    /// When `region` last went out of service, as a count of changes that
    /// only grows; 0 when it has not since the node started.
    pub fn went_out(&self, region: RegionId) -> u64 {
        self.went_out.get(region.0).copied().unwrap_or(0)
    }

    /// This view with `region` held out by an operator (`held`) or not,
    /// its probe verdict being `verdict_up`: in service only when up and
    /// not held ([`in_service`]). A region this takes out of service went
    /// out after every other.
    pub fn with_held(&self, region: RegionId, held: bool, verdict_up: bool) -> RegionHealth {
        let mut after = self.clone();
        let Some(slot) = after.up.get_mut(region.0) else {
            return after;
        };
        let was = *slot;
        *slot = in_service(verdict_up, held);
        after.held[region.0] = held;
        if was && !*slot {
            let last = self.went_out.iter().copied().max().unwrap_or(0);
            if let Some(stamp) = after.went_out.get_mut(region.0) {
                *stamp = last + 1;
            }
        }
        after
    }

    /// Whether an operator took `region` out of service.
    pub fn is_held(&self, region: RegionId) -> bool {
        self.held.get(region.0).copied().unwrap_or(false)
    }

    /// Whether `region` may be answered. Regions the view does not know
    /// (added by a reload before the health data caught up) count as up.
    pub fn is_up(&self, region: RegionId) -> bool {
        self.up.get(region.0).copied().unwrap_or(true)
    }
}
