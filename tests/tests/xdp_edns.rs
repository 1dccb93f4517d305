//! EDNS options in the XDP program, through BPF_PROG_TEST_RUN (root, no network):
//! - the differential corpus with DNS Cookies (client only, valid with the current and the
//!   previous secret, expired, from the future, foreign, bound to another address), NSID,
//!   padding, ECS, keepalive and unknown options in random order: every XDP answer is the
//!   engine's answer to the query from the frame's source address, byte for byte, and a query
//!   with options the engine only ignores or answers (cookies, NSID) is answered in XDP exactly
//!   when the same query without them is (unless the options make it too big);
//! - a malformed cookie gets the engine's FORMERR in XDP (`answered_formerr`);
//! - what the engine answers otherwise is passed, counted by reason: repeated cookies,
//!   EXPIRE, too many options (`pass_cookie`, `pass_edns_option`);
//! - `require-cookie`: a query without a valid server cookie gets the engine's BADCOOKIE in
//!   XDP (`answered_badcookie`, not `pass_cookie`), the cookie of that answer sent back is
//!   answered in XDP, also one made with the previous secret;
//! - an NSID longer than the program holds, and a program whose EDNS settings were never
//!   written, leave option queries to userspace.
//!
//! Sizes: `XDPDNS_EDNS_PACKETS` (default 6 000), `XDPDNS_EDNS_FUZZ_PACKETS` (default 200 000);
//! `cargo xtask xdp-check` runs long versions.
//!
//! The program and the engine see the same second: the test build takes it from the EDNS
//! settings (`EDNS_TEST_FIXED_TIME`), the engine from a fixed clock.

mod edns_rig;

use std::net::IpAddr;
use std::path::PathBuf;

use dns_common::counter;
use edns_rig::*;
use xdpdns::engine::cookie;
use xdpdns::engine::Transport;
use xdpdns_tests::client::Q;
use xdpdns_tests::frame;
use xdpdns_tests::oracle::{self, corpus_q, spec};
use xdpdns_tests::tld::{self, Rng};
use xdpdns_tests::zone_file;

/// What a query with these options must get in XDP.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Answered exactly when the query without them is (or passed as too big).
    AsPlain,
    /// Passed, counted so.
    Pass(u32),
    /// Answered in XDP (the engine's answer), counted so.
    Answered(u32),
}

/// A COOKIE option of one of the kinds a server sees, for a client at `addr`.
fn a_cookie(rng: &mut Rng, addr: IpAddr) -> Vec<u8> {
    let cc: [u8; 8] = bytes(rng, 8).try_into().unwrap();
    let back = |s: &str, t: u32| cookie::make(&secret(s), &cc, addr, t).to_vec();
    match rng.below(9) {
        0 | 1 => cc.to_vec(),
        2 => back(SECRET, NOW - rng.below(3600) as u32),
        3 => back(PREVIOUS, NOW - 100),
        4 => back(SECRET, NOW - 3601 - rng.below(100_000) as u32),
        5 => back(SECRET, NOW + rng.below(600) as u32),
        6 => {
            let other: IpAddr = "198.18.0.99".parse().unwrap();
            cookie::make(&secret(SECRET), &cc, other, NOW).to_vec()
        }
        _ => {
            let n = [8, 16, 24, 32][rng.below(4) as usize];
            [cc.to_vec(), bytes(rng, n)].concat()
        }
    }
}

/// Random EDNS options and what XDP must do with them.
fn options(rng: &mut Rng, addr: IpAddr) -> (Vec<(u16, Vec<u8>)>, Expect) {
    let mut o: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut cookie = false;
    for _ in 0..1 + rng.below(4) {
        let opt = match rng.below(8) {
            0..=2 if !cookie => {
                cookie = true;
                (10, a_cookie(rng, addr))
            }
            3 => (3, Vec::new()),
            4 => (12, vec![0; rng.below(64) as usize]),
            5 => (8, vec![0, 1, 24, 0, 198, 18, 0]),
            6 => (11, Vec::new()),
            _ => {
                let n = rng.below(10) as usize;
                (65001, bytes(rng, n))
            }
        };
        o.push(opt);
    }
    // One in eight: something the engine answers otherwise.
    let expect = match rng.below(32) {
        // Malformed: FORMERR in XDP; or repeated after a cookie: userspace answers.
        0 => {
            let n = [0, 7, 9, 15, 41][rng.below(5) as usize];
            o.push((10, bytes(rng, n)));
            if cookie {
                Expect::Pass(counter::PASS_COOKIE)
            } else {
                Expect::Answered(counter::ANSWERED_FORMERR)
            }
        }
        1 if !cookie => {
            o.push((10, bytes(rng, 8)));
            o.push((10, bytes(rng, 8)));
            Expect::Pass(counter::PASS_COOKIE)
        }
        2 => {
            o.insert(0, (9, Vec::new()));
            Expect::Pass(counter::PASS_EDNS_OPTION)
        }
        3 => {
            o.extend((0..9).map(|_| (12, Vec::new())));
            Expect::Pass(counter::PASS_EDNS_OPTION)
        }
        _ => Expect::AsPlain,
    };
    (o, expect)
}

#[test]
fn edns_options_are_answered_in_xdp_exactly_as_the_engine_answers_them() {
    let dir = std::env::temp_dir().join(format!("xdpdns-edns-{}", std::process::id()));
    let tld_zone = tld::write_zone(&dir, "tld.", 200, false).unwrap();
    let mut r = rig(
        &[
            zone_file("example.zone"),
            format!("nsec.example.={}", zone_file("signed/nsec.example.zone")),
            format!("nsec3.example.={}", zone_file("signed/nsec3.example.zone")),
            format!("tld.={}", tld_zone.display()),
        ],
        config(false, b"edns-node-1"),
        true,
    );
    let n = env_count("XDPDNS_EDNS_PACKETS", 6000);
    let mut rng = Rng::new(0xed45);
    let (mut with_cookie, mut cookie_answered, mut plain_answered, mut too_big) = (0, 0, 0, 0);
    let mut formerr = 0;
    for _ in 0..n {
        let mut q = corpus_q(&mut rng, &r.names);
        if q.edns.is_none() {
            q.edns = Some(1232);
        }
        let s = spec(&mut rng);
        let (plain, _) = r.run(&s, &q);
        let (opts, expect) = options(&mut rng, s.src);
        let cookie = opts.iter().any(|(c, _)| *c == 10);
        q.options = opts;
        let (answered, moved) = r.run(&s, &q);
        match expect {
            Expect::Pass(reason) | Expect::Answered(reason) => {
                let answer = matches!(expect, Expect::Answered(_));
                assert_eq!(answered, answer, "{q:?} answered in XDP: {answer}");
                assert_eq!(
                    counter::NAMES[moved],
                    counter::NAMES[reason as usize],
                    "{q:?}"
                );
                formerr += answer as usize;
            }
            Expect::AsPlain if plain && !answered => {
                assert_eq!(moved, counter::PASS_TOO_BIG as usize, "{q:?}");
                too_big += 1;
            }
            Expect::AsPlain => assert_eq!(answered, plain, "{q:?}"),
        }
        plain_answered += plain as usize;
        if cookie && expect == Expect::AsPlain && plain {
            with_cookie += 1;
            cookie_answered += answered as usize;
        }
    }
    println!(
        "EDNS options differential: {n} queries, {plain_answered} answered in XDP without \
         options; with cookies: {cookie_answered} of {with_cookie} answered ({too_big} too big \
         with their options), {formerr} FORMERR for malformed cookies, all equal to the engine"
    );
    assert!(plain_answered > n / 2, "the corpus exercises XDP");
    assert!(
        formerr > n / 100,
        "malformed cookies answered in XDP: {formerr}"
    );
    assert!(
        cookie_answered * 100 >= with_cookie * 95 && with_cookie > n / 10,
        "cookie queries answered in XDP: {cookie_answered} of {with_cookie}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn require_cookie_answers_badcookie_in_xdp_and_answers_valid_cookies() {
    let mut r = rig(&[zone_file("example.zone")], config(true, b"n"), true);
    for v6 in [false, true] {
        let s = addressing(v6);
        let first = www(vec![(10, b"clientck".to_vec())]);
        let badcookie = (true, counter::ANSWERED_BADCOOKIE as usize);
        assert_eq!(r.run(&s, &first), badcookie);
        let bad = r.engine_answer(&s, &first);
        assert_eq!(
            (bad[3] & 0xf, bad[bad.len() - 34]),
            (7, 1),
            "BADCOOKIE (23)"
        );
        // The cookie BADCOOKIE handed out, sent back: answered in XDP, equal to the engine.
        let again = www(vec![(10, answer_cookie(&bad))]);
        assert_eq!(r.run(&s, &again), (true, counter::ANSWERED_EXACT as usize));
        let resp = r
            .engine
            .respond_to(&again.wire(), Transport::Udp, Some(s.src))
            .unwrap();
        assert!(resp.cookie.is_valid());
        // Made with the previous secret (rollover): valid too.
        let cc = *b"clientck";
        let old = cookie::make(&secret(PREVIOUS), &cc, s.src, NOW - 1000);
        assert!(r.run(&s, &www(vec![(10, old.to_vec())])).0);
        // Too old, for another address, or with a wrong hash: BADCOOKIE, in XDP.
        let stale = cookie::make(&secret(SECRET), &cc, s.src, NOW - 3601);
        let other = cookie::make(&secret(SECRET), &cc, "198.18.0.99".parse().unwrap(), NOW);
        let mut wrong = cookie::make(&secret(SECRET), &cc, s.src, NOW);
        wrong[20] ^= 1;
        for c in [stale, other, wrong] {
            let q = www(vec![(10, c.to_vec())]);
            assert_eq!(r.run(&s, &q), badcookie);
        }
        // BADCOOKIE whatever the name or class: also for a name no zone has (the engine
        // checks the cookie first), and for CH.
        let mut elsewhere = Q::new("www.not-served.test.", 1);
        elsewhere.options = vec![(3, vec![]), (10, cc.to_vec())];
        assert_eq!(r.run(&s, &elsewhere), badcookie);
        let mut chaos = Q::new("id.server.", 16);
        chaos.options = vec![(10, cc.to_vec())];
        let mut wire = chaos.wire();
        let at = 12 + "id.server.".len() + 1 + 2;
        wire[at..at + 2].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(r.run_wire(&s, &wire), badcookie);
        // A malformed cookie: FORMERR (before BADCOOKIE, as the engine decides).
        let q = www(vec![(10, vec![1; 9])]);
        assert_eq!(r.run(&s, &q), (true, counter::ANSWERED_FORMERR as usize));
        // No cookie at all: answered as ever.
        assert!(r.run(&s, &www(vec![])).0);
    }
}

#[test]
fn long_nsids_and_unwritten_settings_leave_option_queries_to_userspace() {
    let mut r = rig(
        &[zone_file("example.zone")],
        config(false, &[b'n'; 100]),
        true,
    );
    let s = addressing(false);
    let nsid = www(vec![(3, vec![])]);
    assert_eq!(
        r.run(&s, &nsid),
        (false, counter::PASS_EDNS_OPTION as usize)
    );
    assert!(r.run(&s, &www(vec![(10, b"clientck".to_vec())])).0);
    let mut r = rig(&[zone_file("example.zone")], config(false, b"n"), false);
    for o in [(3, vec![]), (10, b"clientck".to_vec())] {
        assert_eq!(
            r.run(&s, &www(vec![o])),
            (false, counter::PASS_EDNS_OPTION as usize)
        );
    }
    assert!(
        r.run(&s, &www(vec![(12, vec![0; 8])])).0,
        "padding alone changes nothing"
    );
    assert!(r.run(&s, &www(vec![])).0);
}

#[test]
fn fuzzed_option_queries_never_get_a_wrong_answer() {
    fuzz(false, env_count("XDPDNS_EDNS_FUZZ_PACKETS", 200_000));
}

/// Under `require-cookie` most cookie queries get BADCOOKIE in XDP: never a wrong one.
#[test]
fn fuzzed_option_queries_under_require_cookie_never_get_a_wrong_answer() {
    fuzz(true, env_count("XDPDNS_EDNS_FUZZ_PACKETS", 200_000) / 4);
}

/// `n` mutated option queries, `require` for `require-cookie`: every XDP answer the engine's.
fn fuzz(require: bool, n: usize) {
    let mut r = rig(
        &[
            zone_file("example.zone"),
            format!("nsec.example.={}", zone_file("signed/nsec.example.zone")),
        ],
        config(require, b"fuzz-node"),
        true,
    );
    let mut rng = Rng::new(0xc00c + require as u64);
    let (mut tx, mut with_cookie) = (0usize, 0usize);
    for _ in 0..n {
        let s = spec(&mut rng);
        let mut q = corpus_q(&mut rng, &r.names);
        q.edns = Some(1232);
        q.options = options(&mut rng, s.src).0;
        let mut f = frame::build(&s, &q.wire());
        oracle::mutate(&mut rng, &mut f);
        if f.len() < 14 {
            continue;
        }
        let (action, out) = r.xdp.test_run(&f).unwrap();
        if action != oracle::XDP_TX {
            assert_eq!((action, &out), (oracle::XDP_PASS, &f));
            continue;
        }
        tx += 1;
        // The engine's answer to the query as the program saw it, from the address it
        // answered (the mutation may have changed the source).
        let p = frame::parse_answer(&f, &out).expect("valid output frame");
        let query = match frame::parse(&f) {
            Ok(q) => q.payload,
            Err(_) => oracle::udp_payload(&s, &f),
        };
        let expected = r.engine.answer_to(&query, Transport::Udp, p.dst);
        assert_eq!(
            Some(&p.payload),
            expected.as_ref(),
            "fuzzed packet {f:02x?}"
        );
        with_cookie += p.payload.windows(4).any(|w| w == [0, 10, 0, 24]) as usize;
    }
    println!(
        "EDNS fuzz (require-cookie {require}): {n} packets, {tx} answered ({with_cookie} with \
         a cookie), all the engine's"
    );
    assert!(
        tx > n / 20 && with_cookie > n / 50,
        "the fuzz exercises XDP: {tx}, {with_cookie}"
    );
}

/// A bench zone kind, its zone and its queries.
type ProfileZone = (
    xdpdns_tests::bench::zone::Signing,
    xdpdns_tests::bench::zone::Zone,
    Vec<xdpdns_tests::bench::zone::Query>,
);

/// The bench zone of `n` delegations of every kind (under a directory named for `tag`) and
/// `count` queries of the TLD mix for each.
fn profile_zones(tag: &str, n: usize, count: usize, seed: u64) -> (PathBuf, Vec<ProfileZone>) {
    use xdpdns_tests::bench::zone;
    let dir = std::env::temp_dir().join(format!("xdpdns-{tag}-{}", std::process::id()));
    let mix = zone::Mix::parse("tld").unwrap();
    let zones = zone::Signing::ALL
        .into_iter()
        .map(|signing| {
            let z = zone::generate_signed(&dir.join(signing.label()), n, signing, seed).unwrap();
            let qs = zone::queries(&z, &mix, 0, count, seed);
            (signing, z, qs)
        })
        .collect();
    (dir, zones)
}

#[test]
fn sender_profiles_of_real_resolvers_are_answered_in_xdp() {
    use xdpdns_tests::bench::profiles;
    let (dir, zones) = profile_zones("profiles", 500, 2000, 3);
    for (signing, z, qs) in zones {
        for s in profiles::test_run(&z, signing.label(), &qs).unwrap() {
            print!("{}", s.line());
            assert_eq!(s.queries, qs.len() as u64);
            // Issue 12: every profile on every zone kind, NSEC with DO=1 included.
            assert!(s.percent() >= 99.0, "{}", s.line());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The sender profiles' queries on every bench zone kind, each XDP answer byte-equal to the
/// engine's (with the fixed second, so that the server cookies agree too), over IPv4 and
/// IPv6; and the share the profile table reports, answered.
#[test]
fn sender_profile_answers_equal_the_engine_on_every_zone_kind() {
    use xdpdns_tests::bench::profiles;
    let (dir, zones) = profile_zones("profiles-eq", 300, 1000, 5);
    for (signing, z, qs) in zones {
        let mut r = rig(
            &[z.path.display().to_string()],
            config(false, b"profile-node"),
            true,
        );
        for profile in profiles::PROFILES {
            let mut answered = 0;
            for (i, q) in qs.iter().enumerate() {
                let s = addressing(i % 2 == 1);
                let wire = profile.query(q, i);
                answered += oracle::check(&mut r.xdp, &r.engine, &s, &wire).is_some() as usize;
            }
            let pct = answered as f64 * 100.0 / qs.len() as f64;
            println!(
                "{} {}: {pct:.1}% answered in XDP",
                signing.label(),
                profile.name()
            );
            assert!(pct >= 99.0, "{signing:?} {profile:?}: {pct:.1}%");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refused_and_chaos_answers_carry_nsid_and_cookie_like_the_engine() {
    let mut r = rig(
        &[zone_file("example.zone")],
        config(false, b"node-ch"),
        true,
    );
    let options = vec![(3, vec![]), (10, b"clientck".to_vec())];
    for v6 in [false, true] {
        let s = addressing(v6);
        let mut refused = Q::new("www.not-served.test.", 1);
        refused.options = options.clone();
        assert_eq!(
            r.run(&s, &refused),
            (true, counter::ANSWERED_REFUSED as usize)
        );
        // CH TXT id.server: the chaos class is in the query's class field.
        let mut chaos = Q::new("id.server.", 16);
        chaos.options = options.clone();
        let mut wire = chaos.wire();
        let at = 12 + "id.server.".len() + 1 + 2;
        wire[at..at + 2].copy_from_slice(&3u16.to_be_bytes());
        let f = frame::build(&s, &wire);
        let (action, out) = r.xdp.test_run(&f).unwrap();
        assert_eq!(action, oracle::XDP_TX);
        let p = frame::parse(&out).unwrap();
        let expected = r.engine.answer_to(&wire, Transport::Udp, s.src).unwrap();
        assert_eq!(p.payload, expected);
        assert!(
            expected.windows(7).any(|w| w == b"node-ch"),
            "NSID in the answer"
        );
        assert_eq!(answer_cookie(&expected)[..8], *b"clientck");
    }
}
