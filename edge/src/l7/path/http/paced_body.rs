//! Bodies cut off when they pause too long between two pieces, in both
//! directions: the client's request body (`timeouts.request_body`, nginx's
//! `client_body_timeout`) and the backend's response body
//! (`timeouts.response`, nginx's `proxy_read_timeout`). Neither a client
//! trickling its body nor a backend that stalls mid-response can hold a
//! connection for as long as it likes. A request body is also cut off when
//! it passes its route's `max_body` ([`Capped`], nginx's
//! `client_max_body_size` for bodies that declare no length).
//!
//! One body type, [`PacedBody`], and two ways of reporting its errors, by
//! whose fault they are: [`ClientBodyError`] (the proxy answers it itself
//! and never counts it against the backend server) and
//! [`BackendBodyError`] (the response is aborted and the server charged
//! with a failure).

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a [`PacedBody`]'s errors become: they say whose fault they are.
pub trait PaceError<E>: Sized {
    /// No piece of the body for `pause`.
    fn too_slow(pause: Duration) -> Self;
    /// The inner body failed.
    fn failed(error: E) -> Self;
}

/// Why the client's request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// No piece of the body within the timeout.
    #[error("the client sent no request body for {0:?}")]
    TooSlow(Duration),
    /// The client's connection failed mid-body.
    #[error("reading the client's request body: {0}")]
    Read(#[source] BoxError),
}

impl<E: Into<BoxError>> PaceError<E> for ClientBodyError {
    fn too_slow(pause: Duration) -> Self {
        Self::TooSlow(pause)
    }

    fn failed(error: E) -> Self {
        Self::Read(error.into())
    }
}

/// How a body stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It paused longer than its timeout.
    TooSlow,
    /// Its source failed.
    Failed,
    /// It passed its size limit.
    TooLarge,
}

/// Where a [`PacedBody`] records how it stopped early, or when it ended,
/// for whoever sent it on: the request path asks it whose fault a failed
/// upstream exchange was (over HTTP/1 the body's error comes back inside
/// the exchange's error, but an HTTP/2 connection only resets the
/// stream), and from when the backend's time to answer runs.
#[derive(Clone, Debug, Default)]
pub struct BodyWitness(Arc<Witnessed>);

#[derive(Debug, Default)]
struct Witnessed {
    stopped: AtomicU8,
    ended: OnceLock<Instant>,
}

impl BodyWitness {
    /// Records the first way the body stopped: a body cut off for its size
    /// then fails in the layers around it too, which is not news.
    fn record(&self, stopped: Stopped) {
        let code = match stopped {
            Stopped::TooSlow => 1,
            Stopped::Failed => 2,
            Stopped::TooLarge => 3,
        };
        let _ = self
            .0
            .stopped
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How the body stopped, if it did.
    pub fn stopped(&self) -> Option<Stopped> {
        match self.0.stopped.load(Ordering::Relaxed) {
            1 => Some(Stopped::TooSlow),
            2 => Some(Stopped::Failed),
            3 => Some(Stopped::TooLarge),
            _ => None,
        }
    }

    /// When the body ended (its last byte was taken), if it did.
    pub fn ended(&self) -> Option<Instant> {
        self.0.ended.get().copied()
    }

    /// Whether the body is still coming: neither ended nor stopped.
    pub fn streaming(&self) -> bool {
        self.ended().is_none() && self.stopped().is_none()
    }
}

/// Why a backend's response body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum BackendBodyError {
    /// No piece of the body within the timeout: the backend stalled.
    #[error("the backend sent no response body for {0:?}")]
    TooSlow(Duration),
    /// The backend's connection failed mid-body.
    #[error("reading the backend's response body: {0}")]
    Read(#[source] BoxError),
}

impl<E: Into<BoxError>> PaceError<E> for BackendBodyError {
    fn too_slow(pause: Duration) -> Self {
        Self::TooSlow(pause)
    }

    fn failed(error: E) -> Self {
        Self::Read(error.into())
    }
}

/// Why a [`Capped`] body stopped.
#[derive(Debug, thiserror::Error)]
pub enum CappedError<E> {
    /// More bytes than the limit.
    #[error("the request body passed its limit of {0} bytes")]
    TooLarge(u64),
    /// The inner body failed.
    #[error(transparent)]
    Inner(E),
}

/// A request body cut off with an error (recorded in its witness) as soon
/// as it passes `limit` bytes.
pub struct Capped<B> {
    inner: B,
    limit: u64,
    seen: u64,
    witness: BodyWitness,
}

impl<B> Capped<B> {
    /// `inner`, limited to `limit` bytes when there is a limit.
    pub fn new(inner: B, limit: Option<u64>, witness: BodyWitness) -> Self {
        Self {
            inner,
            limit: limit.unwrap_or(u64::MAX),
            seen: 0,
            witness,
        }
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = CappedError<B::Error>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.seen = this.seen.saturating_add(data.len() as u64);
            if this.seen > this.limit {
                this.witness.record(Stopped::TooLarge);
                return Poll::Ready(Some(Err(CappedError::TooLarge(this.limit))));
            }
        }
        Poll::Ready(frame.map(|f| f.map_err(CappedError::Inner)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body with a deadline between pieces; its errors are reported as `E`.
pub struct PacedBody<B, E> {
    inner: B,
    pause: Duration,
    /// Armed when the body first makes the proxy wait, reset by each piece.
    deadline: Option<Pin<Box<Sleep>>>,
    witness: Option<BodyWitness>,
    report: PhantomData<fn() -> E>,
}

impl<B, E> PacedBody<B, E> {
    /// `inner`, cut off after `pause` without a piece.
    pub fn new(inner: B, pause: Duration) -> Self {
        Self {
            inner,
            pause,
            deadline: None,
            witness: None,
            report: PhantomData,
        }
    }

    /// Also records how the body stopped early in `witness`.
    pub fn witnessed_by(mut self, witness: BodyWitness) -> Self {
        self.witness = Some(witness);
        self
    }

    fn stopped(&self, how: Stopped) {
        if let Some(witness) = &self.witness {
            witness.record(how);
        }
    }

    fn ended(&self) {
        if let Some(witness) = &self.witness {
            let _ = witness.0.ended.set(Instant::now());
        }
    }
}

impl<B, E> Body for PacedBody<B, E>
where
    B: Body<Data = Bytes> + Unpin,
    E: PaceError<B::Error>,
{
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(deadline) = &mut this.deadline {
                    deadline.as_mut().reset(Instant::now() + this.pause);
                }
                if matches!(frame, Some(Err(_))) {
                    this.stopped(Stopped::Failed);
                } else if frame.is_none() || this.inner.is_end_stream() {
                    this.ended();
                }
                Poll::Ready(frame.map(|f| f.map_err(E::failed)))
            }
            Poll::Pending => {
                let pause = this.pause;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
                ready!(deadline.as_mut().poll(cx));
                this.stopped(Stopped::TooSlow);
                Poll::Ready(Some(Err(E::too_slow(pause))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    /// A body whose pieces the test sends.
    struct Pieces(mpsc::Receiver<Bytes>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|piece| piece.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_timeout_ends_the_body_with_an_error() {
        let (tx, rx) = mpsc::channel(4);
        let mut body = PacedBody::<_, ClientBodyError>::new(Pieces(rx), Duration::from_secs(5));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // Pauses shorter than the timeout, each followed by a piece, are fine.
        for _ in 0..3 {
            let sender = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(4)).await;
                sender.send(Bytes::from_static(b"b")).await.unwrap();
            });
            assert!(body.frame().await.unwrap().is_ok());
        }
        let started = Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(matches!(error, ClientBodyError::TooSlow(_)), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_backend_body_is_the_backends_fault() {
        let (tx, rx) = mpsc::channel(4);
        let mut body =
            PacedBody::<_, BackendBodyError>::new(Pieces(rx), Duration::from_millis(300));
        tx.send(Bytes::from_static(b"hello")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(matches!(error, BackendBodyError::TooSlow(_)), "{error}");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn the_witness_learns_how_the_body_stopped() {
        let (tx, rx) = mpsc::channel(4);
        let witness = BodyWitness::default();
        let mut body = PacedBody::<_, ClientBodyError>::new(Pieces(rx), Duration::from_secs(1))
            .witnessed_by(witness.clone());
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(witness.stopped(), None);
        assert!(body.frame().await.unwrap().is_err());
        assert_eq!(witness.stopped(), Some(Stopped::TooSlow));
        assert!(!witness.streaming());
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_past_its_limit_stops_and_says_so() {
        let (tx, rx) = mpsc::channel(4);
        let witness = BodyWitness::default();
        let capped = Capped::new(Pieces(rx), Some(5), witness.clone());
        let mut body = PacedBody::<_, ClientBodyError>::new(capped, Duration::from_secs(1))
            .witnessed_by(witness.clone());
        tx.send(Bytes::from_static(b"abc")).await.unwrap();
        tx.send(Bytes::from_static(b"de")).await.unwrap();
        tx.send(Bytes::from_static(b"f")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(witness.stopped(), None);
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("limit of 5 bytes"), "{error}");
        // The first reason stays, not the failure it caused around it.
        assert_eq!(witness.stopped(), Some(Stopped::TooLarge));
    }

    #[tokio::test(start_paused = true)]
    async fn the_witness_learns_when_the_body_ended() {
        let (tx, rx) = mpsc::channel(4);
        let witness = BodyWitness::default();
        let mut body = PacedBody::<_, ClientBodyError>::new(Pieces(rx), Duration::from_secs(1))
            .witnessed_by(witness.clone());
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        assert!(witness.streaming());
        drop(tx);
        assert!(body.frame().await.is_none());
        assert_eq!(witness.ended(), Some(Instant::now()));
        assert!(!witness.streaming());
    }
}
