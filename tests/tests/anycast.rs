//! Anycast addressing end to end: the service addresses sit on `lo` in the server's namespace
//! (and one more is in a prefix routed locally without an address, "AnyIP", which XDP knows only
//! from `--service-addr`), the client reaches them through
//! a route via the veth, and `xdpdns serve` listens on the wildcard address. Every answer, from
//! XDP or from userspace, must come from the address the query was sent to; the counters say
//! which path answered.

use std::net::{IpAddr, SocketAddr};

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::stats::Counters;
use xdpdns_tests::{counter_delta, ip, sh, TestNet, SERVER_V4, SERVER_V6};

const ANYCAST_V4: &str = "198.19.0.53";
const ANYCAST_V6: &str = "fd00:ff::53";
/// In a `local` route to `lo` (no address anywhere): XDP knows it only from --service-addr.
const ANYIP_V4: &str = "198.19.1.53";
const ANYIP_PREFIX: &str = "198.19.1.0/24";

/// A test net with the anycast addresses in the server namespace and routes to them from the
/// client's, and the server started with `extra`.
fn anycast_net(extra: &[&str]) -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let (s, c) = (net.server_ns.clone(), net.client_ns.clone());
    let v4 = format!("{ANYCAST_V4}/32");
    let v6 = format!("{ANYCAST_V6}/128");
    let (via4, via6) = (SERVER_V4.to_string(), SERVER_V6.to_string());
    for args in [
        vec!["-n", &s, "addr", "add", &v4, "dev", "lo"],
        vec!["-n", &s, "addr", "add", &v6, "dev", "lo", "nodad"],
        vec!["-n", &s, "route", "add", "local", ANYIP_PREFIX, "dev", "lo"],
        vec!["-n", &c, "route", "add", &v4, "via", &via4],
        vec!["-n", &c, "route", "add", ANYIP_PREFIX, "via", &via4],
        vec!["-n", &c, "-6", "route", "add", &v6, "via", &via6],
    ] {
        ip(&args).unwrap();
    }
    net.start_server(&[&xdpdns_tests::example_zone()], extra)
        .expect("server starts");
    net
}

/// A query for `name` that XDP leaves to userspace: it asks for EDNS EXPIRE (RFC 7314), which
/// userspace answers for secondary zones, so XDP passes it (`pass_edns_option`).
fn with_expire(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Q::new(name, qtype);
    q.options = vec![(9, Vec::new())];
    q.wire()
}

/// Sends `query` to `server` port 53 from the client namespace; the reply must come from that
/// address and port (client::udp ignores anything else, and fails when nothing else comes).
fn ask(net: &TestNet, server: &str, query: Vec<u8>) -> hickory_proto::op::Message {
    let to = SocketAddr::new(server.parse::<IpAddr>().unwrap(), 53);
    let reply = net
        .in_client(move || client::udp(to, &query))
        .unwrap()
        .unwrap_or_else(|e| panic!("no answer from {to}: {e:#}"));
    client::parse(&reply).unwrap()
}

fn moved(before: &Counters, after: &Counters) -> Vec<String> {
    let mut out: Vec<String> = after
        .names()
        .filter_map(|k| {
            let (b, a) = (before.get(k).ok()?, after.get(k).ok()?);
            (a > b).then(|| format!("{k}+{}", a - b))
        })
        .collect();
    out.sort();
    out
}

/// Asserts that, between `before` and `after`, XDP answered `xdp` queries (all exact answers)
/// and userspace `userspace` (UDP).
fn assert_paths(before: &Counters, after: &Counters, xdp: u64, userspace: u64) {
    let d = |k: &str| counter_delta(before, after, k).unwrap();
    let moved = moved(before, after);
    assert_eq!(d("xdp.answered"), xdp, "{moved:?}");
    assert_eq!(d("xdp.answered_exact"), xdp, "{moved:?}");
    assert_eq!(d("udp.responses"), userspace, "{moved:?}");
    assert_eq!(d("xdp.pass_edns_option"), userspace, "{moved:?}");
}

#[test]
fn xdp_and_userspace_answer_from_the_anycast_address_on_lo() {
    let net = anycast_net(&["--listen", "[::]:53", "--service-addr", ANYIP_V4]);
    // (server, qtype, answers): www.example. has two A records and one AAAA.
    for (server, qtype, n) in [(ANYCAST_V4, 1u16, 2), (ANYCAST_V6, 28, 1), (ANYIP_V4, 1, 2)] {
        // XDP: a plain query.
        let before = net.stats().unwrap();
        let m = ask(&net, server, Q::new("www.example.", qtype).wire());
        assert_eq!(m.answers.len(), n, "{server}: {m:?}");
        assert_paths(&before, &net.stats().unwrap(), 1, 0);
        // Userspace: with EXPIRE (over IPv4 on the v6 wildcard socket: v4-mapped).
        let before = net.stats().unwrap();
        let m = ask(&net, server, with_expire("www.example.", qtype));
        assert_eq!(m.answers.len(), n, "{server}: {m:?}");
        assert_paths(&before, &net.stats().unwrap(), 0, 1);
    }
    // And what the usual tools see: kdig without a cookie and dig with one (XDP), dig asking
    // for EXPIRE (userspace).
    let before = net.stats().unwrap();
    let query = |tool: &str, args: &[&str]| sh(net.client_cmd(tool).args(args)).unwrap();
    let (v4, v6) = (format!("@{ANYCAST_V4}"), format!("@{ANYCAST_V6}"));
    #[rustfmt::skip]
    let outs = [
        query("kdig", &[&v4, "+norec", "+timeout=2", "+retry=0", "www.example.", "A"]),
        query("dig", &[&v6, "+norec", "+cookie", "+time=2", "+tries=1", "www.example.", "AAAA"]),
        query("dig", &[&v4, "+norec", "+expire", "+time=2", "+tries=1", "www.example.", "A"]),
    ];
    for out in outs {
        assert!(
            out.contains("NOERROR") && out.contains("www.example."),
            "{out}"
        );
        assert!(!out.contains("unexpected source"), "{out}");
    }
    assert_paths(&before, &net.stats().unwrap(), 2, 1);
}

#[test]
fn an_ipv4_socket_answers_from_the_anycast_address_too() {
    // Userspace only, on an IPv4 wildcard socket (IP_PKTINFO rather than IPV6_PKTINFO).
    let net = anycast_net(&["--listen", "0.0.0.0:53", "--xdp-mode", "off"]);
    let before = net.stats().unwrap();
    for q in [
        Q::new("www.example.", 1).wire(),
        with_expire("www.example.", 1),
    ] {
        let m = ask(&net, ANYCAST_V4, q);
        assert_eq!(m.answers.len(), 2, "{m:?}");
    }
    // The interface's own address still works, from itself.
    let m = ask(
        &net,
        &SERVER_V4.to_string(),
        Q::new("www.example.", 1).wire(),
    );
    assert_eq!(m.answers.len(), 2, "{m:?}");
    let after = net.stats().unwrap();
    assert_eq!(counter_delta(&before, &after, "udp.responses").unwrap(), 3);
    assert!(after.get("xdp.answered").is_err(), "XDP is off");
}
