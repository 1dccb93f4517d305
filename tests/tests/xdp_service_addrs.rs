//! Which packets the XDP program takes as addressed to it, through BPF_PROG_TEST_RUN (root, no
//! network): with up to `SERVICE_INLINE` service addresses the program compares with the
//! configuration's copy of them, with more it looks them up in `SERVICE_ADDRS`. Either way a
//! query to each service address (IPv4 and IPv6) is answered as the engine answers it, and one
//! to any other address is passed unchanged as `pass_not_dns`; after the addresses change
//! (`set_service_addrs`, as an adoption does), the old ones are passed and the new answered.

use std::net::IpAddr;

use dns_common::{counter, SERVICE_INLINE};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::{testrun, CLIENT_V4, CLIENT_V6};

const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn engine() -> Engine {
    testrun::example_engine(EngineConfig::default())
}

/// `n` IPv4 and `n` IPv6 addresses, none of them the test defaults (198.18.0.1, fd00::1).
fn addrs(n: usize, base: u8) -> Vec<IpAddr> {
    (0..n)
        .flat_map(|i| {
            let i = base + i as u8;
            [
                IpAddr::from([198, 18, 7, i]),
                IpAddr::from([0xfd00, 7, 0, 0, 0, 0, 0, i as u16]),
            ]
        })
        .collect()
}

/// Runs a query to `dst`: `Some(kind)` when answered (with the engine's answer), `None` when
/// passed unchanged as `pass_not_dns`.
fn query(xdp: &mut XdpServer, engine: &Engine, dst: IpAddr) -> Option<usize> {
    let src = if dst.is_ipv6() {
        IpAddr::V6(CLIENT_V6)
    } else {
        IpAddr::V4(CLIENT_V4)
    };
    let dns = Q::new("www.example.", 1).wire();
    let f = frame::build(&FrameSpec::udp(src, dst, 53), &dns);
    let before = xdp.counters().unwrap();
    let (action, out) = xdp.test_run(&f).unwrap();
    let after = xdp.counters().unwrap();
    let moved: Vec<usize> = (0..before.len())
        .filter(|&i| after[i] != before[i])
        .collect();
    assert_eq!(moved.len(), 1, "one counter moves");
    if action == XDP_PASS {
        assert_eq!(counter::NAMES[moved[0]], "pass_not_dns", "to {dst}");
        assert_eq!(out, f, "passed unchanged");
        return None;
    }
    assert_eq!(action, XDP_TX, "to {dst}");
    let p = frame::parse(&out).unwrap();
    assert_eq!(p.src, dst);
    assert_eq!(p.payload, engine.answer(&dns, Transport::Udp).unwrap());
    Some(moved[0])
}

/// The program loaded with `service` as its service addresses only.
fn rig(engine: &Engine, service: &[IpAddr]) -> XdpServer {
    let (mut xdp, _) = testrun::load(engine, Capacity::default(), 2).unwrap();
    xdp.set_service_addrs(service).unwrap();
    let check = xdp.check_service(service).unwrap();
    assert!(check.lines().is_empty(), "{:?}", check.lines());
    xdp
}

fn expect(xdp: &mut XdpServer, engine: &Engine, answered: &[IpAddr], passed: &[IpAddr]) {
    for a in answered {
        assert_eq!(
            query(xdp, engine, *a),
            Some(counter::ANSWERED_EXACT as usize),
            "{a} is a service address"
        );
    }
    for a in passed {
        assert_eq!(query(xdp, engine, *a), None, "{a} is not one");
    }
}

#[test]
fn inline_service_addresses_are_answered_and_others_passed() {
    let engine = engine();
    for n in 1..=SERVICE_INLINE / 2 {
        let service = addrs(n, 1);
        let mut xdp = rig(&engine, &service);
        assert_eq!(xdp.config().unwrap().service_count as usize, 2 * n);
        expect(&mut xdp, &engine, &service, &addrs(2, 100));
    }
    // Just one, IPv4 only: the IPv6 slots are empty.
    let v4 = addrs(1, 1)[..1].to_vec();
    let mut xdp = rig(&engine, &v4);
    expect(&mut xdp, &engine, &v4, &addrs(1, 1)[1..]);
}

#[test]
fn more_service_addresses_than_the_config_holds_are_looked_up() {
    let engine = engine();
    let service = addrs(SERVICE_INLINE, 1);
    assert!(service.len() > SERVICE_INLINE);
    let mut xdp = rig(&engine, &service);
    let cfg = xdp.config().unwrap();
    assert_eq!(cfg.service_count as usize, service.len());
    assert!(cfg.service.iter().all(|s| *s == [0, 0]), "none inline");
    expect(&mut xdp, &engine, &service, &addrs(2, 100));
}

#[test]
fn changed_service_addresses_take_effect_both_ways() {
    let engine = engine();
    let few = addrs(1, 1);
    let many = addrs(SERVICE_INLINE, 10);
    let mut xdp = rig(&engine, &few);
    // From inline to the hash, and back.
    xdp.set_service_addrs(&many).unwrap();
    assert!(xdp.check_service(&many).unwrap().lines().is_empty());
    expect(&mut xdp, &engine, &many, &few);
    xdp.set_service_addrs(&few).unwrap();
    assert!(xdp.check_service(&few).unwrap().lines().is_empty());
    expect(&mut xdp, &engine, &few, &many);
    // A check against other addresses finds the differences.
    let lines = xdp.check_service(&many).unwrap().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("missing: service address 198.18.7.10")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("unexpected: service address 198.18.7.1")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("different: the configuration's")),
        "{lines:?}"
    );
}
