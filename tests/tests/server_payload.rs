//! `xdpdns serve --server-payload N` end to end over a veth: for several values of N, kdig's
//! queries are answered by the XDP program (the `xdpdns stats` counters say so, and userspace
//! sees none of them), and the reply's OPT record carries N.

use xdpdns_tests::stats::delta;
use xdpdns_tests::{sh, zone_file, TestNet};

/// The "UDP size" of kdig's EDNS pseudosection (";; Version: 0; flags: ; UDP size: N B; ...").
fn udp_size(out: &str) -> Option<u16> {
    let line = out.lines().find(|l| l.starts_with(";; Version: "))?;
    let (_, rest) = line.split_once("UDP size: ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn xdp_answers_with_the_configured_server_payload() {
    for payload in [512u16, 1232, 1400, 4096] {
        let mut net = TestNet::new().expect("test namespaces");
        net.start_server(
            &[&zone_file("example.zone")],
            &[
                "--listen",
                "[::]:53",
                "--server-payload",
                &payload.to_string(),
            ],
        )
        .expect("server starts");
        let before = net.stats().unwrap();
        let mut replies = Vec::new();
        // An exact answer, a referral and an NXDOMAIN, over IPv4 and IPv6.
        for (server, name, qtype) in [
            ("@198.18.0.1", "www.example.", "A"),
            ("@fd00::1", "www.example.", "AAAA"),
            ("@198.18.0.1", "www.shop.example.", "A"),
            ("@fd00::1", "nope.example.", "A"),
        ] {
            let out = sh(net
                .client_cmd("kdig")
                .args(["+norec", "+timeout=2", "+retry=0", "+bufsize=4096"])
                .args([server, name, qtype]))
            .unwrap();
            replies.push(out);
        }
        let after = net.stats().unwrap();
        for out in &replies {
            assert_eq!(
                udp_size(out),
                Some(payload),
                "the reply's OPT record carries the server payload:\n{out}"
            );
        }
        let d = |k: &str| delta(&before, &after, k);
        assert_eq!(
            (
                d("xdp.answered_exact"),
                d("xdp.answered_referral"),
                d("xdp.answered_negative")
            ),
            (2, 1, 1),
            "server payload {payload}: answered in XDP\n{}",
            net.server_log()
        );
        assert_eq!(
            d("udp.queries"),
            0,
            "server payload {payload}: userspace saw none"
        );
    }
}
