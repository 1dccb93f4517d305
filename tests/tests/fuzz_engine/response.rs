//! The check of every response in the fuzz tests: a DNS message hickory-proto parses, with the
//! query's ID, within the UDP size limit.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::DecodeError;
use xdpdns::engine::Transport;

use super::hex;

/// Checks a response to `query`: a DNS message hickory-proto parses, a response, with the
/// query's ID, within the UDP size limit. Returns its RCODE.
pub fn check_response(query: &[u8], resp: &[u8], t: Transport) -> ResponseCode {
    let m = parse(resp).unwrap_or_else(|e| {
        panic!(
            "unparsable response ({e}) to query {}:\n{}",
            hex(query),
            hex(resp)
        )
    });
    assert_eq!(resp[..2], query[..2], "response ID differs");
    assert_eq!(m.metadata.id, u16::from_be_bytes([query[0], query[1]]));
    assert!(resp[2] & 0x80 != 0, "QR is not set");
    if t == Transport::Udp {
        assert!(resp.len() <= 1232, "UDP response of {} octets", resp.len());
    }
    m.metadata.response_code
}

/// The message, read by hickory-proto, which is stricter than the RFCs in two ways:
/// - it reads empty RDATA as an RFC 2136 prerequisite and refuses it outside UPDATE messages,
///   where RFC 3597 allows it (`\# 0`) for opaque types;
/// - it refuses ALPN ids that are not UTF-8, where RFC 9460 §7.1 takes any octets.
///
/// A message it refuses for these reasons is read again as an UPDATE message, with its SVCB
/// and HTTPS records retyped as opaque (`wire::rdata` checks their structure), so that all the
/// rest is still checked; its empty RDATA must then be of types hickory-proto takes as opaque.
fn parse(msg: &[u8]) -> Result<Message, DecodeError> {
    match Message::from_vec(msg) {
        Err(DecodeError::InvalidEmptyRecord | DecodeError::Utf8(_)) => {
            let mut lenient = msg.to_vec();
            lenient[2] = (lenient[2] & 0x87) | (5 << 3);
            for at in type_offsets(msg).unwrap_or_default() {
                if matches!(u16::from_be_bytes([msg[at], msg[at + 1]]), 64 | 65) {
                    lenient[at..at + 2].copy_from_slice(&65280u16.to_be_bytes());
                }
            }
            let m = Message::from_vec(&lenient)?;
            let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
            for r in records {
                if let RData::Update0(t) = r.data {
                    let opaque = matches!(t, RecordType::Unknown(_) | RecordType::NULL);
                    assert!(opaque, "empty {t} RDATA in {}", hex(msg));
                }
            }
            Ok(m)
        }
        r => r,
    }
}

/// Offsets of the TYPE fields of the records in `msg`; `None` when it cannot be walked.
fn type_offsets(msg: &[u8]) -> Option<Vec<usize>> {
    let count = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*msg.get(4 + 2 * i)?, *msg.get(5 + 2 * i)?]).into())
    };
    let mut p = 12;
    for _ in 0..count(0)? {
        p = skip_name(msg, p)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..count(1)? + count(2)? + count(3)? {
        p = skip_name(msg, p)?;
        out.push(p);
        let rdlen = u16::from_be_bytes([*msg.get(p + 8)?, *msg.get(p + 9)?]);
        p += 10 + usize::from(rdlen);
    }
    (p <= msg.len()).then_some(out)
}

/// The offset after a possibly compressed name.
fn skip_name(msg: &[u8], mut p: usize) -> Option<usize> {
    loop {
        match *msg.get(p)? {
            0 => return Some(p + 1),
            l @ 1..=63 => p += usize::from(l) + 1,
            0xc0..=0xff => return msg.get(p + 1).map(|_| p + 2),
            _ => return None,
        }
    }
}
