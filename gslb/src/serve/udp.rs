//! UDP serving: per listen address, one `SO_REUSEPORT` socket and OS
//! thread per core, each receiving up to [`BATCH`] datagrams with one
//! `recvmmsg` and sending the replies with one `sendmmsg` (through nix's
//! safe wrappers). Each datagram is answered by the fast path's tables
//! ([`crate::fast`]), else by the slow path ([`crate::dns::answer_bytes`])
//! on the same thread; either way the reply then
//! passes response rate limiting ([`crate::rrl`]). Datagrams cut by the
//! receive buffer (over 4096 bytes) are dropped unanswered.
//!
//! The listen socket comes bound from the caller (tests bind port 0); the
//! extra sockets of its `SO_REUSEPORT` group are bound here to the same
//! address, after the option is set on the first.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrStorage,
    bind, getsockopt, recvmmsg, sendmmsg, setsockopt, socket, sockopt,
};
use tracing::{debug, error, info, warn};

use super::tables::{LocalCounts, TableKeeper};
use crate::dns::answer_bytes;
use crate::fast::{Answer, Tables};
use crate::rrl::{self, Verdict};

/// Datagrams read (and replies sent) per system call.
pub const BATCH: usize = 16;
/// Largest datagram read; longer ones are dropped (hickory reads 4096
/// bytes and decodes what fits; no legitimate query is that long).
const RECEIVE_SIZE: usize = 4096;
/// How often a blocked worker wakes to check for shutdown.
const WAKE_INTERVAL: Duration = Duration::from_millis(100);
/// How often a worker hands its query counts to the metrics.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Receive buffer asked for each socket (the kernel may cap it).
const RECEIVE_BUFFER: usize = 4 << 20;

/// How UDP is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpOptions {
    /// Sockets and threads per listen address.
    pub threads: usize,
    /// Largest reply, whatever the client offers; also what the OPT
    /// record advertises.
    pub max_payload: u16,
}

impl Default for UdpOptions {
    /// One thread per core, and [`crate::dns::MAX_UDP_PAYLOAD`].
    fn default() -> UdpOptions {
        UdpOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_payload: crate::dns::MAX_UDP_PAYLOAD,
        }
    }
}

/// The running UDP workers and the tables builder.
pub(crate) struct UdpServer {
    workers: Vec<JoinHandle<()>>,
    builder: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    keeper: Arc<TableKeeper>,
}

impl UdpServer {
    /// Starts serving `sockets` (bound, in any blocking mode) with `keeper`.
    pub fn start(
        keeper: Arc<TableKeeper>,
        sockets: Vec<UdpSocket>,
        options: UdpOptions,
    ) -> io::Result<UdpServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let builder = {
            let keeper = keeper.clone();
            std::thread::Builder::new()
                .name("gslb-fast-tables".into())
                .spawn(move || keeper.run_builder())?
        };
        let mut server = UdpServer {
            workers: Vec::new(),
            builder: Some(builder),
            stop,
            keeper,
        };
        for socket in sockets {
            let addr = socket.local_addr()?;
            let group = reuseport_group(socket, options.threads.max(1))?;
            info!(%addr, threads = group.len(), "UDP workers serving");
            for (index, socket) in group.into_iter().enumerate() {
                let keeper = server.keeper.clone();
                let stop = server.stop.clone();
                let max_payload = options.max_payload;
                let worker = std::thread::Builder::new()
                    .name(format!("gslb-udp-{index}"))
                    .spawn(move || Worker::new(socket, keeper, stop, max_payload).run())?;
                server.workers.push(worker);
            }
        }
        Ok(server)
    }

    /// Stops the workers (each finishes the batch in hand) and the
    /// builder, and waits for them. Blocking.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        self.keeper.stop();
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                error!("a UDP worker panicked");
            }
        }
        if let Some(builder) = self.builder.take()
            && builder.join().is_err()
        {
            error!("the fast path tables builder panicked");
        }
    }
}

/// `socket` plus `count - 1` sockets bound to the same address, all with
/// `SO_REUSEPORT`, so the kernel spreads datagrams across them. If the
/// kernel refuses, the extra workers share clones of `socket` instead.
fn reuseport_group(socket: UdpSocket, count: usize) -> io::Result<Vec<UdpSocket>> {
    let addr = socket.local_addr()?;
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(WAKE_INTERVAL))?;
    let _ = setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER);
    let mut group = Vec::with_capacity(count);
    let reuse = setsockopt(&socket, sockopt::ReusePort, &true);
    let v6only = match addr {
        SocketAddr::V6(_) => getsockopt(&socket, sockopt::Ipv6V6Only).ok(),
        SocketAddr::V4(_) => None,
    };
    for _ in 1..count {
        let sibling = match reuse {
            Ok(()) => sibling(addr, v6only),
            Err(error) => Err(io::Error::from(error)),
        };
        let sibling = match sibling {
            Ok(sibling) => sibling,
            Err(error) => {
                warn!(%addr, %error, "no SO_REUSEPORT socket; workers share one socket");
                socket.try_clone()?
            }
        };
        sibling.set_read_timeout(Some(WAKE_INTERVAL))?;
        let _ = setsockopt(&sibling, sockopt::RcvBuf, &RECEIVE_BUFFER);
        group.push(sibling);
    }
    group.insert(0, socket);
    Ok(group)
}

fn sibling(addr: SocketAddr, v6only: Option<bool>) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    if let Some(v6only) = v6only {
        setsockopt(&fd, sockopt::Ipv6V6Only, &v6only)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
}

/// One socket's loop and its buffers, allocated once.
struct Worker {
    socket: UdpSocket,
    keeper: Arc<TableKeeper>,
    stop: Arc<AtomicBool>,
    max_payload: u16,
    /// Reply slot size.
    slot: usize,
    received: Vec<u8>,
    replies: Vec<u8>,
    receive_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    counts: LocalCounts,
    counted_with: Option<Arc<Tables>>,
    last_flush: Instant,
    /// Replies this worker's rate limiting held back (for the slip rate).
    limited: u64,
}

/// One received datagram.
#[derive(Clone, Copy)]
struct Datagram {
    len: usize,
    from: Option<SockaddrStorage>,
    truncated: bool,
}

impl Worker {
    fn new(
        socket: UdpSocket,
        keeper: Arc<TableKeeper>,
        stop: Arc<AtomicBool>,
        max_payload: u16,
    ) -> Worker {
        let slot = usize::from(max_payload.max(512));
        Worker {
            socket,
            keeper,
            stop,
            max_payload,
            slot,
            received: vec![0; BATCH * RECEIVE_SIZE],
            replies: vec![0; BATCH * slot],
            receive_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            counts: LocalCounts::new(),
            counted_with: None,
            last_flush: Instant::now(),
            limited: 0,
        }
    }

    fn run(mut self) {
        let mut datagrams = [Datagram {
            len: 0,
            from: None,
            truncated: false,
        }; BATCH];
        let mut lens = [0usize; BATCH];
        let mut to: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let mut failures = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            let count = match self.receive(&mut datagrams) {
                Ok(count) => count,
                Err(Errno::EAGAIN | Errno::EINTR) => 0,
                Err(error) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        warn!(%error, failures, "UDP receive failed");
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    0
                }
            };
            let replies = match std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.answer(&datagrams[..count], &mut lens, &mut to)
            })) {
                Ok(replies) => replies,
                Err(_) => {
                    error!("answering a batch panicked; its queries get no reply");
                    0
                }
            };
            self.send(&lens[..replies], &to[..replies]);
            if self.last_flush.elapsed() >= FLUSH_INTERVAL {
                self.flush_counts();
            }
        }
        self.flush_counts();
    }

    fn receive(&mut self, datagrams: &mut [Datagram; BATCH]) -> Result<usize, Errno> {
        let mut chunks = self.received.chunks_exact_mut(RECEIVE_SIZE);
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results = recvmmsg(
            self.socket.as_fd().as_raw_fd(),
            &mut self.receive_headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        let mut count = 0;
        for (message, slot) in results.zip(datagrams.iter_mut()) {
            *slot = Datagram {
                len: message.bytes,
                from: message.address,
                truncated: message.flags.contains(MsgFlags::MSG_TRUNC),
            };
            count += 1;
        }
        Ok(count)
    }

    /// Answers `datagrams` into the reply slots; returns how many replies
    /// there are (their lengths and destinations in `lens` and `to`).
    fn answer(
        &mut self,
        datagrams: &[Datagram],
        lens: &mut [usize; BATCH],
        to: &mut [Option<SockaddrStorage>; BATCH],
    ) -> usize {
        if datagrams.is_empty() {
            return 0;
        }
        let state = self.keeper.state().load();
        let health = self.keeper.health().load();
        // The tables last used, if still current; otherwise the published
        // ones, if current (the builder is woken when they are not).
        let current = self
            .counted_with
            .as_ref()
            .is_some_and(|tables| tables.is_current(&state, &health));
        if !current && let Some(tables) = self.keeper.current(&state, &health) {
            self.flush_counts();
            self.counted_with = Some(tables);
        }
        let tables = self
            .counted_with
            .as_ref()
            .filter(|tables| tables.is_current(&state, &health));
        let limiter = self.keeper.limiter().load();
        let now = Instant::now();
        let mut replies = 0;
        for (index, datagram) in datagrams.iter().enumerate() {
            // Oversize datagrams were cut by the kernel: not worth an answer.
            if datagram.truncated {
                continue;
            }
            let Some(src) = datagram.from.as_ref().and_then(socket_addr) else {
                continue;
            };
            if !answerable(src) {
                continue;
            }
            let packet = &self.received[index * RECEIVE_SIZE..index * RECEIVE_SIZE + datagram.len];
            let out = &mut self.replies[replies * self.slot..(replies + 1) * self.slot];
            let answered = match tables {
                Some(tables) => tables.answer(packet, src, self.max_payload, out),
                None => Answer::Slow,
            };
            let len = match (answered, tables) {
                (Answer::Reply { len, count }, Some(tables)) => {
                    self.counts.add(tables, count);
                    len
                }
                _ => {
                    let reply = answer_bytes(
                        &state,
                        &health,
                        self.keeper.metrics(),
                        packet,
                        src,
                        self.max_payload,
                    );
                    match reply {
                        Some(reply) if reply.len() <= out.len() => {
                            out[..reply.len()].copy_from_slice(&reply);
                            reply.len()
                        }
                        _ => continue,
                    }
                }
            };
            let mut len = len;
            if let Some(limiter) = limiter.as_deref()
                && !limiter.is_exempt(src.ip())
            {
                match limiter.judge(src.ip(), &out[..len], now, &mut self.limited) {
                    Verdict::Send => {}
                    Verdict::Slip => len = rrl::truncate(out, len),
                    Verdict::Drop => continue,
                }
            }
            lens[replies] = len;
            to[replies] = datagram.from;
            replies += 1;
        }
        replies
    }

    /// Sends the replies, retrying after a partial send and skipping a
    /// reply the kernel refuses.
    fn send(&mut self, lens: &[usize], to: &[Option<SockaddrStorage>]) {
        let mut start = 0;
        while start < lens.len() {
            let pending = lens.len() - start;
            let sent = {
                let replies = &self.replies;
                let slot = self.slot;
                let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
                    let len = lens.get(start + i).copied().unwrap_or(0);
                    let at = (start + i) * slot;
                    [IoSlice::new(replies.get(at..at + len).unwrap_or_default())]
                });
                let none: [ControlMessage<'_>; 0] = [];
                sendmmsg(
                    self.socket.as_fd().as_raw_fd(),
                    &mut self.send_headers,
                    slices[..pending].iter(),
                    &to[start..],
                    none,
                    MsgFlags::empty(),
                )
                .map(|results| results.count())
            };
            match sent {
                Ok(0) => start += 1,
                Ok(sent) => start += sent,
                Err(Errno::EINTR) => {}
                Err(error) => {
                    debug!(%error, "reply not sent");
                    start += 1;
                }
            }
        }
    }

    fn flush_counts(&mut self) {
        if let Some(tables) = &self.counted_with {
            self.counts.flush(&self.keeper, tables);
        }
        self.last_flush = Instant::now();
    }
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// Whether a reply may go to `src` (hickory's rule: not port 0, not an
/// unspecified or broadcast address).
fn answerable(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}
