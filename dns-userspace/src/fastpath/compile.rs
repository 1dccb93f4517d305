//! The XDP compiler: renders answers with the engine and turns them into `ANSWERS` map entries.
//!
//! Every entry is the engine's own response to a synthetic query, its sections after the
//! question without the OPT record (`render`), so the XDP path cannot say anything the engine
//! would not. Three kinds:
//! - exact: (name, type, DO) for the RRsets of authoritative names;
//! - NODATA: (name, DO) for every other type at a name (`KEY_FLAG_NODATA`);
//! - suffix: (name, DO) answers for names at or below it (`KEY_FLAG_SUFFIX`): the referral of a
//!   zone cut, the NXDOMAIN for names below an existing name, or a pass marker where the answer
//!   depends on more than the suffix (wildcards, DNAME, NSEC ranges with DO=1; with DO=0 the
//!   NXDOMAIN below a name of an NSEC zone holds no NSEC and is a template). In NSEC3 zones the
//!   NXDOMAIN with DO=1 is an NSEC3 denial template (`nsec3`), which the program completes
//!   with the records its hash of the next closer name finds. Apex answers too long for one
//!   template are assembled from parts (`parts`). The engine
//!   compresses these answers only against the anchor name and its ancestors, so a template
//!   fits every name below its anchor once its pointers are shifted.

use std::collections::HashSet;

use dns_common::{
    suffix_flag_byte, Answer, AnswerKey, AnswerKind, KEY_FLAG_CHAOS, KEY_FLAG_DO, KEY_FLAG_NODATA,
    KIND_ANY_DO, NAME_BUF,
};

use super::nsec;
use super::nsec3::{self, ZoneNsec3};
use super::parts::NODATA_PROBE_TYPE;
use super::render::{answer_kind, pass_marker, render};
use super::templates::Body;
use crate::engine::{query, Engine, Kind};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype};
use crate::zone::{Node, Position, Zone};

/// Map entries of a compilation.
#[derive(Default)]
pub struct Entries {
    /// `ANSWERS`: exact and NODATA entries.
    pub exact: Vec<(AnswerKey, Body)>,
    /// `SUFFIXES`: referral and NXDOMAIN templates and pass markers.
    pub suffix: Vec<(SuffixKey, Body)>,
    /// NSEC3 zones the denial templates refer to, by slot.
    pub nsec3: Vec<ZoneNsec3>,
    /// The first `NSEC3_ZONES` slot to give a zone (the half of the generation compiled).
    pub nsec3_first_slot: u32,
}

/// A suffix entry's key as userspace keeps it, as long as it is: `[flags, reversed lower-cased
/// wire name]` (see `dns_common::suffix_flag_byte`); `suffix_index` makes map keys of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SuffixKey {
    /// Length of `prefix` in bits.
    pub bits: u32,
    /// `[flags, reversed lower-cased wire name]`.
    pub prefix: Box<[u8]>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.exact.len() + self.suffix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kernel memory the index entries take, estimated: key + `AnswerRef` + per-element
    /// overhead (hash element header, or LPM trie node). Templates are in the cache (see
    /// `template_cache_memory`).
    pub fn memory(&self) -> usize {
        index_memory(self.exact.len(), self.suffix.len())
    }
}

/// Kernel memory of `exact` entries in `ANSWERS` and `suffix` entries in `SUFFIXES`, estimated
/// (see `Entries::memory`).
pub fn index_memory(exact: usize, suffix: usize) -> usize {
    exact * answer_slot_memory() + suffix * suffix_slot_memory()
}

/// Kernel memory of one `ANSWERS` slot, as for `SUFFIXES` (see `suffix_slot_memory`).
pub fn answer_slot_memory() -> usize {
    std::mem::size_of::<dns_common::AnswerEntry>()
        + std::mem::size_of::<dns_common::DirBucket>() / 2
}

/// Kernel memory of one `SUFFIXES` slot: the entry (key included) and its share of the bucket
/// directory (`dns_common::dir_buckets`: a bucket per two slots).
pub fn suffix_slot_memory() -> usize {
    std::mem::size_of::<dns_common::SuffixEntry>()
        + std::mem::size_of::<dns_common::DirBucket>() / 2
}

/// Kernel memory of a template cache of `templates` slots (an array, preallocated): an
/// `Answer` (its id within) per slot.
pub fn template_cache_memory(templates: u32) -> usize {
    templates as usize * std::mem::size_of::<Answer>().next_multiple_of(8)
}

/// The `SUFFIXES` key of `name`: `[flags, reversed lower-cased wire name]`.
pub fn suffix_key(name: &Name, dnssec_ok: bool, generation: u16) -> SuffixKey {
    let wire = name.lower_wire();
    let mut prefix = Vec::with_capacity(1 + wire.len());
    prefix.push(suffix_flag_byte(generation, dnssec_ok));
    prefix.extend(wire.iter().rev());
    SuffixKey {
        bits: (prefix.len() * 8) as u32,
        prefix: prefix.into(),
    }
}

/// The map key for `name` (right-aligned, lower-cased).
pub fn key(name: &Name, qtype: u16, flags: u16, dnssec_ok: bool, generation: u16) -> AnswerKey {
    let mut key = AnswerKey::zeroed();
    let wire = name.lower_wire();
    key.name[NAME_BUF - wire.len()..].copy_from_slice(&wire);
    key.qtype = qtype;
    key.flags = flags | if dnssec_ok { KEY_FLAG_DO } else { 0 };
    key.generation = generation;
    key
}

/// Statistics of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub exact: usize,
    pub nodata: usize,
    pub referral: usize,
    pub negative: usize,
    /// Of the NXDOMAIN templates, NSEC3 denials.
    pub nsec3: usize,
    /// Of the NXDOMAIN templates, NSEC denials searched by the program (`nsec`).
    pub nsec: usize,
    /// Of the exact and NODATA entries, apex answers assembled from parts (`parts`).
    pub assembled: usize,
    pub pass: usize,
    /// Answers that could not be precompiled (too big or truncated); userspace serves them.
    pub skipped: usize,
}

impl Stats {
    pub fn entries(&self) -> usize {
        self.exact + self.nodata + self.referral + self.negative + self.pass
    }

    fn add(&mut self, o: &Stats) {
        self.exact += o.exact;
        self.nodata += o.nodata;
        self.referral += o.referral;
        self.negative += o.negative;
        self.nsec3 += o.nsec3;
        self.nsec += o.nsec;
        self.assembled += o.assembled;
        self.pass += o.pass;
        self.skipped += o.skipped;
    }
}

struct ZoneCompiler<'a> {
    engine: &'a Engine,
    zone: &'a Zone,
    generation: u16,
    out: &'a mut Entries,
    stats: Stats,
    suffix_keys: HashSet<Name>,
    nsec3: Option<&'a ZoneNsec3>,
}

impl ZoneCompiler<'_> {
    /// DO values to compile: both for signed zones; only DO=0 otherwise, marked as serving
    /// DO=1 too (the answers are the same without DNSSEC records).
    fn dos(&self) -> Vec<bool> {
        if self.zone.is_signed() {
            vec![false, true]
        } else {
            vec![false]
        }
    }

    fn mark(&self, mut v: Answer) -> Answer {
        if !self.zone.is_signed() {
            v.kind |= KIND_ANY_DO;
        }
        v
    }

    fn push(&mut self, k: AnswerKey, v: Answer) {
        let v = self.mark(v);
        if k.flags & KEY_FLAG_NODATA != 0 {
            self.stats.nodata += 1;
        } else {
            self.stats.exact += 1;
        }
        self.out.exact.push((k, Body::new(&v)));
    }

    fn push_suffix(&mut self, name: &Name, dnssec_ok: bool, v: Answer) {
        let v = self.mark(v);
        match v.kind & 0xff {
            k if k == AnswerKind::Pass as u16 => self.stats.pass += 1,
            k if k == AnswerKind::Referral as u16 => self.stats.referral += 1,
            _ => self.stats.negative += 1,
        }
        let k = suffix_key(name, dnssec_ok, self.generation);
        self.out.suffix.push((k, Body::new(&v)));
    }

    fn pass(&mut self, name: &Name) {
        if !self.suffix_keys.insert(name.clone()) {
            return;
        }
        for d in self.dos() {
            self.push_suffix(name, d, pass_marker(name.wire().len()));
        }
    }

    /// Exact entries for every type at an authoritative name; then its NODATA entry when all
    /// of them compiled.
    fn exact(&mut self, name: &Name, types: &[u16], nodata: bool) {
        let mut complete = true;
        for &t in types {
            for d in self.dos() {
                match render(self.engine, name, t, class::IN, d) {
                    Some(r) if matches!(r.kind, Some(Kind::Exact | Kind::Negative)) => {
                        self.push(key(name, t, 0, d, self.generation), r.exact());
                    }
                    _ => match self.assembled(name, t, d) {
                        Some(v) => self.push(key(name, t, 0, d, self.generation), v),
                        None => {
                            self.stats.skipped += 1;
                            complete = false;
                        }
                    },
                }
            }
        }
        if !nodata || !complete {
            return;
        }
        for d in self.dos() {
            match render(self.engine, name, NODATA_PROBE_TYPE, class::IN, d) {
                Some(r) if r.kind == Some(Kind::Negative) && r.flags & 0xf == 0 => {
                    let k = key(name, 0, KEY_FLAG_NODATA, d, self.generation);
                    self.push(k, r.exact());
                }
                _ => match self.assembled(name, NODATA_PROBE_TYPE, d) {
                    Some(v) => self.push(key(name, 0, KEY_FLAG_NODATA, d, self.generation), v),
                    None => self.stats.skipped += 1,
                },
            }
        }
    }

    /// The apex answer to `qtype` assembled from parts (`parts`), when it is one.
    fn assembled(&mut self, name: &Name, qtype: u16, dnssec_ok: bool) -> Option<Answer> {
        if name != self.zone.apex() {
            return None;
        }
        let v = self.nsec3?.apex_answer(qtype, dnssec_ok)?;
        self.stats.assembled += 1;
        Some(v)
    }

    /// A suffix template for names at/below `anchor`, from the engine's answer to `probe`.
    fn suffix(&mut self, anchor: &Name, probe: &Name, qtype: u16, want: Kind) -> bool {
        let extra = probe.wire().len() - anchor.wire().len();
        let mut made = Vec::new();
        for d in self.dos() {
            let Some(mut r) = render(self.engine, probe, qtype, class::IN, d) else {
                return false;
            };
            if r.kind != Some(want) || !r.rebase(extra) {
                return false;
            }
            made.push((d, r.suffix(answer_kind(want), anchor.wire().len())));
        }
        self.suffix_keys.insert(anchor.clone());
        for (d, v) in made {
            self.push_suffix(anchor, d, v);
        }
        true
    }

    /// NXDOMAIN below an existing name, where that answer does not depend on the rest of the
    /// query name; a pass marker otherwise.
    fn negative(&mut self, name: &Name, has_children: bool) {
        let zone = self.zone;
        let wildcard = name.wildcard().ok().and_then(|w| zone.node(&w)).is_some();
        let dname = zone
            .node(name)
            .is_some_and(|(_, n)| n.get(rtype::DNAME).is_some());
        let nsec3 = zone.nsec3().is_some_and(|c| !c.is_empty());
        let nsec_range = zone.is_signed() && has_children && !nsec3;
        let probe = (0..16)
            .filter_map(|i| name.prepend(format!("xdpdns-nx{i}").as_bytes()).ok())
            .find(|p| zone.node(p).is_none());
        let ok = match probe {
            Some(p) if !(wildcard || dname) => match (nsec3, self.nsec3) {
                (false, _) if nsec_range => self.nsec_negative(name, &p),
                (false, _) => self.suffix(name, &p, rtype::A, Kind::Negative),
                (true, Some(z)) if z.zone.count > 0 => self.nsec3_negative(name, &p, z),
                (true, _) => false,
            },
            _ => false,
        };
        if !ok {
            self.pass(name);
        }
    }

    /// The DO=0 NXDOMAIN template for names below `name`, from the engine's answer to `probe`.
    fn plain_negative(&self, name: &Name, probe: &Name) -> Option<Answer> {
        let extra = probe.wire().len() - name.wire().len();
        render(self.engine, probe, rtype::A, class::IN, false).and_then(|mut r| {
            (r.kind == Some(Kind::Negative) && r.rebase(extra))
                .then(|| r.suffix(AnswerKind::Negative, name.wire().len()))
        })
    }

    /// NXDOMAIN below `name` in an NSEC zone where the NSEC records of the proof depend on
    /// where the query name sorts among `name`'s children: the engine's template for DO=0,
    /// which has none, and for DO=1 an NSEC denial template (`nsec`) or a pass marker.
    fn nsec_negative(&mut self, name: &Name, probe: &Name) -> bool {
        let Some(plain) = self.plain_negative(name, probe) else {
            return false;
        };
        self.suffix_keys.insert(name.clone());
        self.push_suffix(name, false, plain);
        let signed = self
            .nsec3
            .and_then(|z| nsec::denial(self.engine, z, name, probe));
        match signed {
            Some(v) => {
                self.push_suffix(name, true, v);
                self.stats.nsec += 1;
            }
            None => self.push_suffix(name, true, pass_marker(name.wire().len())),
        }
        true
    }

    /// NXDOMAIN below `name` in an NSEC3 zone: the engine's template for DO=0, an NSEC3
    /// denial template for DO=1.
    fn nsec3_negative(&mut self, name: &Name, probe: &Name, z: &ZoneNsec3) -> bool {
        let plain = self.plain_negative(name, probe);
        let signed = nsec3::denial(self.engine, self.zone, z, name, probe);
        let (Some(plain), Some(signed)) = (plain, signed) else {
            return false;
        };
        self.suffix_keys.insert(name.clone());
        self.push_suffix(name, false, plain);
        self.push_suffix(name, true, signed);
        self.stats.nsec3 += 1;
        true
    }
}

/// REFUSED for names outside every served zone: a suffix entry at the root name, which the
/// longest-suffix lookup reaches only when no zone's entries match. Not made when a zone covers
/// the probe name (a root zone, say). Returns whether it was made.
pub fn compile_refused(engine: &Engine, generation: u16, out: &mut Entries) -> bool {
    let probe = Name::parse("xdpdns-refused.invalid.", None).expect("fixed name");
    if engine.catalog.find(&probe).is_some() {
        return false;
    }
    let Some(r) = render(engine, &probe, rtype::A, class::IN, false) else {
        return false;
    };
    // Header, question and the OPT record only.
    if r.flags & 0xf != query::RCODE_REFUSED || r.counts != [0; 3] || !r.data.is_empty() {
        return false;
    }
    let mut v = r.suffix(AnswerKind::Refused, Name::root().wire().len());
    v.kind |= KIND_ANY_DO;
    out.suffix
        .push((suffix_key(&Name::root(), false, generation), Body::new(&v)));
    // Where DO=1 queries are not looked up under DO=0 too, the same answer under DO=1.
    if all_signed(engine) {
        out.suffix
            .push((suffix_key(&Name::root(), true, generation), Body::new(&v)));
    }
    true
}

/// Whether every zone served is signed: then no DO=0 entry serves DO=1 but the REFUSED one,
/// which is also made under DO=1, and the program looks DO=1 queries up under DO=1 only
/// (`CONFIG_ALL_SIGNED`).
pub fn all_signed(engine: &Engine) -> bool {
    let mut zones = engine.catalog.zones().peekable();
    zones.peek().is_some() && zones.all(|z| z.is_signed())
}

/// The CHAOS-class answers (server identity and version, when configured): exact entries for
/// TXT with DO=0 and DO=1. Returns how many were made.
pub fn compile_chaos(engine: &Engine, generation: u16, out: &mut Entries) -> usize {
    let mut n = 0;
    for name in [
        "id.server.",
        "hostname.bind.",
        "version.bind.",
        "version.server.",
    ] {
        let name = Name::parse(name, None).expect("fixed name");
        // The answer does not depend on DO: one entry serves both.
        match render(engine, &name, rtype::TXT, class::CH, false) {
            Some(r) if r.kind == Some(Kind::Chaos) && r.flags & 0xf == 0 && r.counts[0] > 0 => {
                let k = key(&name, rtype::TXT, KEY_FLAG_CHAOS, false, generation);
                let mut v = r.exact();
                v.kind |= KIND_ANY_DO;
                out.exact.push((k, Body::new(&v)));
                n += 1;
            }
            _ => {}
        }
    }
    n
}

/// Whether `name` of `zone` is compiled by that zone: not in another served zone below it.
pub fn zone_owns(engine: &Engine, zone: &Zone, name: &Name) -> bool {
    engine
        .catalog
        .find(name)
        .is_some_and(|z| z.apex() == zone.apex())
}

/// Compiles a zone into map entries (appended to `out`), on as many threads as the process
/// may use: each name's entries depend only on the zone, so the names are split in chunks.
pub fn compile_zone(engine: &Engine, zone: &Zone, generation: u16, out: &mut Entries) -> Stats {
    let slot = out.nsec3_first_slot + out.nsec3.len() as u32;
    let z3 = (slot < out.nsec3_first_slot + nsec3::HALF_SLOTS)
        .then(|| nsec3::prepare(engine, zone, slot))
        .flatten();
    let z3 = z3.as_ref();
    let names: Vec<(&Name, &Node)> = zone
        .nodes()
        .filter(|(n, _)| zone_owns(engine, zone, n))
        .collect();
    let parents: HashSet<Name> = zone.nodes().filter_map(|(n, _)| n.parent()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = names.len().div_ceil(threads).max(4096);
    let parts: Vec<(Entries, Stats)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                let parents = &parents;
                s.spawn(move || {
                    let mut entries = Entries::default();
                    let mut c = ZoneCompiler::new(engine, zone, generation, &mut entries, z3);
                    for (name, node) in part {
                        c.name(name, node, parents.contains(*name));
                    }
                    let stats = c.stats;
                    (entries, stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("compiler thread"))
            .collect()
    });
    let mut stats = Stats::default();
    // Only zones some template refers to.
    let used = |st: &Stats| st.nsec3 > 0 || st.nsec > 0 || st.assembled > 0;
    if let Some(z) = z3.filter(|_| parts.iter().any(|(_, st)| used(st))) {
        out.nsec3.push(z.clone());
    }
    for (mut e, st) in parts {
        out.exact.append(&mut e.exact);
        out.suffix.append(&mut e.suffix);
        stats.add(&st);
    }
    stats
}

/// The entries of one name of `zone`, exactly as `compile_zone` makes them (none for a name
/// the zone does not hold or does not compile: below a cut or a DNAME, or in another served
/// zone). `has_children`: whether some name of the zone has `name` as its parent. `nsec3`:
/// the zone's NSEC3 data in the generation, as `compile_zone` gave it.
pub fn compile_name(
    engine: &Engine,
    zone: &Zone,
    name: &Name,
    has_children: bool,
    generation: u16,
    nsec3: Option<&ZoneNsec3>,
) -> Entries {
    let mut entries = Entries::default();
    if let Some((owner, node)) = zone.node(name) {
        if zone_owns(engine, zone, owner) {
            ZoneCompiler::new(engine, zone, generation, &mut entries, nsec3).name(
                owner,
                node,
                has_children,
            );
        }
    }
    entries
}

impl ZoneCompiler<'_> {
    fn new<'a>(
        engine: &'a Engine,
        zone: &'a Zone,
        generation: u16,
        out: &'a mut Entries,
        nsec3: Option<&'a ZoneNsec3>,
    ) -> ZoneCompiler<'a> {
        ZoneCompiler {
            engine,
            zone,
            generation,
            out,
            stats: Stats::default(),
            suffix_keys: HashSet::new(),
            nsec3,
        }
    }

    /// The entries of one name.
    fn name(&mut self, name: &Name, node: &Node, has_children: bool) {
        let zone = self.zone;
        match zone.position(name) {
            Position::Authoritative => {
                let types: Vec<u16> = node
                    .rrsets
                    .iter()
                    .map(|s| s.rtype)
                    .filter(|t| *t != rtype::CNAME)
                    .collect();
                if node.get(rtype::CNAME).is_none() {
                    self.exact(name, &types, true);
                }
                self.negative(name, has_children);
            }
            Position::Delegated { cut, .. } if cut == *name => {
                // Validators ask for DS only below signed zones.
                if zone.is_signed() {
                    self.exact(name, &[rtype::DS], false);
                }
                if !self.suffix(name, name, rtype::A, Kind::Referral) {
                    self.pass(name);
                }
            }
            _ => {}
        }
    }
}
