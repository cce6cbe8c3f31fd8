//! Well-known client networks on every continent, placed where the embedded
//! country database places them: the representative clients `gtm` asks
//! about (`gtm fail`, `gtm up`) and the GSLB's status page shows answers
//! for. Pure data; one table so the CLI and the console agree.

use std::net::IpAddr;

use serde::Serialize;

/// A network whose location is well known.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Network {
    /// An address inside it (sent as ECS /24 or /56).
    pub address: &'static str,
    /// The country.
    pub place: &'static str,
    /// The continent code.
    pub continent: &'static str,
    /// Latitude of the country, as the embedded database has it.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

impl Network {
    /// The address (every entry of [`NETWORKS`] parses; a test checks).
    pub fn ip(&self) -> IpAddr {
        self.address.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// The networks, a few per continent. Coordinates are the embedded country
/// database's (`gslb explain` prints them), so that distances computed from
/// them agree with the GSLB's.
pub const NETWORKS: &[Network] = &[
    net("8.8.8.8", "United States", "NA", 39.76, -98.5),
    net("24.48.0.1", "Canada", "NA", 60.1087, -113.643),
    net("200.160.0.8", "Brazil", "SA", -10.0, -55.0),
    net("81.2.69.160", "United Kingdom", "EU", 54.7584, -2.6953),
    net("193.0.6.139", "Netherlands", "EU", 52.25, 5.75),
    net("85.214.0.1", "Germany", "EU", 51.5, 10.5),
    net("62.4.0.1", "France", "EU", 46.0, 2.0),
    net("49.44.0.1", "India", "AS", 22.0, 79.0),
    net("133.11.0.1", "Japan", "AS", 35.6854, 139.753),
    net("1.1.1.1", "Australia", "OC", -25.0, 135.0),
    net("41.0.0.1", "South Africa", "AF", -29.0, 24.0),
    net("2a02:8800::1", "United Kingdom", "EU", 54.7584, -2.6953),
];

const fn net(
    address: &'static str,
    place: &'static str,
    continent: &'static str,
    lat: f64,
    lon: f64,
) -> Network {
    Network {
        address,
        place,
        continent,
        lat,
        lon,
    }
}

/// One IPv4 network per continent, the first [`NETWORKS`] lists for each.
pub fn one_per_continent() -> Vec<Network> {
    let mut seen: Vec<&str> = Vec::new();
    NETWORKS
        .iter()
        .filter(|n| n.ip().is_ipv4())
        .filter(|n| {
            let new = !seen.contains(&n.continent);
            seen.push(n.continent);
            new
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GeoDb;

    #[test]
    fn every_continent_has_a_network_and_every_address_parses() {
        let continents: Vec<&str> = one_per_continent().iter().map(|n| n.continent).collect();
        assert_eq!(continents, ["NA", "SA", "EU", "AS", "OC", "AF"]);
        assert!(NETWORKS.iter().all(|n| n.address.parse::<IpAddr>().is_ok()));
    }

    #[test]
    fn the_embedded_database_places_each_network_where_the_table_says() {
        let db = GeoDb::embedded();
        for network in NETWORKS {
            let location = db.lookup(network.ip()).location.map(|(_, l)| l);
            let centroid = location.and_then(|l| l.coordinates);
            assert!(
                centroid
                    .is_some_and(|c| (c.lat - network.lat).abs() < 0.01
                        && (c.lon - network.lon).abs() < 0.01),
                "{} ({}): the database says {location:?}",
                network.address,
                network.place
            );
        }
    }
}
