//! What GSLB nodes tell each other: the view a node serves at
//! `GET /v1/view` (its probe opinions and its override slots), how it is
//! signed with the shared `dns.peer_key`, and the check a poller applies
//! before it believes a view.
//!
//! The poller sends a fresh random nonce (`x-gtm-nonce`, 32 hex digits);
//! the answering node signs its body with HMAC-SHA256 over
//! `"gtm-view-v1\n" || node || "\n" || nonce || "\n" || body` and sends
//! the signature in `x-gtm-signature` (hex). The poller recomputes it with
//! the name the topology gives the peer at that address and its own nonce,
//! so a view cannot be forged without the key, passed off as another
//! node's, or replayed from an earlier poll. Without a key (every admin
//! API on loopback) views travel unsigned, as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use topology::secret::SecretError;

use crate::overrides::Slot;

/// The request header carrying the poller's nonce.
pub const NONCE_HEADER: &str = "x-gtm-nonce";
/// The response header carrying the view's signature.
pub const SIGNATURE_HEADER: &str = "x-gtm-signature";
/// The shortest secret accepted, in bytes after trimming.
pub const MIN_KEY_BYTES: usize = 32;
/// Names the protocol in every signature, so a signature made for
/// anything else with the same key can never pass as a view's.
const CONTEXT: &[u8] = b"gtm-view-v1\n";

/// The latest probe result, as reported to operators and peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastProbe {
    /// Whether it passed.
    pub ok: bool,
    /// `HTTP 200`, `connection refused`, ...
    pub detail: String,
    /// How long it took.
    pub latency_ms: f64,
    /// When it finished, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// One node's view, as served to its peers (`GET /v1/view`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's name.
    pub node: String,
    /// Its opinion of each region, by name.
    pub regions: BTreeMap<String, RegionOpinion>,
    /// Its override slot for each region that has one, tombstones
    /// included (absent from nodes that predate slots).
    #[serde(default)]
    pub overrides: BTreeMap<String, Slot>,
}

/// One vantage point's opinion of one region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionOpinion {
    /// Up after hysteresis.
    pub up: bool,
    /// The latest probe, if any yet.
    pub last: Option<LastProbe>,
}

/// The shared secret of `dns.peer_key`.
#[derive(Clone)]
pub struct PeerKey(Box<[u8]>);

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerKey(..)")
    }
}

/// `dns.peer_key` names a file that cannot serve as the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// It cannot be read.
    #[error(
        "dns.peer_key: cannot read {path}: {source}; create it on every name server with `head -c 32 /dev/urandom | base64 > {path}; chmod 600 {path}` (the same file everywhere)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Too short to resist guessing.
    #[error(
        "dns.peer_key: {path} holds {len} bytes; a shared secret needs at least {MIN_KEY_BYTES}: write a new one with `head -c 32 /dev/urandom | base64 > {path}` and copy it to every name server"
    )]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length after trimming.
        len: usize,
    },
    /// Others on the machine could read it.
    #[error(
        "dns.peer_key: {path} is readable by other users (mode {mode:o}); anyone who reads it can vote regions down: run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl PeerKey {
    /// Reads the key at `path`: at least [`MIN_KEY_BYTES`] bytes once
    /// surrounding whitespace is trimmed, and readable by its owner only
    /// (as ssh refuses a private key others can read).
    pub fn load(path: &Path) -> Result<PeerKey, KeyError> {
        let bytes = topology::secret::read(path).map_err(|e| match e {
            SecretError::Read { path, source } => KeyError::Read { path, source },
            SecretError::Exposed { path, mode } => KeyError::Exposed { path, mode },
        })?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyError::Short {
                path: path.to_owned(),
                len: secret.len(),
            });
        }
        Ok(PeerKey(secret.into()))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(secret: &[u8]) -> PeerKey {
        PeerKey(secret.into())
    }

    fn mac(&self, node: &str, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        for part in [
            CONTEXT,
            node.as_bytes(),
            b"\n",
            nonce.as_bytes(),
            b"\n",
            body,
        ] {
            mac.update(part);
        }
        mac
    }

    /// The signature node `node` sends with `body` in answer to `nonce`
    /// (hex).
    pub fn sign(&self, node: &str, nonce: &str, body: &[u8]) -> String {
        hex(&self.mac(node, nonce, body).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is `node`'s for `body` and `nonce`,
    /// compared in constant time.
    fn verify(&self, node: &str, nonce: &str, body: &[u8], signature: &str) -> bool {
        unhex(signature)
            .is_some_and(|bytes| self.mac(node, nonce, body).verify_slice(&bytes).is_ok())
    }
}

/// A fresh nonce: 16 random bytes as 32 hex digits.
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Whether `nonce` looks like one [`nonce`] makes, so a node signs only
/// what a poller could have sent.
pub fn is_nonce(nonce: &str) -> bool {
    nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a peer's view was not believed: the metric label and the log's
/// words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No signature, though this node has a key.
    Unsigned,
    /// A signature that is not the expected peer's for this nonce and body.
    BadSignature,
    /// A view that names another node than the one polled.
    WrongNode,
    /// Not a view at all.
    Malformed,
}

impl Refusal {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongNode => "wrong_node",
            Refusal::Malformed => "malformed",
        }
    }

    /// What went wrong and what to check, for the log.
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::Unsigned => {
                "its view is not signed: is dns.peer_key set in its topology file too?"
            }
            Refusal::BadSignature => {
                "its view's signature does not match: does it hold the same dns.peer_key, and is it the node the topology places at this address?"
            }
            Refusal::WrongNode => {
                "its view is signed but names another node: check dns.nodes' admin addresses"
            }
            Refusal::Malformed => "its answer is not a view: is a GSLB node listening there?",
        }
    }
}

/// The view in `body`, believed only if it passes the checks: with `key`,
/// `signature` must be `expected`'s for `nonce` and `body`, and the view
/// must name `expected`. Without a key any well-formed view passes, as it
/// did before views were signed.
pub fn check(
    key: Option<&PeerKey>,
    expected: &str,
    nonce: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<NodeView, Refusal> {
    if let Some(key) = key {
        let signature = signature.ok_or(Refusal::Unsigned)?;
        if !key.verify(expected, nonce, body, signature) {
            return Err(Refusal::BadSignature);
        }
    }
    let view: NodeView = serde_json::from_slice(body).map_err(|_| Refusal::Malformed)?;
    if key.is_some() && view.node != expected {
        return Err(Refusal::WrongNode);
    }
    Ok(view)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NONCE: &str = "00112233445566778899aabbccddeeff";

    fn key() -> PeerKey {
        PeerKey::from_bytes(b"correct horse battery staple, 32+")
    }

    fn body(node: &str) -> Vec<u8> {
        serde_json::to_vec(&NodeView {
            node: node.into(),
            regions: BTreeMap::new(),
            overrides: BTreeMap::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_view_signed_by_the_expected_peer_is_believed() {
        let body = body("ns2");
        let signature = key().sign("ns2", NONCE, &body);
        assert_eq!(signature.len(), 64);
        let view = check(Some(&key()), "ns2", NONCE, Some(&signature), &body).unwrap();
        assert_eq!(view.node, "ns2");
    }

    #[test]
    fn a_view_without_a_signature_is_refused() {
        let body = body("ns2");
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, None, &body),
            Err(Refusal::Unsigned)
        );
        // Without a key, as before signing: believed.
        assert!(check(None, "ns2", NONCE, None, &body).is_ok());
    }

    #[test]
    fn a_view_signed_with_another_key_is_refused() {
        let body = body("ns2");
        let other = PeerKey::from_bytes(b"another secret of thirty-two bytes");
        let signature = other.sign("ns2", NONCE, &body);
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, Some(&signature), &body),
            Err(Refusal::BadSignature)
        );
        for garbage in ["", "zz", "abc", &"0".repeat(64)] {
            assert_eq!(
                check(Some(&key()), "ns2", NONCE, Some(garbage), &body),
                Err(Refusal::BadSignature),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let body = body("ns2");
        let signature = key().sign("ns2", NONCE, &body);
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, Some(&signature), &tampered),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_view_of_another_node_is_refused() {
        // ns3 answering at ns2's address signs as itself: no match.
        let body3 = body("ns3");
        let signature = key().sign("ns3", NONCE, &body3);
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, Some(&signature), &body3),
            Err(Refusal::BadSignature)
        );
        // Signed for ns2 but naming ns3.
        let signature = key().sign("ns2", NONCE, &body3);
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, Some(&signature), &body3),
            Err(Refusal::WrongNode)
        );
    }

    #[test]
    fn a_view_replayed_for_another_nonce_is_refused() {
        let body = body("ns2");
        let captured = key().sign("ns2", NONCE, &body);
        let fresh = nonce().unwrap();
        assert!(is_nonce(&fresh) && fresh != NONCE);
        assert_eq!(
            check(Some(&key()), "ns2", &fresh, Some(&captured), &body),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_signed_answer_that_is_not_a_view_is_malformed() {
        let signature = key().sign("ns2", NONCE, b"<html>");
        assert_eq!(
            check(Some(&key()), "ns2", NONCE, Some(&signature), b"<html>"),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check(None, "ns2", NONCE, None, b"{}"),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn only_a_private_long_enough_key_file_is_accepted() {
        let dir = std::env::temp_dir().join(format!("gslb-peer-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("peer.key");
        let error = PeerKey::load(&path).unwrap_err().to_string();
        assert!(error.contains("head -c 32 /dev/urandom"), "{error}");

        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = PeerKey::load(&path).unwrap_err().to_string();
        assert!(error.contains("holds 5 bytes"), "{error}");

        std::fs::write(
            &path,
            "  c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA==\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = PeerKey::load(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = PeerKey::load(&path).unwrap();
        // Trimmed: the newline an editor adds does not change the key.
        let trimmed = PeerKey::from_bytes(b"c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA==");
        assert_eq!(loaded.sign("a", NONCE, b""), trimmed.sign("a", NONCE, b""));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
