//! Chunked bodies (RFC 9112 §7.1) read as their bytes arrive, in any
//! split: the data out, sizes, extensions and trailers consumed. Pure; the
//! smuggling guard ([`super::framing`]) follows request bodies with it and
//! the fast path ([`super::fast`]) forwards response bodies with it.

use std::ops::Range;

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
    TrailerStart,
    TrailerLine,
    TrailerEndLf,
    Done,
}

/// Decodes a chunked body as its bytes arrive: chunk data out, framing,
/// extensions and trailers dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: Chunk,
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
            self.state = step(self.state, input[at])?;
            at += 1;
        }
        Ok(Piece {
            used: at,
            data: at..at,
        })
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
        (Chunk::TrailerStart, b'\n') => Chunk::Done,
        (Chunk::TrailerLine, b'\n') => Chunk::TrailerStart,
        (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
        (Chunk::TrailerEndLf, b'\n') => Chunk::Done,
        _ => return Err(BadChunk),
    })
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
}
