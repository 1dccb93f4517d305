//! The userspace UDP service: worker threads, each with its own socket bound with
//! SO_REUSEPORT to the service address, reading queries and sending answers in batches
//! (recvmmsg/sendmmsg), as NSD and Knot do. The kernel spreads queries over the sockets. Each
//! answer leaves from the address its query was sent to (`pktinfo`); NOTIFY goes to the
//! daemon's handler (`notify`), everything else to the engine, its answers rate limited when
//! `[rrl]` is configured (`rrl`); a worker survives a
//! panicking query (`contain`) and waits out receive errors instead of spinning on them.

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::sys::socket::{SockaddrLike, SockaddrStorage};

use crate::engine::Transport;
use crate::net::backoff::{Backoff, LogThrottle, LOG_INTERVAL};
use crate::net::batch::{Batch, BATCH};
use crate::net::{current, pktinfo, ServerStats, Service};

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
    pktinfo::enable(fd.as_raw_fd(), domain)?;
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
        service: Service,
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
                let (service, stats, stop) = (service.clone(), stats.clone(), stop.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("udp-{i}"))
                        .spawn(move || worker(sock, service, stats, stop))
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

fn worker(sock: UdpSocket, service: Service, stats: Arc<ServerStats>, stop: Arc<AtomicBool>) {
    let fd = sock.as_raw_fd();
    let mut b = Batch::new();
    let mut backoff = Backoff::default();
    let errors = LogThrottle::new(LOG_INTERVAL);
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
                // An error that may well repeat on every call: count it, log it now and then,
                // and wait (at most STOP_POLL) rather than spin.
                stats.udp_recv_errors.fetch_add(1, Ordering::Relaxed);
                errors.warn(format_args!("udp recvmmsg: {e}"));
                std::thread::sleep(backoff.next_wait().min(STOP_POLL));
            }
            continue;
        }
        backoff.reset();
        let n = n as usize;
        stats.udp_queries.fetch_add(n as u64, Ordering::Relaxed);
        let eng = current(&service.engine);
        for i in 0..n {
            let peer = b.peer(i);
            let reply = b.query(i).and_then(|q| {
                let r = service.answer(&eng, q, peer, Transport::Udp, &stats)?;
                match (&eng.config.rrl, peer) {
                    (Some(l), Some(p)) => l.apply(&eng, q, p.ip(), r, &stats, l.now_ns()),
                    _ => Some(r),
                }
            });
            if let Some(reply) = reply {
                b.reply(i, reply);
            }
        }
        let out = b.arm_send();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_receive_error_is_counted_and_waited_out_not_spun_on() {
        // recvmmsg on a pipe fails with ENOTSOCK every time.
        let (r, _w) = nix::unistd::pipe().unwrap();
        let sock = UdpSocket::from(r);
        let stats = Arc::new(ServerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let t = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::spawn(move || worker(sock, Service::default(), stats, stop))
        };
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        // Waits of 1, 2, 4, ... 128, then 200 ms: about a dozen calls in a second; a spinning
        // loop makes hundreds of thousands.
        let errors = stats.udp_recv_errors.load(Ordering::Relaxed);
        assert!(
            (3..=40).contains(&errors),
            "{errors} recvmmsg errors in 1 s"
        );
        assert_eq!(stats.udp_queries.load(Ordering::Relaxed), 0);
    }
}
