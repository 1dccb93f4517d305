//! The template store: userspace's copy of every answer body the XDP maps refer to.
//!
//! Bodies are deduplicated by content and given ids (the keys of the `TEMPLATES` cache map), so
//! that identical answers share one cached body and a reload re-uses the ids of the bodies it
//! did not change. Each `intern` round is an epoch: after a publication, the ids the newest
//! epoch did not use are retired. The store also keeps the bodies the kernel cache had no room
//! for, so that userspace can promote them when queries for them become frequent.

use std::collections::HashMap;
use std::sync::Arc;

use dns_common::{Answer, ANSWER_MAX, MAX_PTRS};

/// An answer body in compact form (the unused tails of `ptrs` and `data` cut off).
type Compact = Arc<[u8]>;

const HEAD: usize = 9;

fn compact(a: &Answer) -> Compact {
    let nptrs = (a.nptrs as usize).min(MAX_PTRS);
    let len = (a.len as usize).min(ANSWER_MAX);
    let mut v = Vec::with_capacity(HEAD * 2 + nptrs * 2 + len);
    for f in [
        a.header_flags,
        a.ancount,
        a.nscount,
        a.arcount,
        a.len,
        a.csum,
        a.kind,
        a.anchor_len,
        a.nptrs,
    ] {
        v.extend_from_slice(&f.to_ne_bytes());
    }
    for p in &a.ptrs[..nptrs] {
        v.extend_from_slice(&p.to_ne_bytes());
    }
    v.extend_from_slice(&a.data[..len]);
    v.into()
}

fn expand(c: &[u8]) -> Answer {
    let f = |i: usize| u16::from_ne_bytes([c[2 * i], c[2 * i + 1]]);
    let mut a = Answer {
        header_flags: f(0),
        ancount: f(1),
        nscount: f(2),
        arcount: f(3),
        len: f(4),
        csum: f(5),
        kind: f(6),
        anchor_len: f(7),
        nptrs: f(8),
        ptrs: [0; MAX_PTRS],
        _pad: [0; 3],
        data: [0; ANSWER_MAX],
    };
    let nptrs = a.nptrs as usize;
    for i in 0..nptrs {
        a.ptrs[i] = f(HEAD + i);
    }
    let at = (HEAD + nptrs) * 2;
    a.data[..c.len() - at].copy_from_slice(&c[at..]);
    a
}

/// How many distinct bodies `bodies` hold (pass markers excluded), for sizing the cache; by
/// 64-bit hash, so a collision can only make it one smaller.
pub fn distinct<'a>(bodies: impl Iterator<Item = &'a Answer>) -> usize {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    bodies
        .filter(|b| b.kind & 0xff != dns_common::AnswerKind::Pass as u16)
        .map(|b| state.hash_one(compact(b)))
        .collect::<std::collections::HashSet<u64>>()
        .len()
}

struct Stored {
    body: Compact,
    epoch: u64,
}

/// Answer bodies by id, deduplicated.
#[derive(Default)]
pub struct TemplateStore {
    ids: HashMap<Compact, u32>,
    bodies: HashMap<u32, Stored>,
    next_id: u32,
    epoch: u64,
    /// Ids first made in the current epoch.
    fresh: Vec<u32>,
}

impl TemplateStore {
    /// Starts a new round of `intern` calls.
    pub fn begin(&mut self) {
        self.epoch += 1;
        self.fresh.clear();
    }

    /// The id of `body`, made if new; marks it used in the current epoch. Returns the id and
    /// whether it is new.
    pub fn intern(&mut self, body: &Answer) -> (u32, bool) {
        let c = compact(body);
        if let Some(&id) = self.ids.get(&c) {
            if let Some(s) = self.bodies.get_mut(&id) {
                s.epoch = self.epoch;
            }
            return (id, false);
        }
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let id = self.next_id;
        self.ids.insert(c.clone(), id);
        self.bodies.insert(
            id,
            Stored {
                body: c,
                epoch: self.epoch,
            },
        );
        self.fresh.push(id);
        (id, true)
    }

    /// The body of `id`.
    pub fn get(&self, id: u32) -> Option<Answer> {
        self.bodies.get(&id).map(|s| expand(&s.body))
    }

    /// Forgets the ids made in the current epoch (a failed publication); returns them.
    pub fn discard_fresh(&mut self) -> Vec<u32> {
        let fresh = std::mem::take(&mut self.fresh);
        for id in &fresh {
            if let Some(s) = self.bodies.remove(id) {
                self.ids.remove(&s.body);
            }
        }
        fresh
    }

    /// Forgets the ids the current epoch did not use; returns them.
    pub fn retire_unused(&mut self) -> Vec<u32> {
        let old: Vec<u32> = self
            .bodies
            .iter()
            .filter(|(_, s)| s.epoch != self.epoch)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            if let Some(s) = self.bodies.remove(id) {
                self.ids.remove(&s.body);
            }
        }
        old
    }

    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &[u8], ptrs: &[u16]) -> Answer {
        let mut a = Answer {
            header_flags: 0x8400,
            ancount: 1,
            nscount: 2,
            arcount: 3,
            len: data.len() as u16,
            csum: 7,
            kind: 1,
            anchor_len: 9,
            nptrs: ptrs.len() as u16,
            ptrs: [0; MAX_PTRS],
            _pad: [0; 3],
            data: [0; ANSWER_MAX],
        };
        a.ptrs[..ptrs.len()].copy_from_slice(ptrs);
        a.data[..data.len()].copy_from_slice(data);
        a
    }

    fn same(a: &Answer, b: &Answer) -> bool {
        compact(a) == compact(b) && a.data == b.data && a.ptrs == b.ptrs
    }

    #[test]
    fn compact_round_trips() {
        let a = body(&[1, 2, 3, 0xc0, 12], &[3]);
        assert!(same(&expand(&compact(&a)), &a));
        let e = body(&[], &[]);
        assert!(same(&expand(&compact(&e)), &e));
    }

    #[test]
    fn distinct_counts_bodies_once_and_skips_pass_markers() {
        let mut pass = body(b"", &[]);
        pass.kind = dns_common::AnswerKind::Pass as u16;
        let bodies = [body(b"a", &[]), body(b"a", &[]), body(b"b", &[1]), pass];
        assert_eq!(distinct(bodies.iter()), 2);
    }

    #[test]
    fn interning_dedupes_and_retires_by_epoch() {
        let mut s = TemplateStore::default();
        s.begin();
        let (a, new_a) = s.intern(&body(b"one", &[]));
        let (a2, new_a2) = s.intern(&body(b"one", &[]));
        let (b, _) = s.intern(&body(b"two", &[]));
        assert!(new_a && !new_a2);
        assert_eq!(a, a2);
        assert_ne!(a, b);
        s.begin();
        let (b2, new_b2) = s.intern(&body(b"two", &[]));
        assert_eq!((b2, new_b2), (b, false));
        let (c, _) = s.intern(&body(b"three", &[]));
        assert_eq!(s.retire_unused(), vec![a]);
        assert!(s.get(a).is_none());
        assert_eq!(&s.get(c).unwrap().data[..5], b"three");
        // A failed round forgets only what it made.
        s.begin();
        s.intern(&body(b"two", &[]));
        let (d, _) = s.intern(&body(b"four", &[]));
        assert_eq!(s.discard_fresh(), vec![d]);
        assert!(s.get(b).is_some() && s.get(d).is_none());
    }
}
