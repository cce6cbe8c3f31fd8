//! Sticky sessions: the cookie naming a client's server.
//!
//! Pure. The cookie's value is the server's token: 16 hex digits of the
//! server address hashed with the named [`REQUEST_HASH_KEY`], so every L7
//! replica (and every version) reads the same cookie the same way, and the
//! address itself is not revealed.

use std::fmt::Write as _;
use std::net::SocketAddr;

use topology::tiers::l7::{SameSite, Sticky};

use crate::l7::rules::balance::REQUEST_HASH_KEY;

/// The cookie value naming `addr`.
pub fn server_token(addr: SocketAddr) -> String {
    let mut text = String::with_capacity(48);
    let _ = write!(text, "{addr}");
    format!("{:016x}", REQUEST_HASH_KEY.hash(text.as_bytes()))
}

/// The value of cookie `name` among `Cookie` header values (each
/// `a=1; b=2`), the first one wins.
pub fn find_cookie<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Option<&'a [u8]> {
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let pair = trim(pair);
            if let Some(eq) = pair.iter().position(|&b| b == b'=')
                && trim(&pair[..eq]) == name.as_bytes()
            {
                let value = trim(&pair[eq + 1..]);
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                return Some(value);
            }
        }
    }
    None
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// The `Set-Cookie` value sticking a client to the server with `token`.
pub fn set_cookie(config: &Sticky, token: &str) -> String {
    let mut out = format!("{}={token}; Path={}", config.cookie, config.path);
    if let Some(max_age) = config.max_age {
        let _ = write!(out, "; Max-Age={}", max_age.as_secs());
    }
    if config.secure {
        out.push_str("; Secure");
    }
    if config.http_only {
        out.push_str("; HttpOnly");
    }
    out.push_str(match config.same_site {
        SameSite::Lax => "; SameSite=Lax",
        SameSite::Strict => "; SameSite=Strict",
        SameSite::None => "; SameSite=None",
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokens_are_stable_and_distinct() {
        let a = server_token("127.0.0.1:9000".parse().unwrap());
        let b = server_token("127.0.0.1:9001".parse().unwrap());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert_eq!(a, server_token("127.0.0.1:9000".parse().unwrap()));
    }

    #[test]
    fn cookies_are_found() {
        let headers: [&[u8]; 2] = [b"a=1; GTMSTICKY=abc ; c=3", b"GTMSTICKY=zzz"];
        assert_eq!(find_cookie(headers, "GTMSTICKY"), Some(&b"abc"[..]));
        assert_eq!(find_cookie([&b"x=\"q\""[..]], "x"), Some(&b"q"[..]));
        assert_eq!(
            find_cookie([&b"GTMSTICKYX=1; noequals"[..]], "GTMSTICKY"),
            None
        );
        assert_eq!(find_cookie([], "a"), None);
    }

    #[test]
    fn set_cookie_carries_the_attributes() {
        let mut config = Sticky {
            cookie: "S".into(),
            path: "/".into(),
            max_age: None,
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
        };
        assert_eq!(
            set_cookie(&config, "t"),
            "S=t; Path=/; HttpOnly; SameSite=Lax"
        );
        config.max_age = Some(Duration::from_secs(3600));
        config.secure = true;
        config.http_only = false;
        config.same_site = SameSite::None;
        assert_eq!(
            set_cookie(&config, "t"),
            "S=t; Path=/; Max-Age=3600; Secure; SameSite=None"
        );
    }
}
