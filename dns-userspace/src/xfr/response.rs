//! The response messages of an outgoing zone transfer (RFC 5936 §2.2, RFC 1995 §4), made one at
//! a time as the connection takes them: the records of the transfer in order, packed into
//! messages of at most `limit` octets by the answer engine's writer (names compressed), each
//! with the OPT record when the request had one (EDNS EXPIRE, RFC 7314, when asked for and
//! known) and each signed with TSIG when the request was (RFC 8945 §5.3.1). The question is
//! echoed in the first message only. Each message costs work bounded by its size; nothing is
//! made before it is asked for.

use std::borrow::Cow;
use std::sync::Arc;

use super::ixfr::Diff;
use super::message::{rcode, Question, FLAG_AA, FLAG_QR, OPTION_EXPIRE};
use super::tsig::{Key, ResponseSigner};
use crate::engine::writer::{OutSet, Section, Writer};
use crate::wire::record::{rtype, Record};

/// One run of the records a transfer sends.
#[derive(Clone, Debug)]
pub enum Segment {
    One(Record),
    /// A whole version, its SOA records left out (the transfer sends them first and last).
    Zone(Arc<[Record]>),
    Removed(Arc<Diff>),
    Added(Arc<Diff>),
}

impl Segment {
    fn records(&self) -> &[Record] {
        match self {
            Segment::One(r) => std::slice::from_ref(r),
            Segment::Zone(v) => v,
            Segment::Removed(d) => &d.removed,
            Segment::Added(d) => &d.added,
        }
    }

    fn skips(&self, r: &Record) -> bool {
        matches!(self, Segment::Zone(_)) && r.rtype == rtype::SOA
    }
}

/// The records of an AXFR: the SOA, every other record, the SOA again.
pub fn axfr_segments(soa: &Record, records: Arc<[Record]>) -> Vec<Segment> {
    vec![
        Segment::One(soa.clone()),
        Segment::Zone(records),
        Segment::One(soa.clone()),
    ]
}

/// The records of an IXFR with diffs: the current SOA, each diff (its old SOA, the removals,
/// its new SOA, the additions), the current SOA again.
pub fn ixfr_segments(soa: &Record, diffs: &[Arc<Diff>]) -> Vec<Segment> {
    let mut v = vec![Segment::One(soa.clone())];
    for d in diffs {
        v.push(Segment::One(d.from.clone()));
        v.push(Segment::Removed(d.clone()));
        v.push(Segment::One(d.to.clone()));
        v.push(Segment::Added(d.clone()));
    }
    v.push(Segment::One(soa.clone()));
    v
}

/// A question in wire form, as it is echoed.
pub fn question_wire(q: &Question) -> Vec<u8> {
    let mut w = q.name.wire().to_vec();
    w.extend_from_slice(&q.qtype.to_be_bytes());
    w.extend_from_slice(&q.qclass.to_be_bytes());
    w
}

/// What every message of a response starts with.
#[derive(Clone, Debug)]
pub struct Head {
    pub id: u16,
    /// QR, AA and the request's RD; the RCODE is added per message.
    pub flags: u16,
    /// The question in wire form, echoed in the first message.
    pub question: Option<Vec<u8>>,
    /// The OPT record's options, when the request had EDNS; with the extended RCODE bits.
    pub edns: Option<(Vec<u8>, u8)>,
}

impl Head {
    /// The head of an answer to `id` with the request's `flags` (RD kept).
    pub fn new(id: u16, request_flags: u16, question: Option<Vec<u8>>) -> Head {
        Head {
            id,
            flags: FLAG_QR | FLAG_AA | (request_flags & 0x0100),
            question,
            edns: None,
        }
    }

    /// With an OPT record holding EDNS EXPIRE when `expire` is given.
    pub fn with_edns(mut self, expire: Option<u32>, ext_rcode: u8) -> Head {
        let mut options = Vec::new();
        if let Some(e) = expire {
            options.extend_from_slice(&OPTION_EXPIRE.to_be_bytes());
            options.extend_from_slice(&4u16.to_be_bytes());
            options.extend_from_slice(&e.to_be_bytes());
        }
        self.edns = Some((options, ext_rcode));
        self
    }

    fn opt_len(&self) -> usize {
        self.edns.as_ref().map_or(0, |(o, _)| 11 + o.len())
    }

    /// A message with no records and this RCODE (an error answer: AA clear), unsigned.
    pub fn bare(&self, rc: u16) -> Vec<u8> {
        let flags = (self.flags & !FLAG_AA) | (rc & 0xf);
        let mut w = Writer::new(self.id, flags, self.question.as_deref(), 65535);
        self.finish(&mut w);
        w.finish().into_bytes()
    }

    fn finish(&self, w: &mut Writer) {
        if let Some((options, ext)) = &self.edns {
            w.push_opt(dns_common::DEFAULT_SERVER_PAYLOAD, *ext, false, options);
        }
    }
}

/// Octets a TSIG record signed with `key` takes (RFC 8945 §4.2), Other Data empty.
pub fn tsig_len(key: &Key) -> usize {
    key.name.wire().len() + 10 + key.algorithm.name().wire().len() + 16 + key.algorithm.output_len()
}

/// The messages of one response, made as they are taken.
pub struct Stream {
    head: Head,
    segments: Vec<Segment>,
    /// Position: segment, record within it.
    at: (usize, usize),
    limit: usize,
    signer: Option<ResponseSigner<'static>>,
    reserve: usize,
    sent: usize,
    done: bool,
    now: u64,
    /// Why the response was cut short, when a record could not be sent.
    pub failure: Option<String>,
}

impl Stream {
    /// A response of these records in messages of at most `limit` octets, signed with
    /// `signer` (and its key) when the request was signed.
    pub fn new(
        head: Head,
        segments: Vec<Segment>,
        limit: usize,
        signer: Option<(Key, Vec<u8>)>,
        now: u64,
    ) -> Stream {
        let reserve = head.opt_len() + signer.as_ref().map_or(0, |(k, _)| tsig_len(k));
        Stream {
            head,
            segments,
            at: (0, 0),
            limit: limit.min(65535),
            signer: signer.map(|(k, mac)| ResponseSigner::owned(k, &mac)),
            reserve,
            sent: 0,
            done: false,
            now,
            failure: None,
        }
    }

    /// The next record to send, past those a segment leaves out.
    fn peek(&mut self) -> Option<&Record> {
        loop {
            let seg = self.segments.get(self.at.0)?;
            match seg.records().get(self.at.1) {
                None => self.at = (self.at.0 + 1, 0),
                Some(r) if seg.skips(r) => self.at.1 += 1,
                Some(_) => break,
            }
        }
        self.segments[self.at.0].records().get(self.at.1)
    }

    /// Whether every record has been sent.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Messages made so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    fn sign(&mut self, mut msg: Vec<u8>) -> Vec<u8> {
        if let Some(s) = self.signer.as_mut() {
            s.next(&mut msg, true, self.now);
        }
        msg
    }
}

impl Iterator for Stream {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let question = if self.sent == 0 {
            self.head.question.clone()
        } else {
            None
        };
        let question = question.as_deref();
        let (reserve, limit) = (self.reserve, self.limit);
        let mut w = Writer::new(self.head.id, self.head.flags, question, limit);
        let mut n = 0;
        while let Some(r) = self.peek() {
            let set = OutSet {
                owner: r.owner.clone(),
                rtype: r.rtype,
                class: r.class,
                ttl: r.ttl,
                rdatas: Cow::Borrowed(std::slice::from_ref(&r.rdata)),
            };
            if w.push(Section::Answer, &set, reserve).is_err() {
                break;
            }
            n += 1;
            self.at.1 += 1;
        }
        let rest = self.peek().map(|r| {
            format!(
                "{} {} ({} octets of RDATA) does not fit in a message of {} octets",
                r.owner,
                rtype::to_string(r.rtype),
                r.rdata.len(),
                limit
            )
        });
        let msg = match rest {
            // Not even one record fits: the response ends with SERVFAIL (RFC 5936 §2.2).
            Some(why) if n == 0 => {
                self.failure = Some(why);
                self.done = true;
                let mut head = self.head.clone();
                head.question = question.map(<[u8]>::to_vec);
                head.bare(rcode::SERVFAIL)
            }
            Some(_) => {
                self.head.finish(&mut w);
                w.finish().into_bytes()
            }
            None => {
                self.done = true;
                self.head.finish(&mut w);
                w.finish().into_bytes()
            }
        };
        self.sent += 1;
        Some(self.sign(msg))
    }
}

/// What a response is: messages made already (error answers), or a stream of them.
pub enum Messages {
    Ready(std::vec::IntoIter<Vec<u8>>),
    Stream(Box<Stream>),
}

impl Messages {
    pub fn none() -> Messages {
        Messages::Ready(Vec::new().into_iter())
    }

    pub fn one(m: Vec<u8>) -> Messages {
        Messages::Ready(vec![m].into_iter())
    }
}

impl Iterator for Messages {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        match self {
            Messages::Ready(v) => v.next(),
            Messages::Stream(s) => s.next(),
        }
    }
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Messages::Ready(v) => write!(f, "Messages::Ready({})", v.len()),
            Messages::Stream(s) => write!(f, "Messages::Stream(sent {})", s.sent),
        }
    }
}
