//! Lookups in the index arrays through their bucket directories (`dns_common::DirBucket`):
//! `SUFFIXES` through `SUFFIX_DIR`, `ANSWERS` through `ANSWER_DIR`. Array lookups only, which
//! the verifier inlines: no helper call, no jhash, and one cache line of directory per bucket
//! probed. A word whose tag matches starts the load of its entry's template (its hint) before
//! the slot's, so that their misses overlap.

use aya_ebpf::maps::Array;
use dns_common::{
    dir_hint, dir_home, dir_tag, AnswerEntry, AnswerMapKey, DirBucket, SuffixEntry, SuffixMapKey,
    DIR_PROBES, DIR_SLOTS_MAX, DIR_TAG_SHIFT, DIR_WAYS,
};

use crate::{ANSWERS, ANSWER_DIR, SUFFIXES, SUFFIX_DIR, TEMPLATES};

/// The `SUFFIXES` slot of `key`, found through `SUFFIX_DIR` (of `mask + 1` buckets). The caller
/// still compares the name.
#[inline(always)]
pub fn suffix(key: &SuffixMapKey, mask: u32) -> Option<&'static SuffixEntry> {
    let want = suffix_words(key);
    find(&SUFFIX_DIR, &SUFFIXES, key.mix(), mask, |e| {
        suffix_words(&e.key) == want
    })
}

/// Loads (discarded) the home bucket of `key` in `SUFFIX_DIR` (of `mask + 1` buckets), for a
/// lookup to come.
#[inline(always)]
pub fn prefetch_suffix(key: &SuffixMapKey, mask: u32) {
    if let Some(b) = SUFFIX_DIR.get_ptr(dir_home(key.mix(), mask) & mask) {
        // SAFETY: array values stay allocated while the map exists; volatile, so the load
        // stays.
        unsafe { core::ptr::read_volatile(&(*b).overflow) };
    }
}

/// The `ANSWERS` slot of `key`, found through `ANSWER_DIR`. The caller still compares the name.
#[inline(always)]
pub fn answer(key: &AnswerMapKey, mask: u32) -> Option<&'static AnswerEntry> {
    let want = answer_words(key);
    find(&ANSWER_DIR, &ANSWERS, key.mix(), mask, |e| {
        answer_words(&e.key) == want
    })
}

/// The slot of `slots` that a word with the tag of mix `m` points at and `is_key` accepts, in
/// the key's home bucket of `dir` or the next ones while their overflow says so.
#[inline(always)]
fn find<V>(
    dir: &'static Array<DirBucket>,
    slots: &'static Array<V>,
    m: u64,
    mask: u32,
    is_key: impl Fn(&V) -> bool,
) -> Option<&'static V> {
    let tag = dir_tag(m);
    let home = dir_home(m, mask);
    for probe in 0..DIR_PROBES {
        let bucket = dir.get(home.wrapping_add(probe) & mask)?;
        for i in 0..DIR_WAYS {
            let w = bucket.words[i];
            if w >> DIR_TAG_SHIFT != tag {
                continue;
            }
            prefetch_template(dir_hint(w));
            let Some(e) = slots.get((w & (DIR_SLOTS_MAX as u64 - 1)) as u32) else {
                continue;
            };
            if is_key(e) {
                return Some(e);
            }
        }
        if bucket.overflow == 0 {
            return None;
        }
    }
    None
}

/// Loads (discarded) the id and the first body lines of the `TEMPLATES` slot `home`, where
/// the entry's template most likely is (`lookup::template` reads them next). A load only:
/// the slot is found again, by the id, before anything of it is used.
#[inline(always)]
fn prefetch_template(home: u32) {
    if let Some(t) = TEMPLATES.get_ptr(home) {
        let p = t as *const u8;
        // SAFETY: array values stay allocated while the map exists; offsets 0, 128 and 192
        // are inside the slot (asserted below); volatile, so the loads stay.
        unsafe {
            core::ptr::read_volatile(p);
            core::ptr::read_volatile(p.add(128));
            core::ptr::read_volatile(p.add(192));
        }
    }
}

const _: () = assert!(core::mem::size_of::<dns_common::Answer>() > 192);

/// A suffix key as its two words, for comparing.
#[inline(always)]
fn suffix_words(k: &SuffixMapKey) -> (u64, u64) {
    let rest = k.generation as u64 | (k.flags as u64) << 16 | (k.name_len as u64) << 32;
    (k.hash, rest)
}

/// An answer key as its words, for comparing.
#[inline(always)]
fn answer_words(k: &AnswerMapKey) -> (u64, u64, u64) {
    let a = k.generation as u64 | (k.qtype as u64) << 16 | (k.flags as u64) << 32;
    let b = k.epoch as u64 | (k.name_len as u64) << 16;
    (k.hash, a, b)
}
