//! Comparing two responses to the same query, Knot's and ours, the way the differential test
//! (`tests/tests/differential_knot.rs`) needs it.
//!
//! Responses are parsed here, not with hickory-proto, so that RDATA stays exactly as sent (no
//! re-encoding of CAA, SVCB or unknown types). What is compared:
//!
//! - the header: RCODE (with the extended bits from OPT), opcode and every flag bit (QR, AA, TC,
//!   RD, RA, Z, AD, CD);
//! - the question section, byte for byte (both servers must echo it as sent, case included);
//! - OPT separately: present or not, payload, extended RCODE, version, DO, the other flag bits
//!   and the options;
//! - each section as a *set* of RRsets keyed by (owner lower-cased, type, class, and for RRSIG
//!   the type covered), each RRset with its TTLs and its set of RDATAs. Order and name
//!   compression do not matter: names in RDATA are decompressed, and in the RDATA of the types
//!   that RFC 3597 §4 allows to be compressed they are also lower-cased (a compression pointer
//!   may legitimately point at the question name with its 0x20 case).
//!
//! When either response has TC=1 over UDP only the header, question and OPT are compared: what
//! a truncated response carries is left to each server (RFC 2181 §9), and the comparison says
//! so (`Comparison::truncated`).
//!
//! Oddities of the encoding that the set comparison would hide (duplicate RRs, compression
//! pointers inside RDATA of types that must not be compressed, trailing bytes) are reported as
//! `Diff::Wire`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::{bail, Result};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::rtype;
use xdpdns::zonefile::present::rdata_to_text;

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
pub const FLAG_Z: u16 = 0x0040;
pub const FLAG_AD: u16 = 0x0020;
pub const FLAG_CD: u16 = 0x0010;

/// Header bits compared one by one, with their names.
pub const FLAGS: &[(u16, &str)] = &[
    (FLAG_QR, "QR"),
    (FLAG_AA, "AA"),
    (FLAG_TC, "TC"),
    (FLAG_RD, "RD"),
    (FLAG_RA, "RA"),
    (FLAG_Z, "Z"),
    (FLAG_AD, "AD"),
    (FLAG_CD, "CD"),
];

/// RCODE mnemonics (RFC 6895 §2.3).
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

/// The three record sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

    pub fn name(self) -> &'static str {
        match self {
            Section::Answer => "answer",
            Section::Authority => "authority",
            Section::Additional => "additional",
        }
    }
}

/// Which server a note is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Knot,
    Ours,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Knot => "Knot",
            Side::Ours => "ours",
        })
    }
}

/// One resource record with uncompressed RDATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Owner name in presentation form, lower-cased.
    pub owner: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// RDATA, names decompressed (and lower-cased for the RFC 3597 §4 well-known types).
    pub rdata: Vec<u8>,
}

impl Rr {
    /// Type covered, for an RRSIG.
    pub fn covered(&self) -> Option<u16> {
        (self.rtype == rtype::RRSIG && self.rdata.len() >= 2)
            .then(|| u16::from_be_bytes([self.rdata[0], self.rdata[1]]))
    }

    pub fn key(&self) -> Key {
        Key {
            owner: self.owner.clone(),
            rtype: self.rtype,
            covered: self.covered(),
            class: self.class,
        }
    }
}

/// The OPT pseudo-record (RFC 6891 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub payload: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    /// The flag bits other than DO.
    pub z: u16,
    pub options: Vec<(u16, Vec<u8>)>,
    /// The owner is the root, as required.
    pub root_owner: bool,
}

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    pub id: u16,
    /// The 16 flag bits, RCODE included.
    pub flags: u16,
    /// Full RCODE: the header's 4 bits and the OPT's upper 8.
    pub rcode: u16,
    pub qdcount: u16,
    /// The question section as sent.
    pub question: Vec<u8>,
    pub sections: [Vec<Rr>; 3],
    pub opt: Option<Opt>,
    /// Encoding oddities found while parsing.
    pub notes: Vec<String>,
    pub size: usize,
}

impl Response {
    pub fn flag(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    pub fn section(&self, s: Section) -> &[Rr] {
        &self.sections[s as usize]
    }

    /// A dig-like rendering, for reports.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let flags: Vec<&str> = FLAGS
            .iter()
            .filter(|(b, _)| self.flags & b != 0)
            .map(|(_, n)| *n)
            .collect();
        out.push_str(&format!(
            ";; {} flags: {} ({} bytes)",
            rcode_name(self.rcode),
            flags.join(" ").to_lowercase(),
            self.size
        ));
        match &self.opt {
            Some(o) => out.push_str(&format!(
                "; EDNS: payload {}{}{}\n",
                o.payload,
                if o.dnssec_ok { " do" } else { "" },
                if o.options.is_empty() {
                    String::new()
                } else {
                    format!(
                        " options {:?}",
                        o.options.iter().map(|o| o.0).collect::<Vec<_>>()
                    )
                }
            )),
            None => out.push_str("; no EDNS\n"),
        }
        for s in Section::ALL {
            for rr in self.section(s) {
                out.push_str(&format!(";{:<10} {}\n", s.name(), rr_text(rr)));
            }
        }
        out
    }
}

/// `owner TTL CLASS TYPE rdata`.
pub fn rr_text(rr: &Rr) -> String {
    format!(
        "{} {} {} {} {}",
        rr.owner,
        rr.ttl,
        class_name(rr.class),
        rtype::to_string(rr.rtype),
        rdata_to_text(rr.rtype, &rr.rdata)
    )
}

fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        n => format!("CLASS{n}"),
    }
}

/// Types whose RDATA names may be compressed (RFC 3597 §4: the RFC 1035 types).
const WELL_KNOWN_COMPRESSED: &[u16] = &[2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15];

/// Where the names sit in the RDATA of a type: (fixed octets before the first name, number of
/// consecutive names). `None`: no names to decompress (a name after variable-length fields,
/// as in NAPTR, is never compressed by either server and is compared as sent).
fn name_layout(t: u16) -> Option<(usize, usize)> {
    match t {
        2..=5 | 7..=9 | 12 | 39 => Some((0, 1)), // NS MD MF CNAME MB MG MR PTR DNAME
        6 | 14 | 17 => Some((0, 2)),             // SOA MINFO RP
        15 | 18 | 21 | 36 => Some((2, 1)),       // MX AFSDB RT KX
        26 => Some((2, 2)),                      // PX
        33 => Some((6, 1)),                      // SRV
        _ => None,
    }
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some(s) = self.msg.get(self.pos..self.pos + n) else {
            bail!("message ends at {} (needed {n} more octets)", self.pos);
        };
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A possibly compressed name at the cursor: its uncompressed wire form, and whether a
    /// pointer was followed.
    fn name(&mut self) -> Result<(Vec<u8>, bool)> {
        let (wire, next, compressed) = read_name_at(self.msg, self.pos)?;
        self.pos = next;
        Ok((wire, compressed))
    }
}

/// Reads a name at `pos` of `msg`, following compression pointers (bounded).
fn read_name_at(msg: &[u8], mut pos: usize) -> Result<(Vec<u8>, usize, bool)> {
    let mut wire = Vec::new();
    let mut next = None;
    let mut hops = 0;
    loop {
        let Some(&len) = msg.get(pos) else {
            bail!("name runs past the end of the message");
        };
        match len {
            0 => {
                wire.push(0);
                pos += 1;
                break;
            }
            1..=63 => {
                let Some(label) = msg.get(pos..pos + 1 + len as usize) else {
                    bail!("label runs past the end of the message");
                };
                wire.extend_from_slice(label);
                pos += 1 + len as usize;
            }
            0xc0..=0xff => {
                let Some(&lo) = msg.get(pos + 1) else {
                    bail!("truncated compression pointer");
                };
                if next.is_none() {
                    next = Some(pos + 2);
                }
                hops += 1;
                if hops > 64 {
                    bail!("compression pointer loop");
                }
                pos = (((len & 0x3f) as usize) << 8) | lo as usize;
            }
            _ => bail!("unknown label type {len:#x}"),
        }
        if wire.len() > 255 {
            bail!("name longer than 255 octets");
        }
    }
    let compressed = next.is_some();
    Ok((wire, next.unwrap_or(pos), compressed))
}

fn name_text(wire: &[u8]) -> String {
    match Name::from_wire(wire) {
        Ok(n) => n.to_string(),
        Err(e) => format!("<bad name {e:?}>"),
    }
}

/// Parses a response message.
pub fn parse(msg: &[u8]) -> Result<Response> {
    let mut r = Reader { msg, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qdcount = r.u16()?;
    let counts = [r.u16()?, r.u16()?, r.u16()?];
    let qstart = r.pos;
    for _ in 0..qdcount {
        r.name()?;
        r.take(4)?;
    }
    let question = msg[qstart..r.pos].to_vec();
    let mut sections: [Vec<Rr>; 3] = Default::default();
    let mut opt = None;
    let mut notes = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            let (owner, _) = r.name()?;
            let t = r.u16()?;
            let class = r.u16()?;
            let ttl = r.u32()?;
            let rdlen = r.u16()? as usize;
            let rd_start = r.pos;
            let raw = r.take(rdlen)?;
            if t == rtype::OPT {
                if i != 2 {
                    notes.push(format!("OPT in the {} section", Section::ALL[i].name()));
                }
                if opt.is_some() {
                    notes.push("more than one OPT".into());
                }
                let mut options = Vec::new();
                let mut o = Reader { msg: raw, pos: 0 };
                while o.pos < raw.len() {
                    let code = o.u16()?;
                    let len = o.u16()? as usize;
                    options.push((code, o.take(len)?.to_vec()));
                }
                opt = Some(Opt {
                    payload: class,
                    ext_rcode: (ttl >> 24) as u8,
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & 0x8000 != 0,
                    z: (ttl & 0x7fff) as u16,
                    options,
                    root_owner: owner == [0],
                });
                continue;
            }
            let rdata = decompress_rdata(msg, rd_start, rdlen, t, &mut notes)?;
            let rr = Rr {
                owner: name_text(&owner.to_ascii_lowercase()),
                rtype: t,
                class,
                ttl,
                rdata,
            };
            if sections[i].contains(&rr) {
                notes.push(format!(
                    "duplicate RR in the {} section: {}",
                    Section::ALL[i].name(),
                    rr_text(&rr)
                ));
            }
            sections[i].push(rr);
        }
    }
    if r.pos != msg.len() {
        notes.push(format!("{} trailing octets", msg.len() - r.pos));
    }
    let rcode = (flags & 0xf) | opt.as_ref().map_or(0, |o| (o.ext_rcode as u16) << 4);
    Ok(Response {
        id,
        flags,
        rcode,
        qdcount,
        question,
        sections,
        opt,
        notes,
        size: msg.len(),
    })
}

/// RDATA with its names uncompressed; names in the RFC 3597 §4 well-known types lower-cased.
fn decompress_rdata(
    msg: &[u8],
    start: usize,
    len: usize,
    t: u16,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let raw = &msg[start..start + len];
    let Some((before, names)) = name_layout(t) else {
        return Ok(raw.to_vec());
    };
    let lower = WELL_KNOWN_COMPRESSED.contains(&t);
    let mut out = Vec::with_capacity(len);
    let Some(fixed) = raw.get(..before) else {
        bail!("{} RDATA too short", rtype::to_string(t));
    };
    out.extend_from_slice(fixed);
    let mut pos = start + before;
    for _ in 0..names {
        let (wire, next, compressed) = read_name_at(msg, pos)?;
        if next > start + len {
            bail!("name in {} RDATA runs past RDLENGTH", rtype::to_string(t));
        }
        if compressed && !lower {
            notes.push(format!(
                "compressed name in {} RDATA (RFC 3597 §4 forbids it)",
                rtype::to_string(t)
            ));
        }
        if lower {
            out.extend_from_slice(&wire.to_ascii_lowercase());
        } else {
            out.extend_from_slice(&wire);
        }
        pos = next;
    }
    // SOA: the five counters after the names.
    out.extend_from_slice(&msg[pos..start + len]);
    Ok(out)
}

/// An RRset's identity inside a section.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub owner: String,
    pub rtype: u16,
    /// For RRSIG: the type covered (signatures over different types are different sets).
    pub covered: Option<u16>,
    pub class: u16,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.owner)?;
        if self.class != 1 {
            write!(f, "{} ", class_name(self.class))?;
        }
        f.write_str(&rtype::to_string(self.rtype))?;
        if let Some(c) = self.covered {
            write!(f, "({})", rtype::to_string(c))?;
        }
        Ok(())
    }
}

/// An RRset as the comparison sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    pub ttls: BTreeSet<u32>,
    pub rdatas: BTreeSet<Vec<u8>>,
}

impl Set {
    fn ttl_text(&self) -> String {
        let v: Vec<String> = self.ttls.iter().map(|t| t.to_string()).collect();
        v.join("/")
    }
}

/// The RRsets of one section.
pub fn rrsets(rrs: &[Rr]) -> BTreeMap<Key, Set> {
    let mut m: BTreeMap<Key, Set> = BTreeMap::new();
    for rr in rrs {
        let s = m.entry(rr.key()).or_default();
        s.ttls.insert(rr.ttl);
        s.rdatas.insert(rr.rdata.clone());
    }
    m
}

/// One difference between Knot's response and ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    /// One side did not answer (or its answer did not parse).
    Missing {
        side: Side,
        error: String,
    },
    Rcode {
        knot: u16,
        ours: u16,
    },
    Flag {
        flag: &'static str,
        knot: bool,
        ours: bool,
    },
    Opcode {
        knot: u16,
        ours: u16,
    },
    Question {
        knot: String,
        ours: String,
    },
    /// OPT present on one side only.
    OptPresence {
        knot: bool,
        ours: bool,
    },
    /// An OPT field differs (`field` is payload, version, do, z, options or owner).
    Opt {
        field: &'static str,
        knot: String,
        ours: String,
    },
    /// An RRset only Knot sent.
    OnlyKnot {
        section: Section,
        key: Key,
        set: Set,
    },
    /// An RRset only we sent.
    OnlyOurs {
        section: Section,
        key: Key,
        set: Set,
    },
    /// Same RRset, different TTL.
    Ttl {
        section: Section,
        key: Key,
        knot: Set,
        ours: Set,
    },
    /// Same RRset, different RDATAs.
    Rdata {
        section: Section,
        key: Key,
        knot: Set,
        ours: Set,
    },
    /// An encoding oddity on one side.
    Wire {
        side: Side,
        note: String,
    },
}

impl Diff {
    /// The section this difference is in, for RRset differences.
    pub fn section(&self) -> Option<Section> {
        match self {
            Diff::OnlyKnot { section, .. }
            | Diff::OnlyOurs { section, .. }
            | Diff::Ttl { section, .. }
            | Diff::Rdata { section, .. } => Some(*section),
            _ => None,
        }
    }

    /// The RRset this difference is about.
    pub fn key(&self) -> Option<&Key> {
        match self {
            Diff::OnlyKnot { key, .. }
            | Diff::OnlyOurs { key, .. }
            | Diff::Ttl { key, .. }
            | Diff::Rdata { key, .. } => Some(key),
            _ => None,
        }
    }

    /// A short signature without names or data, for grouping similar differences.
    pub fn signature(&self) -> String {
        let t = |k: &Key| match k.covered {
            Some(c) => format!("RRSIG({})", rtype::to_string(c)),
            None => rtype::to_string(k.rtype),
        };
        match self {
            Diff::Missing { side, .. } => format!("no answer from {side}"),
            Diff::Rcode { knot, ours } => format!(
                "rcode Knot={} ours={}",
                rcode_name(*knot),
                rcode_name(*ours)
            ),
            Diff::Flag { flag, knot, ours } => {
                format!("flag {flag} Knot={} ours={}", *knot as u8, *ours as u8)
            }
            Diff::Opcode { .. } => "opcode".into(),
            Diff::Question { .. } => "question".into(),
            Diff::OptPresence { knot, ours } => {
                format!("OPT present Knot={} ours={}", *knot as u8, *ours as u8)
            }
            Diff::Opt { field, .. } => format!("OPT {field}"),
            Diff::OnlyKnot { section, key, .. } => {
                format!("{} only Knot {}", section.name(), t(key))
            }
            Diff::OnlyOurs { section, key, .. } => {
                format!("{} only ours {}", section.name(), t(key))
            }
            Diff::Ttl { section, key, .. } => format!("{} TTL {}", section.name(), t(key)),
            Diff::Rdata { section, key, .. } => format!("{} RDATA {}", section.name(), t(key)),
            Diff::Wire { side, note } => format!("wire {side}: {note}"),
        }
    }
}

fn set_lines(key: &Key, set: &Set) -> String {
    let mut out = String::new();
    for rd in &set.rdatas {
        out.push_str(&format!(
            "\n        {} {} {}",
            key,
            set.ttl_text(),
            rdata_to_text(key.rtype, rd)
        ));
    }
    out
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::Missing { side, error } => write!(f, "no usable answer from {side}: {error}"),
            Diff::Rcode { knot, ours } => write!(
                f,
                "RCODE: Knot {}, ours {}",
                rcode_name(*knot),
                rcode_name(*ours)
            ),
            Diff::Flag { flag, knot, ours } => {
                write!(f, "flag {flag}: Knot {}, ours {}", *knot as u8, *ours as u8)
            }
            Diff::Opcode { knot, ours } => write!(f, "opcode: Knot {knot}, ours {ours}"),
            Diff::Question { knot, ours } => write!(f, "question: Knot {knot}, ours {ours}"),
            Diff::OptPresence { knot, ours } => write!(
                f,
                "OPT: Knot {}, ours {}",
                if *knot { "present" } else { "absent" },
                if *ours { "present" } else { "absent" }
            ),
            Diff::Opt { field, knot, ours } => write!(f, "OPT {field}: Knot {knot}, ours {ours}"),
            Diff::OnlyKnot { section, key, set } => write!(
                f,
                "{}: only Knot has {key}{}",
                section.name(),
                set_lines(key, set)
            ),
            Diff::OnlyOurs { section, key, set } => write!(
                f,
                "{}: only ours has {key}{}",
                section.name(),
                set_lines(key, set)
            ),
            Diff::Ttl {
                section,
                key,
                knot,
                ours,
            } => write!(
                f,
                "{}: {key} TTL Knot {}, ours {}",
                section.name(),
                knot.ttl_text(),
                ours.ttl_text()
            ),
            Diff::Rdata {
                section,
                key,
                knot,
                ours,
            } => {
                write!(f, "{}: {key} RDATA differs", section.name())?;
                for rd in knot.rdatas.difference(&ours.rdatas) {
                    write!(f, "\n        only Knot: {}", rdata_to_text(key.rtype, rd))?;
                }
                for rd in ours.rdatas.difference(&knot.rdatas) {
                    write!(f, "\n        only ours: {}", rdata_to_text(key.rtype, rd))?;
                }
                Ok(())
            }
            Diff::Wire { side, note } => write!(f, "encoding ({side}): {note}"),
        }
    }
}

/// The outcome of comparing two responses.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub diffs: Vec<Diff>,
    /// TC=1 over UDP on at least one side: the record sections were not compared.
    pub truncated: bool,
}

/// Compares Knot's response with ours. `udp`: the query went over UDP.
pub fn compare(knot: &Response, ours: &Response, udp: bool) -> Comparison {
    let mut diffs = Vec::new();
    if knot.rcode != ours.rcode {
        diffs.push(Diff::Rcode {
            knot: knot.rcode,
            ours: ours.rcode,
        });
    }
    let (ko, oo) = ((knot.flags >> 11) & 0xf, (ours.flags >> 11) & 0xf);
    if ko != oo {
        diffs.push(Diff::Opcode { knot: ko, ours: oo });
    }
    for &(bit, name) in FLAGS {
        if knot.flag(bit) != ours.flag(bit) {
            diffs.push(Diff::Flag {
                flag: name,
                knot: knot.flag(bit),
                ours: ours.flag(bit),
            });
        }
    }
    if knot.question != ours.question || knot.qdcount != ours.qdcount {
        diffs.push(Diff::Question {
            knot: question_text(knot),
            ours: question_text(ours),
        });
    }
    compare_opt(knot.opt.as_ref(), ours.opt.as_ref(), &mut diffs);
    for (side, r) in [(Side::Knot, knot), (Side::Ours, ours)] {
        for note in &r.notes {
            diffs.push(Diff::Wire {
                side,
                note: note.clone(),
            });
        }
    }
    let truncated = udp && (knot.flag(FLAG_TC) || ours.flag(FLAG_TC));
    if !truncated {
        for s in Section::ALL {
            compare_section(s, knot.section(s), ours.section(s), &mut diffs);
        }
    }
    Comparison { diffs, truncated }
}

fn question_text(r: &Response) -> String {
    if r.qdcount == 0 {
        return "(none)".into();
    }
    match read_name_at(&r.question, 0) {
        Ok((wire, next, _)) if r.question.len() >= next + 4 => {
            let q = &r.question[next..];
            format!(
                "{} {} {}",
                name_text(&wire),
                class_name(u16::from_be_bytes([q[2], q[3]])),
                rtype::to_string(u16::from_be_bytes([q[0], q[1]]))
            )
        }
        _ => format!("{:02x?}", r.question),
    }
}

fn compare_opt(knot: Option<&Opt>, ours: Option<&Opt>, diffs: &mut Vec<Diff>) {
    let (k, o) = match (knot, ours) {
        (None, None) => return,
        (Some(k), Some(o)) => (k, o),
        (k, o) => {
            diffs.push(Diff::OptPresence {
                knot: k.is_some(),
                ours: o.is_some(),
            });
            return;
        }
    };
    let mut field = |name: &'static str, a: String, b: String| {
        if a != b {
            diffs.push(Diff::Opt {
                field: name,
                knot: a,
                ours: b,
            });
        }
    };
    field("payload", k.payload.to_string(), o.payload.to_string());
    field("version", k.version.to_string(), o.version.to_string());
    field(
        "do",
        (k.dnssec_ok as u8).to_string(),
        (o.dnssec_ok as u8).to_string(),
    );
    field("z", format!("{:#06x}", k.z), format!("{:#06x}", o.z));
    field("owner", k.root_owner.to_string(), o.root_owner.to_string());
    let opts = |x: &Opt| {
        let mut v: Vec<String> = x
            .options
            .iter()
            .map(|(c, d)| format!("{c}:{}", hex(d)))
            .collect();
        v.sort();
        v.join(",")
    };
    field("options", opts(k), opts(o));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compare_section(section: Section, knot: &[Rr], ours: &[Rr], diffs: &mut Vec<Diff>) {
    let k = rrsets(knot);
    let o = rrsets(ours);
    for (key, ks) in &k {
        match o.get(key) {
            None => diffs.push(Diff::OnlyKnot {
                section,
                key: key.clone(),
                set: ks.clone(),
            }),
            Some(os) => {
                if ks.rdatas != os.rdatas {
                    diffs.push(Diff::Rdata {
                        section,
                        key: key.clone(),
                        knot: ks.clone(),
                        ours: os.clone(),
                    });
                }
                if ks.ttls != os.ttls {
                    diffs.push(Diff::Ttl {
                        section,
                        key: key.clone(),
                        knot: ks.clone(),
                        ours: os.clone(),
                    });
                }
            }
        }
    }
    for (key, os) in &o {
        if !k.contains_key(key) {
            diffs.push(Diff::OnlyOurs {
                section,
                key: key.clone(),
                set: os.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(answers: &[(&[u8], u16, u32, &[u8])], compress_owner: bool) -> Vec<u8> {
        let mut m = vec![
            0x12,
            0x34,
            0x84,
            0x00,
            0,
            1,
            0,
            answers.len() as u8,
            0,
            0,
            0,
            0,
        ];
        m.extend_from_slice(b"\x03WwW\x07example\x00\x00\x01\x00\x01");
        for (owner, t, ttl, rd) in answers {
            if compress_owner {
                m.extend_from_slice(&[0xc0, 12]);
            } else {
                m.extend_from_slice(owner);
            }
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
        }
        m
    }

    #[test]
    fn order_case_and_compression_do_not_matter() {
        let www: &[u8] = b"\x03www\x07example\x00";
        let a = msg(
            &[(www, 1, 60, &[1, 2, 3, 4]), (www, 1, 60, &[5, 6, 7, 8])],
            false,
        );
        let b = msg(
            &[(www, 1, 60, &[5, 6, 7, 8]), (www, 1, 60, &[1, 2, 3, 4])],
            true,
        );
        let c = compare(&parse(&a).unwrap(), &parse(&b).unwrap(), true);
        assert!(c.diffs.is_empty(), "{:?}", c.diffs);
    }

    #[test]
    fn rdata_and_ttl_differences_are_reported() {
        let www: &[u8] = b"\x03www\x07example\x00";
        let a = msg(&[(www, 1, 60, &[1, 2, 3, 4])], false);
        let b = msg(&[(www, 1, 30, &[1, 2, 3, 5])], false);
        let c = compare(&parse(&a).unwrap(), &parse(&b).unwrap(), true);
        assert_eq!(c.diffs.len(), 2, "{:?}", c.diffs);
        assert_eq!(c.diffs[0].signature(), "answer RDATA A");
        assert_eq!(c.diffs[1].signature(), "answer TTL A");
    }

    #[test]
    fn compressed_cname_target_is_decompressed_and_lowercased() {
        let www: &[u8] = b"\x03www\x07example\x00";
        // CNAME "web" + pointer to "WwW.example" in the question... as "web.example".
        let a = msg(&[(www, 5, 60, b"\x03web\x07example\x00")], false);
        let b = msg(&[(www, 5, 60, b"\x03WEB\xc0\x10")], true);
        let c = compare(&parse(&a).unwrap(), &parse(&b).unwrap(), true);
        assert!(c.diffs.is_empty(), "{:?}", c.diffs);
    }

    #[test]
    fn duplicates_are_noted() {
        let www: &[u8] = b"\x03www\x07example\x00";
        let a = msg(
            &[(www, 1, 60, &[1, 2, 3, 4]), (www, 1, 60, &[1, 2, 3, 4])],
            false,
        );
        let r = parse(&a).unwrap();
        assert_eq!(r.notes.len(), 1);
    }
}
