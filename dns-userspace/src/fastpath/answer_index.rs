//! The `ANSWERS` index as userspace writes and reads it: exact and NODATA entries under keys
//! that hold their name's keyed hash (`dns_common::AnswerMapKey`, the seed of `suffix_index`),
//! each with its key and name, which the program compares, in the slots of the `ANSWERS` array
//! found through `ANSWER_DIR` (`slots`). Userspace keeps `AnswerKey`s everywhere else; this is
//! where they become map keys and back. As there, an insert that finds another name's entry
//! under its key fails.

use anyhow::{bail, Result};
use aya::maps::{Array, MapData};
use dns_common::{
    pack_name, suffix_hash, unpack_name, AnswerEntry, AnswerKey, AnswerMapKey, AnswerRef,
    DirBucket, ANSWER_DIR_MASK, NAME_BUF,
};

use super::slots::Slots;
use super::suffix_index::{describe, set_mask};

pub struct AnswerIndex {
    slots: Slots<AnswerEntry>,
    seed: u64,
}

/// The name of `k` as its value holds it (`dns_common::pack_name`).
fn packed(k: &AnswerKey) -> [u8; NAME_BUF] {
    pack_name(&k.name, name_len(&k.name))
}

/// Wire length of a right-aligned name (the root name is all zeros).
fn name_len(name: &[u8; NAME_BUF]) -> usize {
    NAME_BUF - name.iter().position(|b| *b != 0).unwrap_or(NAME_BUF - 1)
}

impl AnswerIndex {
    /// The index over `map` and its directory `dir` with the suffix index's `seed`; its mask
    /// goes into `seed_map` (checked there when `adopted`: a running program's maps).
    pub fn new(
        map: Array<MapData, AnswerEntry>,
        dir: Array<MapData, DirBucket>,
        seed_map: &mut Array<MapData, u64>,
        seed: u64,
        adopted: bool,
    ) -> Result<AnswerIndex> {
        let slots = Slots::new(map, dir, adopted, "answer")?;
        set_mask(seed_map, ANSWER_DIR_MASK, slots.directory(), adopted)?;
        Ok(AnswerIndex { slots, seed })
    }

    fn map_key(&self, k: &AnswerKey) -> AnswerMapKey {
        let len = name_len(&k.name);
        AnswerMapKey {
            hash: suffix_hash(self.seed, &k.name, len),
            generation: k.generation,
            qtype: k.qtype,
            flags: k.flags,
            epoch: k.epoch,
            name_len: len as u16,
            _pad: [0; 3],
        }
    }

    /// Writes `k`'s entry; fails when another name's entry is under its key.
    pub fn insert(&mut self, k: &AnswerKey, entry: AnswerRef) -> Result<()> {
        let key = self.map_key(k);
        let found = self.slots.find(&key)?;
        if let Some((_, e)) = &found {
            if e.name != packed(k) {
                bail!(
                    "answer hash collision: {:?} and {:?} (a new program load draws a new seed)",
                    describe(&unpack_name(&e.name, key.name_len as usize)),
                    describe(&k.name)
                );
            }
        }
        let value = AnswerEntry {
            key,
            entry,
            name: packed(k),
        };
        self.slots.put(found.map(|(at, _)| at), value)
    }

    /// Removes `k`'s entry (not another name's under the same key); false when it has none.
    pub fn remove(&mut self, k: &AnswerKey) -> Result<bool> {
        let key = self.map_key(k);
        match self.slots.find(&key)? {
            Some((at, e)) if e.name == packed(k) => self.slots.remove(&key, at).map(|()| true),
            _ => Ok(false),
        }
    }

    /// `k`'s own entry.
    pub fn get(&self, k: &AnswerKey) -> Result<Option<AnswerRef>> {
        Ok(match self.slots.find(&self.map_key(k))? {
            Some((_, e)) if e.name == packed(k) => Some(e.entry),
            _ => None,
        })
    }

    /// Writes `entry` with `name_of`'s name under `under`'s key, as a hash collision would
    /// leave it (for tests: the program must pass queries that find it).
    #[cfg(feature = "test-support")]
    pub fn plant(
        &mut self,
        under: &AnswerKey,
        name_of: &AnswerKey,
        entry: AnswerRef,
    ) -> Result<()> {
        let key = self.map_key(under);
        let value = AnswerEntry {
            key,
            entry,
            name: packed(name_of),
        };
        let at = self.slots.find(&key)?.map(|(at, _)| at);
        self.slots.put(at, value)
    }

    /// Every entry, with its `AnswerKey`; an entry under a key that is not its name's, or a
    /// word where lookups would not find it, is an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<(AnswerKey, AnswerRef)>> + '_ {
        self.slots.iter().map(move |e| {
            let e = e?;
            let key = e.key;
            let k = AnswerKey {
                generation: key.generation,
                qtype: key.qtype,
                flags: key.flags,
                epoch: key.epoch,
                name: unpack_name(&e.name, key.name_len as usize),
            };
            if self.map_key(&k) != key || packed(&k) != e.name {
                bail!(
                    "answer entry {:?} under another name's key",
                    describe(&k.name)
                );
            }
            Ok((k, e.entry))
        })
    }
}
