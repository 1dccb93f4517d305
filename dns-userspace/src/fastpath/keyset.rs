//! The keys the maps hold for the current generation, which the next full publication removes:
//! a plain list (millions of keys, held compactly), the keys incremental updates removed since
//! (left out when the list is read), and compaction when those grow to half the list.

use std::collections::HashSet;
use std::hash::Hash;

#[derive(Debug)]
pub struct KeySet<K> {
    list: Vec<K>,
    removed: HashSet<K>,
}

impl<K> Default for KeySet<K> {
    fn default() -> Self {
        KeySet {
            list: Vec::new(),
            removed: HashSet::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> KeySet<K> {
    /// A set of distinct keys.
    pub fn new(list: Vec<K>) -> KeySet<K> {
        KeySet {
            list,
            removed: HashSet::new(),
        }
    }

    /// Adds a key the set does not hold.
    pub fn insert(&mut self, k: K) {
        if !self.removed.remove(&k) {
            self.list.push(k);
        }
    }

    /// Removes a key the set holds.
    pub fn remove(&mut self, k: K) {
        self.removed.insert(k);
        if self.removed.len() > self.list.len() / 2 {
            let removed = std::mem::take(&mut self.removed);
            self.list.retain(|k| !removed.contains(k));
        }
    }

    /// The keys held.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.list.iter().filter(|k| !self.removed.contains(*k))
    }

    pub fn len(&self) -> usize {
        self.list.len() - self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_keys_are_left_out_and_can_come_back() {
        let mut s = KeySet::new((0..10).collect());
        s.remove(3);
        s.remove(4);
        s.insert(10);
        s.insert(3);
        let mut v: Vec<i32> = s.iter().copied().collect();
        v.sort();
        assert_eq!(v, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]);
        assert_eq!(s.len(), 10);
        // Compaction keeps the same keys.
        for k in 0..8 {
            s.remove(k);
        }
        let mut v: Vec<i32> = s.iter().copied().collect();
        v.sort();
        assert_eq!(v, [8, 9, 10]);
        assert_eq!(s.len(), 3);
        s.insert(0);
        assert_eq!(s.len(), 4);
    }
}
