//! The rig of the EDNS option tests (`xdp_edns`, `xdp_edns_layouts`): an engine with NSID
//! and DNS Cookies on a fixed clock, the XDP program loaded with its answers and EDNS settings
//! (the same fixed second, `EDNS_TEST_FIXED_TIME`), and the queries and frames they send.
#![allow(dead_code)]

use std::sync::Arc;

use dns_common::EDNS_TEST_FIXED_TIME;
use xdpdns::engine::cookie::{self, Cookies, Secret};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::xdp::Capacity;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::wire::name::Name;
use xdpdns::xfr::timers::Clock;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::FrameSpec;
use xdpdns_tests::oracle;
use xdpdns_tests::tld::Rng;
use xdpdns_tests::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6};

/// The second both paths see.
pub const NOW: u32 = 1_800_000_000;
pub const SECRET: &str = "445536bcd2513298075a5d379663c962";
pub const PREVIOUS: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

pub struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        NOW as u64
    }
}

pub fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn secret(s: &str) -> Secret {
    cookie::parse_secret(s).unwrap()
}

pub fn config(require: bool, nsid: &[u8]) -> EngineConfig {
    EngineConfig {
        nsid: Some(nsid.to_vec()),
        identity: Some("edns-node".into()),
        cookies: Some(Cookies {
            secret: secret(SECRET),
            previous: Some(secret(PREVIOUS)),
            require,
            clock: Arc::new(FixedClock),
        }),
        ..Default::default()
    }
}

pub struct Rig {
    pub xdp: XdpServer,
    pub engine: Engine,
    pub names: Vec<Name>,
}

/// The program loaded with these zones, its EDNS settings written from `config` (with the
/// fixed second) when `edns`.
pub fn rig(specs: &[String], config: EngineConfig, edns: bool) -> Rig {
    let specs: Vec<ZoneSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
    let (catalog, _) = load_catalog(&specs).unwrap();
    let engine = Engine::new(catalog, config);
    let (mut xdp, names) = xdpdns_tests::testrun::load(&engine, Capacity::default(), 5).unwrap();
    let mut e = xdpdns::fastpath::edns::config(&engine.config);
    if edns {
        e.flags |= EDNS_TEST_FIXED_TIME;
        e.test_time = NOW;
    } else {
        e.flags = 0;
    }
    xdp.set_edns(e).unwrap();
    Rig { xdp, engine, names }
}

impl Rig {
    /// Runs `q` in `spec` under the contract; returns whether XDP answered and the counter
    /// that moved.
    pub fn run(&mut self, spec: &FrameSpec, q: &Q) -> (bool, usize) {
        self.run_wire(spec, &q.wire())
    }

    /// `run` of the query message `wire`.
    pub fn run_wire(&mut self, spec: &FrameSpec, wire: &[u8]) -> (bool, usize) {
        let before = self.xdp.counters().unwrap();
        let answered = oracle::check(&mut self.xdp, &self.engine, spec, wire).is_some();
        let after = self.xdp.counters().unwrap();
        let moved: Vec<usize> = (0..after.len())
            .filter(|&i| after[i] != before[i])
            .collect();
        assert_eq!(moved.len(), 1, "one counter per packet: {moved:?}");
        (answered, moved[0])
    }

    /// The engine's answer to `q` from `spec`'s source.
    pub fn engine_answer(&self, spec: &FrameSpec, q: &Q) -> Vec<u8> {
        self.engine
            .answer_to(&q.wire(), Transport::Udp, spec.src)
            .unwrap()
    }
}

pub fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// A query frame from the test client to the test server, over IPv6 or IPv4.
pub fn addressing(v6: bool) -> FrameSpec {
    if v6 {
        FrameSpec::udp(CLIENT_V6.into(), SERVER_V6.into(), 53)
    } else {
        FrameSpec::udp(CLIENT_V4.into(), SERVER_V4.into(), 53)
    }
}

pub fn www(options: Vec<(u16, Vec<u8>)>) -> Q {
    let mut q = Q::new("www.example.", 1);
    q.options = options;
    q
}

/// The COOKIE data of an answer (the last option of its OPT, which ends the message).
pub fn answer_cookie(answer: &[u8]) -> Vec<u8> {
    let tail = &answer[answer.len() - 28..];
    assert_eq!(tail[..4], [0, 10, 0, 24], "COOKIE ends the answer");
    tail[4..].to_vec()
}
