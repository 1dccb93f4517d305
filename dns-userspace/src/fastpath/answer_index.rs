//! The `ANSWERS` map as userspace writes and reads it: exact and NODATA entries under keys that
//! hold their name's keyed hash (`dns_common::AnswerMapKey`, the seed of `suffix_index`), each
//! with its name, which the program compares. Userspace keeps `AnswerKey`s everywhere else;
//! this is where they become map keys and back. As there, an insert that finds another name's
//! entry under its key fails.

use anyhow::{bail, Context as _, Result};
use aya::maps::{HashMap, MapData, MapError};
use dns_common::{
    pack_name, suffix_hash, unpack_name, AnswerEntry, AnswerKey, AnswerMapKey, AnswerRef, NAME_BUF,
};

use super::suffix_index::describe;

pub struct AnswerIndex {
    map: HashMap<MapData, AnswerMapKey, AnswerEntry>,
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
    pub fn new(map: HashMap<MapData, AnswerMapKey, AnswerEntry>, seed: u64) -> AnswerIndex {
        AnswerIndex { map, seed }
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
        match self.map.get(&key, 0) {
            Ok(e) if e.name != packed(k) => bail!(
                "answer hash collision: {:?} and {:?} (a new program load draws a new seed)",
                describe(&unpack_name(&e.name, key.name_len as usize)),
                describe(&k.name)
            ),
            Ok(_) | Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(e).context("reading the XDP answer map"),
        }
        let value = AnswerEntry {
            entry,
            name: packed(k),
        };
        self.map
            .insert(key, value, 0)
            .context("writing the XDP answer map")
    }

    /// Removes `k`'s entry (not another name's under the same key).
    pub fn remove(&mut self, k: &AnswerKey) -> Result<(), MapError> {
        let key = self.map_key(k);
        match self.map.get(&key, 0) {
            Ok(e) if e.name == packed(k) => self.map.remove(&key),
            Ok(_) => Err(MapError::KeyNotFound),
            Err(e) => Err(e),
        }
    }

    /// `k`'s own entry.
    pub fn get(&self, k: &AnswerKey) -> Result<AnswerRef, MapError> {
        match self.map.get(&self.map_key(k), 0) {
            Ok(e) if e.name == packed(k) => Ok(e.entry),
            Ok(_) => Err(MapError::KeyNotFound),
            Err(e) => Err(e),
        }
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
        let value = AnswerEntry {
            entry,
            name: packed(name_of),
        };
        self.map
            .insert(self.map_key(under), value, 0)
            .context("writing the XDP answer map")
    }

    /// Every entry, with its `AnswerKey`; an entry under a key that is not its name's is an
    /// error.
    pub fn iter(&self) -> impl Iterator<Item = Result<(AnswerKey, AnswerRef)>> + '_ {
        self.map.iter().map(move |kv| {
            let (key, e) = kv.context("reading the XDP answer map")?;
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
