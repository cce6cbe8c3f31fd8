//! The PROXY protocol decoder never panics, never claims more bytes than it
//! was given, and what it decodes it can encode again.
#![no_main]

use edge::proxy_protocol::{Decoded, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Decoded::Complete(header, consumed)) = decode(data) {
        assert!(consumed <= data.len());
        let _ = header.encode();
    }
});
