//! What the query path reads: an immutable snapshot of the zones, built
//! from one validated topology and published atomically.

use std::sync::Arc;

use topology::Topology;

use crate::dns::WireRecords;
use crate::zone::ZoneSet;

/// Everything needed to answer a query. Replaced whole, never mutated.
pub struct ServingState {
    /// The topology this state was built from.
    pub topology: Arc<Topology>,
    /// Zone data arranged for lookup.
    pub zones: ZoneSet,
    /// The zones' RRsets in wire form.
    pub wire: WireRecords,
}

impl ServingState {
    /// Builds the serving state for `topology`.
    pub fn new(topology: Arc<Topology>) -> ServingState {
        let zones = ZoneSet::build(&topology);
        let wire = WireRecords::build(&zones);
        ServingState {
            topology,
            zones,
            wire,
        }
    }
}
