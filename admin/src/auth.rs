//! The bearer token that guards mutating routes, and its constant-time
//! check.
//!
//! A client proves it may mutate by sending `Authorization: Bearer TOKEN`
//! (RFC 6750). The comparison takes the same time wherever the presented
//! token first differs from the configured one, so response timing does not
//! leak the token byte by byte; a presented token of the wrong *length* is
//! rejected without comparing, which reveals only the length. Tokens are at
//! least [`MIN_TOKEN_LEN`] bytes, so guessing stays out of reach.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::AdminError;

/// The environment variable every daemon reads its admin token from.
pub const TOKEN_ENV: &str = "GTM_ADMIN_TOKEN";

/// Shortest accepted token, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// A bearer token. Its `Debug` form never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<[u8]>);

impl Token {
    /// Accepts `secret` if it is at least [`MIN_TOKEN_LEN`] bytes of
    /// visible ASCII (RFC 6750's `b64token` characters and more, but no
    /// spaces or control characters, which could not travel in a header).
    /// `source_name` names where it came from, for the error.
    pub fn new(secret: &str, source_name: &str) -> Result<Self, AdminError> {
        let bad = |reason: String| AdminError::BadToken {
            source_name: source_name.to_owned(),
            reason,
        };
        if secret.len() < MIN_TOKEN_LEN {
            return Err(bad(format!(
                "it is {} bytes long; use at least {MIN_TOKEN_LEN} random characters, \
                 e.g. the output of `openssl rand -hex 32`",
                secret.len()
            )));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "it contains spaces, control or non-ASCII characters; use letters, digits \
                 and -._~+/ only, e.g. the output of `openssl rand -hex 32`"
                    .to_owned(),
            ));
        }
        Ok(Self(secret.as_bytes().into()))
    }

    /// The token in [`TOKEN_ENV`], if that variable is set and not empty.
    pub fn from_env() -> Result<Option<Self>, AdminError> {
        match std::env::var(TOKEN_ENV) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Self::new(&value, TOKEN_ENV).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(AdminError::BadToken {
                source_name: TOKEN_ENV.to_owned(),
                reason: "it is not valid UTF-8".to_owned(),
            }),
        }
    }

    /// True when `authorization` (the header's raw value) is
    /// `Bearer <this token>`. The scheme is matched case-insensitively, as
    /// RFC 7235 requires; the token in constant time.
    pub fn verify(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, presented)) = split_scheme(value) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") || presented.len() != self.0.len() {
            return false;
        }
        bool::from(presented.ct_eq(&self.0))
    }
}

/// `"Bearer  abc "` → `("Bearer", "abc")`.
fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let rest = rest.trim_ascii();
    Some((scheme, rest))
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn verifies_bearer_tokens_only() {
        let token = Token::new(SECRET, "test").unwrap();
        assert!(token.verify(Some(format!("Bearer {SECRET}").as_bytes())));
        assert!(token.verify(Some(format!("bearer  {SECRET} ").as_bytes())));
        assert!(!token.verify(None));
        assert!(!token.verify(Some(SECRET.as_bytes())));
        assert!(!token.verify(Some(format!("Basic {SECRET}").as_bytes())));
        assert!(!token.verify(Some(b"Bearer 0123456789abcdef-secreT")));
        assert!(!token.verify(Some(b"Bearer 0123456789abcdef-secre")));
        assert!(!token.verify(Some(b"Bearer ")));
    }

    #[test]
    fn refuses_weak_or_unsendable_tokens() {
        let short = Token::new("short", "GTM_ADMIN_TOKEN")
            .unwrap_err()
            .to_string();
        assert!(
            short.contains("GTM_ADMIN_TOKEN") && short.contains("at least 16"),
            "{short}"
        );
        let spaced = Token::new("has a space in it, too long", "x")
            .unwrap_err()
            .to_string();
        assert!(spaced.contains("spaces"), "{spaced}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Token::new(SECRET, "test").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }
}
