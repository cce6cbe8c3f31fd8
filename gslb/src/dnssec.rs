//! DNSSEC online signing, in wire bytes: RRSIGs over RRsets as answered
//! (geo answers included), cached per RRset, and compact denial of
//! existence (RFC 9824) for negative answers. No hickory here: the DNS
//! adapter hands RRsets over in canonical form and writes back the RDATA
//! this module makes.
//!
//! Signatures are made on demand and kept per (owner, type, TTL, RDATA):
//! a static RRset is signed once per validity period, and a geo name has
//! only a handful of possible RRsets (one per region order). A signature
//! starts an hour in the past (clocks are never quite in step), ends
//! `signature_validity` after it was made, and is made anew once less than
//! `refresh` remains — by the background task ([`Signers::refresh_due`])
//! before any query finds it due, so queries rarely pay for signing (or
//! dropped, if no query used it since it was made). A reload that keeps
//! a zone's keys and validity keeps its signatures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use topology::dnssec::{KeyError, ZoneKey};
use topology::{DomainName, Topology};

/// Type code of RRSIG.
pub const RRSIG: u16 = 46;
/// Type code of NSEC.
pub const NSEC: u16 = 47;
/// Type code of DNSKEY.
pub const DNSKEY: u16 = 48;
/// RFC 9824's NXNAME pseudo-type, set in the NSEC of a name that does not
/// exist so a resolver can tell NXDOMAIN from NODATA.
pub const NXNAME: u16 = 128;

/// How far back a signature's inception is set, for resolvers whose clock
/// runs behind ours.
const INCEPTION_SKEW: u32 = 3600;
/// Most RRsets whose signatures are kept; past it the cache starts over
/// (a flood of distinct names must not grow memory without bound).
pub(crate) const MAX_CACHED: usize = 100_000;

/// Seconds since the Unix epoch, as RRSIG times count them (RFC 4034
/// §3.1.5: serial arithmetic, so the wrap in 2106 is harmless).
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// The signers of every signed zone served, by origin.
#[derive(Default)]
pub struct Signers {
    by_origin: HashMap<Box<[u8]>, ZoneSigner>,
}

impl Signers {
    /// Reads the keys of every signed zone of `topology`. A zone that
    /// `previous` (the state being replaced) signed with the same keys and
    /// validity keeps its signature cache.
    pub fn load(topology: &Topology, previous: Option<&Signers>) -> Result<Signers, KeyError> {
        let mut by_origin = HashMap::new();
        for zone in &topology.dns.zones {
            let Some(dnssec) = &zone.dnssec else {
                continue;
            };
            let read = |files: &[std::path::PathBuf]| {
                files
                    .iter()
                    .map(|path| ZoneKey::read(path))
                    .collect::<Result<Vec<_>, _>>()
            };
            let mut signer = ZoneSigner::new(
                zone.origin.clone(),
                read(&dnssec.keys)?,
                dnssec.signature_validity,
                dnssec.refresh,
            );
            signer.published = read(&dnssec.published)?;
            if let Some(before) = previous.and_then(|p| p.get(zone.origin.wire())) {
                signer.adopt_cache(before);
            }
            by_origin.insert(zone.origin.wire().into(), signer);
        }
        Ok(Signers { by_origin })
    }

    /// Re-makes every cached signature that a query at `now + lead` would
    /// find due (less than `refresh` left); returns how many RRsets were
    /// signed anew. Run every `lead` seconds, it keeps signing off the
    /// query path.
    pub fn refresh_due(&self, now: u32, lead: u32) -> usize {
        self.by_origin
            .values()
            .map(|signer| signer.refresh_due(now, lead))
            .sum()
    }

    /// The signer of the zone whose origin is `origin` (lowercase wire
    /// form), if that zone is signed.
    pub fn get(&self, origin: &[u8]) -> Option<&ZoneSigner> {
        self.by_origin.get(origin)
    }

    /// Whether any zone is signed.
    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }

    /// A number that changes whenever a signature some reply may already
    /// carry is replaced (re-made, or dropped with the whole cache): copies
    /// of signed replies (the fast path's templates) taken at one value
    /// are what the slow path sends for as long as it holds.
    pub fn generation(&self) -> u64 {
        self.by_origin
            .values()
            .map(|signer| signer.cache.generation.load(Ordering::Acquire))
            .fold(0, u64::wrapping_add)
    }
}

/// One signed zone's keys and signature cache.
pub struct ZoneSigner {
    origin: DomainName,
    /// The keys that sign.
    keys: Vec<ZoneKey>,
    /// Keys in the DNSKEY RRset that do not sign (a rollover's next or
    /// previous key).
    published: Vec<ZoneKey>,
    validity: u32,
    refresh: u32,
    /// Shared with the signer of the same keys in the next state, so a
    /// reload keeps the signatures.
    cache: Arc<Cache>,
}

/// Signatures by RRset, and how often one was replaced.
#[derive(Default)]
struct Cache {
    entries: Mutex<HashMap<Vec<u8>, Signed>>,
    /// Bumped whenever an entry is replaced or the cache is cleared
    /// ([`Signers::generation`]); adding an entry leaves it alone.
    generation: AtomicU64,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Signed>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn replaced(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[derive(Clone)]
struct Signed {
    expiration: u32,
    /// What was signed, to sign it anew in the background.
    rrset: Arc<CanonicalRrset>,
    rrsigs: Arc<[Vec<u8>]>,
    /// Whether a query has used it since it was made: one nobody asked
    /// for is dropped when it comes due instead of being made anew.
    used: bool,
}

/// An RRset in canonical form (RFC 4034 §6): lowercase owner in wire
/// form, and each record's RDATA with its names lowercase and uncompressed.
pub struct CanonicalRrset {
    /// Owner, lowercase wire form.
    pub owner: Vec<u8>,
    /// Type code.
    pub rtype: u16,
    /// TTL shared by the records.
    pub ttl: u32,
    /// Each record's canonical RDATA.
    pub rdata: Vec<Vec<u8>>,
}

impl ZoneSigner {
    /// A signer for the zone at `origin` signing with `keys`, with an
    /// empty cache and no other key published.
    pub fn new(origin: DomainName, keys: Vec<ZoneKey>, validity: u32, refresh: u32) -> ZoneSigner {
        ZoneSigner {
            origin,
            keys,
            published: Vec::new(),
            validity,
            refresh,
            cache: Arc::default(),
        }
    }

    /// Takes over `previous`'s signatures if they are still what this
    /// signer would make: same keys (by public key) and same validity.
    pub fn adopt_cache(&mut self, previous: &ZoneSigner) {
        let same_keys = self.keys.len() == previous.keys.len()
            && self
                .keys
                .iter()
                .zip(&previous.keys)
                .all(|(a, b)| a.dnskey_rdata() == b.dnskey_rdata());
        if same_keys && self.validity == previous.validity {
            self.cache = previous.cache.clone();
        }
    }

    /// The zone's apex.
    pub fn origin(&self) -> &DomainName {
        &self.origin
    }

    /// The DNSKEY RDATA of each key, signing or only published, for the
    /// apex DNSKEY RRset.
    pub fn dnskeys(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.keys
            .iter()
            .chain(&self.published)
            .map(ZoneKey::dnskey_rdata)
    }

    /// The RRSIG RDATA over `rrset`, one per key whose role signs it
    /// (the KSKs and CSKs for the DNSKEY RRset, the ZSKs and CSKs for any
    /// other), valid at `now` (seconds
    /// since the Unix epoch): from the cache while more than `refresh` of
    /// its validity remains, otherwise made anew.
    pub fn sign(&self, mut rrset: CanonicalRrset, now: u32) -> Arc<[Vec<u8>]> {
        // RFC 4034 §6.3: the records in canonical order, duplicates dropped.
        rrset.rdata.sort();
        rrset.rdata.dedup();
        let key = cache_key(&rrset);
        let mut cache = self.cache.lock();
        if let Some(signed) = cache.get_mut(&key)
            && !self.due(signed, now)
        {
            signed.used = true;
            return signed.rrsigs.clone();
        }
        drop(cache);
        self.sign_anew(key, Arc::new(rrset), now, true)
    }

    /// Whether `signed` has `refresh` or less left at `now`.
    fn due(&self, signed: &Signed, now: u32) -> bool {
        signed.expiration.wrapping_sub(now) as i32 <= self.refresh as i32
    }

    /// Signs `rrset` (cached under `key`) at `now` and caches the result,
    /// marked `used` if a query asked for it.
    fn sign_anew(
        &self,
        key: Vec<u8>,
        rrset: Arc<CanonicalRrset>,
        now: u32,
        used: bool,
    ) -> Arc<[Vec<u8>]> {
        let inception = now.wrapping_sub(INCEPTION_SKEW);
        let expiration = now.wrapping_add(self.validity);
        // A KSK signs the DNSKEY RRset only, a ZSK everything else, a CSK
        // both.
        let by_role = |key: &&ZoneKey| {
            if rrset.rtype == DNSKEY {
                key.role().signs_keys()
            } else {
                key.role().signs_data()
            }
        };
        let rrsigs: Arc<[Vec<u8>]> = self
            .keys
            .iter()
            .filter(by_role)
            .map(|key| self.rrsig(key, &rrset, inception, expiration))
            .collect();
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
            self.cache.replaced();
        }
        let before = cache.insert(
            key,
            Signed {
                expiration,
                rrset,
                rrsigs: rrsigs.clone(),
                used,
            },
        );
        if before.is_some() {
            self.cache.replaced();
        }
        rrsigs
    }

    /// [`Signers::refresh_due`] for this zone: what is due is made anew
    /// if a query used it since it was made, and dropped otherwise (an
    /// RRset no longer answered, a geo answer no longer given). The lock
    /// is held only to sort what is due, not while signing.
    fn refresh_due(&self, now: u32, lead: u32) -> usize {
        let at = now.wrapping_add(lead);
        let mut cache = self.cache.lock();
        let held = cache.len();
        cache.retain(|_, signed| signed.used || !self.due(signed, at));
        if cache.len() != held {
            self.cache.replaced();
        }
        let due: Vec<(Vec<u8>, Arc<CanonicalRrset>)> = cache
            .iter()
            .filter(|(_, signed)| self.due(signed, at))
            .map(|(key, signed)| (key.clone(), signed.rrset.clone()))
            .collect();
        drop(cache);
        for (key, rrset) in &due {
            self.sign_anew(key.clone(), rrset.clone(), now, false);
        }
        due.len()
    }

    /// One RRSIG's RDATA (RFC 4034 §3.1): the fields, then the signature
    /// over those fields and the canonical RRset (§3.1.8.1).
    fn rrsig(
        &self,
        key: &ZoneKey,
        rrset: &CanonicalRrset,
        inception: u32,
        expiration: u32,
    ) -> Vec<u8> {
        let mut rdata = Vec::with_capacity(18 + self.origin.wire().len() + 64);
        rdata.extend_from_slice(&rrset.rtype.to_be_bytes());
        rdata.push(key.algorithm().number());
        rdata.push(rrsig_labels(&rrset.owner));
        rdata.extend_from_slice(&rrset.ttl.to_be_bytes());
        rdata.extend_from_slice(&expiration.to_be_bytes());
        rdata.extend_from_slice(&inception.to_be_bytes());
        rdata.extend_from_slice(&key.key_tag().to_be_bytes());
        rdata.extend_from_slice(self.origin.wire());
        let mut signed = rdata.clone();
        for record in &rrset.rdata {
            signed.extend_from_slice(&rrset.owner);
            signed.extend_from_slice(&rrset.rtype.to_be_bytes());
            signed.extend_from_slice(&1u16.to_be_bytes());
            signed.extend_from_slice(&rrset.ttl.to_be_bytes());
            signed.extend_from_slice(&(record.len() as u16).to_be_bytes());
            signed.extend_from_slice(record);
        }
        rdata.extend_from_slice(&key.sign(&signed));
        rdata
    }
}

/// The cache key: everything the signature covers but the times.
fn cache_key(rrset: &CanonicalRrset) -> Vec<u8> {
    let mut key = Vec::with_capacity(
        rrset.owner.len() + 6 + rrset.rdata.iter().map(|r| r.len() + 2).sum::<usize>(),
    );
    key.extend_from_slice(&rrset.owner);
    key.extend_from_slice(&rrset.rtype.to_be_bytes());
    key.extend_from_slice(&rrset.ttl.to_be_bytes());
    for record in &rrset.rdata {
        key.extend_from_slice(&(record.len() as u16).to_be_bytes());
        key.extend_from_slice(record);
    }
    key
}

/// RRSIG's Labels field (RFC 4034 §3.1.3): the owner's labels, root and a
/// leading `*` not counted.
fn rrsig_labels(owner: &[u8]) -> u8 {
    let mut count = 0u8;
    let mut at = 0;
    while let Some(&len) = owner.get(at) {
        if len == 0 {
            break;
        }
        let label = owner.get(at + 1..at + 1 + usize::from(len));
        if !(at == 0 && label == Some(b"*")) {
            count += 1;
        }
        at += 1 + usize::from(len);
    }
    count
}

/// The RDATA of a compact-denial NSEC at `owner` (lowercase wire form)
/// listing `types` (RFC 9824 §3): its next name is `\000.owner`, the
/// closest name after it, so the NSEC covers nothing but `owner` itself
/// and no other name of the zone can be learned from it.
pub fn compact_nsec(owner: &[u8], types: &[u16]) -> Vec<u8> {
    let mut next = Vec::with_capacity(owner.len() + 2);
    next.extend_from_slice(&[1, 0]);
    next.extend_from_slice(owner);
    nsec_rdata(&next, types)
}

/// The RDATA of an NSEC (RFC 4034 §4.1) whose next name is `next`
/// (lowercase wire form) and which lists `types`.
pub fn nsec_rdata(next: &[u8], types: &[u16]) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(next.len() + 34);
    rdata.extend_from_slice(next);
    rdata.extend_from_slice(&type_bitmap(types));
    rdata
}

/// The type bit maps field (RFC 4034 §4.1.2): one window block per high
/// byte in use, each as long as its highest set bit needs.
fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    for window in sorted.chunk_by(|a, b| a >> 8 == b >> 8) {
        let mut bits = [0u8; 32];
        let mut length = 0;
        for t in window {
            let low = usize::from(t & 0xFF);
            bits[low / 8] |= 0x80 >> (low % 8);
            length = low / 8 + 1;
        }
        out.push((window[0] >> 8) as u8);
        out.push(length as u8);
        out.extend_from_slice(&bits[..length]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_matches_rfc_4034s_example() {
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234.
        let mut expected = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        expected.extend([0; 26]);
        expected.push(0x20);
        assert_eq!(type_bitmap(&[1, 15, 46, 47, 1234]), expected);
    }

    #[test]
    fn a_compact_nsec_covers_only_its_owner() {
        let owner = b"\x03www\x07example\x03com\x00";
        let rdata = compact_nsec(owner, &[RRSIG, NSEC, NXNAME]);
        assert_eq!(&rdata[..2], &[1, 0]);
        assert_eq!(&rdata[2..2 + owner.len()], owner);
        // Window 0, 17 bytes up to type 128; RRSIG and NSEC in byte 5.
        assert_eq!(&rdata[2 + owner.len()..][..3], &[0, 17, 0]);
    }

    fn signer(dir: &std::path::Path) -> ZoneSigner {
        let origin = DomainName::parse_absolute("example.com.").unwrap();
        let key = ZoneKey::generate(&origin, topology::dnssec::Algorithm::Ed25519, dir).unwrap();
        ZoneSigner::new(origin, vec![key], 7 * 86_400, 86_400)
    }

    fn rrset() -> CanonicalRrset {
        CanonicalRrset {
            owner: b"\x03www\x07example\x03com\x00".to_vec(),
            rtype: 1,
            ttl: 300,
            rdata: vec![vec![192, 0, 2, 1]],
        }
    }

    /// The Signature Expiration field of an RRSIG's RDATA.
    fn expiration(rrsig: &[u8]) -> u32 {
        u32::from_be_bytes(rrsig[8..12].try_into().unwrap())
    }

    #[test]
    fn the_background_refresh_re_signs_before_a_query_would() {
        let dir = std::env::temp_dir().join(format!("gslb-dnssec-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let signer = signer(&dir);
        let t0 = 1_800_000_000;
        let first = signer.sign(rrset(), t0);
        // Nothing is due a day in, with an hour's lead.
        assert_eq!(signer.refresh_due(t0 + 86_400, 3600), 0);
        // Half an hour before the one-day refresh point, an hour's lead
        // reaches it.
        let t1 = t0 + 6 * 86_400 - 1800;
        assert_eq!(signer.refresh_due(t1, 3600), 1);
        // A query an hour later finds the new signature, made at t1.
        let later = signer.sign(rrset(), t1 + 3600);
        assert_eq!(expiration(&first[0]), t0 + 7 * 86_400);
        assert_eq!(expiration(&later[0]), t1 + 7 * 86_400);
        // That query used it, so it is made anew when next due; nobody
        // asks for it afterwards, so the time after it is dropped.
        let t2 = t1 + 6 * 86_400 - 1800;
        assert_eq!(signer.refresh_due(t2, 3600), 1);
        let t3 = t2 + 6 * 86_400 - 1800;
        assert_eq!(signer.refresh_due(t3, 3600), 0);
        assert!(signer.cache.lock().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reload_with_the_same_keys_keeps_the_signatures() {
        let dir = std::env::temp_dir().join(format!("gslb-dnssec-adopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let before = signer(&dir);
        let made = before.sign(rrset(), 1_800_000_000);
        let key_file = before.keys[0].path().to_owned();
        let reread = || vec![ZoneKey::read(&key_file).unwrap()];
        let origin = before.origin.clone();
        let mut same = ZoneSigner::new(origin.clone(), reread(), 7 * 86_400, 86_400);
        same.adopt_cache(&before);
        assert!(Arc::ptr_eq(&made, &same.sign(rrset(), 1_800_000_100)));
        // Another validity makes other signatures: start afresh.
        let mut other = ZoneSigner::new(origin, reread(), 14 * 86_400, 86_400);
        other.adopt_cache(&before);
        assert!(!Arc::ptr_eq(&made, &other.sign(rrset(), 1_800_000_100)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The Key Tag field of an RRSIG's RDATA.
    fn key_tag(rrsig: &[u8]) -> u16 {
        u16::from_be_bytes(rrsig[16..18].try_into().unwrap())
    }

    #[test]
    fn a_ksk_signs_the_dnskey_rrset_and_a_zsk_the_rest() {
        use topology::dnssec::{Algorithm, Role};
        let dir = std::env::temp_dir().join(format!("gslb-dnssec-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let origin = DomainName::parse_absolute("example.com.").unwrap();
        let make =
            |role| ZoneKey::generate_as(&origin, Algorithm::EcdsaP256Sha256, role, &dir).unwrap();
        let (ksk, zsk) = (make(Role::Ksk), make(Role::Zsk));
        let (ksk_tag, zsk_tag) = (ksk.key_tag(), zsk.key_tag());
        let signer = ZoneSigner::new(origin.clone(), vec![ksk, zsk], 7 * 86_400, 86_400);
        let dnskeys = CanonicalRrset {
            owner: origin.wire().to_vec(),
            rtype: DNSKEY,
            ttl: 3600,
            rdata: signer.dnskeys().collect(),
        };
        let now = 1_800_000_000;
        let tags = |rrsigs: Arc<[Vec<u8>]>| rrsigs.iter().map(|r| key_tag(r)).collect::<Vec<_>>();
        assert_eq!(tags(signer.sign(dnskeys, now)), [ksk_tag]);
        assert_eq!(tags(signer.sign(rrset(), now)), [zsk_tag]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_leading_wildcard_label_is_not_counted() {
        assert_eq!(rrsig_labels(b"\x01*\x07example\x03com\x00"), 2);
        assert_eq!(rrsig_labels(b"\x03www\x07example\x03com\x00"), 3);
        assert_eq!(rrsig_labels(b"\x00"), 0);
    }
}
