//! The `wire` and `message` targets: the query parser of the engine, names and RDATA in wire
//! form, and the secondary's full message parser.

use crate::engine::query::{self, Parsed};
use crate::wire::name::Name;
use crate::wire::rdata;
use crate::wire::record::{self, rtype, Record};
use crate::xfr::message::{self, Builder, Message};
use crate::zonefile::{self, present::rdata_to_text};

/// The `wire` target. The input is a query for `engine::query::parse` (whose view must agree
/// with the message: the question lies in it and reads back as the name parsed), a name for
/// `wire::record::read_name`, and — its first two octets a type, the rest RDATA — a record
/// for `wire::rdata::check`: RDATA it accepts is written in presentation form and must read
/// back through the zone-file parser to the same octets. Classes: `query`, `rdata` (not a
/// query, but RDATA that reads back), `error` (FORMERR or NOTIMP), `drop`.
pub fn wire(data: &[u8]) -> &'static str {
    let class = match query::parse(data) {
        Parsed::Drop => "drop",
        Parsed::Error { question, .. } => {
            if let Some(q) = question {
                assert!(data.len() >= 12 + q.len() && data[12..12 + q.len()] == *q);
            }
            "error"
        }
        Parsed::Query(q) => {
            let n = q.qname.wire().len();
            assert_eq!(q.question.len(), n + 4, "question length");
            assert_eq!(
                data[12..12 + q.question.len()],
                *q.question,
                "question not in place"
            );
            assert_eq!(Name::from_wire(&q.question[..n]).as_ref(), Ok(&q.qname));
            "query"
        }
    };
    if let Some((name, len)) = record::read_name(data) {
        assert_eq!(record::name_len(data), Some(len));
        assert!(
            len <= 255 && name.wire() == &data[..len],
            "name {name} is not what was read"
        );
    }
    if data.len() >= 2 {
        let t = u16::from_be_bytes([data[0], data[1]]);
        let rd = &data[2..];
        if !rtype::is_meta(t) && t != 0 && rdata::check(t, rd).is_ok() {
            let text = format!("@ 60 IN {} {}\n", rtype::to_string(t), rdata_to_text(t, rd));
            let origin = Name::parse("example.", None).expect("name");
            let read = zonefile::parse_str(&text, &origin, "/nonexistent/rdata.zone")
                .unwrap_or_else(|e| panic!("{text:?} does not read back: {e}"));
            assert_eq!(read.records.len(), 1, "{text:?}");
            assert_eq!(read.records[0].rdata, rd, "{text:?} reads back differently");
            if class != "query" {
                return "rdata";
            }
        }
    }
    class
}

/// Writes a parsed message again with [`Builder`] (names uncompressed).
fn rebuild(m: &Message<'_>) -> Vec<u8> {
    let mut b = Builder::new(m.id, m.opcode(), m.flags);
    for q in &m.questions {
        b = b.question(&q.name, q.qtype, q.qclass);
    }
    for (s, records) in [(1, &m.answers), (2, &m.authority), (3, &m.additional)] {
        for r in records {
            b = b.record(s, r);
        }
    }
    if let Some(o) = &m.opt {
        let mut rdata = Vec::new();
        for (code, data) in &o.options {
            rdata.extend_from_slice(&code.to_be_bytes());
            rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rdata.extend_from_slice(data);
        }
        let ttl = u32::from(o.ext_rcode) << 24 | u32::from(o.version) << 16 | u32::from(o.flags);
        let opt = Record {
            owner: Name::root(),
            rtype: rtype::OPT,
            class: o.payload,
            ttl,
            rdata,
        };
        b = b.record(3, &opt);
    }
    if let Some((t, _)) = &m.tsig {
        b = b.record(3, t);
    }
    b.finish()
}

/// The `message` target: a message that parses is written again uncompressed and must parse
/// to the same header, questions, records, OPT and TSIG.
pub fn message(data: &[u8]) -> &'static str {
    let Ok(m) = message::parse(data) else {
        return "malformed";
    };
    let again = rebuild(&m);
    let n = message::parse(&again)
        .unwrap_or_else(|e| panic!("{data:02x?} written again does not parse: {e}"));
    assert_eq!((n.id, n.flags), (m.id, m.flags));
    assert_eq!(n.questions, m.questions);
    assert_eq!(n.answers, m.answers);
    assert_eq!(n.authority, m.authority);
    assert_eq!(n.additional, m.additional);
    assert_eq!(n.opt, m.opt);
    assert_eq!(n.tsig.as_ref().map(|t| &t.0), m.tsig.as_ref().map(|t| &t.0));
    match (m.tsig.is_some(), m.opt.is_some()) {
        (true, _) => "signed",
        (false, true) => "edns",
        (false, false) => "plain",
    }
}
