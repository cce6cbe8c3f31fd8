//! The UDP fast path's tables: they answer the common queries from
//! templates the slow path built, without allocating, and leave everything
//! else to the slow path ([`crate::dns::answer_bytes`]), whose bytes they
//! reproduce exactly.
//!
//! # Layout
//! - `query`: reads a query in the common shape (one question, class IN,
//!   a common type, EDNS 0 without DO and with at most a client subnet).
//! - `template`: canonical replies cut into copy-and-patch templates.
//! - `names`: the static tables — a template per name and type, and per
//!   zone the shared NXDOMAIN, NODATA, referral and REFUSED templates.
//! - `geo`: the geo decision tables (merged GeoIP ranges → region order
//!   → outcome under the health view) and the ECS scope.
//!
//! [`Tables`] is one immutable snapshot of all of it, built for one serving
//! state, GeoIP database and health view. The serving layer
//! ([`crate::serve`]) keeps the current one published, rebuilding in the
//! background when any of the three changes, and answers from it only
//! while it is current.

mod geo;
mod names;
mod query;
mod template;

use std::net::SocketAddr;
use std::sync::Arc;

use geo_data::GeoDb;
use topology::{RegionId, Topology};

pub use self::query::FAST_QTYPES;

use self::geo::{GeoMaps, GeoOutcomes, Reply};
use self::names::{Route, Statics};
use self::query::Query;
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
        Tables {
            state,
            health,
            db,
            statics,
            maps,
            outcomes,
        }
    }

    /// Whether these tables answer for exactly `state` (and its current
    /// database) and `health`.
    pub fn is_current(&self, state: &Arc<ServingState>, health: &Arc<RegionHealth>) -> bool {
        Arc::ptr_eq(&self.state, state)
            && Arc::ptr_eq(&self.health, health)
            && Arc::ptr_eq(&self.db, &state.geoip.load())
    }

    /// The topology these tables answer for.
    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    /// Number of names with static templates.
    pub fn names(&self) -> usize {
        self.statics.names()
    }

    /// Number of templates held (static, geo).
    pub fn templates(&self) -> (usize, usize) {
        (self.statics.templates.len(), self.outcomes.templates.len())
    }

    /// Bytes the templates (and the static names' entries beside them) hold.
    pub fn template_bytes(&self) -> usize {
        self.statics.templates.heap_bytes() + self.outcomes.templates.heap_bytes()
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
        let (store, id, scope, region, from_ecs) = match route {
            Route::Template(id) => (&self.statics.templates, id, 0, None, None),
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
                let (store, id): (&TemplateStore, TemplateId) = match outcome.reply {
                    Reply::Geo(id) => (&self.outcomes.templates, id),
                    Reply::Static(id) => (&self.statics.templates, id),
                    Reply::Slow => return Answer::Slow,
                };
                (store, id, scope, outcome.region, from_ecs)
            }
            Route::Slow => return Answer::Slow,
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
}
