//! DNSSEC key files: the one place that reads, writes and checks them, so
//! `gtm dnssec keygen`/`ds`, validation and gslb's signer agree on what a
//! usable key is.
//!
//! A key file holds one private key as PKCS#8 in PEM (`-----BEGIN PRIVATE
//! KEY-----`), the format `openssl pkey` reads and writes; the algorithm
//! is the key's own (ECDSA P-256 → 13, Ed25519 → 15), so a file cannot
//! claim one algorithm and hold another. A line `Role: KSK` or `Role: ZSK`
//! before the PEM block (which PEM readers skip) splits the work: a KSK
//! (flags 257, SEP) signs only the DNSKEY RRset and is what the parent's
//! DS names, a ZSK (flags 256) signs everything else. A file without the
//! line holds a CSK (flags 257), which does both.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use sha2::{Digest, Sha256};

use crate::name::DomainName;
use crate::secret::SecretError;

/// DNSKEY flags of a CSK or KSK: Zone Key (bit 7) and Secure Entry Point
/// (bit 15).
pub const CSK_FLAGS: u16 = 257;
/// DNSKEY flags of a ZSK: Zone Key only.
pub const ZSK_FLAGS: u16 = 256;

/// What a key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Combined signing key: the DNSKEY RRset and the zone's data.
    Csk,
    /// Key signing key: the DNSKEY RRset only; the parent's DS names it.
    Ksk,
    /// Zone signing key: everything but the DNSKEY RRset.
    Zsk,
}

impl Role {
    /// The DNSKEY flags of a key in this role.
    pub fn flags(self) -> u16 {
        match self {
            Role::Csk | Role::Ksk => CSK_FLAGS,
            Role::Zsk => ZSK_FLAGS,
        }
    }

    /// Whether a key in this role signs the DNSKEY RRset.
    pub fn signs_keys(self) -> bool {
        matches!(self, Role::Csk | Role::Ksk)
    }

    /// Whether a key in this role signs the zone's other RRsets.
    pub fn signs_data(self) -> bool {
        matches!(self, Role::Csk | Role::Zsk)
    }

    /// The name written in key files and printed: `CSK`, `KSK` or `ZSK`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Csk => "CSK",
            Role::Ksk => "KSK",
            Role::Zsk => "ZSK",
        }
    }
}

/// The line before a key file's PEM block that names its role.
const ROLE_LINE: &str = "Role: ";
/// TTL of the DNSKEY RRset (and its RRSIG).
pub const DNSKEY_TTL: u32 = 3600;

/// A DNSSEC signing algorithm this server offers (RFC 8624 "MUST"s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA with curve P-256 and SHA-256 (13), the default.
    EcdsaP256Sha256,
    /// Ed25519 (15).
    Ed25519,
}

impl Algorithm {
    /// The IANA algorithm number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The algorithm numbered `number`, if offered.
    pub fn from_number(number: u8) -> Option<Algorithm> {
        match number {
            13 => Some(Algorithm::EcdsaP256Sha256),
            15 => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

/// Why a key file cannot be used; every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error(
        "{path}: cannot read the key file ({source}); check the path, or create a key with `gtm dnssec keygen ZONE`"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error(
        "{path}: the private key is readable by group or others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    Loose {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a PKCS#8 ECDSA P-256 or Ed25519 key.
    #[error(
        "{path}: {problem}; signing keys are ECDSAP256SHA256 (13) or ED25519 (15) in PKCS#8 PEM, as `gtm dnssec keygen ZONE` writes them"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// The file to create exists already.
    #[error("{path}: cannot create the key file ({source})")]
    Create {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A zone's signing key, read from its file. Its `Debug` shows the file
/// and the key tag, never key material, so it can reach a log line.
pub struct ZoneKey {
    path: PathBuf,
    role: Role,
    pair: Pair,
}

impl fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneKey")
            .field("path", &self.path)
            .field("algorithm", &self.algorithm())
            .field("role", &self.role)
            .field("key_tag", &self.key_tag())
            .finish_non_exhaustive()
    }
}

impl ZoneKey {
    /// Reads the key at `path`, refusing a file group or others may read.
    pub fn read(path: &Path) -> Result<ZoneKey, KeyError> {
        let bytes = crate::secret::read(path).map_err(|e| match e {
            SecretError::Read { path, source } => KeyError::Read { path, source },
            SecretError::Exposed { path, mode } => KeyError::Loose { path, mode },
        })?;
        let text = String::from_utf8(bytes).map_err(|_| KeyError::Format {
            path: path.to_owned(),
            problem: "not text (a PEM file)",
        })?;
        let format = |problem| KeyError::Format {
            path: path.to_owned(),
            problem,
        };
        let der = pem_body(&text).ok_or_else(|| format("not a PEM \"PRIVATE KEY\" block"))?;
        let role = match role_line(&text) {
            None => Role::Csk,
            Some("CSK") => Role::Csk,
            Some("KSK") => Role::Ksk,
            Some("ZSK") => Role::Zsk,
            Some(_) => {
                return Err(format(
                    "its \"Role:\" line names no role; write KSK, ZSK or CSK",
                ));
            }
        };
        let pair = if let Ok(pair) =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
        {
            Pair::Ecdsa(pair)
        } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Pair::Ed25519(pair)
        } else {
            return Err(format("not an ECDSA P-256 or Ed25519 private key"));
        };
        Ok(ZoneKey {
            path: path.to_owned(),
            role,
            pair,
        })
    }

    /// Creates a new CSK of `algorithm` for `zone` in `dir`
    /// ([`ZoneKey::generate_as`]).
    pub fn generate(
        zone: &DomainName,
        algorithm: Algorithm,
        dir: &Path,
    ) -> Result<ZoneKey, KeyError> {
        Self::generate_as(zone, algorithm, Role::Csk, dir)
    }

    /// Creates a new key of `algorithm` in `role` for `zone` in `dir`, as
    /// a file only its owner may read, named like BIND's
    /// (`Kexample.com.+013+12345.pem`); never overwrites one.
    pub fn generate_as(
        zone: &DomainName,
        algorithm: Algorithm,
        role: Role,
        dir: &Path,
    ) -> Result<ZoneKey, KeyError> {
        let rng = SystemRandom::new();
        let unusable = |problem| KeyError::Format {
            path: dir.to_owned(),
            problem,
        };
        let der = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| unusable("the system's random source failed"))?;
        let pair = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng)
                    .map(Pair::Ecdsa)
            }
            Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8(der.as_ref()).map(Pair::Ed25519),
        }
        .map_err(|_| unusable("ring rejected the key it generated"))?;
        let mut key = ZoneKey {
            path: PathBuf::new(),
            role,
            pair,
        };
        key.path = dir.join(format!(
            "K{zone}+{:03}+{:05}.pem",
            algorithm.number(),
            key.key_tag()
        ));
        let create_error = |source| KeyError::Create {
            path: key.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key.path)
            .map_err(create_error)?;
        let mut text = String::new();
        if role != Role::Csk {
            text.push_str(&format!("{ROLE_LINE}{}\n", role.name()));
        }
        text.push_str(&pem_encode(der.as_ref()));
        file.write_all(text.as_bytes()).map_err(create_error)?;
        Ok(key)
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the key signs.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ecdsa(_) => Algorithm::EcdsaP256Sha256,
            Pair::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The public key as DNSKEY carries it (RFC 6605 §4: ECDSA's x | y,
    /// without the uncompressed-point prefix; RFC 8080 §3: Ed25519's 32 bytes).
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::Ecdsa(pair) => &pair.public_key().as_ref()[1..],
            Pair::Ed25519(pair) => pair.public_key().as_ref(),
        }
    }

    /// The DNSKEY RDATA (RFC 4034 §2.1): flags, protocol 3, algorithm, key.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        let mut rdata = Vec::with_capacity(4 + self.public_key().len());
        rdata.extend_from_slice(&self.role.flags().to_be_bytes());
        rdata.push(3);
        rdata.push(self.algorithm().number());
        rdata.extend_from_slice(self.public_key());
        rdata
    }

    /// The key tag (RFC 4034 Appendix B).
    pub fn key_tag(&self) -> u16 {
        let mut sum: u32 = 0;
        for (index, byte) in self.dnskey_rdata().iter().enumerate() {
            sum += if index & 1 == 1 {
                u32::from(*byte)
            } else {
                u32::from(*byte) << 8
            };
        }
        sum += (sum >> 16) & 0xFFFF;
        (sum & 0xFFFF) as u16
    }

    /// Signs `data` (the RFC 4034 §3.1.8.1 signed data): ECDSA's r | s
    /// (RFC 6605 §4) or Ed25519's 64 bytes.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.pair {
            // The fixed-size ECDSA signature fails only if the system's
            // random source does; an empty signature then fails validation
            // (SERVFAIL at the resolver) rather than the server.
            Pair::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), data)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ed25519(pair) => pair.sign(data).as_ref().to_vec(),
        }
    }

    /// The DNSKEY record for `zone` in presentation form.
    pub fn dnskey_text(&self, zone: &DomainName) -> String {
        format!(
            "{zone} {DNSKEY_TTL} IN DNSKEY {} 3 {} {}",
            self.role.flags(),
            self.algorithm().number(),
            data_encoding::BASE64.encode(self.public_key())
        )
    }

    /// The DS record for `zone` (SHA-256, digest type 2; RFC 4509) in
    /// presentation form, as the parent publishes it.
    pub fn ds_text(&self, zone: &DomainName) -> String {
        let mut digest = Sha256::new();
        digest.update(zone.wire());
        digest.update(self.dnskey_rdata());
        format!(
            "{zone} IN DS {} {} 2 {}",
            self.key_tag(),
            self.algorithm().number(),
            data_encoding::HEXUPPER.encode(&digest.finalize())
        )
    }
}

/// The role named by a `Role:` line before the PEM block, if any.
fn role_line(text: &str) -> Option<&str> {
    let (head, _) = text.split_once("-----BEGIN")?;
    head.lines()
        .find_map(|line| line.trim().strip_prefix(ROLE_LINE.trim_end()))
        .map(str::trim)
}

/// The DER inside a PEM `PRIVATE KEY` block.
fn pem_body(text: &str) -> Option<Vec<u8>> {
    let (_, rest) = text.split_once("-----BEGIN PRIVATE KEY-----")?;
    let (body, _) = rest.split_once("-----END PRIVATE KEY-----")?;
    let base64: String = body.split_whitespace().collect();
    data_encoding::BASE64.decode(base64.as_bytes()).ok()
}

fn pem_encode(der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("topology-dnssec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_generated_key_reads_back_the_same() {
        let dir = temp_dir("roundtrip");
        let zone = DomainName::parse_absolute("example.com.").unwrap();
        for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let key = ZoneKey::generate(&zone, algorithm, &dir).unwrap();
            let mode = std::fs::metadata(key.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let read = ZoneKey::read(key.path()).unwrap();
            assert_eq!(read.algorithm(), algorithm);
            assert_eq!(read.dnskey_rdata(), key.dnskey_rdata());
            assert!(format!("{read:?}").contains("key_tag"));
        }
    }

    #[test]
    fn a_key_keeps_its_role_and_a_zsk_has_no_sep_flag() {
        let dir = temp_dir("roles");
        let zone = DomainName::parse_absolute("example.com.").unwrap();
        for (role, flags) in [(Role::Ksk, 257), (Role::Zsk, 256), (Role::Csk, 257)] {
            let key = ZoneKey::generate_as(&zone, Algorithm::EcdsaP256Sha256, role, &dir).unwrap();
            let read = ZoneKey::read(key.path()).unwrap();
            assert_eq!(read.role(), role);
            assert_eq!(read.dnskey_rdata()[..2], u16::to_be_bytes(flags));
            assert!(
                read.dnskey_text(&zone)
                    .contains(&format!("DNSKEY {flags} 3 13 "))
            );
        }
        let odd = dir.join("odd.pem");
        let text = std::fs::read_to_string(
            ZoneKey::generate(&zone, Algorithm::Ed25519, &dir)
                .unwrap()
                .path(),
        )
        .unwrap();
        std::fs::write(&odd, format!("Role: SEP\n{text}")).unwrap();
        std::fs::set_permissions(&odd, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = ZoneKey::read(&odd).unwrap_err().to_string();
        assert!(error.contains("KSK, ZSK or CSK"), "{error}");
    }

    #[test]
    fn loose_missing_and_foreign_files_are_refused_with_the_fix() {
        let dir = temp_dir("refused");
        let zone = DomainName::parse_absolute("example.com.").unwrap();
        let key = ZoneKey::generate(&zone, Algorithm::Ed25519, &dir).unwrap();
        std::fs::set_permissions(key.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = ZoneKey::read(key.path()).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");

        let error = ZoneKey::read(&dir.join("absent.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("absent.pem") && error.contains("gtm dnssec keygen"),
            "{error}"
        );

        let other = dir.join("other.pem");
        std::fs::write(&other, pem_encode(b"not a key")).unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = ZoneKey::read(&other).unwrap_err().to_string();
        assert!(
            error.contains("ECDSAP256SHA256 (13) or ED25519 (15)"),
            "{error}"
        );
    }

    #[test]
    fn the_key_tag_and_ds_match_rfc_8080s_example() {
        // RFC 8080 §6.1: the Ed25519 example key of example.com.
        let seed = data_encoding::BASE64
            .decode(b"ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=")
            .unwrap();
        let key = ZoneKey {
            path: PathBuf::new(),
            role: Role::Csk,
            pair: Pair::Ed25519(Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()),
        };
        let zone = DomainName::parse_absolute("example.com.").unwrap();
        assert_eq!(
            key.dnskey_text(&zone),
            "example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="
        );
        assert_eq!(key.key_tag(), 3613);
        assert_eq!(
            key.ds_text(&zone),
            "example.com. IN DS 3613 15 2 3AA5AB37EFCE57F737FC1627013FEE07BDF241BD10F3B1964AB55C78E79A304B"
        );
    }
}
