//! NSEC denials for the XDP program (RFC 4035 §3.1.3.2): NXDOMAIN with DO=1 below a name with
//! children in an NSEC zone, whose proof depends on where the query name sorts among the
//! zone's names. The data the program searches, per closest encloser (a name with children,
//! the anchor of the template): its child labels in canonical order (RFC 4034 §6.1), each
//! with the NSEC that covers the names sorting after everything at and below that child
//! (`dns_common::NsecLabel`; the encloser itself first, with the NSEC at or before it), and
//! those NSEC records with their RRSIGs in wire form in the zone's slot records; and the
//! templates (the engine's SOA and RRSIG, and a `dns_common::NsecMeta` naming the labels and
//! the NSEC covering the wildcard).
//!
//! The records are written per encloser as the engine writes them after the head (SOA and
//! RRSIG) of its NXDOMAIN answer below it: owners compress against the encloser in the
//! question and the SOA's names, so pointers into the question or the head move with the
//! anchor's place in the query name, those into the record with its place too
//! (`NSEC3_PTR_INTERNAL`). An encloser whose wildcard NSEC could compress against the
//! covering one (a name they share beyond the question's) keeps its pass marker. Every
//! template is checked: the answer assembled from it as the program assembles it must equal
//! the engine's answer to a probe name byte for byte.

use std::collections::HashMap;

use dns_common::{
    Answer, AnswerKind, Nsec3Meta, Nsec3Record, NsecLabel, NsecMeta, NSEC3_PTR_INTERNAL,
    NSEC3_RECORD_MAX, NSEC3_RECORD_PTRS, NSEC3_SEARCH_STEPS, NSEC_LABEL_MAX, NSEC_META_FLAG,
};

use super::nsec3::{assemble, nxdomain_head, ZoneNsec3};
use crate::engine::resolve::{set, sigs};
use crate::engine::writer::{OutSet, Section, Writer};
use crate::engine::Engine;
use crate::wire::name::Name;
use crate::wire::record::rtype;
use crate::zone::{Position, RRset, Zone};

/// The program's NSEC data of one zone: the closest enclosers' child labels (`NSEC_LABELS`
/// entries from the zone's `labels` base) and, per encloser, where its labels are and the
/// record covering its wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneNsec {
    pub labels: Vec<NsecLabel>,
    pub enclosers: HashMap<Name, Encloser>,
}

/// One closest encloser's labels (`count` from `first`) and wildcard record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encloser {
    pub first: u32,
    pub count: u32,
    pub wildcard: u32,
}

/// A probe name just below `name` that the zone does not hold.
pub fn probe(zone: &Zone, name: &Name) -> Option<Name> {
    (0..16)
        .filter_map(|i| name.prepend(format!("xdpdns-nx{i}").as_bytes()).ok())
        .find(|p| zone.node(p).is_none())
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
    /// The probe name's length beyond the anchor's (the closest encloser's).
    extra: usize,
    anchor_len: usize,
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
        let anchor_qend = 12 + self.anchor_len + 4;
        let rrs = m.counts()[1] - self.head.len() as u16;
        let mut r = super::nsec3::empty_record(data.len(), rrs, ptrs.len());
        r.data[..data.len()].copy_from_slice(data);
        for (slot, &p) in r.ptrs.iter_mut().zip(&ptrs) {
            let at = p - self.head_len;
            let target = (u16::from_be_bytes([body[p], body[p + 1]]) & 0x3fff) as usize;
            // As written after a question holding only the anchor name, at body offset 0.
            let (v, flag) = if target >= start {
                (anchor_qend + target - start, NSEC3_PTR_INTERNAL)
            } else {
                (target.checked_sub(self.extra).filter(|t| *t >= 12)?, 0)
            };
            r.data[at..at + 2].copy_from_slice(&(0xc000 | v as u16).to_be_bytes());
            *slot = at as u16 | flag;
        }
        super::nsec3::seal(&mut r);
        Some(r)
    }
}

/// The zone's NSEC data, its records appended to `records` (the slot's), when the program can
/// serve some of its NXDOMAIN answers.
pub fn prepare(engine: &Engine, zone: &Zone, records: &mut Vec<Nsec3Record>) -> Option<ZoneNsec> {
    let apex = zone.apex();
    let (_, apex_node) = zone.node(apex)?;
    if !zone.is_signed()
        || zone.nsec3().is_some_and(|c| !c.is_empty())
        || apex_node.get(rtype::NSEC).is_none()
        || apex_node.get(rtype::DNAME).is_some()
    {
        return None;
    }
    // The NSEC owners in canonical order: labels right to left, lower-cased; fewer first.
    let mut names: Vec<&Name> = zone
        .nodes()
        .filter(|(n, node)| *n != apex && node.get(rtype::NSEC).is_some())
        .map(|(n, _)| n)
        .collect();
    names.sort_by_cached_key(|n| {
        let mut k: Vec<Vec<u8>> = n.labels().map(|l| l.to_ascii_lowercase()).collect();
        k.reverse();
        k
    });
    // Per encloser, its children with an NSEC at or below them (the others cover nothing of
    // their own: the entry before them serves the names that sort among them, and a query
    // name below one is below a name the maps index, so unsigned names come and go without
    // changing the labels), in order, each with the last NSEC owner at or below it.
    let mut children: HashMap<&Name, Vec<(NsecLabel, &Name)>> = HashMap::new();
    for &n in &names {
        let mut below = n.clone();
        while let Some(a) = below.parent() {
            let l = label(below.labels().next()?, 0)?;
            if let Some((key_name, _)) = zone.node(&a) {
                let v = children.entry(key_name).or_default();
                match v.last_mut() {
                    Some((e, owner)) if key(e) == key(&l) => *owner = n,
                    _ => v.push((l, n)),
                }
            }
            if &a == apex {
                break;
            }
            below = a;
        }
    }
    let mut out = ZoneNsec {
        labels: Vec::new(),
        enclosers: HashMap::new(),
    };
    let mut enclosers: Vec<_> = children.into_iter().collect();
    enclosers.sort_by(|a, b| a.0.cmp(b.0));
    for (ce, kids) in enclosers {
        if let Some(e) = encloser(engine, zone, ce, &kids, records, &mut out.labels) {
            out.enclosers.insert(ce.clone(), e);
        }
    }
    (!out.enclosers.is_empty()).then_some(out)
}

/// The labels and records of closest encloser `ce` with these children, appended to
/// `labels` and `records`, when the program can serve NXDOMAIN below it.
fn encloser(
    engine: &Engine,
    zone: &Zone,
    ce: &Name,
    kids: &[(NsecLabel, &Name)],
    records: &mut Vec<Nsec3Record>,
    labels: &mut Vec<NsecLabel>,
) -> Option<Encloser> {
    let (_, node) = zone.node(ce)?;
    if !matches!(zone.position(ce), Position::Authoritative)
        || node.get(rtype::DNAME).is_some()
        || zone.node(&ce.wildcard().ok()?).is_some()
        || kids.len() >= 1 << NSEC3_SEARCH_STEPS
        || kids.windows(2).any(|w| key(&w[0].0) >= key(&w[1].0))
    {
        return None;
    }
    let probe = probe(zone, ce)?;
    let extra = probe.wire().len() - ce.wire().len();
    let (_, h) = nxdomain_head(engine, &probe, rtype::NSEC, extra)?;
    let (head_len, head_rrs) = (h.data.len(), h.counts[1] as usize);
    let apex = zone.apex();
    let soa = zone.node(apex)?.1.get(rtype::SOA)?;
    let mut head = vec![set(apex, soa)];
    if !soa.sigs.is_empty() {
        head.push(sigs(apex, soa));
    }
    if head.len() != head_rrs {
        return None;
    }
    let mut question = probe.lower_wire();
    question.extend_from_slice(&[0, 1, 0, 1]);
    let writer = RecordWriter {
        question,
        head,
        head_len,
        extra,
        anchor_len: ce.wire().len(),
    };
    // The NSEC covering the encloser (or its own), those of the children, the wildcard's.
    let own = zone.nsec_for(ce)?;
    let wildcard = zone.nsec_for(&ce.wildcard().ok()?)?;
    // The wildcard's NSEC is written after the covering one: it must not compress against
    // it, so every name they share must be in the question already (the encloser's).
    let shares = |x: &Name| x != wildcard && !ce.is_subdomain_of(&common_suffix(x, wildcard));
    if shares(own) || kids.iter().any(|(_, o)| shares(o)) {
        return None;
    }
    let mut mine: Vec<Nsec3Record> = Vec::new();
    let mut index: HashMap<&Name, u32> = HashMap::new();
    let first = records.len() as u32;
    let mut record = |owner: &Name| -> Option<u32> {
        if let Some(i) = index.get(owner) {
            return Some(*i);
        }
        let s = zone.node(owner)?.1.get(rtype::NSEC)?;
        mine.push(writer.record(owner, s)?);
        let i = first + mine.len() as u32 - 1;
        index.insert(zone.node(owner)?.0, i);
        Some(i)
    };
    let mut entries = vec![label(b"", record(own)?)?];
    for (l, owner) in kids {
        entries.push(NsecLabel {
            record: record(owner)?,
            ..*l
        });
    }
    let wildcard = record(wildcard)?;
    records.append(&mut mine);
    let e = Encloser {
        first: labels.len() as u32,
        count: entries.len() as u32,
        wildcard,
    };
    labels.append(&mut entries);
    Some(e)
}

/// The longest common suffix of two names.
fn common_suffix(a: &Name, b: &Name) -> Name {
    let mut k = 0;
    while k < a.label_count().min(b.label_count()) && a.suffix(k + 1) == b.suffix(k + 1) {
        k += 1;
    }
    a.suffix(k)
}

/// The DO=1 NXDOMAIN template for names below the closest encloser `anchor`, made from and
/// checked against the engine's answer to `probe`.
pub fn denial(engine: &Engine, z: &ZoneNsec3, anchor: &Name, probe: &Name) -> Option<Answer> {
    let e = z.nsec.as_ref()?.enclosers.get(anchor)?;
    let labels = &z.nsec.as_ref()?.labels[e.first as usize..(e.first + e.count) as usize];
    let extra = probe.wire().len() - anchor.wire().len();
    let (r, mut head) = nxdomain_head(engine, probe, rtype::NSEC, extra)?;
    let cover = covering(labels, &label(probe.labels().next()?, 0)?)?;
    let meta = Nsec3Meta {
        slot: z.slot,
        closest: cover,
        next_closer: cover,
        wildcard: e.wildcard,
    };
    // The records' pointers into the question move with the anchor, as the program moves
    // them for NSEC denials: `assemble` moves them by the name's length beyond the apex's.
    let as_if = z.zone.apex_len as usize + extra;
    let (body, ns) = assemble(&head, &meta, z, as_if, extra, cover);
    if body != r.data || ns != r.counts[1] {
        log::debug!("NSEC denial below {anchor} not assembled as the engine answers; passed");
        return None;
    }
    let m = NsecMeta {
        slot: z.slot | NSEC_META_FLAG,
        first: e.first,
        count: e.count,
        wildcard: e.wildcard,
    };
    for v in [m.slot, m.first, m.count, m.wildcard] {
        head.data.extend_from_slice(&v.to_ne_bytes());
    }
    Some(head.suffix(AnswerKind::Nsec3Negative, anchor.wire().len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program's order of labels (padded octets, then length) is the canonical order of
    /// the names they start, zero octets, upper case and prefixes included.
    #[test]
    fn padded_labels_sort_in_canonical_order() {
        let apex = Name::parse("tld.", None).unwrap();
        let mut seed = 7u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [0u8, 1, b'*', b'-', b'0', b'A', b'a', b'z', 0x7f, 0xff];
        let mut labels: Vec<Vec<u8>> = (0..2000)
            .map(|_| {
                let n = 1 + next() as usize % 6;
                (0..n)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect()
            })
            .collect();
        labels.push(vec![b'x'; 63]);
        let mut names: Vec<Name> = labels.iter().map(|l| apex.prepend(l).unwrap()).collect();
        names.sort();
        names.dedup();
        let mut padded: Vec<NsecLabel> = labels.iter().map(|l| label(l, 0).unwrap()).collect();
        padded.sort_by_key(key);
        padded.dedup_by_key(|l| key(l));
        let from_names: Vec<NsecLabel> = names
            .iter()
            .map(|n| label(n.labels().next().unwrap(), 0).unwrap())
            .collect();
        assert_eq!(padded.len(), from_names.len());
        assert!(padded
            .iter()
            .zip(&from_names)
            .all(|(a, b)| key(a) == key(b)));
        // The search takes the entry before the first one not below the label.
        let mut entries = vec![label(b"", 100).unwrap()];
        entries.extend(padded.iter().enumerate().map(|(i, l)| NsecLabel {
            record: i as u32,
            ..*l
        }));
        // Zero octets sort after absence: "\0" after the encloser's own entry, "\0\0" after "\0".
        let zeros = |n: usize| label(&vec![0; n], 0).unwrap();
        let mut few = vec![
            label(b"", 100).unwrap(),
            NsecLabel {
                record: 1,
                ..zeros(1)
            },
        ];
        few.push(NsecLabel {
            record: 3,
            ..zeros(3)
        });
        assert_eq!(covering(&few, &zeros(2)), Some(1));
        assert_eq!(covering(&few, &zeros(4)), Some(3));
        assert_eq!(covering(&few, &zeros(1)), None);
        assert_eq!(covering(&few[..1], &zeros(1)), Some(100));
        assert_eq!(covering(&entries, &padded[5]), None);
        let mut after = padded[5];
        after.len += 1;
        assert_eq!(covering(&entries, &after), Some(5));
    }
}
