//! The buffers of one recvmmsg/sendmmsg batch of a UDP worker: per message a query buffer,
//! the sender's address (also read back as a `SocketAddr`, for NOTIFY) and the packet info (the address the query was sent to); the answers
//! go back to each sender from that address.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::net::pktinfo::{self, CmsgBuf, Local};

/// Messages per recvmmsg/sendmmsg call.
pub const BATCH: usize = 32;
/// Largest query read (anything longer is not a DNS query over UDP we answer).
pub const QUERY_MAX: usize = 4096;

/// Buffers for one batch. The headers point into the other vectors, which are never resized.
pub struct Batch {
    bufs: Vec<[u8; QUERY_MAX]>,
    addrs: Vec<libc::sockaddr_storage>,
    ctrl: Vec<CmsgBuf>,
    iovs: Vec<libc::iovec>,
    pub hdrs: Vec<libc::mmsghdr>,
    /// Destinations of the received messages (where each answer leaves from).
    locals: Vec<Option<Local>>,
    /// Answers, and the message each answers.
    replies: Vec<(Vec<u8>, usize)>,
}

impl Batch {
    pub fn new() -> Batch {
        // SAFETY: all-zero is a valid value of these C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Batch {
            bufs: vec![[0u8; QUERY_MAX]; BATCH],
            addrs: vec![zero_addr; BATCH],
            ctrl: vec![CmsgBuf::new(); BATCH],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                };
                BATCH
            ],
            hdrs: vec![zero_hdr; BATCH],
            locals: vec![None; BATCH],
            replies: Vec::with_capacity(BATCH),
        }
    }

    /// Points the headers at the receive buffers.
    pub fn arm_receive(&mut self) {
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
            h.msg_control = self.ctrl[i].as_mut_ptr();
            h.msg_controllen = CmsgBuf::LEN as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        self.replies.clear();
    }

    /// Query `i` of the `n` received, or `None` if it was truncated (longer than we read).
    /// Also notes where it was sent to.
    pub fn query(&mut self, i: usize) -> Option<&[u8]> {
        let h = &self.hdrs[i];
        self.locals[i] = pktinfo::received(&h.msg_hdr);
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        Some(&self.bufs[i][..h.msg_len as usize])
    }

    /// The sender of received message `i`.
    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        let a = &self.addrs[i];
        match a.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET), and
                // sockaddr_storage is large and aligned enough for it.
                let v4 = unsafe { &*(a as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                Some(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for AF_INET6 and sockaddr_in6.
                let v6 = unsafe { &*(a as *const _ as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                Some(SocketAddr::new(ip.into(), u16::from_be(v6.sin6_port)))
            }
            _ => None,
        }
    }

    /// Queues `reply` as the answer to received message `i`.
    pub fn reply(&mut self, i: usize, reply: Vec<u8>) {
        self.replies.push((reply, i));
    }

    /// Points the first `replies` headers at the queued answers, each to its query's sender and
    /// from its query's destination; returns how many there are.
    pub fn arm_send(&mut self) -> usize {
        for (j, (reply, i)) in self.replies.iter_mut().enumerate() {
            let i = *i;
            self.iovs[j] = libc::iovec {
                iov_base: reply.as_mut_ptr() as *mut libc::c_void,
                iov_len: reply.len(),
            };
            let h = &mut self.hdrs[j].msg_hdr;
            h.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = match self.addrs[i].ss_family as libc::c_int {
                libc::AF_INET => size_of::<libc::sockaddr_in>(),
                _ => size_of::<libc::sockaddr_in6>(),
            } as libc::socklen_t;
            h.msg_iov = &mut self.iovs[j];
            h.msg_iovlen = 1;
            h.msg_flags = 0;
            // Every received header has been read by now: slot i's control buffer can carry
            // the packet info of its (single) answer.
            match &self.locals[i] {
                Some(local) => {
                    let len = pktinfo::write(local, &mut self.ctrl[i]);
                    h.msg_control = self.ctrl[i].as_mut_ptr();
                    h.msg_controllen = len as _;
                }
                None => {
                    h.msg_control = std::ptr::null_mut();
                    h.msg_controllen = 0;
                }
            }
        }
        self.replies.len()
    }
}
