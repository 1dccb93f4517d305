//! NSEC3 denial of existence (RFC 5155 §7.2.2) for NXDOMAIN below an existing name: the hash
//! of the next closer name (SHA-1, RFC 5155 §5), the NSEC3 covering it found by a bounded
//! binary search over the zone's sorted owner hashes (`NSEC3_HASHES`), and the records of the
//! proof (`NSEC3_RECORDS`) appended to the template's head (SOA and RRSIG) in the engine's
//! order and deduplication: the NSEC3 matching the closest encloser, the one covering the
//! next closer name, the one covering the wildcard.
//!
//! The same program assembles the apex answers too long for one template (a signed TLD's NS
//! RRset with its glue and their RRSIGs): their templates name up to three fixed parts in the
//! zone's record array instead of NSEC3 records, written as the engine writes them for the
//! apex name, so nothing is hashed, searched or shifted.
//!
//! Every step runs in a `bpf_loop` callback (message blocks, iterations, search steps, the
//! assembly), with its state in per-CPU scratch: the verifier checks each callback on its own
//! and the packet path goes on with one state whatever paths a callback took.
//!
//! Nothing of the answer is copied or summed per query: the head and the records are written
//! into the packet from their map values (`store`) and their pointers shifted there, and the
//! body's checksum is the template's and the records' precomputed sums plus those shifts
//! times per-record weights (RFC 1624, `dns_common::Nsec3Record`). The first message of the
//! hash is laid out once in scratch by words (`setup`) and each block read from it by words.

use aya_ebpf::{cty::c_void, helpers::bpf_loop, programs::XdpContext};
use dns_common::{
    counter, Answer, AnswerKind, Nsec3Hash, Nsec3Meta, Nsec3Record, Nsec3Zone, Scratch, ANSWER_MAX,
    NAME_BUF, NSEC3_ITERATIONS_MAX, NSEC3_ITER_WORDS, NSEC3_META_LEN, NSEC3_MSG_MAX, NSEC3_NONE,
    NSEC3_PTR_INTERNAL, NSEC3_RECORD_MAX, NSEC3_RECORD_PTRS, NSEC3_SEARCH_STEPS, NSEC_META_FLAG,
};

use crate::{
    checksum, lookup, nsec, question, sha1, JUMP, NSEC3_HASHES, NSEC3_RECORDS, NSEC3_ZONES, SCRATCH,
};

/// The body of a denial, as `packet` needs it: its length, its checksum (even-aligned) and the
/// authority count. `store` writes it: the head from the template, the records from
/// `NSEC3_RECORDS` (`scratch.nsec3.parts`).
pub struct Denial {
    pub len: usize,
    pub csum: u16,
    pub nscount: u16,
}

/// Leaves the question in scratch (beside the template and shift `lookup::find` left) and
/// tail-calls the program that writes the answer: the denial program for NSEC3 denials, the
/// respond program for the rest; returns the pass reason when that program is missing.
#[inline(always)]
pub fn jump(ctx: &XdpContext, scratch: &mut Scratch, query: u64, denial: bool) -> u32 {
    set(&mut scratch.nsec3.query, query);
    // SAFETY: the helper returns only when the call fails.
    unsafe { JUMP.tail_call(ctx, if denial { 0 } else { 1 }) };
    if denial {
        counter::PASS_NSEC3
    } else {
        counter::PASS_ERROR
    }
}

/// Builds the denial for a query whose name (`name_len` octets) has the template's anchor at
/// offset `shift` (0: an exact entry, whose parts are all fixed).
#[inline(always)]
pub fn deny(
    scratch: &mut Scratch,
    answer: &Answer,
    shift: usize,
    name_len: usize,
) -> Result<Denial, u32> {
    let len = answer.len as usize;
    if !(NSEC3_META_LEN..=ANSWER_MAX).contains(&len) || shift > name_len {
        return Err(counter::PASS_ERROR);
    }
    let head = len - NSEC3_META_LEN;
    if head + NSEC3_META_LEN > ANSWER_MAX {
        return Err(counter::PASS_ERROR);
    }
    // SAFETY: head + 16 ≤ ANSWER_MAX, inside `data`.
    let meta: Nsec3Meta =
        unsafe { (answer.data.as_ptr().add(head) as *const Nsec3Meta).read_unaligned() };
    // The template's sum covers the metadata after the head: taken out again (its octets
    // as 16-bit memory-order words, byte-swapped at an odd offset).
    let mut meta_sum = 0u64;
    for v in [meta.slot, meta.closest, meta.next_closer, meta.wildcard] {
        meta_sum += (v & 0xffff) as u64 + (v >> 16) as u64;
    }
    let meta_sum = checksum::at_parity(checksum::fold(meta_sum), head & 1 == 1);
    let head_csum = checksum::fold(lookup::shifted_csum(answer, shift) as u64 + 0xffff - meta_sum);
    // The callbacks change scratch behind the compiler's back: everything passed to them or
    // read from them goes through volatile accesses.
    let n = &mut scratch.nsec3;
    set(&mut n.qname_len, name_len as u32);
    set(&mut n.shift, shift as u32);
    set(&mut n.head, head as u32);
    set(&mut n.head_csum, head_csum as u32);
    set(&mut n.nscount, answer.nscount as u32);
    set(&mut n.error, counter::PASS_NSEC3);
    set(&mut n.blocks, 0);
    set(&mut n.iterations, 0);
    set(&mut n.steps, 0);
    set(&mut n.slot, meta.slot & !NSEC_META_FLAG);
    let answered = if answer.ancount > 0 {
        AnswerKind::Exact
    } else {
        AnswerKind::Nsec3Negative
    };
    set(&mut n.answered, answered as u32);
    set(&mut n.closest, meta.closest);
    set(&mut n.next_closer, meta.next_closer);
    set(&mut n.wildcard, meta.wildcard);
    // An NSEC zone's denial (`nsec`): the same meta slots, another search.
    set(
        &mut scratch.nsec.active,
        (meta.slot & NSEC_META_FLAG != 0) as u32,
    );
    set(&mut scratch.nsec.steps, 0);
    run(1, setup)?;
    run(get(&scratch.nsec3.blocks), first_block)?;
    run(get(&scratch.nsec3.iterations), iterate)?;
    run(get(&scratch.nsec3.steps).min(1), search)?;
    run(get(&scratch.nsec.steps).min(1), nsec::search)?;
    run(1, place_parts)?;
    let n = &scratch.nsec3;
    let error = get(&n.error);
    if error != 0 {
        return Err(error);
    }
    Ok(Denial {
        len: get(&n.len) as usize & 0x7ff,
        csum: get(&n.csum) as u16,
        nscount: get(&n.nscount) as u16,
    })
}

/// The `AnswerKind` a finished answer of the denial program is counted as: an apex answer
/// assembled from parts as the exact answer it is.
#[inline(always)]
pub fn answered(kind: u16) -> u16 {
    if kind != AnswerKind::Nsec3Negative as u16 {
        return kind;
    }
    match scratch() {
        Some(s) => get(&s.nsec3.answered) as u16,
        None => kind,
    }
}

/// A volatile read of scratch that a callback may have changed.
#[inline(always)]
pub(crate) fn get<T: Copy>(v: &T) -> T {
    // SAFETY: a plain read of a valid reference.
    unsafe { core::ptr::read_volatile(v) }
}

/// A volatile write of scratch for a callback or the program to read.
#[inline(always)]
pub(crate) fn set<T: Copy>(slot: &mut T, v: T) {
    // SAFETY: a plain write through a valid reference.
    unsafe { core::ptr::write_volatile(slot, v) }
}

type Callback = extern "C" fn(u32, *mut c_void) -> i64;

/// Runs `f` `n` times with `bpf_loop`.
#[inline(always)]
fn run(n: u32, f: Callback) -> Result<(), u32> {
    // No branch on n == 0 (bpf_loop then returns 0): one path on to the next step.
    // SAFETY: `f` is a static BPF callback; it takes no context.
    let r = unsafe { bpf_loop(n, f as *mut c_void, core::ptr::null_mut(), 0) };
    if r != n as i64 {
        return Err(counter::PASS_NSEC3);
    }
    Ok(())
}

#[inline(always)]
fn scratch() -> Option<&'static mut Scratch> {
    // SAFETY: per-CPU scratch, used by this CPU only for the duration of this program.
    SCRATCH.get_ptr_mut(0).map(|s| unsafe { &mut *s })
}

/// The scratch space and the zone of the denial being built (a missing zone fails it).
#[inline(always)]
fn with_zone() -> Option<(&'static mut Scratch, &'static Nsec3Zone)> {
    let s = scratch()?;
    match NSEC3_ZONES.get(s.nsec3.slot) {
        Some(z) => Some((s, z)),
        None => {
            s.nsec3.error = counter::PASS_NSEC3;
            None
        }
    }
}

/// Checks the zone of the template's `Nsec3Meta`; finds the next closer name (the query
/// name's labels below the anchor, all but one cut off, RFC 5155 §1.3) and plans the hash.
#[inline(never)]
extern "C" fn setup(_index: u32, _ctx: *mut c_void) -> i64 {
    let Some(s) = scratch() else {
        return 1;
    };
    let (slot, closest, next_closer) = (s.nsec3.slot, s.nsec3.closest, s.nsec3.next_closer);
    let Some(zone) = NSEC3_ZONES.get(slot) else {
        return 1;
    };
    let name_len = s.nsec3.qname_len as usize;
    let apex_len = zone.apex_len as usize;
    if zone.records == 0 || apex_len == 0 || apex_len > name_len || closest == NSEC3_NONE {
        return 1;
    }
    s.nsec3.len = s.nsec3.head;
    s.nsec3.csum = s.nsec3.head_csum;
    s.nsec3.lens = [s.nsec3.head as u16, 0, 0, 0];
    if s.nsec.active != 0 {
        return nsec::setup(s, zone);
    }
    if next_closer != NSEC3_NONE {
        s.nsec3.error = 0;
        return 1;
    }
    if zone.count == 0 {
        return 1;
    }
    // The label that ends where the anchor starts.
    let shift = s.nsec3.shift as usize;
    let start = nsec::label_before(&s.question, shift);
    if start >= shift {
        return 1;
    }
    let nc_len = name_len - start;
    let total = nc_len + zone.salt_len as usize;
    let blocks = (total + 8) / 64 + 1;
    if blocks * 64 > NSEC3_MSG_MAX {
        return 1;
    }
    message(s, zone);
    s.nsec3.state = sha1::INIT;
    s.nsec3.name_len = nc_len as u32;
    s.nsec3.total = total as u32;
    s.nsec3.blocks = blocks as u32;
    s.nsec3.iterations =
        zone.iterations.min(NSEC3_ITERATIONS_MAX) as u32 * zone.iter_blocks.min(5) as u32;
    // A range of n entries is empty after bit-length(n) halvings.
    s.nsec3.steps = (32 - zone.count.leading_zeros()).min(NSEC3_SEARCH_STEPS + 1);
    s.nsec3.lo = 0;
    s.nsec3.hi = zone.count;
    s.nsec3.error = 0;
    1
}

/// Lays out the first message, `lower(next closer) || salt`, padded (FIPS 180-4 §5.1.1), in
/// `msg` by whole words: the key name (lower-cased and right-aligned, so the next closer name
/// ends it), the zone's salt right after it (zero padded in the map), the padding octet and
/// the zeros a last block can reach. The message then starts `next closer` octets before
/// the salt; the length goes into the last block's last word.
#[inline(always)]
fn message(s: &mut Scratch, zone: &Nsec3Zone) {
    const HALF: usize = NAME_BUF / 8;
    let msg = s.nsec3.msg.as_mut_ptr();
    let name = s.key.name.as_ptr() as *const u64;
    let salt = zone.salt.as_ptr() as *const u64;
    for i in 0..HALF {
        // SAFETY: the name and the salt hold NAME_BUF octets each, `msg` twice that and more;
        // all of them 8-byte aligned.
        unsafe {
            msg.add(i).write(name.add(i).read());
            msg.add(HALF + i).write(salt.add(i).read());
        }
    }
    // A message ends at most 255 + 255 + 9 octets after its start (below octet 256), its last
    // block at most 63 octets later: words 64..80 at most; zeroed to 96.
    crate::zero::words::<32>(s.nsec3.msg[2 * HALF..].as_mut_ptr() as *mut u8);
    let end = NAME_BUF + (zone.salt_len as usize & 0xff);
    let bytes = s.nsec3.msg.as_mut_ptr() as *mut u8;
    // SAFETY: end < 2 × NAME_BUF, inside `msg`.
    unsafe { bytes.add(end).write(0x80) };
}

/// Block `b` of the first message (see `message`): eight big-endian words of `msg` from the
/// message's start, each made of two aligned words, then SHA-1.
#[inline(never)]
extern "C" fn first_block(b: u32, _ctx: *mut c_void) -> i64 {
    let Some(s) = scratch() else {
        return 1;
    };
    let nc_len = s.nsec3.name_len as usize & 0xff;
    let total = s.nsec3.total & 0x3ff;
    let start = NAME_BUF - nc_len;
    let first = start / 8 + (b as usize & 0xf) * 8;
    // 0..=56 bits; the low word moves down by 64 − r in two shifts, so that r = 0 adds 0.
    let r = (start % 8 * 8) as u64;
    let w = &mut s.nsec3.w;
    let msg = s.nsec3.msg.as_ptr();
    for t in 0..8 {
        let k = (first + t) & 0x7f;
        // SAFETY: k + 1 ≤ 128 < NSEC3_MSG_WORDS.
        let (hi, lo) = unsafe {
            (
                u64::from_be(msg.add(k).read()),
                u64::from_be(msg.add(k + 1).read()),
            )
        };
        let v = (hi << r) | ((lo >> 1) >> (63 - r));
        w[2 * t] = (v >> 32) as u32;
        w[2 * t + 1] = v as u32;
    }
    if b + 1 == s.nsec3.blocks {
        w[15] = total * 8;
    }
    sha1::compress(&mut s.nsec3.state, w);
    0
}

/// One block of the iterations: iteration `k / blocks`, block `k % blocks` of
/// `IH(k-1) || salt` (RFC 5155 §5), from the zone's precomputed padded message. A new
/// iteration starts from the hash the last one left.
#[inline(never)]
extern "C" fn iterate(k: u32, _ctx: *mut c_void) -> i64 {
    let Some((s, zone)) = with_zone() else {
        return 1;
    };
    let blocks = zone.iter_blocks as u32;
    if blocks == 0 || blocks > 5 {
        s.nsec3.error = counter::PASS_NSEC3;
        return 1;
    }
    // Through memory, so that the bound checked is the bound the verifier sees.
    let b = question::opaque(&mut s.opaque, (k % blocks) as usize).min(4);
    for j in 0..16 {
        s.nsec3.w[j] = zone.iter_words[(b * 16 + j) % NSEC3_ITER_WORDS];
    }
    if b == 0 {
        let prev = s.nsec3.state;
        s.nsec3.w[..5].copy_from_slice(&prev);
        s.nsec3.state = sha1::INIT;
    }
    sha1::compress(&mut s.nsec3.state, &mut s.nsec3.w);
    0
}

/// The binary search for the last owner hash not above the hash, all its steps in one call:
/// each step reads the bounds from scratch and writes them back (volatile), so that every
/// step starts from the same state for the verifier whatever the comparisons before it.
#[inline(never)]
extern "C" fn search(_index: u32, _ctx: *mut c_void) -> i64 {
    let Some((s, zone)) = with_zone() else {
        return 1;
    };
    let steps = get(&s.nsec3.steps);
    for i in 0..NSEC3_SEARCH_STEPS + 1 {
        let (lo, hi) = (get(&s.nsec3.lo), get(&s.nsec3.hi));
        if i >= steps || lo >= hi {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let Some(m) = NSEC3_HASHES.get(zone.base.wrapping_add(mid)) else {
            s.nsec3.error = counter::PASS_NSEC3;
            return 1;
        };
        if not_above(m, &Nsec3Hash(get(&s.nsec3.state))) {
            set(&mut s.nsec3.lo, mid + 1);
        } else {
            set(&mut s.nsec3.hi, mid);
        }
    }
    0
}

/// `a <= b`, word by word.
#[inline(always)]
fn not_above(a: &Nsec3Hash, b: &Nsec3Hash) -> bool {
    for i in 0..5 {
        if a.0[i] != b.0[i] {
            return a.0[i] < b.0[i];
        }
    }
    true
}

/// Places the proof's records in order (see `place`), in one call. Stopping early leaves the
/// pass reason in `error`.
#[inline(never)]
extern "C" fn place_parts(_index: u32, _ctx: *mut c_void) -> i64 {
    for k in 0..3 {
        if place(k) != 0 {
            return 1;
        }
    }
    0
}

/// Places record `k` of the proof (closest encloser, next closer, wildcard) after the head
/// and what came before, leaving out one already there, and adds it to the body's sum.
#[inline(always)]
fn place(k: u32) -> i64 {
    let Some(s) = scratch() else {
        return 1;
    };
    if s.nsec3.error != 0 {
        return 1;
    }
    s.nsec3.error = counter::PASS_NSEC3;
    let Some(zone) = NSEC3_ZONES.get(s.nsec3.slot) else {
        return 1;
    };
    if k == 0 && s.nsec3.steps != 0 {
        let lo = s.nsec3.lo;
        if lo != s.nsec3.hi || lo > zone.count {
            return 1;
        }
        s.nsec3.next_closer = if lo == 0 { zone.count - 1 } else { lo - 1 };
    }
    let (ce, nc, wc) = (s.nsec3.closest, s.nsec3.next_closer, s.nsec3.wildcard);
    let idx = match k {
        0 => ce,
        1 if nc != ce && nc != wc => nc,
        2 if wc != ce => wc,
        _ => NSEC3_NONE,
    };
    if idx == NSEC3_NONE {
        s.nsec3.error = 0;
        return 0;
    }
    if idx >= zone.records {
        return 1;
    }
    let Some(rec) = NSEC3_RECORDS.get(zone.base.wrapping_add(idx)) else {
        return 1;
    };
    let rlen = rec.len as u64;
    if rlen == 0 || rlen > NSEC3_RECORD_MAX as u64 {
        return 1;
    }
    let name_len = s.nsec3.qname_len as u64 & 0x1ff;
    // NSEC records (`nsec`) are written against the anchor, NSEC3 records against the apex.
    let apex_shift = if s.nsec.active != 0 {
        s.nsec3.shift as u64 & 0xff
    } else {
        name_len.saturating_sub(zone.apex_len as u64)
    };
    let off = s.nsec3.len as u64 & 0x7ff;
    let slot = question::opaque(&mut s.opaque, k as usize).min(2);
    // Its sum with every pointer shifted by `apex_shift` and the internal ones by its offset.
    let c = checksum::fold(
        rec.csum as u64 + apex_shift * rec.weight as u64 + off * rec.internal_weight as u64,
    );
    let sum = s.nsec3.csum as u64 + checksum::at_parity(c, off & 1 == 1);
    s.nsec3.csum = checksum::fold(sum) as u32;
    s.nsec3.parts[slot] = zone.base.wrapping_add(idx);
    s.nsec3.apex_shift = apex_shift as u32;
    s.nsec3.lens[slot + 1] = rlen as u16;
    s.nsec3.nscount += rec.rrs as u32;
    s.nsec3.len = (off + rlen) as u32;
    s.nsec3.error = 0;
    0
}

/// Writes the denial's body into the packet at `at`: the template's head and the records of
/// the proof from their map values, each followed by its pointers' shifts. A BPF function of
/// its own: inlined, its branches let the compiler join the program's exits through
/// registers that hold packet pointers on some paths, which the verifier refuses.
#[inline(never)]
pub fn store(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    answer: &Answer,
    at: usize,
) -> Result<(), u32> {
    let lens: [u16; 4] = get(&scratch.nsec3.lens);
    let parts: [u32; 3] = get(&scratch.nsec3.parts);
    let shift = get(&scratch.nsec3.shift) as usize;
    let apex_shift = get(&scratch.nsec3.apex_shift) as u16 & 0xff;
    let head = lens[0] as usize & 0x1ff;
    if head > 0 {
        store_part(ctx, at, answer.data.as_ptr(), head)?;
        lookup::shift_ptrs(ctx, answer, at, shift)?;
    }
    let mut off = head;
    for k in 0..3 {
        let n = lens[k + 1] as usize & 0x1ff;
        if n == 0 {
            continue;
        }
        let rec = NSEC3_RECORDS.get(parts[k]).ok_or(counter::PASS_ERROR)?;
        let at = at + off;
        store_part(ctx, at, rec.data.as_ptr(), n)?;
        shift_record_ptrs(ctx, rec, at, apex_shift, off as u16 & 0x7ff)?;
        off += n;
    }
    Ok(())
}

/// Shifts the pointers of a record written at `at` in the packet, `body_at` into the body:
/// each by `apex_shift`, the internal ones (into the record) by `body_at` too.
#[inline(always)]
fn shift_record_ptrs(
    ctx: &XdpContext,
    rec: &Nsec3Record,
    at: usize,
    apex_shift: u16,
    body_at: u16,
) -> Result<(), u32> {
    let n = rec.nptrs as usize;
    for i in 0..NSEC3_RECORD_PTRS {
        if i >= n {
            break;
        }
        let p = rec.ptrs[i];
        let internal = (p & NSEC3_PTR_INTERNAL) >> 15;
        let add = apex_shift + internal * body_at;
        let off = (at & 0xfff) + (p as usize & 0x1ff);
        let ptr: *mut [u8; 2] = crate::packet::ptr_at(ctx, off).map_err(|_| counter::PASS_ERROR)?;
        // SAFETY: bounds checked by ptr_at.
        unsafe {
            let v = u16::from_be_bytes(ptr.read_unaligned()).wrapping_add(add);
            ptr.write_unaligned(v.to_be_bytes());
        }
    }
    Ok(())
}

#[inline(always)]
fn store_part(ctx: &XdpContext, at: usize, buf: *const u8, len: usize) -> Result<(), u32> {
    if len > NSEC3_RECORD_MAX {
        return Err(counter::PASS_ERROR);
    }
    // SAFETY: the helper checks the packet bounds; `buf` holds at least NSEC3_RECORD_MAX bytes.
    let r = unsafe {
        aya_ebpf::helpers::bpf_xdp_store_bytes(ctx.ctx, at as u32, buf as *mut _, len as u32)
    };
    if r != 0 {
        return Err(counter::PASS_ERROR);
    }
    Ok(())
}
