//! What the query path reads: an immutable snapshot of the zones, built
//! from one validated topology and published atomically, beside the GeoIP
//! database (which reloads on its own). The health view is published
//! separately, by the monitor, at its own pace.

use std::sync::Arc;

use geo_data::WatchedGeoDb;
use topology::Topology;
use topology::dnssec::KeyError;

use crate::dnssec::Signers;
use crate::scope_map::ScopeMaps;
use crate::zone::ZoneSet;

/// Everything needed to answer a query. Replaced whole, never mutated.
pub struct ServingState {
    /// The topology this state was built from.
    pub topology: Arc<Topology>,
    /// Zone data arranged for lookup.
    pub zones: ZoneSet,
    /// Client locations; swaps in a new database when its file changes.
    pub geoip: Arc<WatchedGeoDb>,
    /// Wide ECS scopes per geo name, for the database current at build time.
    pub scopes: ScopeMaps,
    /// Keys and signature caches of the signed zones.
    pub signers: Signers,
}

impl ServingState {
    /// Builds the serving state for `topology`, reading the signed zones'
    /// keys (a key file may have changed since the topology was validated)
    /// and keeping the signatures of `previous` (the state it replaces)
    /// that are still good.
    pub fn new(
        topology: Arc<Topology>,
        geoip: Arc<WatchedGeoDb>,
        previous: Option<&ServingState>,
    ) -> Result<ServingState, KeyError> {
        let signers = Signers::load(&topology, previous.map(|p| &p.signers))?;
        let zones = ZoneSet::build(topology.clone());
        let scopes = ScopeMaps::new(topology.clone(), geoip.current());
        Ok(ServingState {
            topology,
            zones,
            geoip,
            scopes,
            signers,
        })
    }
}
