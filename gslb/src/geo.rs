//! Answering geo names: looks the client up in the GeoIP database and asks
//! [`crate::decide`] for the regions, keeping the decision for the caller
//! (metrics, explanations).

use std::sync::Arc;

use geo_data::GeoDb;
use topology::{GeoName, RecordType, Topology};

use crate::client::Client;
use crate::decide::{AddressFamily, ClientLocation, Decision, decide};
use crate::health::RegionHealth;
use crate::resolve::{GeoAnswer, GeoAnswerer};
use crate::scope_map::ScopeMaps;
use crate::zone::ZoneData;

/// Answers geo names for one client.
pub struct GeoResolver<'a> {
    topology: &'a Topology,
    db: &'a Arc<GeoDb>,
    scopes: Option<&'a ScopeMaps>,
    health: &'a RegionHealth,
    client: &'a Client,
    /// The last decision made, if any.
    pub decision: Option<Decision>,
}

impl<'a> GeoResolver<'a> {
    /// A resolver for `client`.
    pub fn new(
        topology: &'a Topology,
        db: &'a Arc<GeoDb>,
        scopes: Option<&'a ScopeMaps>,
        health: &'a RegionHealth,
        client: &'a Client,
    ) -> Self {
        GeoResolver {
            topology,
            db,
            scopes,
            health,
            client,
            decision: None,
        }
    }

    /// Where the database places the client.
    pub fn locate(&self) -> ClientLocation<'a> {
        let lookup = self.db.lookup(self.client.network.addr());
        ClientLocation {
            client: self.client,
            network: lookup.network,
            location: lookup.location.map(|(_, location)| location),
        }
    }
}

impl GeoAnswerer for GeoResolver<'_> {
    fn answer(&mut self, _zone: &ZoneData, geo: &GeoName, rtype: RecordType) -> Option<GeoAnswer> {
        let family = match rtype {
            RecordType::A => AddressFamily::V4,
            RecordType::Aaaa => AddressFamily::V6,
            _ => return None,
        };
        let mut located = self.locate();
        // Widen to every neighbouring network the same region order serves.
        if let Some(widest) = self
            .scopes
            .and_then(|scopes| scopes.widest(self.db, &geo.name, self.client.network.addr()))
            && widest.len() < located.network.len()
        {
            located.network = widest;
        }
        let decision = decide(self.topology, geo, family, &located, self.health);
        let answer = GeoAnswer {
            addresses: decision.addresses.clone(),
            ttl: decision.ttl,
            scope: decision.scope,
        };
        self.decision = Some(decision);
        Some(answer)
    }
}
