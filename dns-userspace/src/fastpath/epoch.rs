//! The epoch a suffix entry carries for its own name's exact and NODATA entries
//! (`AnswerRef::kind`, `KIND_EPOCH_MASK`): the epoch they are written under (see `incremental`),
//! or `EPOCH_NONE` when the name has none, so that the XDP program looks none up — a
//! delegation's own name (a QNAME-minimising resolver's NS query) goes straight to its
//! referral, without two `ANSWERS` misses.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use dns_common::{AnswerKey, EPOCH_NONE, KIND_EPOCH_MAX, KIND_EPOCH_SHIFT, NAME_BUF};

use super::compile::SuffixKey;
use super::templates::Body;

/// The names with exact or NODATA entries, by a hash of their wire form. A collision only
/// gives a name without entries an epoch of 0 (its lookups are then made, and miss), never
/// `EPOCH_NONE` to a name with entries.
pub struct ExactNames(HashSet<u64>);

impl ExactNames {
    pub fn of(exact: &[(AnswerKey, Body)]) -> Self {
        ExactNames(exact.iter().map(|(k, _)| exact_hash(k)).collect())
    }

    /// The epoch of the suffix entry `key` in a full publication: 0, or `EPOCH_NONE`.
    pub fn epoch(&self, key: &SuffixKey) -> u16 {
        if self.0.contains(&suffix_hash(key)) {
            0
        } else {
            EPOCH_NONE
        }
    }
}

/// The epoch after `old` for a name whose exact or NODATA entries change (`EPOCH_NONE` is
/// kept out of the cycle).
pub fn next(old: u16) -> u16 {
    (old + 1) % KIND_EPOCH_MAX
}

/// The kind of an index entry with `epoch` in it.
pub fn with_epoch(kind: u16, epoch: u16) -> u16 {
    kind | epoch << KIND_EPOCH_SHIFT
}

fn hash_wire(wire: impl Iterator<Item = u8>) -> u64 {
    let mut buf = [0u8; NAME_BUF];
    let mut n = 0;
    for b in wire {
        buf[n] = b;
        n += 1;
    }
    BuildHasherDefault::<DefaultHasher>::default().hash_one(&buf[..n])
}

/// Of the name of an exact key: right-aligned, zero padded in front (the root is one zero).
fn exact_hash(k: &AnswerKey) -> u64 {
    let len = (NAME_BUF - k.name.iter().take_while(|b| **b == 0).count()).max(1);
    hash_wire(k.name[NAME_BUF - len..].iter().copied())
}

/// Of the name of a suffix key: `[flags, reversed wire name]`.
fn suffix_hash(k: &SuffixKey) -> u64 {
    hash_wire(k.prefix[1..].iter().rev().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_and_exact_keys_of_one_name_meet() {
        let wire = [2u8, b'a', b'b', 3, b't', b'l', b'd', 0];
        let mut k = AnswerKey::zeroed();
        k.name[NAME_BUF - wire.len()..].copy_from_slice(&wire);
        let mut prefix = vec![0x40u8];
        prefix.extend(wire.iter().rev());
        let s = SuffixKey {
            bits: prefix.len() as u32 * 8,
            prefix: prefix.into(),
        };
        assert_eq!(exact_hash(&k), suffix_hash(&s));
        let root = SuffixKey {
            bits: 16,
            prefix: vec![0x40, 0].into(),
        };
        assert_eq!(exact_hash(&AnswerKey::zeroed()), suffix_hash(&root));
        assert_ne!(exact_hash(&k), suffix_hash(&root));
    }

    #[test]
    fn none_is_never_an_epoch_of_entries() {
        let mut e = 0;
        for _ in 0..1000 {
            e = next(e);
            assert_ne!(e, EPOCH_NONE);
            assert!(e < KIND_EPOCH_MAX);
        }
        assert_eq!(next(KIND_EPOCH_MAX - 1), 0);
    }
}
