//! Which failures are the user's to fix (exit 1: a bad file, an unknown
//! region, an address already taken, a missing binary) and which are
//! unexpected (exit 2: a daemon that crashed, an API that answered nonsense).
//!
//! Errors are `anyhow` chains; a user error carries a [`UserError`]
//! somewhere in its chain, so context added on top keeps the class.

use std::fmt;

/// Marks an error as the user's to fix (exit code 1).
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// A user error with this message.
pub fn user(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(message.into()))
}

/// An already-reported failure: the details went through the printer, and
/// only the exit code is left to give.
#[derive(Debug)]
pub struct Reported {
    /// Whether it was the user's to fix.
    pub user: bool,
    /// One line for the end of the output.
    pub summary: String,
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for Reported {}

/// The exit code for `error`: 1 when it is the user's to fix, else 2.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<UserError>() {
            return 1;
        }
        if let Some(reported) = cause.downcast_ref::<Reported>() {
            return if reported.user { 1 } else { 2 };
        }
        if cause.is::<topology::LoadError>() {
            return 1;
        }
    }
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn user_errors_keep_their_class_under_context() {
        let error = Err::<(), _>(user("unknown region \"mars\""))
            .context("gtm fail")
            .unwrap_err();
        assert_eq!(exit_code(&error), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("socket closed")), 2);
        let reported = anyhow::Error::new(Reported {
            user: false,
            summary: "drill failed".into(),
        });
        assert_eq!(exit_code(&reported), 2);
    }
}
