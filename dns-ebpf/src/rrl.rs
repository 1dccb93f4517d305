//! Response rate limiting in the driver (see `dns_common::rrl` for the bucket rule): one bucket
//! per (source prefix, response class) in an LRU hash shared by the CPUs, an exempt prefix
//! trie, and clients that bring back a valid server cookie exempt. A limited response is
//! dropped (`XDP_DROP`), or every `slip`-th one sent truncated; under `dry-run` it is only
//! counted. The clock is `bpf_ktime_get_ns()` (the test build may fix it,
//! `RRL_TEST_FIXED_TIME`).

use aya_ebpf::{
    helpers::bpf_xdp_load_bytes,
    macros::map,
    maps::{lpm_trie::Key, Array, LpmTrie, LruHashMap},
    programs::XdpContext,
};
use dns_common::{
    counter,
    rrl::{
        account, key, RrlBucket, RrlConfig, RrlKey, Verdict, RRL_BUCKETS_CAPACITY, RRL_DRY_RUN,
        RRL_ENABLED, RRL_EXEMPT_CAPACITY,
    },
};

use crate::COUNTERS;

/// Settings (index 0); all zero (off) until userspace writes them.
#[map]
static RRL: Array<RrlConfig> = Array::with_max_entries(1, 0);

/// The buckets, by (prefix, class).
#[map]
static RRL_BUCKETS: LruHashMap<RrlKey, RrlBucket> =
    LruHashMap::with_max_entries(RRL_BUCKETS_CAPACITY, 0);

/// Exempt prefixes, IPv4 mapped into IPv6.
#[map]
static RRL_EXEMPT: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(RRL_EXEMPT_CAPACITY, 0);

/// Whether rate limiting is on (then server cookies are validated, for the exemption).
#[inline(always)]
pub fn enabled() -> bool {
    RRL.get(0).is_some_and(|c| c.flags & RRL_ENABLED != 0)
}

#[inline(always)]
fn count(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn now(cfg: &RrlConfig) -> u64 {
    #[cfg(feature = "test-programs")]
    if cfg.flags & dns_common::rrl::RRL_TEST_FIXED_TIME != 0 {
        return cfg.test_now_ns;
    }
    let _ = cfg;
    // SAFETY: plain helper call.
    unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() }
}

/// `check`: send the response.
pub const SEND: u32 = 0;
/// `check`: send it truncated.
pub const SLIP: u32 = 1;

/// Accounts a response of `class` to the query's source (IP header at `l3`): `SEND`, `SLIP`,
/// or a counter index to return (`RRL_DROPPED`: drop it). A function of its own (a BPF call),
/// so that the verifier leaves its states behind when it returns.
#[inline(never)]
pub fn check(ctx: &XdpContext, l3: usize, v6: bool, class: u32, cookie_valid: bool) -> u32 {
    match verdict(ctx, l3, v6, class, cookie_valid) {
        Ok(false) => SEND,
        Ok(true) => SLIP,
        Err(e) => e,
    }
}

#[inline(always)]
fn verdict(
    ctx: &XdpContext,
    l3: usize,
    v6: bool,
    class: u32,
    cookie_valid: bool,
) -> Result<bool, u32> {
    let Some(cfg) = RRL.get(0) else {
        return Ok(false);
    };
    if cfg.flags & RRL_ENABLED == 0 || cookie_valid {
        return Ok(false);
    }
    let mut addr = core::mem::MaybeUninit::uninit();
    let addr = crate::zero::Buf16::zeroed(&mut addr);
    // SAFETY: the helper checks the packet bounds; `addr` holds 16 bytes.
    let r = unsafe {
        if v6 {
            bpf_xdp_load_bytes(ctx.ctx, (l3 + 8) as u32, addr.as_mut_ptr() as *mut _, 16)
        } else {
            addr[10] = 0xff;
            addr[11] = 0xff;
            bpf_xdp_load_bytes(
                ctx.ctx,
                (l3 + 12) as u32,
                addr.as_mut_ptr().add(12) as *mut _,
                4,
            )
        }
    };
    if r != 0 {
        return Err(counter::PASS_ERROR);
    }
    if RRL_EXEMPT.get(Key::new(128, *addr)).is_some() {
        return Ok(false);
    }
    let mask = if v6 { &cfg.v6_mask } else { &cfg.v4_mask };
    let k = key(addr, mask, class);
    let t = now(cfg);
    let verdict = match RRL_BUCKETS.get_ptr_mut(&k) {
        // SAFETY: map values stay valid for the duration of the program (RCU); CPUs racing on
        // one bucket may lose an update, which only makes the limit a little looser.
        Some(b) => account(
            unsafe { &mut *b },
            t,
            cfg.interval_ns,
            cfg.tolerance_ns,
            cfg.slip,
        ),
        None => {
            let mut b = RrlBucket::default();
            let v = account(&mut b, t, cfg.interval_ns, cfg.tolerance_ns, cfg.slip);
            // Best effort: a bucket that cannot be stored is a new one next time too.
            let _ = RRL_BUCKETS.insert(&k, &b, 0);
            v
        }
    };
    if verdict == Verdict::Send {
        return Ok(false);
    }
    count(counter::RRL_LIMITED);
    if cfg.flags & RRL_DRY_RUN != 0 {
        return Ok(false);
    }
    match verdict {
        Verdict::Slip => Ok(true),
        _ => Err(counter::RRL_DROPPED),
    }
}
