//! Response rate limiting (RRL, in the manner of BIND's `rate-limit` and Knot's `mod-rrl`):
//! the map layouts of the XDP program's buckets and settings, and the one bucket rule both the
//! XDP program and userspace apply.
//!
//! A bucket is kept per (source prefix, response class). It follows the generic cell rate
//! algorithm: `tat` is the theoretical arrival time of the next response, moved on by
//! `interval_ns` (one second over the rate) per response sent; a response is limited when `tat`
//! is more than `tolerance_ns` (the window less one interval) ahead of now. So a quiet prefix
//! may burst `rate × window` responses, then `rate` a second. A bucket whose `tat` has passed
//! is the same as a new one, so buckets can be forgotten (LRU) without changing a verdict.
//! Every `slip`-th limited response is sent truncated (TC=1) instead of dropped.

/// Response class of a bucket: answers (NOERROR with data or NODATA, CHAOS).
pub const CLASS_ANSWER: u32 = 0;
/// Response class: referrals (NOERROR, no answer, not authoritative, with authority).
pub const CLASS_REFERRAL: u32 = 1;
/// Response class: NXDOMAIN.
pub const CLASS_NXDOMAIN: u32 = 2;
/// Response class: any other RCODE (REFUSED, SERVFAIL, FORMERR...).
pub const CLASS_ERROR: u32 = 3;

/// The class of a response with these header flags (RCODE in the low 4 bits).
#[inline(always)]
pub const fn class(header_flags: u16, referral: bool) -> u32 {
    match header_flags & 0xf {
        3 => CLASS_NXDOMAIN,
        0 if referral => CLASS_REFERRAL,
        0 => CLASS_ANSWER,
        _ => CLASS_ERROR,
    }
}

/// What the XDP program's packet path returns for a response it sent truncated (not an
/// `AnswerKind`), counted `rrl_slipped`.
pub const KIND_SLIPPED: u16 = 0x100;

/// `RrlConfig::flags` bit: rate limiting is on.
pub const RRL_ENABLED: u32 = 1;
/// `RrlConfig::flags` bit: count what would be limited, limit nothing.
pub const RRL_DRY_RUN: u32 = 2;
/// `RrlConfig::flags` bit, honoured only by the test build of the XDP program: the clock is
/// `test_now_ns`, not `bpf_ktime_get_ns()`.
pub const RRL_TEST_FIXED_TIME: u32 = 4;

/// Capacity of the XDP program's bucket map (an LRU hash: the least recently used buckets go
/// first, which loses nothing, see the module comment).
pub const RRL_BUCKETS_CAPACITY: u32 = 1 << 16;
/// Capacity of the exempt prefix trie.
pub const RRL_EXEMPT_CAPACITY: u32 = 1024;

/// Settings of the XDP program's rate limiting (index 0 of the `RRL` array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlConfig {
    /// `RRL_*` bits.
    pub flags: u32,
    /// Every `slip`-th limited response is truncated, the rest dropped; 0: all dropped.
    pub slip: u32,
    /// One second over the rate, in nanoseconds.
    pub interval_ns: u64,
    /// How far ahead of now a bucket may run: the window less one interval.
    pub tolerance_ns: u64,
    /// The clock under `RRL_TEST_FIXED_TIME`.
    pub test_now_ns: u64,
    /// Mask of an IPv4 source (mapped into IPv6, `::ffff:a.b.c.d`) to its prefix.
    pub v4_mask: [u8; 16],
    /// Mask of an IPv6 source to its prefix.
    pub v6_mask: [u8; 16],
}

/// Key of a bucket: the source prefix (IPv4 mapped into IPv6, masked) and response class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RrlKey {
    pub prefix: [u8; 16],
    pub class: u32,
}

/// A bucket: see the module comment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlBucket {
    /// Theoretical arrival time of the next response, in nanoseconds of the limiter's clock.
    pub tat: u64,
    /// Limited responses so far (for `slip`).
    pub limited: u32,
    pub _pad: u32,
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Limited: send it truncated (TC=1, header, question and OPT).
    Slip,
    /// Limited: send nothing.
    Drop,
}

/// The bucket rule: accounts one response at `now` in `b` (a new bucket is
/// `RrlBucket::default()`, which any `now` has passed) and says what to do with it.
#[inline(always)]
pub fn account(
    b: &mut RrlBucket,
    now: u64,
    interval_ns: u64,
    tolerance_ns: u64,
    slip: u32,
) -> Verdict {
    let tat = if b.tat > now { b.tat } else { now };
    if tat - now <= tolerance_ns {
        b.tat = tat + interval_ns;
        return Verdict::Send;
    }
    b.limited = b.limited.wrapping_add(1);
    if slip != 0 && b.limited.is_multiple_of(slip) {
        Verdict::Slip
    } else {
        Verdict::Drop
    }
}

/// The masks of the first `bits` bits of an address (`bits` ≤ 128).
pub const fn prefix_mask(bits: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let start = (i * 8) as u32;
        m[i] = if bits >= start + 8 {
            0xff
        } else if bits > start {
            0xffu8 << (8 - (bits - start))
        } else {
            0
        };
        i += 1;
    }
    m
}

/// The bucket key of `addr` (IPv6, or IPv4 mapped into IPv6) under `mask`.
#[inline(always)]
pub fn key(addr: &[u8; 16], mask: &[u8; 16], class: u32) -> RrlKey {
    let mut prefix = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        prefix[i] = addr[i] & mask[i];
        i += 1;
    }
    RrlKey { prefix, class }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_rate_times_window_then_slips_every_nth() {
        let interval = 100_000_000; // 10 per second
        let tolerance = 2 * 1_000_000_000 - interval; // window 2 s: burst 20
        let mut b = RrlBucket::default();
        let now = 5_000_000_000;
        for i in 0..20 {
            assert_eq!(
                account(&mut b, now, interval, tolerance, 2),
                Verdict::Send,
                "{i}"
            );
        }
        let v: [Verdict; 4] =
            core::array::from_fn(|_| account(&mut b, now, interval, tolerance, 2));
        assert_eq!(
            v,
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // One interval later, one more is sent.
        assert_eq!(
            account(&mut b, now + interval, interval, tolerance, 2),
            Verdict::Send
        );
        assert_eq!(
            account(&mut b, now + interval, interval, tolerance, 0),
            Verdict::Drop
        );
    }

    #[test]
    fn masks_and_classes() {
        assert_eq!(prefix_mask(0), [0; 16]);
        assert_eq!(prefix_mask(128), [0xff; 16]);
        let m = prefix_mask(96 + 24);
        assert_eq!(&m[12..], &[0xff, 0xff, 0xff, 0]);
        assert_eq!(prefix_mask(57)[7], 0x80);
        assert_eq!(class(0x8400, false), CLASS_ANSWER);
        assert_eq!(class(0x8000, true), CLASS_REFERRAL);
        assert_eq!(class(0x8403, false), CLASS_NXDOMAIN);
        assert_eq!(class(0x8005, false), CLASS_ERROR);
    }
}
