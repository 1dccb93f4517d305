//! Ordinary queries signed with TSIG (RFC 8945 §5.2, §5.3), such as the SOA queries of a
//! downstream secondary's refresh check: the TSIG is verified and removed, the query answered
//! by the caller's engine as any other, and the answer signed with the same key. A query whose
//! TSIG fails is answered NOTAUTH with the TSIG error. Unsigned queries go to the engine as
//! they are, without being parsed here (a query with no additional record cannot be signed).

use super::message::{self, rcode};
use super::response::{question_wire, Head};
use super::tsig::{self, Key, ResponseSigner};
use crate::wire::name::Name;

/// What became of a query.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// The answer to send, if any.
    pub response: Option<Vec<u8>>,
    /// The key that signed the query, when it verified.
    pub key: Option<Name>,
    /// Why the query was refused, when its TSIG failed.
    pub rejected: Option<String>,
}

/// Answers `request`: through `engine` (which takes a query without TSIG), signed when the
/// request was.
pub fn answer(
    request: &[u8],
    keys: &[Key],
    now: u64,
    engine: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Answered {
    let unsigned = |response| Answered {
        response,
        key: None,
        rejected: None,
    };
    if request.len() < 12 || request[10..12] == [0, 0] {
        return unsigned(engine(request));
    }
    let msg = match message::parse(request) {
        Ok(m) if m.tsig.is_some() && !m.is_response() => m,
        // Not signed, or for the engine to judge.
        _ => return unsigned(engine(request)),
    };
    let question = msg.questions.first().map(question_wire);
    match tsig::verify_request(&msg, keys, now) {
        Ok(Some(signed)) => {
            let (t, at) = msg.tsig.as_ref().expect("signed");
            let original_id = tsig::Tsig::from_record(t).map_or(msg.id, |t| t.original_id);
            let mut stripped = request[..*at].to_vec();
            stripped[..2].copy_from_slice(&original_id.to_be_bytes());
            let ar = u16::from_be_bytes([stripped[10], stripped[11]]) - 1;
            stripped[10..12].copy_from_slice(&ar.to_be_bytes());
            let response = engine(&stripped).map(|mut r| {
                ResponseSigner::new(signed.key, &signed.mac).next(&mut r, true, now);
                r
            });
            Answered {
                response,
                key: Some(signed.key.name.clone()),
                rejected: None,
            }
        }
        Ok(None) => unsigned(engine(request)),
        Err(rejection) => {
            let mut r = Head::new(msg.id, msg.flags, question).bare(rcode::NOTAUTH);
            tsig::sign_rejection(&mut r, &rejection, now);
            Answered {
                response: Some(r),
                key: None,
                rejected: Some(rejection.error.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Catalog, Engine, EngineConfig, Transport};
    use crate::wire::record::rtype;
    use crate::xfr::tsig::{Algorithm, ResponseVerifier, Tsig};
    use crate::zone::{Zone, ZoneSource};
    use std::sync::Arc;

    fn engine() -> Engine {
        let apex = Name::parse("example.", None).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../zones/example.zone");
        let recs = crate::zonefile::parse_file(std::path::Path::new(path), &apex)
            .unwrap()
            .records;
        let src = ZoneSource {
            name: "example.zone",
            locations: None,
        };
        let (zone, _) = Zone::build(apex, recs, &src).unwrap();
        let mut c = Catalog::new();
        c.insert(Arc::new(zone));
        Engine::new(c, EngineConfig::default())
    }

    #[test]
    fn signed_queries_get_signed_answers_and_bad_ones_notauth() {
        let eng = engine();
        let ask = |q: &[u8]| eng.answer(q, Transport::Udp);
        let k = Key::new(
            Name::parse("k.example.", None).unwrap(),
            Algorithm::HmacSha256,
            b"s".to_vec(),
        );
        let apex = Name::parse("example.", None).unwrap();
        let mut q = message::query(0x4242, &apex, rtype::SOA, None);
        let unsigned_answer = ask(&q).unwrap();
        let mac = tsig::sign_request(&mut q, &k, 1000);
        let a = answer(&q, std::slice::from_ref(&k), 1000, ask);
        assert_eq!((a.key, a.rejected), (Some(k.name.clone()), None));
        let r = a.response.unwrap();
        let m = message::parse(&r).unwrap();
        assert_eq!((m.id, m.rcode(), m.answers.len()), (0x4242, 0, 1));
        let mut v = ResponseVerifier::new(&k, &mac);
        v.verify(&m, 1000).unwrap();
        v.finish().unwrap();
        // Without the TSIG, the answer is the engine's own.
        let at = m.tsig.as_ref().unwrap().1;
        let mut stripped = r[..at].to_vec();
        stripped[11] -= 1;
        assert_eq!(stripped, unsigned_answer);

        let wrong = Key::new(k.name.clone(), k.algorithm, b"other".to_vec());
        let a = answer(&q, &[wrong], 1000, ask);
        assert!(a.rejected.unwrap().contains("BADSIG"));
        let m = message::parse(a.response.as_ref().unwrap()).unwrap();
        let t = Tsig::from_record(&m.tsig.as_ref().unwrap().0).unwrap();
        assert_eq!((m.rcode(), t.error), (rcode::NOTAUTH, rcode::BADSIG));
        assert_eq!(m.questions[0].name, apex);
        // Unsigned queries pass through; so does what the engine must judge.
        let plain = message::query(7, &apex, rtype::SOA, None);
        assert_eq!(answer(&plain, &[], 1000, ask).response, ask(&plain));
        assert_eq!(answer(&[1, 2], &[], 1000, ask).response, None);
    }
}
