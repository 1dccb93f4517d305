//! An index array of slots and the bucket directory it is found through (`directory`), as the
//! index maps use them: `SUFFIXES` with `SUFFIX_DIR`, `ANSWERS` with `ANSWER_DIR`. A slot holds
//! its entry's key (`Slot::key`), which lookups compare; this is where a key's slot is found,
//! written and given up, in the order `directory` requires.

use anyhow::{Context as _, Result};
use aya::maps::{Array, MapData};
use dns_common::{
    AnswerEntry, AnswerMapKey, DirBucket, SuffixEntry, SuffixMapKey, TEMPLATE_HOME_MASK,
};

use super::directory::{check_in, words_of, At, Directory, NoRoom};

/// A slot's value type: its key, the key's `dns_common::dir_mix`, and the home of its entry's
/// template for the directory word's hint (`dns_common::DirBucket`).
pub trait Slot: aya::Pod {
    type Key: PartialEq + Copy;
    fn key(&self) -> Self::Key;
    fn mix(key: &Self::Key) -> u64;
    fn hint(&self) -> u32;
}

/// `Slot` for an entry type with a `key` field whose type has `mix`.
macro_rules! slot {
    ($entry:ty, $key:ty) => {
        impl Slot for $entry {
            type Key = $key;
            fn key(&self) -> $key {
                self.key
            }
            fn mix(key: &$key) -> u64 {
                key.mix()
            }
            fn hint(&self) -> u32 {
                self.entry.template & TEMPLATE_HOME_MASK
            }
        }
    };
}

slot!(SuffixEntry, SuffixMapKey);
slot!(AnswerEntry, AnswerMapKey);

pub struct Slots<V: Slot> {
    map: Array<MapData, V>,
    dir: Directory,
    what: &'static str,
}

impl<V: Slot> Slots<V> {
    /// The slots of `map` through `dir` (read back when `adopted`: a running program's);
    /// `what` names the index in messages.
    pub fn new(
        map: Array<MapData, V>,
        dir: Array<MapData, DirBucket>,
        adopted: bool,
        what: &'static str,
    ) -> Result<Slots<V>> {
        let dir = Directory::new(dir, map.len(), adopted)
            .with_context(|| format!("the {what} directory"))?;
        Ok(Slots { map, dir, what })
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    /// Where `key`'s slot is, and the slot, when the index has one.
    pub fn find(&self, key: &V::Key) -> Result<Option<(At, V)>> {
        for (at, slot) in self.dir.candidates(V::mix(key)) {
            let v = self
                .map
                .get(&slot, 0)
                .with_context(|| format!("reading the XDP {} array", self.what))?;
            if v.key() == *key {
                return Ok(Some((at, v)));
            }
        }
        Ok(None)
    }

    /// Writes `value` into a free slot and points its key's word at it (a new word, or in
    /// place of the one at `at`, whose old slot then waits out the grace period).
    pub fn put(&mut self, at: Option<At>, value: V) -> Result<()> {
        let slot = self.dir.alloc()?;
        if let Err(e) = self.map.set(slot, value, 0) {
            self.dir.unalloc(slot);
            return Err(e).with_context(|| format!("writing the XDP {} array", self.what));
        }
        let m = V::mix(&value.key());
        let placed = match at {
            Some(at) => self.dir.replace(m, at, slot, value.hint()).map(|_| ()),
            None => self.dir.insert(m, slot, value.hint()).map(|_| ()),
        };
        // Nothing was written (no room): no word points at the slot. After any other failure
        // one may, and the slot is given up rather than written again while read.
        if matches!(&placed, Err(e) if e.is::<NoRoom>()) {
            self.dir.unalloc(slot);
        }
        placed.with_context(|| format!("the XDP {} index", self.what))
    }

    /// Gives up the slot of `key` at `at`.
    pub fn remove(&mut self, key: &V::Key, at: At) -> Result<()> {
        self.dir.remove(V::mix(key), at)
    }

    /// Every slot a word of the directory as the map holds it points at, each checked to be
    /// where lookups find it; the slots are read one by one as the iterator goes.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Result<V>> + '_> {
        let buckets = match self.dir.kernel() {
            Ok(b) => b,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let words: Vec<(At, u32)> = words_of(&buckets).map(|(at, _, s)| (at, s)).collect();
        Box::new(words.into_iter().map(move |(at, slot)| {
            let v = self
                .map
                .get(&slot, 0)
                .with_context(|| format!("reading the XDP {} array", self.what))?;
            check_in(&buckets, V::mix(&v.key()), at)?;
            Ok(v)
        }))
    }
}
