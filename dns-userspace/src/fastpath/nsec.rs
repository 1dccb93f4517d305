//! NSEC denials for the XDP program (RFC 4035 §3.1.3.2): NXDOMAIN with DO=1 for names below
//! the apex of an NSEC zone, whose proof depends on where the query name sorts among the
//! zone's names. The data the program searches: the apex's child labels in canonical order
//! (RFC 4034 §6.1), each with the NSEC that covers the names sorting after everything at and
//! below that child (`dns_common::NsecLabel`, the apex itself first; children with no NSEC at
//! or below them are left out, so that unsigned names come and go without changing the
//! labels: a query name below one is below a name the maps index), and every NSEC record
//! with its RRSIGs in wire form in the zone's slot records; and the templates (the engine's
//! SOA and RRSIG, and a `dns_common::NsecMeta` naming the labels and the NSEC covering the
//! wildcard).
//!
//! The records are written as the engine writes them after the head (SOA and RRSIG) of its
//! NXDOMAIN answer, so that names compressed against the SOA's are too: pointers into the
//! question or the head move with the query name, those into the record with its place too
//! (`NSEC3_PTR_INTERNAL`). Only the apex is a closest encloser here: below a deeper one the
//! engine compresses owners against that encloser in the question, so those denials keep
//! their pass markers. A zone whose wildcard NSEC could compress against the covering one
//! (both below one child of the apex) gets no data either. Every template is checked: the
//! answer assembled from it as the program assembles it must equal the engine's answer to a
//! probe name byte for byte.

use std::collections::HashMap;

use dns_common::{
    Answer, AnswerKind, Nsec3Meta, Nsec3Record, NsecLabel, NsecMeta, ANSWER_MAX, NSEC3_META_LEN,
    NSEC3_PTR_INTERNAL, NSEC3_RECORD_MAX, NSEC3_RECORD_PTRS, NSEC3_SEARCH_STEPS, NSEC_LABEL_MAX,
    NSEC_META_FLAG,
};

use super::nsec3::{assemble, record_ends, ZoneNsec3};
use super::render::{render_within, Rendered};
use crate::engine::resolve::{set, sigs};
use crate::engine::writer::{OutSet, Section, Writer};
use crate::engine::{Engine, Kind};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype};
use crate::zone::{RRset, Zone};

/// The program's NSEC data of one zone: the apex's child labels (`NSEC_LABELS` entries from
/// the zone's `labels` base) and the record covering the apex's wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneNsec {
    pub labels: Vec<NsecLabel>,
    pub wildcard: u32,
}

/// A probe name just below `name` that the zone does not hold.
pub fn probe(zone: &Zone, name: &Name) -> Option<Name> {
    (0..16)
        .filter_map(|i| name.prepend(format!("xdpdns-nx{i}").as_bytes()).ok())
        .find(|p| zone.node(p).is_none())
}

/// The engine's DO=1 NXDOMAIN answer to `probe`, and the length of its head (the records
/// before the first NSEC).
fn nxdomain(engine: &Engine, probe: &Name) -> Option<(Rendered, usize, usize)> {
    let r = render_within(engine, probe, rtype::A, class::IN, true, usize::MAX)?;
    if r.kind != Some(Kind::Negative) || r.flags & 0xf != 3 || r.counts[0] != 0 || r.counts[2] != 0
    {
        return None;
    }
    let ends = record_ends(&r.data, r.counts[1] as usize)?;
    let head_rrs = ends.iter().take_while(|(_, t)| *t != rtype::NSEC).count();
    let head_len = if head_rrs == 0 {
        0
    } else {
        ends[head_rrs - 1].0
    };
    Some((r, head_len, head_rrs))
}

/// The label, lower-cased and zero padded, as the program compares it.
fn label(l: &[u8], record: u32) -> Option<NsecLabel> {
    if l.len() >= NSEC_LABEL_MAX {
        return None;
    }
    let mut v = NsecLabel {
        label: [0; NSEC_LABEL_MAX],
        len: l.len() as u32,
        record,
    };
    for (d, s) in v.label.iter_mut().zip(l) {
        *d = s.to_ascii_lowercase();
    }
    Some(v)
}

/// The program's order of two entries: padded octets, then length.
fn key(l: &NsecLabel) -> ([u8; NSEC_LABEL_MAX], u32) {
    (l.label, l.len)
}

/// The record of the last entry before `l`, as the program's search finds it; `None` when an
/// entry equals it (the program passes).
pub fn covering(labels: &[NsecLabel], l: &NsecLabel) -> Option<u32> {
    let at = labels.partition_point(|e| key(e) < key(l));
    if labels.get(at).is_some_and(|e| key(e) == key(l)) || at == 0 {
        return None;
    }
    Some(labels[at - 1].record)
}

/// Writes NSEC records after the head of the engine's NXDOMAIN answer to a probe, in the
/// program's form.
struct RecordWriter<'a> {
    question: Vec<u8>,
    head: Vec<OutSet<'a>>,
    head_len: usize,
    /// The probe name's length beyond the apex's.
    extra: usize,
    apex_len: usize,
}

impl RecordWriter<'_> {
    fn record(&self, owner: &Name, s: &RRset) -> Option<Nsec3Record> {
        let mut w = Writer::with_anchor(0, 0, Some(&self.question), usize::MAX, 1);
        for h in &self.head {
            w.push(Section::Authority, h, 0).ok()?;
        }
        w.push(Section::Authority, &set(owner, s), 0).ok()?;
        if !s.sigs.is_empty() {
            w.push(Section::Authority, &sigs(owner, s), 0).ok()?;
        }
        let m = w.finish();
        let body = m.body();
        if body.len() < self.head_len {
            return None;
        }
        let data = &body[self.head_len..];
        let ptrs: Vec<usize> = m.pointers().filter(|p| *p >= self.head_len).collect();
        if data.len() > NSEC3_RECORD_MAX || ptrs.len() > NSEC3_RECORD_PTRS {
            return None;
        }
        let qend = 12 + self.question.len();
        let start = qend + self.head_len;
        let apex_qend = 12 + self.apex_len + 4;
        let mut r = Nsec3Record {
            len: data.len() as u16,
            rrs: m.counts()[1] - self.head.len() as u16,
            nptrs: ptrs.len() as u16,
            _pad: 0,
            ptrs: [0; NSEC3_RECORD_PTRS],
            data: [0; NSEC3_RECORD_MAX],
        };
        r.data[..data.len()].copy_from_slice(data);
        for (slot, &p) in r.ptrs.iter_mut().zip(&ptrs) {
            let at = p - self.head_len;
            let target = (u16::from_be_bytes([body[p], body[p + 1]]) & 0x3fff) as usize;
            // As written after a question holding only the apex name, at body offset 0.
            let (v, flag) = if target >= start {
                (apex_qend + target - start, NSEC3_PTR_INTERNAL)
            } else {
                (target.checked_sub(self.extra).filter(|t| *t >= 12)?, 0)
            };
            r.data[at..at + 2].copy_from_slice(&(0xc000 | v as u16).to_be_bytes());
            *slot = at as u16 | flag;
        }
        Some(r)
    }
}

/// The zone's NSEC data, its records appended to `records` (the slot's), when the program can
/// serve its NXDOMAIN below the apex.
pub fn prepare(engine: &Engine, zone: &Zone, records: &mut Vec<Nsec3Record>) -> Option<ZoneNsec> {
    let apex = zone.apex();
    let (_, apex_node) = zone.node(apex)?;
    if !zone.is_signed()
        || zone.nsec3().is_some_and(|c| !c.is_empty())
        || apex_node.get(rtype::NSEC).is_none()
        || apex_node.get(rtype::DNAME).is_some()
        || zone.node(&apex.wildcard().ok()?).is_some()
    {
        return None;
    }
    let probe = probe(zone, apex)?;
    let (_, head_len, head_rrs) = nxdomain(engine, &probe)?;
    let soa = apex_node.get(rtype::SOA)?;
    let mut head = vec![set(apex, soa)];
    if !soa.sigs.is_empty() {
        head.push(sigs(apex, soa));
    }
    if head.len() != head_rrs {
        return None;
    }
    let mut question = probe.lower_wire();
    question.extend_from_slice(&[0, 1, 0, 1]);
    let apex_len = apex.wire().len();
    let writer = RecordWriter {
        question,
        head,
        head_len,
        extra: probe.wire().len() - apex_len,
        apex_len,
    };
    // Canonical order: labels right to left, lower-cased; fewer labels first.
    let mut names: Vec<&Name> = zone.nodes().map(|(n, _)| n).collect();
    names.sort_by_cached_key(|n| {
        let mut k: Vec<Vec<u8>> = n.labels().map(|l| l.to_ascii_lowercase()).collect();
        k.reverse();
        k
    });
    if names.first() != Some(&apex) {
        return None;
    }
    let first = records.len() as u32;
    let mut index: HashMap<&Name, u32> = HashMap::new();
    let mut owners: Vec<&Name> = Vec::new();
    let mut labels: Vec<NsecLabel> = Vec::new();
    let apex_labels = apex.label_count();
    for n in names {
        let (_, node) = zone.node(n)?;
        // Children without an NSEC below them (unsigned names, glue) cover nothing of their
        // own: the entry before them serves the names that sort among them.
        let Some(s) = node.get(rtype::NSEC) else {
            continue;
        };
        let last = first + owners.len() as u32;
        records.push(writer.record(n, s)?);
        index.insert(n, last);
        owners.push(n);
        if n == apex {
            labels.push(label(b"", last)?);
            continue;
        }
        let child = n.suffix(apex_labels + 1);
        let l = label(child.labels().next()?, last)?;
        match labels.last_mut() {
            Some(e) if key(e) == key(&l) => e.record = last,
            _ => labels.push(l),
        }
    }
    if labels.len() > 1 << NSEC3_SEARCH_STEPS || labels.windows(2).any(|w| key(&w[0]) >= key(&w[1]))
    {
        return None;
    }
    let w_owner = zone.nsec_for(&apex.wildcard().ok()?)?;
    let wildcard = *index.get(w_owner)?;
    // The wildcard's NSEC is written after the covering one: it must not compress against it.
    if w_owner != apex {
        let below = w_owner.suffix(apex_labels + 1);
        let shares = |i: u32| {
            let o = owners[(i - first) as usize];
            i != wildcard && o.is_subdomain_of(&below)
        };
        if labels.iter().any(|e| shares(e.record)) {
            return None;
        }
    }
    Some(ZoneNsec { labels, wildcard })
}

/// The DO=1 NXDOMAIN template for names below the apex (`anchor`), made from and checked
/// against the engine's answer to `probe`.
pub fn denial(
    engine: &Engine,
    zone: &Zone,
    z: &ZoneNsec3,
    anchor: &Name,
    probe: &Name,
) -> Option<Answer> {
    let n = z.nsec.as_ref()?;
    if anchor != zone.apex() {
        return None;
    }
    let (r, head_len, head_rrs) = nxdomain(engine, probe)?;
    let mut head = Rendered {
        flags: r.flags,
        counts: [0, head_rrs as u16, 0],
        data: r.data[..head_len].to_vec(),
        ptrs: r.ptrs.iter().copied().filter(|p| *p < head_len).collect(),
        kind: r.kind,
    };
    let extra = probe.wire().len() - anchor.wire().len();
    if head.data.len() + NSEC3_META_LEN > ANSWER_MAX || !head.rebase(extra) {
        return None;
    }
    let cover = covering(&n.labels, &label(probe.labels().next()?, 0)?)?;
    let meta = Nsec3Meta {
        slot: z.slot,
        closest: cover,
        next_closer: cover,
        wildcard: n.wildcard,
    };
    let (body, ns) = assemble(&head, &meta, z, probe.wire().len(), extra, cover);
    if body != r.data || ns != r.counts[1] {
        log::debug!("NSEC denial below {anchor} not assembled as the engine answers; passed");
        return None;
    }
    let m = NsecMeta {
        slot: z.slot | NSEC_META_FLAG,
        first: 0,
        count: n.labels.len() as u32,
        wildcard: n.wildcard,
    };
    for v in [m.slot, m.first, m.count, m.wildcard] {
        head.data.extend_from_slice(&v.to_ne_bytes());
    }
    Some(head.suffix(AnswerKind::Nsec3Negative, anchor.wire().len()))
}
