//! The XDP compiler: renders answers with the engine and turns them into `ANSWERS` map entries.
//!
//! Every entry is the engine's own response to a synthetic query, cut after the question and
//! before the OPT record, so the XDP path cannot say anything the engine would not. Three kinds:
//! - exact: (name, type, DO) for the RRsets of authoritative names;
//! - NODATA: (name, DO) for every other type at a name (`KEY_FLAG_NODATA`);
//! - suffix: (name, DO) answers for names at or below it (`KEY_FLAG_SUFFIX`): the referral of a
//!   zone cut, the NXDOMAIN for names below an existing name, or a pass marker where the answer
//!   depends on more than the suffix (wildcards, DNAME, NSEC3 hashes, NSEC ranges). The engine
//!   compresses these answers only against the anchor name and its ancestors, so a template
//!   fits every name below its anchor once its pointers are shifted.

use std::collections::HashSet;

use dns_common::{
    suffix_flag_byte, Answer, AnswerKey, AnswerKind, AnswerRef, ANSWER_MAX, KEY_FLAG_CHAOS,
    KEY_FLAG_DO, KEY_FLAG_NODATA, KIND_ANY_DO, MAX_PTRS, NAME_BUF, SUFFIX_DATA,
};

use super::templates::Body;
use crate::engine::{query, Engine, Kind, Transport};
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
}

/// A `SUFFIXES` key, kept as long as it is (most of the 256 key bytes are padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuffixKey {
    /// LPM prefix length in bits.
    pub bits: u32,
    /// `[flags, reversed lower-cased wire name]`.
    pub prefix: Box<[u8]>,
}

impl SuffixKey {
    /// The key data as the map takes it.
    pub fn data(&self) -> [u8; SUFFIX_DATA] {
        let mut d = [0u8; SUFFIX_DATA];
        d[..self.prefix.len()].copy_from_slice(&self.prefix);
        d
    }
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
        let v = std::mem::size_of::<AnswerRef>();
        self.exact.len() * (std::mem::size_of::<AnswerKey>() + v + HASH_ELEM)
            + self.suffix.len() * (4 + SUFFIX_DATA + v + LPM_NODE)
    }
}

/// Per-element overhead of a BPF hash map (`struct htab_elem`), estimated.
const HASH_ELEM: usize = 48;
/// Per-node overhead of a BPF LPM trie, estimated.
const LPM_NODE: usize = 48;

/// Kernel memory of a template cache of `templates` entries (preallocated): id + `Answer` +
/// element overhead.
pub fn template_cache_memory(templates: u32) -> usize {
    templates as usize * (8 + std::mem::size_of::<Answer>() + HASH_ELEM)
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

/// A private-use type (RFC 6895) no zone holds: its answer is the NODATA answer of a name.
const NODATA_PROBE_TYPE: u16 = 65280;

/// A query message for `qname`/`qtype`, class IN, ID 0, RD=0, with EDNS (payload 1232).
pub fn synthetic_query(qname: &Name, qtype: u16, dnssec_ok: bool) -> Vec<u8> {
    synthetic_query_class(qname, qtype, class::IN, dnssec_ok)
}

fn synthetic_query_class(qname: &Name, qtype: u16, qclass: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&qname.lower_wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    m.extend_from_slice(&[
        0,
        0,
        41,
        0x04,
        0xd0,
        0,
        0,
        if dnssec_ok { 0x80 } else { 0 },
        0,
        0,
        0,
    ]);
    m
}

/// Ones' complement sum of `data` in memory byte order, as if it started at an even offset.
pub fn memory_order_sum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        let pair = [c[0], *c.get(1).unwrap_or(&0)];
        s += u16::from_ne_bytes(pair) as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
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

/// The engine's response, split for a template.
struct Rendered {
    flags: u16,
    counts: [u16; 3],
    /// Everything after the question, OPT excluded.
    data: Vec<u8>,
    kind: Kind,
}

fn render(engine: &Engine, qname: &Name, qtype: u16, dnssec_ok: bool) -> Option<Rendered> {
    render_class(engine, qname, qtype, class::IN, dnssec_ok)
}

fn render_class(
    engine: &Engine,
    qname: &Name,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
) -> Option<Rendered> {
    let msg = synthetic_query_class(qname, qtype, qclass, dnssec_ok);
    let resp = engine.respond(&msg, Transport::Udp)?;
    let kind = resp.kind?;
    let b = &resp.bytes;
    let flags = u16::from_be_bytes([b[2], b[3]]);
    if flags & query::FLAG_TC != 0 {
        return None;
    }
    let qlen = qname.wire().len() + 4;
    let opt = [
        0u8,
        0,
        41,
        0x04,
        0xd0,
        0,
        0,
        if dnssec_ok { 0x80 } else { 0 },
        0,
        0,
        0,
    ];
    let body_end = b.len().checked_sub(opt.len())?;
    if b[body_end..] != opt || body_end < 12 + qlen {
        return None;
    }
    let data = b[12 + qlen..body_end].to_vec();
    if data.is_empty() || data.len() > ANSWER_MAX {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    Some(Rendered {
        flags,
        counts: [count(6), count(8), count(10) - 1],
        data,
        kind,
    })
}

fn answer_kind(k: Kind) -> AnswerKind {
    match k {
        Kind::Exact => AnswerKind::Exact,
        Kind::Referral => AnswerKind::Referral,
        Kind::Negative => AnswerKind::Negative,
        Kind::Chaos => AnswerKind::Chaos,
    }
}

fn value(r: &Rendered, anchor_len: usize, ptrs: &[usize]) -> Answer {
    let mut v = Answer {
        header_flags: r.flags,
        ancount: r.counts[0],
        nscount: r.counts[1],
        arcount: r.counts[2],
        len: r.data.len() as u16,
        csum: memory_order_sum(&r.data),
        kind: answer_kind(r.kind) as u16,
        anchor_len: anchor_len as u16,
        nptrs: ptrs.len() as u16,
        ptrs: [0; MAX_PTRS],
        _pad: [0; 3],
        data: [0; ANSWER_MAX],
    };
    for (i, p) in ptrs.iter().enumerate() {
        v.ptrs[i] = *p as u16;
    }
    v.data[..r.data.len()].copy_from_slice(&r.data);
    v
}

/// A pass marker value.
fn pass_value() -> Answer {
    let mut v = value(
        &Rendered {
            flags: 0,
            counts: [0; 3],
            data: vec![0],
            kind: Kind::Exact,
        },
        0,
        &[],
    );
    v.kind = AnswerKind::Pass as u16;
    v.len = 0;
    v
}

/// Offsets (in `data`) of the compression pointers of a rendered template; `None` when it
/// cannot be walked.
fn pointers(r: &Rendered) -> Option<Vec<usize>> {
    let d = &r.data;
    let mut ptrs = Vec::new();
    // Walks a name at `pos`; records its pointer; returns the offset after it.
    let name_at = |pos: usize, ptrs: &mut Vec<usize>| -> Option<usize> {
        let mut p = pos;
        loop {
            let len = *d.get(p)? as usize;
            if len == 0 {
                return Some(p + 1);
            }
            if len & 0xc0 == 0xc0 {
                d.get(p + 1)?;
                ptrs.push(p);
                return Some(p + 2);
            }
            p += len + 1;
        }
    };
    let mut pos = 0;
    let total: usize = r.counts.iter().map(|c| *c as usize).sum();
    for _ in 0..total {
        pos = name_at(pos, &mut ptrs)?;
        let t = u16::from_be_bytes([*d.get(pos)?, *d.get(pos + 1)?]);
        let rdlen = u16::from_be_bytes([*d.get(pos + 8)?, *d.get(pos + 9)?]) as usize;
        let rdata = pos + 10;
        match t {
            rtype::NS | rtype::CNAME | rtype::PTR => {
                name_at(rdata, &mut ptrs)?;
            }
            rtype::MX => {
                name_at(rdata + 2, &mut ptrs)?;
            }
            rtype::SOA => {
                let next = name_at(rdata, &mut ptrs)?;
                name_at(next, &mut ptrs)?;
            }
            _ => {}
        }
        pos = rdata + rdlen;
    }
    (pos == d.len()).then_some(ptrs)
}

/// Statistics of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub exact: usize,
    pub nodata: usize,
    pub referral: usize,
    pub negative: usize,
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
            let mut v = pass_value();
            v.anchor_len = name.wire().len() as u16;
            self.push_suffix(name, d, v);
        }
    }

    /// Exact entries for every type at an authoritative name; then its NODATA entry when all
    /// of them compiled.
    fn exact(&mut self, name: &Name, types: &[u16], nodata: bool) {
        let mut complete = true;
        for &t in types {
            for d in self.dos() {
                match render(self.engine, name, t, d) {
                    Some(r) if matches!(r.kind, Kind::Exact | Kind::Negative) => {
                        let v = value(&r, 0, &[]);
                        self.push(key(name, t, 0, d, self.generation), v);
                    }
                    _ => {
                        self.stats.skipped += 1;
                        complete = false;
                    }
                }
            }
        }
        if !nodata || !complete {
            return;
        }
        for d in self.dos() {
            match render(self.engine, name, NODATA_PROBE_TYPE, d) {
                Some(r) if r.kind == Kind::Negative && r.flags & 0xf == 0 => {
                    let v = value(&r, 0, &[]);
                    self.push(key(name, 0, KEY_FLAG_NODATA, d, self.generation), v);
                }
                _ => self.stats.skipped += 1,
            }
        }
    }

    /// A suffix template for names at/below `anchor`, from the engine's answer to `probe`.
    fn suffix(&mut self, anchor: &Name, probe: &Name, qtype: u16, want: Kind) -> bool {
        let p0 = probe.wire().len() - anchor.wire().len();
        let mut made = Vec::new();
        for d in self.dos() {
            let Some(r) = render(self.engine, probe, qtype, d) else {
                return false;
            };
            if r.kind != want {
                return false;
            }
            let Some(ptrs) = pointers(&r) else {
                return false;
            };
            if ptrs.len() > MAX_PTRS {
                return false;
            }
            let mut r = r;
            for &p in &ptrs {
                let v = (u16::from_be_bytes([r.data[p], r.data[p + 1]]) & 0x3fff) as usize;
                if v < 12 + p0 {
                    return false;
                }
                let nv = (0xc000 | (v - p0)) as u16;
                r.data[p..p + 2].copy_from_slice(&nv.to_be_bytes());
            }
            made.push((d, value(&r, anchor.wire().len(), &ptrs)));
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
        let nsec_range = zone.is_signed() && has_children;
        let probe = (0..16)
            .filter_map(|i| name.prepend(format!("xdpdns-nx{i}").as_bytes()).ok())
            .find(|p| zone.node(p).is_none());
        let ok = match probe {
            Some(p) if !(wildcard || dname || nsec3 || nsec_range) => {
                self.suffix(name, &p, rtype::A, Kind::Negative)
            }
            _ => false,
        };
        if !ok {
            self.pass(name);
        }
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
    let msg = synthetic_query(&probe, rtype::A, false);
    let Some(resp) = engine.respond(&msg, Transport::Udp) else {
        return false;
    };
    let b = &resp.bytes;
    let flags = u16::from_be_bytes([b[2], b[3]]);
    let qlen = probe.wire().len() + 4;
    // Header, question and the OPT record only.
    if flags & 0xf != query::RCODE_REFUSED || b.len() != 12 + qlen + 11 || b[6..10] != [0; 4] {
        return false;
    }
    let mut v = value(
        &Rendered {
            flags,
            counts: [0; 3],
            data: Vec::new(),
            kind: Kind::Exact,
        },
        Name::root().wire().len(),
        &[],
    );
    v.kind = AnswerKind::Refused as u16 | KIND_ANY_DO;
    out.suffix
        .push((suffix_key(&Name::root(), false, generation), Body::new(&v)));
    true
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
        match render_class(engine, &name, rtype::TXT, class::CH, false) {
            Some(r) if r.kind == Kind::Chaos && r.flags & 0xf == 0 && r.counts[0] > 0 => {
                let k = key(&name, rtype::TXT, KEY_FLAG_CHAOS, false, generation);
                let mut v = value(&r, 0, &[]);
                v.kind |= KIND_ANY_DO;
                out.exact.push((k, Body::new(&v)));
                n += 1;
            }
            _ => {}
        }
    }
    n
}

/// Compiles a zone into map entries (appended to `out`), on as many threads as the process
/// may use: each name's entries depend only on the zone, so the names are split in chunks.
pub fn compile_zone(engine: &Engine, zone: &Zone, generation: u16, out: &mut Entries) -> Stats {
    let ours = |n: &Name| {
        engine
            .catalog
            .find(n)
            .is_some_and(|z| z.apex() == zone.apex())
    };
    let names: Vec<(&Name, &Node)> = zone.nodes().filter(|(n, _)| ours(n)).collect();
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
                    let mut c = ZoneCompiler {
                        engine,
                        zone,
                        generation,
                        out: &mut entries,
                        stats: Stats::default(),
                        suffix_keys: HashSet::new(),
                    };
                    for (name, node) in part {
                        c.name(name, node, parents);
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
    for (mut e, st) in parts {
        out.exact.append(&mut e.exact);
        out.suffix.append(&mut e.suffix);
        stats.add(&st);
    }
    stats
}

impl ZoneCompiler<'_> {
    /// The entries of one name.
    fn name(&mut self, name: &Name, node: &Node, parents: &HashSet<Name>) {
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
                self.negative(name, parents.contains(name));
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
