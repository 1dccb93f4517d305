//! The XDP contract on one frame, for the differential tests: run it through the program with
//! BPF_PROG_TEST_RUN; an `XDP_TX` must carry exactly the engine's answer to the query from the
//! frame's source address (valid headers and checksums, addresses and ports swapped), an
//! `XDP_PASS` must leave the frame unchanged. Panics on a breach. Also the generator of the
//! differential corpus (`corpus_query`, `spec`).

use std::net::IpAddr;

use xdpdns::engine::{Engine, Transport};
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::wire::name::Name;

use crate::client::Q;
use crate::frame::{self, FrameSpec};
use crate::tld::Rng;

pub const XDP_TX: u32 = 3;
pub const XDP_PASS: u32 = 2;

/// The UDP payload of a frame laid out as `frame::build` does, as far as the UDP length says
/// (what a socket would receive); checksums are not checked.
pub fn udp_payload(spec: &FrameSpec, f: &[u8]) -> Vec<u8> {
    let l3 = 14 + 4 * spec.vlans.len();
    let l4 = l3 + if spec.src.is_ipv6() { 40 } else { 20 };
    let len = u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]) as usize;
    f[l4 + 8..(l4 + len).min(f.len())].to_vec()
}

/// Runs the query `dns` in a frame `spec` through `xdp`; checks the contract against
/// `engine`. Returns the XDP answer, if XDP answered.
pub fn check(
    xdp: &mut XdpServer,
    engine: &Engine,
    spec: &FrameSpec,
    dns: &[u8],
) -> Option<Vec<u8>> {
    check_any(xdp, &[engine], spec, dns)
}

/// `check`, where the answer may be that of any of `engines` (the versions of the zones
/// before and after an update, while it is being written).
pub fn check_any(
    xdp: &mut XdpServer,
    engines: &[&Engine],
    spec: &FrameSpec,
    dns: &[u8],
) -> Option<Vec<u8>> {
    let f = frame::build(spec, dns);
    let (action, out) = xdp.test_run(&f).expect("BPF_PROG_TEST_RUN");
    match action {
        XDP_TX => {
            let p = frame::parse(&out).expect("an XDP answer has valid headers and checksums");
            let query = udp_payload(spec, &f);
            let expected: Vec<Option<Vec<u8>>> = engines
                .iter()
                .map(|e| e.answer_to(&query, Transport::Udp, spec.src))
                .collect();
            assert!(
                expected.contains(&Some(p.payload.clone())),
                "XDP answer differs from the engine for {dns:02x?}"
            );
            assert_eq!(
                (p.src, p.dst, p.sport, p.dport),
                (spec.dst, spec.src, spec.dport, spec.sport)
            );
            Some(p.payload)
        }
        XDP_PASS => {
            assert_eq!(out, f, "passed packets are unchanged");
            None
        }
        other => panic!("unexpected XDP action {other}"),
    }
}

/// A random frame addressing: IPv4 or IPv6, a random source port, zero, one or two VLAN tags.
pub fn spec(rng: &mut Rng) -> FrameSpec {
    let v6 = rng.chance(50);
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap())
    } else {
        ("198.18.0.2".parse().unwrap(), "198.18.0.1".parse().unwrap())
    };
    let mut s = FrameSpec::udp(src, dst, 53);
    s.sport = 1024 + rng.below(60000) as u16;
    s.vlans = match rng.below(4) {
        0 => vec![(0x8100, 10)],
        1 => vec![(0x88a8, 20), (0x8100, 30)],
        _ => vec![],
    };
    s
}

const TYPES: [u16; 22] = [
    1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 43, 46, 47, 48, 50, 51, 52, 64, 65, 257, 255, 65000,
];

/// A corpus query: existing names, names below them, random labels, random case, all types.
pub fn corpus_q(rng: &mut Rng, names: &[Name]) -> Q {
    let base = names[rng.below(names.len() as u64) as usize].to_string();
    let name = match rng.below(4) {
        0 => base,
        1 => format!("{}.{base}", rng.label()),
        2 => format!("{}.{}.{base}", rng.label(), rng.label()),
        _ => format!("www.{base}"),
    };
    let name = if name.starts_with("www..") {
        "www.".to_string()
    } else {
        name
    };
    let mut q = Q::new(
        &rng.mix_case(&name),
        TYPES[rng.below(TYPES.len() as u64) as usize],
    );
    q.id = rng.next_u64() as u16;
    q.rd = rng.chance(50);
    q.cd = rng.chance(20);
    q.edns = [None, Some(512), Some(1232), Some(4096)][rng.below(4) as usize];
    q.dnssec_ok = q.edns.is_some() && rng.chance(50);
    q
}

/// `corpus_q` in wire form.
pub fn corpus_query(rng: &mut Rng, names: &[Name]) -> Vec<u8> {
    corpus_q(rng, names).wire()
}

/// Mutates a packet: flips, overwrites, truncates or extends bytes.
pub fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if f.is_empty() {
            return;
        }
        let i = rng.below(f.len() as u64) as usize;
        match rng.below(6) {
            0 => f[i] ^= 1 << rng.below(8),
            1 => f[i] = rng.next_u64() as u8,
            2 => f.truncate(i.max(14)),
            3 => f.extend((0..rng.below(40)).map(|_| rng.next_u64() as u8)),
            4 => f[i] = [0, 0xff, 0xc0, 0x3f, 0x40][rng.below(5) as usize],
            _ => {
                let j = rng.below(f.len() as u64) as usize;
                f.swap(i, j);
            }
        }
    }
}
