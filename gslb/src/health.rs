//! The health view the query path reads: which regions may be answered.
//!
//! Probes, vantage-point quorum and operator overrides produce it; the
//! decision only reads it.

use topology::RegionId;

/// Whether each region is in service, indexed by [`RegionId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionHealth {
    up: Vec<bool>,
}

impl RegionHealth {
    /// Every one of `regions` regions in service.
    pub fn all_up(regions: usize) -> RegionHealth {
        RegionHealth {
            up: vec![true; regions],
        }
    }

    /// A view with the given states.
    pub fn from_states(up: Vec<bool>) -> RegionHealth {
        RegionHealth { up }
    }

    /// Whether `region` may be answered. Regions the view does not know
    /// (added by a reload before the health data caught up) count as up.
    pub fn is_up(&self, region: RegionId) -> bool {
        self.up.get(region.0).copied().unwrap_or(true)
    }
}
