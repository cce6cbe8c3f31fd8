//! The byte relay: moves a connection's bytes between the client and the
//! chosen L7 node until both sides are done.
//!
//! [`relay`] pumps both directions at once with three rules:
//!
//! - **Half-close.** When one side ends its sending (EOF, a FIN), the relay
//!   shuts down the write side of the other connection, forwarding the FIN,
//!   and keeps pumping the other direction until it ends too. A client that
//!   sends a request and `shutdown(SHUT_WR)`s still gets the whole response.
//!   When the second direction ends the relay is over: closing both
//!   connections sends that FIN, without a `shutdown` of its own.
//! - **Idle timeout.** If no byte moves in either direction for
//!   [`RelayConfig::idle_timeout`], both connections are closed and the
//!   relay reports [`RelayEnd::IdleTimeout`].
//! - **Errors and resets.** A read, write or shutdown error on one side
//!   ends the relay with a [`RelayError`] naming that side, and the *other*
//!   connection is reset (`SO_LINGER` 0, then close) rather than closed
//!   cleanly, so its peer sees the failure (as a connection reset) instead
//!   of a truncated stream that looks complete.
//!
//! **Zero copy.** On Linux, [`CopyMode::Auto`] moves bytes with `splice(2)`
//! through a pipe per direction (socket → pipe → socket), so payload never
//! enters user space. The pipes come from a per-thread pool and go back to
//! it empty (see `pipes`), so a short connection creates none. The
//! syscalls go through the `nix` crate's safe wrappers, so this crate
//! keeps the workspace's `forbid(unsafe_code)`. The pipe is always drained
//! before the next read from the socket, so a `splice` that would block
//! always means the *socket* is not ready, and tokio's readiness for that
//! socket is the only thing to wait on. If a pipe cannot be created (file
//! descriptors exhausted), or on other systems, the relay falls back to a
//! buffered copy through user space, with the same semantics;
//! [`RelayStats::zero_copy`] tells which ran.
//!
//! The relay never binds or connects: it receives both connected streams,
//! after the caller has written any PROXY protocol header upstream (with
//! whatever client bytes it sent along: the relay moves the rest). It
//! holds no task of its own; dropping the future closes both connections,
//! which is how a shutdown token cancels it.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// How bytes are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// `splice(2)` through a pipe on Linux, a buffered copy elsewhere or
    /// when a pipe cannot be had.
    #[default]
    Auto,
    /// Always the buffered copy (for comparison and tests).
    Buffered,
}

/// Relay settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Close both connections when no byte moved either way for this long.
    /// Default: 5 minutes.
    pub idle_timeout: Duration,
    /// Default: [`CopyMode::Auto`].
    pub mode: CopyMode,
    /// Size of each direction's buffer for the buffered copy, and the most
    /// bytes one `splice` moves. Default: 64 KiB (a Linux pipe's default
    /// capacity).
    pub chunk_size: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            mode: CopyMode::Auto,
            chunk_size: 64 * 1024,
        }
    }
}

/// Which connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client's connection to the VIP.
    Downstream,
    /// The connection to the L7 node.
    Upstream,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Downstream => "downstream (client)",
            Self::Upstream => "upstream (L7 node)",
        })
    }
}

/// What the relay was doing when an error hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Receiving bytes.
    Read,
    /// Sending bytes.
    Write,
    /// Forwarding a FIN (`shutdown(SHUT_WR)`).
    Shutdown,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "reading from",
            Self::Write => "writing to",
            Self::Shutdown => "shutting down writes to",
        })
    }
}

/// Bytes delivered each way (written to the receiving side, not merely
/// read from the sending one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transferred {
    /// Client → L7 node.
    pub downstream_to_upstream: u64,
    /// L7 node → client.
    pub upstream_to_downstream: u64,
}

impl fmt::Display for Transferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes client→upstream, {} bytes upstream→client",
            self.downstream_to_upstream, self.upstream_to_downstream
        )
    }
}

/// Why a relay that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both sides finished sending and every byte was delivered.
    Closed,
    /// Nothing moved for the idle timeout; both connections were closed.
    IdleTimeout,
}

/// The outcome of a relay that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Bytes delivered each way.
    pub transferred: Transferred,
    /// How it ended.
    pub end: RelayEnd,
    /// Whether `splice(2)` moved the bytes (else the buffered copy did).
    pub zero_copy: bool,
}

/// A relay that ended on an I/O error. Never retryable: bytes may already
/// have been delivered. The other connection has been reset.
#[derive(Debug, thiserror::Error)]
#[error("relay failed {op} the {side} connection after {transferred}: {source}")]
pub struct RelayError {
    /// The connection the error came from.
    pub side: Side,
    /// What the relay was doing on it.
    pub op: Operation,
    /// The error.
    #[source]
    pub source: io::Error,
    /// Bytes delivered each way before the error.
    pub transferred: Transferred,
}

impl RelayError {
    /// True when the peer on [`side`](Self::side) reset or abandoned the
    /// connection (RST, broken pipe), as opposed to a local failure.
    pub fn is_peer_reset(&self) -> bool {
        matches!(
            self.source.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        )
    }
}

/// An error inside one direction, before the counters are attached.
struct PumpError {
    side: Side,
    op: Operation,
    source: io::Error,
}

/// The time of the last byte moved, shared by both directions and the
/// idle watchdog (nanoseconds since the relay started).
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Returns once nothing moved for `timeout`. Re-checks after each
    /// wake-up, so activity racing with the deadline postpones it.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One direction's endpoints and counter.
struct Direction<'a> {
    from: &'a TcpStream,
    from_side: Side,
    to: &'a TcpStream,
    to_side: Side,
    delivered: &'a AtomicU64,
    activity: &'a Activity,
    /// Set by the first direction to end.
    one_ended: &'a AtomicBool,
}

impl Direction<'_> {
    fn read_error(&self, source: io::Error) -> PumpError {
        PumpError {
            side: self.from_side,
            op: Operation::Read,
            source,
        }
    }

    fn write_error(&self, source: io::Error) -> PumpError {
        PumpError {
            side: self.to_side,
            op: Operation::Write,
            source,
        }
    }

    fn delivered(&self, n: usize) {
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        self.activity.touch();
    }

    /// Forwards the FIN: the sender is done, so the receiver gets no more.
    /// If the other direction has ended already, the relay is over and the
    /// close that follows sends the FIN (the receiving connection's own
    /// direction read its EOF, so nothing unread turns the close into a
    /// reset): one system call fewer per connection.
    fn forward_fin(&self) -> Result<(), PumpError> {
        if self.one_ended.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        match socket2::SockRef::from(self.to).shutdown(std::net::Shutdown::Write) {
            // The receiver is already gone entirely; nothing left to tell it.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(source) => Err(PumpError {
                side: self.to_side,
                op: Operation::Shutdown,
                source,
            }),
            Ok(()) => Ok(()),
        }
    }

    /// The buffered copy: read into `buf`, write it all out, repeat until
    /// EOF, then forward the FIN.
    async fn pump_buffered(&self, chunk_size: usize) -> Result<(), PumpError> {
        let mut buf = vec![0u8; chunk_size.max(1)];
        loop {
            let n = loop {
                self.from.readable().await.map_err(|e| self.read_error(e))?;
                match self.from.try_read(&mut buf) {
                    Ok(n) => break n,
                    Err(e) if retry(&e) => continue,
                    Err(e) => return Err(self.read_error(e)),
                }
            };
            if n == 0 {
                return self.forward_fin();
            }
            self.activity.touch();
            let mut written = 0;
            while written < n {
                self.to.writable().await.map_err(|e| self.write_error(e))?;
                match self.to.try_write(&buf[written..n]) {
                    Ok(0) => return Err(self.write_error(io::ErrorKind::WriteZero.into())),
                    Ok(m) => {
                        written += m;
                        self.delivered(m);
                    }
                    Err(e) if retry(&e) => continue,
                    Err(e) => return Err(self.write_error(e)),
                }
            }
        }
    }
}

/// Errors after which the same call is simply tried again.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[cfg(target_os = "linux")]
mod pipes;

#[cfg(target_os = "linux")]
mod zero_copy {
    //! `splice(2)` through a pooled pipe, via `nix`'s safe wrappers.

    use std::io;

    use nix::fcntl::{SpliceFFlags, splice};
    use tokio::io::Interest;

    use super::pipes::Pipe;
    use super::{Direction, PumpError, retry};

    const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_NONBLOCK.union(SpliceFFlags::SPLICE_F_MOVE);

    impl Direction<'_> {
        /// socket → pipe → socket until EOF, then forward the FIN.
        ///
        /// Invariant: the pipe is empty whenever we splice into it, so an
        /// `EAGAIN` from either splice comes from the socket, whose
        /// readiness `try_io` then clears and `readable`/`writable` await.
        /// Every byte in and out is recorded on the pipe, and a failure
        /// marks it, so that only an empty, sound pipe returns to the pool.
        pub(super) async fn pump_splice(
            &self,
            pipe: &Pipe,
            chunk_size: usize,
        ) -> Result<(), PumpError> {
            let chunk = chunk_size.max(1);
            loop {
                let n = loop {
                    self.from.readable().await.map_err(|e| self.read_error(e))?;
                    let spliced = self.from.try_io(Interest::READABLE, || {
                        splice(self.from, None, &pipe.write, None, chunk, FLAGS)
                            .map_err(io::Error::from)
                    });
                    match spliced {
                        Ok(n) => break n,
                        Err(e) if retry(&e) => continue,
                        Err(e) => {
                            pipe.failed();
                            return Err(self.read_error(e));
                        }
                    }
                };
                if n == 0 {
                    return self.forward_fin();
                }
                pipe.filled(n);
                self.activity.touch();
                let mut left = n;
                while left > 0 {
                    self.to.writable().await.map_err(|e| self.write_error(e))?;
                    let spliced = self.to.try_io(Interest::WRITABLE, || {
                        splice(&pipe.read, None, self.to, None, left, FLAGS)
                            .map_err(io::Error::from)
                    });
                    match spliced {
                        Ok(0) => {
                            pipe.failed();
                            return Err(self.write_error(io::ErrorKind::WriteZero.into()));
                        }
                        Ok(m) => {
                            left -= m;
                            pipe.drained(m);
                            self.delivered(m);
                        }
                        Err(e) if retry(&e) => continue,
                        Err(e) => {
                            pipe.failed();
                            return Err(self.write_error(e));
                        }
                    }
                }
            }
        }
    }
}

/// Relays bytes between `downstream` (the client) and `upstream` (the L7
/// node) until both directions are done, nothing moved for the idle
/// timeout, or an error hits. See the module docs for the rules.
///
/// Both connections are closed when this returns (reset, on the side
/// opposite an error). Dropping the future closes both too.
pub async fn relay(
    downstream: TcpStream,
    upstream: TcpStream,
    config: &RelayConfig,
) -> Result<RelayStats, RelayError> {
    let activity = Activity::new();
    let down_to_up = AtomicU64::new(0);
    let up_to_down = AtomicU64::new(0);
    let one_ended = AtomicBool::new(false);
    let to_upstream = Direction {
        from: &downstream,
        from_side: Side::Downstream,
        to: &upstream,
        to_side: Side::Upstream,
        delivered: &down_to_up,
        activity: &activity,
        one_ended: &one_ended,
    };
    let to_downstream = Direction {
        from: &upstream,
        from_side: Side::Upstream,
        to: &downstream,
        to_side: Side::Downstream,
        delivered: &up_to_down,
        activity: &activity,
        one_ended: &one_ended,
    };

    #[cfg(target_os = "linux")]
    let pipes = match config.mode {
        CopyMode::Auto => pipes::PooledPipe::take()
            .and_then(|a| Ok((a, pipes::PooledPipe::take()?)))
            .ok(),
        CopyMode::Buffered => None,
    };
    #[cfg(target_os = "linux")]
    let zero_copy = pipes.is_some();
    #[cfg(not(target_os = "linux"))]
    let zero_copy = false;

    let pumps = async {
        #[cfg(target_os = "linux")]
        if let Some((pipe_up, pipe_down)) = &pipes {
            return tokio::try_join!(
                to_upstream.pump_splice(pipe_up, config.chunk_size),
                to_downstream.pump_splice(pipe_down, config.chunk_size),
            );
        }
        tokio::try_join!(
            to_upstream.pump_buffered(config.chunk_size),
            to_downstream.pump_buffered(config.chunk_size),
        )
    };

    // Biased: bytes that arrived together with the deadline count as
    // activity before the watchdog looks.
    let outcome = tokio::select! {
        biased;
        result = pumps => result.map(|_| RelayEnd::Closed),
        () = activity.idle_for(config.idle_timeout) => Ok(RelayEnd::IdleTimeout),
    };
    let transferred = Transferred {
        downstream_to_upstream: down_to_up.load(Ordering::Relaxed),
        upstream_to_downstream: up_to_down.load(Ordering::Relaxed),
    };
    match outcome {
        Ok(end) => Ok(RelayStats {
            transferred,
            end,
            zero_copy,
        }),
        Err(PumpError { side, op, source }) => {
            let other = match side {
                Side::Downstream => &upstream,
                Side::Upstream => &downstream,
            };
            // Best effort: if it fails the close below is a plain FIN.
            let _ = other.set_zero_linger();
            Err(RelayError {
                side,
                op,
                source,
                transferred,
            })
        }
    }
}

#[cfg(test)]
mod tests;
