//! The DNS adapter, bytes in and bytes out: decodes a message, answers it,
//! fits the reply to the client's size limit and encodes it. The only
//! module that names hickory types.
//!
//! The serving layer ([`crate::serve`]) hands it the datagrams the fast
//! path's tables do not answer ([`answer_bytes`]) and every TCP message
//! ([`answer_tcp_bytes`]); the fast path's templates are cut from
//! [`canonical_reply`], so hickory stays the authority on every byte sent
//! while its server loop is not used. An upgrade of hickory touches this
//! module and nothing else.

mod export;
mod handler;
mod raw;
pub(crate) mod records;
mod reply;
mod signed;
mod template;

pub use export::signed_zone_file;
pub(crate) use handler::CLASSIC_UDP_PAYLOAD;
pub use handler::MAX_UDP_PAYLOAD;
pub use raw::{answer_bytes, answer_tcp_bytes};
pub use template::{Canonical, canonical_reply, canonical_signed_reply};
