//! Finding the answer for a query: the longest suffix of the name in `SUFFIXES` (an array of
//! suffix entries found through the bucket directory `SUFFIX_DIR`, see `directory`, looked up
//! at the name's label starts, longest first); when that is the name
//! itself, its exact (name, type, DO) entry in
//! `ANSWERS` (an array found through `ANSWER_DIR` likewise), then its NODATA entry; otherwise the suffix's referral or NXDOMAIN template.
//! And shifting a suffix template's compression pointers to the query name. The index entries
//! point at templates in the `TEMPLATES` cache (an array: the slots of the id's home group, each
//! holding its template's id); a template missing from it sends the query to userspace and its
//! id to the `COLD` ring.

use aya_ebpf::{cty::c_void, helpers::bpf_loop, programs::XdpContext};
use dns_common::{
    ascii_lower8, counter, depth_bit, filter_bit, filter_slot, skip_slot, suffix_generation,
    suffix_hash_step, Answer, AnswerEntry, AnswerKind, AnswerMapKey, AnswerRef, Scratch,
    SuffixEntry, SuffixMapKey, Walk, ANSWER_DIR_MASK, ANSWER_MAX, EPOCH_NONE, FILTER_DEPTH,
    KEY_FLAG_CHAOS, KEY_FLAG_DO, KEY_FLAG_NODATA, KEY_FLAG_SUFFIX, KIND_ANY_DO, KIND_EPOCH_MASK,
    KIND_EPOCH_SHIFT, MAX_PTRS, NAME_BUF, SUFFIX_DIR_MASK, TEMPLATE_HOME_MASK, TEMPLATE_NONE,
    TEMPLATE_WAYS,
};

use crate::{checksum, directory, packet, question, COLD, SCRATCH, SUFFIX_SEED, TEMPLATES};

const QTYPE_OPT: u16 = 41;
const QTYPE_DS: u16 = 43;
const QTYPE_RRSIG: u16 = 46;

/// The template of the entry found (see `Hit`), for the programs that write the answer.
pub struct Found {
    pub answer: &'static Answer,
    pub shift: Option<usize>,
}

/// An index entry found, with the octets the query name adds in front of a suffix entry's
/// name.
struct Entry {
    entry: AnswerRef,
    shift: Option<usize>,
}

/// The `ANSWERS` entry of `scratch.key` (its name by the hash the walk left); an entry found
/// for another name under the same key (a hash collision) passes the query (`PASS_MISS`),
/// never taken for a miss (see `dns_common::AnswerMapKey`).
#[inline(always)]
fn get(scratch: &mut Scratch) -> Result<Option<&'static AnswerRef>, u32> {
    let mut key = AnswerMapKey {
        hash: scratch.walk.name_hash,
        generation: scratch.key.generation,
        qtype: scratch.key.qtype,
        flags: scratch.key.flags,
        epoch: scratch.key.epoch,
        name_len: scratch.walk.name_len as u16,
        _pad: [0; 3],
    };
    let mask = scratch.walk.answer_dir_mask as u32;
    if let Some(a) = directory::answer(&key, mask) {
        return same_name(scratch, a).map(Some);
    }
    // DO=1 in a zone without DNSSEC: the DO=0 entry, when it says it serves both.
    if key.flags & KEY_FLAG_DO == 0 {
        return Ok(None);
    }
    key.flags &= !KEY_FLAG_DO;
    let Some(a) = directory::answer(&key, mask) else {
        return Ok(None);
    };
    Ok(Some(same_name(scratch, a)?).filter(|a| a.kind & KIND_ANY_DO != 0))
}

/// `e`'s index entry when it is for the query's name, compared word by word (branch-free: both
/// names are zero padded in front); `PASS_MISS` for another name's.
#[inline(always)]
fn same_name(scratch: &Scratch, e: &'static AnswerEntry) -> Result<&'static AnswerRef, u32> {
    let a = scratch.key.name.as_ptr() as *const u64;
    let b = e.name.as_ptr() as *const u64;
    // From the word of the name's first octet (the key's words before it are stale; the
    // lengths, in the map key, are equal).
    let first = ((NAME_BUF - (scratch.walk.name_len as usize & 0xff)) >> 3) & 31;
    let count = words_from(first);
    let mut diff = 0u64;
    for i in 0..NAME_BUF / 8 {
        if i >= count {
            break;
        }
        let idx = (first + i) & 31;
        // SAFETY: idx and i < 32 words of the 8-byte aligned names; the value's holds them
        // from its start (`dns_common::pack_name`).
        diff |= unsafe { a.add(idx).read() ^ b.add(i).read() };
    }
    if diff != 0 {
        return Err(counter::PASS_MISS);
    }
    Ok(&e.entry)
}

/// The number of name words from word `first` to the last (32 − `first`), through memory: the
/// compiler cannot then prove `first + i < 32` in the loops that run to it and drop the `& 31`
/// that bounds their index for the verifier.
#[inline(always)]
fn words_from(first: usize) -> usize {
    let mut slot = core::mem::MaybeUninit::<u64>::uninit();
    // SAFETY: a stack slot written, then read; volatile, so that the round trip stays.
    unsafe {
        core::ptr::write_volatile(slot.as_mut_ptr(), (NAME_BUF / 8 - first) as u64);
        core::ptr::read_volatile(slot.as_ptr()) as usize
    }
}

/// `Scratch::nsec3.shift` of an answer that is not a suffix template.
pub const NO_SHIFT: u32 = u32::MAX;

/// The template and shift `nsec3::jump` left for the program it tail-called: an NSEC3 denial
/// template for the denial program (`denial`), any other for the respond program. A template
/// missing from the cache sends the query to userspace and its id to the `COLD` ring.
#[inline(always)]
pub fn resume(scratch: &mut Scratch, denial: bool) -> Result<Found, u32> {
    // SAFETY: plain reads of per-CPU memory the answering program wrote before its tail call.
    let (id, shift) = unsafe {
        (
            core::ptr::read_volatile(&scratch.nsec3.template),
            core::ptr::read_volatile(&scratch.nsec3.shift),
        )
    };
    let Some(answer) = template(id) else {
        // Best effort: when the ring is full, the query is still passed.
        let _ = COLD.output::<u32>(id, 0);
        return Err(counter::PASS_COLD);
    };
    let nsec3 = answer.kind & 0xff == AnswerKind::Nsec3Negative as u16;
    if nsec3 != denial {
        return Err(counter::PASS_ERROR);
    }
    let shift = (shift != NO_SHIFT).then_some(shift as usize & 0xff);
    if denial && shift.is_none() {
        return Err(counter::PASS_NSEC3);
    }
    Ok(Found { answer, shift })
}

/// The cached template `id`: the slot of its home group (home first) that holds it. The slot's
/// id is read before its body, and userspace never rewrites a body in a slot that holds an id
/// (it sets the id to none, waits for the programs that took the slot to end, writes the body
/// under none, then the id: `fastpath::template_cache`), so the body read is one template's.
/// Marks the slot used (only when not yet) for userspace's replacement.
#[inline(always)]
fn template(id: u32) -> Option<&'static Answer> {
    if id == TEMPLATE_NONE {
        return None;
    }
    let home = id & TEMPLATE_HOME_MASK;
    for w in 0..TEMPLATE_WAYS {
        // Slots past the array's end are not found (the array's own bounds check).
        let Some(slot) = TEMPLATES.get_ptr_mut(home ^ w) else {
            continue;
        };
        // SAFETY: array values stay allocated while the map exists; the id is read once,
        // before anything else of the slot, and the body only when it is `id`'s.
        let held = unsafe { core::ptr::read_volatile(&(*slot).id) };
        if held != id {
            continue;
        }
        // SAFETY: as above; `used` is a hint that a concurrent write may lose.
        unsafe {
            if core::ptr::read_volatile(&(*slot).used) == 0 {
                core::ptr::write_volatile(&mut (*slot).used, 1);
            }
            touch_body(&*slot);
            return Some(&*slot);
        }
    }
    None
}

/// Loads one octet of each cache line of `answer`'s body, discarded: the lines' misses (a
/// large zone's templates are not in the caches) then overlap, here, instead of coming one
/// after another in the copy into the packet, which finds them loaded.
#[inline(always)]
fn touch_body(answer: &Answer) {
    let len = answer.len as usize;
    let d = answer.data.as_ptr();
    for i in 0..ANSWER_MAX.div_ceil(64) {
        if i * 64 >= len {
            break;
        }
        // SAFETY: i * 64 < ANSWER_MAX, inside `data`; volatile, so that the load stays.
        unsafe { core::ptr::read_volatile(d.add(i * 64)) };
    }
}

/// Looks the query up in the index; `scratch.key` holds the exact key on entry and is
/// changed. Leaves the entry's template id and shift in scratch for `resume` (the template
/// itself is the tail-called program's to look up) and returns the entry's kind
/// (`AnswerRef::kind`).
#[inline(always)]
pub fn find(scratch: &mut Scratch, name_len: usize, all_signed: bool) -> Result<u16, u32> {
    let e = index(scratch, name_len, all_signed)?;
    let shift = match e.shift {
        Some(s) => s as u32,
        // An exact entry of the denial program: an apex answer assembled from parts.
        None if e.entry.kind & 0xff == AnswerKind::Nsec3Negative as u16 => 0,
        None => NO_SHIFT,
    };
    // SAFETY: plain writes of per-CPU memory, read by the program tail-called.
    unsafe {
        core::ptr::write_volatile(&mut scratch.nsec3.template, e.entry.template);
        core::ptr::write_volatile(&mut scratch.nsec3.shift, shift);
    }
    Ok(e.entry.kind)
}

/// The index entry for the query: the longest suffix of the name in `SUFFIXES` first. Only
/// names that have their own suffix entry (a match at offset 0) can have exact or NODATA
/// entries — the compiler gives every name it makes those for a suffix entry — so referrals
/// and NXDOMAIN below a name take one lookup, not three. That suffix entry also gives the epoch
/// of the name's exact and NODATA keys, so that they change together with it.
#[inline(always)]
fn index(scratch: &mut Scratch, name_len: usize, all_signed: bool) -> Result<Entry, u32> {
    // Scratch space outlives the packet: no epoch from the previous one.
    scratch.key.epoch = 0;
    if scratch.key.flags & KEY_FLAG_CHAOS != 0 {
        // Only for the name's hash (its first step's), which its `ANSWERS` keys take.
        walk(
            scratch,
            name_len as u64,
            scratch.key.generation as u64,
            0,
            0,
        );
        return match get(scratch)? {
            Some(entry) => Ok(Entry {
                entry: *entry,
                shift: None,
            }),
            None => Err(counter::PASS_CLASS),
        };
    }
    let qtype = scratch.key.qtype;
    let dnssec = scratch.key.flags;
    // DO=1 entries first, then DO=0 ones that serve both: none when every zone is signed.
    let dnssec_ok = dnssec & KEY_FLAG_DO != 0;
    let plain = dnssec_ok && !all_signed;
    let (entry, at) = longest(scratch, name_len, scratch.key.generation, dnssec_ok, plain)?;
    let epoch = (entry.kind & KIND_EPOCH_MASK) >> KIND_EPOCH_SHIFT;
    // The name's own entry says whether it has exact or NODATA entries to look up.
    let own = at == 0 && epoch != EPOCH_NONE;
    if own {
        scratch.key.epoch = epoch;
        if let Some(entry) = get(scratch)? {
            return Ok(Entry {
                entry: *entry,
                shift: None,
            });
        }
    }
    // Meta and query-only types (RFC 6895) have rules of their own in userspace.
    if qtype == 0 || qtype == QTYPE_OPT || qtype >= 128 {
        return Err(counter::PASS_MISS);
    }
    if own && qtype != QTYPE_RRSIG && qtype != QTYPE_DS {
        scratch.key.qtype = 0;
        scratch.key.flags = dnssec | KEY_FLAG_NODATA;
        if let Some(entry) = get(scratch)? {
            return Ok(Entry {
                entry: *entry,
                shift: None,
            });
        }
    }
    let kind = entry.kind & 0xff;
    let usable = (kind == AnswerKind::Referral as u16 && !(at == 0 && qtype == QTYPE_DS))
        || ((kind == AnswerKind::Negative as u16 || kind == AnswerKind::Nsec3Negative as u16)
            && at > 0)
        || kind == AnswerKind::Refused as u16;
    if !usable {
        return Err(counter::PASS_MISS);
    }
    Ok(Entry {
        entry,
        shift: Some(at),
    })
}

/// Longest-suffix lookup in `SUFFIXES`: the entry and the offset in the query name where its
/// name starts (always a label start).
#[inline(always)]
fn longest(
    scratch: &mut Scratch,
    name_len: usize,
    generation: u16,
    dnssec_ok: bool,
    plain: bool,
) -> Result<(AnswerRef, usize), u32> {
    let packed = walk(
        scratch,
        name_len as u64,
        generation as u64,
        dnssec_ok as u64,
        plain as u64,
    );
    // Join the verifier's paths out of the walk (see question::opaque).
    let packed = question::opaque(&mut scratch.opaque, packed as usize) as u64;
    let entry = AnswerRef {
        kind: packed as u16,
        anchor_len: (packed >> 16) as u16,
        template: (packed >> 32) as u32,
    };
    let anchor = entry.anchor_len as usize;
    if anchor == 0 || anchor > name_len {
        return Err(counter::PASS_MISS);
    }
    // The match must start at a label of the query name, not inside one.
    let at = question::opaque(&mut scratch.opaque, name_len - anchor) & 0xff;
    if scratch.label_starts[(at >> 6) & 3] & (1 << (at & 63)) == 0 {
        return Err(counter::PASS_MISS);
    }
    Ok((entry, at))
}

/// Most suffixes the walk looks up: one per label of the longest name (127 and the root).
const WALK_STEPS: usize = 128;

/// The walk over the query name's suffixes, longest first, each looked up
/// in `SUFFIXES` by its own key (see `dns_common::SuffixMapKey`) (DO=1 first, then the DO=0 entry when it serves both, as long
/// as no longer DO=0 entry that does not was found); the first found is the longest, as an
/// LPM match would be. Returns its `AnswerRef` as a word (kind, anchor length, template from
/// the low bits), or 0. One `bpf_loop` step per label: the verifier checks the step once, and
/// the caller goes on with one state however many labels there were.
#[inline(always)]
fn walk(scratch: &mut Scratch, name_len: u64, generation: u64, dnssec_ok: u64, plain: u64) -> u64 {
    scratch.walk = Walk {
        found: 0,
        at: 0,
        name_len: name_len as u32,
        dnssec_ok: dnssec_ok as u32 & 1,
        plain: plain as u32 & 1,
        generation: suffix_generation(generation as u16) as u32,
        labels: scratch.label_count as u32,
        name_hash: 0,
        // No mask (a map not yet written) skips nothing.
        skip: SUFFIX_SEED
            .get(skip_slot(generation as u16))
            .copied()
            .unwrap_or(0),
        dir_mask: SUFFIX_SEED.get(SUFFIX_DIR_MASK).copied().unwrap_or(0),
        answer_dir_mask: SUFFIX_SEED.get(ANSWER_DIR_MASK).copied().unwrap_or(0),
    };
    scratch.next_hash = 0;
    // SAFETY: `walk_step` is a static BPF callback; it takes no context.
    unsafe {
        bpf_loop(
            WALK_STEPS as u32,
            walk_step as *mut c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    // SAFETY: a plain read of per-CPU memory the steps wrote.
    unsafe { core::ptr::read_volatile(&scratch.walk.found) }
}

/// One step of `walk`: the suffix at `walk.at`; 1 (stop) when found or at the root.
extern "C" fn walk_step(_index: u32, _ctx: *mut c_void) -> i64 {
    // SAFETY: per-CPU scratch, used by this CPU only for the duration of this program.
    let Some(s) = SCRATCH.get_ptr_mut(0).map(|s| unsafe { &mut *s }) else {
        return 1;
    };
    let Some(&seed) = SUFFIX_SEED.get(0) else {
        return 1;
    };
    let name_len = s.walk.name_len as usize & 0x1ff;
    let at = s.walk.at as usize & 0x1ff;
    if name_len == 0 || name_len > NAME_BUF - 1 || at >= name_len {
        return 1;
    }
    let base = NAME_BUF - name_len;
    // The suffix's words in the query's key name: from the one its first octet is in, whose
    // octets before it (the labels the walk dropped) count as zero.
    let start = base + at;
    let first = (start >> 3) & 31;
    let head = u64::MAX << ((start & 7) * 8);
    // No suffix entry of the generation has this many labels: nothing to look up (but the
    // first step still builds the key and the name's hash).
    let labels = s.walk.labels;
    s.walk.labels = labels.saturating_sub(1);
    if s.walk.skip & depth_bit(labels) != 0 && at != 0 {
        return advance(s, at, name_len);
    }
    let h = if at == 0 {
        let h = build_key(s, first, start & 7, seed);
        s.walk.name_hash = h;
        h
    } else if s.next_hash != 0 {
        // The step before took it: this step's suffix is the one after that step's
        // (`advance`), and a step that takes none clears it.
        s.next_hash
    } else {
        hash_from(s, seed, start)
    };
    s.next_hash = 0;
    let dnssec_ok = s.walk.dnssec_ok != 0;
    let flags = KEY_FLAG_SUFFIX | if dnssec_ok { KEY_FLAG_DO } else { 0 };
    let mask = s.walk.dir_mask as u32;
    // The next suffix's hash, and the load of its bucket started, before this one's lookup:
    // when this one misses, the next step finds its bucket loaded (a name's suffixes are in
    // buckets far apart, each a cache and TLB miss in a big zone). Not for a next suffix of
    // one label or the root: a TLD's apex and the root's entry are in every cache.
    let l = s.question[at & 0xff] as usize;
    let next = at + l + 1;
    if labels >= 3 && l != 0 && next < name_len && s.walk.skip & depth_bit(labels - 1) == 0 {
        let hn = hash_from(s, seed, base + next);
        s.next_hash = hn;
        if !filtered(s, labels - 1, hn) {
            directory::prefetch_suffix(
                &SuffixMapKey {
                    hash: hn,
                    generation: s.walk.generation as u16,
                    flags,
                    name_len: (name_len - next) as u16,
                    _pad: 0,
                },
                mask,
            );
        }
    }
    if s.walk.skip & depth_bit(labels) != 0 || filtered(s, labels, h) {
        return advance(s, at, name_len);
    }
    let mut key = SuffixMapKey {
        hash: h,
        generation: s.walk.generation as u16,
        flags,
        name_len: (name_len - at) as u16,
        _pad: 0,
    };
    if let Some(e) = directory::suffix(&key, mask) {
        s.walk.found = verified(s, e, first, head);
        return 1;
    }
    if s.walk.plain != 0 {
        // A zone without DNSSEC stores only DO=0 entries (the DO=1 match may belong to a
        // signed parent zone, found further on).
        key.flags = KEY_FLAG_SUFFIX;
        if let Some(e) = directory::suffix(&key, mask) {
            // Another name's entry decides nothing here either: the query is passed.
            let v = verified(s, e, first, head);
            if v == COLLISION || e.entry.kind & KIND_ANY_DO != 0 {
                s.walk.found = v;
                return 1;
            }
            s.walk.plain = 0;
        }
    }
    advance(s, at, name_len)
}

/// Whether the walk's generation has no suffix entry of `labels` labels (`FILTER_DEPTH` or
/// more) whose hash selects the deep filter bit `h` selects (see `dns_common::FILTER_WORDS`).
#[inline(always)]
fn filtered(s: &Scratch, labels: u32, h: u64) -> bool {
    if labels < FILTER_DEPTH {
        return false;
    }
    let (word, bit) = filter_bit(h);
    let exclude = SUFFIX_SEED
        .get(filter_slot(s.walk.generation as u16, word))
        .copied()
        .unwrap_or(0);
    exclude & bit != 0
}

/// The keyed hash (`dns_common::suffix_hash`) of the key name's suffix whose first octet is
/// at `start` of `key.name` (the octets before it in its word counted as zero).
#[inline(always)]
fn hash_from(s: &Scratch, seed: u64, start: usize) -> u64 {
    let first = (start >> 3) & 31;
    let head = u64::MAX << ((start & 7) * 8);
    let w = s.key.name.as_ptr() as *const u64;
    // SAFETY: first < 32 words of the 8-byte aligned name.
    let mut h = suffix_hash_step(seed, unsafe { w.add(first).read() } & head);
    let count = words_from(first);
    for i in 1..NAME_BUF / 8 {
        if i >= count {
            break;
        }
        let idx = (first + i) & 31;
        // SAFETY: idx < 32 words of the 8-byte aligned name.
        h = suffix_hash_step(h, unsafe { w.add(idx).read() });
    }
    h
}

/// The walk's next step: the suffix after the label at `at`; 1 (stop) past the root.
#[inline(always)]
fn advance(s: &mut Scratch, at: usize, name_len: usize) -> i64 {
    let l = s.question[at & 0xff] as usize;
    let next = at + l + 1;
    if l == 0 || next >= name_len {
        return 1;
    }
    s.walk.at = next as u32;
    0
}

/// Writes the key name — the question's name, ASCII lower-cased, right-aligned in
/// `key.name` from word `first` (its first octet at `sh` in that word, the octets before it
/// zero) — and returns its keyed hash (`dns_common::suffix_hash`). Words before `first` are left
/// as they were: everything that reads the key name starts at the word of its first octet.
/// Each key word is two aligned words of the question copy joined by shifts (unaligned loads
/// are split into octets by the BPF backend).
#[inline(always)]
fn build_key(s: &mut Scratch, first: usize, sh: usize, seed: u64) -> u64 {
    let q = s.question.as_ptr() as *const u64;
    let k = s.key.name.as_mut_ptr() as *mut u64;
    let left = (sh * 8) as u64;
    let right = 56 - left;
    let mut prev = 0u64;
    let mut h = seed;
    let count = words_from(first);
    for j in 0..NAME_BUF / 8 {
        if j >= count {
            break;
        }
        let idx = (first + j) & 31;
        // SAFETY: j < 32 words of the 8-byte aligned question copy (NAME_BUF + 8 octets).
        let cur = unsafe { q.add(j).read() };
        // The octets of the previous word past the shift, then this word's; `>> 8` after
        // `>> right` so that no shift is by 64 (sh = 0 takes nothing from `prev`).
        let w = ascii_lower8(((prev >> right) >> 8) | (cur << left));
        prev = cur;
        // SAFETY: idx < 32 words of the 8-byte aligned key name.
        unsafe { k.add(idx).write(w) };
        h = suffix_hash_step(h, w);
    }
    h
}

/// The entry `e` found for the suffix of the query's key name that starts in word `first`
/// (its octets there under `head`) packed for `walk`, when `e` is the entry of that very name;
/// else `COLLISION` (another name's entry under the same hash: the query goes to userspace).
#[inline(always)]
fn verified(s: &Scratch, e: &SuffixEntry, first: usize, head: u64) -> u64 {
    let first = first & 31;
    let a = s.key.name.as_ptr() as *const u64;
    let b = e.name.as_ptr() as *const u64;
    // SAFETY: first < 32 words of both 8-byte aligned names.
    // The value's name starts at its first word (`dns_common::pack_name`).
    if unsafe { a.add(first).read() & head != b.read() } {
        return COLLISION;
    }
    let count = words_from(first);
    for i in 1..NAME_BUF / 8 {
        if i >= count {
            break;
        }
        let idx = (first + i) & 31;
        // SAFETY: idx and i < 32 words of the 8-byte aligned names.
        if unsafe { a.add(idx).read() != b.add(i).read() } {
            return COLLISION;
        }
    }
    pack(&e.entry)
}

/// `walk`'s result for a suffix whose key holds another name's entry: an anchor longer than
/// any name, which `longest` passes.
const COLLISION: u64 = u64::MAX;

#[inline(always)]
fn pack(e: &AnswerRef) -> u64 {
    e.kind as u64 | (e.anchor_len as u64) << 16 | (e.template as u64) << 32
}

/// The checksum (even-aligned, folded) of a suffix template's data with its compression
/// pointers shifted by `shift`: the template's own checksum plus `shift × ptr_weight` (RFC 1624;
/// see `dns_common::ptr_weight`), so the data is neither copied nor summed per query.
#[inline(always)]
pub fn shifted_csum(answer: &Answer, shift: usize) -> u16 {
    checksum::fold(answer.csum as u64 + (shift as u64 & 0xff) * answer.ptr_weight as u64)
}

/// Shifts by `shift` the compression pointers of the suffix template `answer` written into the
/// packet at offset `at`: only its `nptrs` pointers, in place.
#[inline(always)]
pub fn shift_ptrs(ctx: &XdpContext, answer: &Answer, at: usize, shift: usize) -> Result<(), u32> {
    let n = answer.nptrs as usize;
    let shift = shift & 0xff;
    for i in 0..MAX_PTRS {
        if i >= n {
            break;
        }
        let off = (at & 0x3ff) + (answer.ptrs[i] as usize & 0x1ff);
        let p: *mut [u8; 2] = packet::ptr_at(ctx, off).map_err(|_| counter::PASS_ERROR)?;
        // SAFETY: bounds checked by ptr_at.
        unsafe {
            let v = u16::from_be_bytes(p.read_unaligned()).wrapping_add(shift as u16);
            p.write_unaligned(v.to_be_bytes());
        }
    }
    Ok(())
}
