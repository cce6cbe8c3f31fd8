//! Active health checks of the backend servers, run by the `probe` crate
//! (the same code the GSLB probes regions with), and their results applied
//! to the servers' live state.
//!
//! One check per pool member, named `POOL/ADDR`. A TLS pool's HTTP checks
//! go over TLS, verified as its requests are (trust, SNI, client
//! certificate: [`crate::l7::shared::backend_tls::check_tls`]). A reload syncs the
//! prober with the new set: unchanged checks keep running with their
//! hysteresis, changed ones carry their health over (see
//! `probe::scheduler`), removed ones stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use probe::{CheckId, Health, ProbeEvent, ProbeKind, ProbeSpec, Prober};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use topology::health::{CheckKind, HealthCheck};
use topology::tiers::l7::BackendTls;
use tracing::{info, warn};

use crate::l7::node::grpc_health;
use crate::l7::shared::backend_tls::{PoolTls, check_tls};
use crate::l7::shared::pool::ServerState;
use crate::l7::shared::state::Snapshot;

/// The probe spec checking `server` as `check` describes (the conversion
/// the GSLB and the L4 tier use too): on the check's `port` if it sets
/// one, else on the server's own; a check of a TLS pool (its client
/// `tls`) speaks TLS with the pool's settings. A `grpc` check is the pool's
/// own ([`grpc_health`]), over connections made as its requests' are.
pub fn probe_spec(
    check: &HealthCheck,
    tls: Option<&Arc<PoolTls>>,
    server: SocketAddr,
) -> ProbeSpec {
    if check.kind == CheckKind::Grpc {
        let addr = SocketAddr::new(server.ip(), check.port.unwrap_or(server.port()));
        let kind = ProbeKind::Custom(grpc_health::check(
            addr,
            check.service.as_deref(),
            check.timeout,
            tls.cloned(),
        ));
        return probe::topology::timed(check, kind);
    }
    let mut spec = probe::topology::spec_for(check, server.ip(), server.port(), server.port());
    if let Some(tls) = tls {
        over_tls(&mut spec, tls.settings());
    }
    spec
}

/// Makes an HTTP check of `spec` go over TLS with `tls`'s trust, SNI and
/// client certificate (other kinds are left alone).
fn over_tls(spec: &mut ProbeSpec, tls: &BackendTls) {
    if let ProbeKind::Http(http) = &mut spec.kind {
        let (trust, client_cert) = check_tls(tls);
        http.https = true;
        http.sni = tls.sni.clone();
        http.trust = trust;
        http.client_cert = client_cert;
    }
}

/// The node's prober and the servers its checks feed.
#[derive(Debug)]
pub struct Checks {
    prober: Prober,
    targets: Mutex<HashMap<CheckId, Target>>,
}

#[derive(Debug)]
struct Target {
    server: Arc<ServerState>,
    generation: u64,
}

impl Checks {
    /// A prober stopping with `shutdown`; feed the receiver to [`Checks::apply`].
    pub fn new(shutdown: CancellationToken, seed: u64) -> (Arc<Self>, mpsc::Receiver<ProbeEvent>) {
        let (tx, rx) = mpsc::channel(1024);
        (
            Arc::new(Self {
                prober: Prober::new(tx, shutdown, seed),
                targets: Mutex::new(HashMap::new()),
            }),
            rx,
        )
    }

    /// Makes the running checks those of `snapshot`.
    pub async fn sync(&self, snapshot: &Snapshot) -> Result<(), probe::ReloadError> {
        let mut desired = Vec::new();
        let mut targets = HashMap::new();
        for (pool, tls) in snapshot.pools.iter().zip(&snapshot.backend_tls) {
            for server in pool.servers() {
                let id = CheckId::from(format!("{}/{}", pool.config.name, server.addr));
                let spec = probe_spec(&pool.config.health, tls.as_ref(), server.addr);
                desired.push((id.clone(), spec));
                targets.insert(id, server.clone());
            }
        }
        self.prober.sync(desired).await?;
        let mut current = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::take(&mut *current);
        for (id, server) in targets {
            let generation = old.get(&id).map_or(0, |t| t.generation);
            // A check whose status the prober already knows: apply it, so a
            // server object new in this snapshot starts from the truth.
            if let Some(status) = self.prober.status(id.as_str()) {
                server.set_probe_up(status.health == Health::Up, 0);
            }
            current.insert(id, Target { server, generation });
        }
        Ok(())
    }

    /// Applies probe events until `stop` is cancelled; `now_ms` reads the
    /// node's clock.
    pub async fn apply(
        self: Arc<Self>,
        mut events: mpsc::Receiver<ProbeEvent>,
        now_ms: impl Fn() -> u64,
        stop: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(target) = targets.get_mut(&event.id) else {
                continue;
            };
            if event.generation < target.generation {
                continue;
            }
            target.generation = event.generation;
            let up = event.health == Health::Up;
            if let Some(t) = event.transition {
                if up {
                    info!(check = %event.id, detail = %event.result.detail, streak = t.streak, "backend server up");
                } else {
                    warn!(check = %event.id, detail = %event.result.detail, streak = t.streak, "backend server down");
                }
            }
            if target.server.probe_up() != up {
                target.server.set_probe_up(up, now_ms());
            }
        }
    }

    /// Stops every check and waits for them.
    pub async fn stop(&self) {
        self.prober.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use topology::tiers::l7::{BackendTrust, Cert};

    fn http_check() -> HealthCheck {
        HealthCheck {
            kind: CheckKind::Http,
            path: "/healthz".into(),
            port: Some(9999),
            expect: "200-204".parse().unwrap(),
            host: Some("www.example.com".into()),
            body: Some("ok".into()),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(200),
            rise: 1,
            fall: 2,
            ca: None,
            insecure: false,
            service: None,
        }
    }

    #[test]
    fn checks_translate_to_probe_specs() {
        let check = http_check();
        let spec = probe_spec(&check, None, "127.0.0.1:9000".parse().unwrap());
        assert!(spec.validate().is_ok());
        let ProbeKind::Http(http) = &spec.kind else {
            panic!("{spec:?}")
        };
        assert!(!http.https);
        assert_eq!(http.addr, "127.0.0.1:9999".parse().unwrap());
        assert!(http.expect.contains(204) && !http.expect.contains(205));
        assert_eq!((spec.rise, spec.fall), (1, 2));
        let tcp = probe_spec(
            &HealthCheck {
                kind: CheckKind::Tcp,
                port: None,
                ..check
            },
            None,
            "127.0.0.1:9000".parse().unwrap(),
        );
        assert_eq!(
            tcp.kind,
            ProbeKind::Tcp {
                addr: "127.0.0.1:9000".parse().unwrap()
            }
        );
    }

    #[test]
    fn a_tls_pool_is_checked_over_tls_as_its_requests_are_sent() {
        let tls = BackendTls {
            trust: BackendTrust::CaFile("/etc/gtm/ca.pem".into()),
            sni: Some("api.internal".into()),
            client_cert: Some(Cert {
                cert: "/etc/gtm/client.pem".into(),
                key: "/etc/gtm/client.key".into(),
            }),
        };
        let mut spec = probe_spec(&http_check(), None, "127.0.0.1:9000".parse().unwrap());
        over_tls(&mut spec, &tls);
        let ProbeKind::Http(http) = &spec.kind else {
            panic!("{spec:?}")
        };
        assert!(http.https);
        assert_eq!(http.sni.as_deref(), Some("api.internal"));
        assert_eq!(http.trust, probe::Trust::CaFile("/etc/gtm/ca.pem".into()));
        assert_eq!(
            http.client_cert,
            Some(probe::ClientCert {
                cert: "/etc/gtm/client.pem".into(),
                key: "/etc/gtm/client.key".into()
            })
        );
    }
}
