//! TLS termination: certificates chosen by SNI, re-read from disk when
//! their files change, with session resumption.
//!
//! One rustls `ServerConfig` lives for the node's whole life, so its
//! session cache and ticket keys survive certificate reloads: a reload only
//! swaps the [`CertStore`]'s list, and connections already established
//! keep the certificate they were handshaken with. Ticket keys are the
//! node's own, rotated by rustls, unless the region shares a key file
//! (`tls.ticket_keys`, see [`tickets`]), which is re-read with the
//! certificates. TLS 1.2 and 1.3 only (rustls has nothing older), the
//! *ring* provider's default cipher suites, and ALPN `h2` (when HTTP/2 is
//! on) then `http/1.1`.

pub mod tickets;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use lifecycle::watch::Stamp;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use topology::tiers::l7::{Cert, Tls, TlsVersion};

use self::tickets::{KeyRing, SharedTicketer};

/// Sessions kept for resumption by session id (TLS 1.2) or stateful
/// tickets; stateless tickets need no memory.
const SESSION_CACHE: usize = 4096;

/// SNI names remembered per certificate set (name → certificate).
const SNI_CACHE: usize = 1024;

/// Why certificates or ticket keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM or ticket-key file could not be read or holds nothing usable.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// One loaded certificate chain with its key.
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The leaf in DER, to match SNI names against.
    leaf: CertificateDer<'static>,
    /// The leaf's name and expiry, for the metrics.
    expiry: Expiry,
}

/// When a served certificate stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// The leaf's first DNS name (else its common name, else its file).
    pub name: String,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// The name and expiry of `leaf`, read from `file`.
fn expiry(leaf: &CertificateDer<'_>, file: &Path) -> Result<Expiry, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::File {
        path: file.to_owned(),
        problem: format!("the leaf certificate does not parse as X.509: {e}"),
    })?;
    let dns_name = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
        });
    let common_name = || {
        cert.subject()
            .iter_common_name()
            .find_map(|cn| cn.as_str().ok().map(str::to_owned))
    };
    Ok(Expiry {
        name: dns_name
            .or_else(common_name)
            .unwrap_or_else(|| file.display().to_string()),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The certificates of one generation, in configuration order.
struct CertSet {
    certs: Vec<Loaded>,
    /// SNI name (lowercase) → index of the first certificate valid for it.
    cache: Mutex<HashMap<Box<str>, Option<usize>>>,
}

impl CertSet {
    fn lookup(&self, name: &str) -> Option<usize> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = cache.get(name) {
            return *found;
        }
        let found = ServerName::try_from(name).ok().and_then(|server_name| {
            self.certs.iter().position(|c| {
                webpki::EndEntityCert::try_from(&c.leaf)
                    .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&server_name).is_ok())
            })
        });
        if cache.len() >= SNI_CACHE {
            cache.clear();
        }
        cache.insert(name.into(), found);
        found
    }
}

/// The certificate resolver: SNI → the first configured certificate valid
/// for the name; no SNI or no match → the first certificate. It also holds
/// the region's shared ticket keys, when configured, re-read with the
/// certificates.
pub struct CertStore {
    set: ArcSwap<CertSet>,
    /// The shared-key ticketer, `None` without `tls.ticket_keys`.
    tickets: ArcSwapOption<SharedTicketer>,
    files: Mutex<Vec<(PathBuf, Option<Stamp>)>>,
    sources: Mutex<Tls>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("certs", &self.set.load().certs.len())
            .finish()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.set.load();
        let index = hello
            .server_name()
            .and_then(|name| set.lookup(&name.to_ascii_lowercase()))
            .unwrap_or(0);
        set.certs.get(index).map(|c| c.key.clone())
    }
}

fn load(certs: &[Cert], provider: &CryptoProvider) -> Result<CertSet, TlsError> {
    let mut loaded = Vec::with_capacity(certs.len());
    for cert in certs {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
            .map_err(|e| TlsError::File {
                path: cert.cert.clone(),
                problem: format!("cannot read the certificate chain: {e}"),
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::File {
                path: cert.cert.clone(),
                problem: format!("not a PEM certificate chain: {e}"),
            })?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(TlsError::File {
                path: cert.cert.clone(),
                problem: "holds no CERTIFICATE block; write the chain leaf first".into(),
            });
        };
        let key = PrivateKeyDer::from_pem_file(&cert.key).map_err(|e| TlsError::File {
            path: cert.key.clone(),
            problem: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        })?;
        let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::File {
            path: cert.key.clone(),
            problem: format!("does not fit {}: {e}", cert.cert.display()),
        })?;
        let expiry = expiry(&leaf, &cert.cert)?;
        loaded.push(Loaded {
            key: Arc::new(key),
            leaf,
            expiry,
        });
    }
    if loaded.is_empty() {
        return Err(TlsError::File {
            path: PathBuf::new(),
            problem: "no certificates configured".into(),
        });
    }
    Ok(CertSet {
        certs: loaded,
        cache: Mutex::new(HashMap::new()),
    })
}

/// Each certificate, key and ticket-key file with its stamp (mtime and
/// length, as the topology file is watched).
fn stamps(tls: &Tls) -> Vec<(PathBuf, Option<Stamp>)> {
    tls.certs
        .iter()
        .flat_map(|c| [c.cert.clone(), c.key.clone()])
        .chain(tls.ticket_keys.clone())
        .map(|p| {
            let stamp = Stamp::of(&p);
            (p, stamp)
        })
        .collect()
}

impl CertStore {
    /// Loads `tls`'s certificates and ticket keys (paths already resolved).
    pub fn new(tls: &Tls) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let set = load(&tls.certs, &provider)?;
        let tickets = read_ticket_keys(tls)?.map(|ring| Arc::new(SharedTicketer::new(ring)));
        Ok(Arc::new(Self {
            set: ArcSwap::from_pointee(set),
            tickets: ArcSwapOption::new(tickets),
            files: Mutex::new(stamps(tls)),
            sources: Mutex::new(tls.clone()),
            provider,
        }))
    }

    /// Loads `tls`'s certificates and ticket keys and swaps them in; on
    /// error the current ones stay. Shared keys replace those of the same
    /// ticketer, so configurations built earlier use the new keys too; a
    /// ticketer appearing or going needs a new [`Self::server_config`].
    pub fn replace(&self, tls: &Tls) -> Result<(), TlsError> {
        let set = load(&tls.certs, &self.provider)?;
        let ring = read_ticket_keys(tls)?;
        self.set.store(Arc::new(set));
        match (ring, self.tickets.load_full()) {
            (Some(ring), Some(tickets)) => tickets.replace(ring),
            (ring, _) => self
                .tickets
                .store(ring.map(|ring| Arc::new(SharedTicketer::new(ring)))),
        }
        *self.files.lock().unwrap_or_else(PoisonError::into_inner) = stamps(tls);
        *self.sources.lock().unwrap_or_else(PoisonError::into_inner) = tls.clone();
        Ok(())
    }

    /// [`Self::reload_if_changed`], saying in the log what came of it for
    /// `owner` (an L7 node, a demo backend): a reload, or a failure that
    /// keeps the old certificates.
    pub fn reload_and_log(&self, owner: &str) {
        match self.reload_if_changed() {
            Ok(true) => tracing::info!(%owner, "certificates reloaded"),
            Ok(false) => {}
            Err(e) => tracing::error!(
                %owner,
                "certificate files changed but cannot be loaded, keeping the old ones: {e}"
            ),
        }
    }

    /// Re-reads the files if any changed since they were loaded: `Ok(true)`
    /// when a new set was swapped in.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let changed = self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(path, stamp)| Stamp::of(path) != *stamp);
        if !changed {
            return Ok(false);
        }
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match self.replace(&sources) {
            Ok(()) => Ok(true),
            Err(e) => {
                // Remember the new stamps so a half-written file is not
                // retried every poll; the next write changes them again.
                *self.files.lock().unwrap_or_else(PoisonError::into_inner) = stamps(&sources);
                Err(e)
            }
        }
    }

    /// The name and expiry of every certificate served now.
    pub fn expiries(&self) -> Vec<Expiry> {
        self.set
            .load()
            .certs
            .iter()
            .map(|c| c.expiry.clone())
            .collect()
    }

    /// The server configuration using this store, and its shared ticket
    /// keys when there are some.
    pub fn server_config(
        self: &Arc<Self>,
        tls: &Tls,
        http2: bool,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        if let Some(shared) = self.tickets.load_full() {
            config.ticketer = shared;
        } else if tls.session_tickets {
            config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        }
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Arc::new(config))
    }
}

/// The shared ticket keys `tls` names, if it names a file.
fn read_ticket_keys(tls: &Tls) -> Result<Option<KeyRing>, TlsError> {
    let Some(path) = &tls.ticket_keys else {
        return Ok(None);
    };
    KeyRing::read(path)
        .map(Some)
        .map_err(|problem| TlsError::File {
            path: path.clone(),
            problem,
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn write_cert(dir: &Path, stem: &str, names: &[&str]) -> Cert {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Cert {
            cert: cert_path,
            key: key_path,
        }
    }

    /// TLS settings serving `certs`, with per-node ticket keys.
    fn tls(certs: Vec<Cert>) -> Tls {
        Tls {
            certs,
            min_version: TlsVersion::Tls12,
            session_tickets: true,
            ticket_keys: None,
        }
    }

    /// Sets `path`'s mtime `secs` ahead: mtimes have a coarse resolution on
    /// some filesystems, so a rewrite alone may not change the stamp.
    fn touch_ahead(path: &Path, secs: u64) {
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edge-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_pick_certificates_and_unknown_names_get_the_first() {
        let dir = temp_dir("sni");
        let a = write_cert(&dir, "a", &["a.example.com"]);
        let b = write_cert(&dir, "b", &["*.b.example.com", "b.example.com"]);
        let store = CertStore::new(&tls(vec![a, b])).unwrap();
        let set = store.set.load();
        assert_eq!(set.lookup("a.example.com"), Some(0));
        assert_eq!(set.lookup("x.b.example.com"), Some(1));
        assert_eq!(set.lookup("b.example.com"), Some(1));
        assert_eq!(set.lookup("c.example.com"), None);
        assert_eq!(set.lookup("not a name"), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = temp_dir("bad");
        let a = write_cert(&dir, "a", &["a.example.com"]);
        let b = write_cert(&dir, "b", &["b.example.com"]);
        let mismatched = Cert {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let e = CertStore::new(&tls(vec![mismatched]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.key") && e.contains("does not fit"), "{e}");
        let missing = Cert {
            cert: dir.join("nope.pem"),
            key: a.key.clone(),
        };
        let e = CertStore::new(&tls(vec![missing])).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn changed_files_are_reloaded_and_broken_ones_keep_the_old_set() {
        let dir = temp_dir("reload");
        let a = write_cert(&dir, "a", &["a.example.com"]);
        let store = CertStore::new(&tls(vec![a.clone()])).unwrap();
        assert!(!store.reload_if_changed().unwrap());
        // Rewrite with another name.
        let _ = write_cert(&dir, "a", &["z.example.com"]);
        touch_ahead(&a.cert, 5);
        assert!(store.reload_if_changed().unwrap());
        assert_eq!(store.set.load().lookup("z.example.com"), Some(0));
        std::fs::write(&a.cert, "garbage").unwrap();
        touch_ahead(&a.cert, 10);
        assert!(store.reload_if_changed().is_err());
        assert_eq!(store.set.load().lookup("z.example.com"), Some(0));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Writes a mode-600 ticket-key file, one key per seed (its bytes all
    /// the seed, so a ticket's first byte tells which key sealed it).
    #[cfg(unix)]
    fn write_keys(path: &Path, seeds: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        let text: String = seeds
            .iter()
            .map(|s| STANDARD.encode([*s; 48]) + "\n")
            .collect();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn shared_ticket_keys_are_reloaded_with_the_certificates() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("edge-tls-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("tickets.keys");
        write_keys(&keys, &[1, 2, 3]);
        let mut settings = tls(vec![write_cert(&dir, "a", &["a.example.com"])]);
        settings.ticket_keys = Some(keys.clone());
        let store = CertStore::new(&settings).unwrap();
        let config = store.server_config(&settings, false).unwrap();
        let by_2 = config.ticketer.encrypt(b"state").unwrap();
        assert_eq!(by_2[0], 2);
        // Rotated on disk: the same configuration now encrypts with 3 and
        // still opens tickets made with 2.
        write_keys(&keys, &[2, 3, 4]);
        touch_ahead(&keys, 5);
        assert!(store.reload_if_changed().unwrap());
        assert_eq!(config.ticketer.encrypt(b"state").unwrap()[0], 3);
        assert_eq!(config.ticketer.decrypt(&by_2).unwrap(), b"state");
        // A file left readable by others is refused, the keys stay.
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        touch_ahead(&keys, 10);
        let e = store.reload_if_changed().unwrap_err().to_string();
        assert!(
            e.contains("tickets.keys: mode 644") && e.contains("chmod 600"),
            "{e}"
        );
        assert_eq!(config.ticketer.encrypt(b"state").unwrap()[0], 3);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn ticket_keys_added_or_dropped_by_a_reload_reach_the_next_configuration() {
        let dir = temp_dir("keys-toggle");
        let keys = dir.join("tickets.keys");
        write_keys(&keys, &[7]);
        let per_node = tls(vec![write_cert(&dir, "a", &["a.example.com"])]);
        let mut shared = per_node.clone();
        shared.ticket_keys = Some(keys);
        let store = CertStore::new(&per_node).unwrap();
        let name =
            |config: &ServerConfig| config.ticketer.encrypt(b"state").unwrap()[..16].to_vec();
        // rustls's own keys have random names: never all sevens.
        assert_ne!(
            name(&store.server_config(&per_node, false).unwrap()),
            [7; 16]
        );
        store.replace(&shared).unwrap();
        assert_eq!(name(&store.server_config(&shared, false).unwrap()), [7; 16]);
        store.replace(&per_node).unwrap();
        assert_ne!(
            name(&store.server_config(&per_node, false).unwrap()),
            [7; 16]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
