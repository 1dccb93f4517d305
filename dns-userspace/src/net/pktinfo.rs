//! The address a UDP query was sent to, so that the answer leaves from it (as NSD and Knot do).
//! With the service address on `lo` (anycast) and the socket on the wildcard address, the
//! kernel would otherwise pick the source by route, and the client drops the answer.
//!
//! IPv4 sockets ask for IP_PKTINFO and answer with its `ipi_spec_dst`; IPv6 sockets ask for
//! IPV6_RECVPKTINFO and answer with IPV6_PKTINFO. On a dual-stack IPv6 socket the kernel
//! reports an IPv4 query's destination as a v4-mapped IPV6_PKTINFO, and takes the same back as
//! the source of an answer to a v4-mapped address.

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;

use anyhow::{Context as _, Result};

/// Room for one control message carrying either kind of packet info, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct CmsgBuf([u8; 64]);

impl CmsgBuf {
    pub const fn new() -> CmsgBuf {
        CmsgBuf([0; 64])
    }

    pub fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr() as *mut libc::c_void
    }

    pub const LEN: usize = 64;
}

impl Default for CmsgBuf {
    fn default() -> CmsgBuf {
        CmsgBuf::new()
    }
}

/// Where a query arrived: the local address to answer from.
#[derive(Clone, Copy)]
pub enum Local {
    V4(libc::in_addr),
    /// Address and interface (kept for link-local addresses, which need it).
    V6(libc::in6_addr, u32),
}

/// Asks the kernel to report each datagram's destination on socket `fd` of `family`.
pub fn enable(fd: RawFd, family: libc::c_int) -> Result<()> {
    let (level, opt) = if family == libc::AF_INET {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    };
    let one: libc::c_int = 1;
    // SAFETY: valid fd and a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &one as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error())
            .context("asking for the packet info of UDP queries");
    }
    Ok(())
}

/// The destination a received message reports in its control data, if any.
pub fn received(hdr: &libc::msghdr) -> Option<Local> {
    if hdr.msg_control.is_null() || hdr.msg_flags & libc::MSG_CTRUNC != 0 {
        return None;
    }
    // SAFETY: the header's control pointer and length describe the buffer the kernel filled;
    // the CMSG_* functions stay inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = (data as *const libc::in_pktinfo).read_unaligned();
                    return Some(Local::V4(info.ipi_spec_dst));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = (data as *const libc::in6_pktinfo).read_unaligned();
                    return Some(Local::V6(info.ipi6_addr, info.ipi6_ifindex));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    None
}

/// Writes the control message that makes an answer leave from `local` into `buf`; returns its
/// length for `msg_controllen`.
pub fn write(local: &Local, buf: &mut CmsgBuf) -> usize {
    let (level, kind, len) = match local {
        Local::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
        Local::V6(..) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
    };
    *buf = CmsgBuf::new();
    // SAFETY: a msghdr describing `buf`, which is large and aligned enough for one cmsghdr with
    // either payload (CMSG_SPACE(20) = 40 <= 64).
    unsafe {
        let space = libc::CMSG_SPACE(len as u32) as usize;
        debug_assert!(space <= CmsgBuf::LEN);
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_control = buf.as_mut_ptr();
        hdr.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&hdr);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(len as u32) as _;
        let data = libc::CMSG_DATA(c);
        match *local {
            Local::V4(addr) => {
                // The interface is left to the routing table (an anycast address on `lo`
                // answers out of the interface the route to the client names).
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: addr,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                (data as *mut libc::in_pktinfo).write_unaligned(info);
            }
            Local::V6(addr, ifindex) => {
                let link_local = addr.s6_addr[0] == 0xfe && addr.s6_addr[1] & 0xc0 == 0x80;
                let info = libc::in6_pktinfo {
                    ipi6_addr: addr,
                    ipi6_ifindex: if link_local { ifindex } else { 0 },
                };
                (data as *mut libc::in6_pktinfo).write_unaligned(info);
            }
        }
        space
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// Receives one datagram on `sock` with its packet info.
    fn receive(sock: &UdpSocket) -> Option<Local> {
        let mut buf = [0u8; 64];
        let mut ctrl = CmsgBuf::new();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: all-zero msghdr, then pointed at live buffers.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = ctrl.as_mut_ptr();
        hdr.msg_controllen = CmsgBuf::LEN as _;
        // SAFETY: hdr points at buffers that outlive the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, 0) };
        assert!(n > 0, "{}", io::Error::last_os_error());
        received(&hdr)
    }

    #[test]
    fn the_destination_of_a_query_is_reported_and_written_back() {
        // A dual-stack socket on the wildcard address: an IPv4 query to 127.0.0.1 comes with a
        // v4-mapped destination; an IPv6 one to ::1 with ::1.
        let server: SocketAddr = "[::]:0".parse().unwrap();
        let sock = UdpSocket::bind(server).unwrap();
        enable(sock.as_raw_fd(), libc::AF_INET6).unwrap();
        let port = sock.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"q", ("127.0.0.1", port)).unwrap();
        let Some(Local::V6(a, _)) = receive(&sock) else {
            panic!("no IPV6_PKTINFO for an IPv4 query");
        };
        assert_eq!(
            std::net::Ipv6Addr::from(a.s6_addr).to_ipv4_mapped(),
            Some(std::net::Ipv4Addr::LOCALHOST)
        );
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        v6.send_to(b"q", ("::1", port)).unwrap();
        let Some(Local::V6(a, _)) = receive(&sock) else {
            panic!("no IPV6_PKTINFO");
        };
        assert_eq!(
            std::net::Ipv6Addr::from(a.s6_addr),
            std::net::Ipv6Addr::LOCALHOST
        );
        // An IPv4 socket.
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        enable(sock.as_raw_fd(), libc::AF_INET).unwrap();
        let port = sock.local_addr().unwrap().port();
        client.send_to(b"q", ("127.0.0.1", port)).unwrap();
        let Some(local @ Local::V4(a)) = receive(&sock) else {
            panic!("no IP_PKTINFO");
        };
        assert_eq!(
            u32::from_be(a.s_addr),
            u32::from(std::net::Ipv4Addr::LOCALHOST)
        );
        let mut buf = CmsgBuf::new();
        let len = write(&local, &mut buf);
        // SAFETY: CMSG_SPACE is a pure computation.
        assert_eq!(
            len,
            unsafe { libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) } as usize
        );
    }
}
