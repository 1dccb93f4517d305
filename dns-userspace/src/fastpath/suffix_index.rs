//! The `SUFFIXES` index as userspace writes and reads it: entries under their keyed-hash keys
//! (`dns_common::SuffixMapKey`), each with its key and name, in the slots of the `SUFFIXES`
//! array, found through the bucket directory `SUFFIX_DIR` (`directory`); and the seed of the
//! hash (`SUFFIX_SEED`), random per program load, with the directory's mask. Userspace keeps
//! suffix keys in their own form (`SuffixKey`); this is where they become map keys, and where
//! map keys become them again.
//!
//! Two names under one key would make one of them unanswerable in XDP (the program compares
//! the name it finds and passes the query); worse, removing the one stored would leave the
//! other without an entry. So an insert that finds another name under its key fails: the
//! publication fails, and the next program load draws a new seed.

use anyhow::{bail, Context as _, Result};
use aya::maps::{Array, MapData};
use dns_common::{
    depth_bit, filter_bit, filter_slot, pack_name, skip_slot, suffix_flag_byte, suffix_generation,
    suffix_hash, unpack_name, AnswerRef, DirBucket, SuffixEntry, SuffixMapKey, FILTER_DEPTH,
    FILTER_WORDS, KEY_FLAG_DO, KEY_FLAG_SUFFIX, NAME_BUF, SUFFIX_DIR_MASK,
};

use super::compile::SuffixKey;
use super::slots::Slots;

pub struct SuffixIndex {
    slots: Slots<SuffixEntry>,
    seed: u64,
    /// The maps were a running program's (the seed was set).
    adopted: bool,
    /// `SUFFIX_SEED` (the seed, the depth masks and the deep filters), and the masks and
    /// filters as last written there (userspace is their only writer).
    seed_map: Array<MapData, u64>,
    skip: [u64; 2],
    exclude: [Filter; 2],
}

/// A generation's deep filter (`dns_common::FILTER_WORDS`): a set bit excludes the deep
/// suffixes whose hash selects it.
type Filter = [u64; FILTER_WORDS as usize];

impl SuffixIndex {
    /// The index over `map` and its directory `dir`, with the seed in `seed_map`: kept when it
    /// is set (maps taken over from a running program, whose directory is read back), else
    /// drawn (or `fixed`, when not 0) and written with the directory's mask.
    pub fn new(
        map: Array<MapData, SuffixEntry>,
        dir: Array<MapData, DirBucket>,
        mut seed_map: Array<MapData, u64>,
        fixed: u64,
    ) -> Result<SuffixIndex> {
        let mut seed = seed_map.get(&0, 0).context("reading SUFFIX_SEED")?;
        let adopted = seed != 0;
        if !adopted && fixed != 0 {
            seed = fixed;
            seed_map.set(0, seed, 0).context("writing SUFFIX_SEED")?;
        }
        let slots = Slots::new(map, dir, adopted, "suffix")?;
        set_mask(&mut seed_map, SUFFIX_DIR_MASK, slots.directory(), adopted)?;
        if seed == 0 {
            let mut b = [0u8; 8];
            // SAFETY: getrandom(2) writes at most the given length into the buffer.
            let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
            if n != b.len() as isize {
                bail!("getrandom failed: {}", std::io::Error::last_os_error());
            }
            seed = u64::from_ne_bytes(b) | 1;
            seed_map.set(0, seed, 0).context("writing SUFFIX_SEED")?;
        }
        let mut skip = [0; 2];
        let mut exclude = [[0; FILTER_WORDS as usize]; 2];
        for (g, (s, f)) in skip.iter_mut().zip(exclude.iter_mut()).enumerate() {
            *s = seed_map
                .get(&skip_slot(g as u16), 0)
                .context("reading SUFFIX_SEED")?;
            for (w, word) in f.iter_mut().enumerate() {
                *word = seed_map
                    .get(&filter_slot(g as u16, w as u32), 0)
                    .context("reading SUFFIX_SEED")?;
            }
        }
        Ok(SuffixIndex {
            slots,
            seed,
            adopted,
            seed_map,
            skip,
            exclude,
        })
    }

    /// Writes the depth mask of `generation` (see `dns_common::SUFFIX_SEED_ENTRIES`): the
    /// depths of none of `keys`, before any of them is inserted; and its deep filter
    /// (`dns_common::FILTER_WORDS`): the bits no deep key selects. `live` is the generation the
    /// program serves; when it shares the mask's slot (generations wrap from 127 to 1), the mask
    /// and the filter also keep every depth and bit the live one has.
    pub fn write_skip<'a>(
        &mut self,
        generation: u16,
        keys: impl Iterator<Item = &'a SuffixKey>,
        live: u16,
    ) -> Result<()> {
        let mut skip = !depth_bit(63);
        let mut exclude = [u64::MAX; FILTER_WORDS as usize];
        for k in keys {
            let depth = labels(k);
            skip &= !depth_bit(depth);
            if depth >= FILTER_DEPTH {
                let (w, bit) = filter_bit(self.map_key(k).0.hash);
                exclude[w as usize] &= !bit;
            }
        }
        let slot = (generation & 1) as usize;
        if live != 0 && live & 1 == generation & 1 {
            skip &= self.skip[slot];
            for (e, live) in exclude.iter_mut().zip(self.exclude[slot]) {
                *e &= live;
            }
        }
        self.set_filter(slot, exclude)?;
        self.set_skip(slot, skip)
    }

    fn set_filter(&mut self, slot: usize, exclude: Filter) -> Result<()> {
        for (w, word) in exclude.iter().enumerate() {
            self.seed_map
                .set(filter_slot(slot as u16, w as u32), *word, 0)
                .context("writing SUFFIX_SEED")?;
            self.exclude[slot][w] = *word;
        }
        Ok(())
    }

    fn set_skip(&mut self, slot: usize, skip: u64) -> Result<()> {
        self.seed_map
            .set(skip_slot(slot as u16), skip, 0)
            .context("writing SUFFIX_SEED")?;
        self.skip[slot] = skip;
        Ok(())
    }

    /// Whether the program skips `k`'s depth in its generation, by the mask in the map (a
    /// suffix entry there would never be found: `map check` reports it).
    pub fn skips(&self, k: &SuffixKey) -> Result<bool> {
        let g = Self::generation_of(k);
        let skip = self
            .seed_map
            .get(&skip_slot(g), 0)
            .context("reading SUFFIX_SEED")?;
        let depth = labels(k);
        if skip & depth_bit(depth) != 0 {
            return Ok(true);
        }
        if depth < FILTER_DEPTH {
            return Ok(false);
        }
        let (w, bit) = filter_bit(self.map_key(k).0.hash);
        let exclude = self
            .seed_map
            .get(&filter_slot(g, w), 0)
            .context("reading SUFFIX_SEED")?;
        Ok(exclude & bit != 0)
    }

    /// `generation`'s deep filter as the map holds it, and the hashes of that generation's
    /// deep entries (for tests: each one's bit must be clear).
    #[cfg(feature = "test-support")]
    pub fn deep_filter(&self, generation: u16) -> Result<(Filter, Vec<u64>)> {
        let mut f = [0; FILTER_WORDS as usize];
        for (w, word) in f.iter_mut().enumerate() {
            *word = self
                .seed_map
                .get(&filter_slot(generation, w as u32), 0)
                .context("reading SUFFIX_SEED")?;
        }
        let mut deep = Vec::new();
        for e in self.iter() {
            let (k, _) = e?;
            if Self::generation_of(&k) == suffix_generation(generation)
                && labels(&k) >= FILTER_DEPTH
            {
                deep.push(self.map_key(&k).0.hash);
            }
        }
        Ok((f, deep))
    }

    /// Clears `k`'s depth from its generation's mask, and the deep filter bit its hash
    /// selects (a deep key), before its entry is inserted.
    fn allow(&mut self, k: &SuffixKey, hash: u64) -> Result<()> {
        let slot = (Self::generation_of(k) & 1) as usize;
        let depth = labels(k);
        if depth >= FILTER_DEPTH {
            let (w, bit) = filter_bit(hash);
            if self.exclude[slot][w as usize] & bit != 0 {
                let mut f = self.exclude[slot];
                f[w as usize] &= !bit;
                self.set_filter(slot, f)?;
            }
        }
        let bit = depth_bit(depth);
        match self.skip[slot] & bit {
            0 => Ok(()),
            _ => self.set_skip(slot, self.skip[slot] & !bit),
        }
    }

    /// `SUFFIX_DIR`'s buckets.
    pub fn buckets(&self) -> u32 {
        self.slots.directory().mask() + 1
    }

    /// Buckets with entries of earlier homes past them (`DirBucket::overflow`).
    pub fn overflowed(&self) -> usize {
        self.slots.directory().overflowed()
    }

    /// `SUFFIX_SEED`, and whether it was a running program's, for the answer index.
    pub(super) fn seed_map(&mut self) -> (&mut Array<MapData, u64>, bool) {
        (&mut self.seed_map, self.adopted)
    }

    /// The seed of the keys' hash (`ANSWERS` keys take it too).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The map key and the name of `k` as its value holds it (`dns_common::pack_name`).
    fn map_key(&self, k: &SuffixKey) -> (SuffixMapKey, [u8; NAME_BUF]) {
        let flag = k.prefix.first().copied().unwrap_or(0);
        let reversed = k.prefix.get(1..).unwrap_or(&[]);
        let len = reversed.len().min(NAME_BUF - 1);
        let mut name = [0u8; NAME_BUF];
        for (i, b) in reversed.iter().take(len).enumerate() {
            name[NAME_BUF - 1 - i] = *b;
        }
        let key = SuffixMapKey {
            hash: suffix_hash(self.seed, &name, len),
            generation: suffix_generation((flag >> 1) as u16),
            flags: KEY_FLAG_SUFFIX | if flag & 1 != 0 { KEY_FLAG_DO } else { 0 },
            name_len: len as u16,
            _pad: 0,
        };
        (key, pack_name(&name, len))
    }

    /// Writes `k`'s entry; fails when another name's entry is under its key.
    pub fn insert(&mut self, k: &SuffixKey, entry: AnswerRef) -> Result<()> {
        let (key, name) = self.map_key(k);
        self.allow(k, key.hash)?;
        let found = self.slots.find(&key)?;
        if let Some((_, e)) = &found {
            if e.name != name {
                bail!(
                    "suffix hash collision: {:?} and {:?} (a new program load draws a new seed)",
                    describe(&unpack(&key, &e.name)),
                    describe(&unpack(&key, &name))
                );
            }
        }
        let value = SuffixEntry { key, entry, name };
        self.slots.put(found.map(|(at, _)| at), value)
    }

    /// Removes `k`'s entry (not another name's under the same key); false when it has none.
    pub fn remove(&mut self, k: &SuffixKey) -> Result<bool> {
        let (key, name) = self.map_key(k);
        match self.slots.find(&key)? {
            Some((at, e)) if e.name == name => self.slots.remove(&key, at).map(|()| true),
            _ => Ok(false),
        }
    }

    /// `k`'s own entry.
    pub fn get(&self, k: &SuffixKey) -> Result<Option<AnswerRef>> {
        let (key, name) = self.map_key(k);
        Ok(match self.slots.find(&key)? {
            Some((_, e)) if e.name == name => Some(e.entry),
            _ => None,
        })
    }

    /// Every entry, with its key in userspace's form; an entry under a key that is not its
    /// name's, or a word where lookups would not find it, is an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<(SuffixKey, AnswerRef)>> + '_ {
        self.slots.iter().map(move |e| {
            let e = e?;
            let name = unpack(&e.key, &e.name);
            let k = from_map(&e.key, &name);
            if self.map_key(&k) != (e.key, e.name) {
                bail!(
                    "suffix entry {:?} under another name's key",
                    describe(&name)
                );
            }
            Ok((k, e.entry))
        })
    }

    /// Writes `entry` with `name_of`'s name under `under`'s key, as a hash collision would
    /// leave it (for tests: the program must pass queries that find it).
    #[cfg(feature = "test-support")]
    pub fn plant(
        &mut self,
        under: &SuffixKey,
        name_of: &SuffixKey,
        entry: AnswerRef,
    ) -> Result<()> {
        let (key, _) = self.map_key(under);
        let (_, name) = self.map_key(name_of);
        self.allow(under, key.hash)?;
        let at = self.slots.find(&key)?.map(|(at, _)| at);
        self.slots.put(at, SuffixEntry { key, entry, name })
    }

    /// Generation bits of a map key, for telling generations apart when reading.
    pub fn generation_of(k: &SuffixKey) -> u16 {
        suffix_generation((k.prefix.first().copied().unwrap_or(0) >> 1) as u16)
    }
}

/// Writes a directory's mask into `SUFFIX_SEED` at `index`; a map taken over (`adopted`) must
/// hold it already.
pub(super) fn set_mask(
    seed_map: &mut Array<MapData, u64>,
    index: u32,
    dir: &super::directory::Directory,
    adopted: bool,
) -> Result<()> {
    let mask = seed_map.get(&index, 0).context("reading SUFFIX_SEED")?;
    if adopted && mask != dir.mask() as u64 {
        bail!(
            "SUFFIX_SEED holds directory mask {mask:#x} at {index}, the directory has {} buckets",
            dir.mask() as u64 + 1
        );
    }
    seed_map
        .set(index, dir.mask() as u64, 0)
        .context("writing SUFFIX_SEED")
}

/// The labels of a suffix key's name (the root has none).
fn labels(k: &SuffixKey) -> u32 {
    // The wire name is the key's octets after the flags, reversed: read from the end.
    let reversed = k.prefix.get(1..).unwrap_or(&[]);
    let at = |i: usize| reversed[reversed.len() - 1 - i];
    let (mut n, mut i) = (0, 0);
    while i < reversed.len() && at(i) != 0 {
        n += 1;
        i += at(i) as usize + 1;
    }
    n
}

/// The right-aligned name of a value's name under `key`.
fn unpack(key: &SuffixMapKey, packed: &[u8; NAME_BUF]) -> [u8; NAME_BUF] {
    unpack_name(packed, key.name_len as usize)
}

/// Userspace's form of the key of an entry read back.
fn from_map(key: &SuffixMapKey, name: &[u8; NAME_BUF]) -> SuffixKey {
    let len = (key.name_len as usize).clamp(1, NAME_BUF - 1);
    let mut prefix = Vec::with_capacity(1 + len);
    prefix.push(suffix_flag_byte(
        key.generation,
        key.flags & KEY_FLAG_DO != 0,
    ));
    prefix.extend(name[NAME_BUF - len..].iter().rev());
    SuffixKey {
        bits: (prefix.len() * 8) as u32,
        prefix: prefix.into(),
    }
}

/// A right-aligned wire name for messages.
pub(super) fn describe(name: &[u8; NAME_BUF]) -> String {
    let start = name.iter().position(|b| *b != 0).unwrap_or(NAME_BUF - 1);
    crate::wire::name::Name::from_wire(&name[start..])
        .map(|n| n.to_string())
        .unwrap_or_else(|_| format!("{:02x?}", &name[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_suffix_keys() {
        let key = |wire: &[u8]| SuffixKey {
            bits: 8 * (1 + wire.len() as u32),
            prefix: std::iter::once(0x40)
                .chain(wire.iter().rev().copied())
                .collect(),
        };
        assert_eq!(labels(&key(&[0])), 0);
        assert_eq!(labels(&key(&[3, b't', b'l', b'd', 0])), 1);
        assert_eq!(
            labels(&key(&[1, 0, 2, b'd', b'1', 3, b't', b'l', b'd', 0])),
            3
        );
    }

    #[test]
    fn the_hash_covers_only_the_names_words() {
        let mut a = [0u8; NAME_BUF];
        a[NAME_BUF - 7..].copy_from_slice(b"\x05bench\x00");
        let mut b = a;
        // An octet before the name's first word does not count; one inside it does.
        b[NAME_BUF - 9] = 1;
        assert_eq!(suffix_hash(3, &a, 7), suffix_hash(3, &b, 7));
        b[NAME_BUF - 8] = 1;
        assert_ne!(suffix_hash(3, &a, 7), suffix_hash(3, &b, 7));
        assert_ne!(suffix_hash(3, &a, 7), suffix_hash(5, &a, 7));
    }
}
