//! The EDNS options of a query (RFC 6891 §6.1.2) and the OPT record of its answer, as the
//! engine treats them: NSID (RFC 5001) gets the instance's NSID, COOKIE (RFC 7873) a fresh
//! server cookie (`cookie`), and every other option is ignored — except EXPIRE (RFC 7314),
//! which userspace answers for secondary zones, and anything the engine answers with an
//! error (malformed or repeated cookies, BADCOOKIE under `require-cookie`): those are passed.
//! The answer's options are NSID, then COOKIE, the engine's order.
//!
//! The cookies' clock is `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) plus the offset to the wall
//! clock that userspace keeps in `EdnsConfig::clock_offset_ns`; the test build may take a fixed
//! second from the configuration instead (`EDNS_TEST_FIXED_TIME`).

use aya_ebpf::{helpers::bpf_xdp_load_bytes, programs::XdpContext};
use dns_common::{
    counter, opt_record, EdnsConfig, Scratch, COOKIE_MAX, EDNS_CONFIGURED, EDNS_COOKIES,
    EDNS_MAX_OPTIONS, EDNS_NSID, EDNS_NSID_TOO_LONG, EDNS_REQUIRE_COOKIE, NSID_MAX, OPTION_COOKIE,
    OPTION_EXPIRE, OPTION_NSID, OPT_BUF, OPT_LEN,
};

use crate::{cookie, question::opaque, EDNS};

/// The options of a query that change its answer.
#[derive(Clone, Copy)]
pub struct Options {
    /// NSID was asked for.
    pub nsid: bool,
    /// Length of the COOKIE option data, copied to `Scratch::cookie`; 0 when there is none.
    pub cookie_len: usize,
}

impl Options {
    pub const NONE: Options = Options {
        nsid: false,
        cookie_len: 0,
    };
}

/// Walks the `len` octets of OPT RDATA at packet offset `at`, at most `EDNS_MAX_OPTIONS`
/// options.
#[inline(always)]
pub fn walk(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    at: usize,
    len: usize,
) -> Result<Options, u32> {
    let mut o = Options::NONE;
    let mut p = 0usize;
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
        let mut h = [0u8; 4];
        // SAFETY: the helper checks the packet bounds; h is 4 bytes.
        let r =
            unsafe { bpf_xdp_load_bytes(ctx.ctx, (at + p) as u32, h.as_mut_ptr() as *mut _, 4) };
        if r != 0 {
            return Err(counter::PASS_MALFORMED);
        }
        let code = u16::from_be_bytes([h[0], h[1]]);
        let olen = u16::from_be_bytes([h[2], h[3]]) as usize;
        if p + 4 + olen > len {
            return Err(counter::PASS_MALFORMED);
        }
        match code {
            OPTION_NSID => o.nsid = true,
            OPTION_COOKIE => {
                // Malformed (FORMERR, RFC 7873 §5.2.2) or repeated: userspace answers.
                if o.cookie_len != 0 || olen < 8 || (olen > 8 && olen < 16) || olen > COOKIE_MAX {
                    return Err(counter::PASS_COOKIE);
                }
                let n = opaque(&mut scratch.opaque, olen);
                if n == 0 || n > COOKIE_MAX {
                    return Err(counter::PASS_ERROR);
                }
                // SAFETY: the helper checks the packet bounds; the buffer holds COOKIE_MAX.
                let r = unsafe {
                    bpf_xdp_load_bytes(
                        ctx.ctx,
                        (at + p + 4) as u32,
                        scratch.cookie.as_mut_ptr() as *mut _,
                        n as u32,
                    )
                };
                if r != 0 {
                    return Err(counter::PASS_MALFORMED);
                }
                o.cookie_len = n;
            }
            // Userspace adds EXPIRE to SOA answers of secondary zones.
            OPTION_EXPIRE => return Err(counter::PASS_EDNS_OPTION),
            _ => {}
        }
        p += 4 + olen;
    }
    if p != len {
        return Err(counter::PASS_EDNS_OPTION);
    }
    Ok(o)
}

/// The cookies' clock, in seconds since the epoch.
#[inline(always)]
fn now(cfg: &EdnsConfig) -> u32 {
    #[cfg(feature = "test-programs")]
    if cfg.flags & dns_common::EDNS_TEST_FIXED_TIME != 0 {
        return cfg.test_time;
    }
    // SAFETY: plain helper call.
    let mono = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    (mono.wrapping_add(cfg.clock_offset_ns) / 1_000_000_000) as u32
}

/// Writes the answer's OPT record into `scratch.opt` (zero padded after it) and returns its
/// length: the server's payload size, DO as the query's, then NSID and COOKIE when the query
/// asked and the engine would write them. `Err` (pass) where the engine answers otherwise.
/// Also says whether the query brought back a valid server cookie, which is checked under
/// `require-cookie` and when `validate` asks (rate limiting exempts such clients).
#[inline(always)]
pub fn answer_opt(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    o: &Options,
    dnssec_ok: bool,
    server_payload: u16,
    client: (usize, bool),
    validate: bool,
) -> Result<(usize, bool), u32> {
    let Some(cfg) = EDNS.get(0) else {
        return Err(counter::PASS_ERROR);
    };
    let asked = o.nsid || o.cookie_len != 0;
    if asked && cfg.flags & EDNS_CONFIGURED == 0 {
        return Err(counter::PASS_EDNS_OPTION);
    }
    crate::zero::words::<{ OPT_BUF / 8 }>(scratch.opt.as_mut_ptr());
    let head = opt_record(server_payload, dnssec_ok);
    scratch.opt[..OPT_LEN].copy_from_slice(&head);
    let mut len = OPT_LEN;
    let mut valid = false;
    if o.nsid && cfg.flags & EDNS_NSID_TOO_LONG != 0 {
        return Err(counter::PASS_EDNS_OPTION);
    }
    if o.nsid && cfg.flags & EDNS_NSID != 0 {
        let n = cfg.nsid_len as usize;
        if n > NSID_MAX {
            return Err(counter::PASS_ERROR);
        }
        scratch.opt[OPT_LEN + 1] = OPTION_NSID as u8;
        scratch.opt[OPT_LEN + 3] = n as u8;
        // The whole buffer: userspace zero pads the NSID after its length.
        scratch.opt[OPT_LEN + 4..OPT_LEN + 4 + NSID_MAX].copy_from_slice(&cfg.nsid);
        len += 4 + n;
    }
    if o.cookie_len != 0 && cfg.flags & EDNS_COOKIES != 0 {
        let t = now(cfg);
        let c = cookie::client(ctx, client.0, client.1)?;
        let require = cfg.flags & EDNS_REQUIRE_COOKIE != 0;
        if require || validate {
            valid = cookie::valid(cfg, &scratch.cookie, o.cookie_len, &c, t);
        }
        if require && !valid {
            return Err(counter::PASS_COOKIE);
        }
        let reply = cookie::reply(cfg, &scratch.cookie, &c, t);
        let at = opaque(&mut scratch.opaque, len);
        if at > OPT_LEN + 4 + NSID_MAX {
            return Err(counter::PASS_ERROR);
        }
        // SAFETY: at + REPLY_LEN ≤ OPT_LEN + 4 + NSID_MAX + REPLY_LEN ≤ OPT_BUF.
        unsafe {
            (scratch.opt.as_mut_ptr().add(at) as *mut [u8; cookie::REPLY_LEN])
                .write_unaligned(reply)
        };
        len = at + cookie::REPLY_LEN;
    }
    let rdlen = ((len - OPT_LEN) as u16).to_be_bytes();
    scratch.opt[9] = rdlen[0];
    scratch.opt[10] = rdlen[1];
    Ok((len, valid))
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

/// `answer_opt` as a BPF function of its own, so that the verifier leaves its states behind
/// when it returns: `len | cookie_valid << 16`, or `OPT_ERROR | reason`.
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
        Ok((len, valid)) => (len as u32 & 0xffff) | (valid as u32) << 16,
        Err(reason) => OPT_ERROR | reason,
    }
}
