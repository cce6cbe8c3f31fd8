//! What every connection and request of a node shares at run time, below
//! the request path and importing none of it: the [`context`] (listeners'
//! gates, clock, drain, certificates, metrics) and the immutable
//! [`state`] snapshot requests are served from, with its [`pool`]s of
//! servers (live state, the choice of one, settling an attempt), the
//! [`idle`] backend connections, [`connect`]ing and [`backend_tls`] to
//! servers, the [`tls`] certificates and ticket keys, the [`drain`]'s phase
//! machine, the [`clock`], the [`metrics`], and the node's [`config`].

pub mod backend_tls;
pub mod clock;
pub mod config;
pub mod connect;
pub mod context;
pub mod drain;
pub mod idle;
pub mod metrics;
pub mod pool;
pub mod state;
pub mod tls;
