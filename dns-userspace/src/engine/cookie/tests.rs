//! The cookie rules: RFC 9018 Appendix A's vectors exactly, and every case of RFC 7873 §5.2
//! through the engine.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::engine::{Catalog, Engine, EngineConfig, Transport};
use crate::wire::name::Name;
use crate::zone::{Zone, ZoneSource};

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn secret(s: &str) -> Secret {
    parse_secret(s).unwrap()
}

const SECRET_1: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const SECRET_2: &str = "445536bcd2513298075a5d379663c962";

/// A clock the test sets.
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn client(s: &str) -> [u8; 8] {
    hex(s).try_into().unwrap()
}

#[test]
fn rfc9018_appendix_a_vectors() {
    let v4 = |a: &str| a.parse::<IpAddr>().unwrap();
    // A.1: learning a new server cookie.
    let a1 = make(
        &secret(SECRET_1),
        &client("2464c4abcf10c957"),
        v4("198.51.100.100"),
        1559731985,
    );
    assert_eq!(
        a1[..],
        hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")[..]
    );
    // A.2: the same client, 40 minutes later, sends it back and gets a fresh one.
    let cookies = Cookies {
        secret: secret(SECRET_1),
        previous: None,
        require: false,
        clock: Arc::new(TestClock(AtomicU64::new(0))),
    };
    let (verdict, reply) = cookies.check(&a1, v4("198.51.100.100"), 1559734385);
    assert_eq!(verdict, Verdict::Valid);
    assert_eq!(
        reply.unwrap()[..],
        hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")[..]
    );
    // A.3: another resolver.
    let a3 = make(
        &secret(SECRET_1),
        &client("fc93fc62807ddb86"),
        v4("203.0.113.203"),
        1559734700,
    );
    assert_eq!(
        a3[..],
        hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")[..]
    );
    // A.4: IPv6, after the secret rolled over.
    let a4 = make(
        &secret(SECRET_2),
        &client("22681ab97d52c298"),
        v4("2001:db8:220:1:59de:d0f4:8769:82b8"),
        1559741961,
    );
    assert_eq!(
        a4[..],
        hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a")[..]
    );
}

#[test]
fn rollover_accepts_the_previous_secret_and_answers_with_the_current() {
    let addr: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
    let old = make(&secret(SECRET_1), &client("22681ab97d52c298"), addr, 1000);
    let rolled = Cookies {
        secret: secret(SECRET_2),
        previous: Some(secret(SECRET_1)),
        require: false,
        clock: Arc::new(TestClock(AtomicU64::new(0))),
    };
    let (v, reply) = rolled.check(&old, addr, 1100);
    assert_eq!(v, Verdict::Valid);
    assert_eq!(
        reply.unwrap(),
        make(&secret(SECRET_2), &client("22681ab97d52c298"), addr, 1100)
    );
    let forgotten = Cookies {
        previous: None,
        ..rolled
    };
    assert_eq!(forgotten.check(&old, addr, 1100).0, Verdict::Invalid);
}

#[test]
fn the_validity_window_is_an_hour_back_and_five_minutes_ahead() {
    let addr: IpAddr = "198.18.0.2".parse().unwrap();
    let c = Cookies {
        secret: secret(SECRET_1),
        previous: None,
        require: false,
        clock: Arc::new(TestClock(AtomicU64::new(0))),
    };
    let made = make(&c.secret, &client("0102030405060708"), addr, 100_000);
    for (now, valid) in [
        (100_000, true),
        (103_600, true),
        (103_601, false),
        (99_700, true),
        (99_699, false),
    ] {
        assert_eq!(c.check(&made, addr, now).0.is_valid(), valid, "at {now}");
    }
    // Across the 32-bit wrap (serial arithmetic).
    let wrapped = make(&c.secret, &client("0102030405060708"), addr, u32::MAX - 10);
    assert!(c.check(&wrapped, addr, 20).0.is_valid());
    // Bound to the address, and to every octet.
    assert_eq!(
        c.check(&made, "198.18.0.3".parse().unwrap(), 100_000).0,
        Verdict::Invalid
    );
    for i in 0..made.len() {
        let mut m = made;
        m[i] ^= 1;
        assert_ne!(c.check(&m, addr, 100_000).0, Verdict::Valid, "octet {i}");
    }
    // IPv4 from a dual-stack socket is the IPv4 address.
    let mapped: IpAddr = "::ffff:198.18.0.2".parse().unwrap();
    assert!(c.check(&made, mapped, 100_000).0.is_valid());
}

#[test]
fn secrets_are_32_hex_digits() {
    assert_eq!(secret(SECRET_1)[0], 0xe5);
    assert!(parse_secret("e5e973e5").is_err());
    assert!(parse_secret("zz").is_err());
    assert_ne!(random_secret().unwrap(), random_secret().unwrap());
}

// Through the engine.

const ZONE: &str = "$ORIGIN example.\n$TTL 3600\n@ SOA ns1 host 1 7200 3600 1209600 300\n\
                    @ NS ns1\nns1 A 198.18.0.1\nwww A 198.18.0.80\n";
const NOW: u64 = 1_700_000_000;

fn engine(require: bool, nsid: bool) -> Engine {
    let origin = Name::parse("example.", None).unwrap();
    let parsed = crate::zonefile::parse_str(ZONE, &origin, "test.zone").unwrap();
    let src = ZoneSource {
        name: "test.zone",
        locations: None,
    };
    let zone = Zone::build(origin, parsed.records, &src).unwrap().0;
    let mut c = Catalog::new();
    c.insert(Arc::new(zone));
    Engine::new(
        c,
        EngineConfig {
            nsid: nsid.then(|| b"node-1".to_vec()),
            cookies: Some(Cookies {
                secret: secret(SECRET_2),
                previous: Some(secret(SECRET_1)),
                require,
                clock: Arc::new(TestClock(AtomicU64::new(NOW))),
            }),
            ..Default::default()
        },
    )
}

/// `www.example. A` with EDNS and these options.
fn query(options: &[(u16, &[u8])]) -> Vec<u8> {
    query_for(b"\x03www\x07example\x00", options)
}

/// A query for the name in wire form, type A, with EDNS and these options.
fn query_for(name: &[u8], options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m
}

const CLIENT: &str = "198.18.0.2";

fn ask(e: &Engine, q: &[u8], transport: Transport) -> crate::engine::Response {
    e.respond_to(q, transport, Some(CLIENT.parse().unwrap()))
        .unwrap()
}

/// Header RCODE, OPT extended RCODE, and the OPT record's options as (code, data).
fn opt_of(r: &crate::engine::Response) -> (u16, u8, Vec<(u16, Vec<u8>)>) {
    let b = r.message.bytes();
    let opt = r.message.opt().expect("an OPT record");
    let mut options = Vec::new();
    let mut p = 11;
    while p < opt.len() {
        let code = u16::from_be_bytes([opt[p], opt[p + 1]]);
        let len = u16::from_be_bytes([opt[p + 2], opt[p + 3]]) as usize;
        options.push((code, opt[p + 4..p + 4 + len].to_vec()));
        p += 4 + len;
    }
    assert_eq!(p, opt.len());
    (u16::from_be_bytes([b[2], b[3]]) & 0xf, opt[5], options)
}

fn fresh(client_cookie: &str) -> Vec<u8> {
    make(
        &secret(SECRET_2),
        &client(client_cookie),
        CLIENT.parse().unwrap(),
        NOW as u32,
    )
    .to_vec()
}

#[test]
fn malformed_cookies_get_formerr_without_a_cookie() {
    let e = engine(false, false);
    for len in [0, 1, 7, 9, 12, 15, 41, 48] {
        let r = ask(&e, &query(&[(10, &vec![7u8; len])]), Transport::Udp);
        assert_eq!(opt_of(&r), (1, 0, vec![]), "length {len}");
        assert_eq!(r.cookie, Verdict::Malformed);
    }
}

#[test]
fn a_client_cookie_alone_gets_an_answer_with_a_fresh_server_cookie() {
    let e = engine(false, false);
    let r = ask(
        &e,
        &query(&[(10, &hex("0102030405060708"))]),
        Transport::Udp,
    );
    assert_eq!(r.cookie, Verdict::ClientOnly);
    assert_eq!(opt_of(&r), (0, 0, vec![(10, fresh("0102030405060708"))]));
    assert_eq!(r.message.counts()[0], 1, "the answer itself");
}

#[test]
fn valid_invalid_and_foreign_server_cookies_all_get_a_fresh_one() {
    let e = engine(false, false);
    let addr = CLIENT.parse().unwrap();
    let cc = client("a1a2a3a4a5a6a7a8");
    let cases: Vec<(Vec<u8>, Verdict)> = vec![
        // Made a minute ago with the current secret, and with the previous one.
        (
            make(&secret(SECRET_2), &cc, addr, NOW as u32 - 60).to_vec(),
            Verdict::Valid,
        ),
        (
            make(&secret(SECRET_1), &cc, addr, NOW as u32 - 60).to_vec(),
            Verdict::Valid,
        ),
        // Too old, or with a secret we never had.
        (
            make(&secret(SECRET_2), &cc, addr, NOW as u32 - 3601).to_vec(),
            Verdict::Invalid,
        ),
        (
            make(&[9; 16], &cc, addr, NOW as u32).to_vec(),
            Verdict::Invalid,
        ),
        // Another server's cookie: 8 and 32 octets of anything.
        ([&cc[..], &[5; 8]].concat(), Verdict::Invalid),
        ([&cc[..], &[5; 32]].concat(), Verdict::Invalid),
    ];
    for (cookie, verdict) in cases {
        let r = ask(&e, &query(&[(10, &cookie)]), Transport::Udp);
        assert_eq!(r.cookie, verdict, "{cookie:02x?}");
        assert_eq!(opt_of(&r), (0, 0, vec![(10, fresh("a1a2a3a4a5a6a7a8"))]));
    }
}

#[test]
fn require_cookie_gives_badcookie_over_udp_only_and_only_without_a_valid_cookie() {
    let e = engine(true, false);
    let addr = CLIENT.parse().unwrap();
    let cc = "b1b2b3b4b5b6b7b8";
    let only = query(&[(10, &hex(cc))]);
    let r = ask(&e, &only, Transport::Udp);
    // BADCOOKIE = 23: 7 in the header, 1 in the OPT, with a fresh cookie and the question.
    assert_eq!(opt_of(&r), (7, 1, vec![(10, fresh(cc))]));
    assert_eq!(r.message.question().len(), 17);
    assert_eq!(r.message.counts(), [0, 0, 0]);
    // Over TCP the same query is answered.
    assert_eq!(opt_of(&ask(&e, &only, Transport::Tcp)).0, 0);
    // With the cookie just given back, it is answered over UDP too.
    let back = query(&[(10, &fresh(cc))]);
    let r = ask(&e, &back, Transport::Udp);
    assert!(r.cookie.is_valid());
    assert_eq!(opt_of(&r), (0, 0, vec![(10, fresh(cc))]));
    // An invalid one is BADCOOKIE again.
    let stale = make(&secret(SECRET_2), &client(cc), addr, NOW as u32 - 4000);
    assert_eq!(
        opt_of(&ask(&e, &query(&[(10, &stale)]), Transport::Udp)).1,
        1
    );
    // Queries without a COOKIE are answered as ever.
    assert_eq!(
        opt_of(&ask(&e, &query(&[]), Transport::Udp)),
        (0, 0, vec![])
    );
    // Malformed stays FORMERR.
    assert_eq!(
        opt_of(&ask(&e, &query(&[(10, &[1; 9])]), Transport::Udp)).0,
        1
    );
}

#[test]
fn nsid_comes_before_cookie_and_other_options_are_ignored() {
    let e = engine(false, true);
    let cc = "c1c2c3c4c5c6c7c8";
    let q = query(&[
        (12, &[0; 16]),
        (10, &hex(cc)),
        (8, &[0, 1, 24, 0, 198, 18, 0]),
        (3, &[]),
        (65001, b"x"),
    ]);
    let r = ask(&e, &q, Transport::Udp);
    assert_eq!(
        opt_of(&r),
        (0, 0, vec![(3, b"node-1".to_vec()), (10, fresh(cc))])
    );
    // The answer's size limit counts the options: the body is the one without them.
    let plain = e.respond(&query(&[]), Transport::Udp).unwrap();
    assert_eq!(r.message.body(), plain.message.body());
}

#[test]
fn without_a_client_address_or_cookie_support_cookies_are_ignored() {
    let e = engine(true, false);
    let q = query(&[(10, &hex("0102030405060708"))]);
    let r = e.respond(&q, Transport::Udp).unwrap();
    assert_eq!((r.cookie, opt_of(&r)), (Verdict::Absent, (0, 0, vec![])));
    let mut plain = engine(true, false);
    plain.config.cookies = None;
    let r = ask(&plain, &q, Transport::Udp);
    assert_eq!((r.cookie, opt_of(&r)), (Verdict::Absent, (0, 0, vec![])));
}

#[test]
fn refused_and_badvers_answers_carry_the_cookie_too() {
    let e = engine(false, false);
    let cc = "d1d2d3d4d5d6d7d8";
    let q = query_for(b"\x03www\x05other\x00", &[(10, &hex(cc))]);
    let r = ask(&e, &q, Transport::Udp);
    assert_eq!(opt_of(&r), (5, 0, vec![(10, fresh(cc))]));
    let mut v1 = query(&[(10, &hex(cc))]);
    v1[12 + 17 + 6] = 1; // EDNS version 1
    let r = ask(&e, &v1, Transport::Udp);
    assert_eq!(opt_of(&r), (0, 1, vec![(10, fresh(cc))]));
}
