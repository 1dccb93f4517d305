//! `xdp_reflect`: a trivial DNS "server" for measuring the load generator's own ceiling
//! (`cargo xtask bench`). It turns every UDP packet to port 53 straight around: MACs, IP
//! addresses and UDP ports swapped, the DNS QR bit set (UDP checksum updated incrementally,
//! RFC 1624), `XDP_TX`. Everything else is passed. No maps, no helpers, no calls: the bench
//! loads it with a minimal loader that does no relocations.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

const ETH_HEADER: usize = 14;
const IPV4_MIN: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
const DNS_HEADER: usize = 12;

#[xdp]
pub fn xdp_reflect(ctx: XdpContext) -> u32 {
    match reflect(&ctx) {
        Some(()) => xdp_action::XDP_TX,
        None => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn load16(p: usize) -> u16 {
    // SAFETY: every caller has checked p + 2 <= data_end.
    unsafe { (p as *const u16).read_unaligned() }
}

#[inline(always)]
fn store16(p: usize, v: u16) {
    // SAFETY: every caller has checked p + 2 <= data_end.
    unsafe { (p as *mut u16).write_unaligned(v) }
}

#[inline(always)]
fn load32(p: usize) -> u32 {
    // SAFETY: every caller has checked p + 4 <= data_end.
    unsafe { (p as *const u32).read_unaligned() }
}

#[inline(always)]
fn store32(p: usize, v: u32) {
    // SAFETY: every caller has checked p + 4 <= data_end.
    unsafe { (p as *mut u32).write_unaligned(v) }
}

/// Swaps `words` 32-bit words at `a` with those at `b`.
#[inline(always)]
fn swap32(a: usize, b: usize, words: usize) {
    let mut i = 0;
    while i < words {
        let x = load32(a + 4 * i);
        store32(a + 4 * i, load32(b + 4 * i));
        store32(b + 4 * i, x);
        i += 1;
    }
}

#[inline(always)]
fn reflect(ctx: &XdpContext) -> Option<()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + ETH_HEADER > end {
        return None;
    }
    let ethertype = u16::from_be(load16(start + 12));
    let (l3, l4, v6) = match ethertype {
        0x0800 => {
            if start + ETH_HEADER + IPV4_MIN > end {
                return None;
            }
            // SAFETY: bounds checked above.
            let ver_ihl = unsafe { *((start + ETH_HEADER) as *const u8) };
            let ihl = ((ver_ihl & 0x0f) as usize) * 4;
            let proto = unsafe { *((start + ETH_HEADER + 9) as *const u8) };
            let frag = u16::from_be(load16(start + ETH_HEADER + 6)) & 0x3fff;
            if ver_ihl >> 4 != 4 || ihl < IPV4_MIN || proto != 17 || frag != 0 {
                return None;
            }
            (start + ETH_HEADER, start + ETH_HEADER + ihl, false)
        }
        0x86dd => {
            if start + ETH_HEADER + IPV6_HEADER > end {
                return None;
            }
            // SAFETY: bounds checked above.
            let next = unsafe { *((start + ETH_HEADER + 6) as *const u8) };
            if next != 17 {
                return None;
            }
            (start + ETH_HEADER, start + ETH_HEADER + IPV6_HEADER, true)
        }
        _ => return None,
    };
    if l4 + UDP_HEADER + DNS_HEADER > end {
        return None;
    }
    if u16::from_be(load16(l4 + 2)) != 53 {
        return None;
    }
    let flags_at = l4 + UDP_HEADER + 2;
    let flags = u16::from_be(load16(flags_at));
    if flags & 0x8000 != 0 {
        // Already a response: never bounce it back.
        return None;
    }

    // Ethernet: destination <-> source (6 octets each, as 4 + 2).
    let d0 = load32(start);
    let d1 = load16(start + 4);
    let s0 = load32(start + 6);
    let s1 = load16(start + 10);
    store32(start, s0);
    store16(start + 4, s1);
    store32(start + 6, d0);
    store16(start + 10, d1);

    // Addresses: swapping them leaves both the IPv4 and the UDP checksum unchanged.
    if v6 {
        swap32(l3 + 8, l3 + 24, 4);
    } else {
        swap32(l3 + 12, l3 + 16, 1);
    }
    let sport = load16(l4);
    store16(l4, load16(l4 + 2));
    store16(l4 + 2, sport);

    // QR=1, and the UDP checksum follows (RFC 1624 eqn. 3). IPv4 checksum 0 means "none".
    let new_flags = flags | 0x8000;
    store16(flags_at, new_flags.to_be());
    let csum = u16::from_be(load16(l4 + 6));
    if v6 || csum != 0 {
        let mut sum = (!csum) as u32 + (!flags) as u32 + new_flags as u32;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let mut out = !(sum as u16);
        if out == 0 {
            out = 0xffff;
        }
        store16(l4 + 6, out.to_be());
    }
    Some(())
}
