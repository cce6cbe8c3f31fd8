//! [`Coordinates`]: a point on the globe, shared by the country table
//! (centroids) and [`Location`](crate::Location).

use std::fmt;

/// A point on the globe in decimal degrees (WGS 84).
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Coordinates {
    /// Latitude, -90 (south) to 90 (north).
    pub lat: f64,
    /// Longitude, -180 (west) to 180 (east).
    pub lon: f64,
}

impl Coordinates {
    /// `Some` when both values are finite and within the valid ranges; databases
    /// occasionally carry junk, and a NaN would poison every distance computed
    /// from it.
    pub fn checked(lat: f64, lon: f64) -> Option<Coordinates> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(Coordinates { lat, lon })
    }
}

impl fmt::Display for Coordinates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4},{:.4}", self.lat, self.lon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_coordinates_reject_out_of_range_and_nan() {
        assert!(Coordinates::checked(48.85, 2.35).is_some());
        assert!(Coordinates::checked(90.0, -180.0).is_some());
        assert!(Coordinates::checked(90.1, 0.0).is_none());
        assert!(Coordinates::checked(0.0, 180.5).is_none());
        assert!(Coordinates::checked(f64::NAN, 0.0).is_none());
        assert!(Coordinates::checked(0.0, f64::INFINITY).is_none());
    }
}
