//! The XDP contract on one frame, for the differential tests: run it through the program with
//! BPF_PROG_TEST_RUN; an `XDP_TX` must carry exactly the engine's answer to the query (valid
//! headers and checksums, addresses and ports swapped), an `XDP_PASS` must leave the frame
//! unchanged. Panics on a breach.

use xdpdns::engine::{Engine, Transport};
use xdpdns::fastpath::xdp::XdpServer;

use crate::frame::{self, FrameSpec};

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
                .map(|e| e.answer(&query, Transport::Udp))
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
