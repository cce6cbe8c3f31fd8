//! Probe specs from the topology's health checks: the one conversion the
//! GSLB (region VIPs), the L4 tier (L7 nodes) and the L7 tier (backend
//! servers) share.

use std::net::{IpAddr, SocketAddr};

use topology::health::{CheckKind, HealthCheck};

use crate::spec::{HttpCheck, ProbeKind, ProbeSpec};
use crate::tls::Trust;

/// The spec for `check` against the target at `address`: on the check's
/// own `port` if it sets one, else on `https_port` for HTTPS checks and
/// `http_port` for the others.
///
/// A `grpc` check needs its pool's connections: the L7 tier builds it as a
/// [`CustomCheck`](crate::CustomCheck) with [`timed`]. Validation allows the
/// kind nowhere else, so one handed here is a connect to the port.
pub fn spec_for(
    check: &HealthCheck,
    address: IpAddr,
    http_port: u16,
    https_port: u16,
) -> ProbeSpec {
    let port = check.port.unwrap_or(match check.kind {
        CheckKind::Https => https_port,
        CheckKind::Http | CheckKind::Tcp | CheckKind::Grpc => http_port,
    });
    let addr = SocketAddr::new(address, port);
    let kind = match check.kind {
        CheckKind::Tcp | CheckKind::Grpc => ProbeKind::Tcp { addr },
        CheckKind::Http | CheckKind::Https => {
            let mut http = if check.kind == CheckKind::Https {
                HttpCheck::https(addr)
            } else {
                HttpCheck::http(addr)
            };
            http.path = check.path.clone();
            http.host = check.host.clone();
            http.body_contains = check.body.clone();
            http.expect = check.expect.clone();
            http.trust = match (&check.ca, check.insecure) {
                (Some(ca), _) => Trust::CaFile(ca.clone()),
                (None, true) => Trust::Insecure,
                (None, false) => Trust::SystemRoots,
            };
            ProbeKind::Http(http)
        }
    };
    timed(check, kind)
}

/// A spec running `kind` with `check`'s interval, timeout, rise and fall.
pub fn timed(check: &HealthCheck, kind: ProbeKind) -> ProbeSpec {
    let mut spec = ProbeSpec::new(kind);
    spec.interval = check.interval;
    spec.timeout = check.timeout;
    spec.rise = check.rise;
    spec.fall = check.fall;
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_check_kind_and_port() {
        let mut check = topology::health::HealthCheck {
            kind: CheckKind::Https,
            path: "/h".into(),
            port: None,
            expect: "200-204".parse().unwrap(),
            host: Some("www.example.com".into()),
            body: None,
            interval: std::time::Duration::from_secs(2),
            timeout: std::time::Duration::from_secs(1),
            rise: 2,
            fall: 3,
            ca: None,
            insecure: true,
            service: None,
        };
        let spec = spec_for(&check, "127.0.0.1".parse().unwrap(), 8080, 8443);
        let ProbeKind::Http(http) = &spec.kind else {
            panic!("not http")
        };
        assert!(http.https);
        assert_eq!(http.addr.port(), 8443);
        assert_eq!(http.trust, Trust::Insecure);
        assert!(http.expect.contains(204) && !http.expect.contains(205));
        check.kind = CheckKind::Tcp;
        check.port = Some(9);
        let spec = spec_for(&check, "127.0.0.1".parse().unwrap(), 8080, 8443);
        assert_eq!(
            spec.kind,
            ProbeKind::Tcp {
                addr: "127.0.0.1:9".parse().unwrap()
            }
        );
        assert!(spec.validate().is_ok());
    }
}
