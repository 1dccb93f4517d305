//! Lookups in the index arrays through their bucket directories (`dns_common::DirBucket`):
//! `SUFFIXES` through `SUFFIX_DIR`. Array lookups only, which the verifier inlines: no helper
//! call, no jhash, and one cache line of directory per bucket probed.

use dns_common::{
    dir_home, dir_tag, SuffixEntry, SuffixMapKey, DIR_PROBES, DIR_SLOTS_MAX, DIR_SLOT_BITS,
    DIR_WAYS,
};

use crate::{SUFFIXES, SUFFIX_DIR};

/// The `SUFFIXES` slot of `key`, found through `SUFFIX_DIR` (of `mask + 1` buckets): the slot a
/// word with the key's tag points at whose own key is `key`. The caller still compares the name.
#[inline(always)]
pub fn suffix(key: &SuffixMapKey, mask: u32) -> Option<&'static SuffixEntry> {
    let m = key.mix();
    let tag = dir_tag(m);
    let home = dir_home(m, mask);
    let want = words(key);
    for probe in 0..DIR_PROBES {
        let bucket = SUFFIX_DIR.get(home.wrapping_add(probe) & mask)?;
        for i in 0..DIR_WAYS {
            let w = bucket.words[i];
            if w >> DIR_SLOT_BITS != tag {
                continue;
            }
            let Some(e) = SUFFIXES.get((w & (DIR_SLOTS_MAX as u64 - 1)) as u32) else {
                continue;
            };
            if words(&e.key) == want {
                return Some(e);
            }
        }
        if bucket.overflow == 0 {
            return None;
        }
    }
    None
}

/// A suffix key as its two words, for comparing.
#[inline(always)]
fn words(k: &SuffixMapKey) -> (u64, u64) {
    let rest = k.generation as u64 | (k.flags as u64) << 16 | (k.name_len as u64) << 32;
    (k.hash, rest)
}
