//! The JSON the daemons' admin APIs answer, written once: each daemon
//! serializes these types and `gtm` deserializes the same ones, so a field
//! renamed on one side fails to compile on the other instead of reading as
//! missing.
//!
//! Unknown fields are ignored when reading (a newer daemon may say more);
//! every field a type declares is part of the contract, and `Option`
//! fields are the only ones that may be absent or `null`.
//!
//! - [`gslb`]: the GSLB node (`/v1/status`, overrides, reload, explain).
//! - [`l7`]: an L7 node (`/v1/status`, its metric names).
//! - [`l4`]: an L4 node (`/v1/status`).

pub mod gslb;
pub mod l4;
pub mod l7;
