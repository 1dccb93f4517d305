//! A signed zone through the secondary service (issue 10): knotd signs the registry's zone
//! (automatic DNSSEC signing) and NOTIFYs the edge; xdpdns transfers it (AXFR, then IXFR for a
//! change that knotd re-signs) and answers DO=1 queries from XDP and userspace with exactly the
//! records knotd answers: the same RRSIGs and NSEC proofs, serial by serial.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::upstream::{primary_options, secondary_args, Upstream, UPSTREAM_V4};
use xdpdns_tests::{in_netns, TestNet, SERVER_V4};

const SECRET: &[u8] = b"xdpdns signed secondary test key";

fn key() -> TsigKey {
    TsigKey::new("edge-signed.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.80\n\
         child NS ns.child\nns.child A 198.18.0.90\n{extra}"
    )
}

/// `q` asked of `server` (in namespace `ns`) with DO=1 and no EDNS options.
fn ask(ns: &str, server: IpAddr, name: &str, qtype: u16) -> Message {
    let mut q = Q::new(name, qtype);
    q.dnssec_ok = true;
    let wire = q.wire();
    let r = in_netns(ns, move || client::udp(SocketAddr::new(server, 53), &wire))
        .unwrap()
        .unwrap_or_else(|e| panic!("no answer for {name}: {e:#}"));
    client::parse(&r).unwrap()
}

/// A section as a sorted list of records, TTLs included.
fn sorted(rs: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

fn serial(m: &Message) -> Option<u32> {
    m.answers.iter().find_map(|a| match &a.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// Asks the edge (from the client) and knotd (from the upstream namespace) the same questions
/// and asserts identical answer and authority sections, with signatures.
fn same_as_knot(net: &TestNet, up: &Upstream, questions: &[(&str, u16)]) {
    for &(name, qtype) in questions {
        let ours = ask(&net.client_ns, IpAddr::V4(SERVER_V4), name, qtype);
        let knots = ask(&up.ns, IpAddr::V4(UPSTREAM_V4), name, qtype);
        assert_eq!(
            ours.metadata.response_code, knots.metadata.response_code,
            "{name} {qtype}"
        );
        assert_eq!(
            sorted(&ours.answers),
            sorted(&knots.answers),
            "{name} {qtype}"
        );
        assert_eq!(
            sorted(&ours.authorities),
            sorted(&knots.authorities),
            "{name} {qtype}"
        );
        let sigs = ours
            .answers
            .iter()
            .chain(&ours.authorities)
            .filter(|r| r.record_type() == hickory_proto::rr::RecordType::RRSIG)
            .count();
        assert!(sigs > 0, "{name} {qtype}: no DNSSEC records in {ours:?}");
    }
}

#[test]
fn a_signed_zone_is_transferred_and_served_with_the_primarys_signatures() {
    let mut net = TestNet::new().unwrap();
    let up = Upstream::new(&net).unwrap();
    let opts = KnotOptions {
        dnssec: true,
        ..primary_options(&up, key())
    };
    let knot = KnotPrimary::start(&net, 53, "tld.", &zone(1, ""), &opts).unwrap();
    let k = key();
    let args = secondary_args(&net, "tld.", &k);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    net.start_server_with(&[], &a, &[]).unwrap();

    let primary_serial = || serial(&ask(&up.ns, IpAddr::V4(UPSTREAM_V4), "tld.", 6)).unwrap();
    let first = primary_serial();
    net.wait_for_status("the signed zone", |s| {
        s.contains(&format!("secondary tld. serial {first} "))
    })
    .unwrap();
    let questions = [
        ("tld.", 6),
        ("tld.", 48),
        ("www.tld.", 1),
        ("nope.tld.", 1),
        ("www.tld.", 28),
        ("a.child.tld.", 1),
    ];
    let before = net.stats().unwrap();
    same_as_knot(&net, &up, &questions);
    let after = net.stats().unwrap();
    let xdp = xdpdns_tests::counter_delta(&before, &after, "xdp.answered").unwrap();
    assert!(xdp >= 4, "most DO=1 answers came from XDP ({xdp})");

    // A change: knotd re-signs it and NOTIFYs; the edge takes it by IXFR.
    let before = net.stats().unwrap();
    knot.update(&zone(first + 1, "new A 198.18.0.99\nwww2 AAAA fd00::80\n"))
        .unwrap();
    let second = primary_serial();
    assert!(
        second > first,
        "knotd serves the change ({first} -> {second})"
    );
    net.wait_for_status("the re-signed change", |s| {
        s.contains(&format!("secondary tld. serial {second} "))
    })
    .unwrap();
    let after = net.stats().unwrap();
    let d = |n| xdpdns_tests::counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.transfers_ixfr"), 1, "{}", net.server_log());
    assert_eq!(d("xfr.transfers_axfr"), 0);
    assert_eq!(d("xfr.failures"), 0);
    // The change adds names, so the NSEC chain changes: the XDP maps hold the NSEC records
    // and the sorted labels of the NSEC denials per generation, and such a change is
    // published in full (an IXFR that changes only unsigned names stays incremental, see
    // xdp_incremental). The answers below are the full publication's.
    assert_eq!(
        (d("xfr.publish_incremental"), d("xfr.publish_full")),
        (0, 1)
    );
    assert!(
        net.server_log()
            .contains("publishing XDP in full: the NSEC3 or NSEC chain"),
        "{}",
        net.server_log()
    );
    let mut questions = questions.to_vec();
    questions.extend([("new.tld.", 1), ("www2.tld.", 28), ("new.tld.", 28)]);
    same_as_knot(&net, &up, &questions);
}
