//! The input of `http1_equivalence`, read by the target and written by
//! the seeder: one byte of flags (bit 0: the backend closes the
//! connection after each answer), the client stream's length (two bytes,
//! big-endian), the client's bytes, then the backend's answer to every
//! request.

/// A client byte stream and the backend's scripted answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Input<'a> {
    pub client: &'a [u8],
    pub answer: &'a [u8],
    pub close: bool,
}

impl<'a> Input<'a> {
    /// `None` when `data` is too short for its length field.
    pub fn decode(data: &'a [u8]) -> Option<Self> {
        let (&[flags, high, low], rest) = data.split_first_chunk::<3>()?;
        let length = usize::from(u16::from_be_bytes([high, low]));
        if rest.len() < length {
            return None;
        }
        let (client, answer) = rest.split_at(length);
        Some(Self {
            client,
            answer,
            close: flags & 1 == 1,
        })
    }

    /// The input's bytes; the client's stream is cut at 64 KiB.
    pub fn encode(&self) -> Vec<u8> {
        let client = &self.client[..self.client.len().min(usize::from(u16::MAX))];
        let length = u16::try_from(client.len()).unwrap_or(u16::MAX);
        let mut out = vec![u8::from(self.close)];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(client);
        out.extend_from_slice(self.answer);
        out
    }
}
