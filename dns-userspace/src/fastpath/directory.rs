//! A bucket directory as userspace keeps it (`dns_common::DirBucket`): the array map the XDP
//! program probes, a copy of it in memory, and the slots of the index array it points into —
//! which are free, which are in use, and which wait out a grace period before reuse.
//!
//! The order of writes is what keeps the program from ever reading a slot while it changes:
//! - a slot is written only while no word points at it (`alloc` hands out free slots only);
//! - a word is written after its slot (the slot's syscall has returned, so its stores are
//!   visible before the word's);
//! - an entry placed past its home bucket is written before the `overflow` counts that lead
//!   to it, and those are taken back before it is removed;
//! - a slot no word points at any more is reused only `GRACE` later: a program that read the
//!   word before it changed has long finished with the slot (a run takes microseconds).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aya::maps::{Array, MapData};
use dns_common::{
    dir_home, dir_tag, dir_word, DirBucket, DIR_PROBES, DIR_SLOT_BITS, DIR_TAG_SHIFT,
};

/// How long a slot waits after its last word went before it is written again.
pub const GRACE: Duration = Duration::from_millis(20);

/// `Directory::insert` found no free word within the probes of the key's home: nothing was
/// written.
#[derive(Debug, thiserror::Error)]
#[error("the bucket directory has no room near bucket {home} ({buckets} buckets)")]
pub struct NoRoom {
    pub home: u32,
    pub buckets: u32,
}

/// Where a word is: bucket and way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub bucket: u32,
    pub way: usize,
}

/// Where the buckets live: the array map (or, in unit tests, memory).
pub trait Buckets {
    fn count(&self) -> u32;
    fn read(&self, i: u32) -> Result<DirBucket>;
    fn write(&mut self, i: u32, b: DirBucket) -> Result<()>;
}

impl Buckets for Array<MapData, DirBucket> {
    fn count(&self) -> u32 {
        self.len()
    }

    fn read(&self, i: u32) -> Result<DirBucket> {
        self.get(&i, 0).context("reading a bucket directory")
    }

    fn write(&mut self, i: u32, b: DirBucket) -> Result<()> {
        self.set(i, b, 0).context("writing a bucket directory")
    }
}

pub struct Directory<M: Buckets = Array<MapData, DirBucket>> {
    map: M,
    buckets: Vec<DirBucket>,
    mask: u32,
    free: Vec<u32>,
    waiting: VecDeque<(Instant, u32)>,
    slots: u32,
}

impl<M: Buckets> Directory<M> {
    /// The directory in `map` over an array of `slots` slots. `read_back`: the map is one a
    /// running program uses (pinned); its words are read, and the slots they point at are in
    /// use. Otherwise it is new and empty.
    pub fn new(map: M, slots: u32, read_back: bool) -> Result<Directory<M>> {
        let n = map.count();
        if !n.is_power_of_two() || n < DIR_PROBES {
            bail!("a bucket directory of {n} buckets (not a power of two of {DIR_PROBES} or more)");
        }
        let mut buckets = vec![DirBucket::default(); n as usize];
        let mut used = vec![false; slots as usize];
        if read_back {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = map.read(i as u32)?;
                for w in b.words.iter().filter(|w| **w != 0) {
                    let slot = slot_of(*w);
                    match used.get_mut(slot as usize) {
                        Some(u) => *u = true,
                        None => bail!("a directory word points past the array ({slot})"),
                    }
                }
            }
        }
        let free = (0..slots).rev().filter(|s| !used[*s as usize]).collect();
        Ok(Directory {
            map,
            buckets,
            mask: n - 1,
            free,
            waiting: VecDeque::new(),
            slots,
        })
    }

    /// The bucket mask, for the program (`SUFFIX_SEED`).
    pub fn mask(&self) -> u32 {
        self.mask
    }

    /// Buckets with entries of earlier homes past them.
    pub fn overflowed(&self) -> usize {
        self.buckets.iter().filter(|b| b.overflow != 0).count()
    }

    /// The words a key of mix `m` may be at, in probe order, with their slots.
    pub fn candidates(&self, m: u64) -> impl Iterator<Item = (At, u32)> + '_ {
        let tag = dir_tag(m);
        let home = dir_home(m, self.mask);
        let mut go_on = true;
        (0..DIR_PROBES)
            .map_while(move |p| {
                if !go_on {
                    return None;
                }
                let bucket = home.wrapping_add(p) & self.mask;
                let b = &self.buckets[bucket as usize];
                go_on = b.overflow != 0;
                Some((bucket, b))
            })
            .flat_map(move |(bucket, b)| {
                b.words
                    .iter()
                    .enumerate()
                    .filter(move |(_, w)| **w >> DIR_TAG_SHIFT == tag)
                    .map(move |(way, w)| (At { bucket, way }, slot_of(*w)))
            })
    }

    /// A slot to write a new entry into (no word points at it).
    pub fn alloc(&mut self) -> Result<u32> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        let Some(&(since, _)) = self.waiting.front() else {
            bail!("the index array is full ({} slots)", self.slots);
        };
        // Everything that waited long enough, after waiting for the oldest if needed.
        std::thread::sleep(GRACE.saturating_sub(since.elapsed()));
        while let Some(&(t, s)) = self.waiting.front() {
            if t.elapsed() < GRACE {
                break;
            }
            self.waiting.pop_front();
            self.free.push(s);
        }
        self.free.pop().context("no slot came free")
    }

    /// Gives back a slot that `alloc` handed out and nothing points at (a failed write).
    pub fn unalloc(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// Points a word of the key of mix `m` at `slot` (written already), with the template home
    /// `hint` of its entry (see `DirBucket`): in its home bucket, or the first of the next ones
    /// with room.
    pub fn insert(&mut self, m: u64, slot: u32, hint: u32) -> Result<At> {
        let home = dir_home(m, self.mask);
        for p in 0..DIR_PROBES {
            let bucket = home.wrapping_add(p) & self.mask;
            let b = &self.buckets[bucket as usize];
            let Some(way) = b.words.iter().position(|w| *w == 0) else {
                continue;
            };
            let mut nb = *b;
            nb.words[way] = dir_word(dir_tag(m), hint, slot);
            self.write(bucket, nb)?;
            // The way there, from the bucket before it back to the home.
            for q in (0..p).rev() {
                let i = home.wrapping_add(q) & self.mask;
                let mut ob = self.buckets[i as usize];
                ob.overflow += 1;
                self.write(i, ob)?;
            }
            return Ok(At { bucket, way });
        }
        Err(NoRoom {
            home,
            buckets: self.mask + 1,
        }
        .into())
    }

    /// Moves the key of mix `m`, whose word is at `at`, to `slot` (written already): a second
    /// word for it first, then the old one removed, so that a lookup finds the old slot or the
    /// new one at every moment, never neither (a key not found would fall through to a shorter
    /// suffix). Only when no bucket in reach has room is the word itself repointed, which
    /// counts on its 8-octet store not tearing. The old slot waits out the grace period.
    pub fn replace(&mut self, m: u64, at: At, slot: u32, hint: u32) -> Result<At> {
        match self.insert(m, slot, hint) {
            Ok(new) => {
                self.remove(m, at)?;
                Ok(new)
            }
            Err(e) if e.is::<NoRoom>() => self.repoint(at, slot, hint).map(|()| at),
            Err(e) => Err(e),
        }
    }

    /// Points the word at `at` at `slot` instead (written already); the old slot waits out the
    /// grace period.
    fn repoint(&mut self, at: At, slot: u32, hint: u32) -> Result<()> {
        let mut b = self.buckets[at.bucket as usize];
        let old = slot_of(b.words[at.way]);
        b.words[at.way] = dir_word(b.words[at.way] >> DIR_TAG_SHIFT, hint, slot);
        self.write(at.bucket, b)?;
        self.retire(old);
        Ok(())
    }

    /// Removes the word at `at` of a key of mix `m`; its slot waits out the grace period.
    pub fn remove(&mut self, m: u64, at: At) -> Result<()> {
        let home = dir_home(m, self.mask);
        let dist = at.bucket.wrapping_sub(home) & self.mask;
        for q in 0..dist {
            let i = home.wrapping_add(q) & self.mask;
            let mut ob = self.buckets[i as usize];
            ob.overflow = ob.overflow.saturating_sub(1);
            self.write(i, ob)?;
        }
        let mut b = self.buckets[at.bucket as usize];
        let old = slot_of(b.words[at.way]);
        b.words[at.way] = 0;
        self.write(at.bucket, b)?;
        self.retire(old);
        Ok(())
    }

    /// The buckets as the map holds them now (what the program reads).
    pub fn kernel(&self) -> Result<Vec<DirBucket>> {
        (0..=self.mask).map(|i| self.map.read(i)).collect()
    }

    fn retire(&mut self, slot: u32) {
        self.waiting.push_back((Instant::now(), slot));
    }

    fn write(&mut self, bucket: u32, b: DirBucket) -> Result<()> {
        self.map.write(bucket, b)?;
        self.buckets[bucket as usize] = b;
        Ok(())
    }
}

/// Every used word of `buckets`: where, its tag and its slot.
pub fn words_of(buckets: &[DirBucket]) -> impl Iterator<Item = (At, u64, u32)> + '_ {
    buckets.iter().enumerate().flat_map(|(bucket, b)| {
        b.words
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != 0)
            .map(move |(way, w)| {
                let at = At {
                    bucket: bucket as u32,
                    way,
                };
                (at, *w >> DIR_TAG_SHIFT, slot_of(*w))
            })
    })
}

/// Whether a key of mix `m` with its word at `at` of `buckets` (a power of two of them) is
/// where lookups find it: its tag, within the probes from its home, every bucket before it on
/// the way with overflow.
pub fn check_in(buckets: &[DirBucket], m: u64, at: At) -> Result<()> {
    let mask = buckets.len() as u32 - 1;
    let w = buckets[at.bucket as usize].words[at.way];
    if w >> DIR_TAG_SHIFT != dir_tag(m) {
        bail!("directory word {at:?} has another key's tag");
    }
    let home = dir_home(m, mask);
    let dist = at.bucket.wrapping_sub(home) & mask;
    if dist >= DIR_PROBES {
        bail!("directory word {at:?} is {dist} buckets from its home {home}");
    }
    for q in 0..dist {
        let i = home.wrapping_add(q) & mask;
        if buckets[i as usize].overflow == 0 {
            bail!("directory bucket {i}, on the way to {at:?}, has no overflow count");
        }
    }
    Ok(())
}

fn slot_of(w: u64) -> u32 {
    (w & ((1 << DIR_SLOT_BITS) - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use dns_common::DIR_WAYS;

    /// Buckets in memory, with a log of the writes (bucket, word count, overflow) in order.
    struct Mem(Vec<DirBucket>, Vec<(u32, usize, u64)>);

    impl Buckets for Mem {
        fn count(&self) -> u32 {
            self.0.len() as u32
        }
        fn read(&self, i: u32) -> Result<DirBucket> {
            Ok(self.0[i as usize])
        }
        fn write(&mut self, i: u32, b: DirBucket) -> Result<()> {
            self.0[i as usize] = b;
            let used = b.words.iter().filter(|w| **w != 0).count();
            self.1.push((i, used, b.overflow));
            Ok(())
        }
    }

    fn dir(buckets: usize, slots: u32) -> Directory<Mem> {
        Directory::new(
            Mem(vec![DirBucket::default(); buckets], vec![]),
            slots,
            false,
        )
        .unwrap()
    }

    /// A mix with home bucket `home` (of 8) and a tag of its own.
    fn mix(home: u64, n: u64) -> u64 {
        home | (n + 1) << DIR_TAG_SHIFT
    }

    fn found(d: &Directory<Mem>, m: u64) -> Vec<u32> {
        d.candidates(m).map(|(_, s)| s).collect()
    }

    #[test]
    fn entries_past_their_home_are_found_and_stay_found_when_earlier_ones_go() {
        let mut d = dir(8, 64);
        let mut at = vec![];
        // Three buckets' worth with one home: the overflow goes to buckets 3 and 4.
        for n in 0..(2 * DIR_WAYS + 2) as u64 {
            let slot = d.alloc().unwrap();
            at.push((mix(2, n), d.insert(mix(2, n), slot, 0).unwrap(), slot));
        }
        assert_eq!(at.last().unwrap().1.bucket, 4);
        // An entry homed in bucket 3 (full) goes to 4 too.
        let other = mix(3, 99);
        let s = d.alloc().unwrap();
        let o_at = d.insert(other, s, 0).unwrap();
        assert_eq!(o_at.bucket, 4);
        for (m, a, slot) in &at {
            assert_eq!(found(&d, *m), vec![*slot]);
            check_in(&d.buckets, *m, *a).unwrap();
        }
        // The overflow counts: bucket 2 passes on 2 × WAYS + 2 − WAYS, bucket 3 those past it.
        assert_eq!(d.buckets[2].overflow, DIR_WAYS as u64 + 2);
        assert_eq!(d.buckets[3].overflow, 2 + 1);
        // Emptying the home bucket keeps the ones past it found.
        for (m, a, _) in at.drain(..DIR_WAYS) {
            d.remove(m, a).unwrap();
            assert!(found(&d, m).is_empty());
        }
        for (m, a, slot) in &at {
            assert_eq!(found(&d, *m), vec![*slot]);
            check_in(&d.buckets, *m, *a).unwrap();
        }
        for (m, a, _) in at.drain(..) {
            d.remove(m, a).unwrap();
        }
        assert_eq!(d.buckets[2].overflow, 0);
        assert_eq!(d.buckets[3].overflow, 1);
        assert_eq!(found(&d, other), vec![s]);
    }

    #[test]
    fn the_word_is_written_before_the_overflow_counts_that_lead_to_it_and_removed_after() {
        let mut d = dir(8, 64);
        for n in 0..DIR_WAYS as u64 {
            let s = d.alloc().unwrap();
            d.insert(mix(5, n), s, 0).unwrap();
        }
        d.map.1.clear();
        let m = mix(5, 50);
        let s = d.alloc().unwrap();
        let at = d.insert(m, s, 0).unwrap();
        assert_eq!(d.map.1, vec![(6, 1, 0), (5, DIR_WAYS, 1)]);
        d.map.1.clear();
        d.remove(m, at).unwrap();
        assert_eq!(d.map.1, vec![(5, DIR_WAYS, 0), (6, 0, 0)]);
    }

    #[test]
    fn a_replaced_entry_has_a_word_at_every_write() {
        let mut d = dir(8, 64);
        let m = mix(4, 0);
        let a = d.alloc().unwrap();
        let at = d.insert(m, a, 0).unwrap();
        let b = d.alloc().unwrap();
        d.map.1.clear();
        let new = d.replace(m, at, b, 7).unwrap();
        // Bucket 4 held one word, then two (old and new), then one (the new one).
        assert_eq!(d.map.1, vec![(4, 2, 0), (4, 1, 0)]);
        assert_eq!(found(&d, m), vec![b]);
        let w = d.buckets[new.bucket as usize].words[new.way];
        assert_eq!(dns_common::dir_hint(w), 7);
        // With no room in reach, the word itself is repointed.
        let mut full = dir(4, 64);
        let mut last = None;
        for n in 0..(DIR_PROBES as usize * DIR_WAYS) as u64 {
            let s = full.alloc().unwrap();
            last = Some((mix(0, n), full.insert(mix(0, n), s, 0).unwrap()));
        }
        let (m, at) = last.unwrap();
        let s = full.alloc().unwrap();
        assert_eq!(full.replace(m, at, s, 0x00ab_cdef).unwrap(), at);
        assert_eq!(found(&full, m), vec![s]);
        // The repointed word carries the new entry's hint, with its tag.
        let w = full.buckets[at.bucket as usize].words[at.way];
        assert_eq!(dns_common::dir_hint(w), 0x00ab_cdef);
        check_in(&full.buckets, m, at).unwrap();
    }

    #[test]
    fn no_entry_goes_further_than_a_lookup_probes() {
        let mut d = dir(8, 256);
        let room = DIR_PROBES as usize * DIR_WAYS;
        for n in 0..room as u64 {
            let s = d.alloc().unwrap();
            d.insert(mix(0, n), s, 0).unwrap();
        }
        let s = d.alloc().unwrap();
        let e = d.insert(mix(0, 1000), s, 0).unwrap_err();
        assert!(format!("{e:#}").contains("no room"), "{e:#}");
    }

    #[test]
    fn a_slot_comes_back_only_after_the_grace_period() {
        let mut d = dir(8, 2);
        let a = d.alloc().unwrap();
        let at = d.insert(mix(1, 0), a, 0).unwrap();
        let b = d.alloc().unwrap();
        // Replacing retires `a`; the next slot is `a` again, but only after GRACE.
        let t = Instant::now();
        d.replace(mix(1, 0), at, b, 0).unwrap();
        assert_eq!(found(&d, mix(1, 0)), vec![b]);
        assert_eq!(d.alloc().unwrap(), a);
        assert!(t.elapsed() >= GRACE);
        let e = d.alloc().unwrap_err();
        assert!(format!("{e:#}").contains("full"), "{e:#}");
    }

    #[test]
    fn a_directory_read_back_knows_its_used_slots() {
        let mut d = dir(8, 4);
        let s = d.alloc().unwrap();
        d.insert(mix(1, 0), s, 0).unwrap();
        let again = Directory::new(Mem(d.map.0.clone(), vec![]), 4, true).unwrap();
        assert_eq!(found(&again, mix(1, 0)), vec![s]);
        assert_eq!(again.free.len(), 3);
        assert!(!again.free.contains(&s));
    }
}
