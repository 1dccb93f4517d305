//! The userspace limiter: bursts, slips, other prefixes, exemptions, dry-run, classes, and the
//! truncated answer.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::*;
use crate::engine::cookie::{self as ck, Cookies};
use crate::engine::{Catalog, EngineConfig, Transport};
use crate::xfr::timers::Clock;
use dns_common::rrl::{CLASS_ANSWER, CLASS_NXDOMAIN, CLASS_REFERRAL};

const ZONE: &str = "$TTL 300\n\
@ IN SOA ns.example. host.example. 1 7200 3600 1209600 300\n\
@ IN NS ns.example.\n\
ns IN A 198.18.0.53\n\
www IN A 198.18.0.80\n\
sub IN NS ns.sub.example.\n\
ns.sub IN A 198.18.0.54\n";

const NOW: u32 = 1_800_000_000;

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> u64 {
        NOW as u64
    }
}

fn engine() -> Engine {
    let mut c = Catalog::new();
    c.insert(Arc::new(crate::engine::tests::zone_from(ZONE, "example.")));
    Engine::new(
        c,
        EngineConfig {
            nsid: Some(b"node-1".to_vec()),
            cookies: Some(Cookies {
                secret: ck::parse_secret("445536bcd2513298075a5d379663c962").unwrap(),
                previous: None,
                require: false,
                clock: Arc::new(Fixed),
            }),
            ..Default::default()
        },
    )
}

/// A query for `name` A, with EDNS (DO=0) and, when given, a COOKIE option.
fn query(name: &str, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for l in name.trim_end_matches('.').split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let opts = cookie.map_or(Vec::new(), |c| {
        let mut o = vec![0, 10, 0, c.len() as u8];
        o.extend_from_slice(c);
        o
    });
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    m.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    m.extend_from_slice(&opts);
    m
}

fn limiter(f: impl FnOnce(&mut Settings)) -> Limiter {
    let mut s = Settings::new(10);
    s.window = 2;
    f(&mut s);
    Limiter::new(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends `n` queries from `client` at one instant; returns (sent in full, truncated, dropped).
fn flood(
    l: &Limiter,
    e: &Engine,
    q: &[u8],
    client: &str,
    n: usize,
    st: &ServerStats,
) -> [usize; 3] {
    let mut out = [0; 3];
    for _ in 0..n {
        let r = e.answer_to(q, Transport::Udp, ip(client)).unwrap();
        match l.apply(e, q, ip(client), r.clone(), st, 7_000_000_000) {
            Some(x) if x == r => out[0] += 1,
            Some(x) => {
                assert_eq!(x, slip::truncated(&r).unwrap());
                out[1] += 1
            }
            None => out[2] += 1,
        }
    }
    out
}

#[test]
fn a_prefix_is_limited_after_its_burst_and_every_nth_limited_answer_slips() {
    let (e, st) = (engine(), ServerStats::default());
    let l = limiter(|_| {});
    let q = query("www.example.", None);
    // Rate 10 × window 2: 20 in full, then of 10 more every 2nd truncated.
    assert_eq!(flood(&l, &e, &q, "198.18.7.1", 30, &st), [20, 5, 5]);
    // The same /24, another address: the same bucket.
    assert_eq!(flood(&l, &e, &q, "198.18.7.200", 2, &st), [0, 1, 1]);
    // Another /24, and the same /24 for another class (NXDOMAIN), are not affected.
    assert_eq!(flood(&l, &e, &q, "198.18.8.1", 20, &st), [20, 0, 0]);
    let nx = query("nope.example.", None);
    assert_eq!(flood(&l, &e, &nx, "198.18.7.1", 20, &st), [20, 0, 0]);
    assert_eq!(st.rrl_limited.load(Relaxed), 12);
    assert_eq!(st.rrl_slipped.load(Relaxed), 6);
    assert_eq!(st.rrl_dropped.load(Relaxed), 6);
    // An IPv6 /56: fd00:0:0:100::/56 holds both addresses.
    assert_eq!(flood(&l, &e, &q, "fd00::1:1", 20, &st), [20, 0, 0]);
    assert_eq!(flood(&l, &e, &q, "fd00::ff:1", 1, &st), [0, 0, 1]);
    assert_eq!(flood(&l, &e, &q, "fd00:0:0:100::1", 1, &st), [1, 0, 0]);
}

#[test]
fn buckets_refill_at_the_rate() {
    let l = limiter(|s| s.slip = 0);
    let a = ip("198.18.1.1");
    for _ in 0..20 {
        assert_eq!(l.account_at(a, CLASS_ANSWER, 1_000), Verdict::Send);
    }
    assert_eq!(l.account_at(a, CLASS_ANSWER, 1_000), Verdict::Drop);
    // 100 ms later (the interval at 10/s): one more.
    assert_eq!(l.account_at(a, CLASS_ANSWER, 100_001_000), Verdict::Send);
    assert_eq!(l.account_at(a, CLASS_ANSWER, 100_001_000), Verdict::Drop);
    // After the window, a full burst again.
    for _ in 0..20 {
        assert_eq!(l.account_at(a, CLASS_ANSWER, 3_000_000_000), Verdict::Send);
    }
}

#[test]
fn exempt_prefixes_valid_cookies_and_dry_run_are_never_limited() {
    let (e, st) = (engine(), ServerStats::default());
    let l = limiter(|s| s.exempt = vec!["198.18.9.0/24".parse().unwrap()]);
    let q = query("www.example.", None);
    assert_eq!(flood(&l, &e, &q, "198.18.9.9", 100, &st), [100, 0, 0]);
    // A valid server cookie (as the engine made it for this client) is exempt; a client
    // cookie alone is not.
    let client = ip("198.18.10.1");
    let cc = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let first = e
        .answer_to(&query("www.example.", Some(&cc)), Transport::Udp, client)
        .unwrap();
    let cookie = &first[first.len() - 24..];
    let with = query("www.example.", Some(cookie));
    assert_eq!(flood(&l, &e, &with, "198.18.10.1", 100, &st), [100, 0, 0]);
    let alone = query("www.example.", Some(&cc));
    assert_eq!(flood(&l, &e, &alone, "198.18.10.1", 30, &st), [20, 5, 5]);
    // The cookie is bound to its address: from elsewhere in the /24 it is not valid.
    assert_eq!(flood(&l, &e, &with, "198.18.10.2", 2, &st), [0, 1, 1]);
    assert_eq!(st.rrl_limited.load(Relaxed), 12);

    let st = ServerStats::default();
    let l = limiter(|s| s.dry_run = true);
    assert_eq!(flood(&l, &e, &q, "198.18.7.1", 30, &st), [30, 0, 0]);
    assert_eq!(st.rrl_limited.load(Relaxed), 10);
    assert_eq!(
        st.rrl_slipped.load(Relaxed) + st.rrl_dropped.load(Relaxed),
        0
    );
}

#[test]
fn responses_are_classed_and_the_slip_is_header_question_and_opt() {
    let e = engine();
    let c = ip("198.18.0.9");
    let ans = |n: &str| e.answer_to(&query(n, None), Transport::Udp, c).unwrap();
    assert_eq!(response_class(&ans("www.example.")), CLASS_ANSWER);
    assert_eq!(response_class(&ans("a.sub.example.")), CLASS_REFERRAL);
    assert_eq!(response_class(&ans("nope.example.")), CLASS_NXDOMAIN);
    assert_eq!(response_class(&ans("www.example.org.")), CLASS_ERROR);
    // With NSID asked and a cookie, the slip keeps the OPT record with both options.
    let mut q = query("a.sub.example.", Some(&[9; 8]));
    let opt_at = q.len() - 12;
    q[opt_at - 2..opt_at].copy_from_slice(&16u16.to_be_bytes());
    q.splice(opt_at..opt_at, [0, 3, 0, 0]);
    let r = e.answer_to(&q, Transport::Udp, c).unwrap();
    let m = crate::engine::query::parse(&q);
    assert!(matches!(m, Parsed::Query(_)));
    let t = slip::truncated(&r).unwrap();
    let qlen = "a.sub.example.".len() + 1 + 4;
    let opt = 11 + 4 + 6 + 4 + 24;
    assert_eq!(t.len(), 12 + qlen + opt);
    assert_eq!(&t[..2], &r[..2]);
    assert_eq!(t[2], r[2] | 0x02, "TC set, the rest of the flags kept");
    assert_eq!(t[3], r[3]);
    assert_eq!(&t[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&t[12..12 + qlen], &r[12..12 + qlen]);
    assert_eq!(&t[12 + qlen..], &r[r.len() - opt..]);
    // Without EDNS: header and question only.
    let mut plain = query("www.example.", None);
    plain.truncate(plain.len() - 11);
    plain[11] = 0;
    let r = e.answer_to(&plain, Transport::Udp, c).unwrap();
    let t = slip::truncated(&r).unwrap();
    assert_eq!(t.len(), 12 + "www.example.".len() + 1 + 4);
    assert_eq!(&t[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert!(slip::truncated(&r[..20]).is_none());
}

#[test]
fn settings_are_checked_and_made_into_the_programs() {
    assert!(Limiter::new(Settings::new(0)).is_err());
    let mut s = Settings::new(4);
    s.window = 0;
    assert!(s.check().is_err());
    let mut s = Settings::new(4);
    s.ipv4_prefix = 33;
    assert!(s.check().is_err());
    let mut s = Settings::new(4);
    s.exempt = vec![
        "198.18.0.0/15".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ];
    let x = s.xdp_config();
    assert_eq!(x.interval_ns, 250_000_000);
    assert_eq!(x.tolerance_ns, 15_000_000_000 - 250_000_000);
    assert_eq!(x.slip, 2);
    assert_eq!(&x.v4_mask[12..], &[0xff, 0xff, 0xff, 0]);
    assert_eq!(&x.v6_mask[6..8], &[0xff, 0]);
    let keys = s.exempt_keys();
    assert_eq!(keys[0].0, 96 + 15);
    assert_eq!(&keys[0].1[10..14], &[0xff, 0xff, 198, 18]);
    assert_eq!(keys[1], (8, mapped(ip("fd00::"))));
}

#[test]
fn a_full_table_forgets_caught_up_buckets_and_never_limits_a_new_prefix() {
    let l = limiter(|s| s.slip = 0);
    let count = |l: &Limiter| -> usize {
        l.shards
            .iter()
            .map(|s| s.lock().unwrap().buckets.len())
            .sum()
    };
    // Twice as many /24s as the table holds, at one instant: every shard fills up, no more.
    let n = SHARD_CAPACITY * SHARDS * 2;
    let addr = |i: usize| IpAddr::from([10 + (i >> 16) as u8, (i >> 8) as u8, i as u8, 1]);
    for i in 0..n {
        assert_eq!(l.account_at(addr(i), CLASS_ANSWER, 1_000), Verdict::Send);
    }
    let held = count(&l);
    assert_eq!(held, SHARD_CAPACITY * SHARDS);
    // A prefix that is held is still limited once its burst is spent.
    for _ in 0..19 {
        assert_eq!(l.account_at(addr(0), CLASS_ANSWER, 1_000), Verdict::Send);
    }
    assert_eq!(l.account_at(addr(0), CLASS_ANSWER, 1_000), Verdict::Drop);
    // Past the window every bucket has caught up: the new prefix's shard is swept and the
    // new bucket held.
    let later = 10_000_000_000;
    assert_eq!(
        l.account_at(addr(n + 1), CLASS_ANSWER, later),
        Verdict::Send
    );
    assert_eq!(count(&l), held - SHARD_CAPACITY + 1);
}
