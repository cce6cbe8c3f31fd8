//! Choosing the addresses of geo names.
//!
//! For now every client gets the regions in the order the topology lists
//! them; client location, distance and health arrive with the geo issue.

use std::net::IpAddr;

use topology::{GeoName, RecordType, Topology};

use crate::resolve::{GeoAnswer, GeoAnswerer};
use crate::zone::ZoneData;

/// Answers each geo name with the first listed region that has an address
/// of the asked family.
pub struct WrittenOrder<'t> {
    topology: &'t Topology,
}

impl<'t> WrittenOrder<'t> {
    /// An answerer over `topology`'s regions.
    pub fn new(topology: &'t Topology) -> Self {
        WrittenOrder { topology }
    }
}

impl GeoAnswerer for WrittenOrder<'_> {
    fn answer(&mut self, _zone: &ZoneData, geo: &GeoName, rtype: RecordType) -> Option<GeoAnswer> {
        let address = geo.regions.iter().find_map(|id| {
            let vip = self.topology.region(*id).vip;
            match rtype {
                RecordType::A => vip.ipv4.map(IpAddr::V4),
                RecordType::Aaaa => vip.ipv6.map(IpAddr::V6),
                _ => None,
            }
        })?;
        Some(GeoAnswer {
            addresses: vec![address],
            ttl: geo.ttl,
            scope: 0,
        })
    }
}
