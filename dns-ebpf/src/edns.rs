//! The EDNS options of a query (RFC 6891 §6.1.2) and the OPT record of its answer, as the
//! engine treats them: NSID (RFC 5001) gets the instance's NSID, COOKIE (RFC 7873) a fresh
//! server cookie (`cookie`), and every other option is ignored — except EXPIRE (RFC 7314),
//! which userspace answers for secondary zones (passed). Where the engine answers with an
//! error the OPT record decides, the answer is that error, with the question and an empty
//! body (`Built::rcode`, written by `packet` without a template): FORMERR for a malformed
//! COOKIE (RFC 7873 §5.2.2; its OPT has NSID when asked, no COOKIE), BADCOOKIE under
//! `require-cookie` for a COOKIE without a valid server cookie (§5.2.3; NSID, and COOKIE with
//! a fresh server cookie); BADVERS for an EDNS version other than 0 (RFC 6891 §6.1.3, before
//! the cookie's verdict; the OPT as the options give it). A repeated COOKIE is passed. The answer's options are NSID, then
//! COOKIE, the engine's order.
//!
//! The cookies' clock is `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) plus the offset to the wall
//! clock that userspace keeps in `EdnsConfig::clock_offset_ns`; the test build may take a fixed
//! second from the configuration instead (`EDNS_TEST_FIXED_TIME`).

use aya_ebpf::programs::XdpContext;
use dns_common::{
    counter, opt_record, EdnsConfig, Scratch, COOKIE_MAX, EDNS_CONFIGURED, EDNS_COOKIES,
    EDNS_MAX_OPTIONS, EDNS_NSID, EDNS_NSID_TOO_LONG, EDNS_REQUIRE_COOKIE, NSID_AT, NSID_MAX,
    NSID_WORDS, OPTION_COOKIE, OPTION_EXPIRE, OPTION_NSID, OPT_BUF, OPT_LEN, SERVER_COOKIE_LEN,
};

use crate::{checksum, cookie, question::opaque, EDNS};

/// The options of a query that change its answer.
#[derive(Clone, Copy)]
pub struct Options {
    /// NSID was asked for.
    pub nsid: bool,
    /// The OPT record's EDNS version is not 0: BADVERS (RFC 6891 §6.1.3), whatever the
    /// options, with the OPT record they give.
    pub badvers: bool,
    /// Length of the COOKIE option data, the first octets of which (client cookie and an RFC
    /// 9018 server cookie) are copied to `Scratch::cookie`; 0 when there is none,
    /// `COOKIE_MALFORMED` for one of a length the engine answers with FORMERR.
    pub cookie_len: usize,
    /// The folded checksum sum of the OPT RDATA (RFC 1071, from an even offset), when the
    /// walk read all of it (option headers, and cookies of 8 or 24 octets: the usual
    /// clients'), so that the answer's UDP checksum is still taken from the query's
    /// (`rewrite::kept_sum`).
    pub rdata_sum: Option<u16>,
}

impl Options {
    pub const NONE: Options = Options {
        badvers: false,
        nsid: false,
        cookie_len: 0,
        rdata_sum: Some(0),
    };
}

/// `Options::cookie_len` of a COOKIE of fewer than 8, 9 to 15, or more than `COOKIE_MAX`
/// octets (RFC 7873 §5.2.2): above `COOKIE_MAX`, within the 6 bits the programs keep.
pub const COOKIE_MALFORMED: usize = 0x3f;

const _: () = assert!(COOKIE_MAX < COOKIE_MALFORMED);

/// RCODE FORMERR (RFC 1035 §4.1.1).
pub const RCODE_FORMERR: u32 = 1;
/// Extended RCODE BADCOOKIE (RFC 7873 §8): 7 in the header, 1 in the OPT record.
pub const RCODE_BADCOOKIE: u32 = 23;
/// Extended RCODE BADVERS (RFC 6891 §9): 0 in the header, 1 in the OPT record.
pub const RCODE_BADVERS: u32 = 16;

/// The COOKIE data's first three little-endian words (client cookie, server cookie).
#[inline(always)]
fn cookie_words(c: &[u8; COOKIE_READ]) -> [u64; 3] {
    let mut w = [0u64; 3];
    for (i, word) in w.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&c[8 * i..8 * i + 8]);
        *word = u64::from_le_bytes(b);
    }
    w
}

/// The sum of the first `n` (even) octets of `b`.
#[inline(always)]
fn pairs<const N: usize>(b: &[u8; N], n: usize) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i + 1 < N && i + 1 < n {
        sum += checksum::bytes(b[i], b[i + 1]);
        i += 2;
    }
    sum
}

/// Octets of a COOKIE option's data the program reads: the client cookie and a server cookie
/// of our kind (a longer one is never ours; only its client cookie is used).
const COOKIE_READ: usize = 8 + SERVER_COOKIE_LEN;

/// `Scratch`'s size: an offset into it (`at`) plus the octets read there must stay below it.
const SCRATCH_LEN: usize = core::mem::size_of::<Scratch>();

/// The octets `at..at + N` of scratch space (an offset from its start, where the query's OPT
/// record was copied: `question::read`), or `Err` when that is not inside it.
#[inline(always)]
pub fn copied<const N: usize>(scratch: &mut Scratch, at: usize) -> Result<[u8; N], u32> {
    // Through memory, and compared as it is (not `at + N`): the verifier then bounds the
    // offset added, not one the compiler derived it from.
    let at = opaque(&mut scratch.opaque, at);
    if at > SCRATCH_LEN - N {
        return Err(counter::PASS_ERROR);
    }
    // SAFETY: at + N ≤ size of Scratch, checked above.
    Ok(unsafe {
        ((scratch as *const Scratch as *const u8).add(at) as *const [u8; N]).read_unaligned()
    })
}

/// Walks the `len` octets of OPT RDATA copied at scratch offset `at` (see `copied`), at most
/// `EDNS_MAX_OPTIONS` options, without a helper call.
#[inline(always)]
pub fn walk(scratch: &mut Scratch, at: usize, len: usize) -> Result<Options, u32> {
    let mut o = Options::NONE;
    let mut p = 0usize;
    // The RDATA's sum, and whether all of it was read (bit 32).
    let mut sum = 1u64 << 32;
    for _ in 0..EDNS_MAX_OPTIONS {
        // Through memory: every iteration then starts from the same verifier state whatever
        // the options before were, so that the paths are pruned instead of multiplied.
        p = opaque(&mut scratch.opaque, p) & 0x1ffff;
        o.nsid = opaque(&mut scratch.opaque, o.nsid as usize) != 0;
        o.cookie_len = opaque(&mut scratch.opaque, o.cookie_len) & 0x3f;
        if p >= len {
            break;
        }
        if p + 4 > len {
            return Err(counter::PASS_MALFORMED);
        }
        let h = copied::<4>(scratch, at + p)?;
        let code = u16::from_be_bytes([h[0], h[1]]);
        let olen = u16::from_be_bytes([h[2], h[3]]) as usize;
        if p + 4 + olen > len {
            return Err(counter::PASS_MALFORMED);
        }
        // This option's octets summed as they are read (at the parity of its offset); one
        // whose data is not read leaves the RDATA's sum unknown.
        let mut part = pairs(&h, 4);
        let mut read = olen == 0;
        match code {
            OPTION_NSID => o.nsid = true,
            OPTION_COOKIE => {
                // Repeated: userspace answers (the engine reads the first).
                if o.cookie_len != 0 {
                    return Err(counter::PASS_COOKIE);
                }
                if olen < 8 || (olen > 8 && olen < 16) || olen > COOKIE_MAX {
                    // Malformed: FORMERR (RFC 7873 §5.2.2) when cookies are on
                    // (`answer_opt`); its data is not read.
                    o.cookie_len = COOKIE_MALFORMED;
                } else {
                    // Octets after a shorter cookie are copied too, never read
                    // (`cookie::answer`).
                    let c = copied::<COOKIE_READ>(scratch, at + p + 4)?;
                    let w = cookie_words(&c);
                    // SAFETY: `Scratch::cookie` is 8-byte aligned (an assertion in
                    // dns_common) and holds COOKIE_MAX ≥ 24 octets.
                    unsafe { (scratch.cookie.as_mut_ptr() as *mut [u64; 3]).write(w) };
                    o.cookie_len = olen;
                    if olen == 8 || olen == COOKIE_READ {
                        let words = if olen == 8 { 1 } else { 3 };
                        for (i, x) in w.iter().enumerate() {
                            if i < words {
                                part += cookie::word_sum(*x);
                            }
                        }
                        read = true;
                    }
                }
            }
            // Userspace adds EXPIRE to SOA answers of secondary zones.
            OPTION_EXPIRE => return Err(counter::PASS_EDNS_OPTION),
            _ => {}
        }
        let part = checksum::at_parity(checksum::fold(part), p & 1 == 1);
        sum = if read { sum + part } else { 0 };
        sum = opaque(&mut scratch.opaque, sum as usize) as u64;
        p += 4 + olen;
    }
    if p != len {
        return Err(counter::PASS_EDNS_OPTION);
    }
    o.rdata_sum = (sum >> 32 != 0).then(|| checksum::fold(sum & 0xffff_ffff));
    Ok(o)
}

/// The cookies' clock, in seconds since the epoch: CLOCK_MONOTONIC_COARSE (no clock source
/// read, which a virtual machine may trap; it lags the fine clock by less than a tick) plus
/// the offset to the wall clock, counted from the second userspace last marked.
#[inline(always)]
fn now(cfg: &EdnsConfig) -> u32 {
    #[cfg(feature = "test-programs")]
    if cfg.flags & dns_common::EDNS_TEST_FIXED_TIME != 0 {
        return cfg.test_time;
    }
    // SAFETY: plain helper call.
    let mono = unsafe { aya_ebpf::helpers::bpf_ktime_get_coarse_ns() };
    // Counted from the second userspace marked (it does every second): no 64-bit division,
    // tens of cycles. The same second as the division's.
    let d = mono.wrapping_sub(cfg.tick_ns);
    if cfg.tick_second != 0 {
        for k in 1..=3u32 {
            if d < k as u64 * 1_000_000_000 {
                return cfg.tick_second + (k - 1);
            }
        }
    }
    (mono.wrapping_add(cfg.clock_offset_ns) / 1_000_000_000) as u32
}

/// The answer's OPT record as `answer_opt` left it in `Scratch::opt`.
pub struct Built {
    pub len: usize,
    /// Its folded checksum sum (RFC 1071), from an even offset.
    pub sum: u16,
    /// The query brought back a valid server cookie.
    pub cookie_valid: bool,
    /// The extended RCODE of an error the answer is instead of a lookup's (`RCODE_FORMERR`,
    /// `RCODE_BADCOOKIE`; its upper bits are in the record already), or 0.
    pub rcode: u32,
}

/// Writes the answer's OPT record into `scratch.opt` (the octets after it are not written)
/// and sums it from its parts as they are written: the server's payload size, DO as the
/// query's, then NSID and COOKIE when the query asked and the engine would write them.
/// `Err` (pass) where the engine answers otherwise; `Built::rcode` where it answers with an
/// error the options decide (the record is then that error's). Also says whether the query
/// brought back a valid server cookie, which is checked under `require-cookie` and when
/// `validate` asks (rate limiting exempts such clients).
#[inline(always)]
pub fn answer_opt(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    o: &Options,
    dnssec_ok: bool,
    server_payload: u16,
    client: (usize, bool),
    validate: bool,
) -> Result<Built, u32> {
    // The options' length and sum (from their start, OPT_LEN: an odd offset of the record).
    let mut len = 0usize;
    let mut sum = 0u64;
    let mut valid = false;
    let mut rcode = 0;
    if o.nsid || o.cookie_len != 0 {
        let Some(cfg) = EDNS.get(0) else {
            return Err(counter::PASS_ERROR);
        };
        if cfg.flags & EDNS_CONFIGURED == 0 {
            return Err(counter::PASS_EDNS_OPTION);
        }
        if o.nsid && cfg.flags & EDNS_NSID_TOO_LONG != 0 {
            return Err(counter::PASS_EDNS_OPTION);
        }
        if o.nsid && cfg.flags & EDNS_NSID != 0 {
            let n = cfg.nsid_len as usize;
            if n > NSID_MAX {
                return Err(counter::PASS_ERROR);
            }
            // By aligned words, as userspace laid it out (zero padded after its length); the
            // head's octets before it are written below.
            let w = scratch.opt.as_mut_ptr() as *mut u64;
            for i in 0..NSID_WORDS {
                // SAFETY: `opt` is 8-byte aligned and holds NSID_AT + NSID_WORDS words
                // (assertions in dns_common).
                unsafe { w.add(NSID_AT / 8 + i).write(cfg.nsid_words[i]) };
            }
            len = 4 + n;
            sum = cfg.nsid_sum as u64;
        }
        if o.cookie_len == COOKIE_MALFORMED && cfg.flags & EDNS_COOKIES != 0 {
            rcode = RCODE_FORMERR;
        } else if o.cookie_len != 0 && cfg.flags & EDNS_COOKIES != 0 {
            let t = now(cfg);
            let c = cookie::client(ctx, client.0, client.1)?;
            let require = cfg.flags & EDNS_REQUIRE_COOKIE != 0;
            // SAFETY: as in `walk`, which wrote these words.
            let words = unsafe { (scratch.cookie.as_ptr() as *const [u64; 3]).read() };
            let (reply, ok) = cookie::answer(cfg, &words, o.cookie_len, &c, t, require || validate);
            if require && !ok {
                rcode = RCODE_BADCOOKIE;
            }
            valid = ok;
            let at = opaque(&mut scratch.opaque, len);
            if at > 4 + NSID_MAX {
                return Err(counter::PASS_ERROR);
            }
            // SAFETY: OPT_LEN + at + REPLY_LEN ≤ OPT_LEN + 4 + NSID_MAX + REPLY_LEN ≤ OPT_BUF.
            unsafe { reply.write(scratch.opt.as_mut_ptr().add(OPT_LEN + at)) };
            sum += checksum::at_parity(reply.sum, at & 1 == 1);
            len = at + cookie::REPLY_LEN;
        }
    }
    // The engine checks the version first: BADVERS, with the options as they are (a cookie
    // reply also to a cookie that would get BADCOOKIE, none to a malformed one).
    if o.badvers {
        rcode = RCODE_BADVERS;
    }
    // The head: the first word as one store (with the extended RCODE's upper eight bits),
    // then RDLENGTH after its zero octet.
    let mut head = opt_record(server_payload, dnssec_ok);
    head[5] = (rcode >> 4) as u8;
    let mut w = [0u8; 8];
    w.copy_from_slice(&head[..8]);
    let first = u64::from_le_bytes(w);
    // SAFETY: `opt` is 8-byte aligned in Scratch (an assertion in dns_common).
    unsafe { (scratch.opt.as_mut_ptr() as *mut u64).write(first) };
    let rdlen = (len as u16).to_be_bytes();
    scratch.opt[8] = 0;
    scratch.opt[9] = rdlen[0];
    scratch.opt[10] = rdlen[1];
    let head_sum = (first & 0xffff_ffff)
        + (first >> 32)
        + checksum::bytes(0, rdlen[0])
        + checksum::bytes(rdlen[1], 0);
    let total = OPT_LEN + len;
    if total > OPT_BUF {
        return Err(counter::PASS_ERROR);
    }
    Ok(Built {
        len: total,
        sum: checksum::fold(head_sum + checksum::at_parity(checksum::fold(sum), true)),
        cookie_valid: valid,
        rcode,
    })
}

/// The arguments of `answer_opt`, by reference: a BPF call takes at most five.
pub struct OptArgs {
    pub options: Options,
    pub dnssec_ok: bool,
    pub server_payload: u16,
    pub l3: usize,
    pub v6: bool,
    pub validate: bool,
}

/// `OPT_ERROR` bit of `answer_opt_call`'s result: the rest is a counter index.
pub const OPT_ERROR: u32 = 1 << 31;

/// `answer_opt`'s result in the word `answer_opt_call` returns and the programs pass on in
/// scratch: the length (< 128 octets, `OPT_BUF`) in bits 0-6, the valid cookie in bit 7, the
/// checksum sum in bits 8-23, the error's RCODE (< 64) in bits 24-29.
impl Built {
    #[inline(always)]
    pub fn pack(&self) -> u32 {
        (self.len as u32 & 0x7f)
            | (self.cookie_valid as u32) << 7
            | (self.sum as u32) << 8
            | (self.rcode & 0x3f) << 24
    }

    #[inline(always)]
    pub fn unpack(w: u32) -> Built {
        Built {
            len: (w & 0x7f) as usize,
            cookie_valid: (w >> 7) & 1 != 0,
            sum: (w >> 8) as u16,
            rcode: (w >> 24) & 0x3f,
        }
    }
}

const _: () = assert!(RCODE_BADCOOKIE < 64 && OPT_ERROR >> 24 > 0x3f);

const _: () = assert!(OPT_BUF < 128);

/// `answer_opt` as a BPF function of its own, so that the verifier leaves its states behind
/// when it returns: `Built::pack`, or `OPT_ERROR | reason`.
#[inline(never)]
pub fn answer_opt_call(ctx: &XdpContext, scratch: &mut Scratch, a: &OptArgs) -> u32 {
    match answer_opt(
        ctx,
        scratch,
        &a.options,
        a.dnssec_ok,
        a.server_payload,
        (a.l3, a.v6),
        a.validate,
    ) {
        Ok(b) => b.pack(),
        Err(reason) => OPT_ERROR | reason,
    }
}
