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

impl GeoResolver<'_> {
    /// The decision for `geo` in one address family, as an A or AAAA
    /// query for it is decided.
    fn decide(&self, geo: &GeoName, family: AddressFamily) -> Decision {
        let mut located = self.locate();
        // Widen to every neighbouring network the same region order serves.
        if let Some(widest) = self
            .scopes
            .and_then(|scopes| scopes.widest(self.db, &geo.name, self.client.network.addr()))
            && widest.len() < located.network.len()
        {
            located.network = widest;
        }
        decide(self.topology, geo, family, &located, self.health)
    }

    /// The HTTPS answer: one record per region the A and AAAA answers
    /// give this client (those of the A answer first), each with that
    /// region's addresses, port and the configured ALPN ids, so a client
    /// following it reaches the region its addresses point at. Regions
    /// answered only by fixed `all_down` fallback addresses have no
    /// record: the client then uses A and AAAA.
    fn https(&mut self, geo: &GeoName) -> Option<GeoAnswer> {
        let https = geo.https.as_ref()?;
        let v4 = self.decide(geo, AddressFamily::V4);
        let v6 = self.decide(geo, AddressFamily::V6);
        let mut regions = v4.chosen.clone();
        regions.extend(v6.chosen.iter().filter(|id| !v4.chosen.contains(id)));
        let answer = GeoAnswer {
            addresses: Vec::new(),
            // Equal priorities: like the addresses of an A RRset, the
            // records are alternatives the client picks among.
            https: regions
                .iter()
                .map(|id| https.record(1, &self.topology.region(*id).vip))
                .collect(),
            ttl: v4.ttl.min(v6.ttl),
            // The answer holds where both decisions do: the longer prefix.
            scope: v4.scope.max(v6.scope),
        };
        self.decision = Some(if v4.chosen.is_empty() { v6 } else { v4 });
        Some(answer)
    }
}

impl GeoAnswerer for GeoResolver<'_> {
    fn answer(&mut self, _zone: &ZoneData, geo: &GeoName, rtype: RecordType) -> Option<GeoAnswer> {
        let family = match rtype {
            RecordType::A => AddressFamily::V4,
            RecordType::Aaaa => AddressFamily::V6,
            RecordType::Https => return self.https(geo),
            _ => return None,
        };
        let decision = self.decide(geo, family);
        let answer = GeoAnswer {
            addresses: decision.addresses.clone(),
            https: Vec::new(),
            ttl: decision.ttl,
            scope: decision.scope,
        };
        self.decision = Some(decision);
        Some(answer)
    }
}
