//! Map layouts and counter indices shared by the XDP program (`dns-ebpf`) and userspace.
//!
//! Everything here is `#[repr(C)]` plain data: the XDP program reads these structs straight out of
//! BPF maps, and userspace writes them. Change a layout here and both sides follow.
#![no_std]

pub mod index;
pub mod rrl;

pub use index::*;

/// Longest DNS name in wire form (RFC 1035 §3.1), including the root label.
pub const NAME_MAX: usize = 255;
/// Size of the name buffer in a key: the longest name, zero padded to a multiple of 8.
pub const NAME_BUF: usize = 256;
/// Longest precompiled response tail (answer + authority + additional, OPT excluded).
pub const ANSWER_MAX: usize = 496;
/// Default server UDP payload size (`--server-payload`; the DNS Flag Day 2020 value).
pub const DEFAULT_SERVER_PAYLOAD: u16 = 1232;

/// Length of the OPT record of an XDP answer (no options).
pub const OPT_LEN: usize = 11;

/// The OPT record of an XDP answer to a query with EDNS (RFC 6891 §6.1.2): root owner, type
/// OPT, the server's UDP payload size as the class, extended RCODE and version 0, the query's
/// DO bit, no options. The compiler makes templates only of engine answers that end with
/// exactly this record.
pub const fn opt_record(server_payload: u16, dnssec_ok: bool) -> [u8; OPT_LEN] {
    let p = server_payload.to_be_bytes();
    let flags = if dnssec_ok { 0x80 } else { 0 };
    [0, 0, 41, p[0], p[1], 0, 0, flags, 0, 0, 0]
}

/// Map names, as the XDP program declares them.
pub mod maps {
    pub const ANSWERS: &str = "ANSWERS";
    pub const CONFIG: &str = "CONFIG";
    pub const SERVICE_ADDRS: &str = "SERVICE_ADDRS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SCRATCH: &str = "SCRATCH";
    pub const SUFFIXES: &str = "SUFFIXES";
    pub const SUFFIX_SEED: &str = "SUFFIX_SEED";
    pub const SUFFIX_DIR: &str = "SUFFIX_DIR";
    pub const ANSWER_DIR: &str = "ANSWER_DIR";
    pub const TEMPLATES: &str = "TEMPLATES";
    pub const COLD: &str = "COLD";
    pub const EDNS: &str = "EDNS";
    pub const NSEC3_ZONES: &str = "NSEC3_ZONES";
    pub const NSEC3_HASHES: &str = "NSEC3_HASHES";
    pub const NSEC3_RECORDS: &str = "NSEC3_RECORDS";
    pub const NSEC_LABELS: &str = "NSEC_LABELS";
    pub const JUMP: &str = "JUMP";
    pub const RRL: &str = "RRL";
    pub const RRL_BUCKETS: &str = "RRL_BUCKETS";
    pub const RRL_EXEMPT: &str = "RRL_EXEMPT";
}

/// Default capacity of the answer map (entries), for programs loaded without sizes (tests and
/// benchmarks). Entries are allocated on insert, but the bucket array follows the capacity, so
/// `xdpdns serve` sizes it to two generations of its zones plus room for updates.
pub const ANSWERS_CAPACITY: u32 = 1 << 18;
/// Default capacity of the template cache (`TEMPLATES`, an array of slots, preallocated).
/// `xdpdns serve` sizes it from the zones, or from `--xdp-capacity`.
pub const TEMPLATES_CAPACITY: u32 = 1 << 16;
/// The bits of a template id that name its home slot in `TEMPLATES` (the rest tell apart the
/// ids that share a home). The template store picks ids whose home is below the cache's
/// capacity, and a free one while the cache has room.
pub const TEMPLATE_HOME_MASK: u32 = (1 << 24) - 1;
/// Most slots `TEMPLATES` can have (every home fits in `TEMPLATE_HOME_MASK`).
pub const TEMPLATES_MAX_SLOTS: u32 = TEMPLATE_HOME_MASK + 1;
/// The slots a template may be cached in: `home ^ w` for `w` below this (an aligned group of
/// four, its home first), so that templates sharing a group in a cache smaller than the zones
/// do not evict each other (see `fastpath::template_cache`).
pub const TEMPLATE_WAYS: u32 = 4;
/// `Answer::id` of a slot that holds no template (0 is never a template id: pass markers'
/// index entries have it).
pub const TEMPLATE_NONE: u32 = 0;
/// Size in bytes of the `COLD` ring buffer (template ids the XDP program found missing from
/// `TEMPLATES`; userspace promotes the frequent ones).
pub const COLD_RING_BYTES: u32 = 1 << 16;
/// Capacity of the service address map.
pub const SERVICE_ADDRS_CAPACITY: u32 = 64;

/// `AnswerKey::flags` bit: the query carried EDNS with DO=1.
pub const KEY_FLAG_DO: u16 = 1;
/// `AnswerKey::flags` bit: class CH (server identity and version); exact entries only.
pub const KEY_FLAG_CHAOS: u16 = 8;
/// `AnswerKey::flags` bit: NODATA for any type not compiled at this name (`qtype` 0).
pub const KEY_FLAG_NODATA: u16 = 2;
/// Kind of suffix entry (in `SUFFIXES`, not in `ANSWERS`): the answer for names at or below a
/// name — a referral at a zone cut, NXDOMAIN below an existing name, or a marker that sends
/// everything at and below it to userspace.
pub const KEY_FLAG_SUFFIX: u16 = 4;

/// Bytes of userspace's suffix key form (`[flags, reversed name]`, see `suffix_flag_byte`).
pub const SUFFIX_DATA: usize = 256;

/// Userspace's form of a suffix entry's key is `[flags, reversed name]`, whose first byte
/// carries the generation's 7 bits and DO. In the map it is a `SuffixMapKey` (see there).
pub const fn suffix_flag_byte(generation: u16, dnssec_ok: bool) -> u8 {
    (((generation & 0x7f) as u8) << 1) | dnssec_ok as u8
}

/// `SuffixMapKey::generation` of the suffix keys of `generation` (its low 7 bits).
pub const fn suffix_generation(generation: u16) -> u16 {
    generation & 0x7f
}

/// Default capacity of the suffix map (see `ANSWERS_CAPACITY`).
pub const SUFFIXES_CAPACITY: u32 = 1 << 18;
/// Most compression pointers a suffix template may hold (each is shifted by the query name's
/// extra length).
pub const MAX_PTRS: usize = 48;

/// Lookup key for a precompiled answer.
///
/// `name` is the query name in wire form, lower-cased (ASCII only, RFC 4343), right-aligned
/// in the buffer and zero padded on the left, so that a suffix of the name is the same buffer
/// with more leading bytes zeroed.
/// `generation` lets userspace fill a complete new set of entries and then switch
/// `Config::generation`, so that a query sees either the old zone or the new one, never a mix.
/// `epoch` lets userspace replace the exact and NODATA entries of one name within a generation:
/// the program takes it from the name's own suffix entry (`KIND_EPOCH_MASK` bits of its kind),
/// so the new entries are written under another epoch first and become visible together when
/// that one suffix entry is switched.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub generation: u16,
    pub qtype: u16,
    pub flags: u16,
    pub epoch: u16,
    pub name: [u8; NAME_BUF],
}

impl AnswerKey {
    pub const fn zeroed() -> Self {
        AnswerKey {
            generation: 0,
            qtype: 0,
            flags: 0,
            epoch: 0,
            name: [0; NAME_BUF],
        }
    }
}

/// What kind of answer an entry is, for the per-kind counters.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    Exact = 0,
    Referral = 1,
    Negative = 2,
    Chaos = 3,
    /// Suffix marker: names at and below go to userspace.
    Pass = 4,
    /// The root suffix entry: REFUSED for names outside every served zone.
    Refused = 5,
    /// NXDOMAIN below an existing name of an NSEC3 zone, DO=1: the template holds the SOA
    /// (and its RRSIG) and an `Nsec3Meta`; the program adds the NSEC3 records of the proof
    /// (see `Nsec3Meta`). Counted as `answered_negative`. Also an exact or NODATA answer at
    /// a zone's apex too long for one template: the template holds its head and an
    /// `Nsec3Meta` naming the parts that follow it (`Nsec3Zone::records`), fixed; counted as
    /// `answered_exact` (with answers) or `answered_negative` (NODATA).
    Nsec3Negative = 6,
}

/// `Answer::kind` bit: the entry, stored under DO=0, is also the answer for DO=1 (zones without
/// DNSSEC, where only the OPT record's DO bit differs, and the XDP program writes that itself).
pub const KIND_ANY_DO: u16 = 0x8000;

/// `AnswerRef::kind` bits of a suffix entry: the epoch of the exact and NODATA entries of its
/// own name (`AnswerKey::epoch`). Only the index carries them; templates do not.
pub const KIND_EPOCH_MASK: u16 = 0x7f00;
/// Shift of the epoch in `AnswerRef::kind`.
pub const KIND_EPOCH_SHIFT: u16 = 8;
/// Epochs cycle through 0..KIND_EPOCH_MAX; `EPOCH_NONE` is kept apart.
pub const KIND_EPOCH_MAX: u16 = 0x7f;
/// The epoch of a suffix entry whose name has no exact or NODATA entries at all: the program
/// then looks none up (a delegation's NS query, say, goes straight to its referral).
pub const EPOCH_NONE: u16 = KIND_EPOCH_MAX;

/// An index entry of `ANSWERS` and `SUFFIXES`: what kind of answer a key has, and which
/// template in `TEMPLATES` holds its bytes.
///
/// The index always holds every key of the published zones; `TEMPLATES` is a cache. A query
/// whose template is not cached is passed to userspace (`pass_cold`), and its id goes to the
/// `COLD` ring so that userspace can promote it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRef {
    /// `AnswerKind` in the low 8 bits, plus `KIND_ANY_DO` and the epoch (`KIND_EPOCH_MASK`).
    pub kind: u16,
    /// Suffix entries: wire length of the anchor name (see `Answer::anchor_len`).
    pub anchor_len: u16,
    /// Key of the template in `TEMPLATES`; 0 for pass markers (never cached).
    pub template: u32,
}

/// A precompiled response: everything after the question, except the OPT record.
///
/// The XDP program keeps the query's header ID, RD, CD and question (with its original case),
/// ORs `header_flags` (QR, AA, RCODE) into the header, writes the counts, appends `data` and, when
/// the query had EDNS, an OPT record.
/// `data` may contain compression pointers into the question, which sits at offset 12 in every
/// response, so the bytes do not depend on the query's letter case.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub header_flags: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    pub len: u16,
    /// Ones' complement sum of `data[..len]` (folded to 16 bits), as if `data` started at an even
    /// offset. The XDP program byte-swaps it when `data` lands at an odd offset.
    pub csum: u16,
    pub kind: u16,
    /// Suffix templates: wire length of the name the template was made for. A query name
    /// longer by `p` octets shifts every compression pointer in `data` by `p`.
    pub anchor_len: u16,
    /// Number of compression pointers listed in `ptrs`.
    pub nptrs: u16,
    /// `ptr_weight(ptrs[..nptrs])`: what shifting every pointer by one adds to `csum`, so that
    /// the program gets a suffix template's checksum for a shift `s` as `csum + s × ptr_weight`
    /// (RFC 1624) without summing the data.
    pub ptr_weight: u16,
    /// In `TEMPLATES`: the id of the template the slot holds (`TEMPLATE_NONE`: none), which
    /// the program compares with the index entry's before it takes the slot; zero elsewhere.
    pub id: u32,
    /// In `TEMPLATES`: set by the program when it answers from the slot (only when clear, so
    /// a hot slot's line is not written again), cleared by userspace as its replacement hand
    /// passes (CLOCK, `fastpath::template_cache`); zero elsewhere. In the first cache line,
    /// with the id and the counts, which every answer reads anyway.
    pub used: u16,
    pub _pad: [u16; 3],
    /// Offsets in `data` of the compression pointers to shift: the first 16 in the slot's
    /// first cache line.
    pub ptrs: [u16; MAX_PTRS],
    /// At an 8-byte boundary, so that the XDP program copies it by words; from the slot's third
    /// cache line.
    pub data: [u8; ANSWER_MAX],
    /// Pads the slot to whole cache lines (`TEMPLATES` values start on a page: see the
    /// program's `PAGE_ALIGNED`), so that an answer reads the lines of its own bytes only.
    pub _tail: [u8; 16],
}

// A template slot is whole cache lines, its head (counts, id, `used`) in the first.
const _: () = assert!(core::mem::size_of::<Answer>().is_multiple_of(64));
const _: () = assert!(core::mem::offset_of!(Answer, ptrs) == 32);
const _: () = assert!(core::mem::offset_of!(Answer, data).is_multiple_of(8));

/// `Answer::ptr_weight` of compression pointers at these offsets in a template's data: adding
/// `s` to a 16-bit pointer changes a memory-order ones' complement sum (`Answer::csum`, little
/// endian words from an even offset) by `s` when the pointer starts at an odd offset and by
/// `s × 256` (the byte swap of `s`, modulo 0xffff) when it starts at an even one, whatever the
/// carries; so shifting them all adds `s × ptr_weight`.
pub const fn ptr_weight(ptrs: &[u16]) -> u16 {
    let mut w: u32 = 0;
    let mut i = 0;
    while i < ptrs.len() {
        w += if ptrs[i] & 1 == 0 { 256 } else { 1 };
        w %= 0xffff;
        i += 1;
    }
    w as u16
}

/// Global settings of the XDP program (index 0 of the `CONFIG` array).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// UDP/TCP port of the service, host byte order. 0 disables the fast path.
    pub port: u16,
    /// The server's UDP payload size (RFC 6891 §6.2.5): the size limit of answers (512 when
    /// lower, as the engine takes it) and the payload of their OPT records (as set).
    pub server_payload: u16,
    /// Active `AnswerKey::generation`.
    pub generation: u16,
    /// `CONFIG_*` bits.
    pub flags: u16,
    /// How many service addresses `SERVICE_ADDRS` holds. When at most `SERVICE_INLINE`, they
    /// are all in `service` too, and the program compares a packet's destination with those
    /// (two words each) instead of looking it up in the hash map.
    pub service_count: u32,
    pub _pad: u32,
    /// The first `service_count` service addresses (keys of `SERVICE_ADDRS`, see
    /// `service_words`); the slots after them are zero.
    pub service: [[u64; 2]; SERVICE_INLINE],
}

/// Most service addresses kept in `Config::service`.
pub const SERVICE_INLINE: usize = 4;

/// A `SERVICE_ADDRS` key (IPv6, or IPv4 mapped into IPv6) as `Config::service` holds it: its
/// two 8-octet halves, each loaded in the machine's byte order.
pub fn service_words(key: &[u8; 16]) -> [u64; 2] {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&key[..8]);
    b.copy_from_slice(&key[8..]);
    [u64::from_ne_bytes(a), u64::from_ne_bytes(b)]
}

/// `Config::flags` bit: no published zone is signed, so every entry is stored under DO=0 and
/// serves DO=1 too; the program looks DO=1 queries up under DO=0 directly.
pub const CONFIG_NO_DNSSEC: u16 = 1;

/// `Config::flags` bit: every published zone is signed, so no DO=0 entry serves DO=1 (the
/// REFUSED one at the root is also stored under DO=1); the program looks DO=1 queries up under
/// DO=1 only, one lookup per label instead of two where a label has no entry.
pub const CONFIG_ALL_SIGNED: u16 = 4;

/// `Config::flags` bit, honoured only by the test build of the program (`test-programs`):
/// responses longer than their query grow the packet at the head, the path taken on buffers
/// without tailroom, which BPF_PROG_TEST_RUN (page-sized buffers) never takes otherwise.
pub const CONFIG_TEST_GROW_AT_HEAD: u16 = 2;

/// Per-CPU scratch space: keeps big buffers off the 512-byte BPF stack.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Scratch {
    /// The question as sent (name, QTYPE, QCLASS), zero padded after it.
    pub question: [u8; NAME_BUF + 8],
    pub key: AnswerKey,
    /// Room after `key.name` so that the right-aligned copy of the name into it can be proven
    /// in bounds by the verifier.
    pub spill: [u8; NAME_BUF],
    /// Round-trip slot for values the verifier must see as unknown (then masked).
    pub opaque: u64,
    /// The hash of the suffix the walk's next step looks up, when the step before took it
    /// (and started the load of its bucket); else 0. Kept out of `Walk`, whose 64 octets
    /// are one cache line.
    pub next_hash: u64,
    /// Bit i set: a label of the query name starts at octet i (the root label included).
    pub label_starts: [u64; 4],
    /// The state of the walk over the query name's suffixes (see `Walk`).
    pub walk: Walk,
    /// The response's headers and question, when they must move to the front of the buffer
    /// (see `FRAME_PREFIX_MAX`).
    pub frame: [u8; FRAME_PREFIX_MAX],
    /// The query's COOKIE option data.
    pub cookie: [u8; COOKIE_MAX],
    /// The answer's OPT record (header, NSID, COOKIE); its checksum is summed from its parts
    /// as they are written, not over the buffer.
    pub opt: [u8; OPT_BUF],
    /// The query's OPT record, copied with its RDATA when the question copy does not reach
    /// its end (a long message: see `OPTIONS_BUF`).
    pub options: [u8; OPTIONS_BUF],
    /// NSEC3 denial: hashing state, the search and the records of the proof (see
    /// `Nsec3Scratch`).
    pub nsec3: Nsec3Scratch,
    /// NSEC denial: the query's label below the closest encloser and the search's state.
    pub nsec: NsecScratch,
    /// Labels of the query name (the root not counted), for the walk (`Walk::labels`).
    pub label_count: u64,
}

// The XDP program reads the answer's OPT record from `Scratch::opt` by 8-byte words.
const _: () = assert!(core::mem::offset_of!(Scratch, opt) % 8 == 0);
// ... and copies `EdnsConfig::nsid_words` into it by words, at `NSID_AT`; it keeps the
// query's cookie in `Scratch::cookie` as little-endian words.
const _: () = assert!(core::mem::offset_of!(Scratch, cookie) % 8 == 0);
const _: () = assert!(NSID_AT.is_multiple_of(8) && NSID_AT + NSID_WORDS * 8 <= OPT_BUF);

/// Per-CPU state of an NSEC denial in the XDP program (see `NsecMeta`).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct NsecScratch {
    /// The query name's label just below the closest encloser, lower-cased, zero padded.
    pub label: [u8; NSEC_LABEL_MAX],
    pub label_len: u32,
    /// Where the label's octets start in `Scratch::key.name`.
    pub from: u32,
    /// 1: the template is an NSEC denial (`NSEC_META_FLAG`).
    pub active: u32,
    /// Search steps to run (the last one takes the result), and whether it was taken.
    pub steps: u32,
    pub done: u32,
}

/// Longest DNS label (RFC 1035 §2.3.4).
pub const NSEC_LABEL_MAX: usize = 64;

/// `NsecMeta::slot` bit: the template is an NSEC denial, not an NSEC3 one.
pub const NSEC_META_FLAG: u32 = 0x8000_0000;

/// The last 16 octets of an `AnswerKind::Nsec3Negative` template of an NSEC zone's NXDOMAIN
/// with DO=1 below a name with children (RFC 4035 §3.1.3.2), in the place of an `Nsec3Meta`:
/// the zone slot with `NSEC_META_FLAG`, and the closest encloser's child labels in
/// `NSEC_LABELS` (`count` entries from `first`, relative to `Nsec3Zone::labels`). The
/// program finds the last entry whose label sorts before the query's label below the closest
/// encloser and appends its NSEC (the one covering the query name), then the NSEC covering
/// the wildcard, `wildcard` (left out when it is the same), as the engine does; both are
/// indexes of the slot's records (`NSEC3_RECORDS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NsecMeta {
    pub slot: u32,
    pub first: u32,
    pub count: u32,
    pub wildcard: u32,
}

/// Default capacity of `NSEC_LABELS` (both halves).
pub const NSEC_LABELS_CAPACITY: u32 = 1 << 14;

/// One entry of `NSEC_LABELS`: a child label of a closest encloser, lower-cased and zero
/// padded, and the NSEC record (an index of the zone's records) covering the names that sort
/// after everything at and below that child and before the next child. Each encloser's
/// entries are sorted in canonical order (RFC 4034 §6.1): by the padded octets, then by
/// length (zero padding keeps that order, zero octets included); the first is the encloser
/// itself, with the empty label, and its own NSEC (or the one covering it).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsecLabel {
    pub label: [u8; NSEC_LABEL_MAX],
    pub len: u32,
    pub record: u32,
}

/// Size of the scratch buffer holding the answer's OPT record: the longest, rounded up to a
/// whole number of 8-octet words.
pub const OPT_BUF: usize = (OPT_LEN + OPT_OPTIONS_MAX + 7) & !7;

/// Size of `Scratch::options`: the longest OPT record (with its RDATA) of a query the XDP
/// program reads when the question copy does not hold it; a longer one is passed
/// (`pass_edns_option`).
pub const OPTIONS_BUF: usize = 512;

/// Per-CPU state of an NSEC3 denial in the XDP program.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Nsec3Scratch {
    /// SHA-1 state, then the hash (big-endian words).
    pub state: [u32; 5],
    /// Zone slot of the denial being built.
    pub slot: u32,
    /// The `AnswerKind` the answer is counted as (an NSEC3 denial, or an assembled exact or
    /// NODATA answer).
    pub answered: u32,
    /// The first message: the next closer name's length, with the salt, and its blocks.
    pub name_len: u32,
    pub total: u32,
    pub blocks: u32,
    pub iterations: u32,
    /// Binary search bounds: the answer is in `lo..hi` (indexes from the zone's base).
    pub lo: u32,
    pub hi: u32,
    /// Search steps to run (0: the next closer's NSEC3 is fixed, in `next_closer`).
    pub steps: u32,
    /// The proof's records (`Nsec3Meta`): the next closer's once known.
    pub closest: u32,
    pub next_closer: u32,
    pub wildcard: u32,
    /// The query name's length and the anchor's offset in it.
    pub qname_len: u32,
    pub shift: u32,
    /// The template's head: length, checksum, authority count.
    pub head: u32,
    pub head_csum: u32,
    pub nscount: u32,
    /// The body built: length and checksum; `error` the pass reason when it was not.
    pub len: u32,
    pub csum: u32,
    pub error: u32,
    /// The denial template's id, for the denial program, and the question the answering
    /// program read (name length, EDNS, limit, DO; see `packet`), not read again.
    pub template: u32,
    /// Length of the answer's OPT record in `Scratch::opt`, built before the lookup (also
    /// for answers other than NSEC3 denials).
    pub opt_len: u32,
    pub query: u64,
    /// The packet's layout (`packet::Flow`) as the answering program found it, so that the
    /// programs it tail-calls do not classify the packet again.
    pub flow: u64,
    /// A SHA-1 block being compressed.
    pub w: [u32; 16],
    /// The lengths of the head and of the proof's records (0: left out).
    pub lens: [u16; 4],
    /// The proof's records, as indexes of `NSEC3_RECORDS`, written into the packet from
    /// there, and what their pointers into the question move by.
    pub parts: [u32; 3],
    pub apex_shift: u32,
    /// The first message of the hash, laid out so that it is read by aligned words: the key
    /// name (the next closer name ends it, at octet `NAME_BUF`), the zone's salt after it,
    /// its padding octet, zeros (`NSEC3_MSG_WORDS`).
    pub msg: [u64; NSEC3_MSG_WORDS],
}

/// Words of `Nsec3Scratch::msg`: the name and the salt (32 words each), the zeros after them
/// that a message's last block can reach, and one word more for the masked index.
pub const NSEC3_MSG_WORDS: usize = 129;

/// Longest first message of the NSEC3 hash: a name and the longest salt, padded (9 blocks).
pub const NSEC3_MSG_MAX: usize = 9 * 64;
/// Longest NSEC3 record with its RRSIGs, in wire form, that the program serves.
pub const NSEC3_RECORD_MAX: usize = ANSWER_MAX;
/// Most compression pointers in one NSEC3 record with its RRSIGs.
pub const NSEC3_RECORD_PTRS: usize = 8;
/// `Nsec3Record::ptrs` bit: the pointer targets the record itself (it moves with the record's
/// offset in the response), not the question.
pub const NSEC3_PTR_INTERNAL: u16 = 0x8000;
/// Most iterations the program hashes (RFC 9276 §3.2; the zone loader refuses more).
pub const NSEC3_ITERATIONS_MAX: u16 = 150;
/// Longest salt (RFC 5155 §3.1.5).
pub const NSEC3_SALT_MAX: usize = 255;
/// Zone slots in `NSEC3_ZONES`: two halves, one for the generation being published and one
/// for the generation serving.
pub const NSEC3_ZONE_SLOTS: u32 = 256;
/// Default capacity of `NSEC3_HASHES` and `NSEC3_RECORDS` (both halves).
pub const NSEC3_CAPACITY: u32 = 1 << 14;
/// Most NSEC3 records of one zone the binary search reaches (2^20).
pub const NSEC3_SEARCH_STEPS: u32 = 20;
/// "No record" in `Nsec3Meta`.
pub const NSEC3_NONE: u32 = u32::MAX;
/// Words of the precomputed iteration blocks of a zone: `H(k-1) || salt`, padded, is at most
/// 20 + 255 + 9 octets, 5 blocks.
pub const NSEC3_ITER_WORDS: usize = 5 * 16;

/// An NSEC3 zone of a generation (`NSEC3_ZONES`, by slot): its hash parameters and where its
/// sorted owner hashes and records are in `NSEC3_HASHES` and `NSEC3_RECORDS`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Nsec3Zone {
    /// Index of the zone's first hash and record.
    pub base: u32,
    /// Number of NSEC3 records, which the hash search covers (0: no NSEC3 denials).
    pub count: u32,
    /// Number of records in `NSEC3_RECORDS` from `base` (0: the slot is unused): the `count`
    /// NSEC3 records, then the parts of the zone's apex answers too long for one template.
    pub records: u32,
    /// Index of the zone's first entry in `NSEC_LABELS` (NSEC zones; see `NsecMeta`).
    pub labels: u32,
    pub iterations: u16,
    pub salt_len: u16,
    /// Wire length of the apex name (records compress their owners to it).
    pub apex_len: u16,
    /// 64-octet blocks of the iteration message `H(k-1) || salt`, padded.
    pub iter_blocks: u16,
    pub salt: [u8; NSEC3_SALT_MAX + 1],
    /// The iteration message as big-endian words, the first five (the previous hash) zero.
    pub iter_words: [u32; NSEC3_ITER_WORDS],
}

/// A SHA-1 owner hash of `NSEC3_HASHES`, as five big-endian words (compared in word order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nsec3Hash(pub [u32; 5]);

/// An NSEC3 record with its RRSIGs in wire form (`NSEC3_RECORDS`, by index): written as the
/// engine writes it after a question holding only the apex name, so its pointers target that
/// name (shifted by what the query name adds) or the record itself (`NSEC3_PTR_INTERNAL`,
/// shifted by the record's offset in the response too).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct Nsec3Record {
    pub len: u16,
    /// Resource records: the NSEC3 and its RRSIGs.
    pub rrs: u16,
    pub nptrs: u16,
    /// Memory-order ones' complement sum of `data[..len]` from an even offset, as written
    /// here (pointers not shifted).
    pub csum: u16,
    /// Offsets of the compression pointers, with `NSEC3_PTR_INTERNAL`.
    pub ptrs: [u16; NSEC3_RECORD_PTRS],
    pub data: [u8; NSEC3_RECORD_MAX],
    /// `ptr_weight` of all the pointers and of those with `NSEC3_PTR_INTERNAL`: the program
    /// shifts every pointer by the query name's extra length and the internal ones by the
    /// record's offset in the body too, so the record's sum in the answer is `csum` plus
    /// those shifts times these weights (RFC 1624), with nothing summed per query.
    pub weight: u16,
    pub internal_weight: u16,
    pub _pad: u32,
}

/// The last 16 octets of an `AnswerKind::Nsec3Negative` template's data (its `len` counts
/// them): the zone slot and the chain indexes (relative to the zone's base) of the NSEC3
/// matching the closest encloser, covering the next closer name (`NSEC3_NONE`: hashed per
/// query) and covering the wildcard at the closest encloser. The program appends these in that
/// order after the template's head, leaving out a record already there (RFC 5155 §7.2.2, as
/// the engine deduplicates).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nsec3Meta {
    pub slot: u32,
    pub closest: u32,
    pub next_closer: u32,
    pub wildcard: u32,
}

/// Size of `Nsec3Meta` in template data.
pub const NSEC3_META_LEN: usize = 16;

/// Longest frame prefix before the answer data: Ethernet with two VLAN tags, IPv6, UDP, the DNS
/// header and the longest question. When the driver's buffer has no tailroom, the XDP program
/// grows the packet at the head instead and moves this prefix forward.
pub const FRAME_PREFIX_MAX: usize = 384;

/// Per-CPU counters, indexed by these values.
pub mod counter {
    pub const ANSWERED_EXACT: u32 = 0;
    pub const ANSWERED_REFERRAL: u32 = 1;
    pub const ANSWERED_NEGATIVE: u32 = 2;
    pub const ANSWERED_CHAOS: u32 = 3;
    pub const ANSWERED_REFUSED: u32 = 4;
    pub const PASS_NOT_DNS: u32 = 5;
    pub const PASS_TCP: u32 = 6;
    pub const PASS_TOO_BIG: u32 = 7;
    pub const PASS_MISS: u32 = 8;
    pub const PASS_EDNS_OPTION: u32 = 9;
    pub const PASS_MALFORMED: u32 = 10;
    pub const PASS_FRAGMENT: u32 = 11;
    pub const PASS_IP_OPTIONS: u32 = 12;
    pub const PASS_IPV6_EXT: u32 = 13;
    pub const PASS_NOT_QUERY: u32 = 14;
    pub const PASS_EDNS_VERSION: u32 = 15;
    pub const PASS_CLASS: u32 = 16;
    pub const PASS_ERROR: u32 = 17;
    pub const PASS_COLD: u32 = 18;
    pub const PASS_OTHER: u32 = 19;
    /// A COOKIE option the engine answers with FORMERR or BADCOOKIE, or more than one.
    pub const PASS_COOKIE: u32 = 20;
    /// An NSEC3 denial the program could not complete (its chain missing from the maps).
    pub const PASS_NSEC3: u32 = 21;
    /// Responses over their rate limit (sent anyway under `dry-run`; see `rrl`).
    pub const RRL_LIMITED: u32 = 22;
    /// Limited responses sent truncated (TC=1) instead.
    pub const RRL_SLIPPED: u32 = 23;
    /// Limited responses dropped (`XDP_DROP`).
    pub const RRL_DROPPED: u32 = 24;
    /// An answer larger than the driver's buffer can grow to, at the tail or at the head (veth
    /// hands XDP socket buffers with little room; NIC drivers give page-sized ones).
    pub const PASS_NO_ROOM: u32 = 25;
    /// BADCOOKIE (extended RCODE 23, RFC 7873 §5.2.3) under `require-cookie`: a UDP query
    /// with a COOKIE option but no valid server cookie, answered in the driver.
    pub const ANSWERED_BADCOOKIE: u32 = 26;
    /// FORMERR for a malformed COOKIE option (RFC 7873 §5.2.2), answered in the driver.
    pub const ANSWERED_FORMERR: u32 = 27;
    /// BADVERS (extended RCODE 16, RFC 6891 §6.1.3) for an EDNS version other than 0,
    /// answered in the driver (before, passed as `PASS_EDNS_VERSION`, which no longer moves).
    pub const ANSWERED_BADVERS: u32 = 28;
    pub const COUNT: u32 = 29;

    /// Names for display, in index order.
    pub const NAMES: [&str; COUNT as usize] = [
        "answered_exact",
        "answered_referral",
        "answered_negative",
        "answered_chaos",
        "answered_refused",
        "pass_not_dns",
        "pass_tcp",
        "pass_too_big",
        "pass_miss",
        "pass_edns_option",
        "pass_malformed",
        "pass_fragment",
        "pass_ip_options",
        "pass_ipv6_ext",
        "pass_not_query",
        "pass_edns_version",
        "pass_class",
        "pass_error",
        "pass_cold",
        "pass_other",
        "pass_cookie",
        "pass_nsec3",
        "rrl_limited",
        "rrl_slipped",
        "rrl_dropped",
        "pass_no_room",
        "answered_badcookie",
        "answered_formerr",
        "answered_badvers",
    ];

    /// Whether counter `i` counts packets answered in the driver: those before `PASS_NOT_DNS`
    /// and the answers appended after the pass reasons (`ANSWERED_BADCOOKIE` on).
    pub const fn is_answered(i: u32) -> bool {
        i < PASS_NOT_DNS || (i >= ANSWERED_BADCOOKIE && i < COUNT)
    }

    /// Whether counter `i` counts packets passed up the stack (the rate limiting counters
    /// and the answers appended after them do not).
    pub const fn is_pass(i: u32) -> bool {
        i >= PASS_NOT_DNS && i < COUNT && !is_rrl(i) && !is_answered(i)
    }

    /// Whether counter `i` is one of the rate limiting counters.
    pub const fn is_rrl(i: u32) -> bool {
        i >= RRL_LIMITED && i <= RRL_DROPPED
    }

    /// `handle`'s kind of an answer made without a template, with an empty body: an error
    /// RCODE the OPT record decides (`KIND_BADCOOKIE`, `KIND_FORMERR`, `KIND_BADVERS`). Apart
    /// from every `AnswerKind` value (and from `rrl::KIND_SLIPPED`).
    pub const KIND_BADCOOKIE: u16 = 0x200;
    pub const KIND_FORMERR: u16 = 0x201;
    pub const KIND_BADVERS: u16 = 0x202;

    /// Counter index for an answer of the given `AnswerKind` value, or of a `KIND_*` above.
    pub const fn answered(kind: u16) -> u32 {
        match kind {
            KIND_BADCOOKIE => return ANSWERED_BADCOOKIE,
            KIND_FORMERR => return ANSWERED_FORMERR,
            KIND_BADVERS => return ANSWERED_BADVERS,
            _ => {}
        }
        match kind & 0xff {
            1 => ANSWERED_REFERRAL,
            2 | 6 => ANSWERED_NEGATIVE,
            3 => ANSWERED_CHAOS,
            5 => ANSWERED_REFUSED,
            _ => ANSWERED_EXACT,
        }
    }

    #[cfg(test)]
    #[test]
    fn every_counter_is_an_answer_a_pass_or_a_rate_limit_as_its_name_says() {
        for (i, name) in NAMES.iter().enumerate() {
            let i = i as u32;
            let kinds = [is_answered(i), is_pass(i), is_rrl(i)];
            assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{name}");
            let prefix = ["answered_", "pass_", "rrl_"][kinds.iter().position(|k| *k).unwrap()];
            assert!(name.starts_with(prefix), "{name}");
        }
        assert_eq!(answered(KIND_BADCOOKIE), ANSWERED_BADCOOKIE);
        assert_eq!(answered(KIND_FORMERR), ANSWERED_FORMERR);
        assert_eq!(answered(KIND_BADVERS), ANSWERED_BADVERS);
        assert_eq!(answered(5), ANSWERED_REFUSED);
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: all of these are #[repr(C)] plain old data with no padding holes that matter.
    unsafe impl aya::Pod for super::AnswerKey {}
    unsafe impl aya::Pod for super::Answer {}
    unsafe impl aya::Pod for super::AnswerRef {}
    unsafe impl aya::Pod for super::SuffixMapKey {}
    unsafe impl aya::Pod for super::AnswerMapKey {}
    unsafe impl aya::Pod for super::AnswerEntry {}
    unsafe impl aya::Pod for super::SuffixEntry {}
    unsafe impl aya::Pod for super::DirBucket {}
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::EdnsConfig {}
    unsafe impl aya::Pod for super::Nsec3Zone {}
    unsafe impl aya::Pod for super::Nsec3Hash {}
    unsafe impl aya::Pod for super::Nsec3Record {}
    unsafe impl aya::Pod for super::NsecLabel {}
    unsafe impl aya::Pod for super::rrl::RrlConfig {}
    unsafe impl aya::Pod for super::rrl::RrlKey {}
    unsafe impl aya::Pod for super::rrl::RrlBucket {}
}

/// ASCII lower-casing of eight bytes at once (SWAR); other bytes (length octets, non-ASCII)
/// unchanged. Shared by the XDP program's keys and userspace's name hashing.
#[inline(always)]
pub const fn ascii_lower8(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let heptets = w & LOW7;
    let ge_a = heptets + 0x3f3f_3f3f_3f3f_3f3f; // high bit set where byte >= 'A'
    let gt_z = heptets + 0x2525_2525_2525_2525; // high bit set where byte > 'Z'
    w | ((ge_a & !gt_z & !w & HIGH) >> 2)
}

/// `BPF_F_NO_PREALLOC`: hash map entries are allocated on insert, so a big capacity costs nothing
/// until it is used.
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// EDNS option code of NSID (RFC 5001).
pub const OPTION_NSID: u16 = 3;
/// EDNS option code of EXPIRE (RFC 7314).
pub const OPTION_EXPIRE: u16 = 9;
/// EDNS option code of COOKIE (RFC 7873).
pub const OPTION_COOKIE: u16 = 10;
/// Length of a client cookie (RFC 7873 §4.1).
pub const CLIENT_COOKIE_LEN: usize = 8;
/// Length of an RFC 9018 server cookie: version, 3 reserved octets, timestamp, hash.
pub const SERVER_COOKIE_LEN: usize = 16;
/// Longest COOKIE option data (RFC 7873 §4.2: 8 + 8..=32).
pub const COOKIE_MAX: usize = 40;
/// The server cookie version of RFC 9018 §4.
pub const SERVER_COOKIE_VERSION: u8 = 1;
/// A server cookie is valid for this many seconds after its timestamp (RFC 9018 §4.3)...
pub const COOKIE_MAX_AGE: u32 = 3600;
/// ... and from this many seconds before it (clocks of anycast instances differ a little).
pub const COOKIE_MAX_AHEAD: u32 = 300;
/// Most EDNS options the XDP program walks in one OPT record; a query with more is passed.
pub const EDNS_MAX_OPTIONS: usize = 8;
/// Longest NSID the XDP program writes; a longer one leaves NSID queries to userspace.
pub const NSID_MAX: usize = 64;
/// Longest options part of an XDP answer's OPT: NSID, then COOKIE (client + server cookie).
pub const OPT_OPTIONS_MAX: usize = 4 + NSID_MAX + 4 + CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;

/// `EdnsConfig::flags` bit: userspace wrote this configuration. Without it the XDP program
/// passes every query with EDNS options (`pass_edns_option`), as it cannot know the engine's
/// NSID or cookie settings.
pub const EDNS_CONFIGURED: u32 = 64;
/// `EdnsConfig::flags` bit: answer DNS COOKIE options (RFC 7873, RFC 9018) with `secret`.
pub const EDNS_COOKIES: u32 = 1;
/// `EdnsConfig::flags` bit: `previous` holds the secret before the last rollover, also accepted.
pub const EDNS_COOKIE_PREVIOUS: u32 = 2;
/// `EdnsConfig::flags` bit: a UDP query with a COOKIE option but no valid server cookie gets
/// BADCOOKIE (the engine's answer; the XDP program passes such queries).
pub const EDNS_REQUIRE_COOKIE: u32 = 4;
/// `EdnsConfig::flags` bit: an NSID is configured (`nsid[..nsid_len]`).
pub const EDNS_NSID: u32 = 8;
/// `EdnsConfig::flags` bit: an NSID is configured that is longer than `NSID_MAX`: queries
/// asking for it are passed.
pub const EDNS_NSID_TOO_LONG: u32 = 16;
/// `EdnsConfig::flags` bit, honoured only by the test build of the program (`test-programs`):
/// the cookies' clock is `test_time`, not the kernel's clock plus `clock_offset_ns`.
pub const EDNS_TEST_FIXED_TIME: u32 = 32;

/// EDNS option settings of the XDP program (index 0 of the `EDNS` array), written by userspace
/// from the engine's configuration, so that both paths answer NSID and COOKIE alike.
///
/// The cookies' clock is `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) plus `clock_offset_ns`, which
/// userspace sets to the wall clock minus CLOCK_MONOTONIC and keeps current (a stepped wall
/// clock moves it), so that the seconds XDP writes into server cookies are the engine's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EdnsConfig {
    /// `EDNS_*` bits.
    pub flags: u32,
    /// The cookies' clock in the test build with `EDNS_TEST_FIXED_TIME`: seconds since the epoch.
    pub test_time: u32,
    /// Wall clock minus CLOCK_MONOTONIC, in nanoseconds.
    pub clock_offset_ns: u64,
    /// The SipHash-2-4 key of the server cookies made now.
    pub secret: [u8; 16],
    /// The previous secret (`EDNS_COOKIE_PREVIOUS`), accepted in cookies that come back.
    pub previous: [u8; 16],
    pub nsid_len: u32,
    pub _pad: u32,
    pub nsid: [u8; NSID_MAX],
    /// The folded Internet checksum sum (RFC 1071, 16-bit little-endian words, as the
    /// program sums) of the NSID option as the answer carries it: code, length and `nsid`,
    /// from an even offset (`nsid_option_sum`).
    pub nsid_sum: u32,
    pub _pad2: u32,
    /// The NSID option (code, length, `nsid` zero padded) as it stands in the answer's OPT
    /// record, laid out from the record's octet 8 (`NSID_AT`; the three octets before the
    /// option zero, the program writes them), so that the program copies it by aligned words
    /// (`nsid_words`).
    pub nsid_words: [u64; NSID_WORDS],
    /// The SipHash-2-4 states keyed with `secret` and `previous` (`siphash_keyed`), so that
    /// the program starts from them.
    pub secret_keyed: [u64; 4],
    pub previous_keyed: [u64; 4],
    /// A second of the cookies' clock, `tick_second` (0: none), and the CLOCK_MONOTONIC
    /// nanoseconds at which it starts (`tick_second × 10⁹ − clock_offset_ns`), which
    /// userspace writes with the offset: the program counts the seconds from there without a
    /// 64-bit division.
    pub tick_ns: u64,
    pub tick_second: u32,
    pub _pad3: u32,
}

/// The SipHash-2-4 state (v0..v3) keyed with the 16 octets `key` (two little-endian words).
pub const fn siphash_keyed(key: &[u8; 16]) -> [u64; 4] {
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// Where `EdnsConfig::nsid_words` starts in the answer's OPT record.
pub const NSID_AT: usize = 8;
/// Words of `EdnsConfig::nsid_words`: the NSID option after three octets of the OPT head.
pub const NSID_WORDS: usize = (OPT_LEN - NSID_AT + 4 + NSID_MAX).div_ceil(8);

/// `EdnsConfig::nsid_words` of the NSID `nsid` (at most `NSID_MAX` octets).
pub fn nsid_words(nsid: &[u8]) -> [u64; NSID_WORDS] {
    let mut b = [0u8; NSID_WORDS * 8];
    let at = OPT_LEN - NSID_AT;
    b[at..at + 4].copy_from_slice(&[0, OPTION_NSID as u8, 0, nsid.len() as u8]);
    b[at + 4..at + 4 + nsid.len()].copy_from_slice(nsid);
    let mut w = [0u64; NSID_WORDS];
    for (i, word) in w.iter_mut().enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *word = u64::from_le_bytes(x);
    }
    w
}

/// `EdnsConfig::nsid_sum` of an NSID option with data `nsid` (at most 255 octets).
pub fn nsid_option_sum(nsid: &[u8]) -> u32 {
    let head = [0, OPTION_NSID as u8, 0, nsid.len() as u8];
    let mut sum: u64 = 0;
    for (i, b) in head.iter().chain(nsid).enumerate() {
        // Even offsets are a word's low octet (little-endian words), odd ones its high one.
        sum += (*b as u64) << (8 * (i & 1));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u32
}

impl EdnsConfig {
    pub const fn zeroed() -> Self {
        EdnsConfig {
            flags: 0,
            test_time: 0,
            clock_offset_ns: 0,
            secret: [0; 16],
            previous: [0; 16],
            nsid_len: 0,
            _pad: 0,
            nsid: [0; NSID_MAX],
            nsid_sum: 0,
            _pad2: 0,
            nsid_words: [0; NSID_WORDS],
            secret_keyed: [0; 4],
            previous_keyed: [0; 4],
            tick_ns: 0,
            tick_second: 0,
            _pad3: 0,
        }
    }
}
