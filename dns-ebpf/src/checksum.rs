//! Internet checksum (RFC 1071) arithmetic in memory byte order.
//!
//! Every partial sum here adds 16-bit words loaded in the machine's native order, which is what
//! `bpf_csum_diff` returns too. The folded, complemented result is stored back in native order.

/// Adds a 16-bit field whose numeric value is `v` (as written in network order on the wire).
#[inline(always)]
pub fn field(v: u16) -> u64 {
    v.to_be() as u64
}

/// Adds two raw bytes as they sit in memory.
#[inline(always)]
pub fn bytes(a: u8, b: u8) -> u64 {
    u16::from_ne_bytes([a, b]) as u64
}

/// Folds a partial sum to 16 bits.
#[inline(always)]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The sum of a segment that starts at an odd offset is the byte swap of its even-aligned sum.
#[inline(always)]
pub fn at_parity(folded: u16, odd: bool) -> u64 {
    if odd {
        folded.swap_bytes() as u64
    } else {
        folded as u64
    }
}

/// Final checksum value to store (native order).
#[inline(always)]
pub fn finish(sum: u64) -> u16 {
    !fold(sum)
}
