//! Internet checksum (RFC 1071) arithmetic in memory byte order.
//!
//! Every partial sum here adds 16-bit words loaded in the machine's native order, which is what
//! `bpf_csum_diff` returns too. The folded, complemented result is stored back in native order.

use aya_ebpf::helpers::bpf_csum_diff;
use dns_common::counter;

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

/// Folded sum of the first `len` bytes at `buf`, taken over whole 4-byte words; the bytes
/// after `len` up to the next word must be zero. `cap` (a multiple of 4, at most 512) bounds
/// the words read, and `buf` must hold that many bytes.
#[inline(always)]
pub fn words(buf: *mut u8, len: usize, cap: u32) -> Result<u16, u32> {
    let size = ((len as u32 + 3) & !3) & 0x1fc;
    let size = if size > cap { cap } else { size };
    // SAFETY: the caller's buffer holds `cap` bytes, and size ≤ cap is a multiple of 4.
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, buf as *mut u32, size, 0) };
    if s < 0 {
        return Err(counter::PASS_ERROR);
    }
    Ok(fold(s as u64))
}
