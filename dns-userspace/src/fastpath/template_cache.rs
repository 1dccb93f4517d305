//! The XDP template cache: `TEMPLATES`, a BPF array of `Answer` slots, and which template id
//! each slot holds.
//!
//! A template id's home slot is its low bits (`TEMPLATE_HOME_MASK`, chosen by the template
//! store below the capacity, and a home no other stored id has while the cache has room), and
//! it is cached in one of the slots `home ^ w`, `w < TEMPLATE_WAYS` (its home first). The
//! program looks those slots up (array lookups, inlined by the verifier) and takes the one whose
//! `Answer::id` is the index entry's; none: a cold miss (passed, id to the `COLD` ring). With
//! the default capacity every template has a home of its own, so a hit is one lookup. In a cache
//! smaller than the zones, a promotion takes a free slot of the group, else one holding a
//! template no longer stored, else the first the group's CLOCK hand finds not `used` since it
//! last passed (the program sets `used` on a hit, userspace clears it as the hand passes).
//!
//! **Never a torn answer.** `bpf_map_update_elem` on an array copies the value in place (no RCU
//! as for a hash element), so a query may read a slot while it is written. A slot's body is
//! therefore never changed while the slot holds an id, and its id is written last:
//! 1. the slot is rewritten with id = none and its old body (a query that read the old id
//!    before reads the old body, which these bytes are; one that reads none passes);
//! 2. the slot is not written again for `GRACE` (an XDP run takes microseconds, and runs with
//!    preemption off): every query that took the slot by its old id has finished;
//! 3. the new body is written with id = none (no query takes the slot meanwhile);
//! 4. the same bytes are written again with the new id (a torn read sees the new body only).
//!
//! The stores of one syscall are visible before those of a later syscall (x86, and the kernel's
//! copy is followed by the syscall's return), and the program reads the id before the body
//! (a volatile read, then helper calls). Retiring a template is step 1 alone; the wait is paid
//! only by the next write of that slot, once per batch (`promote`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aya::maps::{Array, MapData};
use dns_common::{Answer, TEMPLATE_HOME_MASK, TEMPLATE_NONE, TEMPLATE_WAYS};

/// How long a slot set to none is not written again (step 2 of the module doc).
pub const GRACE: Duration = Duration::from_millis(5);

/// The slots of `id`'s group, its home first, those below `slots`.
pub fn group(id: u32, slots: u32) -> impl Iterator<Item = u32> {
    let home = id & TEMPLATE_HOME_MASK;
    (0..TEMPLATE_WAYS)
        .map(move |w| home ^ w)
        .filter(move |s| *s < slots)
}

/// One write of a slot, for tests of the protocol's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub slot: u32,
    pub id: u32,
    /// The body (`body_hash`), to tell bodies apart.
    pub body: u64,
    pub at: Instant,
}

/// A hash of an answer's body (`templates::Body`: everything but `id` and `used`), for
/// `Write`.
pub fn body_hash(a: &Answer) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    super::templates::Body::new(a).hash(&mut h);
    h.finish()
}

/// `TEMPLATES` and what its slots hold.
pub struct TemplateCache {
    map: Array<MapData, Answer>,
    slots: u32,
    /// The id each slot holds (`TEMPLATE_NONE`: none).
    held: Vec<u32>,
    /// The slot of each id held.
    slot_of: HashMap<u32, u32>,
    /// Slots set to none and when, not to be written before `GRACE` has passed.
    draining: HashMap<u32, Instant>,
    /// Per group, its CLOCK hand (a way).
    hands: Vec<u8>,
    /// Every slot write, when on (`record_writes`).
    log: Option<Vec<Write>>,
}

impl TemplateCache {
    /// A cache of `slots` slots, all holding none (a map just loaded).
    pub fn new(map: Array<MapData, Answer>, slots: u32) -> TemplateCache {
        TemplateCache {
            map,
            slots,
            held: vec![TEMPLATE_NONE; slots as usize],
            slot_of: HashMap::new(),
            draining: HashMap::new(),
            hands: vec![0; (slots as usize).div_ceil(TEMPLATE_WAYS as usize)],
            log: None,
        }
    }

    /// The cache of a pinned map: reads which id every slot holds. An id held twice (a
    /// daemon stopped between a move's writes) keeps its first slot; the other is set to none.
    pub fn open(map: Array<MapData, Answer>, slots: u32) -> Result<TemplateCache> {
        let mut c = TemplateCache::new(map, slots);
        for slot in 0..slots {
            let a = c
                .map
                .get(&slot, 0)
                .context("reading the pinned template cache")?;
            if a.id == TEMPLATE_NONE {
                continue;
            }
            if c.slot_of.contains_key(&a.id) || !group(a.id, slots).any(|s| s == slot) {
                c.write_raw(slot, a, TEMPLATE_NONE)?;
                c.draining.insert(slot, Instant::now());
                continue;
            }
            c.held[slot as usize] = a.id;
            c.slot_of.insert(a.id, slot);
        }
        Ok(c)
    }

    /// Logs every slot write from now on (see `writes`).
    pub fn record_writes(&mut self) {
        self.log = Some(Vec::new());
    }

    /// The slot writes since `record_writes`.
    pub fn writes(&self) -> &[Write] {
        self.log.as_deref().unwrap_or(&[])
    }

    /// The kernel's id of `TEMPLATES`.
    pub fn map_id(&self) -> Result<u32> {
        let data = aya::maps::IterableMap::map(&self.map);
        Ok(data.info().context("reading TEMPLATES' id")?.id())
    }

    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// How many templates are cached.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// The slot that holds `id`, as far as this process knows.
    pub fn slot(&self, id: u32) -> Option<u32> {
        self.slot_of.get(&id).copied()
    }

    /// The ids cached.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.slot_of.keys().copied()
    }

    /// What the map holds for `id`, read from the map as the program would find it: the slot of
    /// its group whose id is `id`, and that slot's value; `None` when no slot holds it.
    pub fn lookup(&self, id: u32) -> Result<Option<(u32, Answer)>> {
        if id == TEMPLATE_NONE {
            return Ok(None);
        }
        for slot in group(id, self.slots) {
            let a = self
                .map
                .get(&slot, 0)
                .context("reading the template cache")?;
            if a.id == id {
                return Ok(Some((slot, a)));
            }
        }
        Ok(None)
    }

    /// The value of `slot`, as the map holds it.
    pub fn read(&self, slot: u32) -> Result<Answer> {
        self.map.get(&slot, 0).context("reading the template cache")
    }

    /// Caches `body` as `id` in a free slot of its group (none: false, nothing written).
    /// Already cached: its slot is left as it is.
    pub fn insert(&mut self, id: u32, body: &Answer) -> Result<bool> {
        if self.slot_of.contains_key(&id) {
            return Ok(true);
        }
        let Some(slot) = group(id, self.slots).find(|s| self.held[*s as usize] == TEMPLATE_NONE)
        else {
            return Ok(false);
        };
        self.fill(slot, id, body)?;
        Ok(true)
    }

    /// Caches these templates, evicting others of their groups where needed: a slot holding
    /// none first, then one whose id `live` says is no longer stored, then by CLOCK. Every
    /// slot to evict is set to none first and the grace period waited once for the batch.
    /// Returns how many went in.
    pub fn promote(
        &mut self,
        items: &[(u32, Answer)],
        live: impl Fn(u32) -> bool,
    ) -> Result<usize> {
        let mut chosen = Vec::with_capacity(items.len());
        for (id, body) in items {
            if *id == TEMPLATE_NONE || self.slot_of.contains_key(id) {
                continue;
            }
            // A slot taken by an earlier item of this batch is not free any more.
            let taken = |s: &u32, chosen: &[(u32, u32, Answer)]| chosen.iter().any(|c| c.0 == *s);
            let free = group(*id, self.slots)
                .find(|s| self.held[*s as usize] == TEMPLATE_NONE && !taken(s, &chosen));
            let stale = || {
                group(*id, self.slots).find(|s| !live(self.held[*s as usize]) && !taken(s, &chosen))
            };
            let slot = match free.or_else(stale) {
                Some(s) => Some(s),
                None => self.clock(*id, &chosen.iter().map(|c| c.0).collect::<Vec<_>>())?,
            };
            let Some(slot) = slot else { continue };
            self.retire_slot(slot)?;
            chosen.push((slot, *id, *body));
        }
        for (slot, id, body) in &chosen {
            self.fill(*slot, *id, body)?;
        }
        Ok(chosen.len())
    }

    /// The CLOCK victim in `id`'s group (not one of `taken`): the hand skips slots marked
    /// used, clearing the mark (the same body rewritten, so a torn read sees one template).
    fn clock(&mut self, id: u32, taken: &[u32]) -> Result<Option<u32>> {
        let ways: Vec<u32> = group(id, self.slots).collect();
        if ways.is_empty() {
            return Ok(None);
        }
        let g = ((id & TEMPLATE_HOME_MASK) / TEMPLATE_WAYS) as usize;
        for _ in 0..2 * ways.len() {
            let hand = self.hands[g] as usize % ways.len();
            self.hands[g] = ((hand + 1) % ways.len()) as u8;
            let slot = ways[hand];
            if taken.contains(&slot) {
                continue;
            }
            let mut a = self.read(slot)?;
            if a.used == 0 {
                return Ok(Some(slot));
            }
            a.used = 0;
            let held = a.id;
            self.write_raw(slot, a, held)?;
        }
        Ok(None)
    }

    /// Takes `id` out of the cache (step 1 of the module doc); false when not cached.
    pub fn remove(&mut self, id: u32) -> Result<bool> {
        let Some(slot) = self.slot_of.get(&id).copied() else {
            return Ok(false);
        };
        self.retire_slot(slot)?;
        Ok(true)
    }

    /// Sets `slot` to none, keeping its body (step 1), when it holds an id.
    fn retire_slot(&mut self, slot: u32) -> Result<()> {
        let held = self.held[slot as usize];
        if held == TEMPLATE_NONE {
            return Ok(());
        }
        let a = self.read(slot)?;
        self.write_raw(slot, a, TEMPLATE_NONE)?;
        self.held[slot as usize] = TEMPLATE_NONE;
        self.slot_of.remove(&held);
        self.draining.insert(slot, Instant::now());
        Ok(())
    }

    /// Steps 2 to 4: waits out the grace period of `slot`, then writes `body` under none and
    /// again under `id`.
    fn fill(&mut self, slot: u32, id: u32, body: &Answer) -> Result<()> {
        if let Some(at) = self.draining.remove(&slot) {
            let waited = at.elapsed();
            if waited < GRACE {
                std::thread::sleep(GRACE - waited);
            }
        }
        let mut a = *body;
        a.used = 0;
        self.write_raw(slot, a, TEMPLATE_NONE)?;
        self.write_raw(slot, a, id)?;
        self.held[slot as usize] = id;
        self.slot_of.insert(id, slot);
        Ok(())
    }

    fn write_raw(&mut self, slot: u32, mut a: Answer, id: u32) -> Result<()> {
        a.id = id;
        if let Some(log) = &mut self.log {
            log.push(Write {
                slot,
                id,
                body: body_hash(&a),
                at: Instant::now(),
            });
        }
        self.map
            .set(slot, a, 0)
            .context("writing the XDP template cache")
    }
}
