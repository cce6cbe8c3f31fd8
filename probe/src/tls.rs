//! Which certificates an HTTPS check trusts ([`Trust`]), the client
//! certificate it presents ([`ClientCert`]), the rustls client
//! configuration for each mode, and the wording of TLS failures. The only
//! module that names rustls types. The L7 tier builds its connections to
//! TLS backends with [`verified_config`] too, so a pool's requests and its
//! health checks verify alike.
//!
//! The crypto provider is *ring*, passed explicitly: nothing here installs a
//! process-wide default provider, so this crate cannot clash with another
//! crate's choice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::SpecError;

/// Which certificates an HTTPS check accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The operating system's trust store (loaded once per process).
    #[default]
    SystemRoots,
    /// Only the CA certificates in this PEM file (read when the check is
    /// built; a reload re-reads it).
    CaFile(PathBuf),
    /// Skip certificate verification entirely, for self-signed lab setups.
    /// The handshake signature is still checked, but anyone can impersonate
    /// the target.
    Insecure,
}

/// A client certificate chain and its key, presented to servers that ask
/// for one (mTLS). Both PEM; the key file is a secret (mode 600 or
/// stricter, see `topology::secret`). Read when the check is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl ClientCert {
    /// The chain and key, or what is wrong with which file.
    pub(crate) fn load(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SpecError> {
        let invalid = |path: &Path, reason: String| SpecError::ClientCertInvalid {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(&self.cert)
            .map_err(|e| invalid(&self.cert, format!("cannot be read ({e})")))?;
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&self.cert, format!("is not valid PEM ({e})")))?;
        if chain.is_empty() {
            return Err(invalid(
                &self.cert,
                "holds no \"-----BEGIN CERTIFICATE-----\" block".to_owned(),
            ));
        }
        let key =
            topology::secret::read(&self.key).map_err(|e| SpecError::ClientKey(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
            invalid(
                &self.key,
                format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM: {e})"),
            )
        })?;
        Ok((chain, key))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client config for a check. `https == false` yields a config whose
/// verifier refuses everything: reqwest insists on a TLS config even for
/// plain-HTTP clients, and such a client must never speak TLS (redirects are
/// off, so it cannot be sent to an `https://` URL).
pub(crate) fn client_config(
    https: bool,
    trust: &Trust,
    client_cert: Option<&ClientCert>,
) -> Result<ClientConfig, SpecError> {
    let mut config = if https {
        verified_config(trust, client_cert)?
    } else {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(versions_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RefuseAll))
            .with_no_client_auth()
    };
    // Health checks speak HTTP/1.1 only (the client is built without h2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn versions_error(e: rustls::Error) -> SpecError {
    SpecError::HttpClient {
        reason: format!("TLS protocol versions: {e}"),
    }
}

/// A TLS client configuration (TLS 1.2 and 1.3, *ring*) that verifies
/// servers as `trust` says and presents `client_cert` when asked; no ALPN,
/// the caller sets its own. Reads the CA and client certificate files.
pub fn verified_config(
    trust: &Trust,
    client_cert: Option<&ClientCert>,
) -> Result<ClientConfig, SpecError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(versions_error)?;
    let builder = match trust {
        Trust::SystemRoots => builder
            .dangerous()
            .with_custom_certificate_verifier(system_verifier(&provider)?),
        Trust::CaFile(path) => {
            let roots = load_ca_file(path)?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| SpecError::CaFileInvalid {
                    path: path.clone(),
                    reason: format!("cannot be used as trust anchors ({e})"),
                })?;
            builder.with_webpki_verifier(verifier)
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider))),
    };
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some(client) => {
            let (chain, key) = client.load()?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| SpecError::ClientCertInvalid {
                    path: client.key.clone(),
                    reason: format!("does not fit {} ({e})", client.cert.display()),
                })
        }
    }
}

/// The platform verifier, built once per process on first success: loading
/// the OS store reads hundreds of files, too slow to repeat for every check
/// of a reload. A failed load is not cached, so installing CA certificates
/// and reloading recovers.
fn system_verifier(
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, SpecError> {
    static CACHE: Mutex<Option<Arc<rustls_platform_verifier::Verifier>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = cache.as_ref() {
        return Ok(v.clone());
    }
    let v = Arc::new(
        rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| {
            SpecError::SystemRoots {
                reason: e.to_string(),
            }
        })?,
    );
    *cache = Some(v.clone());
    Ok(v)
}

/// Reads the PEM certificates in `path` into a root store.
pub(crate) fn load_ca_file(path: &Path) -> Result<RootCertStore, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::CaFileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| SpecError::CaFileInvalid {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| invalid(format!("is not valid PEM ({e})")))?;
        roots.add(cert).map_err(|e| {
            invalid(format!(
                "holds a certificate that cannot be a trust anchor ({e})"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(invalid("contains no certificate".to_owned()));
    }
    Ok(roots)
}

/// [`Trust::Insecure`]: any certificate for any name is accepted. The
/// handshake signature is still verified, which proves only that the peer
/// holds the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The verifier of plain-HTTP clients, which must never complete a handshake.
#[derive(Debug)]
struct RefuseAll;

impl ServerCertVerifier for RefuseAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(
            "TLS on a plain-HTTP check".to_owned(),
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS on a plain-HTTP check".to_owned(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS on a plain-HTTP check".to_owned(),
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// If `e` is (or wraps) a rustls error, its short detail: `TLS: certificate
/// not trusted`, `TLS: certificate not valid for probe.test`, ...
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let tls = e.downcast_ref::<rustls::Error>()?;
    Some(format!("TLS: {}", classify(tls).1))
}

/// What went wrong in a handshake: a short kind for metric labels
/// (`unknown_issuer`, `name_mismatch`, `expired`, `not_yet_valid`,
/// `bad_certificate`, `alert`, `handshake`) and the words for logs
/// (`certificate not valid for probe.test`).
pub fn classify(error: &rustls::Error) -> (&'static str, String) {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                ("unknown_issuer", "certificate not trusted".to_owned())
            }
            CertificateError::NotValidForName => (
                "name_mismatch",
                "certificate not valid for the requested name".to_owned(),
            ),
            CertificateError::NotValidForNameContext { expected, .. } => (
                "name_mismatch",
                format!("certificate not valid for {}", expected.to_str()),
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("expired", "certificate expired".to_owned())
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ("not_yet_valid", "certificate not yet valid".to_owned())
            }
            CertificateError::Revoked => ("bad_certificate", "certificate revoked".to_owned()),
            CertificateError::BadSignature => (
                "bad_certificate",
                "certificate has a bad signature".to_owned(),
            ),
            other => (
                "bad_certificate",
                format!("invalid certificate ({other:?})"),
            ),
        },
        rustls::Error::AlertReceived(alert) => ("alert", format!("server sent alert {alert:?}")),
        other => ("handshake", other.to_string()),
    }
}
