//! Apex answers too long for one template (`ANSWER_MAX`), such as a signed TLD's NS RRset with
//! its glue and all their RRSIGs: the template holds the first octets of the engine's answer
//! and an `Nsec3Meta` naming up to three parts that follow it, stored after the NSEC3 records
//! of the zone's slot (`Nsec3Zone::records`). The denial program appends them as it appends
//! the records of an NSEC3 proof, all fixed, so that nothing is hashed or searched.
//!
//! The parts are cut from the engine's answer to the apex name itself, at any octet: its
//! compression pointers are already final for every query they serve (an exact entry matches
//! only names of the apex's length), so neither the head nor the parts list any to shift.
//! Only the apex's answers are made so, because its slot data is written per generation: a
//! change to them takes a full publication (see `ZoneNsec3`'s comparison in `incremental`).

use dns_common::{
    Answer, AnswerKind, Nsec3Meta, Nsec3Record, ANSWER_MAX, NSEC3_META_LEN, NSEC3_RECORD_MAX,
};

use super::nsec3::meta_bytes;
use super::render::{render, render_within, Rendered};
use super::templates::Body;
use crate::engine::{Engine, Kind};
use crate::wire::record::{class, rtype};
use crate::zone::Zone;

/// Longest head of an assembled answer: a template's data less its `Nsec3Meta`.
pub const HEAD_MAX: usize = ANSWER_MAX - NSEC3_META_LEN;
/// Parts after the head (the proof records the denial program appends).
pub const PARTS_MAX: usize = 3;
/// Longest answer body assembled.
pub const ASSEMBLED_MAX: usize = HEAD_MAX + PARTS_MAX * NSEC3_RECORD_MAX;

/// A private-use type (RFC 6895) no zone holds: its answer is the NODATA answer of a name.
pub const NODATA_PROBE_TYPE: u16 = 65280;

/// One apex answer assembled from parts: its query type (`NODATA_PROBE_TYPE` for the NODATA
/// entry), DO bit and template. The parts are in the slot's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApexAnswer {
    pub qtype: u16,
    pub dnssec_ok: bool,
    pub template: Body,
}

/// The answer's template and parts, for slot `slot` with the parts from record index
/// `first` on, when it is too long for one template but not for the parts.
pub fn split(r: &Rendered, slot: u32, first: u32) -> Option<(Answer, Vec<Nsec3Record>)> {
    if r.data.len() <= ANSWER_MAX || r.data.len() > ASSEMBLED_MAX {
        return None;
    }
    let (head, rest) = r.data.split_at(HEAD_MAX);
    let parts: Vec<Nsec3Record> = rest.chunks(NSEC3_RECORD_MAX).map(part).collect();
    let last = first + parts.len() as u32 - 1;
    // The program appends closest, next closer and wildcard, leaving out repeats.
    let meta = Nsec3Meta {
        slot,
        closest: first,
        next_closer: (first + 1).min(last),
        wildcard: if parts.len() == 3 { first + 2 } else { first },
    };
    let mut data = head.to_vec();
    data.extend_from_slice(&meta_bytes(&meta));
    let t = Rendered {
        flags: r.flags,
        counts: r.counts,
        data,
        ptrs: Vec::new(),
        kind: r.kind,
    };
    Some((t.suffix(AnswerKind::Nsec3Negative, 0), parts))
}

/// A part: octets of an answer, counted in no section (the template has the counts).
fn part(data: &[u8]) -> Nsec3Record {
    let mut r = super::nsec3::empty_record(data.len(), 0, 0);
    r.data[..data.len()].copy_from_slice(data);
    super::nsec3::seal(&mut r);
    r
}

/// The zone's apex answers (every type there and the NODATA entry, with each DO bit the
/// compiler makes entries for) that need parts: their templates, and their parts appended to
/// `records` (the slot's records, from its NSEC3 records on).
pub fn apex_answers(
    engine: &Engine,
    zone: &Zone,
    slot: u32,
    records: &mut Vec<Nsec3Record>,
) -> Vec<ApexAnswer> {
    let apex = zone.apex();
    let Some((_, node)) = zone.node(apex) else {
        return Vec::new();
    };
    let mut types: Vec<u16> = node.rrsets.iter().map(|s| s.rtype).collect();
    types.push(NODATA_PROBE_TYPE);
    let dos: &[bool] = if zone.is_signed() {
        &[false, true]
    } else {
        &[false]
    };
    let mut out = Vec::new();
    for &qtype in &types {
        for &d in dos {
            // Only what one template cannot hold.
            if render(engine, apex, qtype, class::IN, d).is_some() {
                continue;
            }
            let Some(r) = render_within(engine, apex, qtype, class::IN, d, ASSEMBLED_MAX) else {
                continue;
            };
            let wanted = match r.kind {
                Some(Kind::Exact) => qtype != NODATA_PROBE_TYPE && qtype != rtype::CNAME,
                Some(Kind::Negative) => r.flags & 0xf == 0,
                _ => false,
            };
            if !wanted {
                continue;
            }
            let Some((template, parts)) = split(&r, slot, records.len() as u32) else {
                continue;
            };
            records.extend(parts);
            out.push(ApexAnswer {
                qtype,
                dnssec_ok: d,
                template: Body::new(&template),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(len: usize) -> Rendered {
        Rendered {
            flags: 0x8400,
            counts: [3, 0, 8],
            data: (0..len).map(|i| i as u8).collect(),
            ptrs: Vec::new(),
            kind: Some(Kind::Exact),
        }
    }

    /// The head and the parts, in the order the program appends them, are the answer.
    fn assembled(t: &Answer, parts: &[Nsec3Record], first: u32) -> Vec<u8> {
        let len = t.len as usize - NSEC3_META_LEN;
        let meta = &t.data[len..len + NSEC3_META_LEN];
        let word = |i: usize| u32::from_ne_bytes(meta[4 * i..4 * i + 4].try_into().unwrap());
        let (ce, nc, wc) = (word(1), word(2), word(3));
        let mut body = t.data[..len].to_vec();
        let order = [
            Some(ce),
            (nc != ce && nc != wc).then_some(nc),
            (wc != ce).then_some(wc),
        ];
        for i in order.into_iter().flatten() {
            let p = &parts[(i - first) as usize];
            body.extend_from_slice(&p.data[..p.len as usize]);
        }
        body
    }

    #[test]
    fn parts_follow_the_head_in_the_programs_order() {
        for len in [
            ANSWER_MAX + 1,
            633,
            HEAD_MAX + 2 * NSEC3_RECORD_MAX + 1,
            ASSEMBLED_MAX,
        ] {
            let r = rendered(len);
            let (t, parts) = split(&r, 5, 100).unwrap();
            assert_eq!(assembled(&t, &parts, 100), r.data, "{len}");
            assert_eq!((t.ancount, t.nscount, t.arcount), (3, 0, 8));
            assert_eq!(t.nptrs, 0);
            assert!(parts.iter().all(|p| p.rrs == 0 && p.nptrs == 0));
        }
    }

    #[test]
    fn short_and_overlong_answers_are_not_split() {
        assert!(split(&rendered(ANSWER_MAX), 0, 0).is_none());
        assert!(split(&rendered(ASSEMBLED_MAX + 1), 0, 0).is_none());
    }
}
