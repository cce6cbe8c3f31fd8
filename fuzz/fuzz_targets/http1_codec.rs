//! The L7 fast path's HTTP/1.1 codec never panics on any bytes, and what
//! it reads stays inside them: request heads (the hand-off rule included),
//! response heads and their framing, chunked bodies read in any split.
//!
//! The first byte picks the parser: 0 requests, 1 responses, 2 responses
//! to HEAD, anything else chunked bodies (split at the second byte).
#![no_main]

use edge::l7::path::fast::codec::{
    Chunked, Parsed, RequestHead, ResponseHead, parse_request, parse_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which {
        0 => request(data),
        1 | 2 => response(data, which == 2),
        _ => chunked(data),
    }
});

fn request(data: &[u8]) {
    let mut head = RequestHead::default();
    if parse_request(data, 100, &mut head) != Parsed::Fast {
        return;
    }
    assert!(head.len <= data.len());
    assert!(head.line.end <= head.len && head.method.end <= head.target.start);
    // The fields are the head's lines, in order, back to back.
    let mut at = head.line.end;
    for field in &head.fields {
        assert_eq!(field.line.start, at);
        assert!(field.name.end <= field.value.start && field.value.end <= field.line.end);
        at = field.line.end;
    }
    assert_eq!(at + 2, head.len);
    assert!(head.fields[head.host].is(data, "host"));
}

fn response(data: &[u8], head_request: bool) {
    let mut head = ResponseHead::default();
    if let Ok(true) = parse_response(data, head_request, &mut head) {
        assert!(head.len <= data.len());
        assert!(head.rest_of_line.end <= head.len);
        for field in &head.fields {
            assert!(field.line.end <= head.len);
            assert!(field.value.end <= field.line.end);
        }
        assert!(head.framing.is_some());
    }
}

/// The data of a chunked body read from `input` in pieces at `splits`.
fn dechunk(input: &[u8], splits: &[usize]) -> Option<(Vec<u8>, bool)> {
    let mut decoder = Chunked::default();
    let mut out = Vec::new();
    let mut from = 0;
    for &to in splits.iter().chain([&input.len()]) {
        let part = &input[from..to];
        let mut at = 0;
        while at < part.len() && !decoder.done() {
            let piece = decoder.decode(&part[at..]).ok()?;
            assert!(piece.used > 0 && piece.used <= part.len() - at);
            assert!(piece.data.end <= piece.used);
            out.extend_from_slice(&part[at..][piece.data]);
            at += piece.used;
        }
        from = to;
    }
    Some((out, decoder.done()))
}

fn chunked(data: &[u8]) {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let whole = dechunk(body, &[]);
    let split = usize::from(split).min(body.len());
    let halves = dechunk(body, &[split]);
    // How the input arrives changes nothing.
    assert_eq!(whole.is_some(), halves.is_some());
    if let (Some(whole), Some(halves)) = (&whole, &halves) {
        assert_eq!(whole, halves);
    }
}
