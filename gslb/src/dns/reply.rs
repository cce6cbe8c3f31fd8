//! A reply before encoding: its header, OPT record and sections, as the
//! lookup ([`super::handler`]) fills them and signing ([`super::signed`])
//! completes them, and the form hickory's encoder takes.

use hickory_proto::op::{Edns, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};

/// A reply before encoding.
pub(crate) struct Reply {
    pub(crate) metadata: Metadata,
    pub(crate) edns: Option<Edns>,
    pub(crate) answer: Vec<Record>,
    pub(crate) authority: Vec<Record>,
    pub(crate) additional: Vec<Record>,
    /// A referral must carry its glue; if it cannot, it is truncated.
    pub(crate) needs_additional: bool,
}

impl Reply {
    /// An empty reply to `request`, advertising `max_udp` when it has EDNS.
    pub(super) fn new(request: &Request, max_udp: u16) -> Reply {
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(max_udp);
            ours.set_version(0);
            // RFC 3225 §3: the DO bit is copied from the query.
            ours.set_dnssec_ok(theirs.flags().dnssec_ok);
            ours
        });
        Reply {
            metadata: Metadata::response_from_request(&request.metadata),
            edns,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            needs_additional: false,
        }
    }

    /// An empty reply to `request` with response code `code`.
    pub(super) fn error(request: &Request, code: ResponseCode, max_udp: u16) -> Reply {
        let mut reply = Reply::new(request, max_udp);
        reply.metadata.response_code = code;
        reply
    }

    /// The reply as hickory's encoder takes it.
    pub(crate) fn message<'a>(
        &'a self,
        request: &'a Request,
    ) -> MessageResponse<
        'a,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    > {
        MessageResponseBuilder::new(&request.queries, self.edns.as_ref()).build(
            self.metadata,
            self.answer.iter(),
            self.authority.iter(),
            std::iter::empty(),
            self.additional.iter(),
        )
    }
}
