//! Signed answers on the fast path: for queries with the DO bit, templates
//! cut from the slow path's canonical *signed* replies
//! ([`crate::dns::canonical_signed_reply`]), so the RRSIGs (and compact
//! denial's NSEC) are copied, not made, per query.
//!
//! Beside each unsigned template a signed zone's reply may come from, its
//! signed counterpart: positive answers and referrals map one to one (a
//! referral's DS or NSEC proof is the same for every name below the cut);
//! NODATA, whose NSEC sits at the name asked, is one template per existing
//! name. NXDOMAIN is signed per name asked — a name nobody can list in
//! advance — and stays with the slow path, which caches its signatures.
//! Names in unsigned zones answer DO queries from the unsigned templates:
//! the reply differs only by the DO bit copied into its OPT record.
//!
//! A template holds the signatures the slow path's cache held when it was
//! cut; [`crate::dnssec::Signers::generation`] changes when any is
//! replaced (the background refresh, an on-demand re-signing, a cache
//! overflow), and the tables are then rebuilt ([`super::Tables::is_current`]).
//! The static half is rebuilt only then; the geo half, like the geo
//! outcomes, with every health view.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use topology::DomainName;

use super::geo::GeoTemplate;
use super::names::{Route, Statics};
use super::query::FAST_QTYPES;
use super::template::{TemplateId, TemplateStore, Use};
use crate::dns::canonical_signed_reply;
use crate::dnssec::MAX_CACHED;
use crate::state::ServingState;
use crate::zone::NameHasher;

/// Most signed templates held (static and geo each): every one keeps an
/// RRset's signatures in use in the signer's cache, which must keep room
/// for what the slow path signs (beyond, the slow path answers).
const MAX_SIGNED: usize = MAX_CACHED / 4;

/// A private-use type no name holds: asked of an existing name, NODATA.
const ABSENT_TYPE: u16 = 65280;

type ById = HashMap<TemplateId, TemplateId, BuildHasherDefault<NameHasher>>;

/// Signed templates for the static tables, for one serving state and
/// signature generation.
pub(crate) struct SignedStatics {
    /// The signed templates.
    pub templates: TemplateStore,
    /// Zones in [`crate::zone::ZoneSet`] order (longest origin first):
    /// origin, and whether the zone is signed.
    zones: Vec<(Box<[u8]>, bool)>,
    /// Unsigned template → signed template, where the signed reply does
    /// not depend on the name asked (beyond its spelling).
    by_template: ById,
    /// Each signed zone's shared NODATA template (unsigned).
    nodata_ids: Vec<TemplateId>,
    /// Signed NODATA by existing name (lowercase wire form).
    nodata: HashMap<Box<[u8]>, TemplateId, BuildHasherDefault<NameHasher>>,
    /// [`crate::dnssec::Signers::generation`] when built.
    generation: u64,
}

/// Signed templates of the geo outcomes, for one health view.
#[derive(Default)]
pub(crate) struct SignedGeo {
    /// The signed templates.
    pub templates: TemplateStore,
    /// Unsigned geo template → signed.
    by_template: ById,
}

/// Where an unsigned reply came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsigned {
    /// A template of the static tables.
    Static(TemplateId),
    /// A template of the geo outcomes.
    Geo(TemplateId),
    /// A geo name's NODATA (no region with an address): its NSEC leaves
    /// out the type asked, which the per-name NODATA lists.
    GeoNodata(TemplateId),
}

/// The reply to a DO query.
pub(crate) enum Signed {
    /// The name is in no signed zone: the unsigned template answers.
    Unsigned,
    /// This template of [`SignedStatics::templates`].
    Static(TemplateId),
    /// This template of [`SignedGeo::templates`].
    Geo(TemplateId),
    /// Not held: the slow path signs.
    Slow,
}

impl SignedStatics {
    /// Signs what `statics` answers for every signed zone of `state`, with
    /// the signatures valid now; `generation` is
    /// [`crate::dnssec::Signers::generation`] read before.
    pub fn build(state: &ServingState, statics: &Statics, generation: u64) -> SignedStatics {
        let mut signed = SignedStatics {
            templates: TemplateStore::default(),
            zones: Vec::with_capacity(state.zones.zones.len()),
            by_template: ById::default(),
            nodata_ids: Vec::new(),
            nodata: HashMap::default(),
            generation,
        };
        let mut made = 0;
        for zone in &state.zones.zones {
            let is_signed = state.signers.get(zone.origin.wire()).is_some();
            signed.zones.push((zone.origin.wire().into(), is_signed));
            if !is_signed {
                continue;
            }
            let nodata_id = match statics.route(zone.origin.wire(), ABSENT_TYPE) {
                Route::Template(id) => Some(id),
                _ => None,
            };
            signed.nodata_ids.extend(nodata_id);
            for wire in zone.nodes.keys() {
                if made >= MAX_SIGNED {
                    break;
                }
                let Some(name) = DomainName::from_wire(wire) else {
                    continue;
                };
                for qtype in FAST_QTYPES {
                    let Route::Template(id) = statics.route(wire, qtype) else {
                        continue;
                    };
                    if Some(id) == nodata_id || signed.by_template.contains_key(&id) {
                        continue;
                    }
                    if let Some(made_id) = signed.template(state, &name, qtype, |reply| {
                        // A referral (AA clear) answers every name below
                        // its cut alike.
                        if reply[2] & 0x04 == 0 {
                            Use::Shared
                        } else {
                            Use::Exact
                        }
                    }) {
                        signed.by_template.insert(id, made_id);
                        made += 1;
                    }
                }
                if let Some(nodata_id) = nodata_id
                    && statics.route(wire, ABSENT_TYPE) == Route::Template(nodata_id)
                    && let Some(made_id) =
                        signed.template(state, &name, ABSENT_TYPE, |_| Use::Exact)
                {
                    signed.nodata.insert(wire.clone(), made_id);
                    made += 1;
                }
            }
        }
        signed
    }

    /// Cuts a template from the signed canonical reply to `name`/`qtype`,
    /// used as `use_` says; `None` for geo answers and unusable replies.
    fn template(
        &mut self,
        state: &ServingState,
        name: &DomainName,
        qtype: u16,
        use_: impl Fn(&[u8]) -> Use,
    ) -> Option<TemplateId> {
        let canonical = canonical_signed_reply(state, name, qtype, None)?;
        if canonical.asked_geo || canonical.bytes.len() < 12 {
            return None;
        }
        let use_ = use_(&canonical.bytes);
        self.templates.add(&canonical.bytes, name.wire(), use_).ok()
    }

    /// The [`crate::dnssec::Signers::generation`] these templates hold.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the zone of `qname` (lowercase wire form) is signed.
    fn signs(&self, qname: &[u8]) -> bool {
        self.zones
            .iter()
            .find(|(origin, _)| topology::name::is_wire_at_or_below(qname, origin))
            .is_some_and(|(_, signed)| *signed)
    }
}

impl SignedGeo {
    /// Signs the geo answers of `answers` (the outcomes' templates) that
    /// belong to signed zones.
    pub fn build(
        state: &ServingState,
        statics: &SignedStatics,
        answers: &[GeoTemplate],
    ) -> SignedGeo {
        let mut signed = SignedGeo::default();
        for made in answers {
            if signed.by_template.len() >= MAX_SIGNED {
                break;
            }
            if !statics.signs(made.name.wire()) {
                continue;
            }
            let Some(canonical) =
                canonical_signed_reply(state, &made.name, made.qtype.code(), Some(&made.answer))
            else {
                continue;
            };
            if !canonical.asked_geo {
                continue;
            }
            if let Ok(id) = signed
                .templates
                .add(&canonical.bytes, made.name.wire(), Use::Exact)
            {
                signed.by_template.insert(made.id, id);
            }
        }
        signed
    }
}

/// The signed reply to a DO query for `qname` (lowercase wire form) whose
/// unsigned reply is `unsigned`.
pub(crate) fn signed(
    statics: &SignedStatics,
    geo: &SignedGeo,
    qname: &[u8],
    unsigned: Unsigned,
) -> Signed {
    if !statics.signs(qname) {
        return Signed::Unsigned;
    }
    let found = match unsigned {
        Unsigned::Geo(id) => {
            return geo
                .by_template
                .get(&id)
                .map_or(Signed::Slow, |id| Signed::Geo(*id));
        }
        Unsigned::GeoNodata(_) => return Signed::Slow,
        Unsigned::Static(id) if statics.nodata_ids.contains(&id) => statics.nodata.get(qname),
        Unsigned::Static(id) => statics.by_template.get(&id),
    };
    found.map_or(Signed::Slow, |id| Signed::Static(*id))
}
