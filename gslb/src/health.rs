//! The health view the query path reads: which regions may be answered.
//!
//! Probes, vantage-point quorum and operator overrides produce it; the
//! decision only reads it.

use topology::RegionId;

/// Whether each region is in service, indexed by [`RegionId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionHealth {
    up: Vec<bool>,
    /// Regions an operator took out (`fail`/`drain`): never answered while
    /// any other candidate remains, even when failing open.
    held: Vec<bool>,
}

impl RegionHealth {
    /// Every one of `regions` regions in service.
    pub fn all_up(regions: usize) -> RegionHealth {
        RegionHealth::from_states(vec![true; regions])
    }

    /// A view with the given states and no overrides.
    pub fn from_states(up: Vec<bool>) -> RegionHealth {
        let held = vec![false; up.len()];
        RegionHealth { up, held }
    }

    /// A view with the given states, `held` marking regions out by operator
    /// override (which are never `up`).
    pub fn with_overrides(up: Vec<bool>, held: Vec<bool>) -> RegionHealth {
        RegionHealth { up, held }
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
