//! NSEC3 denials for the XDP program (RFC 5155 §7.2.2): the per-zone data it hashes and
//! searches (parameters, sorted owner hashes, each NSEC3 record with its RRSIGs in wire form,
//! written by the engine's own writer), and the templates of NXDOMAIN below an existing name
//! in an NSEC3 zone with DO=1 — the engine's SOA and RRSIG as the head, and which records of
//! the chain prove the closest encloser and the wildcard (`dns_common::Nsec3Meta`).
//!
//! The same slot holds the parts of the zone's apex answers too long for one template
//! (`parts`), after the NSEC3 records, also for zones without NSEC3.
//!
//! Every template is checked before use: the answer assembled from it, as the program
//! assembles it, must equal the engine's answer to a probe name byte for byte. A zone whose
//! chain the program could get wrong gets no data, and its names keep their pass markers: a
//! hash algorithm other than SHA-1, more than 150 iterations, duplicate owner hashes, records
//! too long, or NSEC3 records whose hashes are not those of names of the zone (the engine
//! would then find proofs at names that do not exist, which the program does not hash).

use std::collections::HashSet;
use std::sync::Arc;

use dns_common::{
    Answer, AnswerKind, Nsec3Hash, Nsec3Meta, Nsec3Record, Nsec3Zone, ANSWER_MAX,
    NSEC3_ITERATIONS_MAX, NSEC3_ITER_WORDS, NSEC3_META_LEN, NSEC3_NONE, NSEC3_PTR_INTERNAL,
    NSEC3_RECORD_MAX, NSEC3_RECORD_PTRS, NSEC3_SALT_MAX, NSEC3_SEARCH_STEPS,
};

use super::nsec::ZoneNsec;
use super::parts::{self, ApexAnswer};
use super::render::{memory_order_sum, render_within, Rendered};
use crate::engine::resolve::{set, sigs};
use crate::engine::writer::{Section, Writer};
use crate::engine::{Engine, Kind};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype};
use crate::zone::nsec3::{hash, Nsec3Chain};
use crate::zone::Zone;

/// Zone slots in one half of `NSEC3_ZONES`.
pub const HALF_SLOTS: u32 = dns_common::NSEC3_ZONE_SLOTS / 2;

/// What the program needs of one zone's slot in a generation: its NSEC3 chain (none when the
/// program cannot serve its denials) and its apex answers assembled from parts.
#[derive(Clone)]
pub struct ZoneNsec3 {
    pub apex: Name,
    pub slot: u32,
    /// The map value, `base` filled in when it is inserted.
    pub zone: Nsec3Zone,
    /// The owner hashes of the NSEC3 records, sorted: `zone.count` of them.
    pub hashes: Vec<Nsec3Hash>,
    /// The NSEC3 records at the index of their hash, then the parts of `apex_answers`.
    pub records: Vec<Nsec3Record>,
    pub apex_answers: Vec<ApexAnswer>,
    /// An NSEC zone's labels and wildcard record (`nsec`); its records are in `records`.
    pub nsec: Option<Arc<ZoneNsec>>,
}

impl ZoneNsec3 {
    /// The assembled template of the apex answer to `qtype` (`NODATA_PROBE_TYPE`: the NODATA
    /// entry), if it is one.
    pub fn apex_answer(&self, qtype: u16, dnssec_ok: bool) -> Option<Answer> {
        self.apex_answers
            .iter()
            .find(|a| a.qtype == qtype && a.dnssec_ok == dnssec_ok)
            .map(|a| a.template.answer())
    }
}

impl PartialEq for ZoneNsec3 {
    fn eq(&self, o: &ZoneNsec3) -> bool {
        let z = |v: &Nsec3Zone| {
            (
                v.count,
                v.records,
                v.iterations,
                v.salt,
                v.salt_len,
                v.apex_len,
                v.iter_blocks,
                v.iter_words,
            )
        };
        let r = |v: &Nsec3Record| {
            (
                (v.len, v.rrs, v.nptrs, v.csum, v.ptrs, v.data),
                (v.weight, v.internal_weight),
            )
        };
        self.slot == o.slot
            && self.apex_answers == o.apex_answers
            && z(&self.zone) == z(&o.zone)
            && self.hashes == o.hashes
            && self.nsec == o.nsec
            && self.records.len() == o.records.len()
            && self
                .records
                .iter()
                .zip(&o.records)
                .all(|(a, b)| r(a) == r(b))
    }
}

fn words(h: &[u8]) -> Nsec3Hash {
    let mut w = [0u32; 5];
    for (i, c) in h.chunks(4).take(5).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    Nsec3Hash(w)
}

/// The padded iteration message `IH(k-1) || salt` as big-endian words, the hash left zero.
fn iteration_words(salt: &[u8]) -> ([u32; NSEC3_ITER_WORDS], u16) {
    let mut m = vec![0u8; 20];
    m.extend_from_slice(salt);
    let bits = (m.len() as u64) * 8;
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&bits.to_be_bytes());
    let mut w = [0u32; NSEC3_ITER_WORDS];
    for (i, c) in m.chunks(4).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    (w, (m.len() / 64) as u16)
}

/// An NSEC3 RRset with its RRSIGs as the engine writes it after a question holding only the
/// apex name (see `dns_common::Nsec3Record`).
fn record(apex: &Name, owner: &Name, s: &crate::zone::RRset) -> Option<Nsec3Record> {
    let mut q = apex.lower_wire();
    q.extend_from_slice(&[0, 1, 0, 1]);
    let qend = 12 + q.len();
    let mut w = Writer::new(0, 0, Some(&q), usize::MAX);
    w.push(Section::Authority, &set(owner, s), 0).ok()?;
    if !s.sigs.is_empty() {
        w.push(Section::Authority, &sigs(owner, s), 0).ok()?;
    }
    let m = w.finish();
    let body = m.body();
    let ptrs: Vec<usize> = m.pointers().collect();
    if body.len() > NSEC3_RECORD_MAX || ptrs.len() > NSEC3_RECORD_PTRS {
        return None;
    }
    let mut r = empty_record(body.len(), m.counts()[1], ptrs.len());
    for (slot, &p) in r.ptrs.iter_mut().zip(&ptrs) {
        let target = (u16::from_be_bytes([body[p], body[p + 1]]) & 0x3fff) as usize;
        *slot = p as u16
            | if target >= qend {
                NSEC3_PTR_INTERNAL
            } else {
                0
            };
    }
    r.data[..body.len()].copy_from_slice(body);
    seal(&mut r);
    Some(r)
}

/// A record of `len` octets, `rrs` resource records and `nptrs` pointers, its data and
/// pointers still zero (then filled in, and `seal`ed).
pub(super) fn empty_record(len: usize, rrs: u16, nptrs: usize) -> Nsec3Record {
    Nsec3Record {
        len: len as u16,
        rrs,
        nptrs: nptrs as u16,
        csum: 0,
        ptrs: [0; NSEC3_RECORD_PTRS],
        data: [0; NSEC3_RECORD_MAX],
        weight: 0,
        internal_weight: 0,
        _pad: 0,
    }
}

/// Fills in a record's sum and pointer weights (see `dns_common::Nsec3Record`) from its
/// data and pointers, once they are final.
pub(super) fn seal(r: &mut Nsec3Record) {
    let ptrs = &r.ptrs[..(r.nptrs as usize).min(NSEC3_RECORD_PTRS)];
    let internal: Vec<u16> = ptrs
        .iter()
        .copied()
        .filter(|p| p & NSEC3_PTR_INTERNAL != 0)
        .collect();
    r.weight = dns_common::ptr_weight(ptrs);
    r.internal_weight = dns_common::ptr_weight(&internal);
    r.csum = memory_order_sum(&r.data[..(r.len as usize).min(NSEC3_RECORD_MAX)]);
}

/// The program's data for `zone` in `slot`: when it can serve the zone's NSEC3 denials, or
/// the zone has apex answers too long for one template.
pub fn prepare(engine: &Engine, zone: &Zone, slot: u32) -> Option<ZoneNsec3> {
    let apex = zone.apex();
    let (hashes, mut records, mut v) = match chain_data(zone) {
        Some(c) => c,
        None => (Vec::new(), Vec::new(), empty_zone(apex)),
    };
    let apex_answers = parts::apex_answers(engine, zone, slot, &mut records);
    let nsec = super::nsec::prepare(engine, zone, &mut records).map(Arc::new);
    if hashes.is_empty() && apex_answers.is_empty() && nsec.is_none() {
        return None;
    }
    v.records = records.len() as u32;
    Some(ZoneNsec3 {
        apex: apex.clone(),
        slot,
        zone: v,
        hashes,
        records,
        apex_answers,
        nsec,
    })
}

/// The slot value of a zone without NSEC3 data.
fn empty_zone(apex: &Name) -> Nsec3Zone {
    Nsec3Zone {
        base: 0,
        count: 0,
        records: 0,
        labels: 0,
        iterations: 0,
        salt_len: 0,
        apex_len: apex.wire().len() as u16,
        iter_blocks: 0,
        salt: [0; NSEC3_SALT_MAX + 1],
        iter_words: [0; NSEC3_ITER_WORDS],
    }
}

type ChainData = (Vec<Nsec3Hash>, Vec<Nsec3Record>, Nsec3Zone);

/// The sorted hashes and the records of the zone's NSEC3 chain, when the program can serve
/// its denials.
fn chain_data(zone: &Zone) -> Option<ChainData> {
    let chain: &Nsec3Chain = zone.nsec3().filter(|c| !c.is_empty())?;
    if chain.algorithm != 1
        || chain.iterations > NSEC3_ITERATIONS_MAX
        || chain.salt.len() > NSEC3_SALT_MAX
        || chain.len() > 1 << NSEC3_SEARCH_STEPS
    {
        return None;
    }
    let apex = zone.apex();
    let names: HashSet<Vec<u8>> = zone
        .nodes()
        .map(|(n, _)| hash(n, chain.iterations, &chain.salt))
        .collect();
    let mut hashes = Vec::with_capacity(chain.len());
    let mut records = Vec::with_capacity(chain.len());
    for (h, owner, s) in chain.entries() {
        if h.len() != 20 || !names.contains(h) {
            return None;
        }
        let h = words(h);
        if hashes.last().is_some_and(|l| *l >= h) {
            return None;
        }
        hashes.push(h);
        records.push(record(apex, owner, s)?);
    }
    let (iter_words, iter_blocks) = iteration_words(&chain.salt);
    let mut salt = [0u8; NSEC3_SALT_MAX + 1];
    salt[..chain.salt.len()].copy_from_slice(&chain.salt);
    let zone = Nsec3Zone {
        base: 0,
        count: hashes.len() as u32,
        records: 0,
        labels: 0,
        iterations: chain.iterations,
        salt_len: chain.salt.len() as u16,
        apex_len: apex.wire().len() as u16,
        iter_blocks,
        salt,
        iter_words,
    };
    Some((hashes, records, zone))
}

/// End of each resource record in `body`.
fn record_ends(body: &[u8], count: usize) -> Option<Vec<(usize, u16)>> {
    let mut at = 0;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        loop {
            let b = *body.get(at)?;
            if b & 0xc0 == 0xc0 {
                at += 2;
                break;
            }
            at += 1 + b as usize;
            if b == 0 {
                break;
            }
        }
        let t = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
        let rdlen = u16::from_be_bytes([*body.get(at + 8)?, *body.get(at + 9)?]) as usize;
        at += 10 + rdlen;
        if at > body.len() {
            return None;
        }
        out.push((at, t));
    }
    (at == body.len()).then_some(out)
}

/// The body the program assembles for a query name of `name_len` octets, `shift` longer
/// than the anchor, from the template's head (pointers not yet shifted), its `meta` and the
/// index of the NSEC3 covering the next closer name; and the authority count.
pub fn assemble(
    head: &Rendered,
    meta: &Nsec3Meta,
    z: &ZoneNsec3,
    name_len: usize,
    shift: usize,
    next_closer: u32,
) -> (Vec<u8>, u16) {
    let mut body = head.data.clone();
    for &p in &head.ptrs {
        let v = u16::from_be_bytes([body[p], body[p + 1]]) + shift as u16;
        body[p..p + 2].copy_from_slice(&v.to_be_bytes());
    }
    let mut ns = head.counts[1];
    let nc = (next_closer != meta.closest && next_closer != meta.wildcard).then_some(next_closer);
    let wc = (meta.wildcard != meta.closest).then_some(meta.wildcard);
    let apex_shift = (name_len - z.zone.apex_len as usize) as u16;
    for i in [Some(meta.closest), nc, wc].into_iter().flatten() {
        let r = &z.records[i as usize];
        let at = body.len();
        body.extend_from_slice(&r.data[..r.len as usize]);
        for &p in &r.ptrs[..r.nptrs as usize] {
            let o = at + (p & 0x1ff) as usize;
            let mut v = u16::from_be_bytes([body[o], body[o + 1]]) + apex_shift;
            if p & NSEC3_PTR_INTERNAL != 0 {
                v += at as u16;
            }
            body[o..o + 2].copy_from_slice(&v.to_be_bytes());
        }
        ns += r.rrs;
    }
    (body, ns)
}

/// The DO=1 NXDOMAIN template for names below `anchor`, made from and checked against the
/// engine's answer to `probe` (a name just below it that the zone does not hold).
pub fn denial(
    engine: &Engine,
    zone: &Zone,
    z: &ZoneNsec3,
    anchor: &Name,
    probe: &Name,
) -> Option<Answer> {
    let chain = zone.nsec3()?;
    let apex = zone.apex();
    // The closest provable encloser, as the engine finds it: the anchor or, when it has no
    // NSEC3 (opt-out), its nearest ancestor with one; the next closer name is then fixed.
    let mut ce = anchor.clone();
    let mut child = None;
    while chain.matching_index(&ce).is_none() && &ce != apex {
        child = Some(ce.clone());
        ce = ce.parent()?;
    }
    let index = |i: usize| i as u32;
    let meta = Nsec3Meta {
        slot: z.slot,
        closest: index(chain.matching_index(&ce)?),
        next_closer: match &child {
            Some(c) => index(chain.covering_index(c)?),
            None => NSEC3_NONE,
        },
        wildcard: index(chain.covering_index(&ce.wildcard().ok()?)?),
    };
    let extra = probe.wire().len() - anchor.wire().len();
    let (r, mut head) = nxdomain_head(engine, probe, rtype::NSEC3, extra)?;
    let nc = match child {
        Some(_) => meta.next_closer,
        None => index(chain.covering_index(probe)?),
    };
    let (body, ns) = assemble(&head, &meta, z, probe.wire().len(), extra, nc);
    if body != r.data || ns != r.counts[1] {
        log::debug!("NSEC3 denial below {anchor} not assembled as the engine answers; passed");
        return None;
    }
    head.data.extend_from_slice(&meta_bytes(&meta));
    Some(head.suffix(AnswerKind::Nsec3Negative, anchor.wire().len()))
}

/// The engine's DO=1 NXDOMAIN answer to `probe` and its head: the records before the first
/// of type `proof` (NSEC3 or NSEC), its pointers rebased for names `extra` octets longer than
/// the anchor; `None` when it cannot be the head of a denial template.
pub(super) fn nxdomain_head(
    engine: &Engine,
    probe: &Name,
    proof: u16,
    extra: usize,
) -> Option<(Rendered, Rendered)> {
    let r = render_within(engine, probe, rtype::A, class::IN, true, usize::MAX)?;
    if r.kind != Some(Kind::Negative) || r.flags & 0xf != 3 || r.counts[0] != 0 || r.counts[2] != 0
    {
        return None;
    }
    let ends = record_ends(&r.data, r.counts[1] as usize)?;
    let head_rrs = ends.iter().take_while(|(_, t)| *t != proof).count();
    let head_len = if head_rrs == 0 {
        0
    } else {
        ends[head_rrs - 1].0
    };
    let mut head = Rendered {
        flags: r.flags,
        counts: [0, head_rrs as u16, 0],
        data: r.data[..head_len].to_vec(),
        ptrs: r.ptrs.iter().copied().filter(|p| *p < head_len).collect(),
        kind: r.kind,
    };
    if head.data.len() + NSEC3_META_LEN > ANSWER_MAX || !head.rebase(extra) {
        return None;
    }
    Some((r, head))
}

pub(super) fn meta_bytes(m: &Nsec3Meta) -> [u8; NSEC3_META_LEN] {
    let mut b = [0u8; NSEC3_META_LEN];
    for (i, v) in [m.slot, m.closest, m.next_closer, m.wildcard]
        .iter()
        .enumerate()
    {
        b[4 * i..4 * i + 4].copy_from_slice(&v.to_ne_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record's sum once the program shifted its pointers (every one by `apex_shift`, the
    /// internal ones by `at` too) and placed it at body offset `at`, as the program takes it
    /// from `seal`'s figures, against the sum of the shifted octets themselves.
    #[test]
    fn sealed_sums_follow_the_pointer_shifts() {
        let mut r = empty_record(41, 2, 3);
        for (i, b) in r.data[..41].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        // Pointers at an even and an odd offset into the question, one into the record.
        for (slot, (at, flag)) in
            r.ptrs
                .iter_mut()
                .zip([(4u16, 0), (11, 0), (30, NSEC3_PTR_INTERNAL)])
        {
            r.data[at as usize..at as usize + 2].copy_from_slice(&(0xc00c_u16 + at).to_be_bytes());
            *slot = at | flag;
        }
        seal(&mut r);
        for (apex_shift, at) in [(0u64, 0u64), (7, 0), (0, 133), (200, 301), (255, 1999)] {
            let mut data = r.data[..41].to_vec();
            for &p in &r.ptrs[..3] {
                let o = (p & 0x1ff) as usize;
                let add = apex_shift + if p & NSEC3_PTR_INTERNAL != 0 { at } else { 0 };
                let v = u16::from_be_bytes([data[o], data[o + 1]]) + add as u16;
                data[o..o + 2].copy_from_slice(&v.to_be_bytes());
            }
            let fold = |mut s: u64| {
                while s > 0xffff {
                    s = (s & 0xffff) + (s >> 16);
                }
                s
            };
            let from_seal =
                fold(r.csum as u64 + apex_shift * r.weight as u64 + at * r.internal_weight as u64);
            // Equal as ones' complement numbers (0 and 0xffff are the same).
            assert_eq!(
                from_seal % 0xffff,
                memory_order_sum(&data) as u64 % 0xffff,
                "shift {apex_shift}, offset {at}"
            );
        }
    }
}
