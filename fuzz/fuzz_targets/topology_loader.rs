//! Any text is loaded or refused with problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = topology::parse(text, "fuzz.yaml") {
            let _ = error.to_string();
        }
    }
});
