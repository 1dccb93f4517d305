//! NSEC denial of existence (RFC 4035 §3.1.3.2) for NXDOMAIN below a name with children in an
//! NSEC zone: the NSEC covering the query name is that of the last child label of the closest
//! encloser (the anchor) that sorts before the query's label below it, in canonical order
//! (RFC 4034 §6.1), found by a bounded binary search over the encloser's sorted labels
//! (`NSEC_LABELS`). The denial program (`nsec3`) then appends it and the NSEC covering the
//! wildcard, fixed in the template (`dns_common::NsecMeta`), from the zone's records. Those
//! records are written against the anchor, so their pointers into the question move by the
//! anchor's offset in the query name (`nsec3::place`).
//!
//! The search is a `bpf_loop` callback with its state in per-CPU scratch, as in `nsec3`.

use aya_ebpf::cty::c_void;
use dns_common::{
    counter, Nsec3Zone, NsecLabel, NsecScratch, Scratch, NAME_BUF, NSEC3_NONE, NSEC3_SEARCH_STEPS,
    NSEC_LABEL_MAX,
};

use crate::nsec3::{get, set};
use crate::{NSEC3_ZONES, NSEC_LABELS, SCRATCH};

/// Plans the search, from `nsec3::setup` once the zone and the template's head are checked:
/// takes the template's `NsecMeta` out of the NSEC3 fields (`closest`: the first label entry,
/// `next_closer`: their count) and finds the query's label below the anchor. Leaves the pass reason in `error` (the last search step clears it).
#[inline(always)]
pub fn setup(s: &mut Scratch, zone: &Nsec3Zone) -> i64 {
    let count = s.nsec3.next_closer;
    s.nsec3.next_closer = NSEC3_NONE;
    s.nsec3.error = counter::PASS_NSEC3;
    if count == 0 || count > 1 << NSEC3_SEARCH_STEPS || zone.count != 0 {
        return 1;
    }
    let name_len = s.nsec3.qname_len as usize;
    let shift = s.nsec3.shift as usize;
    let start = label_before(&s.question, shift);
    if start >= shift || name_len > NAME_BUF {
        return 1;
    }
    let len = s.question[start & 0xff] as usize;
    if len == 0 || len >= NSEC_LABEL_MAX {
        return 1;
    }
    s.nsec.from = (NAME_BUF - name_len + start + 1) as u32;
    s.nsec.label_len = len as u32;
    s.nsec.done = 0;
    // A range of n entries is empty after bit-length(n) halvings; one more step takes it.
    s.nsec.steps = 32 - count.leading_zeros() + 1;
    s.nsec3.lo = 0;
    s.nsec3.hi = count;
    1
}

/// The offset of the question name's label that ends at `shift` (where the anchor starts),
/// `NAME_BUF` when none does.
#[inline(always)]
pub fn label_before(question: &[u8; NAME_BUF + 8], shift: usize) -> usize {
    let mut pos = 0usize;
    for _ in 0..128 {
        let l = question[pos & 0xff] as usize;
        let next = pos + l + 1;
        if next == shift {
            return pos;
        }
        if l == 0 || next > shift {
            break;
        }
        pos = next;
    }
    NAME_BUF
}

/// The binary search for the first label entry not before the query's label, all its steps
/// in one call (the bounds through scratch, volatile, as in `nsec3::search`); once the range
/// is empty, takes the NSEC of the entry before it (the first entry, the encloser's own,
/// sorts before every label) as the one covering the query name. A label equal to an
/// entry's is below a name the maps do not index: passed.
#[inline(never)]
pub extern "C" fn search(_index: u32, _ctx: *mut c_void) -> i64 {
    // SAFETY: per-CPU scratch, used by this CPU only for the duration of this program.
    let Some(s) = SCRATCH.get_ptr_mut(0).map(|s| unsafe { &mut *s }) else {
        return 1;
    };
    let Some(zone) = NSEC3_ZONES.get(s.nsec3.slot) else {
        return 1;
    };
    copy_label(s);
    let base = zone.labels.wrapping_add(s.nsec3.closest);
    let steps = get(&s.nsec.steps);
    for i in 0..NSEC3_SEARCH_STEPS + 2 {
        if i >= steps || get(&s.nsec.done) != 0 {
            break;
        }
        if step(s, base) != 0 {
            return 1;
        }
    }
    0
}

/// One step of `search`: 0 to go on, 1 to stop with the pass reason left in scratch.
#[inline(always)]
fn step(s: &mut Scratch, base: u32) -> i64 {
    let (lo, hi) = (get(&s.nsec3.lo), get(&s.nsec3.hi));
    if lo >= hi {
        if lo == 0 {
            return 1;
        }
        let Some(e) = NSEC_LABELS.get(base.wrapping_add(lo - 1)) else {
            return 1;
        };
        s.nsec3.closest = e.record;
        set(&mut s.nsec.done, 1);
        s.nsec3.error = 0;
        return 0;
    }
    let mid = lo + (hi - lo) / 2;
    let Some(e) = NSEC_LABELS.get(base.wrapping_add(mid)) else {
        return 1;
    };
    match compare(e, &s.nsec) {
        c if c < 0 => set(&mut s.nsec3.lo, mid + 1),
        c if c > 0 => set(&mut s.nsec3.hi, mid),
        _ => return 1,
    }
    0
}

/// Copies the query's label below the anchor from the key name (lower-cased, right-aligned),
/// zero padded. In the search's callback, where the label's place and length are unknowns
/// read from scratch, so that the verifier walks the copy once.
#[inline(always)]
fn copy_label(s: &mut Scratch) {
    let from = s.nsec.from as usize;
    let len = s.nsec.label_len as usize;
    for j in 0..NSEC_LABEL_MAX {
        let byte = s.key.name[(from + j) & 0xff];
        s.nsec.label[j] = if j < len { byte } else { 0 };
    }
}

/// The canonical order of an entry's label against the query's: the padded octets as
/// big-endian words, then the lengths.
#[inline(always)]
fn compare(e: &NsecLabel, q: &NsecScratch) -> i32 {
    let a = e.label.as_ptr() as *const u64;
    let b = q.label.as_ptr() as *const u64;
    for i in 0..NSEC_LABEL_MAX / 8 {
        // SAFETY: both labels are 8-byte aligned and NSEC_LABEL_MAX octets long.
        let (x, y) = unsafe { (u64::from_be(a.add(i).read()), u64::from_be(b.add(i).read())) };
        if x != y {
            return if x < y { -1 } else { 1 };
        }
    }
    if e.len == q.label_len {
        0
    } else if e.len < q.label_len {
        -1
    } else {
        1
    }
}
