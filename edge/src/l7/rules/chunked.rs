//! Chunked bodies (RFC 9112 §7.1) read as their bytes arrive, in any
//! split: the data out, sizes, extensions and trailers consumed. Pure; the
//! smuggling guard ([`crate::l7::rules::framing`]) follows request bodies with it and
//! the fast path ([`crate::l7::path::fast`]) forwards response bodies with it.
//!
//! Trailers are dropped but held to hyper's rules, so that a body is
//! malformed on both HTTP paths alike, and at the same byte: lines end in
//! CRLF (a CR followed by anything else is malformed at once), at most
//! [`MAX_TRAILERS`] lines and [`MAX_TRAILER_BYTES`] bytes; once the section
//! ends, each line must have been `name: value` (a name of token
//! characters, a value of field-value bytes; a bare LF ends a field, and
//! one at the start of a field ends the section's checks, as `httparse`
//! reads them).

use std::ops::Range;

/// Most trailer fields of a body (hyper's default field count).
pub const MAX_TRAILERS: u16 = 100;

/// Most bytes of a body's trailer section, from its first field to its
/// end (hyper's limit).
pub const MAX_TRAILER_BYTES: u16 = 16 * 1024;

/// A chunked body that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct BadChunk;

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Chunk {
    #[default]
    Start,
    Size {
        value: u64,
        digits: u8,
    },
    /// After the size: whitespace or an extension, up to the LF.
    Extension {
        value: u64,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer field or of the final empty line.
    TrailerStart,
    /// In a trailer line.
    TrailerLine,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    TrailerEndLf,
    Done,
}

/// Decodes a chunked body as its bytes arrive: chunk data out, framing,
/// extensions and trailers dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: Chunk,
    /// Trailer fields so far.
    trailers: u16,
    /// Bytes of the trailer section so far.
    trailer_bytes: u16,
    /// How the trailer fields read so far parse.
    fields: Fields,
    /// Trailer fields ended so far as `httparse` reads them (a bare LF
    /// ends one too); more than there are lines is too many for hyper.
    fields_ended: u16,
}

/// The trailer fields as `httparse` reads them, byte by byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Fields {
    /// At the start of a field.
    #[default]
    Start,
    Name,
    /// After the colon.
    Value,
    /// An empty line ended them: what follows is not read.
    Ended,
    /// Malformed.
    Bad,
}

impl Fields {
    fn next(self, b: u8) -> Self {
        match (self, b) {
            (Self::Ended | Self::Bad, _) => self,
            (Self::Start, b'\n') => Self::Ended,
            (Self::Start | Self::Name, _) if is_token(b) => Self::Name,
            (Self::Name, b':') => Self::Value,
            (Self::Value, b'\r' | b'\n') => Self::Start,
            (Self::Value, _) if is_field_value(b) => Self::Value,
            _ => Self::Bad,
        }
    }
}

/// One step of [`Chunked::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Input bytes used.
    pub used: usize,
    /// The chunk data among them.
    pub data: Range<usize>,
}

impl Chunked {
    /// Whether the body ended.
    pub fn done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Reads `input` up to the end of the first piece of chunk data in it
    /// (or all of it, or up to the body's end).
    pub fn decode(&mut self, input: &[u8]) -> Result<Piece, BadChunk> {
        let mut at = 0;
        while at < input.len() {
            if let Chunk::Data(remaining) = self.state {
                let take = remaining.min((input.len() - at) as u64) as usize;
                self.state = if take as u64 == remaining {
                    Chunk::DataCr
                } else {
                    Chunk::Data(remaining - take as u64)
                };
                return Ok(Piece {
                    used: at + take,
                    data: at..at + take,
                });
            }
            if self.state == Chunk::Done {
                break;
            }
            self.state = self.step(input[at])?;
            at += 1;
        }
        Ok(Piece {
            used: at,
            data: at..at,
        })
    }

    /// The state after the byte `b` of the framing or the trailers.
    fn step(&mut self, b: u8) -> Result<Chunk, BadChunk> {
        let state = self.state;
        let field_byte = matches!(state, Chunk::TrailerLine | Chunk::TrailerLf)
            || (state == Chunk::TrailerStart && b != b'\r');
        let final_line = matches!(state, Chunk::TrailerStart | Chunk::TrailerEndLf);
        if field_byte || (self.trailers > 0 && final_line) {
            self.trailer_bytes += 1;
            if self.trailer_bytes >= MAX_TRAILER_BYTES {
                return Err(BadChunk);
            }
        }
        if field_byte && state != Chunk::TrailerLf {
            let next = self.fields.next(b);
            if (self.fields, next) == (Fields::Value, Fields::Start) {
                self.fields_ended += 1;
            }
            self.fields = next;
        }
        match (state, b) {
            (Chunk::TrailerLf, b'\n') => {
                if self.trailers >= MAX_TRAILERS {
                    return Err(BadChunk);
                }
                self.trailers += 1;
            }
            (Chunk::TrailerEndLf, b'\n')
                if self.fields == Fields::Bad || self.fields_ended > self.trailers =>
            {
                return Err(BadChunk);
            }
            _ => {}
        }
        step(state, b)
    }
}

fn step(state: Chunk, b: u8) -> Result<Chunk, BadChunk> {
    Ok(match (state, b) {
        (Chunk::Start, _) | (Chunk::Size { .. }, _) if b.is_ascii_hexdigit() => {
            let (value, digits) = match state {
                Chunk::Size { value, digits } => (value, digits),
                _ => (0, 0),
            };
            if digits >= 16 {
                return Err(BadChunk);
            }
            let digit = (b as char).to_digit(16).unwrap_or(0);
            Chunk::Size {
                value: (value << 4) | u64::from(digit),
                digits: digits + 1,
            }
        }
        (Chunk::Size { value, .. }, b'\r') | (Chunk::Extension { value }, b'\r') => {
            Chunk::SizeLf { value }
        }
        (Chunk::Size { value, .. }, b';' | b' ' | b'\t') => Chunk::Extension { value },
        (Chunk::Extension { value }, b'\n') | (Chunk::SizeLf { value }, b'\n') => {
            if value == 0 {
                Chunk::TrailerStart
            } else {
                Chunk::Data(value)
            }
        }
        (Chunk::Extension { value }, _) if b != b'\n' => Chunk::Extension { value },
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Start,
        (Chunk::TrailerStart, b'\r') => Chunk::TrailerEndLf,
        (Chunk::TrailerLine, b'\r') => Chunk::TrailerLf,
        (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
        (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
        (Chunk::TrailerEndLf, b'\n') => Chunk::Done,
        _ => return Err(BadChunk),
    })
}

/// A field name's character (RFC 9110 §5.6.2 `tchar`).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value's byte as hyper reads it: HTAB, visible ASCII, space and
/// obs-text.
fn is_field_value(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk(input: &[u8], split: usize) -> Result<(Vec<u8>, bool), BadChunk> {
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        for part in [&input[..split], &input[split..]] {
            let mut at = 0;
            while at < part.len() && !decoder.done() {
                let piece = decoder.decode(&part[at..])?;
                out.extend_from_slice(&part[at..][piece.data]);
                at += piece.used;
            }
        }
        Ok((out, decoder.done()))
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in 0..body.len() {
            assert_eq!(
                dechunk(body, split),
                Ok((b"hello world".to_vec(), true)),
                "split at {split}"
            );
        }
        assert_eq!(dechunk(b"5\r\nhel", 2), Ok((b"hel".to_vec(), false)));
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"12345678901234567\r\n",
        ] {
            assert_eq!(dechunk(bad, 0), Err(BadChunk), "{bad:?}");
        }
    }

    /// Trailers are held to hyper's rules: a body hyper refuses is
    /// malformed here too, at the same byte (field checks once the
    /// section ends; framing and limits at once).
    #[test]
    fn malformed_trailers_make_a_bad_body_as_in_hyper() {
        let field = |i: usize| format!("X-T{i}: v\r\n");
        let trailers = |n: usize| {
            let mut body = b"0\r\n".to_vec();
            (0..n).for_each(|i| body.extend_from_slice(field(i).as_bytes()));
            body.extend_from_slice(b"\r\n");
            body
        };
        let most = trailers(MAX_TRAILERS as usize);
        for split in [0, 3, most.len() / 2] {
            assert_eq!(dechunk(&most, split), Ok((Vec::new(), true)));
        }
        let long = format!("0\r\nX-Long: {}\r\n\r\n", "v".repeat(16 * 1024));
        for bad in [
            &b"0\r\nX-T\xa0r: 1\r\n\r\n"[..],
            b"0\r\nno colon\r\n\r\n",
            b"0\r\nX-T : 1\r\n\r\n",
            b"0\r\n: 1\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nX-T: a\x01b\r\n\r\n",
            b"0\r\nX-T: 1\rY\r\n\r\n",
            b"0\r\nA: 1\nB: 2\r\n\r\n",
            &trailers(MAX_TRAILERS as usize + 1),
            long.as_bytes(),
        ] {
            assert_eq!(
                dechunk(bad, 0),
                Err(BadChunk),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A malformed field is refused when the section ends, not before;
        // a bare LF is part of a line, whose end is a CRLF.
        for partial in [&b"0\r\nX-S\x00\x00"[..], b"0\r\nX-T: 1\n\r\n", b"0\r\n\n"] {
            assert_eq!(dechunk(partial, 0), Ok((Vec::new(), false)), "{partial:?}");
        }
        // After an empty line, httparse reads no further.
        let ended = b"0\r\n\n\x00\r\n\r\n";
        assert_eq!(dechunk(ended, 0), Ok((Vec::new(), true)));
    }
}
