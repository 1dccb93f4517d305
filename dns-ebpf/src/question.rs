//! The DNS question and EDNS OPT record of a query, read into per-CPU scratch space.
//!
//! The question (and, when it fits, the OPT record after it with its options) is copied with
//! one `bpf_xdp_load_bytes` (no per-byte packet access) and its labels are walked in a bounded
//! loop over the copy; an OPT record the copy does not hold is copied with one more. The lookup key's name is built from that copy by the walk's first step
//! (`lookup::build_key`), so the name is neither loaded twice nor lower-cased over the whole
//! 256-octet buffer.

use aya_ebpf::{helpers::bpf_xdp_load_bytes, programs::XdpContext};
use dns_common::{counter, Scratch, KEY_FLAG_CHAOS, KEY_FLAG_DO, NAME_BUF, NAME_MAX, OPTIONS_BUF};

use crate::edns::{self, Options};

/// What the rest of the packet path needs to know about the question and EDNS.
pub struct Query {
    /// Wire length of QNAME.
    pub name_len: usize,
    /// The query had an OPT record.
    pub edns: bool,
    /// Largest response the client accepts.
    pub limit: usize,
    /// DO bit of the query's OPT record.
    pub dnssec_ok: bool,
    /// The EDNS options that change the answer (see `edns`).
    pub options: Options,
}

const QUESTION_BUF: usize = NAME_BUF + 8;

/// Reads the question at packet offset `qoff`, with `rem` DNS bytes from there to the end of the
/// message, and the OPT record when `arcount` is 1. Fills `scratch.key` except its generation.
#[inline(always)]
pub fn read(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    qoff: usize,
    rem: usize,
    arcount: u16,
    server_payload: u16,
) -> Result<Query, u32> {
    if rem < 5 {
        return Err(counter::PASS_MALFORMED);
    }
    let n = if rem > QUESTION_BUF {
        QUESTION_BUF
    } else {
        rem
    };
    // SAFETY: the helper checks the packet bounds; the buffer is QUESTION_BUF long and n ≤ that.
    let r = unsafe {
        bpf_xdp_load_bytes(
            ctx.ctx,
            qoff as u32,
            scratch.question.as_mut_ptr() as *mut _,
            (n & 0x1ff) as u32,
        )
    };
    if r != 0 {
        return Err(counter::PASS_MALFORMED);
    }
    crate::zero::words::<4>(scratch.label_starts.as_mut_ptr() as *mut u8);
    let name_len = name_length(
        &scratch.question,
        &mut scratch.label_starts,
        &mut scratch.label_count,
    )?;
    let name_len = opaque(&mut scratch.opaque, name_len);
    if name_len == 0 || name_len > NAME_MAX || name_len + 4 > n {
        return Err(counter::PASS_MALFORMED);
    }
    let q = &scratch.question;
    let qtype = u16::from_be_bytes([q[name_len & 0xff], q[(name_len + 1) & 0x1ff]]);
    let qclass = u16::from_be_bytes([q[(name_len + 2) & 0x1ff], q[(name_len + 3) & 0x1ff]]);
    // IN, and CH for the server's identity and version; other classes go to userspace.
    if qclass != 1 && qclass != 3 {
        return Err(counter::PASS_CLASS);
    }
    scratch.key.qtype = qtype;

    let rest = rem - name_len - 4;
    let mut query = Query {
        name_len,
        edns: false,
        limit: 512,
        dnssec_ok: false,
        options: Options::NONE,
    };
    match arcount {
        0 if rest == 0 => {}
        1 => {
            if rest < 11 {
                return Err(counter::PASS_MALFORMED);
            }
            // The OPT record with its RDATA, as an offset in scratch space: in the question
            // copy when it holds the whole message, else copied with one helper call.
            let at = opt_copy(ctx, scratch, qoff, rem, name_len + 4, rest)?;
            let at = opaque(&mut scratch.opaque, at);
            let opt = edns::copied::<11>(scratch, at)?;
            if opt[0] != 0 || opt[1] != 0 || opt[2] != 41 {
                return Err(counter::PASS_OTHER);
            }
            // An EDNS version other than 0: BADVERS (`edns::answer_opt`).
            let badvers = opt[6] != 0;
            let rdlen = u16::from_be_bytes([opt[9], opt[10]]) as usize;
            if rest != 11 + rdlen || opt[5] != 0 {
                return Err(counter::PASS_MALFORMED);
            }
            if rdlen > 0 {
                let o = edns::walk(scratch, at + 11, rdlen)?;
                // Join the verifier's paths through the options again (see `opaque`).
                query.options = Options {
                    badvers: false,
                    nsid: opaque(&mut scratch.opaque, o.nsid as usize) != 0,
                    cookie_len: opaque(&mut scratch.opaque, o.cookie_len) & 0x3f,
                    rdata_sum: o.rdata_sum,
                };
            }
            // Both sides' payloads count as 512 when lower (RFC 6891 §6.2.5), as in the
            // engine's size limit.
            let mut payload = u16::from_be_bytes([opt[3], opt[4]]);
            if payload < 512 {
                payload = 512;
            }
            let server_limit = if server_payload < 512 {
                512
            } else {
                server_payload
            };
            if payload > server_limit {
                payload = server_limit;
            }
            query.options.badvers = badvers;
            query.edns = true;
            query.limit = payload as usize;
            query.dnssec_ok = opt[7] & 0x80 != 0;
        }
        _ => return Err(counter::PASS_MALFORMED),
    }
    // The key name is built from the copy by the walk's first step (`lookup::build_key`).
    zero_after(scratch, name_len);
    scratch.key.flags = if query.dnssec_ok { KEY_FLAG_DO } else { 0 }
        | if qclass == 3 { KEY_FLAG_CHAOS } else { 0 };
    Ok(query)
}

/// Where the query's OPT record (the `rest` octets at question offset `at`) is in scratch
/// space, as an offset from its start: in the question copy when that holds the message to
/// its end (`rem` octets from the question), else copied whole into `Scratch::options` by one
/// `bpf_xdp_load_bytes` (a longer one is passed).
#[inline(always)]
fn opt_copy(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    qoff: usize,
    rem: usize,
    at: usize,
    rest: usize,
) -> Result<usize, u32> {
    if rem <= QUESTION_BUF {
        return Ok(core::mem::offset_of!(Scratch, question) + at);
    }
    let n = opaque(&mut scratch.opaque, rest);
    if n == 0 || n > OPTIONS_BUF {
        return Err(counter::PASS_EDNS_OPTION);
    }
    let to = scratch.options.as_mut_ptr() as *mut _;
    // SAFETY: the helper checks the packet bounds; 0 < n ≤ OPTIONS_BUF, the buffer's size.
    match unsafe { bpf_xdp_load_bytes(ctx.ctx, (qoff + at) as u32, to, n as u32) } {
        0 => Ok(core::mem::offset_of!(Scratch, options)),
        _ => Err(counter::PASS_MALFORMED),
    }
}

/// Returns `v` through a memory round trip, so that the verifier sees one unknown value (to be
/// bounds-checked again) instead of following every value `v` may have had separately, and the
/// compiler cannot drop masks applied to the result.
#[inline(always)]
pub fn opaque(slot: &mut u64, v: usize) -> usize {
    // SAFETY: plain per-CPU memory; volatile so that the compiler keeps the round trip.
    unsafe {
        core::ptr::write_volatile(slot, v as u64);
        core::ptr::read_volatile(slot) as usize
    }
}

/// Walks the labels of the copied name; returns its wire length. Compression pointers and
/// extended label types are not valid in a question we answer.
#[inline(always)]
fn name_length(
    q: &[u8; QUESTION_BUF],
    starts: &mut [u64; 4],
    labels: &mut u64,
) -> Result<usize, u32> {
    let mut pos: usize = 0;
    for i in 0..128 {
        starts[(pos >> 6) & 3] |= 1 << (pos & 63);
        let len = q[pos & 0xff] as usize;
        if len == 0 {
            // Through memory (per-CPU scratch): the paths join again after the loop.
            *labels = i;
            return Ok(pos + 1);
        }
        if len > 63 {
            return Err(counter::PASS_MALFORMED);
        }
        pos += len + 1;
        if pos >= NAME_MAX {
            return Err(counter::PASS_MALFORMED);
        }
    }
    Err(counter::PASS_MALFORMED)
}

/// Zeroes the (at most three) octets of the question copy after QTYPE and QCLASS up to the
/// next 4-octet word, so that a checksum over whole words (`checksum::words`) is the checksum
/// of the question.
#[inline(always)]
fn zero_after(scratch: &mut Scratch, name_len: usize) {
    let end = name_len + 4;
    if end + 3 <= QUESTION_BUF {
        let q = &mut scratch.question;
        q[end] = 0;
        q[end + 1] = 0;
        q[end + 2] = 0;
    }
}
