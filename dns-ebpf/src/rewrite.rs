//! The rewrite of a query frame's headers into its response's: MAC addresses, IP addresses and
//! UDP ports swapped, lengths and TTL set, and both checksums updated from the query's own
//! (RFC 1624) rather than summed again.
//!
//! The response's UDP checksum: what the response shares with the query (addresses and ports,
//! which a swap does not change in the sum, the ID, QDCOUNT and the question) is taken from
//! the query's UDP checksum, less the fields that change (flags, ARCOUNT, the lengths, the
//! query's OPT record); the rest is added from the response's fields. So the question is not
//! summed per query. This holds when the query's checksum is right: a query whose UDP checksum
//! is wrong gets a response whose checksum is wrong by as much, which the client drops, as its
//! kernel would have dropped the query had it reached a socket. A query without a UDP checksum
//! (IPv4, 0), or whose OPT record has options (their sum is not at hand), is summed in full
//! (`full_sum`). The IPv4 header checksum is updated the same way: only the total length and
//! the TTL change.

use aya_ebpf::programs::XdpContext;
use dns_common::{counter, OPT_LEN};

use crate::{checksum, packet::ptr_at};

const IPPROTO_UDP: u8 = 17;
/// TTL / hop limit of responses.
const TTL: u8 = 64;

/// What the response shares with the query, as a partial sum taken from the query's UDP
/// checksum (see the module doc): the query at `l4` has its DNS message at `l4 + 8`, a question
/// name of `name_len` octets, `dns_len` DNS octets, the header `flags` and `arcount`, and an
/// OPT record right after the question when `edns`. `None` when the query's checksum cannot
/// stand for it (absent, or options in its OPT record).
#[inline(always)]
pub fn kept_sum(
    ctx: &XdpContext,
    l4: usize,
    name_len: usize,
    dns_len: usize,
    edns: bool,
    header: (u16, u16),
) -> Result<Option<u64>, u32> {
    let p: *const [u8; 2] = ptr_at(ctx, l4 + 6)?;
    // SAFETY: bounds checked by ptr_at.
    let csum = u16::from_ne_bytes(unsafe { p.read_unaligned() });
    if csum == 0 {
        return Ok(None);
    }
    let udp_len = (dns_len + 8) as u16;
    let (flags, arcount) = header;
    // The fields that change, taken out (adding a complement subtracts, RFC 1624 eqn. 3);
    // ANCOUNT and NSCOUNT were 0 in the query.
    let mut sum = !csum as u64
        + checksum::field(!udp_len)
        + checksum::field(!udp_len)
        + checksum::field(!flags)
        + checksum::field(!arcount);
    if edns {
        let at = l4 + 8 + 12 + name_len + 4;
        let o: *const [u8; OPT_LEN] = ptr_at(ctx, at)?;
        // SAFETY: bounds checked by ptr_at.
        let o = unsafe { o.read_unaligned() };
        if o[9] != 0 || o[10] != 0 {
            return Ok(None);
        }
        let s = checksum::bytes(o[0], o[1])
            + checksum::bytes(o[2], o[3])
            + checksum::bytes(o[4], o[5])
            + checksum::bytes(o[6], o[7])
            + checksum::bytes(o[8], o[9])
            + checksum::bytes(o[10], 0);
        let opt = checksum::at_parity(checksum::fold(s), name_len & 1 == 1) as u16;
        sum += !opt as u64;
    }
    Ok(Some(sum))
}

/// The partial sum of the same fields as `kept_sum`'s, from the response's own: the question
/// (summed by the caller: `question`), ID, QDCOUNT, the protocol, and the addresses and ports
/// that `swap_udp` adds (`Swap::full`).
#[inline(always)]
pub fn full_sum(question: u16, id: [u8; 2]) -> u64 {
    question as u64
        + checksum::bytes(id[0], id[1])
        + checksum::field(1)
        + checksum::field(IPPROTO_UDP as u16)
}

/// Swaps source and destination MAC addresses.
#[inline(always)]
pub fn swap_link(ctx: &XdpContext) -> Result<(), u32> {
    let eth: *mut [u8; 12] = ptr_at(ctx, 0).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    unsafe {
        let m = eth.read_unaligned();
        let mut out = [0u8; 12];
        out[..6].copy_from_slice(&m[6..]);
        out[6..].copy_from_slice(&m[..6]);
        eth.write_unaligned(out);
    }
    Ok(())
}

/// Rewrites the IPv4 header (addresses swapped, total length and TTL set, its checksum
/// updated, RFC 1624); returns the pseudo-header address sum for a UDP checksum summed in full.
#[inline(always)]
pub fn swap_ipv4(ctx: &XdpContext, l3: usize, udp_len: u16) -> Result<u64, u32> {
    let p: *mut [u8; 20] = ptr_at(ctx, l3).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    let mut ip = unsafe { p.read_unaligned() };
    let total = (udp_len + 20).to_be_bytes();
    let sum = !u16::from_ne_bytes([ip[10], ip[11]]) as u64
        + !u16::from_ne_bytes([ip[2], ip[3]]) as u64
        + !u16::from_ne_bytes([ip[8], ip[9]]) as u64
        + checksum::bytes(total[0], total[1])
        + checksum::bytes(TTL, ip[9]);
    ip[2] = total[0];
    ip[3] = total[1];
    ip[8] = TTL;
    let c = checksum::finish(sum).to_ne_bytes();
    ip[10] = c[0];
    ip[11] = c[1];
    let mut addrs = 0u64;
    let mut i = 12;
    while i < 16 {
        let s = ip[i];
        ip[i] = ip[i + 4];
        ip[i + 4] = s;
        let s = ip[i + 1];
        ip[i + 1] = ip[i + 5];
        ip[i + 5] = s;
        addrs += checksum::bytes(ip[i], ip[i + 1]) + checksum::bytes(ip[i + 4], ip[i + 5]);
        i += 2;
    }
    // SAFETY: bounds checked by ptr_at.
    unsafe { p.write_unaligned(ip) };
    Ok(addrs)
}

/// Rewrites the IPv6 header; returns the pseudo-header address sum for a UDP checksum summed
/// in full.
#[inline(always)]
pub fn swap_ipv6(ctx: &XdpContext, l3: usize, udp_len: u16) -> Result<u64, u32> {
    let p: *mut [u8; 40] = ptr_at(ctx, l3).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    let mut ip = unsafe { p.read_unaligned() };
    let plen = udp_len.to_be_bytes();
    ip[4] = plen[0];
    ip[5] = plen[1];
    ip[7] = TTL;
    let mut addrs = 0u64;
    let mut i = 8;
    while i < 24 {
        let s = ip[i];
        ip[i] = ip[i + 16];
        ip[i + 16] = s;
        let s = ip[i + 1];
        ip[i + 1] = ip[i + 17];
        ip[i + 17] = s;
        addrs += checksum::bytes(ip[i], ip[i + 1]) + checksum::bytes(ip[i + 16], ip[i + 17]);
        i += 2;
    }
    // SAFETY: bounds checked by ptr_at.
    unsafe { p.write_unaligned(ip) };
    Ok(addrs)
}

/// Swaps the UDP ports, sets the length and the checksum: `sum` covers everything else, except
/// the addresses and ports when `full` (a sum not taken from the query's checksum) has them
/// to add (the address sum).
#[inline(always)]
pub fn swap_udp(
    ctx: &XdpContext,
    l4: usize,
    udp_len: u16,
    mut sum: u64,
    full: Option<u64>,
) -> Result<(), u32> {
    let p: *mut [u8; 8] = ptr_at(ctx, l4).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    let u = unsafe { p.read_unaligned() };
    if let Some(addrs) = full {
        sum += addrs + checksum::bytes(u[0], u[1]) + checksum::bytes(u[2], u[3]);
    }
    let mut c = checksum::finish(sum);
    if c == 0 {
        c = 0xffff;
    }
    let c = c.to_ne_bytes();
    let l = udp_len.to_be_bytes();
    // SAFETY: bounds checked by ptr_at.
    unsafe { p.write_unaligned([u[2], u[3], u[0], u[1], l[0], l[1], c[0], c[1]]) };
    Ok(())
}
