//! Writing a response message: header, the question echoed as sent, RRsets with name
//! compression, the OPT record, and truncation by whole RRsets within a size limit
//! (RFC 1035 §4.1.4, RFC 2181 §9). The result keeps its structure (`Message`).
//!
//! Compression matches names case-insensitively and the question name is the first entry, so
//! owner names equal to the query name become pointers to it. The bytes after the question
//! therefore do not depend on the query's letter case, which the XDP templates rely on.

use super::message::Message;
use crate::wire::name::{Name, NAME_MAX};
use crate::wire::record::{compressible_names, read_name};

/// Response sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

/// An RRset to write: owner, type, class, TTL and RDATAs.
#[derive(Clone, Debug)]
pub struct OutSet<'a> {
    pub owner: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdatas: std::borrow::Cow<'a, [Vec<u8>]>,
}

/// The set did not fit within the size limit; nothing of it was written.
#[derive(Debug)]
pub struct Full;

/// The name suffixes written so far, lower-cased, with their offsets in the message: a small
/// table searched linearly (responses hold tens of names), appended to in order so that a set
/// that does not fit can be taken back.
#[derive(Default)]
struct Suffixes {
    arena: Vec<u8>,
    /// (start in `arena`, length, offset in the message).
    entries: Vec<(u32, u8, u16)>,
}

impl Suffixes {
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.entries
            .iter()
            .find(|(at, len, _)| {
                *len as usize == suffix.len()
                    && self.arena[*at as usize..*at as usize + suffix.len()] == *suffix
            })
            .map(|e| e.2)
    }

    fn insert(&mut self, suffix: &[u8], offset: usize) {
        if self.find(suffix).is_none() {
            self.entries
                .push((self.arena.len() as u32, suffix.len() as u8, offset as u16));
            self.arena.extend_from_slice(suffix);
        }
    }

    fn mark(&self) -> (usize, usize) {
        (self.entries.len(), self.arena.len())
    }

    fn rollback(&mut self, (entries, arena): (usize, usize)) {
        self.entries.truncate(entries);
        self.arena.truncate(arena);
    }
}

/// `wire` lower-cased into a stack buffer.
fn lower(wire: &[u8]) -> ([u8; NAME_MAX], usize) {
    let mut buf = [0u8; NAME_MAX];
    let n = wire.len().min(NAME_MAX);
    for (d, s) in buf.iter_mut().zip(&wire[..n]) {
        *d = s.to_ascii_lowercase();
    }
    (buf, n)
}

pub struct Writer {
    buf: Vec<u8>,
    limit: usize,
    names: Suffixes,
    counts: [u16; 3],
    question_end: usize,
    /// Offsets of the compression pointers written.
    pointers: Vec<u16>,
    opt_at: Option<usize>,
    /// An RRset did not fit.
    full: bool,
}

impl Writer {
    /// Starts a response with the header (counts filled in later) and the question as sent.
    /// `limit` is the largest message allowed; `reserve` bytes are kept free for the OPT record.
    pub fn new(id: u16, flags: u16, question: Option<&[u8]>, limit: usize) -> Writer {
        Writer::with_anchor(id, flags, question, limit, 0)
    }

    /// Like `new`, but names are compressed only against the question name's suffixes below
    /// its first `skip` labels. With `skip` = the labels above a referral's cut (or an
    /// NXDOMAIN's closest encloser), the bytes after the question are the same for every query
    /// name below that anchor, up to a shift of every pointer — which the XDP templates use.
    pub fn with_anchor(
        id: u16,
        flags: u16,
        question: Option<&[u8]>,
        limit: usize,
        skip: usize,
    ) -> Writer {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0, question.is_some() as u8, 0, 0, 0, 0, 0, 0]);
        let mut w = Writer {
            buf,
            limit,
            names: Suffixes::default(),
            counts: [0; 3],
            question_end: 12 + question.map_or(0, <[u8]>::len),
            pointers: Vec::new(),
            opt_at: None,
            full: false,
        };
        if let Some(q) = question {
            w.buf.extend_from_slice(q);
            if let Some((name, _)) = read_name(q) {
                let mut at = 12;
                let mut name = name;
                for _ in 0..skip {
                    let Some(p) = name.parent() else { break };
                    at += name.wire().len() - p.wire().len();
                    name = p;
                }
                w.remember(&name, at);
            }
        }
        w
    }

    fn remember(&mut self, name: &Name, offset: usize) {
        let (lower, n) = lower(name.wire());
        let wire = &lower[..n];
        let mut pos = 0;
        while wire[pos] != 0 {
            let at = offset + pos;
            if at >= 0x4000 {
                break;
            }
            self.names.insert(&wire[pos..], at);
            pos += wire[pos] as usize + 1;
        }
    }

    /// Writes the uncompressed wire name `wire`, compressed against earlier names when
    /// `compress`.
    fn write_name(&mut self, wire: &[u8], compress: bool) {
        let (lower, n) = lower(wire);
        let lower = &lower[..n];
        let start = self.buf.len();
        let mut pos = 0;
        while wire[pos] != 0 {
            if compress {
                if let Some(off) = self.names.find(&lower[pos..]) {
                    self.buf.extend_from_slice(&wire[..pos]);
                    self.pointers.push(self.buf.len() as u16);
                    self.buf.extend_from_slice(&(0xc000 | off).to_be_bytes());
                    self.remember_prefix(lower, pos, start);
                    return;
                }
            }
            pos += wire[pos] as usize + 1;
        }
        self.buf.extend_from_slice(wire);
        if compress {
            self.remember_prefix(lower, pos, start);
        }
    }

    /// Remembers the suffixes of `lower` that start before `upto`, written at `start`.
    fn remember_prefix(&mut self, lower: &[u8], upto: usize, start: usize) {
        let mut pos = 0;
        while pos < upto {
            let at = start + pos;
            if at >= 0x4000 {
                break;
            }
            self.names.insert(&lower[pos..], at);
            pos += lower[pos] as usize + 1;
        }
    }

    /// Appends a whole RRset or nothing (when it would pass `limit - reserve`). Not after the
    /// OPT record.
    pub fn push(&mut self, section: Section, set: &OutSet<'_>, reserve: usize) -> Result<(), Full> {
        debug_assert!(self.opt_at.is_none(), "RRsets go before the OPT record");
        let mark = self.buf.len();
        let names_mark = self.names.mark();
        let pointers_mark = self.pointers.len();
        for rd in set.rdatas.iter() {
            self.write_name(set.owner.wire(), true);
            self.buf.extend_from_slice(&set.rtype.to_be_bytes());
            self.buf.extend_from_slice(&set.class.to_be_bytes());
            self.buf.extend_from_slice(&set.ttl.to_be_bytes());
            let len_at = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
            let mut at = 0;
            for (off, len) in compressible_names(set.rtype, rd) {
                self.buf.extend_from_slice(&rd[at..off]);
                self.write_name(&rd[off..off + len], true);
                at = off + len;
            }
            self.buf.extend_from_slice(&rd[at..]);
            let rdlen = (self.buf.len() - len_at - 2) as u16;
            self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        if self.buf.len() + reserve > self.limit {
            self.buf.truncate(mark);
            self.names.rollback(names_mark);
            self.pointers.truncate(pointers_mark);
            self.full = true;
            return Err(Full);
        }
        self.counts[section as usize] += set.rdatas.len() as u16;
        Ok(())
    }

    /// Appends the OPT record, which ends the message (always fits: callers reserve room for
    /// it).
    pub fn push_opt(&mut self, payload: u16, ext_rcode: u8, dnssec_ok: bool, options: &[u8]) {
        self.opt_at = Some(self.buf.len());
        self.buf.push(0);
        self.buf.extend_from_slice(&41u16.to_be_bytes());
        self.buf.extend_from_slice(&payload.to_be_bytes());
        self.buf.push(ext_rcode);
        self.buf.push(0);
        self.buf
            .extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        self.buf
            .extend_from_slice(&(options.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(options);
        self.counts[Section::Additional as usize] += 1;
    }

    /// Sets header flag bits.
    pub fn set_flags(&mut self, bits: u16) {
        let f = u16::from_be_bytes([self.buf[2], self.buf[3]]) | bits;
        self.buf[2..4].copy_from_slice(&f.to_be_bytes());
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fills in the counts and returns the message.
    pub fn finish(mut self) -> Message {
        for (i, c) in self.counts.iter().enumerate() {
            let at = 6 + 2 * i;
            self.buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        Message {
            bytes: self.buf,
            question_end: self.question_end,
            opt_at: self.opt_at,
            pointers: self.pointers,
            complete: !self.full,
        }
    }
}
