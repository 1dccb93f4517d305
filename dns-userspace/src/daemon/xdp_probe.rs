//! Whether the XDP program is still attached, as the kernel sees it: the id of the program on
//! an interface (netlink `RTM_GETLINK`, the `IFLA_XDP` attributes `ip -d link` shows as
//! `prog/xdp id N`), compared with the ids of the XDP programs this process holds (its
//! `bpf-prog` descriptors, from `/proc/self/fdinfo`). A program can leave the interface behind
//! the daemon's back — `bpftool link detach`, the interface deleted and made again, another
//! program put in its place — and the anycast health check and the metrics must say so.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context as _, Result};

/// `BPF_PROG_TYPE_XDP`, as `/proc/self/fdinfo` prints it.
const PROG_TYPE_XDP: u32 = 6;
/// Nested in `IFLA_XDP`: the program attached in the one mode in use, or per mode.
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
/// The flag bits of an attribute's type (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;

/// Where our XDP program stands on the interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XdpState {
    /// Attached: the interface runs program `prog`, one of ours.
    Attached { prog: u32 },
    /// No XDP program on the interface.
    Detached,
    /// Another program (not one this process holds) is attached.
    Replaced { prog: u32 },
}

/// Looks at `iface` in the kernel.
pub fn check(iface: &str) -> Result<XdpState> {
    let on_iface = attached_prog_ids(iface)?;
    if on_iface.is_empty() {
        return Ok(XdpState::Detached);
    }
    let ours = own_xdp_prog_ids()?;
    Ok(match on_iface.iter().find(|id| ours.contains(id)) {
        Some(&prog) => XdpState::Attached { prog },
        None => XdpState::Replaced { prog: on_iface[0] },
    })
}

/// Ids of the XDP programs this process holds descriptors of.
pub fn own_xdp_prog_ids() -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")? {
        let entry = entry?;
        let is_prog =
            std::fs::read_link(entry.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-prog");
        if !is_prog {
            continue;
        }
        let fdinfo = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
        // Closed since listed: not ours any more.
        let Ok(text) = std::fs::read_to_string(&fdinfo) else {
            continue;
        };
        let field = |name: &str| -> Option<u32> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        };
        if field("prog_type:") == Some(PROG_TYPE_XDP) {
            if let Some(id) = field("prog_id:") {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Ids of the XDP programs attached to `iface` (none: empty), from the kernel by netlink.
pub fn attached_prog_ids(iface: &str) -> Result<Vec<u32>> {
    let index = nix::net::if_::if_nametoindex(iface)
        .with_context(|| format!("interface {iface} (is it gone?)"))?;
    let reply = get_link(index).with_context(|| format!("asking the kernel about {iface}"))?;
    let mut ids = Vec::new();
    for (ty, payload) in attrs(&reply[NLMSG_HDR + IFINFOMSG..]) {
        if ty != libc::IFLA_XDP {
            continue;
        }
        for (ty, v) in attrs(payload) {
            let mode_id = matches!(
                ty,
                IFLA_XDP_PROG_ID
                    | IFLA_XDP_DRV_PROG_ID
                    | IFLA_XDP_SKB_PROG_ID
                    | IFLA_XDP_HW_PROG_ID
            );
            if let (true, Ok(b)) = (mode_id, <[u8; 4]>::try_from(v)) {
                let id = u32::from_ne_bytes(b);
                if id != 0 && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    Ok(ids)
}

/// The netlink attributes in `buf`: (type without flag bits, payload).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((ty, payload))
    })
}

/// `RTM_GETLINK` for interface `index`; the `RTM_NEWLINK` message of the reply.
fn get_link(index: u32) -> Result<Vec<u8>> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("opening a netlink socket");
    }
    // SAFETY: fd is fresh and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: a valid fd and a timeval option of its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const _ as *const libc::c_void,
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let seq: u32 = 1;
    let mut req = Vec::with_capacity(NLMSG_HDR + IFINFOMSG);
    req.extend_from_slice(&((NLMSG_HDR + IFINFOMSG) as u32).to_ne_bytes());
    req.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifinfomsg: family, pad, type, index, flags, change.
    req.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    req.extend_from_slice(&(index as i32).to_ne_bytes());
    req.extend_from_slice(&[0; 8]);
    // SAFETY: req is a valid buffer of req.len() bytes; the kernel is the destination (pid 0).
    let sent = unsafe {
        let mut to: libc::sockaddr_nl = std::mem::zeroed();
        to.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
            &to as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error()).context("sending RTM_GETLINK");
    }
    let mut buf = vec![0u8; 64 * 1024];
    // A few messages at most (an error or the link); bounded in case of strays.
    for _ in 0..8 {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("reading the RTM_GETLINK reply");
        }
        let mut msgs = &buf[..n as usize];
        while msgs.len() >= NLMSG_HDR {
            let len = u32::from_ne_bytes(msgs[0..4].try_into()?) as usize;
            let ty = u16::from_ne_bytes(msgs[4..6].try_into()?);
            let msg_seq = u32::from_ne_bytes(msgs[8..12].try_into()?);
            if len < NLMSG_HDR || len > msgs.len() {
                bail!("a truncated netlink message");
            }
            let msg = &msgs[..len];
            msgs = &msgs[((len + 3) & !3).min(msgs.len())..];
            if msg_seq != seq {
                continue;
            }
            match ty {
                t if t == libc::NLMSG_ERROR as u16 => {
                    let code = i32::from_ne_bytes(msg[16..20].try_into()?);
                    return Err(anyhow!(io::Error::from_raw_os_error(-code)));
                }
                t if t == libc::RTM_NEWLINK && len >= NLMSG_HDR + IFINFOMSG => {
                    return Ok(msg.to_vec());
                }
                _ => {}
            }
        }
    }
    bail!("no RTM_NEWLINK in the kernel's reply")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_with_their_padding_and_flag_bits() {
        // IFLA_XDP (nested flag set) holding ATTACHED=1 (1 byte, padded) and PROG_ID=77.
        let mut nested = vec![5, 0, 2, 0, 1, 0, 0, 0];
        nested.extend_from_slice(&[8, 0, 4, 0]);
        nested.extend_from_slice(&77u32.to_ne_bytes());
        let mut buf = ((nested.len() + 4) as u16).to_ne_bytes().to_vec();
        buf.extend_from_slice(&(libc::IFLA_XDP | 0x8000).to_ne_bytes());
        buf.extend_from_slice(&nested);
        let outer: Vec<_> = attrs(&buf).collect();
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, libc::IFLA_XDP);
        let inner: Vec<_> = attrs(outer[0].1).collect();
        assert_eq!(inner, [(2, &[1u8][..]), (4, &77u32.to_ne_bytes()[..])]);
        // A length past the end stops the walk instead of reading beyond it.
        assert_eq!(attrs(&[200, 0, 1, 0, 0]).count(), 0);
    }

    #[test]
    fn lo_has_no_xdp_program_and_an_unknown_interface_is_an_error() {
        assert_eq!(attached_prog_ids("lo").unwrap(), Vec::<u32>::new());
        assert_eq!(check("lo").unwrap(), XdpState::Detached);
        let e = attached_prog_ids("no-such-if0").unwrap_err();
        assert!(format!("{e:#}").contains("no-such-if0"), "{e:#}");
    }
}
