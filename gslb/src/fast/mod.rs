//! The UDP fast path's tables: they answer the common queries from
//! templates the slow path built, without allocating, and leave everything
//! else to the slow path ([`crate::dns::answer_bytes`]), whose bytes they
//! reproduce exactly.
//!
//! # Layout
//! - `query`: reads a query in the common shape (one question, class IN,
//!   a common type, EDNS 0 with at most a client subnet and the DO bit).
//! - `template`: canonical replies cut into copy-and-patch templates.
//! - `names`: the static tables — a template per name and type, and per
//!   zone the shared NXDOMAIN, NODATA, referral and REFUSED templates.
//! - `geo`: the geo decision tables (merged GeoIP ranges → region order
//!   → outcome under the health view) and the ECS scope.
//! - `signed`: for signed zones, the signed counterpart of each template,
//!   answering DO queries.
//!
//! [`Tables`] is one immutable snapshot of all of it, built for one serving
//! state, GeoIP database and health view. The serving layer
//! ([`crate::serve`]) keeps the current one published, rebuilding in the
//! background when any of the three changes, and answers from it only
//! while it is current.

mod geo;
mod names;
mod query;
mod signed;
mod template;

use std::net::SocketAddr;
use std::sync::Arc;

use geo_data::GeoDb;
use topology::{RegionId, Topology};

pub use self::query::FAST_QTYPES;

use self::geo::{GeoMaps, GeoOutcomes, Reply};
use self::names::{Route, Statics};
use self::query::Query;
use self::signed::{Signed, SignedGeo, SignedStatics, Unsigned};
use self::template::{Opt, TemplateId, TemplateStore};
use crate::client::Client;
use crate::dns::CLASSIC_UDP_PAYLOAD;
use crate::health::RegionHealth;
use crate::state::ServingState;

/// The fast path's tables for one serving state, database and health view.
pub struct Tables {
    state: Arc<ServingState>,
    health: Arc<RegionHealth>,
    db: Arc<GeoDb>,
    statics: Arc<Statics>,
    maps: Arc<GeoMaps>,
    outcomes: GeoOutcomes,
    /// For signed zones (`None` when no zone is signed).
    signed: Option<Arc<SignedStatics>>,
    signed_geo: SignedGeo,
}

/// What the fast path did with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The reply is the first `len` bytes of the output buffer.
    Reply {
        /// Reply length.
        len: usize,
        /// What to count in the metrics.
        count: Count,
    },
    /// Not in the fast path's shape (or not in its tables): the slow path
    /// must answer.
    Slow,
}

/// A query answered by the fast path, as the metrics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// The query type (one of [`FAST_QTYPES`]).
    pub qtype: u16,
    /// The reply's response code (0, 3 or 5).
    pub rcode: u8,
    /// For geo decisions: the region answered, if any.
    pub region: Option<RegionId>,
    /// For geo decisions: whether the client came from ECS.
    pub from_ecs: Option<bool>,
}

impl Tables {
    /// Builds the tables for `state` (with its current GeoIP database) and
    /// `health`, reusing what `previous` holds for the same state and
    /// database.
    pub fn build(
        state: Arc<ServingState>,
        health: Arc<RegionHealth>,
        previous: Option<&Tables>,
    ) -> Tables {
        let db = state.geoip.current();
        let same_state = previous.filter(|p| Arc::ptr_eq(&p.state, &state));
        let statics = match same_state {
            Some(previous) => previous.statics.clone(),
            None => Arc::new(Statics::build(&state)),
        };
        let maps = match same_state.filter(|p| Arc::ptr_eq(&p.db, &db)) {
            Some(previous) => previous.maps.clone(),
            None => Arc::new(GeoMaps::build(&state, &db)),
        };
        let outcomes = GeoOutcomes::build(&state, &statics, &maps, &health);
        // Read before signing: a signature replaced meanwhile makes these
        // tables stale at once rather than never.
        let generation = state.signers.generation();
        let signed = if state.signers.is_empty() {
            None
        } else {
            match same_state
                .and_then(|p| p.signed.as_ref())
                .filter(|s| s.generation() == generation)
            {
                Some(previous) => Some(previous.clone()),
                None => Some(Arc::new(SignedStatics::build(&state, &statics, generation))),
            }
        };
        let signed_geo = match &signed {
            Some(signed) => SignedGeo::build(&state, signed, &outcomes.answers),
            None => SignedGeo::default(),
        };
        Tables {
            state,
            health,
            db,
            statics,
            maps,
            outcomes,
            signed,
            signed_geo,
        }
    }

    /// Whether these tables answer for exactly `state` (and its current
    /// database and signatures) and `health`.
    pub fn is_current(&self, state: &Arc<ServingState>, health: &Arc<RegionHealth>) -> bool {
        Arc::ptr_eq(&self.state, state)
            && Arc::ptr_eq(&self.health, health)
            && Arc::ptr_eq(&self.db, &state.geoip.load())
            && self
                .signed
                .as_ref()
                .is_none_or(|signed| signed.generation() == state.signers.generation())
    }

    /// The topology these tables answer for.
    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    /// Number of names with static templates.
    pub fn names(&self) -> usize {
        self.statics.names()
    }

    /// Number of templates held (static, geo), signed ones included.
    pub fn templates(&self) -> (usize, usize) {
        let signed = self.signed.as_ref().map_or(0, |s| s.templates.len());
        (
            self.statics.templates.len() + signed,
            self.outcomes.templates.len() + self.signed_geo.templates.len(),
        )
    }

    /// Bytes the templates (and the static names' entries beside them) hold.
    pub fn template_bytes(&self) -> usize {
        self.statics.templates.heap_bytes()
            + self.outcomes.templates.heap_bytes()
            + self.signed.as_ref().map_or(0, |s| s.templates.heap_bytes())
            + self.signed_geo.templates.heap_bytes()
    }

    /// Answers the datagram `packet` from `src` into `out`, as
    /// [`crate::dns::answer_bytes`] would with the same `max_udp`, or says
    /// the slow path must. Does not allocate.
    pub fn answer(&self, packet: &[u8], src: SocketAddr, max_udp: u16, out: &mut [u8]) -> Answer {
        let Some(query) = Query::parse(packet) else {
            return Answer::Slow;
        };
        let ecs = query.edns.and_then(|edns| edns.ecs);
        let route = self.statics.route(query.lower(), query.qtype);
        let mut client = None;
        if ecs.is_some() || matches!(route, Route::Geo { .. }) {
            match Client::new(src.ip(), ecs.map(|e| e.query)) {
                Ok(found) => client = Some(found),
                // FORMERR is the slow path's business.
                Err(_) => return Answer::Slow,
            }
        }
        let (unsigned, scope, region, from_ecs) = match route {
            Route::Template(id) => (Unsigned::Static(id), 0, None, None),
            Route::Geo { geo, v6 } => {
                let Some(client) = &client else {
                    return Answer::Slow;
                };
                let decided = self.outcomes.decide(
                    &self.maps,
                    &self.state.topology,
                    &self.db,
                    geo,
                    v6,
                    client,
                );
                let outcome = decided.outcome;
                let scope = if outcome.scope_zero { 0 } else { decided.scope };
                let from_ecs = Some(client.ecs.is_some());
                let unsigned = match outcome.reply {
                    Reply::Geo(id) => Unsigned::Geo(id),
                    Reply::Static(id) => Unsigned::GeoNodata(id),
                    Reply::Slow => return Answer::Slow,
                };
                (unsigned, scope, outcome.region, from_ecs)
            }
            Route::Slow => return Answer::Slow,
        };
        let dnssec_ok = query.edns.is_some_and(|edns| edns.dnssec_ok);
        let Some((store, id)) = self.reply_from(&query, unsigned, dnssec_ok) else {
            return Answer::Slow;
        };
        let max_udp = max_udp.max(CLASSIC_UDP_PAYLOAD);
        let (limit, opt) = match query.edns {
            None => (CLASSIC_UDP_PAYLOAD, None),
            Some(edns) => {
                let echo = match (ecs, &client) {
                    (Some(ecs), Some(client)) => Some((
                        &packet[ecs.data_at..ecs.data_at + ecs.data_len],
                        client.echo_scope(scope),
                    )),
                    _ => None,
                };
                (
                    edns.payload.clamp(CLASSIC_UDP_PAYLOAD, max_udp),
                    Some(Opt {
                        max_payload: max_udp,
                        dnssec_ok,
                        ecs: echo,
                    }),
                )
            }
        };
        match store.write(id, &query, opt, usize::from(limit), out) {
            Some(len) => Answer::Reply {
                len,
                count: Count {
                    qtype: query.qtype,
                    rcode: store.rcode(id),
                    region,
                    from_ecs,
                },
            },
            None => Answer::Slow,
        }
    }

    /// The template answering `query`, whose unsigned reply is `unsigned`:
    /// that one, or with `dnssec_ok` in a signed zone its signed
    /// counterpart; `None` when the slow path must sign.
    fn reply_from(
        &self,
        query: &Query<'_>,
        unsigned: Unsigned,
        dnssec_ok: bool,
    ) -> Option<(&TemplateStore, TemplateId)> {
        let plain = match unsigned {
            Unsigned::Geo(id) => (&self.outcomes.templates, id),
            Unsigned::Static(id) | Unsigned::GeoNodata(id) => (&self.statics.templates, id),
        };
        let Some(signed_statics) = self.signed.as_ref().filter(|_| dnssec_ok) else {
            return Some(plain);
        };
        match signed::signed(signed_statics, &self.signed_geo, query.lower(), unsigned) {
            Signed::Unsigned => Some(plain),
            Signed::Static(id) => Some((&signed_statics.templates, id)),
            Signed::Geo(id) => Some((&self.signed_geo.templates, id)),
            Signed::Slow => None,
        }
    }
}
