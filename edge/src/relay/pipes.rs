//! The pipes the splice relay moves bytes through, and a per-thread pool
//! of them, so that a short connection does not pay `pipe2` twice and
//! `close` four times (a third of the system calls an HTTP request over
//! a new connection cost the L4 relay before the pool).
//!
//! A pipe goes back to its thread's pool only when it is known to be
//! empty: every byte spliced into it was spliced out again, and no splice
//! through it failed. A pipe dropped with bytes in it (the relay was
//! cancelled, or the receiving socket failed mid-transfer) or after an
//! error is closed instead, so no connection can ever read another's
//! bytes. Each thread keeps at most [`POOL_CAPACITY`] idle pipes; the rest
//! are closed.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// Idle pipes kept per thread: two per connection in flight, so a thread
/// with 32 short connections at once creates none in steady state. Each
/// idle pipe holds two file descriptors and about a page of kernel memory.
pub(crate) const POOL_CAPACITY: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A non-blocking pipe used as the in-kernel buffer of one direction, with
/// what it holds.
#[derive(Debug)]
pub(super) struct Pipe {
    pub(super) read: OwnedFd,
    pub(super) write: OwnedFd,
    /// Bytes spliced in and not yet out.
    held: AtomicUsize,
    /// A splice through it failed: its state is unknown.
    failed: AtomicBool,
}

impl Pipe {
    /// A new non-blocking, close-on-exec pipe.
    fn new() -> io::Result<Self> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Self {
            read,
            write,
            held: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        })
    }

    /// Records `n` bytes spliced in.
    pub(super) fn filled(&self, n: usize) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    /// Records `n` bytes spliced out.
    pub(super) fn drained(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }

    /// Records a failed splice: the pipe will not be reused.
    pub(super) fn failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    fn reusable(&self) -> bool {
        self.held.load(Ordering::Relaxed) == 0 && !self.failed.load(Ordering::Relaxed)
    }
}

/// A pipe lent by this thread's pool (or new); given back on drop if it is
/// empty and unbroken, else closed.
#[derive(Debug)]
pub(super) struct PooledPipe(Option<Pipe>);

impl PooledPipe {
    /// A pipe from this thread's pool, or a new one if the pool is empty.
    /// Fails only when a new pipe cannot be created (file descriptors
    /// exhausted).
    pub(super) fn take() -> io::Result<Self> {
        let pooled = POOL.with(|pool| pool.borrow_mut().pop());
        match pooled {
            Some(pipe) => Ok(Self(Some(pipe))),
            None => Pipe::new().map(|pipe| Self(Some(pipe))),
        }
    }
}

impl std::ops::Deref for PooledPipe {
    type Target = Pipe;

    fn deref(&self) -> &Pipe {
        // Only `drop` takes it out.
        self.0
            .as_ref()
            .expect("a pooled pipe is present until dropped")
    }
}

impl Drop for PooledPipe {
    fn drop(&mut self) {
        let Some(pipe) = self.0.take() else { return };
        if !pipe.reusable() {
            return;
        }
        // A thread being torn down has no pool left: the pipe just closes.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_CAPACITY {
                pool.push(pipe);
            }
        });
    }
}

/// Idle pipes in this thread's pool.
#[cfg(test)]
pub(super) fn idle() -> usize {
    POOL.with(|pool| pool.borrow().len())
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, RawFd};

    use super::*;

    fn fds(pipe: &PooledPipe) -> (RawFd, RawFd) {
        (pipe.read.as_raw_fd(), pipe.write.as_raw_fd())
    }

    #[test]
    fn an_empty_pipe_is_reused() {
        let first = PooledPipe::take().unwrap();
        let ids = fds(&first);
        pipe_round_trip(&first, b"hello");
        drop(first);
        assert_eq!(idle(), 1);
        let again = PooledPipe::take().unwrap();
        assert_eq!(fds(&again), ids, "the same pipe comes back");
        assert_eq!(idle(), 0);
    }

    #[test]
    fn the_pool_is_bounded() {
        let many: Vec<_> = (0..POOL_CAPACITY + 5)
            .map(|_| PooledPipe::take().unwrap())
            .collect();
        drop(many);
        assert_eq!(idle(), POOL_CAPACITY);
    }

    #[test]
    fn a_pipe_holding_bytes_is_closed_not_reused() {
        let pipe = PooledPipe::take().unwrap();
        let n = nix::unistd::write(&pipe.write, b"left over").unwrap();
        pipe.filled(n);
        let ids = fds(&pipe);
        drop(pipe);
        assert_eq!(idle(), 0);
        // Its descriptors were closed: a new pipe may get the same numbers,
        // but it is empty.
        let fresh = PooledPipe::take().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            nix::unistd::read(&fresh.read, &mut buf),
            Err(nix::errno::Errno::EAGAIN),
            "a new pipe ({:?}, was {ids:?}) is empty",
            fds(&fresh)
        );
    }

    #[test]
    fn a_pipe_that_failed_is_closed_not_reused() {
        let pipe = PooledPipe::take().unwrap();
        pipe.failed();
        drop(pipe);
        assert_eq!(idle(), 0);
    }

    /// Moves `bytes` through the pipe as the relay does, recording both.
    fn pipe_round_trip(pipe: &Pipe, bytes: &[u8]) {
        let n = nix::unistd::write(&pipe.write, bytes).unwrap();
        pipe.filled(n);
        let mut buf = vec![0u8; n];
        let m = nix::unistd::read(&pipe.read, &mut buf).unwrap();
        pipe.drained(m);
        assert_eq!(&buf[..m], bytes);
    }
}
