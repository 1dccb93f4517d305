//! EDNS option layouts in the XDP program, through BPF_PROG_TEST_RUN (root, no network), at
//! every parity the answer's checksum is summed at (NSIDs of odd and even lengths, question
//! names of odd and even lengths, IPv4 and IPv6):
//! - the options the engine answers or ignores — COOKIE of 8, 16, 24 (our server cookie),
//!   32 and 40 octets, NSID, both in either order, padding, ECS, keepalive, unknown codes,
//!   eight options — are answered in XDP exactly when the same query without them is, each
//!   answer the engine's byte for byte with valid checksums (`oracle::check`);
//! - from names short enough that the question copy holds the OPT record to names of 255
//!   octets, whose OPT record is copied on its own (`question::read`), up to the longest
//!   record copied (`OPTIONS_BUF`); a longer one is passed;
//! - a COOKIE of a malformed length (0, 1, 7, 9, 15, 41 octets; alone, after NSID, before
//!   padding) is answered in XDP with the engine's FORMERR (`answered_formerr`), DO=0 and 1;
//! - what the engine answers otherwise is passed, by reason: repeated cookies, EXPIRE, nine
//!   options, an option longer than the RDATA, trailing octets;
//! - under `require-cookie`, our server cookies of this second, of an earlier one and of the
//!   previous secret are answered; a client cookie alone, a stale, foreign or wrong one gets
//!   the engine's BADCOOKIE in XDP (`answered_badcookie`), with and without NSID, DO=0 and 1,
//!   every name length;
//! - an EDNS version other than 0 gets the engine's BADVERS in XDP (`answered_badvers`), with
//!   the OPT its options give (NSID, cookies valid, invalid and malformed), with and without
//!   `require-cookie`.

mod edns_rig;

use std::net::IpAddr;

use dns_common::{counter, OPTIONS_BUF};
use edns_rig::*;
use xdpdns::engine::cookie;
use xdpdns::engine::Transport;
use xdpdns_tests::client::Q;
use xdpdns_tests::zone_file;

/// A name under the delegation `shop.example.` (a referral with glue) of `wire` octets.
fn name_of(wire: usize) -> String {
    const PARENT: usize = 14;
    let mut left = wire - PARENT;
    let mut labels = Vec::new();
    while left > 0 {
        // A label takes its length octet too; never leave one octet (no empty label).
        let mut take = left.min(64);
        if left - take == 1 {
            take -= 1;
        }
        labels.push("a".repeat(take - 1));
        left -= take;
    }
    let name = format!("{}.shop.example.", labels.join("."));
    assert_eq!(
        xdpdns::wire::name::Name::parse(&name, None)
            .unwrap()
            .wire()
            .len(),
        wire
    );
    name
}

/// Our server cookie for the client cookie `cc` at `addr`, made at `t` with `s`.
fn ours(s: &str, cc: &[u8; 8], addr: IpAddr, t: u32) -> Vec<u8> {
    cookie::make(&secret(s), cc, addr, t).to_vec()
}

/// EDNS options (code, data), in order.
type Options = Vec<(u16, Vec<u8>)>;

/// Option layouts a query may carry that leave the answer to XDP.
fn layouts(addr: IpAddr) -> Vec<(&'static str, Options)> {
    let cc = *b"clientck";
    let server = ours(SECRET, &cc, addr, NOW - 10);
    let fill = |n: usize| [cc.to_vec(), (0..n as u8).collect()].concat();
    vec![
        ("cookie 8", vec![(10, cc.to_vec())]),
        ("cookie 16", vec![(10, fill(8))]),
        ("cookie 24, ours", vec![(10, server.clone())]),
        ("cookie 24, other", vec![(10, fill(16))]),
        ("cookie 32", vec![(10, fill(24))]),
        ("cookie 40", vec![(10, fill(32))]),
        ("NSID", vec![(3, vec![])]),
        ("NSID, cookie", vec![(3, vec![]), (10, cc.to_vec())]),
        ("cookie, NSID", vec![(10, server.clone()), (3, vec![])]),
        ("padding 0", vec![(12, vec![])]),
        (
            "padding 5, cookie",
            vec![(12, vec![0; 5]), (10, cc.to_vec())],
        ),
        (
            "unknown, NSID, cookie 24",
            vec![(65001, vec![1, 2, 3]), (3, vec![]), (10, server)],
        ),
        (
            "ECS, cookie",
            vec![(8, vec![0, 1, 24, 0, 198, 18, 0]), (10, cc.to_vec())],
        ),
        ("keepalive, NSID", vec![(11, vec![]), (3, vec![])]),
        (
            "eight options",
            [(10, cc.to_vec()), (3, vec![])]
                .into_iter()
                .chain((0..6).map(|i| (65000 + i, vec![i as u8; i as usize])))
                .collect(),
        ),
        // The longest OPT record copied when the question copy does not hold it.
        (
            "padding to OPTIONS_BUF",
            vec![(12, vec![0; OPTIONS_BUF - 15])],
        ),
    ]
}

/// Option layouts the engine answers otherwise (or that are malformed), with the reason XDP
/// passes them for: their options, and a change to the query's bytes.
type Malformed = (&'static str, Options, fn(&mut Vec<u8>), u32);

fn malformed() -> Vec<Malformed> {
    let none: fn(&mut Vec<u8>) = |_| {};
    let mut m: Vec<Malformed> = Vec::new();
    m.extend([
        (
            "two cookies",
            vec![(10, vec![1; 8]), (10, vec![2; 8])],
            none,
            counter::PASS_COOKIE,
        ),
        (
            "EXPIRE",
            vec![(9, vec![]), (10, vec![1; 8])],
            none,
            counter::PASS_EDNS_OPTION,
        ),
        (
            "nine options",
            (0..9).map(|_| (12, vec![])).collect(),
            none,
            counter::PASS_EDNS_OPTION,
        ),
        (
            "an option longer than the RDATA",
            vec![(10, vec![1; 8]), (65001, vec![1, 2, 3])],
            // The last option's length, 3 to 4.
            |w: &mut Vec<u8>| {
                let at = w.len() - 4;
                w[at] += 1;
            },
            counter::PASS_MALFORMED,
        ),
        (
            "trailing octets",
            vec![(3, vec![])],
            |w: &mut Vec<u8>| {
                // Two more octets in the RDATA (its length's low octet is the fifth last).
                let at = w.len() - 5;
                w[at] += 2;
                w.extend([0, 1]);
            },
            counter::PASS_MALFORMED,
        ),
        (
            "OPT record longer than OPTIONS_BUF",
            vec![(12, vec![0; OPTIONS_BUF - 14])],
            none,
            counter::PASS_EDNS_OPTION,
        ),
    ]);
    m
}

/// COOKIE options of the lengths the engine answers with FORMERR (RFC 7873 §5.2.2), alone
/// and among other options.
fn malformed_cookies() -> Vec<(String, Options)> {
    let mut v = Vec::new();
    for n in [0, 1, 7, 9, 15, 41] {
        let c = (10, vec![7; n]);
        v.push((format!("cookie of {n}"), vec![c.clone()]));
        v.push((format!("NSID, cookie of {n}"), vec![(3, vec![]), c.clone()]));
        v.push((format!("cookie of {n}, padding"), vec![c, (12, vec![0; 3])]));
    }
    v
}

/// Name lengths: short, odd and even, and about where the OPT record stops fitting in the
/// question copy (264 octets from the name) and at the longest name.
const NAME_LENGTHS: [usize; 12] = [19, 20, 63, 100, 181, 200, 221, 230, 245, 249, 250, 255];

#[test]
fn option_layouts_are_answered_byte_for_byte_at_every_parity_and_length() {
    let (mut answered, mut passed, mut formerr) = (0, 0, 0);
    for nsid in [&b"n"[..], b"no", b"edns-node-1", &[b'x'; 64]] {
        let mut r = rig(&[zone_file("example.zone")], config(false, nsid), true);
        for v6 in [false, true] {
            let s = addressing(v6);
            for w in NAME_LENGTHS {
                let mut q = Q::new(&name_of(w), 1);
                assert_eq!(
                    r.run(&s, &q),
                    (true, counter::ANSWERED_REFERRAL as usize),
                    "{} without options",
                    q.name
                );
                for (label, options) in layouts(s.src) {
                    q.options = options;
                    assert_eq!(
                        r.run(&s, &q),
                        (true, counter::ANSWERED_REFERRAL as usize),
                        "{label}, name of {w} octets, NSID {nsid:?}, v6 {v6}"
                    );
                    answered += 1;
                }
                for (label, options) in malformed_cookies() {
                    for dnssec_ok in [false, true] {
                        let q = Q {
                            options: options.clone(),
                            dnssec_ok,
                            ..q.clone()
                        };
                        assert_eq!(
                            r.run(&s, &q),
                            (true, counter::ANSWERED_FORMERR as usize),
                            "{label}, name of {w} octets, NSID {nsid:?}, v6 {v6}, DO {dnssec_ok}"
                        );
                        let a = r.engine_answer(&s, &q);
                        assert_eq!(a[3] & 0xf, 1, "FORMERR");
                        formerr += 1;
                    }
                }
                for (label, options, change, reason) in malformed() {
                    q.options = options;
                    let mut wire = q.wire();
                    change(&mut wire);
                    let (a, moved) = r.run_wire(&s, &wire);
                    assert_eq!(
                        (a, counter::NAMES[moved]),
                        (false, counter::NAMES[reason as usize]),
                        "{label}, name of {w} octets, v6 {v6}"
                    );
                    passed += 1;
                }
            }
        }
    }
    println!(
        "EDNS layouts: {answered} answered in XDP as the engine, {formerr} FORMERR for \
         malformed cookies as the engine, {passed} passed by reason"
    );
}

#[test]
fn require_cookie_answers_our_cookies_of_any_second_in_the_window() {
    let mut r = rig(&[zone_file("example.zone")], config(true, b"node"), true);
    let cc = *b"clientck";
    for v6 in [false, true] {
        let s = addressing(v6);
        for w in [19, 20, 250] {
            let mut q = Q::new(&name_of(w), 1);
            let kinds = [
                (ours(SECRET, &cc, s.src, NOW), true),
                (ours(SECRET, &cc, s.src, NOW - 10), true),
                (ours(SECRET, &cc, s.src, NOW + 10), true),
                (ours(PREVIOUS, &cc, s.src, NOW - 10), true),
                (ours(SECRET, &cc, s.src, NOW - 3601), false),
                (
                    ours("00112233445566778899aabbccddeeff", &cc, s.src, NOW),
                    false,
                ),
                (cc.to_vec(), false),
            ];
            for (c, valid) in kinds {
                for (nsid, dnssec_ok) in [(true, false), (false, true), (false, false)] {
                    q.options = vec![(10, c.clone())];
                    if nsid {
                        q.options.insert(0, (3, vec![]));
                    }
                    q.dnssec_ok = dnssec_ok;
                    let expected = if valid {
                        (true, counter::ANSWERED_REFERRAL as usize)
                    } else {
                        (true, counter::ANSWERED_BADCOOKIE as usize)
                    };
                    let label = format!("{c:02x?}, name of {w}, v6 {v6}, NSID {nsid}");
                    assert_eq!(r.run(&s, &q), expected, "{label}, DO {dnssec_ok}");
                    // What XDP answered (equal to it, `run`): BADCOOKIE, the question, no
                    // records but the OPT, the client cookie and a fresh server cookie.
                    let a = r.engine_answer(&s, &q);
                    if !valid {
                        let opt_rcode = a[a.len() - 28 - 6 - if nsid { 8 } else { 0 }];
                        assert_eq!((a[3] & 0xf, opt_rcode), (7, 1), "BADCOOKIE: {label}");
                        assert_eq!(a[6..12], [0, 0, 0, 0, 0, 1], "{label}");
                        assert_eq!(a[2] & 0x04, 0, "not AA: {label}");
                    }
                    assert_eq!(answer_cookie(&a)[..8], cc, "{label}");
                }
            }
        }
    }
}

/// The query message of `q` with EDNS version `version`, and the offset of its OPT record
/// (after the question; in the answer too).
fn with_version(q: &Q, version: u8) -> (Vec<u8>, usize) {
    let mut w = q.wire();
    let name = xdpdns::wire::name::Name::parse(&q.name, None).unwrap();
    let opt = 12 + name.wire().len() + 4;
    assert_eq!(w[opt..opt + 3], [0, 0, 41], "the OPT record");
    w[opt + 6] = version;
    (w, opt)
}

#[test]
fn edns_versions_other_than_0_get_the_engines_badvers_in_xdp() {
    let cc = *b"clientck";
    for require in [false, true] {
        let mut r = rig(
            &[zone_file("example.zone")],
            config(require, b"node-v"),
            true,
        );
        for v6 in [false, true] {
            let s = addressing(v6);
            let cookies = [
                vec![],
                vec![(10, cc.to_vec())],
                vec![(3, vec![]), (10, ours(SECRET, &cc, s.src, NOW - 5))],
                vec![(10, ours(SECRET, &cc, s.src, NOW - 4000))],
                vec![(3, vec![]), (10, vec![1; 9])],
                vec![(3, vec![])],
            ];
            for (options, version, dnssec_ok) in
                cookies.iter().flat_map(|o| [(o, 1, false), (o, 255, true)])
            {
                for name in ["www.example.", "x.shop.example.", "www.not-served.test."] {
                    let q = Q {
                        options: options.clone(),
                        dnssec_ok,
                        ..Q::new(name, 1)
                    };
                    let (wire, opt) = with_version(&q, version);
                    let label = format!("{name} {options:02x?} v{version}, require {require}");
                    assert_eq!(
                        r.run_wire(&s, &wire),
                        (true, counter::ANSWERED_BADVERS as usize),
                        "{label}"
                    );
                    let a = r.engine.answer_to(&wire, Transport::Udp, s.src).unwrap();
                    // Header RCODE 0, extended 1 (16), version 0; no records but the OPT.
                    assert_eq!((a[3] & 0xf, a[opt + 5], a[opt + 6]), (0, 1, 0), "{label}");
                    assert_eq!(a[6..12], [0, 0, 0, 0, 0, 1], "{label}");
                }
            }
        }
    }
}
