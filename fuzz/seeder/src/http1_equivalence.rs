//! Inputs for `http1_equivalence`: each case of the fast path's
//! differential test (edge/tests/it/l7/http1_cases.rs, read here as
//! written there), with the backend's scripted answer to its first
//! request, once kept alive and once closing after each answer.

use crate::Seed;
use crate::http1_cases::{corpus, script};
use crate::http1_input::Input;

/// The seeds of `http1_equivalence`.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (name, client) in corpus() {
        // "METHOD PATH HTTP/1.1": the script answers by path.
        let mut line = client.split(|&b| b == b' ');
        let method = line.next().unwrap_or_default();
        let path = String::from_utf8_lossy(line.next().unwrap_or_default());
        let (answer, _) = script(&path, method == b"HEAD", b"");
        let slug = name.replace([' ', ',', ':', '/', '.'], "-");
        for close in [false, true] {
            let input = Input {
                client: &client,
                answer: &answer,
                close,
            };
            let bytes = input.encode();
            if client.len() <= usize::from(u16::MAX) {
                assert_eq!(Input::decode(&bytes), Some(input), "{name}");
            }
            let suffix = if close { "-closing" } else { "" };
            out.push((format!("{slug}{suffix}"), bytes));
        }
    }
    out
}
