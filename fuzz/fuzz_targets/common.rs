//! The example topology served from memory, shared by the DNS targets.

use std::sync::{Arc, OnceLock};

use gslb::ServingState;
use gslb::health::RegionHealth;
use gslb::metrics::Metrics;

pub struct Example {
    pub state: Arc<ServingState>,
    pub health: Arc<RegionHealth>,
    pub metrics: Arc<Metrics>,
}

pub fn example() -> &'static Example {
    static EXAMPLE: OnceLock<Example> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/three-regions.yaml"
        );
        let topology = topology::load(std::path::Path::new(path)).expect("the example loads");
        let geoip = Arc::new(gslb::open_geoip(&topology).expect("embedded database"));
        let regions = topology.regions.len();
        Example {
            state: Arc::new(
                ServingState::new(Arc::new(topology), geoip, None).expect("unsigned zones"),
            ),
            health: Arc::new(RegionHealth::all_up(regions)),
            metrics: Metrics::new(),
        }
    })
}
