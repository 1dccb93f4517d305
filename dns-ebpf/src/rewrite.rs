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
//! (IPv4, 0), with a partial one (checksum offload: see `kept_sum`), or whose OPT record has
//! options whose sum the walk did not take (`edns::Options::rdata_sum`), is summed in full
//! (`full_sum`). The IPv4 header
//! checksum is updated the same way: only the total length and the TTL change.

use aya_ebpf::programs::XdpContext;
use dns_common::{counter, OPT_LEN};

use crate::{checksum, packet::ptr_at};

const IPPROTO_UDP: u8 = 17;
/// TTL / hop limit of responses.
const TTL: u8 = 64;

/// What the response shares with the query, as a partial sum taken from the query's UDP
/// checksum (see the module doc): the query (IP header at `l3`, UDP header at `l4`) has a
/// question name of `name_len` octets, `dns_len` DNS octets, the header `flags` and `arcount`,
/// and an OPT record right after the question when `edns`, its RDATA summing to `rdata_sum`.
/// `None` when the query's checksum cannot stand for it: absent, options in its OPT record
/// whose sum is not known, or a partial checksum.
///
/// A partial checksum: a query sent from this host's own stack or a virtual machine's, with
/// the checksum left to the hardware (CHECKSUM_PARTIAL, as over veth), carries only the sum
/// of its pseudo-header in the field. Such a field is taken for one, and the answer summed in
/// full; so is a right checksum that happens to equal it, which is never wrong.
#[inline(always)]
pub fn kept_sum(
    ctx: &XdpContext,
    (l3, l4, v6): (usize, usize, bool),
    name_len: usize,
    dns_len: usize,
    (edns, rdata_sum): (bool, Option<u16>),
    header: (u16, u16),
) -> Result<Option<u64>, u32> {
    let p: *const [u8; 2] = ptr_at(ctx, l4 + 6)?;
    // SAFETY: bounds checked by ptr_at.
    let csum = u16::from_ne_bytes(unsafe { p.read_unaligned() });
    let udp_len = (dns_len + 8) as u16;
    let pseudo =
        addresses(ctx, l3, v6)? + checksum::field(IPPROTO_UDP as u16) + checksum::field(udp_len);
    if csum == 0 || csum == checksum::fold(pseudo) {
        return Ok(None);
    }
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
        // Options whose sum the walk did not take (`edns::Options::rdata_sum`).
        let Some(rdata) = rdata_sum else {
            return Ok(None);
        };
        let s = checksum::bytes(o[0], o[1])
            + checksum::bytes(o[2], o[3])
            + checksum::bytes(o[4], o[5])
            + checksum::bytes(o[6], o[7])
            + checksum::bytes(o[8], o[9])
            + checksum::bytes(o[10], 0)
            // The RDATA, right after (an odd offset of the record).
            + checksum::at_parity(rdata, true);
        let opt = checksum::at_parity(checksum::fold(s), name_len & 1 == 1) as u16;
        sum += !opt as u64;
    }
    Ok(Some(sum))
}

/// The partial sum of the same fields as `kept_sum`'s, from the query's own: the question
/// (summed by the caller: `question`), ID, QDCOUNT, the protocol, and the addresses (IP header
/// at `l3`) and ports (UDP header at `l4`), which the swaps leave the same in the sum.
#[inline(always)]
pub fn full_sum(
    ctx: &XdpContext,
    (l3, l4, v6): (usize, usize, bool),
    question: u16,
    id: [u8; 2],
) -> Result<u64, u32> {
    let mut sum = question as u64
        + checksum::bytes(id[0], id[1])
        + checksum::field(1)
        + checksum::field(IPPROTO_UDP as u16);
    sum += addresses(ctx, l3, v6)?;
    let u: *const [u8; 4] = ptr_at(ctx, l4)?;
    // SAFETY: bounds checked by ptr_at.
    let u = unsafe { u.read_unaligned() };
    Ok(sum + checksum::bytes(u[0], u[1]) + checksum::bytes(u[2], u[3]))
}

/// The sum of the source and destination addresses of the IP header at `l3` (next to each
/// other in both versions), the same before and after they are swapped.
#[inline(always)]
fn addresses(ctx: &XdpContext, l3: usize, v6: bool) -> Result<u64, u32> {
    Ok(if v6 {
        pairs::<32>(ptr_at(ctx, l3 + 8)?)
    } else {
        pairs::<8>(ptr_at(ctx, l3 + 12)?)
    })
}

/// The sum of the `N` (even) octets at `p`.
#[inline(always)]
fn pairs<const N: usize>(p: *const [u8; N]) -> u64 {
    // SAFETY: the caller checked the bounds (ptr_at).
    let b = unsafe { p.read_unaligned() };
    let mut sum = 0u64;
    let mut i = 0;
    while i + 1 < N {
        sum += checksum::bytes(b[i], b[i + 1]);
        i += 2;
    }
    sum
}

/// Swaps the `N` octets at `a` with the `N` after them.
///
/// # Safety
/// `a` must point at `2N` octets of the packet, bounds checked.
#[inline(always)]
unsafe fn swap_halves<const N: usize>(a: *mut u8) {
    let x = (a as *const [u8; N]).read_unaligned();
    let y = (a.add(N) as *const [u8; N]).read_unaligned();
    (a as *mut [u8; N]).write_unaligned(y);
    (a.add(N) as *mut [u8; N]).write_unaligned(x);
}

/// Swaps source and destination MAC addresses.
#[inline(always)]
pub fn swap_link(ctx: &XdpContext) -> Result<(), u32> {
    let eth: *mut [u8; 12] = ptr_at(ctx, 0).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    unsafe { swap_halves::<6>(eth as *mut u8) };
    Ok(())
}

/// Rewrites the IPv4 header in place: addresses swapped, total length and TTL set, and its
/// checksum updated for those two (RFC 1624).
#[inline(always)]
pub fn swap_ipv4(ctx: &XdpContext, l3: usize, udp_len: u16) -> Result<(), u32> {
    let p: *mut [u8; 20] = ptr_at(ctx, l3).map_err(|_| counter::PASS_ERROR)?;
    let p = p as *mut u8;
    let total = (udp_len + 20).to_be_bytes();
    // SAFETY: bounds checked by ptr_at: 20 octets at p.
    unsafe {
        let word = |i: usize| !u16::from_ne_bytes([*p.add(i), *p.add(i + 1)]) as u64;
        let sum = word(10)
            + word(2)
            + word(8)
            + checksum::bytes(total[0], total[1])
            + checksum::bytes(TTL, *p.add(9));
        let c = checksum::finish(sum).to_ne_bytes();
        *p.add(2) = total[0];
        *p.add(3) = total[1];
        *p.add(8) = TTL;
        *p.add(10) = c[0];
        *p.add(11) = c[1];
        swap_halves::<4>(p.add(12));
    }
    Ok(())
}

/// Rewrites the IPv6 header in place: addresses swapped, payload length and hop limit set.
#[inline(always)]
pub fn swap_ipv6(ctx: &XdpContext, l3: usize, udp_len: u16) -> Result<(), u32> {
    let p: *mut [u8; 40] = ptr_at(ctx, l3).map_err(|_| counter::PASS_ERROR)?;
    let p = p as *mut u8;
    let plen = udp_len.to_be_bytes();
    // SAFETY: bounds checked by ptr_at: 40 octets at p.
    unsafe {
        *p.add(4) = plen[0];
        *p.add(5) = plen[1];
        *p.add(7) = TTL;
        swap_halves::<16>(p.add(8));
    }
    Ok(())
}

/// Swaps the UDP ports, sets the length and the checksum, of which `sum` is the whole sum.
#[inline(always)]
pub fn swap_udp(ctx: &XdpContext, l4: usize, udp_len: u16, sum: u64) -> Result<(), u32> {
    let p: *mut [u8; 8] = ptr_at(ctx, l4).map_err(|_| counter::PASS_ERROR)?;
    // SAFETY: bounds checked by ptr_at.
    let u = unsafe { p.read_unaligned() };
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
