//! The choice, among the well-known client networks of
//! [`geo_data::samples`], of one a region serves — the client `gtm fail`
//! watches and `gtm up` suggests to `dig`.
//! Pure: the caller checks the choice against a real answer.

use geo_data::samples::NETWORKS;
pub use geo_data::samples::{Network, one_per_continent};

/// `8.8.8.0/24`: the network as `dig +subnet=` takes it.
pub fn subnet(network: &Network) -> String {
    let (address, prefix) = crate::dns::client_subnet(network.ip());
    format!("{address}/{prefix}")
}

/// A region as this module needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    /// Its name.
    pub name: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

/// The index in `regions` of the one nearest to `network`.
pub fn nearest(network: &Network, regions: &[Place]) -> Option<usize> {
    regions
        .iter()
        .enumerate()
        .map(|(i, r)| (i, distance_km(network.lat, network.lon, r.lat, r.lon)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Networks to try as clients of `regions[target]`, best first: those
/// nearest to it (closest first), then every other network by distance
/// to it (policies and overrides other than `nearest` may still send them
/// there; the caller checks with a real query). `ipv6` picks the family.
pub fn clients_for(target: usize, regions: &[Place], ipv6: bool) -> Vec<Network> {
    let Some(region) = regions.get(target) else {
        return Vec::new();
    };
    let mut ranked: Vec<(bool, f64, Network)> = NETWORKS
        .iter()
        .filter(|n| n.ip().is_ipv6() == ipv6)
        .map(|n| {
            (
                nearest(n, regions) != Some(target),
                distance_km(n.lat, n.lon, region.lat, region.lon),
                *n,
            )
        })
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    ranked.into_iter().map(|(_, _, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_regions() -> Vec<Place> {
        [
            ("us-east", 39.04, -77.49),
            ("eu-west", 53.35, -6.26),
            ("ap-south", 19.08, 72.88),
        ]
        .into_iter()
        .map(|(name, lat, lon)| Place {
            name: name.into(),
            lat,
            lon,
        })
        .collect()
    }

    #[test]
    fn each_example_region_gets_a_client_it_is_nearest_to() {
        let regions = example_regions();
        let first = |target| clients_for(target, &regions, false)[0].place;
        assert_eq!(first(0), "United States");
        assert_eq!(first(1), "United Kingdom");
        assert_eq!(first(2), "India");
        assert_eq!(clients_for(1, &regions, true)[0].place, "United Kingdom");
    }

    #[test]
    fn networks_nearest_to_the_region_come_first_then_by_distance() {
        let mut regions = example_regions();
        // A region in the middle of the Pacific: few networks are nearest.
        regions.push(Place {
            name: "pacific".into(),
            lat: 0.0,
            lon: -160.0,
        });
        let clients = clients_for(3, &regions, false);
        assert_eq!(
            clients.len(),
            NETWORKS.iter().filter(|n| n.ip().is_ipv4()).count()
        );
        let d = |n: &Network| distance_km(n.lat, n.lon, 0.0, -160.0);
        let split = clients
            .iter()
            .position(|n| nearest(n, &regions) != Some(3))
            .unwrap_or(clients.len());
        assert!(
            clients[split..]
                .iter()
                .all(|n| nearest(n, &regions) != Some(3))
        );
        for group in [&clients[..split], &clients[split..]] {
            assert!(group.windows(2).all(|w| d(&w[0]) <= d(&w[1])));
        }
    }

    #[test]
    fn distances_match_the_gslb_explanation() {
        // `gslb explain … --client 8.8.8.8` says 1803 km to us-east.
        let km = distance_km(39.76, -98.5, 39.04, -77.49);
        assert!((km - 1803.0).abs() < 2.0, "{km}");
    }

    #[test]
    fn subnets_are_networks() {
        assert_eq!(subnet(&NETWORKS[0]), "8.8.8.0/24");
    }
}
