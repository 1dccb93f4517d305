//! The index maps keyed by a hash of the name (`SUFFIXES`, `ANSWERS`) through
//! BPF_PROG_TEST_RUN: an entry found under a query's key but made for another name — what a
//! hash collision would leave — sends the query to userspace instead of answering it (never on
//! to a shorter suffix's or the NODATA answer), and userspace refuses to write an entry over
//! another name's.

use dns_common::counter;
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::compile::{key, suffix_key};
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::wire::name::Name;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::{zone_file, CLIENT_V4, SERVER_V4};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn engine() -> Engine {
    let spec: ZoneSpec = zone_file("example.zone").parse().unwrap();
    let (catalog, _) = load_catalog(&[spec]).unwrap();
    Engine::new(catalog, EngineConfig::default())
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn spec() -> FrameSpec {
    FrameSpec::udp(CLIENT_V4.into(), SERVER_V4.into(), 53)
}

/// Runs a query of `qname` and `qtype`: the action, the frame out, the counters that moved and
/// the query.
fn run_type(xdp: &mut XdpServer, qname: &str, qtype: u16) -> (u32, Vec<u8>, Vec<usize>, Vec<u8>) {
    let dns = Q::new(qname, qtype).wire();
    let before = xdp.counters().unwrap();
    let (action, out) = xdp.test_run(&frame::build(&spec(), &dns)).unwrap();
    let after = xdp.counters().unwrap();
    let moved: Vec<usize> = (0..before.len())
        .filter(|&i| after[i] != before[i])
        .collect();
    (action, out, moved, dns)
}

#[test]
fn an_entry_under_a_suffix_key_for_another_name_is_passed_not_answered() {
    let engine = engine();
    let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, Default::default(), 7).unwrap();
    let spec = spec();
    let run = |xdp: &mut XdpServer, qname: &str| run_type(xdp, qname, 1);
    // Answered in XDP, as the engine answers, before.
    let (action, out, moved, dns) = run(&mut xdp, "www.shop.example.");
    assert_eq!(
        (action, moved),
        (XDP_TX, vec![counter::ANSWERED_REFERRAL as usize])
    );
    let p = frame::parse(&out).unwrap();
    assert_eq!(p.payload, engine.answer(&dns, Transport::Udp).unwrap());

    // shop.example.'s key now holds an entry made for other.example.: the walk finds it,
    // the names differ, and the query goes to userspace (never to a shorter suffix's answer,
    // the zone's NXDOMAIN).
    let shop = suffix_key(&name("shop.example."), false, 7);
    let other = suffix_key(&name("other.example."), false, 7);
    let entry = xdp.suffixes.get(&shop).unwrap().unwrap();
    xdp.suffixes.plant(&shop, &other, entry).unwrap();
    for q in ["www.shop.example.", "shop.example.", "a.b.shop.example."] {
        let (action, out, moved, _) = run(&mut xdp, q);
        assert_eq!(action, XDP_PASS, "{q}");
        assert_eq!(moved, vec![counter::PASS_MISS as usize], "{q}");
        assert_eq!(
            out,
            frame::build(&spec, &Q::new(q, 1).wire()),
            "{q}: unchanged"
        );
    }
    // Other names are answered as before.
    let (action, _, moved, _) = run(&mut xdp, "nope.example.");
    assert_eq!(
        (action, moved),
        (XDP_TX, vec![counter::ANSWERED_NEGATIVE as usize])
    );
    // Userspace does not see the planted entry as shop.example.'s, and will not write
    // shop.example.'s entry over it.
    assert_eq!(xdp.suffixes.get(&shop).unwrap(), None);
    let e = xdp.suffixes.insert(&shop, entry).unwrap_err();
    assert!(format!("{e:#}").contains("collision"), "{e:#}");
}

#[test]
fn an_answer_entry_under_a_key_for_another_name_is_passed_not_taken_for_nodata() {
    let engine = engine();
    let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, Default::default(), 7).unwrap();
    // The apex SOA is answered in XDP, as the engine answers, before.
    let (action, out, moved, dns) = run_type(&mut xdp, "example.", 6);
    assert_eq!(
        (action, moved),
        (XDP_TX, vec![counter::ANSWERED_EXACT as usize])
    );
    let p = frame::parse(&out).unwrap();
    assert_eq!(p.payload, engine.answer(&dns, Transport::Udp).unwrap());
    // Its key now holds an entry made for www.example.: passed, not answered from the apex's
    // NODATA entry, which a miss would reach.
    let soa = key(&name("example."), 6, 0, false, 7);
    let other = key(&name("www.example."), 6, 0, false, 7);
    let entry = xdp.answers.get(&soa).unwrap().unwrap();
    xdp.answers.plant(&soa, &other, entry).unwrap();
    let (action, out, moved, dns) = run_type(&mut xdp, "example.", 6);
    assert_eq!(
        (action, moved),
        (XDP_PASS, vec![counter::PASS_MISS as usize])
    );
    assert_eq!(out, frame::build(&spec(), &dns), "unchanged");
    // The apex's other types are answered as before.
    let (action, _, moved, _) = run_type(&mut xdp, "example.", 2);
    assert_eq!(
        (action, moved),
        (XDP_TX, vec![counter::ANSWERED_EXACT as usize])
    );
    assert_eq!(xdp.answers.get(&soa).unwrap(), None);
    let e = xdp.answers.insert(&soa, entry).unwrap_err();
    assert!(format!("{e:#}").contains("collision"), "{e:#}");
}

#[test]
fn the_deep_filter_clears_the_bit_of_every_deep_entry_and_no_other() {
    let engine = engine();
    let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, Default::default(), 7).unwrap();
    let generation = xdp.config().unwrap().generation;
    let (filter, deep) = xdp.suffixes.deep_filter(generation).unwrap();
    // example.zone has names of three labels (its own, below the apex): the walk filters.
    assert!(!deep.is_empty(), "no deep entries in example.zone");
    let mut clear = std::collections::HashSet::new();
    for h in &deep {
        let (w, bit) = dns_common::filter_bit(*h);
        assert_eq!(
            filter[w as usize] & bit,
            0,
            "a deep entry's bit is set (excluded)"
        );
        clear.insert((w, bit));
    }
    let zeros: u32 = filter.iter().map(|w| w.count_zeros()).sum();
    assert_eq!(
        zeros as usize,
        clear.len(),
        "bits clear that no deep entry selects"
    );
    // Deep names that exist are still found (answered in XDP as the engine answers them), as
    // is a deep name under a delegation (a miss at its own depth, then the referral).
    for qname in ["ns1.nic.example.", "a.b.deep.example.", "www.shop.example."] {
        let (action, out, _, dns) = run_type(&mut xdp, qname, 1);
        assert_eq!(action, XDP_TX, "{qname}");
        let p = frame::parse(&out).unwrap();
        assert_eq!(
            p.payload,
            engine.answer(&dns, Transport::Udp).unwrap(),
            "{qname}"
        );
    }
}
