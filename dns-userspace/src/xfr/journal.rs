//! The journal of a zone: the diffs between the versions it went through (RFC 1995 terms: the
//! SOA it starts from, the records removed, the SOA it leads to, the records added), kept so
//! that IXFR can be served to downstream secondaries, also after a restart.
//!
//! Diffs come as received by IXFR, or computed between two whole versions (`diff`: the set
//! difference of their records, a TTL change being a removal and an addition). The journal is
//! one unbroken chain, each diff starting at the serial the one before ended at; a diff that
//! does not continue the chain starts a new one. It is bounded like Knot's journal
//! (`journal-max-usage`, `journal-max-depth`): the oldest diffs are dropped first.
//!
//! Each diff is a file `dSEQ-sFROM-sTO.diff` in the journal's directory, sealed like the
//! store's versions (length and SHA-256, written atomically: `store::write_sealed`) over a
//! binary body: the zone's name, then the two SOAs and the removed and added records, each
//! record as owner (uncompressed wire name), type, class, TTL, RDATA length and RDATA. At load
//! the newest unbroken chain of good files is kept: a file whose seal or content fails is
//! renamed `….corrupt`, and the diffs before a gap are dropped, since no chain crosses it.
//!
//! The journal is also the durable form of a secondary's IXFR updates: its versions after the
//! newest snapshot exist only as diffs here, replayed at start (`open_at` reads the journal for
//! that: past the snapshot's serial, a gap ends the journal instead of starting it anew).

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};

use super::axfr::is_apex_soa;
use super::ixfr::{serial, Diff};
use super::soa::{serial_newer, Soa};
use super::store::{read_sealed, write_sealed};
use crate::wire::name::Name;
use crate::wire::record::{read_name, Record};

/// Bounds on a journal (Knot's defaults: 100 MiB, 20 diffs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// Octets of diff files kept.
    pub max_usage: u64,
    /// Diffs kept.
    pub max_depth: usize,
}

impl Default for JournalLimits {
    fn default() -> JournalLimits {
        JournalLimits {
            max_usage: 100 << 20,
            max_depth: 20,
        }
    }
}

/// One diff on disk.
#[derive(Debug)]
struct Entry {
    seq: u64,
    path: PathBuf,
    size: u64,
    diff: Arc<Diff>,
}

/// The journal of one zone.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    zone: Name,
    limits: JournalLimits,
    /// Oldest first; each diff's `from` serial is the `to` serial of the one before.
    entries: VecDeque<Entry>,
    /// The next file's sequence number.
    next_seq: u64,
}

/// A record compared and hashed by owner (case-insensitively), type, class, TTL and RDATA.
struct Key<'a>(&'a Record);

impl PartialEq for Key<'_> {
    fn eq(&self, o: &Self) -> bool {
        let (a, b) = (self.0, o.0);
        (a.rtype, a.class, a.ttl) == (b.rtype, b.class, b.ttl)
            && a.rdata == b.rdata
            && a.owner == b.owner
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.owner.hash(h);
        (self.0.rtype, self.0.class, self.0.ttl).hash(h);
        self.0.rdata.hash(h);
    }
}

fn apex_soa<'a>(apex: &Name, records: &'a [Record], which: &str) -> Result<&'a Record> {
    records
        .iter()
        .find(|r| is_apex_soa(r, apex) && Soa::from_record(r).is_some())
        .ok_or_else(|| anyhow!("zone {apex}: the {which} version has no SOA"))
}

fn key_set<'a>(apex: &Name, v: &'a [Record]) -> HashSet<Key<'a>> {
    v.iter()
        .filter(|r| !is_apex_soa(r, apex))
        .map(Key)
        .collect()
}

/// The records of `v` (apex SOA aside) that `other` lacks, each once, in `v`'s order.
fn only_in(apex: &Name, v: &[Record], other: &HashSet<Key<'_>>) -> Vec<Record> {
    let mut seen = HashSet::new();
    v.iter()
        .filter(|r| !is_apex_soa(r, apex) && !other.contains(&Key(r)) && seen.insert(Key(r)))
        .cloned()
        .collect()
}

/// The diff from version `old` to version `new` of the zone `apex` (both whole, each with its
/// SOA): the records of `old` that `new` lacks and those of `new` that `old` lacks, in the
/// versions' order.
pub fn diff(apex: &Name, old: &[Record], new: &[Record]) -> Result<Diff> {
    let from = apex_soa(apex, old, "old")?.clone();
    let to = apex_soa(apex, new, "new")?.clone();
    let (a, b) = (key_set(apex, old), key_set(apex, new));
    let removed = only_in(apex, old, &b);
    let added = only_in(apex, new, &a);
    Ok(Diff {
        from,
        to,
        removed,
        added,
    })
}

fn put_record(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(r.owner.wire());
    out.extend_from_slice(&r.rtype.to_be_bytes());
    out.extend_from_slice(&r.class.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    out.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&r.rdata);
}

fn encode(zone: &Name, d: &Diff) -> Vec<u8> {
    let size: usize = [&d.from, &d.to]
        .into_iter()
        .chain(&d.removed)
        .chain(&d.added)
        .map(|r| r.owner.wire().len() + r.rdata.len() + 10)
        .sum();
    let mut out = Vec::with_capacity(size + zone.wire().len() + 8);
    out.extend_from_slice(zone.wire());
    put_record(&mut out, &d.from);
    put_record(&mut out, &d.to);
    for list in [&d.removed, &d.added] {
        out.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for r in list {
            put_record(&mut out, r);
        }
    }
    out
}

/// Reads what `encode` wrote, every length checked against what is left.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| anyhow!("cut short at offset {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }

    fn name(&mut self) -> Result<Name> {
        let (name, len) = read_name(&self.buf[self.pos..])
            .ok_or_else(|| anyhow!("bad name at offset {}", self.pos))?;
        self.pos += len;
        Ok(name)
    }

    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn record(&mut self) -> Result<Record> {
        let owner = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let n = self.u16()? as usize;
        let rdata = self.take(n)?.to_vec();
        Ok(Record {
            owner,
            rtype,
            class,
            ttl,
            rdata,
        })
    }

    fn records(&mut self, zone: &Name) -> Result<Vec<Record>> {
        let n = self.u32()? as usize;
        // Each record takes at least 11 octets: a count beyond that is a lie.
        if n > (self.buf.len() - self.pos) / 11 {
            bail!("{n} records announced, more than the file can hold");
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let r = self.record()?;
            if !r.owner.is_subdomain_of(zone) {
                bail!("{} is outside the zone {zone}", r.owner);
            }
            v.push(r);
        }
        Ok(v)
    }
}

fn decode(zone: &Name, buf: &[u8]) -> Result<Diff> {
    let mut r = Reader { buf, pos: 0 };
    let owner = r.name()?;
    if owner != *zone {
        bail!("a diff of zone {owner}, not {zone}");
    }
    let from = r.record()?;
    let to = r.record()?;
    for soa in [&from, &to] {
        if !is_apex_soa(soa, zone) || Soa::from_record(soa).is_none() {
            bail!("the diff does not start and end with SOAs of {zone}");
        }
    }
    let removed = r.records(zone)?;
    let added = r.records(zone)?;
    if r.pos != buf.len() {
        bail!("{} octets after the last record", buf.len() - r.pos);
    }
    Ok(Diff {
        from,
        to,
        removed,
        added,
    })
}

/// The sequence number, when `name` is a diff file's.
fn seq_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix('d')?.strip_suffix(".diff")?;
    rest.split_once("-s")?.0.parse().ok()
}

impl Journal {
    /// Opens the journal in `dir` (created if missing) and reads it back: the newest unbroken
    /// chain of good diffs within `limits`. Returns the problems met (files set aside, diffs
    /// dropped).
    pub fn open(dir: &Path, zone: &Name, limits: JournalLimits) -> Result<(Journal, Vec<String>)> {
        Journal::open_at(dir, zone, limits, None)
    }

    /// `open`, for a journal that a snapshot at serial `anchor` is replayed from: once the
    /// chain read so far reaches `anchor`, a file that is bad or does not continue it ends the
    /// journal there (it and the files after it are set aside or removed), since the versions
    /// after the gap cannot be rebuilt; before that, as `open`.
    pub fn open_at(
        dir: &Path,
        zone: &Name,
        limits: JournalLimits,
        anchor: Option<u32>,
    ) -> Result<(Journal, Vec<String>)> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = Vec::new();
        let mut next_seq = 1;
        for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = e?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.starts_with("tmp"))
            {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = seq_of(name.strip_suffix(".corrupt").unwrap_or(name)) else {
                continue;
            };
            next_seq = next_seq.max(seq + 1);
            if !name.ends_with(".corrupt") {
                files.push((seq, path));
            }
        }
        files.sort();
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            zone: zone.clone(),
            limits,
            entries: VecDeque::new(),
            next_seq,
        };
        let mut problems = Vec::new();
        let mut files = files.into_iter();
        while let Some((seq, path)) = files.next() {
            let read = read_sealed(&path).and_then(|body| {
                let d = decode(zone, &body)?;
                Ok((d, body.len() as u64))
            });
            let reached = anchor.is_some_and(|a| {
                journal
                    .entries
                    .iter()
                    .any(|e| serial(&e.diff.from) == a || serial(&e.diff.to) == a)
            });
            let continues = |diff: &Diff| {
                journal
                    .entries
                    .back()
                    .is_none_or(|last| serial(&last.diff.to) == serial(&diff.from))
            };
            if reached && !read.as_ref().is_ok_and(|(d, _)| continues(d)) {
                let why = match &read {
                    Err(e) => {
                        let _ = fs::rename(&path, path.with_extension("diff.corrupt"));
                        format!("{e:#}; set aside")
                    }
                    Ok(_) => {
                        let _ = fs::remove_file(&path);
                        "does not continue the diff before it; removed".to_owned()
                    }
                };
                let rest: Vec<PathBuf> = files.by_ref().map(|(_, p)| p).collect();
                for p in &rest {
                    let _ = fs::remove_file(p);
                }
                problems.push(format!(
                    "{}: {why}, and the {} diffs after it dropped: the journal ends at serial {:?}",
                    path.display(),
                    rest.len(),
                    journal.span().map(|s| s.1)
                ));
                break;
            }
            match read {
                Ok((diff, size)) => {
                    if !continues(&diff) {
                        problems.push(format!(
                            "{}: does not continue the diff before it; the {} older diffs are dropped",
                            path.display(),
                            journal.entries.len()
                        ));
                        journal.drop_all();
                    }
                    journal.entries.push_back(Entry {
                        seq,
                        path,
                        size,
                        diff: Arc::new(diff),
                    });
                }
                Err(e) => {
                    problems.push(format!(
                        "{}: {e:#}; set aside, and the {} older diffs dropped",
                        path.display(),
                        journal.entries.len()
                    ));
                    let _ = fs::rename(&path, path.with_extension("diff.corrupt"));
                    journal.drop_all();
                }
            }
        }
        journal.trim();
        Ok((journal, problems))
    }

    pub fn zone(&self) -> &Name {
        &self.zone
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Octets of diff files held.
    pub fn usage(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The serials the journal covers: from the oldest diff's start to the newest's end.
    pub fn span(&self) -> Option<(u32, u32)> {
        let first = self.entries.front()?;
        let last = self.entries.back()?;
        Some((serial(&first.diff.from), serial(&last.diff.to)))
    }

    /// Every diff, oldest first.
    pub fn diffs(&self) -> Vec<Arc<Diff>> {
        self.entries.iter().map(|e| e.diff.clone()).collect()
    }

    /// The diffs leading from serial `from` to the newest version, when the journal has them.
    pub fn chain_from(&self, from: u32) -> Option<Vec<Arc<Diff>>> {
        let i = self
            .entries
            .iter()
            .position(|e| serial(&e.diff.from) == from)?;
        Some(
            self.entries
                .iter()
                .skip(i)
                .map(|e| e.diff.clone())
                .collect(),
        )
    }

    /// Drops the diffs after the one that ends at serial `end` (the files too); whether the
    /// journal now ends there.
    pub fn truncate_to(&mut self, end: u32) -> bool {
        let Some(i) = self.entries.iter().rposition(|e| serial(&e.diff.to) == end) else {
            return false;
        };
        for e in self.entries.drain(i + 1..) {
            let _ = fs::remove_file(&e.path);
        }
        true
    }

    /// Removes every diff (the files too).
    pub fn clear(&mut self) {
        self.drop_all();
    }

    fn drop_all(&mut self) {
        for e in self.entries.drain(..) {
            let _ = fs::remove_file(&e.path);
        }
    }

    /// Drops the oldest diffs beyond the limits.
    fn trim(&mut self) {
        while self.entries.len() > self.limits.max_depth
            || (!self.entries.is_empty() && self.usage() > self.limits.max_usage)
        {
            let e = self.entries.pop_front().expect("not empty");
            let _ = fs::remove_file(&e.path);
        }
    }

    /// Adds a diff to the newest end, written to disk before it is kept. A diff that does not
    /// continue the chain (its start is not the newest serial) replaces the whole journal; a
    /// diff that does not lead to a newer serial is refused. Returns what was dropped, if
    /// anything, for the log.
    pub fn append(&mut self, diff: Diff) -> Result<Option<String>> {
        let (from, to) = (serial(&diff.from), serial(&diff.to));
        for soa in [&diff.from, &diff.to] {
            if !is_apex_soa(soa, &self.zone) || Soa::from_record(soa).is_none() {
                bail!("zone {}: a diff must start and end with its SOA", self.zone);
            }
        }
        if !serial_newer(to, from) {
            bail!(
                "zone {}: a diff from serial {from} to {to} does not lead to a newer serial",
                self.zone
            );
        }
        let mut note = None;
        if let Some((_, newest)) = self.span() {
            if newest != from {
                note = Some(format!(
                    "zone {}: the diff from serial {from} does not continue the journal (which ends at {newest}); its {} diffs are dropped",
                    self.zone,
                    self.entries.len()
                ));
                self.drop_all();
            }
        }
        let body = encode(&self.zone, &diff);
        let seq = self.next_seq;
        let path = self.dir.join(format!("d{seq:010}-s{from}-s{to}.diff"));
        write_sealed(&path, |w: &mut dyn Write| w.write_all(&body))
            .with_context(|| format!("zone {}: journal", self.zone))?;
        self.next_seq += 1;
        self.entries.push_back(Entry {
            seq,
            path,
            size: body.len() as u64,
            diff: Arc::new(diff),
        });
        let before = self.entries.len();
        self.trim();
        if self.entries.is_empty() {
            note = Some(format!(
                "zone {}: the diff from serial {from} to {to} ({} octets) is larger than the journal's {} octets; not kept",
                self.zone, body.len(), self.limits.max_usage
            ));
        } else if self.entries.len() < before && note.is_none() {
            log::debug!(
                "zone {}: {} old diffs dropped from the journal",
                self.zone,
                before - self.entries.len()
            );
        }
        debug_assert!(self.entries.iter().all(|e| e.seq < self.next_seq));
        Ok(note)
    }

    /// Records the change from version `old` to version `new` (whole record sets). A new
    /// version whose serial is not newer cannot be told as a diff: the journal is cleared.
    pub fn record_versions(&mut self, old: &[Record], new: &[Record]) -> Result<Option<String>> {
        let d = diff(&self.zone, old, new)?;
        self.record_diff(d)
    }

    /// `append`, but a diff whose serial is not newer clears the journal instead of failing.
    pub fn record_diff(&mut self, d: Diff) -> Result<Option<String>> {
        let (from, to) = (serial(&d.from), serial(&d.to));
        if !serial_newer(to, from) {
            self.drop_all();
            return Ok(Some(format!(
                "zone {}: serial {from} followed by {to}, not newer; the journal is cleared",
                self.zone
            )));
        }
        self.append(d)
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
