//! The userspace UDP service: worker threads, each with its own socket bound with
//! SO_REUSEPORT to the service address, reading queries and sending answers in batches
//! (recvmmsg/sendmmsg), as NSD and Knot do. The kernel spreads queries over the sockets.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::sys::socket::{SockaddrLike, SockaddrStorage};

use crate::engine::Transport;
use crate::net::{current, ServerStats, SharedEngine};

/// Messages per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Largest query read (anything longer is not a DNS query over UDP we answer).
const QUERY_MAX: usize = 4096;
/// How often a blocked worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A UDP socket bound to `addr` with SO_REUSEPORT (and SO_REUSEADDR), so that several workers
/// can share the address.
pub fn bind_reuseport(addr: SocketAddr) -> Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the fd is owned right after.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("creating a UDP socket");
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: valid fd and a c_int option value.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &one as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error()).context("setting SO_REUSEPORT");
        }
    }
    let sa = SockaddrStorage::from(addr);
    // SAFETY: sa points to a sockaddr of sa.len() bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), sa.as_ptr(), sa.len()) };
    if r != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("binding UDP {addr}"));
    }
    let sock = UdpSocket::from(fd);
    sock.set_read_timeout(Some(STOP_POLL))?;
    Ok(sock)
}

/// Running UDP workers; stops and joins them on drop.
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `per_addr` workers for each bound socket: one on the socket itself, the others on
    /// new sockets bound to its address.
    pub fn start(
        sockets: Vec<UdpSocket>,
        per_addr: usize,
        engine: SharedEngine,
        stats: Arc<ServerStats>,
    ) -> Result<Workers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for first in sockets {
            let addr = first.local_addr()?;
            let mut socks = vec![first];
            for _ in 1..per_addr.max(1) {
                socks.push(bind_reuseport(addr)?);
            }
            for (i, sock) in socks.into_iter().enumerate() {
                let (engine, stats, stop) = (engine.clone(), stats.clone(), stop.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("udp-{i}"))
                        .spawn(move || worker(sock, engine, stats, stop))
                        .context("starting a UDP worker")?,
                );
            }
        }
        Ok(Workers { stop, threads })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Buffers for one batch.
struct Batch {
    bufs: Vec<[u8; QUERY_MAX]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    replies: Vec<Vec<u8>>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all-zero is a valid value of these C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Batch {
            bufs: vec![[0u8; QUERY_MAX]; BATCH],
            addrs: vec![zero_addr; BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                BATCH
            ],
            hdrs: vec![zero_hdr; BATCH],
            replies: Vec::with_capacity(BATCH),
        }
    }

    /// Points the headers at the receive buffers.
    fn arm_receive(&mut self) {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: QUERY_MAX,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
    }
}

fn worker(sock: UdpSocket, engine: SharedEngine, stats: Arc<ServerStats>, stop: Arc<AtomicBool>) {
    let fd = sock.as_raw_fd();
    let mut b = Batch::new();
    while !stop.load(Ordering::Relaxed) {
        b.arm_receive();
        // SAFETY: the headers point into `b`, which outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                b.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) {
                log::debug!("udp recvmmsg: {e}");
            }
            continue;
        }
        let n = n as usize;
        stats.udp_queries.fetch_add(n as u64, Ordering::Relaxed);
        let eng = current(&engine);
        b.replies.clear();
        // Replies are gathered at the front; `slot` says which query each answers.
        let mut out = 0;
        for i in 0..n {
            let len = b.hdrs[i].msg_len as usize;
            if b.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            if let Some(resp) = eng.answer(&b.bufs[i][..len], Transport::Udp) {
                b.replies.push(resp);
                // The reply goes to the sender of query i.
                b.addrs.swap(out, i);
                out += 1;
            }
        }
        if out == 0 {
            continue;
        }
        for i in 0..out {
            b.iovs[i] = libc::iovec {
                iov_base: b.replies[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: b.replies[i].len(),
            };
            let h = &mut b.hdrs[i].msg_hdr;
            h.msg_name = &mut b.addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = match b.addrs[i].ss_family as libc::c_int {
                libc::AF_INET => size_of::<libc::sockaddr_in>(),
                _ => size_of::<libc::sockaddr_in6>(),
            } as libc::socklen_t;
            h.msg_iov = &mut b.iovs[i];
            h.msg_iovlen = 1;
            h.msg_flags = 0;
        }
        let mut sent = 0;
        while sent < out {
            // SAFETY: headers [sent, out) point into `b`, which outlives the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    b.hdrs.as_mut_ptr().add(sent),
                    (out - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                log::debug!("udp sendmmsg: {}", io::Error::last_os_error());
                // Skip the message that failed and go on with the rest.
                sent += 1;
                continue;
            }
            sent += r as usize;
            stats.udp_responses.fetch_add(r as u64, Ordering::Relaxed);
        }
    }
}
