//! The XDP program: answers DNS queries over UDP from precompiled responses in BPF maps.
//!
//! It owns the packet path only: parse Ethernet (with up to two VLAN tags), IPv4 or IPv6 and UDP;
//! check the query is addressed to a service address and port; build the lookup key from the
//! question; and rewrite the packet in place into the response. Anything it is not sure of goes to
//! the kernel stack (and so to the userspace server) with `XDP_PASS`, counted by reason.
#![no_std]
#![no_main]

mod body;
mod checksum;
mod cookie;
mod directory;
mod edns;
mod lookup;
mod nsec;
mod nsec3;
mod packet;
mod question;
#[cfg(feature = "test-programs")]
mod reflect;
mod rewrite;
mod rrl;
mod sha1;
mod siphash;
#[cfg(feature = "test-programs")]
mod touch;
mod zero;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use dns_common::{
    counter, Answer, AnswerEntry, Config, DirBucket, EdnsConfig, Nsec3Hash, Nsec3Record, Nsec3Zone,
    NsecLabel, Scratch, SuffixEntry, ANSWERS_CAPACITY, COLD_RING_BYTES, NSEC3_CAPACITY,
    NSEC3_ZONE_SLOTS, NSEC_LABELS_CAPACITY, SERVICE_ADDRS_CAPACITY, SUFFIXES_CAPACITY,
    SUFFIX_SEED_ENTRIES, TEMPLATES_CAPACITY,
};

/// Index of exact and NODATA answers, by (generation, name, type, flags): slots found
/// through `ANSWER_DIR` (see `directory`).
#[map]
static ANSWERS: Array<AnswerEntry> = Array::with_max_entries(ANSWERS_CAPACITY, PAGE_ALIGNED);

/// The bucket directory of `ANSWERS`, its mask in `SUFFIX_SEED`.
#[map]
static ANSWER_DIR: Array<DirBucket> = Array::with_max_entries(ANSWERS_CAPACITY / 2, PAGE_ALIGNED);

/// Index of referral and NXDOMAIN templates and pass markers, by suffix: looked up for each
/// suffix of the query name, longest first (see `dns_common::suffix_flag_byte`). Slots found
/// through `SUFFIX_DIR` (see `directory`).
#[map]
static SUFFIXES: Array<SuffixEntry> = Array::with_max_entries(SUFFIXES_CAPACITY, PAGE_ALIGNED);

/// The bucket directory of `SUFFIXES` (see `dns_common::DirBucket`); sized by userspace, its
/// mask in `SUFFIX_SEED`.
#[map]
static SUFFIX_DIR: Array<DirBucket> = Array::with_max_entries(SUFFIXES_CAPACITY / 2, PAGE_ALIGNED);

/// The seed of the suffix keys' hash (`dns_common::suffix_hash_step`), random per load, and the
/// label depths without suffix entries per generation (`dns_common::SUFFIX_SEED_ENTRIES`).
#[map]
static SUFFIX_SEED: Array<u64> = Array::with_max_entries(SUFFIX_SEED_ENTRIES, 0);

/// The answers' bytes, in slots: a template id's home slot is its low bits
/// (`TEMPLATE_HOME_MASK`), and it is cached there or in another slot of the home's group of
/// `TEMPLATE_WAYS`; the slot holds its id (`Answer::id`). An array lookup is inlined by the
/// verifier (a bounds check and an add), not a hash helper call. See `lookup::template`.
#[map]
static TEMPLATES: Array<Answer> = Array::with_max_entries(TEMPLATES_CAPACITY, PAGE_ALIGNED);

/// Template ids found missing from `TEMPLATES`, for userspace to promote.
#[map]
static COLD: RingBuf = RingBuf::with_byte_size(COLD_RING_BYTES, 0);

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// NSID, cookie secrets and the cookies' clock (see `edns`).
#[map]
static EDNS: Array<EdnsConfig> = Array::with_max_entries(1, 0);

/// Service addresses: IPv6, or IPv4 mapped into IPv6 (`::ffff:a.b.c.d`).
#[map]
static SERVICE_ADDRS: HashMap<[u8; 16], u8> = HashMap::with_max_entries(SERVICE_ADDRS_CAPACITY, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// NSEC3 zones of the generations published, by slot (see `dns_common::Nsec3Zone`).
#[map]
static NSEC3_ZONES: Array<Nsec3Zone> = Array::with_max_entries(NSEC3_ZONE_SLOTS, 0);

/// The NSEC3 owner hashes of those zones, each zone's sorted, from its base.
#[map]
static NSEC3_HASHES: Array<Nsec3Hash> = Array::with_max_entries(NSEC3_CAPACITY, 0);

/// The NSEC3 records (with RRSIGs) in wire form, at the index of their hash.
#[map]
static NSEC3_RECORDS: Array<Nsec3Record> = Array::with_max_entries(NSEC3_CAPACITY, 0);

/// NSEC zones' closest enclosers' child labels, each encloser's sorted (see `nsec`).
#[map]
static NSEC_LABELS: Array<NsecLabel> = Array::with_max_entries(NSEC_LABELS_CAPACITY, 0);

/// The programs `xdp_dns` tail-calls with what it found: the NSEC3 denial program (index 0)
/// and the one that writes every other answer (index 1).
#[map]
static JUMP: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// Flags of the arrays the lookups index into: `BPF_F_MMAPABLE`, for its layout rather than for
/// mapping. The kernel then places the first value at a page boundary, where it otherwise
/// follows `struct bpf_array`'s header (312 octets on 6.18, 56 past a cache line): so a
/// 64-octet directory bucket is one cache line, not two, and a slot whose size is a multiple
/// of 64 starts on a line.
const PAGE_ALIGNED: u32 = aya_ebpf::bindings::BPF_F_MMAPABLE;

#[xdp]
pub fn xdp_dns(ctx: XdpContext) -> u32 {
    finish(&ctx, packet::handle::<{ packet::LOOKUP }>(&ctx))
}

/// Writes the answer `xdp_dns` found (other than NSEC3 denials); entered from `xdp_dns` only.
#[xdp]
pub fn xdp_dns_respond(ctx: XdpContext) -> u32 {
    finish(&ctx, packet::handle::<{ packet::RESPOND }>(&ctx))
}

/// Answers the query with an NSEC3 denial, or an apex answer assembled from parts (see
/// `nsec3`); entered from `xdp_dns` only.
#[xdp]
pub fn xdp_dns_nsec3(ctx: XdpContext) -> u32 {
    let outcome = packet::handle::<{ packet::DENIAL }>(&ctx).map(nsec3::answered);
    finish(&ctx, outcome)
}

/// Counts the outcome and gives the action.
#[inline(always)]
fn finish(ctx: &XdpContext, outcome: Result<u16, u32>) -> u32 {
    let (index, action) = match outcome {
        Ok(dns_common::rrl::KIND_SLIPPED) => (counter::RRL_SLIPPED, xdp_action::XDP_TX),
        Ok(kind) => (counter::answered(kind), xdp_action::XDP_TX),
        Err(counter::RRL_DROPPED) => (counter::RRL_DROPPED, xdp_action::XDP_DROP),
        Err(reason) => (reason, xdp_action::XDP_PASS),
    };
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *c += 1 };
    }
    if index == counter::PASS_ERROR {
        debug!(ctx, "xdp_dns: could not build a response, passed");
    }
    action
}

/// Passes everything. Attached on the client side of test veth pairs, where XDP_TX replies from
/// the server only arrive when the receiving veth runs an XDP program.
#[cfg(feature = "test-programs")]
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program in which this is reachable.
    unsafe { core::hint::unreachable_unchecked() }
}
