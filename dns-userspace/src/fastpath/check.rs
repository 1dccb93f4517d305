//! `xdpdns map check`: every entry of the XDP maps compared with what the engine answers now.
//! The engine's answers are compiled again for the generation being served and compared with
//! what the kernel's maps hold, read back entry by entry:
//! - an index entry (exact, NODATA, suffix) the engine makes but the maps lack is `missing`
//!   (XDP then passes those queries, or a shorter suffix answers them: wrong);
//! - one the maps hold for the served generation that the engine does not make is
//!   `unexpected`;
//! - an entry that names another template kind, anchor or template than the engine's answer is
//!   `different`, and so is a cached template whose body is not the engine's answer;
//! - the NSEC3 and NSEC data of each zone slot (parameters, records with their RRSIGs, NSEC
//!   labels) is one entry, `different` when anything in it is not the engine's;
//! - the service addresses: each one the program should answer on but `SERVICE_ADDRS` lacks is
//!   `missing`, each other one there `unexpected`, and the configuration's copy of them
//!   (`Config::service`) is one entry, `different` when it is not exactly the addresses;
//! - a template that is not in the kernel's cache is `cold` (its queries are passed, which is
//!   never wrong) and not a difference;
//! - every slot of the template cache that holds an id: `different` when the template store
//!   has that id with another body, when the id is in two slots of its group (the program
//!   takes the first), or when the slot is outside the id's group (never found).
//!
//! Exact entries live under their name's epoch (incremental updates, see `incremental`): one
//! under any epoch counts, two are a difference (a stale set left behind).

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Result;
use dns_common::{AnswerKey, AnswerRef, Nsec3Record, Nsec3Zone, KIND_EPOCH_MASK};

use super::suffix_index::SuffixIndex;

use super::nsec3::ZoneNsec3;
use super::templates::Body;
use super::{compile_all, nsec3, FastPath};
use crate::engine::Engine;

/// Differences listed in full; beyond that only counted.
const LISTED: usize = 50;

/// What `check` found.
#[derive(Debug, Default)]
pub struct MapCheck {
    pub generation: u16,
    /// Index entries the engine makes now.
    pub expected: usize,
    /// Entries and templates compared and equal.
    pub matching: usize,
    pub missing: usize,
    pub unexpected: usize,
    pub different: usize,
    /// Entries whose template is not cached (passed: not compared).
    pub cold: usize,
    /// Entries of other generations still in the maps (never answered from).
    pub other_generations: usize,
    /// The first `LISTED` differences, one line each.
    pub lines: Vec<String>,
}

impl MapCheck {
    pub fn differences(&self) -> usize {
        self.missing + self.unexpected + self.different
    }

    fn note(&mut self, line: String) {
        if self.lines.len() < LISTED {
            self.lines.push(line);
        }
    }

    /// The report, a line per difference and a summary last.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let _ = writeln!(out, "{l}");
        }
        if self.differences() > self.lines.len() {
            let _ = writeln!(out, "... {} more", self.differences() - self.lines.len());
        }
        let _ = writeln!(
            out,
            "map check, generation {}: {} entries expected, {} matching, {} missing, {} \
             unexpected, {} different, {} with templates not cached (passed), {} of other \
             generations",
            self.generation,
            self.expected,
            self.matching,
            self.missing,
            self.unexpected,
            self.different,
            self.cold,
            self.other_generations
        );
        out
    }
}

/// Whether `r` is the entry `body` makes, and its template (when cached) `body`.
enum Verdict {
    Same,
    Cold,
    Different(String),
}

impl FastPath {
    /// Compares the maps with `engine`'s answers (the engine being served: call it with no
    /// change in progress).
    pub fn check(&self, engine: &Engine) -> Result<MapCheck> {
        let mut c = MapCheck {
            generation: self.generation,
            ..MapCheck::default()
        };
        let entries = compile_all(engine, self.generation, self.nsec3_half * nsec3::HALF_SLOTS);
        c.expected = entries.len();
        let s = &self.server;
        // The index as the kernel has it.
        let mut exact: HashMap<AnswerKey, Vec<(u16, AnswerRef)>> = HashMap::new();
        for kv in s.answers.iter() {
            let (k, r) = kv?;
            if k.generation != self.generation {
                c.other_generations += 1;
                continue;
            }
            let base = AnswerKey { epoch: 0, ..k };
            exact.entry(base).or_default().push((k.epoch, r));
        }
        let mut suffix: HashMap<(u32, Vec<u8>), AnswerRef> = HashMap::new();
        for kv in s.suffixes.iter() {
            let (k, r) = kv?;
            if SuffixIndex::generation_of(&k) != dns_common::suffix_generation(self.generation) {
                c.other_generations += 1;
                continue;
            }
            if s.suffixes.skips(&k)? {
                c.different += 1;
                c.note(format!(
                    "different: suffix {} is at a label depth or under a deep filter bit the program skips",
                    describe_suffix(&k.prefix)
                ));
            }
            suffix.insert((k.bits, k.prefix.to_vec()), r);
        }
        for (k, body) in &entries.exact {
            let what = || format!("exact {}", describe_exact(k));
            match exact.remove(k).as_deref() {
                None => {
                    c.missing += 1;
                    c.note(format!("missing: {}", what()));
                }
                Some([(_, r)]) => self.judge(&mut c, r, body, what),
                Some(many) => {
                    c.different += 1;
                    let epochs: Vec<u16> = many.iter().map(|e| e.0).collect();
                    c.note(format!("different: {} under epochs {epochs:?}", what()));
                }
            }
        }
        for (k, body) in &entries.suffix {
            let what = || format!("suffix {}", describe_suffix(&k.prefix));
            match suffix.remove(&(k.bits, k.prefix.to_vec())) {
                None => {
                    c.missing += 1;
                    c.note(format!("missing: {}", what()));
                }
                Some(r) => self.judge(&mut c, &r, body, what),
            }
        }
        for z in &entries.nsec3 {
            c.expected += 1;
            match self.slot_difference(z)? {
                None => c.matching += 1,
                Some(why) => {
                    c.different += 1;
                    c.note(format!("different: {} slot {}: {why}", z.apex, z.slot));
                }
            }
        }
        // The service addresses: the hash is one entry, the configuration's copy another.
        c.expected += 2;
        let service = s.check_service(&self.addrs)?;
        if service.missing.is_empty() && service.unexpected.is_empty() {
            c.matching += 1;
        }
        c.missing += service.missing.len();
        c.unexpected += service.unexpected.len();
        match service.config {
            None => c.matching += 1,
            Some(_) => c.different += 1,
        }
        for line in service.lines() {
            c.note(line);
        }
        self.check_slots(&mut c)?;
        for k in exact.keys() {
            c.unexpected += 1;
            c.note(format!("unexpected: exact {}", describe_exact(k)));
        }
        for (_, prefix) in suffix.keys() {
            c.unexpected += 1;
            c.note(format!("unexpected: suffix {}", describe_suffix(prefix)));
        }
        Ok(c)
    }

    /// Every template cache slot that holds an id against the template store (see the module
    /// doc); slots holding ids the store has forgotten (retired, not yet set to none) are
    /// never looked up by an index entry and not compared.
    fn check_slots(&self, c: &mut MapCheck) -> Result<()> {
        let cache = &self.server.templates;
        let mut seen: HashMap<u32, u32> = HashMap::new();
        for slot in 0..cache.slots() {
            let a = cache.read(slot)?;
            if a.id == dns_common::TEMPLATE_NONE {
                continue;
            }
            let why = if let Some(first) = seen.insert(a.id, slot) {
                Some(format!("template {} is in slots {first} and {slot}", a.id))
            } else if !super::template_cache::group(a.id, cache.slots()).any(|s| s == slot) {
                Some(format!(
                    "slot {slot} holds template {}, not of its group",
                    a.id
                ))
            } else {
                match self.server.store.get(a.id) {
                    Some(b) if Body::new(&b) != Body::new(&a) => Some(format!(
                        "slot {slot} holds template {} with another body than the store's",
                        a.id
                    )),
                    _ => None,
                }
            };
            if let Some(why) = why {
                c.different += 1;
                c.note(format!("different: {why}"));
            }
        }
        Ok(())
    }

    /// How the kernel's data of an NSEC3 or NSEC zone slot (its parameters, records and NSEC
    /// labels) differs from the engine's, if it does.
    fn slot_difference(&self, z: &ZoneNsec3) -> Result<Option<String>> {
        let s = &self.server;
        let k = s.nsec3.zone(z.slot)?;
        let params = |v: &Nsec3Zone| {
            (
                v.count,
                v.records,
                v.iterations,
                v.salt_len,
                v.salt,
                v.apex_len,
                v.iter_blocks,
                v.iter_words,
            )
        };
        if params(&k) != params(&z.zone) {
            return Ok(Some("zone parameters or counts".into()));
        }
        for (i, r) in z.records.iter().enumerate() {
            let m = s.nsec3.record(k.base + i as u32)?;
            let v = |r: &Nsec3Record| {
                let sums = (r.csum, r.weight, r.internal_weight);
                (r.len, r.rrs, r.nptrs, r.ptrs, r.data, sums)
            };
            if v(&m) != v(r) {
                return Ok(Some(format!("record {i}")));
            }
        }
        if let Some(n) = &z.nsec {
            let labels = s.nsec_labels.read(k.labels, n.labels.len())?;
            if let Some(i) = (0..labels.len()).find(|&i| labels[i] != n.labels[i]) {
                return Ok(Some(format!("NSEC label {i}")));
            }
        }
        Ok(None)
    }

    fn judge(&self, c: &mut MapCheck, r: &AnswerRef, body: &Body, what: impl Fn() -> String) {
        match self.verdict(r, body) {
            Verdict::Same => c.matching += 1,
            Verdict::Cold => c.cold += 1,
            Verdict::Different(why) => {
                c.different += 1;
                c.note(format!("different: {}: {why}", what()));
            }
        }
    }

    fn verdict(&self, r: &AnswerRef, body: &Body) -> Verdict {
        if r.kind & !KIND_EPOCH_MASK != body.kind() || r.anchor_len != body.anchor_len() {
            return Verdict::Different(format!(
                "kind {:#x} anchor {} in the map, the engine's {:#x} anchor {}",
                r.kind & !KIND_EPOCH_MASK,
                r.anchor_len,
                body.kind(),
                body.anchor_len()
            ));
        }
        if r.template == 0 {
            // A pass marker: nothing cached behind it.
            return Verdict::Same;
        }
        match self.server.current_ref(body) {
            Some(want) if want.template != r.template => {
                return Verdict::Different(format!(
                    "template {} in the map, the engine's answer is template {}",
                    r.template, want.template
                ))
            }
            _ => {}
        }
        // As the program finds it: the slot of its group that holds its id.
        match self.server.templates.lookup(r.template) {
            Ok(Some((_, a))) if Body::new(&a) == *body => Verdict::Same,
            Ok(Some((slot, _))) => Verdict::Different(format!(
                "cached template {} (slot {slot}) is not the engine's answer",
                r.template
            )),
            Ok(None) => Verdict::Cold,
            Err(e) => Verdict::Different(format!("{e:#}")),
        }
    }
}

/// `name type flags` of an exact key, for people.
fn describe_exact(k: &AnswerKey) -> String {
    let start = k
        .name
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(k.name.len() - 1);
    let name = crate::wire::name::Name::from_wire(&k.name[start..])
        .map_or_else(|_| format!("{:?}", &k.name[start..]), |n| n.to_string());
    format!(
        "{name} {} flags {:#x}",
        crate::wire::record::rtype::to_string(k.qtype),
        k.flags
    )
}

/// The name of a suffix key (`[flags, reversed wire name]`), for people.
fn describe_suffix(prefix: &[u8]) -> String {
    let wire: Vec<u8> = prefix[1..].iter().rev().copied().collect();
    let name = crate::wire::name::Name::from_wire(&wire)
        .map_or_else(|_| format!("{wire:?}"), |n| n.to_string());
    format!("{name} do={}", prefix[0] & 1)
}
