//! The index maps' keys and values (`SUFFIXES`, `ANSWERS`): names by a keyed hash, with the
//! name in the value for the XDP program to compare; the hash both sides compute; the bucket
//! directory `SUFFIXES` is found through (`DirBucket`); and the program's walk over a query
//! name's suffixes.

use crate::{AnswerRef, NAME_BUF};

/// Key of a `SUFFIXES` entry: a keyed hash of the suffix's name, with its length, generation
/// and flags (`KEY_FLAG_SUFFIX`, and `KEY_FLAG_DO` for a DO=1 entry). The XDP program looks a
/// query's suffixes up at its label starts, longest first — one lookup of a 16-octet key per
/// label instead of a walk down an LPM trie, whose every node is a cache miss in a big zone —
/// and the first found is the longest. The value holds the name itself (`SuffixEntry`), which
/// the program compares before it answers: a hash collision can only send a query to userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuffixMapKey {
    /// `suffix_hash` of the name right-aligned in 256 octets (as in `AnswerKey`).
    pub hash: u64,
    pub generation: u16,
    pub flags: u16,
    /// Wire length of the name.
    pub name_len: u16,
    pub _pad: u16,
}

/// A `SUFFIXES` slot: the entry's key, the index entry, and the name it is for (lower-cased,
/// as `pack_name` lays it out), which the program compares. `SUFFIXES` is an array; the
/// program finds a key's slot through the bucket directory `SUFFIX_DIR` (see `DirBucket`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SuffixEntry {
    pub key: SuffixMapKey,
    pub entry: AnswerRef,
    pub name: [u8; NAME_BUF],
}

/// Slots one `DirBucket` holds.
pub const DIR_WAYS: usize = 7;

/// Buckets a lookup probes at most: its home bucket and the next ones while their `overflow`
/// says that entries of earlier homes went past them. Userspace never places an entry further.
pub const DIR_PROBES: u32 = 4;

/// Bits of a directory word that hold the slot (its low bits).
pub const DIR_SLOT_BITS: u32 = 24;

/// Bits of a directory word, above the slot's, that hold its entry's template home
/// (`dir_hint`); the rest, above them, is the tag.
pub const DIR_HINT_BITS: u32 = 24;

/// Where a directory word's tag starts.
pub const DIR_TAG_SHIFT: u32 = DIR_SLOT_BITS + DIR_HINT_BITS;

/// Largest slot count of an array the directory points into.
pub const DIR_SLOTS_MAX: u32 = 1 << DIR_SLOT_BITS;

/// One cache line of the bucket directory of an index array (`SUFFIX_DIR` for `SUFFIXES`):
/// an open-addressing hash table that userspace keeps, and the XDP program reads with no
/// helper call (an array lookup is a bounds check and an add; a hash map's is a call, a jhash
/// and a walk of scattered elements, each a cache miss under load). A key's home bucket and tag
/// come from `dir_mix` of its fields; a word is `dir_word(tag, hint, slot)` or 0 (free). A
/// lookup scans the home bucket's words for the tag, compares the key of each slot they point
/// at, and goes on to the next bucket only while `overflow` is not 0 (at most `DIR_PROBES`
/// buckets). The word's hint is the home slot in `TEMPLATES` of its entry's template
/// (`TEMPLATE_HOME_MASK` of the id): the program starts loading the template there while it
/// loads the entry's slot, so that the two misses of a cold name overlap instead of coming
/// one after the other. Only a hint: the template is still found by the id the slot holds.
///
/// Never a wrong entry, whatever a word read says: the program answers from a slot only when
/// the slot's own key and name are the query's, and userspace writes a slot only when nothing
/// points at it (a new entry, or a changed one, takes a free slot; the word then moves to it)
/// and reuses a slot a grace period after the last word pointing at it went.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirBucket {
    pub words: [u64; DIR_WAYS],
    /// How many entries whose home is this bucket or an earlier one sit in a later bucket.
    pub overflow: u64,
}

/// The home and tag of a key (`dir_home`, `dir_tag`): its hash mixed with its other fields.
pub const fn dir_mix(hash: u64, generation: u16, flags: u16, name_len: u16) -> u64 {
    suffix_hash_step(
        hash,
        generation as u64 | (flags as u64) << 16 | (name_len as u64) << 32 | 1 << 63,
    )
}

/// The home bucket of a key of mix `m` in a directory of `mask + 1` buckets.
pub const fn dir_home(m: u64, mask: u32) -> u32 {
    m as u32 & mask
}

/// The tag of a key of mix `m`: its top bits, with the highest set (never 0, so a used word is
/// not). Its 15 bits of the mix only filter: the slot's key decides.
pub const fn dir_tag(m: u64) -> u64 {
    (m >> DIR_TAG_SHIFT) | 1 << (63 - DIR_TAG_SHIFT)
}

/// The directory word of tag `tag` pointing at `slot`, whose entry's template home is `hint`.
pub const fn dir_word(tag: u64, hint: u32, slot: u32) -> u64 {
    tag << DIR_TAG_SHIFT
        | ((hint & ((1 << DIR_HINT_BITS) - 1)) as u64) << DIR_SLOT_BITS
        | (slot & (DIR_SLOTS_MAX - 1)) as u64
}

/// The template home a directory word gives (see `DirBucket`).
pub const fn dir_hint(w: u64) -> u32 {
    ((w >> DIR_SLOT_BITS) & ((1 << DIR_HINT_BITS) - 1)) as u32
}

/// Buckets of the directory of an array of `slots` slots: a power of two, about one for two
/// slots, so that a full array leaves each 7-slot bucket 2 entries on average and an entry
/// almost never needs a second bucket.
pub const fn dir_buckets(slots: u32) -> u32 {
    let want = if slots / 2 > 1 { slots / 2 } else { 1 };
    want.next_power_of_two()
}

impl SuffixMapKey {
    /// `dir_mix` of this key.
    pub const fn mix(&self) -> u64 {
        dir_mix(self.hash, self.generation, self.flags, self.name_len)
    }
}

/// Key of an `ANSWERS` entry: the `AnswerKey` with its name replaced by the name's keyed hash
/// (`suffix_hash`, the same seed) and length. The value holds the name (`AnswerEntry`), which the
/// program compares before it answers, as for `SUFFIXES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnswerMapKey {
    pub hash: u64,
    pub generation: u16,
    pub qtype: u16,
    pub flags: u16,
    pub epoch: u16,
    /// Wire length of the name.
    pub name_len: u16,
    pub _pad: [u16; 3],
}

/// An `ANSWERS` slot: the entry's key, the index entry and the name it is for (as
/// `pack_name` lays it out). Found through `ANSWER_DIR`, as `SUFFIXES` slots are.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AnswerEntry {
    pub key: AnswerMapKey,
    pub entry: AnswerRef,
    pub name: [u8; NAME_BUF],
}

impl AnswerMapKey {
    /// `dir_mix` of this key (its type and epoch folded into the generation's word).
    pub const fn mix(&self) -> u64 {
        dir_mix(
            suffix_hash_step(
                self.hash,
                self.qtype as u64 | (self.epoch as u64) << 16 | 1 << 62,
            ),
            self.generation,
            self.flags,
            self.name_len,
        )
    }
}

/// The name of an index entry's value: the words of the name right-aligned in 256 octets (as
/// in `AnswerKey`, `len` octets long) from the one its first octet is in, moved to the front,
/// zeros after. The program compares the query's words from that word on with the value's
/// from its start, so it reads the value's first cache lines, beside the element's key, not
/// its last ones.
pub fn pack_name(name: &[u8; NAME_BUF], len: usize) -> [u8; NAME_BUF] {
    let first = (NAME_BUF - len.clamp(1, NAME_BUF)) / 8 * 8;
    let mut out = [0u8; NAME_BUF];
    let mut i = first;
    while i < NAME_BUF {
        out[i - first] = name[i];
        i += 1;
    }
    out
}

/// The right-aligned name (see `pack_name`) of a value's name, `len` octets long.
pub fn unpack_name(packed: &[u8; NAME_BUF], len: usize) -> [u8; NAME_BUF] {
    let first = (NAME_BUF - len.clamp(1, NAME_BUF)) / 8 * 8;
    let mut out = [0u8; NAME_BUF];
    let mut i = first;
    while i < NAME_BUF {
        out[i] = packed[i - first];
        i += 1;
    }
    out
}

/// Entries of `SUFFIX_SEED`: the seed, then for each generation parity the label depths no
/// suffix entry of that generation has (bit d: names of d labels, d < 63; bit 63, names of 63
/// or more, is never set). The program looks no suffix of such a depth up: a `www.dN.tld`
/// query to a TLD whose names have one or two labels takes one lookup, not two. Userspace
/// writes a generation's mask before switching to it and clears a depth's bit before it
/// inserts an entry of that depth into a generation being served, so the mask only ever
/// leaves out depths that have no entries.
/// Then `SUFFIX_DIR_MASK` and `ANSWER_DIR_MASK`, the bucket masks of `SUFFIX_DIR` and
/// `ANSWER_DIR` (their sizes − 1); then, per generation parity, the deep filter
/// (`filter_slot`).
pub const SUFFIX_SEED_ENTRIES: u32 = FILTER_BASE + 2 * FILTER_WORDS;

/// Label depth from which the walk's lookups go through the deep filter: a TLD has a few
/// names of three labels or more (its own hosts, `ns1.nic.tld`), so that depth is not skipped,
/// and without the filter every `www.dom.tld` query would look `www.dom.tld` up first, a cache
/// and TLB miss in a big zone, before `dom.tld`.
pub const FILTER_DEPTH: u32 = 3;

/// Words of a generation's deep filter: 512 bits, each set when no suffix entry of the
/// generation with `FILTER_DEPTH` labels or more has a hash that selects it (`filter_bit`);
/// the program looks no such suffix up (a few dozen deep names leave nearly every bit set). All
/// zero (a map not yet written) excludes nothing. Userspace writes a generation's filter before
/// switching to it and clears a bit before it inserts a deep entry that selects it into a
/// generation being served, as for the depth masks.
pub const FILTER_WORDS: u32 = 8;

/// The `SUFFIX_SEED` index of the first deep filter word.
pub const FILTER_BASE: u32 = 5;

const _: () = assert!(FILTER_BASE > SUFFIX_DIR_MASK && FILTER_BASE > ANSWER_DIR_MASK);

/// The `SUFFIX_SEED` index of word `word` of `generation`'s deep filter.
pub const fn filter_slot(generation: u16, word: u32) -> u32 {
    FILTER_BASE + (generation & 1) as u32 * FILTER_WORDS + (word & (FILTER_WORDS - 1))
}

/// The deep filter's word and bit a suffix key's hash selects (its top 9 bits).
pub const fn filter_bit(hash: u64) -> (u32, u64) {
    let b = (hash >> 55) as u32;
    ((b >> 6) & (FILTER_WORDS - 1), 1 << (b & 63))
}

/// The `SUFFIX_SEED` index of `SUFFIX_DIR`'s bucket mask.
pub const SUFFIX_DIR_MASK: u32 = 3;

/// The `SUFFIX_SEED` index of `ANSWER_DIR`'s bucket mask.
pub const ANSWER_DIR_MASK: u32 = 4;

/// The `SUFFIX_SEED` index of the depth mask of `generation` (see `SUFFIX_SEED_ENTRIES`).
pub const fn skip_slot(generation: u16) -> u32 {
    1 + (generation & 1) as u32
}

/// The depth bit of a name of `labels` labels (see `SUFFIX_SEED_ENTRIES`).
pub const fn depth_bit(labels: u32) -> u64 {
    1 << if labels > 63 { 63 } else { labels }
}

/// One step of the keyed hash of a name in `SUFFIXES` keys: `h` is the seed (`SUFFIX_SEED`)
/// before the first word, and the words are the name's right-aligned buffer read as
/// little-endian `u64`s, from the one its first octet is in to the last.
pub const fn suffix_hash_step(h: u64, word: u64) -> u64 {
    let x = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// The keyed hash of a name right-aligned in `name` (lower-cased, zero padded), `len` octets
/// long (see `suffix_hash_step`).
pub const fn suffix_hash(seed: u64, name: &[u8; NAME_BUF], len: usize) -> u64 {
    let mut h = seed;
    let mut i = (NAME_BUF - len) / 8;
    while i < NAME_BUF / 8 {
        let mut w = [0u8; 8];
        let mut j = 0;
        while j < 8 {
            w[j] = name[i * 8 + j];
            j += 1;
        }
        h = suffix_hash_step(h, u64::from_le_bytes(w));
        i += 1;
    }
    h
}

/// The XDP program's walk over a query name's suffixes, one `bpf_loop` step per label.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Walk {
    /// The entry found (`AnswerRef`: kind, anchor length, template from the low bits), or 0.
    pub found: u64,
    /// Offset in the query name of the suffix the next step looks up.
    pub at: u32,
    pub name_len: u32,
    /// The query had DO=1.
    pub dnssec_ok: u32,
    /// DO=0 entries that serve DO=1 too may still match (no longer DO=0 entry was found).
    pub plain: u32,
    /// `SuffixMapKey::generation` of the keys looked up.
    pub generation: u32,
    /// Labels of the suffix the next step looks up (the root has none).
    pub labels: u32,
    /// The keyed hash of the whole query name (the first step's), for its `ANSWERS` keys.
    pub name_hash: u64,
    /// The label depths no suffix entry of the generation has (`SUFFIX_SEED` at
    /// `skip_slot`): their steps look nothing up.
    pub skip: u64,
    /// `SUFFIX_DIR`'s bucket mask (`SUFFIX_SEED` at `SUFFIX_DIR_MASK`).
    pub dir_mask: u64,
    /// `ANSWER_DIR`'s (`SUFFIX_SEED` at `ANSWER_DIR_MASK`).
    pub answer_dir_mask: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_words_are_never_free_and_keep_their_slot() {
        for m in [0u64, 1, u64::MAX, 0x1234_5678_9abc_def0] {
            let tag = dir_tag(m);
            assert_ne!(dir_word(tag, 0, 0), 0);
            let w = dir_word(tag, 0x00ab_cdef, 77);
            assert_eq!(w & (DIR_SLOTS_MAX as u64 - 1), 77);
            assert_eq!(dir_hint(w), 0x00ab_cdef);
            assert_eq!(w >> DIR_TAG_SHIFT, tag);
            // A hint wider than its bits loses its high bits, not the tag's or the slot's.
            let w = dir_word(tag, u32::MAX, 77);
            assert_eq!(w >> DIR_TAG_SHIFT, tag);
            assert_eq!(w & (DIR_SLOTS_MAX as u64 - 1), 77);
        }
        const _: () = assert!(crate::TEMPLATE_HOME_MASK as u64 == (1 << DIR_HINT_BITS) - 1);
        assert_eq!(core::mem::size_of::<DirBucket>(), 64);
        // The deep filters' words are the map's last entries, one set per parity.
        assert_eq!(filter_slot(0, 0), FILTER_BASE);
        assert_eq!(filter_slot(1, FILTER_WORDS - 1), SUFFIX_SEED_ENTRIES - 1);
        assert_eq!(filter_slot(2, 0), FILTER_BASE);
        for h in [0u64, u64::MAX, 1 << 55, 0x1234_5678_9abc_def0] {
            let (w, bit) = filter_bit(h);
            assert!(w < FILTER_WORDS);
            assert_eq!(bit.count_ones(), 1);
        }
        assert_ne!(filter_bit(0), filter_bit(1 << 55));
        assert_eq!(dir_buckets(4096), 2048);
        assert_eq!(dir_buckets(4100), 4096);
        assert_eq!(dir_buckets(0), 1);
        // Keys that differ in any field differ in their mix.
        let a = dir_mix(5, 1, 4, 7);
        for b in [
            dir_mix(6, 1, 4, 7),
            dir_mix(5, 2, 4, 7),
            dir_mix(5, 1, 5, 7),
            dir_mix(5, 1, 4, 8),
        ] {
            assert_ne!(a, b);
        }
    }

    #[test]
    fn packed_names_start_at_their_first_word_and_come_back() {
        for len in 1..NAME_BUF {
            let mut name = [0u8; NAME_BUF];
            for (i, b) in name[NAME_BUF - len..].iter_mut().enumerate() {
                *b = 1 + (i % 250) as u8;
            }
            let p = pack_name(&name, len);
            let first = (NAME_BUF - len) / 8 * 8;
            assert_eq!(p[..NAME_BUF - first], name[first..]);
            assert!(p[NAME_BUF - first..].iter().all(|b| *b == 0));
            assert_eq!(unpack_name(&p, len), name);
        }
    }
}
