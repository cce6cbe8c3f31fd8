//! Why a [`ProbeSpec`](crate::ProbeSpec) cannot be run: the rules every
//! health check meets ([`CheckError`], shared with the topology loader),
//! the rules of the fields only a hand-built spec has, and the failures of
//! building its client (CA file, trust store).

use std::fmt;
use std::path::PathBuf;

use topology::health::CheckError;

use crate::jitter::MAX_JITTER;

/// One reason a [`ProbeSpec`](crate::ProbeSpec) cannot be used. Each message
/// names the field, the bad value and what to write instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A rule of every health check, worded as the topology loader words it.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// Jitter outside `0..=MAX_JITTER`.
    #[error(
        "jitter {value} is out of range; write a fraction between 0 and {MAX_JITTER} (0.1 = ±10%)"
    )]
    JitterOutOfRange {
        /// The configured value.
        value: f64,
    },
    /// SNI configured on a plain-HTTP check.
    #[error("sni is set but https is false; remove sni or enable https")]
    SniWithoutHttps,
    /// The CA file could not be read.
    #[error("cannot read CA file {}: {source}; check the path and its permissions", path.display())]
    CaFileUnreadable {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {} {reason}; it must hold PEM \"-----BEGIN CERTIFICATE-----\" blocks", path.display())]
    CaFileInvalid {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with the content.
        reason: String,
    },
    /// The client certificate or key file holds nothing usable.
    #[error("client certificate file {} {reason}", path.display())]
    ClientCertInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The client key file could not be read, or others may read it.
    #[error("client key: {0}")]
    ClientKey(String),
    /// The operating system trust store could not be loaded.
    #[error(
        "cannot load the system trust store ({reason}); install CA certificates (e.g. the ca-certificates package) or use a CA file"
    )]
    SystemRoots {
        /// The loader's error.
        reason: String,
    },
    /// The HTTP client could not be built (an internal error, not a config one).
    #[error(
        "cannot build the HTTP client for this check: {reason}; this is a bug, please report it"
    )]
    HttpClient {
        /// The builder's error.
        reason: String,
    },
}

/// Every problem found in one [`ProbeSpec`](crate::ProbeSpec), in field order.
#[derive(Debug, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    pub(crate) fn result(errors: Vec<SpecError>) -> Result<(), SpecErrors> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// The individual errors.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}

impl fmt::Display for SpecErrors {
    /// One error per line, or the single error as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
