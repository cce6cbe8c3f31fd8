//! The client stream as the HTTP layers read it: reads reported to the
//! connection's held drain, HTTP/1 bytes through the smuggling guard, and
//! bytes already read replayed first when the fast path hands the
//! connection to hyper or when the protocol was told by the first bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::l7::rules::framing::{FramingGuard, Verdict};
use crate::l7::shared::drain::ReadSignal;

/// A client stream whose incoming bytes are watched on their way to the
/// HTTP layer: every read is reported to the connection's held drain
/// ([`crate::l7::shared::drain::Drain::hold`]), and on HTTP/1 every byte also passes
/// through a [`FramingGuard`] that raises the connection's
/// framing-conflict flag. Bytes handed back ([`Tapped::replay`]) are read
/// again first, unwatched: they were watched the first time.
pub struct Tapped<IO> {
    inner: IO,
    reads: Arc<ReadSignal>,
    framing: Option<Framing>,
    replay: Vec<u8>,
    replayed: usize,
}

/// Room made for each read of [`Tapped::peek`].
const PEEK_SIZE: usize = 16 * 1024;

/// The request-smuggling guard of an HTTP/1 connection and its flag.
struct Framing {
    guard: FramingGuard,
    conflict: Arc<AtomicBool>,
}

impl<IO> Tapped<IO> {
    /// `inner`, its reads reported to `reads`.
    pub fn new(inner: IO, reads: Arc<ReadSignal>) -> Self {
        Self {
            inner,
            reads,
            framing: None,
            replay: Vec::new(),
            replayed: 0,
        }
    }

    /// The stream, with `bytes` (read from it already) to be read again
    /// first: how the fast path hands a connection to hyper.
    pub fn replay(mut self, bytes: Vec<u8>) -> Self {
        self.replay = bytes;
        self.replayed = 0;
        self
    }

    /// Also feeds the bytes to a [`FramingGuard`]; `conflict` is set on a
    /// framing conflict.
    pub fn with_framing_guard(mut self, conflict: Arc<AtomicBool>, max_head: usize) -> Self {
        self.framing = Some(Framing {
            guard: FramingGuard::new(max_head),
            conflict,
        });
        self
    }
}

impl<IO: AsyncRead + Unpin> Tapped<IO> {
    /// Reads until `enough` holds for the bytes not yet read by the HTTP
    /// layer, or the stream ends; those bytes, which stay to be read
    /// again, all in one read. Bytes are watched as they come from the
    /// stream, once.
    pub async fn peek(&mut self, enough: impl Fn(&[u8]) -> bool) -> io::Result<&[u8]> {
        self.replay.drain(..self.replayed);
        self.replayed = 0;
        while !enough(&self.replay) {
            let before = self.replay.len();
            self.replay.reserve(PEEK_SIZE);
            if self.inner.read_buf(&mut self.replay).await? == 0 {
                break;
            }
            watch(&self.reads, &mut self.framing, &self.replay[before..]);
        }
        Ok(&self.replay)
    }
}

/// Reports bytes fresh from the stream to the drain and the guard.
fn watch(reads: &ReadSignal, framing: &mut Option<Framing>, fresh: &[u8]) {
    if !fresh.is_empty() {
        reads.bytes_read();
    }
    if let Some(framing) = framing
        && !framing.guard.is_off()
        && framing.guard.feed(fresh) == Verdict::Conflict
    {
        framing.conflict.store(true, Ordering::Relaxed);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tapped<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.replayed);
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        watch(&this.reads, &mut this.framing, &buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tapped<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
