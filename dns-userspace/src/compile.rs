//! The XDP compiler: renders answers with the engine and turns them into `ANSWERS` map entries.
//!
//! Every entry is the engine's own response to a synthetic query, cut after the question and
//! before the OPT record, so the XDP path cannot say anything the engine would not.

use dns_common::{Answer, AnswerKey, AnswerKind, ANSWER_MAX, KEY_FLAG_DO, NAME_BUF};

use crate::engine::{query, Engine, Kind, Transport};
use crate::name::Name;
use crate::record::rtype;
use crate::zone::{Position, Zone};

/// One map entry.
pub type Entry = (AnswerKey, Answer);

/// A query message for `qname`/`qtype`, class IN, ID 0, RD=0, with EDNS (payload 1232).
pub fn synthetic_query(qname: &Name, qtype: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&qname.lower_wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
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

/// Builds the map entry for one query from the engine's response, or `None` when the answer
/// cannot be precompiled (truncated, too big, or of a kind the XDP path does not serve).
pub fn entry(
    engine: &Engine,
    qname: &Name,
    qtype: u16,
    dnssec_ok: bool,
    generation: u16,
) -> Option<Entry> {
    let msg = synthetic_query(qname, qtype, dnssec_ok);
    let resp = engine.respond(&msg, Transport::Udp)?;
    let kind = match resp.kind? {
        Kind::Exact => AnswerKind::Exact,
        Kind::Referral => AnswerKind::Referral,
        Kind::Negative => AnswerKind::Negative,
        Kind::Chaos => AnswerKind::Chaos,
    };
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
    let data = &b[12 + qlen..body_end];
    if data.is_empty() || data.len() > ANSWER_MAX {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let mut value = Answer {
        header_flags: flags,
        ancount: count(6),
        nscount: count(8),
        arcount: count(10) - 1,
        len: data.len() as u16,
        csum: memory_order_sum(data),
        kind: kind as u16,
        _pad: 0,
        data: [0; ANSWER_MAX],
    };
    value.data[..data.len()].copy_from_slice(data);
    let mut key = AnswerKey::zeroed();
    let wire = qname.lower_wire();
    if wire.len() > NAME_BUF {
        return None;
    }
    key.name[..wire.len()].copy_from_slice(&wire);
    key.qtype = qtype;
    key.flags = if dnssec_ok { KEY_FLAG_DO } else { 0 };
    key.generation = generation;
    Some((key, value))
}

/// Statistics of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub entries: usize,
    /// Answers that could not be precompiled (too big or truncated); userspace serves them.
    pub skipped: usize,
}

/// Compiles the exact answers of a zone: every authoritative name, for every RRset type it
/// holds (and A/AAAA always), with DO=0 and DO=1.
pub fn compile_zone(engine: &Engine, zone: &Zone, generation: u16, out: &mut Vec<Entry>) -> Stats {
    let mut stats = Stats::default();
    for (name, node) in zone.nodes() {
        if !matches!(zone.position(name), Position::Authoritative) {
            continue;
        }
        let mut types: Vec<u16> = node
            .rrsets
            .iter()
            .map(|s| s.rtype)
            .filter(|t| !matches!(*t, rtype::RRSIG | rtype::CNAME))
            .collect();
        if node.get(rtype::CNAME).is_some() {
            continue;
        }
        types.sort_unstable();
        types.dedup();
        for t in types {
            for dnssec_ok in [false, true] {
                match entry(engine, name, t, dnssec_ok, generation) {
                    Some(e) if e.1.kind == AnswerKind::Exact as u16 => {
                        out.push(e);
                        stats.entries += 1;
                    }
                    _ => stats.skipped += 1,
                }
            }
        }
    }
    stats
}
