//! The XDP program on crafted frames through BPF_PROG_TEST_RUN (root, no network): answers are
//! byte-identical to the engine's, checksums are valid, and everything it must not answer is
//! passed unchanged and counted under the right reason. Signed answers, which make the packet
//! hundreds of octets longer, are checked both where it grows at the tail and at the head.

use std::net::IpAddr;

use dns_common::{counter, Config, CONFIG_TEST_GROW_AT_HEAD};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::compile;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::zone_file;

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn server_v4() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}
fn server_v6() -> IpAddr {
    "fd00::1".parse().unwrap()
}
fn client_v4() -> IpAddr {
    "198.18.0.2".parse().unwrap()
}
fn client_v6() -> IpAddr {
    "fd00::2".parse().unwrap()
}

struct Rig {
    xdp: XdpServer,
    engine: Engine,
}

/// A zone with a long name holding a large TXT, for the size limit.
fn extra_zone(dir: &std::path::Path) -> String {
    let long = [
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60),
        "d".repeat(50),
    ]
    .join(".");
    let txt = format!("\"{}\" \"{}\"", "x".repeat(200), "y".repeat(100));
    let text = format!(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 198.18.0.53\n{long} TXT {txt}\n{} A 198.18.0.7\n",
        longest_name().trim_end_matches(".big.test.")
    );
    // Tests run in parallel and each writes this file: written beside it and renamed over it,
    // so that a test loading it never reads one half written.
    let path = dir.join("big.test.zone");
    let tmp = dir.join(format!("big.test.zone.{:?}", std::thread::current().id()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path.display().to_string()
}

/// A name of exactly 255 octets in wire form.
fn longest_name() -> String {
    let n = format!(
        "{}.{}.{}.{}.big.test.",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(52)
    );
    assert_eq!(
        xdpdns::wire::name::Name::parse(&n, None)
            .unwrap()
            .wire()
            .len(),
        255
    );
    n
}

fn rig() -> Rig {
    let dir = std::env::temp_dir().join(format!("xdpdns-testrun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    rig_with(&[zone_file("example.zone"), extra_zone(&dir)], 0)
}

/// The program loaded with the entries of these zones, `Config::flags` as given.
fn rig_with(zones: &[String], flags: u16) -> Rig {
    let specs: Vec<ZoneSpec> = zones.iter().map(|s| s.parse().unwrap()).collect();
    let (catalog, _) = load_catalog(&specs).unwrap();
    let engine = Engine::new(
        catalog,
        EngineConfig {
            identity: Some("test-node".into()),
            ..Default::default()
        },
    );
    let mut xdp = XdpServer::load().unwrap();
    xdp.add_service_addr(server_v4()).unwrap();
    xdp.add_service_addr(server_v6()).unwrap();
    let mut entries = compile::Entries::default();
    compile::compile_chaos(&engine, 7, &mut entries);
    assert!(compile::compile_refused(&engine, 7, &mut entries));
    for z in engine.catalog.zones() {
        compile::compile_zone(&engine, z, 7, &mut entries);
    }
    xdp.insert(&entries).unwrap();
    xdp.set_config(Config {
        port: 53,
        server_payload: 1232,
        generation: 7,
        flags,
        ..Default::default()
    })
    .unwrap();
    Rig { xdp, engine }
}

fn spec(v6: bool) -> FrameSpec {
    if v6 {
        FrameSpec::udp(client_v6(), server_v6(), 53)
    } else {
        FrameSpec::udp(client_v4(), server_v4(), 53)
    }
}

impl Rig {
    /// Runs a frame; returns the action, the output and the counter that moved.
    fn run(&mut self, f: &[u8]) -> (u32, Vec<u8>, usize) {
        let before = self.xdp.counters().unwrap();
        let (action, out) = self.xdp.test_run(f).unwrap();
        let after = self.xdp.counters().unwrap();
        let moved: Vec<usize> = (0..before.len())
            .filter(|&i| after[i] != before[i])
            .collect();
        assert_eq!(
            moved.len(),
            1,
            "exactly one counter moves per packet: {moved:?}"
        );
        (action, out, moved[0])
    }

    /// Asserts the frame is answered in XDP with exactly the engine's response.
    fn expect_answer(&mut self, spec: &FrameSpec, dns: &[u8], kind: u32) {
        self.expect_answer_to(&frame::build(spec, dns), spec, dns, kind);
    }

    /// Asserts `f`, a frame of `spec` carrying `dns` (perhaps with Ethernet padding), is
    /// answered in XDP with exactly the engine's response.
    fn expect_answer_to(&mut self, f: &[u8], spec: &FrameSpec, dns: &[u8], kind: u32) {
        let (action, out, c) = self.run(f);
        assert_eq!(
            action,
            XDP_TX,
            "expected XDP_TX, counted {}",
            counter::NAMES[c]
        );
        assert_eq!(c, kind as usize, "counter");
        let p = frame::parse(&out).expect("valid checksums and lengths");
        assert_eq!(p.src, spec.dst);
        assert_eq!(p.dst, spec.src);
        assert_eq!(p.sport, spec.dport);
        assert_eq!(p.dport, spec.sport);
        assert_eq!(p.src_mac, frame::SERVER_MAC);
        assert_eq!(p.dst_mac, frame::CLIENT_MAC);
        assert_eq!(p.vlans, spec.vlans);
        let expected = self.engine.answer(dns, Transport::Udp).unwrap();
        assert_eq!(p.payload, expected, "XDP answer equals the engine's");
    }

    /// Either passed unchanged, or answered exactly as the engine answers.
    fn expect_pass_or_engine(&mut self, f: &[u8]) {
        let (action, out, _) = self.run(f);
        if action == XDP_TX {
            let p = frame::parse(&out).unwrap();
            let q = frame::parse(f).unwrap();
            assert_eq!(
                p.payload,
                self.engine.answer(&q.payload, Transport::Udp).unwrap()
            );
        } else {
            assert_eq!(out, f);
        }
    }

    /// Asserts the frame is passed unchanged, counted under `reason`.
    fn expect_pass(&mut self, f: &[u8], reason: u32) {
        let (action, out, c) = self.run(f);
        assert_eq!(action, XDP_PASS);
        assert_eq!(
            counter::NAMES[c],
            counter::NAMES[reason as usize],
            "pass reason"
        );
        assert_eq!(out, f, "passed packets are unchanged");
    }
}

#[test]
fn answers_a_and_aaaa_like_the_engine() {
    let mut r = rig();
    for v6 in [false, true] {
        for (name, qtype) in [
            ("www.example.", 1),
            ("WwW.ExAmPlE.", 28),
            ("ns1.nic.example", 1),
            ("example.", 28),
        ] {
            for edns in [None, Some(512), Some(1232), Some(4096)] {
                for dnssec_ok in [false, true] {
                    let mut q = Q::new(name, qtype);
                    q.edns = edns;
                    q.dnssec_ok = dnssec_ok && edns.is_some();
                    q.id = 0xbeef;
                    q.rd = true;
                    q.cd = dnssec_ok;
                    r.expect_answer(&spec(v6), &q.wire(), counter::ANSWERED_EXACT);
                }
            }
        }
    }
}

#[test]
fn answers_names_of_255_octets() {
    let mut r = rig();
    let name = longest_name().to_uppercase();
    for v6 in [false, true] {
        let mut q = Q::new(&name, 1);
        r.expect_answer(&spec(v6), &q.wire(), counter::ANSWERED_EXACT);
        q.edns = None;
        r.expect_answer(&spec(v6), &q.wire(), counter::ANSWERED_EXACT);
    }
}

#[test]
fn echoes_case_and_id_and_keeps_vlan_tags() {
    let mut r = rig();
    let mut q = Q::new("wWw.EXAMPLE.", 1);
    q.id = 0x0102;
    let mut s = spec(false);
    s.vlans = vec![(0x8100, 42)];
    r.expect_answer(&s, &q.wire(), counter::ANSWERED_EXACT);
    s.vlans = vec![(0x88a8, 5), (0x8100, 42)];
    let mut s6 = spec(true);
    s6.vlans = s.vlans.clone();
    r.expect_answer(&s6, &q.wire(), counter::ANSWERED_EXACT);
    // The echoed question keeps the sender's case.
    let out = r
        .xdp
        .test_run(&frame::build(&spec(false), &q.wire()))
        .unwrap()
        .1;
    let p = frame::parse(&out).unwrap();
    assert_eq!(&p.payload[..2], &[1, 2]);
    assert_eq!(&p.payload[13..16], b"wWw");
}

#[test]
fn ethernet_padding_is_dropped_from_the_answer() {
    let mut r = rig();
    let q = Q::new("www.example.", 1).wire();
    let mut f = frame::build(&spec(false), &q);
    f.extend_from_slice(&[0u8; 20]);
    let (action, out, _) = r.run(&f);
    assert_eq!(action, XDP_TX);
    let p = frame::parse(&out).unwrap();
    assert_eq!(p.payload, r.engine.answer(&q, Transport::Udp).unwrap());
}

fn with_dns(v6: bool, mutate: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut q = Q::new("www.example.", 1).wire();
    mutate(&mut q);
    frame::build(&spec(v6), &q)
}

#[test]
fn answers_referrals_nodata_and_nxdomain_like_the_engine() {
    let mut r = rig();
    use counter::*;
    for v6 in [false, true] {
        for (name, qtype, kind) in [
            ("shop.example.", 1, ANSWERED_REFERRAL),
            ("WWW.Shop.Example.", 28, ANSWERED_REFERRAL),
            ("a.b.c.shop.example.", 15, ANSWERED_REFERRAL),
            ("x.blog.example.", 1, ANSWERED_REFERRAL),
            ("www.example.", 16, ANSWERED_NEGATIVE),
            ("b.deep.example.", 1, ANSWERED_NEGATIVE),
            ("nope.example.", 1, ANSWERED_NEGATIVE),
            ("A.Very.Long.Nope.Example.", 28, ANSWERED_NEGATIVE),
            ("x.www.example.", 1, ANSWERED_NEGATIVE),
            // Names that also appear inside the templates.
            ("ns1.shop.example.", 1, ANSWERED_REFERRAL),
            ("a.ns1.Shop.example.", 1, ANSWERED_REFERRAL),
            ("hostmaster.nic.example.", 1, ANSWERED_NEGATIVE),
            ("x.hostmaster.nic.example.", 28, ANSWERED_NEGATIVE),
        ] {
            for edns in [None, Some(1232)] {
                let mut q = Q::new(name, qtype);
                q.edns = edns;
                q.id = 0x4242;
                r.expect_answer(&spec(v6), &q.wire(), kind);
            }
        }
    }
}

#[test]
fn unsigned_zones_share_entries_between_do_0_and_1_and_leave_ds_at_cuts_to_userspace() {
    let mut r = rig();
    // One DO=0 entry answers both (the engine's answers are the same without DNSSEC).
    for (name, qtype, kind) in [
        ("www.example.", 1, counter::ANSWERED_EXACT),
        ("a.shop.example.", 1, counter::ANSWERED_REFERRAL),
        ("nope.example.", 1, counter::ANSWERED_NEGATIVE),
    ] {
        let mut q = Q::new(name, qtype);
        q.dnssec_ok = true;
        r.expect_answer(&spec(false), &q.wire(), kind);
    }
    // Validators ask for DS only below signed zones: not compiled for an unsigned one.
    let q = Q::new("blog.example.", 43).wire();
    r.expect_pass(&frame::build(&spec(false), &q), counter::PASS_MISS);
}

#[test]
fn refuses_names_outside_the_zones_like_the_engine() {
    let mut r = rig();
    for (name, qtype) in [("example.org.", 1), ("WWW.Other-TLD.", 28), (".", 2)] {
        for v6 in [false, true] {
            for edns in [None, Some(1232)] {
                let mut q = Q::new(name, qtype);
                q.edns = edns;
                q.dnssec_ok = edns.is_some();
                q.rd = true;
                r.expect_answer(&spec(v6), &q.wire(), counter::ANSWERED_REFUSED);
            }
        }
    }
    // Inside a zone the zone's own entries decide; query types with rules of their own pass.
    r.expect_answer(
        &spec(false),
        &Q::new("nope.example.", 1).wire(),
        counter::ANSWERED_NEGATIVE,
    );
    r.expect_pass(
        &frame::build(&spec(false), &Q::new("example.org.", 252).wire()),
        counter::PASS_MISS,
    );
}

#[test]
fn answers_chaos_identity_like_the_engine() {
    let mut r = rig();
    for name in ["id.server.", "HOSTNAME.bind."] {
        for v6 in [false, true] {
            let mut q = Q::new(name, 16).wire();
            let n = q.len();
            q[n - 12] = 3; // class CH
            r.expect_answer(&spec(v6), &q, counter::ANSWERED_CHAOS);
        }
    }
    // version.bind is not configured: userspace refuses it.
    let mut q = Q::new("version.bind.", 16).wire();
    let n = q.len();
    q[n - 12] = 3;
    r.expect_pass(&frame::build(&spec(false), &q), counter::PASS_CLASS);
}

#[test]
fn passes_what_it_must_not_answer_with_the_right_reason() {
    let mut r = rig();
    use counter::*;
    // Answers that depend on more than a suffix, and query types with rules of their own.
    r.expect_pass(
        &frame::build(&spec(false), &Q::new("a.wild.example.", 1).wire()),
        PASS_MISS,
    );
    r.expect_pass(
        &frame::build(&spec(false), &Q::new("www.example.", 255).wire()),
        PASS_MISS,
    );
    r.expect_pass(
        &frame::build(&spec(false), &Q::new("www.example.", 46).wire()),
        PASS_MISS,
    );
    r.expect_pass(
        &frame::build(&spec(false), &Q::new("web.example.", 1).wire()),
        PASS_MISS,
    );
    // A label holding bytes that look like a shorter name must not match that name.
    let mut tricky = Q::new("www.example.", 1).wire();
    // The first label becomes "x\003www", followed by "example.".
    tricky.splice(12..16, [4u8, b'x', 3, b'w', b'w', b'w']);
    r.expect_pass_or_engine(&frame::build(&spec(false), &tricky));
    // Header rules.
    r.expect_pass(&with_dns(false, |q| q[2] |= 0x80), PASS_NOT_QUERY); // QR=1
    r.expect_pass(&with_dns(false, |q| q[2] |= 0x10), PASS_NOT_QUERY); // opcode 2
    r.expect_pass(&with_dns(false, |q| q[5] = 2), PASS_NOT_QUERY); // QDCOUNT=2
    r.expect_pass(&with_dns(false, |q| q[2] |= 0x02), PASS_NOT_QUERY); // TC=1
                                                                       // Malformed DNS.
    r.expect_pass(&with_dns(false, |q| q.truncate(15)), PASS_MALFORMED);
    r.expect_pass(&with_dns(false, |q| q.truncate(8)), PASS_MALFORMED);
    r.expect_pass(&with_dns(false, |q| q[12] = 0xc0), PASS_MALFORMED); // pointer in QNAME
    r.expect_pass(&with_dns(false, |q| q.push(0)), PASS_MALFORMED); // trailing byte
    r.expect_pass(&with_dns(false, |q| q[11] = 2), PASS_MALFORMED); // ARCOUNT=2
                                                                    // EDNS.
    let mut nsid = Q::new("www.example.", 1).wire();
    let n = nsid.len();
    nsid[n - 2..].copy_from_slice(&[0, 4]);
    nsid.extend_from_slice(&[0, 3, 0, 0]);
    r.expect_pass(&frame::build(&spec(false), &nsid), PASS_EDNS_OPTION);
    // EDNS version 1: the engine's BADVERS, in XDP.
    let mut badvers = Q::new("www.example.", 1).wire();
    let n = badvers.len();
    badvers[n - 5] = 1;
    r.expect_answer(&spec(true), &badvers, ANSWERED_BADVERS);
    // Class HS, and class CH for names other than the identity.
    r.expect_pass(
        &with_dns(false, |q| {
            let n = q.len();
            q[n - 12] = 4
        }),
        PASS_CLASS,
    );
    r.expect_pass(
        &with_dns(false, |q| {
            let n = q.len();
            q[n - 12] = 3
        }),
        PASS_CLASS,
    );
    // Too big for a client without EDNS: 12 + 235 + 4 + the TXT answer > 512.
    let long = format!(
        "{}.{}.{}.{}.big.test.",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60),
        "d".repeat(50)
    );
    let mut q = Q::new(&long, 16);
    q.edns = None;
    r.expect_pass(&frame::build(&spec(false), &q.wire()), PASS_TOO_BIG);
    q.edns = Some(1232);
    r.expect_answer(&spec(false), &q.wire(), ANSWERED_EXACT);
    // Not for us: other port, other address, not UDP/TCP, not IP.
    let q = Q::new("www.example.", 1).wire();
    let mut s = spec(false);
    s.dport = 5353;
    r.expect_pass(&frame::build(&s, &q), PASS_NOT_DNS);
    let mut s = spec(false);
    s.dst = "198.18.0.9".parse().unwrap();
    r.expect_pass(&frame::build(&s, &q), PASS_NOT_DNS);
    let mut s = spec(true);
    s.dst = "fd00::9".parse().unwrap();
    r.expect_pass(&frame::build(&s, &q), PASS_NOT_DNS);
    let mut arp = frame::build(&spec(false), &q);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    r.expect_pass(&arp, PASS_NOT_DNS);
    r.expect_pass(&arp[..14], PASS_NOT_DNS);
    // TCP to the service port.
    let mut s = spec(false);
    s.proto = 6;
    r.expect_pass(&frame::build(&s, &q), PASS_TCP);
    let mut s = spec(true);
    s.proto = 6;
    r.expect_pass(&frame::build(&s, &q), PASS_TCP);
    // IPv4 fragments and options.
    let mut f = frame::build(&spec(false), &q);
    f[14 + 6] |= 0x20; // MF
    r.expect_pass(&f, PASS_FRAGMENT);
    let mut f = frame::build(&spec(false), &q);
    f[14 + 7] = 1; // fragment offset
    r.expect_pass(&f, PASS_FRAGMENT);
    let mut f = frame::build(&spec(false), &q);
    f[14] = 0x46; // IHL 6: options
    r.expect_pass(&f, PASS_IP_OPTIONS);
    // IPv6 extension header (hop-by-hop).
    let mut f = frame::build(&spec(true), &q);
    f[14 + 6] = 0;
    r.expect_pass(&f, PASS_IPV6_EXT);
    // Bad UDP length.
    let mut f = frame::build(&spec(false), &q);
    f[14 + 20 + 5] += 1;
    r.expect_pass(&f, PASS_MALFORMED);
}

#[test]
fn generation_switch_hides_old_entries() {
    let mut r = rig();
    let q = Q::new("www.example.", 1).wire();
    let f = frame::build(&spec(false), &q);
    assert_eq!(r.run(&f).0, XDP_TX);
    let mut cfg = r.xdp.config().unwrap();
    cfg.generation = 8;
    r.xdp.set_config(cfg).unwrap();
    r.expect_pass(&f, counter::PASS_MISS);
}

/// Headroom BPF_PROG_TEST_RUN leaves before the frame (XDP_PACKET_HEADROOM), less the room
/// the kernel keeps for its `struct xdp_frame` (40 octets on 64-bit kernels): how far the
/// program can grow a packet at the head.
const TEST_RUN_HEADROOM: usize = 256 - 40;

#[test]
fn signed_answers_that_grow_the_packet_equal_the_engine_at_the_tail_and_at_the_head() {
    use counter::*;
    let zones = [
        format!("nsec.example.={}", zone_file("signed/nsec.example.zone")),
        format!("nsec3.example.={}", zone_file("signed/nsec3.example.zone")),
    ];
    // DO=1 answers with signatures and denial proofs: 100 to 450 octets longer than the query.
    let cases = [
        ("www.nsec.example.", 1, ANSWERED_EXACT),
        ("nsec.example.", 15, ANSWERED_EXACT),
        ("nsec3.example.", 15, ANSWERED_EXACT),
        ("nsec.example.", 48, ANSWERED_EXACT),
        ("www.nsec.example.", 16, ANSWERED_NEGATIVE),
        ("x.mail.nsec.example.", 28, ANSWERED_NEGATIVE),
        ("A.B.X.Mail.Nsec.Example.", 1, ANSWERED_NEGATIVE),
        ("www.secure.nsec3.example.", 1, ANSWERED_REFERRAL),
        ("a.b.SECURE.nsec3.example.", 28, ANSWERED_REFERRAL),
        ("www.insecure.nsec3.example.", 1, ANSWERED_REFERRAL),
    ];
    // Where the buffer has room (TEST_RUN's page) the packet grows at the tail.
    let mut r = rig_with(&zones, 0);
    let mut growths = Vec::new();
    for v6 in [false, true] {
        for (name, qtype, kind) in cases {
            let mut q = Q::new(name, qtype);
            q.dnssec_ok = true;
            q.id = 0x5151;
            let dns = q.wire();
            let growth = r.engine.answer(&dns, Transport::Udp).unwrap().len() - dns.len();
            assert!(growth > 100, "{name} {qtype}: grows by {growth}");
            growths.push(growth);
            r.expect_answer(&spec(v6), &dns, kind);
        }
    }
    growths.sort();
    println!("signed answers grow the packet by {growths:?} octets");
    // Where it has none (veth), at the head, as far as the headroom allows: the test build
    // takes that path always when asked. Ethernet padding after the query sets how far the
    // packet grows, so that each answer is tried at the limit and one octet past it.
    let mut r = rig_with(&zones, CONFIG_TEST_GROW_AT_HEAD);
    let (mut at_limit, mut under) = (0, 0);
    for v6 in [false, true] {
        for (name, qtype, kind) in cases {
            let mut q = Q::new(name, qtype);
            q.dnssec_ok = true;
            let dns = q.wire();
            let growth = r.engine.answer(&dns, Transport::Udp).unwrap().len() - dns.len();
            let f = frame::build(&spec(v6), &dns);
            if growth <= TEST_RUN_HEADROOM {
                r.expect_answer_to(&f, &spec(v6), &dns, kind);
                under += 1;
                continue;
            }
            r.expect_pass(&f, PASS_NO_ROOM);
            let padded = |pad: usize| [f.clone(), vec![0u8; pad]].concat();
            let pad = growth - TEST_RUN_HEADROOM;
            r.expect_pass(&padded(pad - 1), PASS_NO_ROOM);
            r.expect_answer_to(&padded(pad), &spec(v6), &dns, kind);
            at_limit += 1;
        }
    }
    println!("grown at the head: {under} within the headroom, {at_limit} at its limit");
    assert!(under >= 2 && at_limit >= 2, "{under} {at_limit}");
}
