//! Engine answers made into template values (`dns_common::Answer`): the synthetic query for a
//! name, type, class and DO bit; the engine's answer to it in structured form (header flags,
//! counts, the body after the question and its compression pointers, from
//! `engine::message::Message`, never re-parsed); the checks that the XDP program, which writes
//! the header, question and OPT record itself, completes it into exactly the engine's answer;
//! and the pointer rebase of suffix templates.

use dns_common::{opt_record, Answer, AnswerKind, ANSWER_MAX, MAX_PTRS};

use crate::engine::{Engine, Kind, Transport};
use crate::wire::name::Name;

/// A query message for `qname`/`qtype`/`qclass`, ID 0, RD=0, with EDNS: the DO bit as given
/// and the largest payload, so that the size limit is the server's payload, the largest the
/// XDP program allows.
pub fn synthetic_query(qname: &Name, qtype: u16, qclass: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&qname.lower_wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    let do_bit = if dnssec_ok { 0x80 } else { 0 };
    m.extend_from_slice(&[0, 0, 41, 0xff, 0xff, 0, 0, do_bit, 0, 0, 0]);
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

/// The engine's answer, as a template takes it.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub flags: u16,
    /// ANCOUNT, NSCOUNT, ARCOUNT without the OPT record.
    pub counts: [u16; 3],
    /// Everything after the question, the OPT record excluded.
    pub data: Vec<u8>,
    /// Offsets in `data` of its compression pointers.
    pub ptrs: Vec<usize>,
    /// `None` for error responses (REFUSED, FORMERR, ...).
    pub kind: Option<Kind>,
}

/// The engine's answer to the synthetic query, when it can be a template: complete (no RRset
/// left out for the size limit, which a client with a larger one would get), ending with
/// exactly the OPT record the XDP program writes (`opt_record`), and with a body of at most
/// `ANSWER_MAX` octets.
pub fn render(
    engine: &Engine,
    qname: &Name,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
) -> Option<Rendered> {
    render_within(engine, qname, qtype, qclass, dnssec_ok, ANSWER_MAX)
}

/// `render`, with a body of at most `max` octets (NSEC3 denials are assembled from parts).
pub fn render_within(
    engine: &Engine,
    qname: &Name,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    max: usize,
) -> Option<Rendered> {
    let query = synthetic_query(qname, qtype, qclass, dnssec_ok);
    let resp = engine.respond(&query, Transport::Udp)?;
    let m = &resp.message;
    let opt = opt_record(engine.config.server_payload, dnssec_ok);
    if !m.complete() || m.opt() != Some(&opt[..]) || m.body().len() > max {
        return None;
    }
    Some(Rendered {
        flags: m.flags(),
        counts: m.counts(),
        data: m.body().to_vec(),
        ptrs: m.pointers().collect(),
        kind: resp.kind,
    })
}

pub fn answer_kind(k: Kind) -> AnswerKind {
    match k {
        Kind::Exact => AnswerKind::Exact,
        Kind::Referral => AnswerKind::Referral,
        Kind::Negative => AnswerKind::Negative,
        Kind::Chaos => AnswerKind::Chaos,
    }
}

impl Rendered {
    /// Makes the answer to a probe name `extra` octets longer than the anchor the answer of
    /// the anchor itself: every compression pointer moves back by `extra`, and the XDP program
    /// moves them forward by what the query name adds. False when that cannot be done: a
    /// pointer into the probe's own labels above the anchor, or more pointers than the program
    /// shifts (`MAX_PTRS`).
    pub fn rebase(&mut self, extra: usize) -> bool {
        if self.ptrs.len() > MAX_PTRS {
            return false;
        }
        for &p in &self.ptrs {
            let target = (u16::from_be_bytes([self.data[p], self.data[p + 1]]) & 0x3fff) as usize;
            let Some(moved) = target.checked_sub(extra).filter(|t| *t >= 12) else {
                return false;
            };
            let v = 0xc000 | moved as u16;
            self.data[p..p + 2].copy_from_slice(&v.to_be_bytes());
        }
        true
    }

    /// The template of an exact, NODATA or CHAOS entry.
    pub fn exact(&self) -> Answer {
        let kind = self.kind.map_or(AnswerKind::Exact, answer_kind);
        template(self, kind, 0, &[])
    }

    /// The template of a suffix entry for names at or below an anchor of `anchor_len` octets
    /// (after `rebase`), with the pointers the program shifts.
    pub fn suffix(&self, kind: AnswerKind, anchor_len: usize) -> Answer {
        template(self, kind, anchor_len, &self.ptrs)
    }
}

fn template(r: &Rendered, kind: AnswerKind, anchor_len: usize, ptrs: &[usize]) -> Answer {
    let mut v = Answer {
        header_flags: r.flags,
        ancount: r.counts[0],
        nscount: r.counts[1],
        arcount: r.counts[2],
        len: r.data.len() as u16,
        csum: memory_order_sum(&r.data),
        kind: kind as u16,
        anchor_len: anchor_len as u16,
        nptrs: ptrs.len() as u16,
        ptrs: [0; MAX_PTRS],
        ptr_weight: 0,
        id: 0,
        data: [0; ANSWER_MAX],
        used: 0,
        _pad: [0; 3],
        _tail: [0; 16],
    };
    for (slot, p) in v.ptrs.iter_mut().zip(ptrs) {
        *slot = *p as u16;
    }
    v.ptr_weight = dns_common::ptr_weight(&v.ptrs[..ptrs.len().min(MAX_PTRS)]);
    v.data[..r.data.len()].copy_from_slice(&r.data);
    v
}

/// A pass marker: names at and below its anchor go to userspace.
pub fn pass_marker(anchor_len: usize) -> Answer {
    let empty = Rendered {
        flags: 0,
        counts: [0; 3],
        data: Vec::new(),
        ptrs: Vec::new(),
        kind: None,
    };
    template(&empty, AnswerKind::Pass, anchor_len, &[])
}
