//! DNS messages as a secondary sees them (RFC 1035 §4.1): a full parser for responses —
//! compressed names (pointers only backwards, bounded), every section, RDATA names decompressed
//! for the types that may carry compressed names (RFC 3597 §4), the OPT record (RFC 6891) and
//! the TSIG record (RFC 8945, which must come last) kept apart — and a builder for the requests
//! and responses this module sends (names written uncompressed).

use thiserror::Error;

use crate::wire::name::{Name, NAME_MAX};
use crate::wire::record::{class, rtype, Record};

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;

/// Opcodes (RFC 1035 §4.1.1, RFC 1996).
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
}

/// RCODEs (RFC 1035, RFC 2136, RFC 6891, RFC 8945), extended ones included.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const NOTAUTH: u16 = 9;
    pub const NOTZONE: u16 = 10;
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    pub const BADTIME: u16 = 18;
    pub const BADTRUNC: u16 = 22;

    /// Mnemonic for messages, `RCODEn` for the others.
    pub fn to_string(r: u16) -> String {
        let s = match r {
            NOERROR => "NOERROR",
            FORMERR => "FORMERR",
            SERVFAIL => "SERVFAIL",
            NXDOMAIN => "NXDOMAIN",
            NOTIMP => "NOTIMP",
            REFUSED => "REFUSED",
            NOTAUTH => "NOTAUTH",
            NOTZONE => "NOTZONE",
            BADSIG => "BADSIG",
            BADKEY => "BADKEY",
            BADTIME => "BADTIME",
            BADTRUNC => "BADTRUNC",
            _ => return format!("RCODE{r}"),
        };
        s.to_owned()
    }
}

/// EDNS option code of EXPIRE (RFC 7314).
pub const OPTION_EXPIRE: u16 = 9;

/// Why a message cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed DNS message: {0}")]
pub struct MessageError(pub String);

fn bad<T>(what: impl Into<String>) -> Result<T, MessageError> {
    Err(MessageError(what.into()))
}

/// One question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// The OPT pseudo-record (RFC 6891 §6.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opt {
    pub payload: u16,
    /// Upper 8 bits of the extended RCODE.
    pub ext_rcode: u8,
    pub version: u8,
    pub flags: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Opt {
    /// The EDNS EXPIRE value (RFC 7314 §2), when the option is present with 4 octets.
    pub fn expire(&self) -> Option<u32> {
        self.options
            .iter()
            .find(|(code, data)| *code == OPTION_EXPIRE && data.len() == 4)
            .map(|(_, d)| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }
}

/// A parsed message. `additional` holds neither the OPT nor the TSIG record.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub wire: &'a [u8],
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    pub opt: Option<Opt>,
    /// The TSIG record and the offset where it starts in `wire`.
    pub tsig: Option<(Record, usize)>,
}

impl Message<'_> {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    /// The full RCODE: header bits and, with EDNS, the OPT record's upper bits.
    pub fn rcode(&self) -> u16 {
        let ext = self.opt.as_ref().map_or(0, |o| u16::from(o.ext_rcode));
        (ext << 4) | (self.flags & 0xf)
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, MessageError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => bad(format!("truncated at offset {at}")),
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, MessageError> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => bad(format!("truncated at offset {at}")),
    }
}

/// Reads a possibly compressed name at `pos`; returns it and the offset after it. Pointers
/// must point before the label that holds them, so every name read ends.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(Name, usize), MessageError> {
    let mut wire = Vec::with_capacity(64);
    let mut end = None;
    // Every pointer goes strictly backwards, so the loop ends; the bound is belt and braces.
    let mut limit = pos;
    for _ in 0..=NAME_MAX {
        let len = *msg
            .get(pos)
            .ok_or_else(|| MessageError(format!("name runs past the end at offset {pos}")))?;
        match len {
            0 => {
                wire.push(0);
                let next = end.unwrap_or(pos + 1);
                let name = Name::from_wire(&wire)
                    .map_err(|e| MessageError(format!("name at offset {pos}: {e}")))?;
                return Ok((name, next));
            }
            1..=63 => {
                let label = msg
                    .get(pos..pos + 1 + len as usize)
                    .ok_or_else(|| MessageError(format!("label runs past the end at {pos}")))?;
                wire.extend_from_slice(label);
                if wire.len() >= NAME_MAX {
                    return bad(format!("name longer than 255 octets at offset {pos}"));
                }
                pos += 1 + len as usize;
            }
            0xc0..=0xff => {
                let target = (be16(msg, pos)? & 0x3fff) as usize;
                if target >= limit {
                    return bad(format!("compression pointer at {pos} does not point back"));
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return bad(format!("unknown label type {len:#x} at offset {pos}")),
        }
    }
    bad("name too long")
}

/// The fields of an RDATA that may hold compressed names (RFC 1035 types, and those RFC 3597
/// §4 asks receivers to decompress).
enum Field {
    Fixed(usize),
    Name,
    CharString,
}

fn layout(t: u16) -> Option<&'static [Field]> {
    use Field::*;
    Some(match t {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR.
        2..=5 | 7..=9 | 12 => &[Name],
        rtype::SOA => &[Name, Name],
        // MINFO, RP.
        14 | 17 => &[Name, Name],
        // MX, AFSDB, RT.
        15 | 18 | 21 => &[Fixed(2), Name],
        // PX.
        26 => &[Fixed(2), Name, Name],
        rtype::SRV => &[Fixed(6), Name],
        rtype::NAPTR => &[Fixed(4), CharString, CharString, CharString, Name],
        _ => return None,
    })
}

/// RDATA at `msg[start..end]` in uncompressed form.
fn rdata(msg: &[u8], t: u16, start: usize, end: usize) -> Result<Vec<u8>, MessageError> {
    let Some(fields) = layout(t) else {
        return Ok(msg[start..end].to_vec());
    };
    let mut out = Vec::with_capacity(end - start + 16);
    let mut pos = start;
    let short = || MessageError(format!("{} RDATA too short", rtype::to_string(t)));
    for f in fields {
        match f {
            Field::Fixed(n) => {
                out.extend_from_slice(
                    msg.get(pos..pos + n)
                        .filter(|_| pos + n <= end)
                        .ok_or_else(short)?,
                );
                pos += n;
            }
            Field::CharString => {
                let n = *msg.get(pos).filter(|_| pos < end).ok_or_else(short)? as usize;
                out.extend_from_slice(
                    msg.get(pos..pos + 1 + n)
                        .filter(|_| pos + 1 + n <= end)
                        .ok_or_else(short)?,
                );
                pos += 1 + n;
            }
            Field::Name => {
                let (name, next) = read_name(&msg[..end], pos)?;
                out.extend_from_slice(name.wire());
                pos = next;
            }
        }
    }
    // SOA's five counters, or trailing octets of a type that has none (kept as they are, for
    // the zone checks to judge).
    out.extend_from_slice(&msg[pos..end]);
    if t == rtype::SOA && end - pos != 20 {
        return bad(format!(
            "SOA RDATA has {} octets after the names, not 20",
            end - pos
        ));
    }
    Ok(out)
}

/// Reads one resource record at `pos`; returns it and the offset after it.
fn read_record(msg: &[u8], pos: usize) -> Result<(Record, usize), MessageError> {
    let (owner, p) = read_name(msg, pos)?;
    let rtype = be16(msg, p)?;
    let class = be16(msg, p + 2)?;
    let ttl = be32(msg, p + 4)?;
    let rdlen = be16(msg, p + 8)? as usize;
    let start = p + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return bad(format!(
            "{owner} {} RDATA runs past the end of the message",
            rtype::to_string(rtype)
        ));
    }
    let rdata = rdata(msg, rtype, start, end)?;
    Ok((
        Record {
            owner,
            rtype,
            class,
            ttl,
            rdata,
        },
        end,
    ))
}

fn parse_opt(r: &Record) -> Result<Opt, MessageError> {
    if !r.owner.is_root() {
        return bad("OPT record not owned by the root");
    }
    let mut options = Vec::new();
    let mut p = 0;
    while p < r.rdata.len() {
        let code = be16(&r.rdata, p)?;
        let len = be16(&r.rdata, p + 2)? as usize;
        let data = r
            .rdata
            .get(p + 4..p + 4 + len)
            .ok_or_else(|| MessageError("EDNS option runs past the OPT RDATA".into()))?;
        options.push((code, data.to_vec()));
        p += 4 + len;
    }
    Ok(Opt {
        payload: r.class,
        ext_rcode: (r.ttl >> 24) as u8,
        version: (r.ttl >> 16) as u8,
        flags: r.ttl as u16,
        options,
    })
}

/// Parses a whole message; anything after the last record is an error.
pub fn parse(wire: &[u8]) -> Result<Message<'_>, MessageError> {
    if wire.len() < 12 {
        return bad(format!("{} octets, shorter than a header", wire.len()));
    }
    let count = |i: usize| be16(wire, 4 + 2 * i).map(usize::from);
    let (qd, an, ns, ar) = (count(0)?, count(1)?, count(2)?, count(3)?);
    let mut pos = 12;
    let mut questions = Vec::with_capacity(qd.min(4));
    for _ in 0..qd {
        let (name, p) = read_name(wire, pos)?;
        questions.push(Question {
            name,
            qtype: be16(wire, p)?,
            qclass: be16(wire, p + 2)?,
        });
        pos = p + 4;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    let mut opt = None;
    let mut tsig = None;
    for (s, n) in [an, ns, ar].into_iter().enumerate() {
        for i in 0..n {
            let at = pos;
            let (r, next) = read_record(wire, pos)?;
            pos = next;
            if tsig.is_some() {
                return bad("TSIG record is not the last record");
            }
            match r.rtype {
                rtype::OPT if s == 2 => {
                    if opt.is_some() {
                        return bad("more than one OPT record");
                    }
                    opt = Some(parse_opt(&r)?);
                }
                rtype::TSIG if s == 2 && i == n - 1 => tsig = Some((r, at)),
                rtype::TSIG => return bad("TSIG record is not the last record"),
                _ => sections[s].push(r),
            }
        }
    }
    if pos != wire.len() {
        return bad(format!("{} octets after the last record", wire.len() - pos));
    }
    let [answers, authority, additional] = sections;
    Ok(Message {
        wire,
        id: be16(wire, 0)?,
        flags: be16(wire, 2)?,
        questions,
        answers,
        authority,
        additional,
        opt,
        tsig,
    })
}

/// Builds a message section by section, names uncompressed; counts are kept in the header.
pub struct Builder {
    buf: Vec<u8>,
    section: usize,
}

impl Builder {
    /// A message with this ID, opcode and flags (the opcode bits of `flags` are replaced).
    pub fn new(id: u16, opcode: u8, flags: u16) -> Builder {
        let flags = (flags & !0x7800) | (u16::from(opcode) << 11);
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        Builder { buf, section: 0 }
    }

    fn bump(&mut self, section: usize) {
        assert!(section >= self.section, "sections are written in order");
        self.section = section;
        let at = 4 + 2 * section;
        let n = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]) + 1;
        self.buf[at..at + 2].copy_from_slice(&n.to_be_bytes());
    }

    pub fn question(mut self, name: &Name, qtype: u16, qclass: u16) -> Builder {
        self.bump(0);
        self.buf.extend_from_slice(name.wire());
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&qclass.to_be_bytes());
        self
    }

    /// Appends a record to section 1 (answer), 2 (authority) or 3 (additional).
    pub fn record(mut self, section: usize, r: &Record) -> Builder {
        self.bump(section);
        self.buf.extend_from_slice(r.owner.wire());
        self.buf.extend_from_slice(&r.rtype.to_be_bytes());
        self.buf.extend_from_slice(&r.class.to_be_bytes());
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(&r.rdata);
        self
    }

    /// Appends an OPT record (payload 1232, no flags) with these options.
    pub fn opt(self, options: &[(u16, &[u8])]) -> Builder {
        let mut rdata = Vec::new();
        for (code, data) in options {
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        self.record(
            3,
            &Record {
                owner: Name::root(),
                rtype: rtype::OPT,
                class: 1232,
                ttl: 0,
                rdata,
            },
        )
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A query for `name`/`qtype` in class IN with an OPT record asking for EDNS EXPIRE.
pub fn query(id: u16, name: &Name, qtype: u16, authority: Option<&Record>) -> Vec<u8> {
    let mut b = Builder::new(id, opcode::QUERY, 0).question(name, qtype, class::IN);
    if let Some(r) = authority {
        b = b.record(2, r);
    }
    b.opt(&[(OPTION_EXPIRE, &[])]).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn decompresses_owners_and_rdata_names() {
        // Header, question example./SOA, then one SOA answer whose owner and both RDATA names
        // point into the question.
        let mut m = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60]);
        let mut rd = vec![2, b'n', b's', 0xc0, 12, 0xc0, 12];
        rd.extend_from_slice(&[0; 20]);
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(&rd);
        let msg = parse(&m).unwrap();
        assert_eq!(msg.questions[0].name, n("example."));
        let soa = &msg.answers[0];
        assert_eq!(soa.owner, n("example."));
        let mut want = n("ns.example.").wire().to_vec();
        want.extend_from_slice(n("example.").wire());
        want.extend_from_slice(&[0; 20]);
        assert_eq!(soa.rdata, want);
    }

    #[test]
    fn rejects_forward_and_looping_pointers_and_trailing_bytes() {
        let mut m = vec![0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
        assert!(parse(&m).unwrap_err().0.contains("does not point back"));
        let mut m = vec![0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 14, 0, 6, 0, 1]);
        assert!(parse(&m).is_err());
        let mut ok = query(1, &n("example."), rtype::SOA, None);
        assert!(parse(&ok).is_ok());
        ok.push(0);
        assert!(parse(&ok).unwrap_err().0.contains("after the last record"));
        assert!(parse(&ok[..20]).is_err());
    }

    #[test]
    fn builder_round_trips_with_opt_and_expire() {
        let q = query(7, &n("example."), rtype::AXFR, None);
        let m = parse(&q).unwrap();
        assert_eq!((m.id, m.opcode(), m.is_response()), (7, 0, false));
        assert_eq!(m.questions[0].qtype, rtype::AXFR);
        let opt = m.opt.unwrap();
        assert_eq!(opt.options, vec![(OPTION_EXPIRE, vec![])]);
        assert_eq!(opt.expire(), None);
        let o = Opt {
            options: vec![(OPTION_EXPIRE, vec![0, 0, 1, 0])],
            ..Opt::default()
        };
        assert_eq!(o.expire(), Some(256));
    }

    #[test]
    fn mutated_messages_never_panic() {
        let mut m = Builder::new(1, opcode::QUERY, FLAG_QR)
            .question(&n("example."), rtype::AXFR, class::IN)
            .finish();
        // Answers with compressed owners and RDATA names of several layouts.
        let mut add = |t: u16, rd: &[u8]| {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
            let an = u16::from_be_bytes([m[6], m[7]]) + 1;
            m[6..8].copy_from_slice(&an.to_be_bytes());
        };
        let mut soa = vec![2, b'n', b's', 0xc0, 12, 0xc0, 12];
        soa.extend_from_slice(&[0; 20]);
        add(rtype::SOA, &soa);
        add(rtype::MX, &[0, 10, 1, b'm', 0xc0, 12]);
        add(rtype::NAPTR, &[0, 1, 0, 2, 1, b'u', 0, 0, 0xc0, 12]);
        add(rtype::SRV, &[0, 1, 0, 2, 0, 3, 0xc0, 12]);
        add(rtype::TXT, &[3, b'a', b'b', b'c']);
        assert_eq!(parse(&m).unwrap().answers.len(), 5);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut v = m.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % v.len();
                v[i] = next() as u8;
            }
            v.truncate(v.len() - (next() % 3) as usize);
            let _ = parse(&v);
        }
    }
}
