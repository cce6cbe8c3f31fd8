//! Session-ticket keys shared by a region's L7 nodes, so a client the L4
//! tier sends to another node still resumes its TLS session.
//!
//! The key file (`regions.R.l7.tls.ticket_keys`) holds one key a line,
//! each the base64 of 48 random bytes (`openssl rand -base64 48`): 16
//! bytes of key name, which every ticket carries in clear to say which key
//! made it, then a 32-byte ChaCha20-Poly1305 key (the AEAD rustls's own
//! ticketer uses). As in HAProxy's `tls-ticket-keys`, the second-to-last
//! key encrypts new tickets (the only key, in a one-line file) and every
//! key decrypts: the last line is the *next* key, already known to every
//! node before any node encrypts with it, so rotating (drop the first
//! line, append a new key) never leaves a node unable to open a ticket
//! another node has just made, whatever order the nodes reload in. Blank
//! lines and lines starting with `#` are ignored.
//!
//! Key material never reaches a log line, an error or `Debug` output.

use std::fmt;
use std::path::Path;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use topology::secret::SecretError;

/// Bytes of the name that opens every ticket.
const NAME_LEN: usize = 16;

/// Bytes of one decoded key line: the name, then the AEAD key.
const LINE_LEN: usize = NAME_LEN + 32;

/// The AEAD sealing tickets.
static AEAD: &aead::Algorithm = &aead::CHACHA20_POLY1305;

/// Longest ticket opened. rustls's tickets are a few hundred bytes (no
/// client certificates here); refusing longer input bounds the work an
/// attacker can ask for and the partitioning-oracle surface
/// (<https://eprint.iacr.org/2020/1491.pdf>). Not learned from what this
/// node encrypted, as rustls's ticketer does: another node made most of
/// the tickets this one opens.
const MAX_TICKET: usize = 2048;

/// Lifetime announced to clients, in seconds. A key encrypts for one
/// rotation period and still decrypts for the next, so with rotations at
/// least this far apart no ticket dies before its announced lifetime.
const LIFETIME_SECS: u32 = 12 * 60 * 60;

/// One key: its public name and the secret AEAD key.
struct TicketKey {
    name: [u8; NAME_LEN],
    key: LessSafeKey,
}

/// The keys of one version of the key file.
pub struct KeyRing {
    keys: Vec<TicketKey>,
    /// Index in `keys` of the key that encrypts.
    encrypting: usize,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The count only: names and keys stay out of logs.
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Reads the key file at `path`, refusing one that group or others may
    /// open (the keys decrypt every resumed session's secrets); the error
    /// says what is wrong (naming the first malformed line) and the fix,
    /// for the caller to prefix with the path.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = topology::secret::read(path).map_err(|e| match e {
            SecretError::Read { source, .. } => format!("cannot read the ticket keys: {source}"),
            SecretError::Exposed { mode, .. } => format!(
                "mode {mode:o} lets group or others at the ticket keys, which decrypt every resumed session; run `chmod 600 {}`",
                path.display()
            ),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            "is not text; write one `openssl rand -base64 48` key a line".to_owned()
        })?;
        Self::parse(&text)
    }

    /// Parses the key file's text; the error names the line and the fix
    /// but never quotes it.
    fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<(usize, TicketKey)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = STANDARD.decode(line).map_err(|_| {
                format!("line {number}: not base64; write keys made by `openssl rand -base64 48`")
            })?;
            if bytes.len() != LINE_LEN {
                return Err(format!(
                    "line {number}: {} bytes once decoded, a key is {LINE_LEN}; write keys made by `openssl rand -base64 48`",
                    bytes.len()
                ));
            }
            let (name, secret) = bytes.split_at(NAME_LEN);
            let mut key_name = [0; NAME_LEN];
            key_name.copy_from_slice(name);
            if let Some((earlier, _)) = keys.iter().find(|(_, k)| k.name == key_name) {
                return Err(format!(
                    "line {number}: the same key name as line {earlier}; every line needs a new key"
                ));
            }
            let key = UnboundKey::new(AEAD, secret)
                .map_err(|_| format!("line {number}: not a {AEAD:?} key"))?;
            keys.push((
                number,
                TicketKey {
                    name: key_name,
                    key: LessSafeKey::new(key),
                },
            ));
        }
        if keys.is_empty() {
            return Err(
                "holds no ticket key; write three with `openssl rand -base64 48` (one a line)"
                    .into(),
            );
        }
        let keys: Vec<TicketKey> = keys.into_iter().map(|(_, key)| key).collect();
        Ok(Self {
            encrypting: keys.len().saturating_sub(2),
            keys,
        })
    }
}

/// The ticketer of a node with shared keys: the current [`KeyRing`],
/// swapped when the key file changes while connections keep using the
/// same rustls configuration.
pub struct SharedTicketer {
    ring: ArcSwap<KeyRing>,
    random: SystemRandom,
}

impl fmt::Debug for SharedTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTicketer")
            .field("ring", &self.ring.load())
            .finish_non_exhaustive()
    }
}

impl SharedTicketer {
    /// A ticketer using `ring`.
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: ArcSwap::from_pointee(ring),
            random: SystemRandom::new(),
        }
    }

    /// Swaps in the keys of a new version of the file; tickets already
    /// issued open as long as their key is still in `ring`.
    pub fn replace(&self, ring: KeyRing) {
        self.ring.store(ring.into());
    }
}

impl ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    /// `name ‖ nonce ‖ sealed(plain) ‖ tag`, the name also authenticated
    /// as associated data. The nonce is random, not a counter, as in
    /// rustls's ticketer: several nodes encrypt under one key and a
    /// counter would tell clients how busy a node is.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let ring = self.ring.load();
        let key = ring.keys.get(ring.encrypting)?;
        let mut nonce = [0; aead::NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + nonce.len() + plain.len() + AEAD.tag_len());
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut ticket[NAME_LEN + aead::NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET {
            return None;
        }
        let (name, rest) = ticket.split_at_checked(NAME_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(aead::NONCE_LEN)?;
        let ring = self.ring.load();
        // Names travel in clear in every ticket, so comparing them in
        // variable time gives nothing away; the AEAD tag is what is
        // checked in constant time.
        let key = ring.keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut out = sealed.to_vec();
        let plain_len = key
            .key
            .open_in_place(nonce, Aad::from(key.name), &mut out)
            .ok()?
            .len();
        out.truncate(plain_len);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key line for `seed`: name and key bytes all `seed`.
    fn line(seed: u8) -> String {
        STANDARD.encode([seed; LINE_LEN])
    }

    fn ticketer(seeds: &[u8]) -> SharedTicketer {
        let text: String = seeds.iter().map(|s| line(*s) + "\n").collect();
        SharedTicketer::new(KeyRing::parse(&text).unwrap())
    }

    #[test]
    fn tickets_open_to_what_they_sealed() {
        let t = ticketer(&[1]);
        let ticket = t.encrypt(b"session state").unwrap();
        assert_eq!(&ticket[..NAME_LEN], &[1; NAME_LEN]);
        assert!(!ticket.windows(13).any(|w| w == b"session state"));
        assert_eq!(t.decrypt(&ticket).unwrap(), b"session state");
        // Random nonces: the same state never makes the same ticket.
        assert_ne!(t.encrypt(b"session state").unwrap(), ticket);
    }

    #[test]
    fn the_second_to_last_key_encrypts_and_every_key_decrypts() {
        let t = ticketer(&[1, 2, 3]);
        assert_eq!(&t.encrypt(b"x").unwrap()[..NAME_LEN], &[2; NAME_LEN]);
        for seed in [1, 3] {
            let other = ticketer(&[seed]).encrypt(b"made elsewhere").unwrap();
            assert_eq!(t.decrypt(&other).unwrap(), b"made elsewhere", "key {seed}");
        }
        assert_eq!(
            &ticketer(&[1, 2]).encrypt(b"x").unwrap()[..NAME_LEN],
            &[1; NAME_LEN]
        );
    }

    #[test]
    fn rotation_keeps_the_previous_keys_tickets_and_drops_the_removed_ones() {
        let t = ticketer(&[1, 2, 3]);
        let by_2 = t.encrypt(b"by 2").unwrap();
        // Rotate: drop the first line, append a new key; 3 now encrypts.
        t.replace(KeyRing::parse(&format!("{}\n{}\n{}\n", line(2), line(3), line(4))).unwrap());
        assert_eq!(t.decrypt(&by_2).unwrap(), b"by 2");
        let by_3 = t.encrypt(b"by 3").unwrap();
        assert_eq!(&by_3[..NAME_LEN], &[3; NAME_LEN]);
        // A node still on the old file opens what the rotated one makes.
        assert_eq!(ticketer(&[1, 2, 3]).decrypt(&by_3).unwrap(), b"by 3");
        // Rotate again: 2 is gone, and its tickets with it.
        t.replace(KeyRing::parse(&format!("{}\n{}\n{}\n", line(3), line(4), line(5))).unwrap());
        assert_eq!(t.decrypt(&by_2), None);
        assert_eq!(t.decrypt(&by_3).unwrap(), b"by 3");
    }

    #[test]
    fn tampered_truncated_and_oversized_tickets_are_refused() {
        let t = ticketer(&[1]);
        let ticket = t.encrypt(b"session state").unwrap();
        for at in [0, NAME_LEN, NAME_LEN + aead::NONCE_LEN, ticket.len() - 1] {
            let mut bad = ticket.clone();
            bad[at] ^= 1;
            assert_eq!(t.decrypt(&bad), None, "byte {at} flipped");
        }
        for len in [
            0,
            NAME_LEN - 1,
            NAME_LEN + aead::NONCE_LEN,
            ticket.len() - 1,
        ] {
            assert_eq!(t.decrypt(&ticket[..len]), None, "cut to {len}");
        }
        let mut long = ticket.clone();
        long.resize(MAX_TICKET + 1, 0);
        assert_eq!(t.decrypt(&long), None);
        // Same name, another key: the tag does not verify.
        let mut impostor = [9; LINE_LEN];
        impostor[..NAME_LEN].copy_from_slice(&[1; NAME_LEN]);
        let impostor = KeyRing::parse(&STANDARD.encode(impostor)).unwrap();
        assert_eq!(SharedTicketer::new(impostor).decrypt(&ticket), None);
    }

    #[test]
    fn malformed_lines_are_named_without_quoting_them() {
        let short = STANDARD.encode([7; 32]);
        let cases = [
            (
                format!("# keys\n\n{}\n!!!\n", line(1)),
                "line 4: not base64",
            ),
            (
                format!("{}\n{short}\n", line(1)),
                "line 2: 32 bytes once decoded, a key is 48",
            ),
            (
                format!("{}\n{}\n", line(1), line(1)),
                "line 2: the same key name as line 1",
            ),
            ("# nothing yet\n".to_owned(), "holds no ticket key"),
        ];
        for (text, expected) in cases {
            let e = KeyRing::parse(&text).unwrap_err();
            assert!(e.starts_with(expected), "{e}");
            assert!(!e.contains(&short) && !e.contains(&line(1)), "{e}");
        }
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let t = ticketer(&[0xab, 0xcd]);
        let shown = format!("{t:?}");
        assert!(shown.contains("keys: 2"), "{shown}");
        // 0xab and 0xcd as `Debug` prints bytes.
        assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
    }

    #[cfg(unix)]
    #[test]
    fn files_open_to_group_or_others_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("edge-tickets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tickets.keys");
        std::fs::write(&path, line(1) + "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyRing::read(&path).unwrap_err();
        assert!(e.starts_with("mode 644"), "{e}");
        assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(KeyRing::read(&path).unwrap().keys.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
