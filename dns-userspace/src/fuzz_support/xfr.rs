//! The transfer targets: AXFR and IXFR responses read message by message as the secondary
//! reads them (parsed, the answers given to the readers, the result applied and built), TSIG
//! on requests and multi-message responses, and NOTIFY requests. What is accepted is sent
//! again by the server's own code (an AXFR of the zone built, a signature made with the same
//! key, the answer to a NOTIFY) and must read back the same.

use super::frames;
use crate::wire::name::Name;
use crate::wire::record::{same_rdata, Record};
use crate::xfr::axfr::{AxfrReader, Limits};
use crate::xfr::ixfr::{apply, Ixfr, IxfrReader};
use crate::xfr::message::{self, opcode, rcode, FLAG_QR};
use crate::xfr::notify;
use crate::xfr::response::{axfr_segments, Head, Stream};
use crate::xfr::soa::Soa;
use crate::xfr::tsig::{self, Key, ResponseSigner, ResponseVerifier};
use crate::xfr::tsig_key::Algorithm;
use crate::zone::{Zone, ZoneSource};

/// The clock of the TSIG checks, seconds since the epoch (the corpus is signed at this time).
pub const FUZZ_NOW: u64 = 1_800_000_000;

/// The key the TSIG and NOTIFY targets know: `xfr.`, HMAC-SHA256, secret "secret".
pub const FUZZ_KEY: (&str, Algorithm, &[u8]) = ("xfr.", Algorithm::HmacSha256, b"secret");

/// Small bounds, so that one input costs little.
const LIMITS: Limits = Limits {
    max_records: 20_000,
    max_bytes: 4 << 20,
};

fn key() -> Key {
    let (name, algorithm, secret) = FUZZ_KEY;
    Key::new(
        Name::parse(name, None).expect("name"),
        algorithm,
        secret.to_vec(),
    )
}

fn apex() -> Name {
    Name::parse("example.", None).expect("name")
}

/// The version of `example.` the IXFR target starts from (the repository's example zone).
fn base() -> Vec<Record> {
    let text = include_bytes!("../../../zones/example.zone");
    let parsed = crate::zonefile::parse_bytes(text, &apex(), "/nonexistent/example.zone")
        .expect("the example zone parses");
    parsed.records
}

fn build_records(records: &[Record]) -> Option<Zone> {
    let src = ZoneSource {
        name: "fuzz transfer",
        locations: None,
    };
    Zone::build(apex(), records.to_vec(), &src)
        .ok()
        .map(|(z, _)| z)
}

/// Reads framed response messages into `push` until it says the response is complete.
/// `Err` is the outcome class of a failure.
fn read(data: &[u8], mut push: impl FnMut(Vec<Record>) -> bool) -> Result<(), &'static str> {
    for wire in frames(data) {
        let msg = message::parse(wire).map_err(|_| "malformed")?;
        if !msg.is_response() || msg.rcode() != rcode::NOERROR {
            return Err("not_noerror_response");
        }
        if push(msg.answers) {
            return Ok(());
        }
    }
    Err("incomplete")
}

/// A zone's records sent as the server sends an AXFR (names compressed, messages of at most
/// `limit` octets), framed.
fn send_axfr(records: &[Record], limit: usize) -> Option<Vec<u8>> {
    let soa = records.first()?.clone();
    let mut stream = Stream::new(
        Head::new(1, 0, None),
        axfr_segments(&soa, records.to_vec().into()),
        limit,
        None,
        FUZZ_NOW,
    );
    let msgs: Vec<Vec<u8>> = stream.by_ref().collect();
    stream
        .failure
        .is_none()
        .then(|| super::framed(msgs.iter().map(Vec::as_slice)))
}

/// Reads an AXFR; the records, or the outcome class of the failure.
fn read_axfr(data: &[u8]) -> Result<Vec<Record>, &'static str> {
    let mut reader = AxfrReader::new(apex(), LIMITS);
    let mut failed = false;
    read(data, |answers| match reader.push(answers) {
        Ok(done) => done,
        Err(_) => {
            failed = true;
            true
        }
    })?;
    if failed {
        return Err("protocol");
    }
    reader.finish().map_err(|_| "protocol")
}

/// A zone that builds from a transfer is sent again as an AXFR, which must read back to the
/// same records in the same order.
fn resend(records: &[Record]) -> &'static str {
    if build_records(records).is_none() {
        return "zone_refused";
    }
    if let Some(again) = send_axfr(records, 4096) {
        let back = read_axfr(&again).unwrap_or_else(|c| panic!("our AXFR reads back as {c}"));
        // Compression may spell a name in RDATA as an earlier one is (`same_rdata`).
        let same = |(a, b): (&Record, &Record)| {
            (&a.owner, a.rtype, a.class, a.ttl) == (&b.owner, b.rtype, b.class, b.ttl)
                && same_rdata(a.rtype, &a.rdata, &b.rdata)
        };
        assert!(
            back.len() == records.len() && back.iter().zip(records).all(same),
            "our AXFR reads back differently: {back:?}\nnot {records:?}"
        );
    }
    "built"
}

/// The `axfr` target.
pub fn axfr(data: &[u8]) -> &'static str {
    match read_axfr(data) {
        Ok(records) => resend(&records),
        Err(class) => class,
    }
}

/// The `ixfr` target: the response to an IXFR from the example zone's serial.
pub fn ixfr(data: &[u8]) -> &'static str {
    let base = base();
    let ours = Soa::from_record(&base[0]).expect("SOA first").serial;
    let mut reader = IxfrReader::new(apex(), ours, LIMITS);
    let mut failed = false;
    if let Err(class) = read(data, |answers| match reader.push(answers) {
        Ok(done) => done,
        Err(_) => {
            failed = true;
            true
        }
    }) {
        return class;
    }
    if failed {
        return "protocol";
    }
    match reader.finish() {
        Err(_) => "protocol",
        Ok(Ixfr::UpToDate(_)) => "up_to_date",
        Ok(Ixfr::Full(records)) => match resend(&records) {
            "built" => "full",
            other => other,
        },
        Ok(Ixfr::Diffs(diffs)) => match apply(&base, &diffs) {
            Err(_) => "diff_refused",
            Ok(records) => match resend(&records) {
                "built" => "applied",
                other => other,
            },
        },
    }
}

/// The `tsig` target: the first message is a request, verified against the fuzz key; when it
/// is signed and verifies, the later ones are the messages of its response, verified in turn.
/// Unsigned messages are signed with the key and must then verify.
pub fn tsig(data: &[u8]) -> &'static str {
    let keys = [key()];
    let msgs = frames(data);
    let Some(request) = msgs.first().and_then(|w| message::parse(w).ok()) else {
        return "malformed";
    };
    let mac = match tsig::verify_request(&request, &keys, FUZZ_NOW) {
        Err(_) => return "rejected",
        Ok(None) => {
            let mut signed = request.wire.to_vec();
            let mac = tsig::sign_request(&mut signed, &keys[0], FUZZ_NOW);
            let m = message::parse(&signed).expect("a signed message parses");
            let ok = tsig::verify_request(&m, &keys, FUZZ_NOW).expect("our signature verifies");
            assert_eq!(ok.map(|s| s.mac), Some(mac.clone()));
            // Its response, signed message by message, must verify too.
            let mut signer = ResponseSigner::new(&keys[0], &mac);
            let mut verifier = ResponseVerifier::new(&keys[0], &mac);
            for (i, w) in msgs[1..].iter().enumerate() {
                let Ok(m) = message::parse(w) else { continue };
                if m.tsig.is_some() {
                    continue;
                }
                let mut out = w.to_vec();
                signer.next(&mut out, i % 3 == 0, FUZZ_NOW);
                let again = message::parse(&out).expect("a signed response parses");
                verifier
                    .verify(&again, FUZZ_NOW)
                    .expect("our response signature verifies");
            }
            return "unsigned";
        }
        Ok(Some(signed)) => signed.mac,
    };
    let mut verifier = ResponseVerifier::new(&keys[0], &mac);
    let mut seen = 0;
    for w in &msgs[1..] {
        let Ok(m) = message::parse(w) else {
            return "response_malformed";
        };
        if verifier.verify(&m, FUZZ_NOW).is_err() {
            return "response_rejected";
        }
        seen += 1;
    }
    match (seen, verifier.finish()) {
        (0, _) => "verified",
        (_, Ok(())) => "response_verified",
        (_, Err(_)) => "response_unfinished",
    }
}

/// The `notify` target: a NOTIFY accepted or refused; the answer must be a response with the
/// request's ID (signed with the request's key when it was signed, and verifying).
pub fn notify(data: &[u8]) -> &'static str {
    let keys = [key()];
    match notify::receive(data, &keys, FUZZ_NOW) {
        Ok(incoming) => {
            let out = notify::respond(&incoming, rcode::NOERROR, FUZZ_NOW);
            let m = message::parse(&out).expect("our NOTIFY answer parses");
            assert_eq!(m.id, incoming.notify.id);
            assert!(m.flags & FLAG_QR != 0 && m.opcode() == opcode::NOTIFY);
            assert_eq!(m.questions.len(), 1);
            assert_eq!(m.questions[0].name, incoming.notify.zone);
            match &incoming.signed {
                Some(s) => {
                    let mut v = ResponseVerifier::new(s.key, &s.mac);
                    v.verify(&m, FUZZ_NOW)
                        .expect("our signed NOTIFY answer verifies");
                    "accepted_signed"
                }
                None => "accepted",
            }
        }
        Err(refused) => {
            if let Some(out) = refused.response {
                let m = message::parse(&out).expect("our refusal parses");
                assert!(m.flags & FLAG_QR != 0, "refusal is not a response");
                assert_eq!(out[..2], data[..2], "refusal has another ID");
                return "refused_answered";
            }
            "refused"
        }
    }
}
