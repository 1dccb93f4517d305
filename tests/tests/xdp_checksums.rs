//! The checksums of XDP answers, through BPF_PROG_TEST_RUN (root, no network). The program
//! takes the answer's UDP checksum from the query's (RFC 1624) and updates the IPv4 header
//! checksum the same way, so:
//! - answers to queries with right checksums have right checksums, over every path the sum
//!   takes: no EDNS, EDNS without options (the query's OPT record taken out of the sum at an
//!   even and an odd offset), EDNS options the program reads whole (NSID, an 8-octet cookie:
//!   their sum taken out too) and others (padding, a 16-octet cookie: summed in full), an
//!   IPv4 query without a UDP checksum and a query with a partial checksum (checksum offload,
//!   as over veth: summed in full), IPv4 and IPv6, VLAN tags, referrals, NXDOMAIN, exact
//!   answers;
//! - a query whose UDP (or IPv4 header) checksum is wrong gets an answer whose checksum is
//!   wrong by exactly as much (unless summed in full: then right), so the client's stack
//!   drops it as it would have dropped the query; its DNS payload is still the engine's
//!   answer.

use std::net::IpAddr;

use dns_common::counter;
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::{testrun, CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6};

const XDP_TX: u32 = 3;
const OPTION_NSID: u16 = 3;
const OPTION_COOKIE: u16 = 10;
const OPTION_PADDING: u16 = 12;

/// Whether the program sums the answer to `q` in full: options whose data it does not read
/// (anything but NSID and cookies of 8 or 24 octets, `edns::Options::rdata_sum`).
fn summed_in_full(q: &Q) -> bool {
    q.options.iter().any(|(code, data)| match *code {
        OPTION_COOKIE => data.len() != 8 && data.len() != 24,
        _ => !data.is_empty(),
    })
}

fn rig() -> (XdpServer, Engine) {
    let engine = testrun::example_engine(EngineConfig {
        nsid: Some(b"csum-node".to_vec()),
        identity: Some("csum-node".into()),
        ..Default::default()
    });
    let (xdp, _) = testrun::load(&engine, Capacity::default(), 3).unwrap();
    (xdp, engine)
}

/// Offsets of the IP header and the UDP header in a frame built from `spec`.
fn offsets(spec: &FrameSpec) -> (usize, usize) {
    let l3 = 14 + 4 * spec.vlans.len();
    let l4 = l3 + if spec.src.is_ipv6() { 40 } else { 20 };
    (l3, l4)
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The folded sum over the UDP pseudo-header and datagram: 0xffff when the checksum is right,
/// less by the error otherwise.
fn udp_sum(f: &[u8], l3: usize, l4: usize, v6: bool) -> u16 {
    let len = u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]) as usize;
    fold(pseudo_sum(f, l3, v6, len) + sum16(&f[l4..l4 + len]))
}

/// The sum of the UDP pseudo-header of a datagram of `len` octets (IP header at `l3`).
fn pseudo_sum(f: &[u8], l3: usize, v6: bool, len: usize) -> u32 {
    let addrs = if v6 {
        sum16(&f[l3 + 8..l3 + 40])
    } else {
        sum16(&f[l3 + 12..l3 + 20])
    };
    addrs + 17 + len as u32
}

/// The same for the IPv4 header.
fn ip_sum(f: &[u8], l3: usize) -> u16 {
    fold(sum16(&f[l3..l3 + 20]))
}

/// Runs `f` (UDP header at `l4`); asserts it is answered in XDP (counted as `kind`) with the
/// engine's answer to `dns`, and returns the answer frame.
fn answer(
    xdp: &mut XdpServer,
    engine: &Engine,
    f: &[u8],
    l4: usize,
    dns: &[u8],
    kind: u32,
) -> Vec<u8> {
    let before = xdp.counters().unwrap();
    let (action, out) = xdp.test_run(f).unwrap();
    let after = xdp.counters().unwrap();
    let moved: Vec<&str> = (0..before.len())
        .filter(|&i| after[i] != before[i])
        .map(|i| counter::NAMES[i])
        .collect();
    assert_eq!(moved, [counter::NAMES[kind as usize]], "counter moved");
    assert_eq!(action, XDP_TX);
    let udp_len = u16::from_be_bytes([out[l4 + 4], out[l4 + 5]]) as usize;
    let expected = engine.answer(dns, Transport::Udp).unwrap();
    assert_eq!(
        &out[l4 + 8..l4 + udp_len],
        &expected[..],
        "the engine's answer"
    );
    out
}

fn spec(v6: bool) -> FrameSpec {
    if v6 {
        FrameSpec::udp(IpAddr::V6(CLIENT_V6), IpAddr::V6(SERVER_V6), 53)
    } else {
        FrameSpec::udp(IpAddr::V4(CLIENT_V4), IpAddr::V4(SERVER_V4), 53)
    }
}

/// An OPT record: payload size (none: no OPT), DO, options.
type Edns = (Option<u16>, bool, Vec<(u16, Vec<u8>)>);

/// Queries over every path of the sum, with the counter of their answers.
fn queries() -> Vec<(Q, u32)> {
    // Name lengths: `www.example.` is 13 octets (odd), `shop.example.` 14 (even) and so on.
    let plain: [(&str, u16, u32); 5] = [
        ("www.example.", 1, counter::ANSWERED_EXACT),
        ("example.", 6, counter::ANSWERED_EXACT),
        ("a.shop.example.", 1, counter::ANSWERED_REFERRAL),
        ("ab.shop.example.", 28, counter::ANSWERED_REFERRAL),
        ("nothere.example.", 1, counter::ANSWERED_NEGATIVE),
    ];
    let edns: [Edns; 7] = [
        (None, false, vec![]),
        (Some(1232), false, vec![]),
        (Some(4096), true, vec![]),
        (Some(1232), false, vec![(OPTION_NSID, vec![])]),
        (
            Some(1232),
            true,
            vec![(OPTION_COOKIE, b"clientck".to_vec())],
        ),
        (Some(1400), true, vec![(OPTION_PADDING, vec![0; 5])]),
        (Some(1232), false, vec![(OPTION_COOKIE, vec![7; 16])]),
    ];
    let mut out = Vec::new();
    for (i, (name, qtype, kind)) in plain.iter().enumerate() {
        for (j, (payload, dnssec_ok, options)) in edns.iter().enumerate() {
            let q = Q {
                id: (i * 16 + j) as u16 * 257 + 1,
                edns: *payload,
                dnssec_ok: *dnssec_ok,
                options: options.clone(),
                ..Q::new(name, *qtype)
            };
            out.push((q, *kind));
        }
    }
    out
}

/// Frames of `dns` over each family, with and without VLAN tags.
fn frames(dns: &[u8]) -> Vec<(FrameSpec, Vec<u8>)> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        for vlans in [vec![], vec![(0x8100, 7)], vec![(0x88a8, 100), (0x8100, 7)]] {
            let mut s = spec(v6);
            s.vlans = vlans;
            let f = frame::build(&s, dns);
            out.push((s, f));
        }
    }
    out
}

#[test]
fn answers_to_right_checksums_have_right_checksums() {
    let (mut xdp, engine) = rig();
    for (q, kind) in queries() {
        let dns = q.wire();
        for (s, f) in frames(&dns) {
            let (_, l4) = offsets(&s);
            let out = answer(&mut xdp, &engine, &f, l4, &dns, kind);
            let p = frame::parse(&out).unwrap_or_else(|e| panic!("{} over {s:?}: {e:#}", q.name));
            assert_eq!(p.payload, engine.answer(&dns, Transport::Udp).unwrap());
        }
    }
}

#[test]
fn ipv4_queries_without_a_udp_checksum_get_right_checksums() {
    let (mut xdp, engine) = rig();
    for (q, kind) in queries() {
        let dns = q.wire();
        for (s, mut f) in frames(&dns).into_iter().filter(|(s, _)| !s.src.is_ipv6()) {
            let (_, l4) = offsets(&s);
            f[l4 + 6] = 0;
            f[l4 + 7] = 0;
            let out = answer(&mut xdp, &engine, &f, l4, &dns, kind);
            assert_ne!([out[l4 + 6], out[l4 + 7]], [0, 0], "a checksum is set");
            frame::parse(&out).unwrap_or_else(|e| panic!("{} over {s:?}: {e:#}", q.name));
        }
    }
}

/// A query sent with its checksum left to the hardware (CHECKSUM_PARTIAL, as over veth) carries
/// the sum of its pseudo-header in the field: its answer is summed in full.
#[test]
fn queries_with_partial_checksums_get_right_checksums() {
    let (mut xdp, engine) = rig();
    for (q, kind) in queries() {
        let dns = q.wire();
        for (s, mut f) in frames(&dns) {
            let (l3, l4) = offsets(&s);
            let partial = fold(pseudo_sum(&f, l3, s.src.is_ipv6(), f.len() - l4));
            f[l4 + 6..l4 + 8].copy_from_slice(&partial.to_be_bytes());
            let out = answer(&mut xdp, &engine, &f, l4, &dns, kind);
            frame::parse(&out).unwrap_or_else(|e| panic!("{} over {s:?}: {e:#}", q.name));
        }
    }
}

#[test]
fn wrong_checksums_stay_wrong_by_as_much() {
    let (mut xdp, engine) = rig();
    for (q, kind) in queries() {
        let dns = q.wire();
        for (s, f) in frames(&dns) {
            let (l3, l4) = offsets(&s);
            let v6 = s.src.is_ipv6();
            // Errors of 1 and 0x1234 in the UDP checksum, 3 in the IPv4 header's.
            for (err, ip_err) in [(1u16, 0u16), (0x1234, 3)] {
                let c = u16::from_be_bytes([f[l4 + 6], f[l4 + 7]]);
                let mut bad = f.clone();
                bad[l4 + 6..l4 + 8].copy_from_slice(&c.wrapping_add(err).to_be_bytes());
                if !v6 && ip_err != 0 {
                    let h = u16::from_be_bytes([f[l3 + 10], f[l3 + 11]]);
                    bad[l3 + 10..l3 + 12].copy_from_slice(&h.wrapping_add(ip_err).to_be_bytes());
                }
                let query_udp = udp_sum(&bad, l3, l4, v6);
                assert_ne!(query_udp, 0xffff, "the query's checksum is wrong");
                let out = answer(&mut xdp, &engine, &bad, l4, &dns, kind);
                let full = summed_in_full(&q);
                let answer_udp = udp_sum(&out, l3, l4, v6);
                if full {
                    // Summed in full: right whatever the query's was.
                    assert_eq!(answer_udp, 0xffff, "{}: options summed in full", q.name);
                } else {
                    assert_eq!(answer_udp, query_udp, "{}: UDP error kept", q.name);
                    assert!(frame::parse(&out).is_err(), "a client drops it");
                }
                if !v6 {
                    assert_eq!(ip_sum(&out, l3), ip_sum(&bad, l3), "IPv4 header error kept");
                }
            }
            // The frame untouched answers right (nothing carried over from the bad ones).
            let out = answer(&mut xdp, &engine, &f, l4, &dns, kind);
            frame::parse(&out).unwrap();
        }
    }
}
