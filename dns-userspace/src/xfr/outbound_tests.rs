//! Outgoing transfers read back by this crate's own transfer client code (message parser,
//! TSIG verifier, AXFR and IXFR readers): a signed fixture zone made large enough for several
//! messages, IXFR diffs from the journal, up-to-date and AXFR-style answers, UDP, and every
//! refusal with the RCODE and TSIG error it must carry; mutated requests never panic.

use super::*;
use crate::xfr::acl::{Prefix, Rule};
use crate::xfr::axfr::{AxfrReader, Limits};
use crate::xfr::ixfr::{apply, Ixfr, IxfrReader};
use crate::xfr::journal;
use crate::xfr::message::{Builder, FLAG_AA, FLAG_QR};
use crate::xfr::tsig::{Algorithm, ResponseVerifier, Tsig};

const ZONES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zones/");
const NOW: u64 = 1_800_000_000;

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn apex() -> Name {
    name("knot.example.")
}

fn key(secret: &[u8]) -> Key {
    Key::new(name("xfr.key."), Algorithm::HmacSha256, secret.to_vec())
}

fn other_key() -> Key {
    Key::new(name("other.key."), Algorithm::HmacSha256, b"other".to_vec())
}

const DOWNSTREAM: &str = "198.18.0.1";

fn peer(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The signed fixture with `hosts` more names (A and TXT each) at `serial`.
fn version(serial: u32, hosts: usize) -> Vec<Record> {
    let path = format!("{ZONES}signed/knot.example.zone");
    let mut text = std::fs::read_to_string(path).unwrap();
    for i in 0..hosts {
        text.push_str(&format!(
            "h{i}.knot.example. 300 IN A 198.18.{}.{}\nh{i}.knot.example. 300 IN TXT \"host {i}\"\n",
            i / 250,
            i % 250 + 1
        ));
    }
    let mut recs = crate::zonefile::parse_str(&text, &apex(), "t")
        .unwrap()
        .records;
    let soa = recs.iter_mut().find(|r| is_apex_soa(r, &apex())).unwrap();
    let n = soa.rdata.len();
    soa.rdata[n - 20..n - 16].copy_from_slice(&serial.to_be_bytes());
    recs
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by(|a, b| {
        (&a.owner, a.rtype, &a.rdata, a.ttl).cmp(&(&b.owner, b.rtype, &b.rdata, b.ttl))
    });
    v
}

/// The ACL of the tests: the downstream with `xfr.key.`, and 198.18.0.9 unsigned.
fn acl() -> Arc<Acl> {
    Arc::new(Acl {
        rules: vec![
            Rule {
                addresses: vec![DOWNSTREAM.parse::<Prefix>().unwrap()],
                keys: vec![name("xfr.key.")],
                deny: false,
            },
            Rule {
                addresses: vec!["198.18.0.9".parse().unwrap()],
                keys: vec![],
                deny: false,
            },
        ],
    })
}

/// Versions 1 (3000 hosts), 2 (h7 gone) and 3 (ten hosts more), the journal holding both diffs, served at 3.
struct Setup {
    versions: Vec<Vec<Record>>,
    offer: Offer,
}

fn setup() -> Setup {
    let v1 = version(1, 3000);
    let mut v2 = version(2, 3000);
    v2.retain(|r| r.owner != name("h7.knot.example."));
    let mut v3 = version(3, 3010);
    v3.retain(|r| r.owner != name("h7.knot.example."));
    let d1 = journal::diff(&apex(), &v1, &v2).unwrap();
    let d2 = journal::diff(&apex(), &v2, &v3).unwrap();
    let served = Served::new(apex(), v3.clone().into(), vec![d1.into(), d2.into()]).unwrap();
    assert_eq!(served.history.len(), 2);
    Setup {
        versions: vec![v1, v2, v3],
        offer: Offer {
            served,
            acl: acl(),
            expire: Some(7200),
        },
    }
}

/// A request for `qtype` with `authority`, EDNS (asking for EXPIRE) when `edns`, signed with
/// `key`; returns it and the request MAC.
fn request(
    qtype: u16,
    authority: Option<&Record>,
    edns: bool,
    key: Option<&Key>,
) -> (Vec<u8>, Vec<u8>) {
    let mut req = if edns {
        message::query(0x1234, &apex(), qtype, authority)
    } else {
        let mut b = Builder::new(0x1234, opcode::QUERY, 0).question(&apex(), qtype, class::IN);
        if let Some(r) = authority {
            b = b.record(2, r);
        }
        b.finish()
    };
    let mac = key
        .map(|k| tsig::sign_request(&mut req, k, NOW))
        .unwrap_or_default();
    (req, mac)
}

fn ask(s: &Setup, req: &[u8], from: &str, transport: Transport, keys: &[Key]) -> Reply {
    let offer = s.offer.clone();
    respond(req, peer(from), transport, keys, NOW, move |z| {
        (*z == apex()).then_some(offer)
    })
}

/// `ask` from the downstream over TCP, with `k` the only key.
fn tcp(s: &Setup, req: &[u8], k: &Key) -> Reply {
    ask(s, req, DOWNSTREAM, Transport::Tcp, std::slice::from_ref(k))
}

/// The apex SOA of a version.
fn soa_of(v: &[Record]) -> &Record {
    v.iter().find(|r| is_apex_soa(r, &apex())).unwrap()
}

/// Reads every message of `reply`, each verified with `key`, into `push` until it says the
/// response is complete; checks the header of each. Returns the messages' count and the
/// EXPIRE of the first.
fn read_all(
    reply: Reply,
    key: &Key,
    mac: &[u8],
    mut push: impl FnMut(Vec<Record>) -> bool,
) -> (usize, Option<u32>) {
    let mut v = ResponseVerifier::new(key, mac);
    let mut n = 0;
    let mut expire = None;
    let mut complete = false;
    for wire in reply.messages {
        assert!(wire.len() <= 65535);
        let m = message::parse(&wire).unwrap();
        v.verify(&m, NOW).unwrap();
        assert_eq!((m.id, m.rcode()), (0x1234, rcode::NOERROR));
        assert!(m.flags & FLAG_QR != 0 && m.flags & FLAG_AA != 0);
        assert_eq!(
            m.questions.len(),
            usize::from(n == 0),
            "question in the first only"
        );
        if n == 0 {
            expire = m.opt.as_ref().and_then(message::Opt::expire);
        }
        assert!(!complete, "messages after the closing SOA");
        complete = push(m.answers);
        n += 1;
    }
    v.finish().unwrap();
    assert!(complete);
    (n, expire)
}

#[test]
fn axfr_of_a_signed_zone_over_several_signed_messages() {
    let s = setup();
    let k = key(b"secret");
    let (req, mac) = request(rtype::AXFR, None, true, Some(&k));
    let reply = ask(
        &s,
        &req,
        DOWNSTREAM,
        Transport::Tcp,
        &[other_key(), k.clone()],
    );
    assert_eq!(reply.outcome, Outcome::Axfr { serial: 3 });
    assert_eq!(reply.key, Some(name("xfr.key.")));
    let mut reader = AxfrReader::new(apex(), Limits::default());
    let (n, expire) = read_all(reply, &k, &mac, |a| reader.push(a).unwrap());
    assert!(n >= 3, "{n} messages");
    assert_eq!(expire, Some(7200));
    let got = reader.finish().unwrap();
    assert_eq!(sorted(got), sorted(s.versions[2].clone()));
}

#[test]
fn ixfr_sends_the_journal_diffs_or_the_whole_zone() {
    let s = setup();
    let k = key(b"secret");
    for (from, diffs) in [(1usize, 2usize), (2, 1)] {
        let ours = &s.versions[from - 1];
        let soa = soa_of(ours);
        let (req, mac) = request(rtype::IXFR, Some(soa), false, Some(&k));
        let reply = tcp(&s, &req, &k);
        let want = Outcome::Ixfr {
            from: from as u32,
            to: 3,
            diffs,
        };
        assert_eq!(reply.outcome, want);
        let mut reader = IxfrReader::new(apex(), from as u32, Limits::default());
        let (n, expire) = read_all(reply, &k, &mac, |a| reader.push(a).unwrap());
        assert_eq!((n, expire), (1, None), "small diffs, no EDNS");
        let Ixfr::Diffs(d) = reader.finish().unwrap() else {
            panic!("not diffs")
        };
        assert_eq!(d.len(), diffs);
        assert_eq!(
            sorted(apply(ours, &d).unwrap()),
            sorted(s.versions[2].clone())
        );
    }
    // Up to date, or newer than us: a single SOA.
    for theirs in [3u32, 4] {
        let v = version(theirs, 0);
        let soa = soa_of(&v);
        let (req, mac) = request(rtype::IXFR, Some(soa), true, Some(&k));
        let reply = tcp(&s, &req, &k);
        assert_eq!(reply.outcome, Outcome::UpToDate { theirs, serial: 3 });
        let mut reader = IxfrReader::new(apex(), theirs, Limits::default());
        read_all(reply, &k, &mac, |a| reader.push(a).unwrap());
        assert!(matches!(reader.finish().unwrap(), Ixfr::UpToDate(_)));
    }
    // Older than the journal: the whole zone.
    let v = version(0, 0);
    let soa = soa_of(&v);
    let (req, mac) = request(rtype::IXFR, Some(soa), true, Some(&k));
    let reply = tcp(&s, &req, &k);
    assert_eq!(reply.outcome, Outcome::IxfrFull { from: 0, serial: 3 });
    let mut reader = IxfrReader::new(apex(), 0, Limits::default());
    read_all(reply, &k, &mac, |a| reader.push(a).unwrap());
    let Ixfr::Full(all) = reader.finish().unwrap() else {
        panic!("not full")
    };
    assert_eq!(sorted(all), sorted(s.versions[2].clone()));
}

#[test]
fn ixfr_over_udp_fits_or_sends_to_tcp() {
    let s = setup();
    let soa2 = soa_of(&s.versions[1]);
    // Unsigned, from the address the ACL lets in without a key.
    let (req, _) = request(rtype::IXFR, Some(soa2), true, None);
    let reply = ask(&s, &req, "198.18.0.9", Transport::Udp, &[]);
    assert!(matches!(reply.outcome, Outcome::Ixfr { diffs: 1, .. }));
    let msgs: Vec<Vec<u8>> = reply.messages.collect();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].len() <= 1232);
    let mut reader = IxfrReader::new(apex(), 2, Limits::default());
    assert!(reader
        .push(message::parse(&msgs[0]).unwrap().answers)
        .unwrap());
    // From serial 1, six SOAs and 24 records: more than 512 octets without EDNS.
    let soa1 = soa_of(&s.versions[0]);
    let (req, _) = request(rtype::IXFR, Some(soa1), false, None);
    let reply = ask(&s, &req, "198.18.0.9", Transport::Udp, &[]);
    assert_eq!(reply.outcome, Outcome::UseTcp { from: 1, serial: 3 });
    let msgs: Vec<Vec<u8>> = reply.messages.collect();
    let m = message::parse(&msgs[0]).unwrap();
    assert_eq!(m.answers, vec![s.offer.served.soa.clone()]);
    assert!(msgs[0].len() <= 512);
    // AXFR over UDP: FORMERR.
    let (req, _) = request(rtype::AXFR, None, false, None);
    let reply = ask(&s, &req, "198.18.0.9", Transport::Udp, &[]);
    assert!(matches!(
        reply.outcome,
        Outcome::Refused {
            rcode: rcode::FORMERR,
            ..
        }
    ));
}

/// The single message of a refusal, its RCODE and TSIG error (if it has a TSIG).
fn refusal(reply: Reply) -> (u16, Option<Tsig>, Vec<u8>) {
    let msgs: Vec<Vec<u8>> = reply.messages.collect();
    assert_eq!(msgs.len(), 1);
    let m = message::parse(&msgs[0]).unwrap();
    assert!(m.answers.is_empty());
    assert!(
        m.flags & FLAG_QR != 0 && m.flags & FLAG_AA == 0,
        "an error answer"
    );
    let t = m.tsig.as_ref().map(|(r, _)| Tsig::from_record(r).unwrap());
    (m.rcode(), t, msgs[0].clone())
}

#[test]
fn refusals_carry_the_right_rcode_and_tsig_error() {
    let s = setup();
    let k = key(b"secret");
    let keys = [k.clone(), other_key()];
    // A wrong secret: NOTAUTH, BADSIG, unsigned.
    let (req, _) = request(rtype::AXFR, None, true, Some(&key(b"wrong")));
    let reply = ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys);
    assert!(
        matches!(&reply.outcome, Outcome::Refused { rcode: rcode::NOTAUTH, reason } if reason.contains("BADSIG"))
    );
    let (rc, t, _) = refusal(reply);
    let t = t.unwrap();
    assert_eq!(
        (rc, t.error, t.mac.len()),
        (rcode::NOTAUTH, rcode::BADSIG, 0)
    );
    // A key we do not know: BADKEY.
    let stranger = Key::new(name("nobody."), Algorithm::HmacSha256, b"x".to_vec());
    let (req, _) = request(rtype::AXFR, None, true, Some(&stranger));
    let (rc, t, _) = refusal(ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys));
    assert_eq!((rc, t.unwrap().error), (rcode::NOTAUTH, rcode::BADKEY));
    // A clock too far off: BADTIME, signed.
    let mut req = message::query(0x1234, &apex(), rtype::AXFR, None);
    let mac = tsig::sign_request(&mut req, &k, NOW - 1000);
    let reply = ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys);
    let (rc, t, wire) = refusal(reply);
    assert_eq!((rc, t.unwrap().error), (rcode::NOTAUTH, rcode::BADTIME));
    let mut v = ResponseVerifier::new(&k, &mac);
    assert!(
        v.verify(&message::parse(&wire).unwrap(), NOW).is_err(),
        "the verifier reports it"
    );

    // A good key the ACL does not name: REFUSED, signed with that key.
    let (req, mac) = request(rtype::AXFR, None, true, Some(&other_key()));
    let reply = ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys);
    assert!(
        matches!(&reply.outcome, Outcome::Refused { rcode: rcode::REFUSED, reason } if reason.contains("other.key."))
    );
    let (rc, _, wire) = refusal(reply);
    assert_eq!(rc, rcode::REFUSED);
    let mut v = ResponseVerifier::new(&keys[1], &mac);
    v.verify(&message::parse(&wire).unwrap(), NOW).unwrap();
    v.finish().unwrap();
    // The right key from an address the ACL does not name; unsigned from the downstream.
    let (req, _) = request(rtype::AXFR, None, true, Some(&k));
    let (rc, _, _) = refusal(ask(&s, &req, "198.18.0.5", Transport::Tcp, &keys));
    assert_eq!(rc, rcode::REFUSED);
    let (req, _) = request(rtype::AXFR, None, true, None);
    let (rc, t, _) = refusal(ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys));
    assert_eq!((rc, t), (rcode::REFUSED, None));

    // A zone we do not serve: NOTAUTH (RFC 5936 §2.2.1).
    let mut req = message::query(0x1234, &name("other.example."), rtype::AXFR, None);
    tsig::sign_request(&mut req, &k, NOW);
    let (rc, t, _) = refusal(ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys));
    assert_eq!((rc, t.unwrap().error), (rcode::NOTAUTH, 0));
    // IXFR without an SOA in the authority section: FORMERR.
    let (req, _) = request(rtype::IXFR, None, true, Some(&k));
    let (rc, _, _) = refusal(ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys));
    assert_eq!(rc, rcode::FORMERR);
    // EDNS version 1: BADVERS.
    let mut req = message::query(0x1234, &apex(), rtype::AXFR, None);
    let opt_ttl = req.len() - 4 - 6; // OPT: … TTL(4) RDLEN(2) EXPIRE option(4).
    req[opt_ttl + 1] = 1;
    tsig::sign_request(&mut req, &k, NOW);
    let reply = ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys);
    assert_eq!(
        reply.outcome.to_string(),
        "refused (BADVERS): EDNS version 1"
    );
    let (rc, _, _) = refusal(reply);
    assert_eq!(rc, 16);
    // Not a transfer, a response, garbage.
    let (req, _) = request(rtype::SOA, None, true, None);
    assert!(!is_transfer(&req));
    assert!(matches!(
        ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys).outcome,
        Outcome::Refused {
            rcode: rcode::NOTIMP,
            ..
        }
    ));
    let (mut req, _) = request(rtype::AXFR, None, true, None);
    assert!(is_transfer(&req));
    req[2] |= 0x80;
    assert!(!is_transfer(&req));
    let r = ask(&s, &req, DOWNSTREAM, Transport::Tcp, &keys);
    assert!(matches!(r.outcome, Outcome::Dropped { .. }) && r.messages.count() == 0);
    let r = ask(&s, &[1, 2, 3], DOWNSTREAM, Transport::Tcp, &keys);
    assert!(matches!(r.outcome, Outcome::Dropped { .. }));
}

#[test]
fn a_record_too_large_for_a_message_ends_the_transfer_with_servfail() {
    let mut recs = version(5, 0);
    recs.push(Record {
        owner: name("big.knot.example."),
        rtype: 65280,
        class: class::IN,
        ttl: 60,
        rdata: vec![7; 65500],
    });
    let served = Served::new(apex(), recs.into(), vec![]).unwrap();
    let s = Setup {
        versions: vec![],
        offer: Offer {
            served,
            acl: acl(),
            expire: None,
        },
    };
    let k = key(b"secret");
    let (req, _) = request(rtype::AXFR, None, true, Some(&k));
    let reply = tcp(&s, &req, &k);
    let Messages::Stream(mut stream) = reply.messages else {
        panic!("a stream")
    };
    let mut last = Vec::new();
    for m in stream.by_ref().take(10) {
        last = m;
    }
    assert!(stream.is_done());
    assert!(
        stream.failure.as_ref().unwrap().contains("does not fit"),
        "{:?}",
        stream.failure
    );
    assert_eq!(message::parse(&last).unwrap().rcode(), rcode::SERVFAIL);
}

#[test]
fn mutated_requests_never_panic() {
    let s = setup();
    let k = key(b"secret");
    let soa = s.offer.served.soa.clone();
    let (base, _) = request(rtype::IXFR, Some(&soa), true, Some(&k));
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5_000 {
        let mut v = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % v.len();
            v[i] = next() as u8;
        }
        v.truncate(v.len() - (next() % 3) as usize);
        let transport = if next() % 2 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let reply = ask(&s, &v, DOWNSTREAM, transport, std::slice::from_ref(&k));
        // At most the first message of whatever it is.
        let _ = reply.messages.take(1).count();
    }
}

#[test]
fn served_keeps_only_the_chain_that_ends_at_its_serial() {
    let v: Vec<Vec<Record>> = (1..=4).map(|s| version(s, 1)).collect();
    let d = |a: usize, b: usize| Arc::new(journal::diff(&apex(), &v[a], &v[b]).unwrap());
    // 1→2, then a gap, 3→4, served at 4: only 3→4 counts.
    let served = Served::new(apex(), v[3].clone().into(), vec![d(0, 1), d(2, 3)]).unwrap();
    assert_eq!(served.history.len(), 1);
    assert!(served.chain_from(1).is_none() && served.chain_from(3).is_some());
    // Served at 3 with diffs to 4: none count.
    let served = Served::new(apex(), v[2].clone().into(), vec![d(2, 3)]).unwrap();
    assert!(served.history.is_empty());
    let e = Served::new(apex(), Vec::new().into(), vec![]).unwrap_err();
    assert!(e.contains("no SOA"), "{e}");
}
