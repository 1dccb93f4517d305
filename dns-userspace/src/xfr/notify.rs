//! NOTIFY (RFC 1996): reading a NOTIFY from a primary (with its TSIG verified) and answering
//! it, and sending one to a downstream secondary over UDP with retransmissions.
//!
//! A NOTIFY is opcode 4 with one question (the zone, type SOA, class IN) and, optionally, the
//! zone's new SOA in the answer section (§3.7). The answer echoes ID, opcode and question with
//! QR and AA set. Which zones and keys are accepted is the caller's decision (`respond` takes
//! the RCODE); TSIG failures are answered NOTAUTH with the TSIG error (RFC 8945 §5.2).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::error::{Exchange, Kind, XfrError};
use super::message::{self, opcode, rcode, Builder, FLAG_AA, FLAG_QR};
use super::soa::Soa;
use super::tsig::{self, Key, ResponseSigner, ResponseVerifier, Signed};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype, Record};

/// A NOTIFY received from a primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    pub id: u16,
    pub zone: Name,
    /// The serial of the SOA in the answer section, when one was sent.
    pub serial: Option<u32>,
}

/// A NOTIFY that passed the checks, with the key that signed it.
#[derive(Clone, Debug)]
pub struct Incoming<'k> {
    pub notify: Notify,
    /// `None`: unsigned (the caller decides whether that is acceptable).
    pub signed: Option<Signed<'k>>,
}

/// A NOTIFY that was refused: why, and the answer to send back (none for messages too broken
/// to answer).
#[derive(Debug)]
pub struct Refused {
    pub reason: String,
    pub response: Option<Vec<u8>>,
}

/// An answer echoing `id` and the question (`zone` SOA IN), with `rc`.
fn answer(id: u16, zone: Option<&Name>, rc: u16) -> Vec<u8> {
    let b = Builder::new(id, opcode::NOTIFY, FLAG_QR | FLAG_AA | (rc & 0xf));
    match zone {
        Some(z) => b.question(z, rtype::SOA, class::IN).finish(),
        None => b.finish(),
    }
}

/// Reads and checks a NOTIFY; its TSIG, when present, must verify with one of `keys`.
pub fn receive<'k>(wire: &[u8], keys: &'k [Key], now: u64) -> Result<Incoming<'k>, Refused> {
    let msg = message::parse(wire).map_err(|e| Refused {
        reason: e.to_string(),
        // Answer FORMERR when at least the header can be read and it is a request.
        response: (wire.len() >= 12 && wire[2] & 0x80 == 0)
            .then(|| answer(u16::from_be_bytes([wire[0], wire[1]]), None, rcode::FORMERR)),
    })?;
    if msg.is_response() {
        return Err(Refused {
            reason: "a response, not a NOTIFY request".into(),
            response: None,
        });
    }
    let formerr = |reason: String, zone: Option<&Name>| Refused {
        reason,
        response: Some(answer(msg.id, zone, rcode::FORMERR)),
    };
    if msg.opcode() != opcode::NOTIFY {
        return Err(formerr(
            format!("opcode {}, not NOTIFY", msg.opcode()),
            None,
        ));
    }
    let [q] = msg.questions.as_slice() else {
        return Err(formerr(
            format!("{} questions, not one", msg.questions.len()),
            None,
        ));
    };
    if q.qtype != rtype::SOA || q.qclass != class::IN {
        return Err(formerr(
            format!(
                "NOTIFY for type {} class {}, not SOA IN",
                rtype::to_string(q.qtype),
                q.qclass
            ),
            None,
        ));
    }
    let zone = q.name.clone();
    let signed = tsig::verify_request(&msg, keys, now).map_err(|rej| {
        let mut response = answer(msg.id, Some(&zone), rcode::NOTAUTH);
        tsig::sign_rejection(&mut response, &rej, now);
        Refused {
            reason: format!("NOTIFY for {zone}: {}", rej.error),
            response: Some(response),
        }
    })?;
    let serial = msg
        .answers
        .iter()
        .find(|r| r.rtype == rtype::SOA && r.owner == zone)
        .and_then(Soa::from_record)
        .map(|s| s.serial);
    Ok(Incoming {
        notify: Notify {
            id: msg.id,
            zone,
            serial,
        },
        signed,
    })
}

/// The answer to an accepted NOTIFY: `rc` is NOERROR, or NOTAUTH/REFUSED for a zone or key the
/// caller does not accept. Signed with the request's key when it was signed.
pub fn respond(incoming: &Incoming<'_>, rc: u16, now: u64) -> Vec<u8> {
    let mut out = answer(incoming.notify.id, Some(&incoming.notify.zone), rc);
    if let Some(s) = &incoming.signed {
        ResponseSigner::new(s.key, &s.mac).next(&mut out, true, now);
    }
    out
}

/// A NOTIFY request for `zone`, with its SOA in the answer section when given.
pub fn request(id: u16, zone: &Name, soa: Option<&Record>) -> Vec<u8> {
    let mut b = Builder::new(id, opcode::NOTIFY, FLAG_AA).question(zone, rtype::SOA, class::IN);
    if let Some(s) = soa {
        b = b.record(1, s);
    }
    b.finish()
}

/// Sends a NOTIFY for `zone` to `to` over UDP, signed with `key` when given, and waits for a
/// matching (and, with a key, correctly signed) NOERROR answer; `wait` per attempt.
pub fn send(
    to: SocketAddr,
    zone: &Name,
    soa: Option<&Record>,
    key: Option<&Key>,
    wait: Duration,
    attempts: u32,
) -> Result<(), XfrError> {
    let error = |kind| XfrError {
        exchange: Exchange::Notify,
        zone: zone.clone(),
        peer: to,
        kind,
    };
    let io = |what| move |e| error(Kind::Io { what, source: e });
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let sock = UdpSocket::bind(any).map_err(io("bind"))?;
    sock.connect(to).map_err(io("connect"))?;
    sock.set_read_timeout(Some(wait)).map_err(io("socket"))?;
    let id = super::client::random_id();
    let mut req = request(id, zone, soa);
    let mac = key.map(|k| tsig::sign_request(&mut req, k, super::client::unix_now()));
    let mut buf = vec![0u8; 65535];
    for _ in 0..attempts.max(1) {
        sock.send(&req).map_err(io("send"))?;
        // Read until our answer or the timeout: stray datagrams are skipped.
        loop {
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(io("receive")(e)),
            };
            let Ok(msg) = message::parse(&buf[..n]) else {
                continue;
            };
            if msg.id != id || !msg.is_response() || msg.opcode() != opcode::NOTIFY {
                continue;
            }
            if let (Some(k), Some(mac)) = (key, &mac) {
                let mut v = ResponseVerifier::new(k, mac);
                let checked = v
                    .verify(&msg, super::client::unix_now())
                    .and_then(|()| v.finish());
                if let Err(e) = checked {
                    if msg.tsig.is_none() && msg.rcode() != rcode::NOERROR {
                        return Err(error(Kind::Rcode(msg.rcode())));
                    }
                    return Err(error(e.into()));
                }
            }
            if msg.rcode() != rcode::NOERROR {
                return Err(error(Kind::Rcode(msg.rcode())));
            }
            return Ok(());
        }
    }
    Err(error(Kind::Timeout {
        what: "answer to NOTIFY",
        secs: wait.as_secs().max(1) * u64::from(attempts.max(1)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::tsig::{Algorithm, TsigError};

    fn zone() -> Name {
        Name::parse("example.", None).unwrap()
    }

    fn key(secret: &[u8]) -> Key {
        Key::new(
            Name::parse("k.example.", None).unwrap(),
            Algorithm::HmacSha256,
            secret.to_vec(),
        )
    }

    #[test]
    fn signed_notify_round_trip() {
        let soa = crate::xfr::axfr::tests::soa(42);
        let k = key(b"secret");
        let mut req = request(77, &zone(), Some(&soa));
        let mac = tsig::sign_request(&mut req, &k, 1000);
        let keys = [k.clone()];
        let inc = receive(&req, &keys, 1001).unwrap();
        assert_eq!(inc.notify.serial, Some(42));
        assert_eq!(inc.signed.as_ref().unwrap().key.name, k.name);
        let resp = respond(&inc, rcode::NOERROR, 1001);
        let m = message::parse(&resp).unwrap();
        assert_eq!((m.id, m.opcode(), m.rcode()), (77, opcode::NOTIFY, 0));
        assert!(m.is_response() && m.flags & FLAG_AA != 0);
        assert_eq!(m.questions[0].name, zone());
        let mut v = ResponseVerifier::new(&k, &mac);
        v.verify(&m, 1001).unwrap();
        v.finish().unwrap();
    }

    #[test]
    fn bad_signatures_and_malformed_requests_are_answered() {
        let mut req = request(5, &zone(), None);
        tsig::sign_request(&mut req, &key(b"secret"), 1000);
        let keys = [key(b"other")];
        let r = receive(&req, &keys, 1000).unwrap_err();
        assert!(r.reason.contains("BADSIG"), "{}", r.reason);
        let m = message::parse(r.response.as_ref().unwrap()).unwrap();
        assert_eq!(m.rcode(), rcode::NOTAUTH);
        let t = tsig::Tsig::from_record(&m.tsig.unwrap().0).unwrap();
        assert_eq!(t.error, rcode::BADSIG);
        // The sender sees the rejection.
        let mut v = ResponseVerifier::new(&keys[0], &[]);
        assert_eq!(
            v.verify(&message::parse(r.response.as_ref().unwrap()).unwrap(), 1000),
            Err(TsigError::Rejected("BADSIG".into()))
        );

        let q = message::query(9, &zone(), rtype::SOA, None);
        let r = receive(&q, &keys, 1000).unwrap_err();
        assert!(r.reason.contains("not NOTIFY"), "{}", r.reason);
        let mut wrong = request(9, &zone(), None);
        let at = wrong.len() - 3;
        wrong[at] = rtype::A as u8;
        let r = receive(&wrong, &keys, 1000).unwrap_err();
        assert!(r.reason.contains("not SOA IN"), "{}", r.reason);
        assert_eq!(
            message::parse(&r.response.unwrap()).unwrap().rcode(),
            rcode::FORMERR
        );
        assert!(receive(&[1, 2, 3], &keys, 1000)
            .unwrap_err()
            .response
            .is_none());
        // Unsigned NOTIFY: accepted here; the caller's policy decides.
        let inc = receive(&request(3, &zone(), None), &keys, 1000).unwrap();
        assert!(inc.signed.is_none() && inc.notify.serial.is_none());
    }
}
