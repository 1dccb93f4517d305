//! Parsing a query message (RFC 1035 §4.1): header, the one question kept byte for byte as sent,
//! and the EDNS OPT record (RFC 6891). Decides what gets FORMERR, NOTIMP or no answer at all.

use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype};

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_CD: u16 = 0x0010;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_FORMERR: u16 = 1;
pub const RCODE_SERVFAIL: u16 = 2;
pub const RCODE_NXDOMAIN: u16 = 3;
pub const RCODE_NOTIMP: u16 = 4;
pub const RCODE_REFUSED: u16 = 5;
pub const RCODE_YXDOMAIN: u16 = 6;
/// Extended RCODE 16 (RFC 6891 §6.1.3): upper 8 bits go in the OPT TTL.
pub const RCODE_BADVERS: u16 = 16;

/// EDNS option code of NSID (RFC 5001).
pub const OPTION_NSID: u16 = dns_common::OPTION_NSID;
/// EDNS option code of COOKIE (RFC 7873).
pub const OPTION_COOKIE: u16 = dns_common::OPTION_COOKIE;

/// The EDNS parameters of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// The client asked for NSID.
    pub nsid: bool,
    /// Option codes present (content ignored: unknown options are ignored, RFC 6891 §6.1.2).
    pub options: Vec<u16>,
    /// The data of the first COOKIE option (RFC 7873), when there is one.
    pub cookie: Option<Vec<u8>>,
}

/// A parsed query.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    /// The question section exactly as sent (QNAME, QTYPE, QCLASS).
    pub question: &'a [u8],
    pub qname: Name,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

/// What to do with a message.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// Not answered at all: responses, or too short to have an ID.
    Drop,
    /// Answer with this RCODE; the question is echoed when it could be read.
    Error {
        id: u16,
        flags: u16,
        rcode: u16,
        question: Option<&'a [u8]>,
        edns: Option<Edns>,
    },
    Query(Query<'a>),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Skips a possibly compressed name; returns the offset after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += len as usize + 1,
            0xc0..=0xff => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
    None
}

/// Skips one resource record; returns (owner offset, type, class, ttl, rdata range, next).
fn skip_rr(msg: &[u8], pos: usize) -> Option<(usize, u16, u16, u32, usize, usize)> {
    let after_name = skip_name(msg, pos)?;
    let t = be16(msg, after_name)?;
    let class = be16(msg, after_name + 2)?;
    let ttl = u32::from_be_bytes(msg.get(after_name + 4..after_name + 8)?.try_into().ok()?);
    let rdlen = be16(msg, after_name + 8)? as usize;
    let rdata = after_name + 10;
    let end = rdata + rdlen;
    if end > msg.len() {
        return None;
    }
    Some((pos, t, class, ttl, rdata, end))
}

/// Whether `msg` ends with a TSIG record (RFC 8945 §4.1: TSIG is the last record of the
/// additional section), found by walking the records; false for anything that cannot be walked.
/// Cheap: a query without additional records is never walked.
pub fn is_signed(msg: &[u8]) -> bool {
    last_record(msg).is_some_and(|(t, _)| t == rtype::TSIG)
}

/// The type of the last record of a message with one question and additional records, and
/// the offset of its RDLENGTH; `None` when there is none or the message cannot be walked to
/// its end.
pub fn last_record(msg: &[u8]) -> Option<(u16, usize)> {
    let count = |at| be16(msg, at).unwrap_or(0) as usize;
    if count(10) == 0 || count(4) != 1 {
        return None;
    }
    let mut pos = skip_name(msg, 12)? + 4;
    let mut last = None;
    for _ in 0..count(6) + count(8) + count(10) {
        let (_, t, _, _, rdata, end) = skip_rr(msg, pos)?;
        last = Some((t, rdata - 2));
        pos = end;
    }
    last.filter(|_| pos == msg.len())
}

/// The QTYPE of a message's one question, read without parsing the rest.
pub fn qtype(msg: &[u8]) -> Option<u16> {
    if be16(msg, 4)? != 1 {
        return None;
    }
    be16(msg, skip_name(msg, 12)?)
}

/// Parses the EDNS OPT record's fields.
fn parse_opt(msg: &[u8], class: u16, ttl: u32, rdata: usize, end: usize) -> Option<Edns> {
    let mut options = Vec::new();
    let mut nsid = false;
    let mut cookie = None;
    let mut p = rdata;
    while p < end {
        let code = be16(msg, p)?;
        let len = be16(msg, p + 2)? as usize;
        if p + 4 + len > end {
            return None;
        }
        if code == OPTION_NSID {
            nsid = true;
        }
        if code == OPTION_COOKIE && cookie.is_none() {
            cookie = Some(msg[p + 4..p + 4 + len].to_vec());
        }
        options.push(code);
        p += 4 + len;
    }
    Some(Edns {
        payload: class,
        version: (ttl >> 16) as u8,
        dnssec_ok: ttl & 0x8000 != 0,
        nsid,
        options,
        cookie,
    })
}

/// Parses a query message.
pub fn parse(msg: &[u8]) -> Parsed<'_> {
    let (Some(id), Some(flags)) = (be16(msg, 0), be16(msg, 2)) else {
        return Parsed::Drop;
    };
    if flags & FLAG_QR != 0 {
        return Parsed::Drop;
    }
    let formerr = |question, edns| Parsed::Error {
        id,
        flags,
        rcode: RCODE_FORMERR,
        question,
        edns,
    };
    if msg.len() < 12 {
        return formerr(None, None);
    }
    let qd = be16(msg, 4).unwrap_or(0);
    let an = be16(msg, 6).unwrap_or(0);
    let ns = be16(msg, 8).unwrap_or(0);
    let ar = be16(msg, 10).unwrap_or(0);

    // The question, when there is exactly one and it is well formed.
    let mut question = None;
    let mut qname = None;
    let mut pos = 12;
    if qd == 1 {
        if let Some((name, len)) = read_name(&msg[12..]) {
            if msg.len() >= 12 + len + 4 {
                question = Some(&msg[12..12 + len + 4]);
                qname = Some(name);
                pos = 12 + len + 4;
            }
        }
    }
    // EDNS from the additional section, when the rest of the message can be walked.
    let mut edns = None;
    let mut opt_count = 0;
    let mut walk_ok = question.is_some();
    if walk_ok {
        for i in 0..(an as usize + ns as usize + ar as usize) {
            match skip_rr(msg, pos) {
                Some((owner, t, class, ttl, rdata, end)) => {
                    if i >= an as usize + ns as usize && t == rtype::OPT {
                        opt_count += 1;
                        if msg[owner] != 0 {
                            walk_ok = false;
                            break;
                        }
                        match parse_opt(msg, class, ttl, rdata, end) {
                            Some(e) => edns = Some(e),
                            None => {
                                walk_ok = false;
                                break;
                            }
                        }
                    }
                    pos = end;
                }
                None => {
                    walk_ok = false;
                    break;
                }
            }
        }
    }
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        return Parsed::Error {
            id,
            flags,
            rcode: RCODE_NOTIMP,
            question,
            edns: if opt_count == 1 { edns } else { None },
        };
    }
    if qd != 1 || question.is_none() {
        return formerr(None, None);
    }
    if !walk_ok || opt_count > 1 || pos != msg.len() || an != 0 || ns != 0 {
        return formerr(question, if opt_count == 1 { edns } else { None });
    }
    let question = question.expect("checked");
    let qtype = be16(question, question.len() - 4).expect("question length");
    let qclass = be16(question, question.len() - 2).expect("question length");
    Parsed::Query(Query {
        id,
        flags,
        question,
        qname: qname.expect("checked"),
        qtype,
        qclass,
        edns,
    })
}
