//! The template store: userspace's copy of every answer body the XDP maps refer to.
//!
//! Bodies are deduplicated by content and given ids (what the `TEMPLATES` slots hold), so
//! that identical answers share one cached body and a reload re-uses the ids of the bodies it
//! did not change. An id never changes its body: a changed answer gets a new id. Every id
//! counts the index entries that refer to it. A full publication counts the new generation's
//! references in a round of `intern` calls (`begin`, then `retire_unused` or `discard_fresh`);
//! an incremental one `acquire`s the bodies of the entries it writes and `release`s those of
//! the entries it replaces or removes, and `retire_released` then forgets the ids no entry
//! refers to. The store also keeps the bodies the kernel cache had no room for, so that
//! userspace can promote them when queries for them become frequent.
//!
//! An id's low bits are its home slot in the cache (`TEMPLATE_HOME_MASK`, see
//! `fastpath::template_cache`), below the cache's capacity; a new id takes a home that no
//! stored or reserved id has while there is one, so that a cache at least as large as the
//! store holds every template in its home. The high bits tell apart the ids of one home, in
//! turn (an id comes back only after 255 others of its home).

use std::collections::HashMap;
use std::sync::Arc;

use dns_common::{Answer, ANSWER_MAX, MAX_PTRS, TEMPLATE_HOME_MASK, TEMPLATE_NONE};

/// An answer body in compact form (the unused tails of `ptrs` and `data` cut off): what the
/// compiler produces and the store keeps; `Answer`, the map value, is made only to insert it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Body(Arc<[u8]>);

impl Body {
    pub fn new(a: &Answer) -> Body {
        Body(compact(a))
    }

    /// The map value.
    pub fn answer(&self) -> Answer {
        expand(&self.0)
    }

    fn field(&self, i: usize) -> u16 {
        u16::from_ne_bytes([self.0[2 * i], self.0[2 * i + 1]])
    }

    /// `Answer::kind`.
    pub fn kind(&self) -> u16 {
        self.field(6)
    }

    /// `Answer::anchor_len`.
    pub fn anchor_len(&self) -> u16 {
        self.field(7)
    }

    fn is_pass(&self) -> bool {
        self.kind() & 0xff == dns_common::AnswerKind::Pass as u16
    }
}

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
        ptr_weight: 0,
        id: 0,
        data: [0; ANSWER_MAX],
        used: 0,
        _pad: [0; 3],
        _tail: [0; 16],
    };
    let nptrs = a.nptrs as usize;
    for i in 0..nptrs {
        a.ptrs[i] = f(HEAD + i);
    }
    a.ptr_weight = dns_common::ptr_weight(&a.ptrs[..nptrs]);
    let at = (HEAD + nptrs) * 2;
    a.data[..c.len() - at].copy_from_slice(&c[at..]);
    a
}

/// How many distinct bodies `bodies` hold (pass markers excluded), for sizing the cache.
pub fn distinct<'a>(bodies: impl Iterator<Item = &'a Body>) -> usize {
    bodies
        .filter(|b| !b.is_pass())
        .collect::<std::collections::HashSet<&Body>>()
        .len()
}

struct Stored {
    body: Body,
    /// Index entries that refer to this id.
    refs: u32,
    /// References counted by the current round of `intern` calls.
    round: u32,
}

/// Answer bodies by id, deduplicated.
pub struct TemplateStore {
    ids: HashMap<Body, u32>,
    bodies: HashMap<u32, Stored>,
    /// The cache's slots: every id's home is below.
    slots: u32,
    /// Per home, how many stored or reserved ids have it.
    homes: Vec<u32>,
    /// Homes that some stored or reserved id has.
    homes_used: u32,
    /// Per home, the high bits of its next id.
    laps: Vec<u8>,
    /// The next home to try.
    cursor: u32,
    /// Ids first made in the current round or update.
    fresh: Vec<u32>,
    /// Ids released since the last `retire_released`.
    released: Vec<u32>,
    /// Ids not to make: those the entries of a program adopted from its pins refer to, until
    /// the first publication has replaced them (`reserve`, `take_reserved`).
    reserved: std::collections::HashSet<u32>,
}

impl Default for TemplateStore {
    fn default() -> Self {
        TemplateStore::with_slots(dns_common::TEMPLATES_CAPACITY)
    }
}

impl TemplateStore {
    /// A store for a cache of `slots` slots (at most `TEMPLATES_MAX_SLOTS`).
    pub fn with_slots(slots: u32) -> TemplateStore {
        let slots = slots.clamp(1, dns_common::TEMPLATES_MAX_SLOTS);
        TemplateStore {
            ids: HashMap::new(),
            bodies: HashMap::new(),
            slots,
            homes: vec![0; slots as usize],
            homes_used: 0,
            laps: vec![0; slots as usize],
            cursor: 0,
            fresh: Vec::new(),
            released: Vec::new(),
            reserved: std::collections::HashSet::new(),
        }
    }

    /// Counts `id` in its home (`up`: one more, else one fewer).
    fn count_home(&mut self, id: u32, up: bool) {
        let Some(n) = self.homes.get_mut((id & TEMPLATE_HOME_MASK) as usize) else {
            return;
        };
        match (up, *n) {
            (true, 0) => self.homes_used += 1,
            (false, 1) => self.homes_used -= 1,
            _ => {}
        }
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
    }

    /// A new id and its home: a free home while there is one, else the next home in turn
    /// with a free id; `None` when every home has all 255 of its ids stored (a cache of under
    /// a 255th of the templates).
    fn new_id(&self) -> Option<(u32, u32)> {
        let mut home = self.cursor % self.slots;
        if self.homes_used < self.slots {
            while self.homes[home as usize] != 0 {
                home = (home + 1) % self.slots;
            }
        }
        for _ in 0..self.slots {
            let first = self.laps[home as usize] as u32;
            for k in 0..256 {
                let id = (((first + k) & 0xff) << 24) | home;
                if id != TEMPLATE_NONE
                    && !self.bodies.contains_key(&id)
                    && !self.reserved.contains(&id)
                {
                    return Some((id, home));
                }
            }
            home = (home + 1) % self.slots;
        }
        None
    }

    /// Starts a new round of `intern` calls (a full publication).
    pub fn begin(&mut self) {
        self.fresh.clear();
        for s in self.bodies.values_mut() {
            s.round = 0;
        }
    }

    /// Starts an incremental update (`acquire` and `release` calls).
    pub fn begin_update(&mut self) {
        self.fresh.clear();
        self.released.clear();
    }

    /// The id of `body`, made if new; returns it and whether it is new.
    fn id_for(&mut self, body: &Body) -> (u32, bool) {
        if let Some(&id) = self.ids.get(body) {
            return (id, false);
        }
        let Some((id, home)) = self.new_id() else {
            // Not stored: its index entries name no template, and its queries are passed.
            log::warn!(
                "the XDP template cache of {} slots cannot name more than {} templates",
                self.slots,
                self.bodies.len()
            );
            return (TEMPLATE_NONE, false);
        };
        self.laps[home as usize] = ((id >> 24) as u8).wrapping_add(1);
        self.cursor = (home + 1) % self.slots;
        self.count_home(id, true);
        self.ids.insert(body.clone(), id);
        self.bodies.insert(
            id,
            Stored {
                body: body.clone(),
                refs: 0,
                round: 0,
            },
        );
        self.fresh.push(id);
        (id, true)
    }

    /// The id of `body`, made if new, counted as used by the current round. Returns the id and
    /// whether it is new.
    pub fn intern(&mut self, body: &Body) -> (u32, bool) {
        let (id, new) = self.id_for(body);
        if let Some(s) = self.bodies.get_mut(&id) {
            s.round += 1;
        }
        (id, new)
    }

    /// The id of `body`, made if new, with one more reference. Returns the id and whether it
    /// is new.
    pub fn acquire(&mut self, body: &Body) -> (u32, bool) {
        let (id, new) = self.id_for(body);
        if let Some(s) = self.bodies.get_mut(&id) {
            s.refs += 1;
        }
        (id, new)
    }

    /// One reference fewer to `id`.
    pub fn release(&mut self, id: u32) {
        if let Some(s) = self.bodies.get_mut(&id) {
            s.refs = s.refs.saturating_sub(1);
            if s.refs == 0 {
                self.released.push(id);
            }
        }
    }

    /// Forgets the released ids that no entry refers to any more; returns them.
    pub fn retire_released(&mut self) -> Vec<u32> {
        let mut gone = Vec::new();
        for id in std::mem::take(&mut self.released) {
            if self.bodies.get(&id).is_some_and(|s| s.refs == 0) {
                self.forget(id);
                gone.push(id);
            }
        }
        gone
    }

    /// Forgets `id` and its body.
    fn forget(&mut self, id: u32) {
        if let Some(s) = self.bodies.remove(&id) {
            self.ids.remove(&s.body);
            self.count_home(id, false);
        }
    }

    /// Keeps `ids` from being made (the templates of a generation this store did not fill);
    /// their homes count as taken.
    pub fn reserve(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            if id != TEMPLATE_NONE && self.reserved.insert(id) {
                self.count_home(id, true);
            }
        }
    }

    /// Ends `reserve`: the reserved ids not stored, to be removed from the cache.
    pub fn take_reserved(&mut self) -> Vec<u32> {
        let ids = std::mem::take(&mut self.reserved);
        for id in &ids {
            self.count_home(*id, false);
        }
        ids.into_iter()
            .filter(|id| !self.bodies.contains_key(id))
            .collect()
    }

    /// Takes `body` as stored under `id` with one more reference (the templates of a program
    /// adopted with its maps); false when `id` or `body` is stored already under another.
    pub fn adopt(&mut self, body: &Body, id: u32) -> bool {
        match (self.ids.get(body), self.bodies.get_mut(&id)) {
            (Some(&i), Some(s)) if i == id => {
                s.refs += 1;
                return true;
            }
            (None, None) => {}
            _ => return false,
        }
        self.ids.insert(body.clone(), id);
        self.bodies.insert(
            id,
            Stored {
                body: body.clone(),
                refs: 1,
                round: 0,
            },
        );
        self.count_home(id, true);
        true
    }

    /// The id of `body`, if stored.
    pub fn id_of(&self, body: &Body) -> Option<u32> {
        self.ids.get(body).copied()
    }

    /// References to `id`.
    pub fn refs(&self, id: u32) -> u32 {
        self.bodies.get(&id).map_or(0, |s| s.refs)
    }

    /// Whether `id` is stored.
    pub fn contains(&self, id: u32) -> bool {
        self.bodies.contains_key(&id)
    }

    /// The body of `id`.
    pub fn get(&self, id: u32) -> Option<Answer> {
        self.bodies.get(&id).map(|s| s.body.answer())
    }

    /// Forgets the ids made in the current round (a failed publication); returns them.
    pub fn discard_fresh(&mut self) -> Vec<u32> {
        let fresh = std::mem::take(&mut self.fresh);
        for id in &fresh {
            self.forget(*id);
        }
        fresh
    }

    /// Ends a round: its counts become the references, and the ids it did not use are
    /// forgotten; returns them.
    pub fn retire_unused(&mut self) -> Vec<u32> {
        for s in self.bodies.values_mut() {
            s.refs = s.round;
        }
        let old: Vec<u32> = self
            .bodies
            .iter()
            .filter(|(_, s)| s.refs == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.forget(*id);
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

    fn body(data: &[u8], ptrs: &[u16]) -> Body {
        Body::new(&answer(data, ptrs))
    }

    fn answer(data: &[u8], ptrs: &[u16]) -> Answer {
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
            ptr_weight: dns_common::ptr_weight(ptrs),
            id: 0,
            data: [0; ANSWER_MAX],
            used: 0,
            _pad: [0; 3],
            _tail: [0; 16],
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
        let a = answer(&[1, 2, 3, 0xc0, 12], &[3]);
        assert!(same(&expand(&compact(&a)), &a));
        let e = answer(&[], &[]);
        assert!(same(&expand(&compact(&e)), &e));
        let b = Body::new(&a);
        assert_eq!((b.kind(), b.anchor_len()), (a.kind, a.anchor_len));
    }

    #[test]
    fn distinct_counts_bodies_once_and_skips_pass_markers() {
        let mut pass = answer(b"", &[]);
        pass.kind = dns_common::AnswerKind::Pass as u16;
        let bodies = [
            body(b"a", &[]),
            body(b"a", &[]),
            body(b"b", &[1]),
            Body::new(&pass),
        ];
        assert_eq!(distinct(bodies.iter()), 2);
    }

    #[test]
    fn interning_dedupes_and_retires_by_round() {
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

    #[test]
    fn references_keep_ids_until_the_last_is_released() {
        let mut s = TemplateStore::default();
        s.begin();
        let (a, _) = s.intern(&body(b"one", &[]));
        s.intern(&body(b"one", &[]));
        let (b, _) = s.intern(&body(b"two", &[]));
        assert!(s.retire_unused().is_empty());
        assert_eq!((s.refs(a), s.refs(b)), (2, 1));
        s.begin_update();
        let (c, new_c) = s.acquire(&body(b"three", &[]));
        let (a2, new_a2) = s.acquire(&body(b"one", &[]));
        assert!(new_c && !new_a2 && a2 == a);
        s.release(a);
        s.release(a);
        s.release(b);
        // `a` still has the reference acquired above; `b` has none.
        assert_eq!(s.retire_released(), vec![b]);
        assert!(s.get(b).is_none() && s.id_of(&body(b"two", &[])).is_none());
        assert_eq!((s.refs(a), s.refs(c)), (1, 1));
        // A released id acquired again before the retirement stays.
        s.begin_update();
        s.release(c);
        s.acquire(&body(b"three", &[]));
        assert!(s.retire_released().is_empty());
        assert_eq!(s.id_of(&body(b"three", &[])), Some(c));
        // A full round recounts from scratch.
        s.begin();
        s.intern(&body(b"three", &[]));
        assert_eq!(s.retire_unused(), vec![a]);
        assert_eq!(s.refs(c), 1);
    }

    #[test]
    fn reserved_ids_are_not_made_and_adopted_ids_are_kept() {
        let mut s = TemplateStore::with_slots(8);
        s.reserve([1, 2, 0]);
        s.begin();
        let (a, _) = s.intern(&body(b"one", &[]));
        let (b, _) = s.intern(&body(b"two", &[]));
        assert_eq!(a & TEMPLATE_HOME_MASK, 0, "home 0 (its id 0 is none)");
        assert_ne!(a, TEMPLATE_NONE);
        assert_eq!(b & TEMPLATE_HOME_MASK, 3, "homes 1 and 2 are reserved");
        let mut gone = s.take_reserved();
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 2], "to be removed from the cache");
        let (c, _) = s.intern(&body(b"three", &[]));
        assert_eq!(c & TEMPLATE_HOME_MASK, 4, "the next free home in turn");
        let mut t = TemplateStore::with_slots(16);
        assert!(t.adopt(&body(b"x", &[]), 7));
        assert!(t.adopt(&body(b"x", &[]), 7));
        assert_eq!(t.refs(7), 2);
        assert!(!t.adopt(&body(b"x", &[]), 8), "one body, two ids");
        assert!(!t.adopt(&body(b"y", &[]), 7), "one id, two bodies");
        t.begin();
        let homes: Vec<u32> = (0..9u8)
            .map(|i| t.intern(&body(&[b'z', i], &[])).0 & TEMPLATE_HOME_MASK)
            .collect();
        assert!(
            !homes.contains(&7),
            "an adopted id's home is taken: {homes:?}"
        );
    }

    #[test]
    fn ids_take_free_homes_while_the_cache_has_room() {
        let mut s = TemplateStore::with_slots(4);
        s.begin();
        let ids: Vec<u32> = (0..4u8).map(|i| s.intern(&body(&[i], &[])).0).collect();
        let mut homes: Vec<u32> = ids.iter().map(|id| id & TEMPLATE_HOME_MASK).collect();
        homes.sort_unstable();
        assert_eq!(homes, vec![0, 1, 2, 3], "one home each: {ids:x?}");
        // Full: the next shares a home, under another id.
        let (e, _) = s.intern(&body(b"e", &[]));
        assert!(!ids.contains(&e) && e & TEMPLATE_HOME_MASK < 4);
        // A home freed by a retirement is taken again, by a new id.
        s.begin();
        for i in [0u8, 2, 3] {
            s.intern(&body(&[i], &[]));
        }
        s.intern(&body(b"e", &[]));
        assert_eq!(s.retire_unused(), vec![ids[1]]);
        let (f, new) = s.intern(&body(b"f", &[]));
        assert!(new);
        assert_eq!(f & TEMPLATE_HOME_MASK, ids[1] & TEMPLATE_HOME_MASK);
        assert_ne!(f, ids[1], "not the retired id again");
        // Ids run out only past 255 per home (0 is none): then none is made.
        let mut one = TemplateStore::with_slots(1);
        one.begin();
        let made: std::collections::HashSet<u32> = (0..255u32)
            .map(|i| one.intern(&body(&i.to_le_bytes(), &[])).0)
            .collect();
        assert_eq!(made.len(), 255);
        assert!(!made.contains(&TEMPLATE_NONE));
        let (none, new) = one.intern(&body(b"too many", &[]));
        assert_eq!((none, new), (TEMPLATE_NONE, false));
    }
}
