//! Response rate limiting in the XDP program, through BPF_PROG_TEST_RUN (root, no network),
//! with the program's clock fixed (`RRL_TEST_FIXED_TIME`):
//! - many queries from one IPv4 /24 (and one IPv6 /56): `rate × window` answered, then every
//!   `slip`-th limited one is sent truncated — byte for byte the engine's answer truncated as
//!   userspace sends it (`rrl::slip`) — and the others dropped (`XDP_DROP`), counted
//!   `rrl_limited`, `rrl_slipped`, `rrl_dropped`;
//! - the bucket refills at the rate; other prefixes and other response classes are not
//!   affected; an exempt prefix and a valid server cookie are never limited, a client cookie
//!   alone is; `dry-run` counts and answers; RRL off (the default) limits nothing;
//! - fuzz: corpus queries (some with cookies, some mutated) from a few prefixes, the clock
//!   moving on: every `XDP_TX` is the engine's answer or its slip, every pass unchanged, and
//!   the counters add up (`XDPDNS_RRL_FUZZ_PACKETS`, default 20 000);
//! - the bench's spoofed flood (`bench::rrl`, 1 s of 100 000 q/s from one /24 on a generated
//!   TLD zone): with RRL the server sends the victim fewer bytes than it gets (slip 2: half
//!   the limited answers go out truncated, about a query's size), and it answers
//!   every legitimate query from the other prefixes in full (the bench reports the figures).

use std::net::IpAddr;
use std::sync::Arc;

use dns_common::rrl::{RrlConfig, RRL_TEST_FIXED_TIME};
use dns_common::{counter, EDNS_TEST_FIXED_TIME};
use xdpdns::engine::cookie::{self, Cookies};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns::rrl::{slip, Settings};
use xdpdns::wire::name::Name;
use xdpdns::xfr::timers::Clock;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::oracle::{self, corpus_q};
use xdpdns_tests::tld::Rng;
use xdpdns_tests::{zone_file, SERVER_V4, SERVER_V6};

/// XDP actions (linux/bpf.h).
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const NOW: u32 = 1_800_000_000;
const T0: u64 = 5_000_000_000;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        NOW as u64
    }
}

struct Rig {
    xdp: XdpServer,
    engine: Engine,
    settings: Settings,
    names: Vec<Name>,
}

/// The program with the example zone, cookies, NSID, and RRL at 10/s with a 2 s window.
fn rig(f: impl FnOnce(&mut Settings)) -> Rig {
    rig_with(false, f)
}

/// `rig`, with `require-cookie` when `require`.
fn rig_with(require: bool, f: impl FnOnce(&mut Settings)) -> Rig {
    let specs: Vec<ZoneSpec> = vec![zone_file("example.zone").parse().unwrap()];
    let (catalog, _) = load_catalog(&specs).unwrap();
    let engine = Engine::new(
        catalog,
        EngineConfig {
            nsid: Some(b"rrl-node".to_vec()),
            cookies: Some(Cookies {
                secret: cookie::parse_secret("445536bcd2513298075a5d379663c962").unwrap(),
                previous: None,
                require,
                clock: Arc::new(FixedClock),
            }),
            ..Default::default()
        },
    );
    let (mut xdp, names) = xdpdns_tests::testrun::load(&engine, Capacity::default(), 3).unwrap();
    let mut e = xdpdns::fastpath::edns::config(&engine.config);
    e.flags |= EDNS_TEST_FIXED_TIME;
    e.test_time = NOW;
    xdp.set_edns(e).unwrap();
    let mut settings = Settings::new(10);
    settings.window = 2;
    f(&mut settings);
    let mut r = Rig {
        xdp,
        engine,
        settings,
        names,
    };
    r.at(T0);
    r
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Got {
    Answer,
    Slip,
    Drop,
    Pass,
}

impl Rig {
    /// Sets the program's clock.
    fn at(&mut self, now_ns: u64) {
        let cfg = RrlConfig {
            flags: self.settings.xdp_config().flags | RRL_TEST_FIXED_TIME,
            test_now_ns: now_ns,
            ..self.settings.xdp_config()
        };
        self.xdp.set_rrl(cfg, &self.settings.exempt_keys()).unwrap();
    }

    /// Runs `dns` from `src`: what the program did, checked against the engine.
    fn run(&mut self, src: &str, dns: &[u8]) -> Got {
        let src: IpAddr = src.parse().unwrap();
        let dst: IpAddr = if src.is_ipv4() {
            SERVER_V4.into()
        } else {
            SERVER_V6.into()
        };
        let f = frame::build(&FrameSpec::udp(src, dst, 53), dns);
        let (action, out) = self.xdp.test_run(&f).unwrap();
        let expected = self.engine.answer_to(dns, Transport::Udp, src).unwrap();
        match action {
            XDP_TX => {
                let p = frame::parse(&out).expect("valid headers and checksums");
                assert_eq!((p.src, p.dst), (dst, src));
                if p.payload == expected {
                    Got::Answer
                } else {
                    assert_eq!(
                        p.payload,
                        slip::truncated(&expected).unwrap(),
                        "a slip is the engine's answer truncated"
                    );
                    assert_ne!(p.payload[2] & 0x02, 0, "TC=1");
                    Got::Slip
                }
            }
            XDP_DROP => Got::Drop,
            XDP_PASS => Got::Pass,
            other => panic!("unexpected XDP action {other}"),
        }
    }

    /// `n` runs of `dns` from `src`: how many got each outcome (answer, slip, drop, pass).
    fn flood(&mut self, src: &str, dns: &[u8], n: usize) -> [usize; 4] {
        let mut out = [0; 4];
        for _ in 0..n {
            out[self.run(src, dns) as usize] += 1;
        }
        out
    }

    fn counters(&self) -> [u64; 3] {
        let c = self.xdp.counters().unwrap();
        [
            c[counter::RRL_LIMITED as usize],
            c[counter::RRL_SLIPPED as usize],
            c[counter::RRL_DROPPED as usize],
        ]
    }
}

fn q(name: &str) -> Vec<u8> {
    Q::new(name, 1).wire()
}

fn with_cookie(name: &str, cookie: Vec<u8>) -> Vec<u8> {
    let mut q = Q::new(name, 1);
    q.options = vec![(10, cookie)];
    q.wire()
}

#[test]
fn a_flood_from_one_prefix_is_limited_slipped_and_dropped_and_others_are_not() {
    let mut r = rig(|_| {});
    let www = q("www.example.");
    // Rate 10 × window 2: 20 answered, then of 10 more every 2nd truncated.
    assert_eq!(r.flood("198.18.7.1", &www, 30), [20, 5, 5, 0]);
    assert_eq!(r.counters(), [10, 5, 5]);
    // Another address of the /24 shares the bucket; another /24 has its own.
    assert_eq!(r.flood("198.18.7.99", &www, 2), [0, 1, 1, 0]);
    assert_eq!(r.flood("198.18.8.1", &www, 20), [20, 0, 0, 0]);
    // Other classes of the same /24: a referral and NXDOMAIN have buckets of their own.
    assert_eq!(
        r.flood("198.18.7.1", &q("x.shop.example."), 20),
        [20, 0, 0, 0]
    );
    assert_eq!(
        r.flood("198.18.7.1", &q("nope.example."), 21),
        [20, 0, 1, 0]
    );
    // Without EDNS the slip is header and question alone.
    let mut plain = Q::new("www.example.", 1);
    plain.edns = None;
    let plain = plain.wire();
    assert_eq!(r.flood("198.18.7.1", &plain, 2), [0, 1, 1, 0]);
    // The bucket refills at the rate: 100 ms later, one more answer.
    r.at(T0 + 100_000_000);
    assert_eq!(r.flood("198.18.7.1", &www, 2), [1, 0, 1, 0]);
    // IPv6: a /56.
    assert_eq!(r.flood("fd00::2", &www, 21), [20, 0, 1, 0]);
    assert_eq!(r.flood("fd00:0:0:ff::2", &www, 1), [0, 1, 0, 0]);
    assert_eq!(r.flood("fd00:0:0:100::2", &www, 1), [1, 0, 0, 0]);
}

/// What userspace's limiter (`Limiter::apply`, the same settings) does with the engine's
/// answers to `queries` from `src` at `now_ns`, in order.
fn userspace_outcomes(r: &Rig, src: &str, queries: &[&[u8]], now_ns: u64) -> Vec<Got> {
    let limiter = xdpdns::rrl::Limiter::new(r.settings.clone()).unwrap();
    let stats = xdpdns::net::ServerStats::default();
    let src: IpAddr = src.parse().unwrap();
    queries
        .iter()
        .map(|q| {
            let answer = r.engine.answer_to(q, Transport::Udp, src).unwrap();
            match limiter.apply(&r.engine, q, src, answer.clone(), &stats, now_ns) {
                Some(a) if a == answer => Got::Answer,
                Some(_) => Got::Slip,
                None => Got::Drop,
            }
        })
        .collect()
}

/// Under `require-cookie`, BADCOOKIE (a client cookie alone) and FORMERR (a malformed cookie)
/// are answered in XDP and rate limited as errors, as userspace limits them: one bucket with
/// REFUSED per prefix, apart from the answers' (the same outcomes, in the same order, as
/// `Limiter::apply` gives), slips the engine's BADCOOKIE truncated with its OPT and cookie;
/// BADVERS (header RCODE 0) goes to the answers' bucket, in both.
#[test]
fn badcookie_and_formerr_are_limited_as_errors_as_userspace_limits_them() {
    let mut r = rig_with(true, |_| {});
    let badcookie = with_cookie("www.example.", vec![7; 8]);
    let formerr = with_cookie("www.example.", vec![7; 9]);
    let refused = q("www.not-served.test.");
    let www = q("www.example.");
    // EDNS version 1 (the fifth last octet of a query without options): BADVERS, header
    // RCODE 0, in the answers' bucket.
    let mut badvers = www.clone();
    let n = badvers.len();
    badvers[n - 5] = 1;
    let mut queries: Vec<&[u8]> = vec![&badcookie; 16];
    queries.extend([&formerr[..]; 4]);
    queries.extend([&badcookie[..], &formerr, &refused, &badcookie]);
    queries.extend([&www[..], &badvers, &www]);
    let before = r.xdp.counters().unwrap();
    let xdp: Vec<Got> = queries.iter().map(|q| r.run("198.18.7.1", q)).collect();
    let after = r.xdp.counters().unwrap();
    let d = |i: u32| after[i as usize] - before[i as usize];
    let expected = userspace_outcomes(&r, "198.18.7.1", &queries, T0);
    assert_eq!(xdp, expected, "XDP limits as userspace does");
    // Rate 10 × window 2: 20 errors answered (REFUSED among them, limited too), then every
    // 2nd limited one slipped; the answers' bucket is untouched.
    use Got::*;
    let errors = [Answer, Answer, Answer, Answer, Drop, Slip, Drop, Slip];
    assert_eq!(xdp[16..], [&errors[..], &[Answer; 3]].concat());
    assert_eq!(
        [
            d(counter::ANSWERED_BADCOOKIE),
            d(counter::ANSWERED_FORMERR),
            d(counter::ANSWERED_BADVERS)
        ],
        [16, 4, 1],
        "answered, counted by kind"
    );
    assert_eq!([d(counter::RRL_LIMITED), d(counter::RRL_SLIPPED)], [4, 2]);
    assert_eq!(d(counter::PASS_COOKIE), 0);
}

#[test]
fn exempt_prefixes_valid_cookies_dry_run_and_rrl_off_are_never_limited() {
    let mut r = rig(|s| s.exempt = vec!["198.18.9.0/24".parse().unwrap()]);
    let www = q("www.example.");
    assert_eq!(r.flood("198.18.9.1", &www, 60), [60, 0, 0, 0]);
    // A valid server cookie (the engine's, for this address) is exempt, in XDP too.
    let client: IpAddr = "198.18.10.1".parse().unwrap();
    let cc = vec![7u8; 8];
    let first = with_cookie("www.example.", cc);
    let answer = r.engine.answer_to(&first, Transport::Udp, client).unwrap();
    assert_eq!(answer[answer.len() - 28..answer.len() - 24], [0, 10, 0, 24]);
    let back = with_cookie("www.example.", answer[answer.len() - 24..].to_vec());
    assert_eq!(r.flood("198.18.10.1", &back, 60), [60, 0, 0, 0]);
    // A client cookie alone is limited; the slip carries the fresh cookie.
    assert_eq!(r.flood("198.18.10.1", &first, 22), [20, 1, 1, 0]);
    // The same server cookie from another address of the /24 is not valid there.
    assert_eq!(r.flood("198.18.10.2", &back, 2), [0, 1, 1, 0]);
    assert_eq!(r.counters(), [4, 2, 2]);

    let mut r = rig(|s| s.dry_run = true);
    assert_eq!(r.flood("198.18.7.1", &www, 30), [30, 0, 0, 0]);
    assert_eq!(r.counters(), [10, 0, 0]);

    let mut r = rig(|_| {});
    r.xdp.set_rrl(RrlConfig::default(), &[]).unwrap();
    assert_eq!(r.flood("198.18.7.1", &www, 60), [60, 0, 0, 0]);
    assert_eq!(r.counters(), [0, 0, 0]);
}

#[test]
fn fuzzed_queries_under_rate_limits_get_the_engines_answer_or_its_slip() {
    let mut r = rig(|s| {
        s.rate = 50;
        s.window = 1;
        s.slip = 3;
    });
    let n: usize = std::env::var("XDPDNS_RRL_FUZZ_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let sources = [
        "198.18.7.1",
        "198.18.7.2",
        "198.18.8.1",
        "fd00::2",
        "fd00:0:0:1ff::9",
    ];
    let mut rng = Rng::new(0x5117);
    let before = r.xdp.counters().unwrap();
    let mut got = [0u64; 4];
    let mut now = T0;
    for i in 0..n {
        if i % 100 == 0 {
            // 0 to 20 ms on (a token or so), and now and then 2 s (a full bucket again).
            now += rng.below(20) * 1_000_000 + (i % 5_000 == 0) as u64 * 2_000_000_000;
            r.at(now);
        }
        let src: IpAddr = sources[rng.below(sources.len() as u64) as usize]
            .parse()
            .unwrap();
        let mut spec = oracle::spec(&mut rng);
        spec.src = src;
        spec.dst = if src.is_ipv4() {
            SERVER_V4.into()
        } else {
            SERVER_V6.into()
        };
        let mut q = corpus_q(&mut rng, &r.names);
        if q.edns.is_some() && rng.chance(30) {
            q.options = vec![(10, (0..8).map(|_| rng.next_u64() as u8).collect())];
        }
        let mut f = frame::build(&spec, &q.wire());
        if rng.chance(10) {
            oracle::mutate(&mut rng, &mut f);
        }
        let (action, out) = r.xdp.test_run(&f).unwrap();
        match action {
            XDP_TX => {
                let p = frame::parse_answer(&f, &out).expect("valid output frame");
                let query = match frame::parse(&f) {
                    Ok(q) => q.payload,
                    Err(_) => oracle::udp_payload(&spec, &f),
                };
                let expected = r.engine.answer_to(&query, Transport::Udp, p.dst).unwrap();
                if p.payload == expected {
                    got[0] += 1;
                } else {
                    let slip = slip::truncated(&expected).unwrap();
                    assert_eq!(p.payload, slip, "neither answer nor slip: {f:02x?}");
                    got[1] += 1;
                }
            }
            XDP_DROP => got[2] += 1,
            XDP_PASS => {
                assert_eq!(out, f, "passed packets are unchanged");
                got[3] += 1;
            }
            other => panic!("unexpected XDP action {other}"),
        }
    }
    let after = r.xdp.counters().unwrap();
    let d = |i: u32| after[i as usize] - before[i as usize];
    let answered: u64 = (0..counter::COUNT)
        .filter(|&i| counter::is_answered(i))
        .map(d)
        .sum();
    assert_eq!(
        [answered, d(counter::RRL_SLIPPED), d(counter::RRL_DROPPED)],
        [got[0], got[1], got[2]]
    );
    assert_eq!(d(counter::RRL_LIMITED), got[1] + got[2]);
    println!("RRL fuzz: {n} packets: {got:?} (answered, slipped, dropped, passed)");
    assert!(
        got[0] > n as u64 / 10 && got[1] > 100 && got[2] > 100,
        "the fuzz exercises every verdict: {got:?}"
    );
}

#[test]
fn the_benchs_spoofed_flood_is_cut_and_legitimate_queries_are_answered() {
    use xdpdns_tests::bench::{rrl, zone};
    let dir = std::env::temp_dir().join(format!("xdpdns-rrl-bench-{}", std::process::id()));
    let z = zone::generate(&dir, 1000, false, 7).unwrap();
    let qs = zone::queries(&z, &zone::Mix::parse("tld").unwrap(), 0, 5000, 7);
    let f = rrl::figures(&z, &qs, 200, 1).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "amplification off {:.2}, on {:.4}; legitimate answered off {:.4}, on {:.4}; {:?}",
        f.off.amplification(),
        f.on.amplification(),
        f.off.legit_share(),
        f.on.legit_share(),
        f.cost
    );
    assert!(
        f.off.amplification() > 1.0,
        "a referral is bigger than its query"
    );
    assert_eq!((f.off.limited, f.off.legit_share()), (0, 1.0));
    // With slip 2 half the limited answers still go out, truncated (about a query's size):
    // the server is no amplifier any more.
    assert!(f.on.amplification() < 1.0, "{}", f.on.amplification());
    assert!(f.on.amplification() * 3.0 < f.off.amplification());
    assert_eq!(
        f.on.legit_share(),
        1.0,
        "{} of {}",
        f.on.legit_answered,
        f.on.legit_sent
    );
    assert_eq!(f.on.limited, f.on.slipped + f.on.dropped);
    assert!(
        f.on.slipped.abs_diff(f.on.dropped) <= 4 * 4,
        "slip 2: half and half per bucket"
    );
}
