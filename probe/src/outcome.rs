//! The verdict of one probe attempt before its latency is attached: what
//! the TCP and HTTP adapters return and [`Checker`](crate::Checker) times.

/// Whether the target passed, and a short human detail.
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

impl Outcome {
    pub(crate) fn pass(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    pub(crate) fn fail(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}
