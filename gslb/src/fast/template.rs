//! Templates: a canonical reply (the slow path's own bytes for a lowercase
//! question, see [`crate::dns::canonical_reply`]) cut into the part that
//! never changes and the few places that do — the header's ID and RD/CD
//! bits, the question as the client spelled it, the labels of answer names
//! the slow path spells like the question, and compression pointers when
//! the question's length differs — so a reply is a copy and a few patches.
//!
//! Every template lives in one [`TemplateStore`] arena, its header right
//! before its bytes: a zone of a million names holds a million templates,
//! a `Vec` each would cost more than the bytes they hold, and answering
//! from one should touch one stretch of memory, not three.

use super::query::{DO, Query};

/// Where a template starts in its [`TemplateStore`]'s arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TemplateId(u32);

impl TemplateId {
    /// The template's offset, to store elsewhere in the arena.
    pub fn offset(self) -> u32 {
        self.0
    }

    /// The template at `offset`, as [`TemplateId::offset`] gave it.
    pub fn at(offset: u32) -> TemplateId {
        TemplateId(offset)
    }
}

/// How a template's names follow the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// Only for the question it was built from (in any case): which labels
    /// follow the question's spelling is worked out once, at build time.
    Exact,
    /// For any question (NXDOMAIN, NODATA, referrals, REFUSED): pointers
    /// move with the question's length and each label is checked against
    /// the question at answer time.
    Shared,
}

/// Why a canonical reply cannot become a template (the fast path then
/// leaves those questions to the slow path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The reply was truncated, or the header is not a plain answer.
    Header,
    /// The message does not parse the way it was expected to.
    Malformed,
    /// A compression pointer refers to the question, so the body cannot
    /// move with it.
    PointsIntoQuestion,
    /// The arena has outgrown 32-bit offsets.
    Full,
}

/// A template's header in the arena, followed by the body, the pointer
/// offsets (2 bytes each) and the patches (3 bytes each).
#[derive(Clone, Copy, Debug)]
struct Meta {
    body_len: u16,
    pointers: u16,
    patches: u16,
    /// Offset of the body in the canonical message (just past its question).
    base: u16,
    /// [`Use::Shared`]?
    shared: bool,
    /// AA bit, in the first flags byte's position.
    aa: u8,
    rcode: u8,
    counts: [u16; 3],
}

/// Bytes of an encoded [`Meta`].
const META_LEN: usize = 18;

impl Meta {
    fn encode(&self) -> [u8; META_LEN] {
        let mut out = [0u8; META_LEN];
        for (slot, value) in [self.body_len, self.pointers, self.patches, self.base]
            .into_iter()
            .chain(self.counts)
            .enumerate()
        {
            out[2 * slot..2 * slot + 2].copy_from_slice(&value.to_le_bytes());
        }
        out[14] = u8::from(self.shared);
        out[15] = self.aa;
        out[16] = self.rcode;
        out
    }

    fn decode(bytes: &[u8]) -> Option<Meta> {
        let bytes = bytes.get(..META_LEN)?;
        let word = |slot: usize| u16::from_le_bytes([bytes[2 * slot], bytes[2 * slot + 1]]);
        Some(Meta {
            body_len: word(0),
            pointers: word(1),
            patches: word(2),
            base: word(3),
            counts: [word(4), word(5), word(6)],
            shared: bytes[14] != 0,
            aa: bytes[15],
            rcode: bytes[16],
        })
    }
}

/// Templates, stored back to back in one arena, each its header then its
/// bytes, so answering from one touches one stretch of memory. The arena
/// may hold other records between templates (the static table keeps each
/// name's entry right before that name's templates).
#[derive(Default)]
pub(crate) struct TemplateStore {
    bytes: Vec<u8>,
    count: usize,
}

/// An OPT record to append: the advertised payload size and the client
/// subnet echo, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opt<'q> {
    /// UDP payload size the reply advertises.
    pub max_payload: u16,
    /// The DO bit, copied from the query (RFC 3225 §3).
    pub dnssec_ok: bool,
    /// The query's ECS option data (FAMILY onwards), and the scope to put
    /// in the echo.
    pub ecs: Option<(&'q [u8], u8)>,
}

impl Opt<'_> {
    /// Its length on the wire: root owner, type, class, TTL and RDLENGTH,
    /// and the subnet echo.
    fn len(&self) -> usize {
        11 + self.ecs.map_or(0, |(data, _)| 4 + data.len())
    }
}

impl TemplateStore {
    /// Cuts a template from `canonical`, the reply to `qname` (lowercase),
    /// and appends it to the arena.
    pub fn add(
        &mut self,
        canonical: &[u8],
        qname: &[u8],
        use_: Use,
    ) -> Result<TemplateId, Unusable> {
        let parsed = parse(canonical, qname)?;
        let at = self.bytes.len();
        let id = TemplateId(u32::try_from(at).map_err(|_| Unusable::Full)?);
        let base = parsed.base;
        let body = &canonical[base..];
        self.bytes.extend_from_slice(&[0; META_LEN]);
        self.bytes.extend_from_slice(body);
        let mut pointers = 0u16;
        for &position in &parsed.pointers {
            let target = pointer_target(canonical, position);
            if target < base {
                self.bytes.truncate(at);
                return Err(Unusable::PointsIntoQuestion);
            }
            self.bytes
                .extend_from_slice(&((position - base) as u16).to_be_bytes());
            pointers += 1;
        }
        let mut patches = 0u16;
        for label in &parsed.labels {
            let patch = match use_ {
                Use::Exact => {
                    // Fixed now: does the name from this label on end the
                    // question? Then copy the question's spelling from there.
                    let Some(from) = qname.len().checked_sub(label.suffix_len) else {
                        continue;
                    };
                    if !starts_label(qname, from)
                        || !suffix_equals(canonical, label.position, &qname[from..])
                    {
                        continue;
                    }
                    from
                }
                Use::Shared => label.suffix_len,
            };
            self.bytes
                .extend_from_slice(&((label.position - base) as u16).to_be_bytes());
            self.bytes.push(patch as u8);
            patches += 1;
        }
        let meta = Meta {
            body_len: body.len() as u16,
            pointers,
            patches,
            base: base as u16,
            shared: use_ == Use::Shared,
            aa: canonical[2] & 0x04,
            rcode: canonical[3] & 0x0F,
            counts: parsed.counts,
        };
        self.bytes[at..at + META_LEN].copy_from_slice(&meta.encode());
        self.count += 1;
        Ok(id)
    }

    /// Appends `record` (not a template) to the arena; returns its offset.
    pub fn append(&mut self, record: &[u8]) -> Result<u32, Unusable> {
        let at = u32::try_from(self.bytes.len()).map_err(|_| Unusable::Full)?;
        self.bytes.extend_from_slice(record);
        Ok(at)
    }

    /// Overwrites bytes appended earlier, at offset `at`.
    pub fn overwrite(&mut self, at: usize, bytes: &[u8]) {
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// The arena: templates and whatever was appended between them.
    pub fn arena(&self) -> &[u8] {
        &self.bytes
    }

    /// Releases the arena's spare capacity once everything is added.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// The RCODE of template `id`'s replies.
    pub fn rcode(&self, id: TemplateId) -> u8 {
        self.meta(id).map_or(0, |meta| meta.rcode)
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bytes held, for logs.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    fn meta(&self, id: TemplateId) -> Option<Meta> {
        Meta::decode(self.bytes.get(id.0 as usize..)?)
    }

    /// Writes the reply to `query` from template `id` into `out`, with
    /// `opt` appended; `None` if it would exceed `limit` bytes (or `out`),
    /// in which case the slow path decides what to cut.
    pub fn write(
        &self,
        id: TemplateId,
        query: &Query<'_>,
        opt: Option<Opt<'_>>,
        limit: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        let meta = self.meta(id)?;
        let start = query.question_end;
        let body_len = usize::from(meta.body_len);
        let total = start + body_len + opt.as_ref().map_or(0, Opt::len);
        if total > limit || total > out.len() {
            return None;
        }
        let data = &self.bytes[id.0 as usize + META_LEN..];
        let (body, rest) = data.split_at(body_len);
        let (pointers, rest) = rest.split_at(2 * usize::from(meta.pointers));
        let patches = &rest[..3 * usize::from(meta.patches)];

        let id_bytes = query.id();
        out[0] = id_bytes[0];
        out[1] = id_bytes[1];
        out[2] = 0x80 | meta.aa | query.rd();
        out[3] = query.cd() | meta.rcode;
        let additional = meta.counts[2] + u16::from(opt.is_some());
        for (slot, count) in [1, meta.counts[0], meta.counts[1], additional]
            .into_iter()
            .enumerate()
        {
            out[4 + 2 * slot..6 + 2 * slot].copy_from_slice(&count.to_be_bytes());
        }
        out[12..start].copy_from_slice(&query.packet[12..start]);
        out[start..start + body_len].copy_from_slice(body);

        let base = usize::from(meta.base);
        if start != base {
            for pair in pointers.chunks_exact(2) {
                let at = start + usize::from(u16::from_be_bytes([pair[0], pair[1]]));
                let target = usize::from(u16::from_be_bytes([out[at], out[at + 1]]) & 0x3FFF);
                let moved = target - base + start;
                if moved >= 0x4000 {
                    return None;
                }
                out[at..at + 2].copy_from_slice(&(0xC000 | moved as u16).to_be_bytes());
            }
        }
        let qname = query.qname;
        for patch in patches.chunks_exact(3) {
            let position = usize::from(u16::from_be_bytes([patch[0], patch[1]]));
            let from = if meta.shared {
                let Some(from) = qname.len().checked_sub(usize::from(patch[2])) else {
                    continue;
                };
                if !query.label_starts_at(from)
                    || !body_suffix_equals(body, base, position, &query.lower()[from..])
                {
                    continue;
                }
                from
            } else {
                usize::from(patch[2])
            };
            let len = 1 + usize::from(qname[from]);
            out[start + position..start + position + len].copy_from_slice(&qname[from..from + len]);
        }
        if let Some(opt) = opt {
            write_opt(&opt, &mut out[start + body_len..total]);
        }
        Some(total)
    }
}

/// Writes the OPT record: root owner, type 41, the payload size as class,
/// extended RCODE 0, version 0, the DO flag if the query had it, and the
/// client subnet echo.
fn write_opt(opt: &Opt<'_>, out: &mut [u8]) {
    out[..3].copy_from_slice(&[0, 0, 41]);
    out[3..5].copy_from_slice(&opt.max_payload.to_be_bytes());
    let flags = if opt.dnssec_ok { DO } else { 0 };
    out[5..7].copy_from_slice(&[0, 0]);
    out[7..9].copy_from_slice(&flags.to_be_bytes());
    match opt.ecs {
        None => out[9..11].copy_from_slice(&[0, 0]),
        Some((data, scope)) => {
            out[9..11].copy_from_slice(&((4 + data.len()) as u16).to_be_bytes());
            out[11..13].copy_from_slice(&[0, 8]);
            out[13..15].copy_from_slice(&(data.len() as u16).to_be_bytes());
            out[15..15 + data.len()].copy_from_slice(data);
            // FAMILY (2), SOURCE PREFIX-LENGTH, then SCOPE PREFIX-LENGTH.
            out[15 + 3] = scope;
        }
    }
}

/// A literal label in a canonical reply.
struct Label {
    /// Offset of its length byte in the message.
    position: usize,
    /// Length of the whole name from this label on, root included, with
    /// pointers followed.
    suffix_len: usize,
}

struct Parsed {
    base: usize,
    counts: [u16; 3],
    pointers: Vec<usize>,
    labels: Vec<Label>,
}

/// Type codes whose RDATA holds names hickory writes (and may compress),
/// with the offset of each name's start relative to the previous one.
fn rdata_names(rtype: u16) -> &'static [usize] {
    match rtype {
        // NS, CNAME, PTR: one name.
        2 | 5 | 12 => &[0],
        // MX: after the preference.
        15 => &[2],
        // SRV: after priority, weight and port.
        33 => &[6],
        // SOA: MNAME then RNAME, then five numbers.
        6 => &[0, 0],
        _ => &[],
    }
}

fn parse(message: &[u8], qname: &[u8]) -> Result<Parsed, Unusable> {
    let header = message.get(..12).ok_or(Unusable::Malformed)?;
    // A response to QUERY, no TC, RD/RA/Z/AD/CD clear (the canonical query
    // sets none of them).
    if header[2] & 0xFB != 0x80 || header[3] & 0xF0 != 0 {
        return Err(Unusable::Header);
    }
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if count(4) != 1 {
        return Err(Unusable::Header);
    }
    let counts = [count(6), count(8), count(10)];
    let base = 12 + qname.len() + 4;
    if message.get(12..12 + qname.len()) != Some(qname) || message.len() < base {
        return Err(Unusable::Malformed);
    }
    let mut parsed = Parsed {
        base,
        counts,
        pointers: Vec::new(),
        labels: Vec::new(),
    };
    let mut at = base;
    let records = counts.iter().map(|c| usize::from(*c)).sum::<usize>();
    for _ in 0..records {
        at = walk_name(message, at, &mut parsed)?;
        let fixed = message.get(at..at + 10).ok_or(Unusable::Malformed)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        if rtype == 41 {
            return Err(Unusable::Malformed);
        }
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata = at + 10;
        let end = rdata + rdlen;
        let mut name_at = rdata;
        for &skip in rdata_names(rtype) {
            name_at = walk_name(message, name_at + skip, &mut parsed)?;
        }
        if name_at > end || end > message.len() {
            return Err(Unusable::Malformed);
        }
        at = end;
    }
    if at != message.len() {
        return Err(Unusable::Malformed);
    }
    Ok(parsed)
}

/// Records the literal labels and the pointer of the name at `at`; returns
/// the offset past it.
fn walk_name(message: &[u8], mut at: usize, parsed: &mut Parsed) -> Result<usize, Unusable> {
    loop {
        let len = *message.get(at).ok_or(Unusable::Malformed)?;
        match len {
            0 => return Ok(at + 1),
            1..=63 => {
                let suffix_len = expanded_len(message, at).ok_or(Unusable::Malformed)?;
                parsed.labels.push(Label {
                    position: at,
                    suffix_len,
                });
                at += 1 + usize::from(len);
            }
            0xC0..=0xFF => {
                message.get(at + 1).ok_or(Unusable::Malformed)?;
                parsed.pointers.push(at);
                return Ok(at + 2);
            }
            _ => return Err(Unusable::Malformed),
        }
    }
}

fn pointer_target(message: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([message[at], message[at + 1]]) & 0x3FFF)
}

/// Length of the name at `at` written out in full, following pointers
/// (backwards only, so it ends).
fn expanded_len(message: &[u8], mut at: usize) -> Option<usize> {
    let mut len = 0;
    loop {
        let byte = *message.get(at)?;
        match byte {
            0 => return Some(len + 1),
            1..=63 => {
                len += 1 + usize::from(byte);
                at += 1 + usize::from(byte);
            }
            0xC0..=0xFF => {
                let target = pointer_target(message, at);
                if target >= at {
                    return None;
                }
                at = target;
            }
            _ => return None,
        }
        if len > 255 {
            return None;
        }
    }
}

/// Whether the name at `at` in `message`, written out, equals `suffix`.
fn suffix_equals(message: &[u8], at: usize, suffix: &[u8]) -> bool {
    names_equal(|offset| message.get(offset).copied(), Some, at, suffix)
}

/// Whether the name at body offset `at`, written out (pointers hold
/// message offsets, the body starting at `base`), equals `suffix`.
fn body_suffix_equals(body: &[u8], base: usize, at: usize, suffix: &[u8]) -> bool {
    names_equal(
        |offset| body.get(offset).copied(),
        |target| target.checked_sub(base),
        at,
        suffix,
    )
}

fn names_equal(
    byte: impl Fn(usize) -> Option<u8>,
    follow: impl Fn(usize) -> Option<usize>,
    mut at: usize,
    suffix: &[u8],
) -> bool {
    let mut matched = 0;
    loop {
        let Some(len) = byte(at) else { return false };
        match len {
            0 => return matched + 1 == suffix.len() && suffix[matched] == 0,
            1..=63 => {
                let end = matched + 1 + usize::from(len);
                if end > suffix.len() {
                    return false;
                }
                for (i, expected) in suffix[matched..end].iter().enumerate() {
                    if byte(at + i) != Some(*expected) {
                        return false;
                    }
                }
                matched = end;
                at += 1 + usize::from(len);
            }
            0xC0..=0xFF => {
                let Some(low) = byte(at + 1) else {
                    return false;
                };
                let target = usize::from(u16::from_be_bytes([len, low]) & 0x3FFF);
                match follow(target) {
                    Some(next) if next < at => at = next,
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
}

/// Whether a label of wire name `name` starts at `offset`.
fn starts_label(name: &[u8], offset: usize) -> bool {
    let mut at = 0;
    while at < offset {
        match name.get(at) {
            Some(0) | None => return false,
            Some(&len) => at += 1 + usize::from(len),
        }
    }
    at == offset
}
