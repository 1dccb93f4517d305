//! One instance of a region feeding the others (issue 10 item 7), end to end: a knotd registry
//! primary in a namespace behind the edge's, xdpdns at the edge as its secondary, and knotd as
//! a downstream secondary of xdpdns. The downstream bootstraps by AXFR from us (its TSIG-signed
//! SOA check answered signed); a change at the registry reaches us by IXFR, we NOTIFY the
//! downstream, and it takes the change from us by IXFR from our journal. A request from an
//! address outside the zone's ACL, or signed with a wrong key, is refused and counted. SOA
//! queries asking for EDNS EXPIRE learn the time left here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use xdpdns::wire::name::Name;
use xdpdns::wire::record::rtype;
use xdpdns::xfr::message;
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::downstream::{wait_serial, KnotSecondary};
use xdpdns_tests::primary::{KnotPrimary, TsigKey};
use xdpdns_tests::upstream::{primary_options, secondary_args, Upstream};
use xdpdns_tests::{counter_delta, in_netns, TestNet, SERVER_V4};

const SECRET: &[u8] = b"xdpdns feeding the region's edges";

fn key() -> TsigKey {
    TsigKey::new("region.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32, extra: &str) -> String {
    let mut hosts = String::new();
    for i in 0..500 {
        hosts.push_str(&format!("h{i} A 198.18.1.{}\n", i % 250));
    }
    format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.80\n{hosts}{extra}"
    )
}

/// An AXFR of `tld.` from the edge, from namespace `ns`, signed with `key`: the records, or the
/// error.
fn axfr_from(ns: &str, key: Option<TsigKey>) -> Result<usize, String> {
    let to = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
    in_netns(ns, move || {
        let p = xdpdns::xfr::client::Primary::new(to, key.map(|k| k.key()));
        p.axfr(&Name::parse("tld.", None).unwrap())
            .map(|(records, _)| records.len())
            .map_err(|e| e.to_string())
    })
    .unwrap()
}

#[test]
fn a_downstream_follows_us_by_axfr_then_ixfr_and_others_are_refused() {
    let mut net = TestNet::new().unwrap();
    let up = Upstream::new(&net).unwrap();
    let opts = primary_options(&up, key());
    let registry = KnotPrimary::start(&net, 53, "tld.", &zone(1, ""), &opts).unwrap();
    let k = key();
    // The downstream runs beside us, on port 5301 of the server address.
    let downstream = SocketAddr::new(IpAddr::V4(SERVER_V4), 5301);
    let mut args = secondary_args(&net, "tld.", &k);
    args.extend([
        "--allow-transfer".to_owned(),
        format!("tld.={SERVER_V4},key={}", k.name),
        "--notify".to_owned(),
        format!("tld.={SERVER_V4}@5301,key={}", k.name),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    net.start_server_with(&[], &a, &[]).unwrap();
    net.wait_for_status("the first transfer", |s| {
        s.contains("secondary tld. serial 1 ")
    })
    .unwrap();

    // EDNS EXPIRE (RFC 7314 §4): an SOA query asking for it learns the time left here, over
    // UDP and TCP; one that does not ask gets none.
    let (udp, tcp, plain) = net
        .in_client(|| {
            let tld = Name::parse("tld.", None).unwrap();
            let ask = message::query(0x7e57, &tld, rtype::SOA, None);
            let to = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
            let expire = |r: &[u8]| message::parse(r).unwrap().opt.and_then(|o| o.expire());
            let udp = expire(&client::udp(to, &ask).unwrap());
            let tcp = expire(&client::tcp(to, &[ask]).unwrap()[0]);
            let plain = expire(&client::udp(to, &Q::new("tld.", 6).wire()).unwrap());
            (udp, tcp, plain)
        })
        .unwrap();
    for e in [udp, tcp] {
        let e = e.expect("EXPIRE in the answer");
        assert!((86_000..=86_400).contains(&e), "{e}");
    }
    assert_eq!(plain, None);

    // Bootstrap: the downstream's signed SOA check, then AXFR from us.
    let before = net.stats().unwrap();
    let edge = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
    let knot = KnotSecondary::start(&net, 5301, "tld.", edge, &k, true).unwrap();
    wait_serial(
        &net,
        downstream,
        "tld.",
        1,
        Duration::from_secs(15),
        "the downstream",
        || knot.knot.log(),
    )
    .unwrap();
    let after = net.stats().unwrap();
    let d = |n| counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.outbound_axfr"), 1, "{}", net.server_log());
    assert_eq!(d("xfr.signed_queries_refused"), 0);

    // A change at the registry: to us by IXFR, then from us to the downstream by IXFR.
    let before = net.stats().unwrap();
    registry.update(&zone(2, "new A 198.18.0.99\n")).unwrap();
    net.wait_for_status("the change", |s| s.contains("secondary tld. serial 2 "))
        .unwrap();
    wait_serial(
        &net,
        downstream,
        "tld.",
        2,
        Duration::from_secs(20),
        "the downstream",
        || knot.knot.log(),
    )
    .unwrap();
    let after = net.stats().unwrap();
    let d = |n| counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.transfers_ixfr"), 1, "we took the change by IXFR");
    assert_eq!(
        (d("xfr.publish_incremental"), d("xfr.publish_full")),
        (1, 0),
        "the change reached the XDP maps alone, the zone not compiled again"
    );
    assert!(d("xfr.notify_sent") >= 1, "we notified the downstream");
    assert_eq!(d("xfr.notify_failed"), 0);
    assert_eq!(d("xfr.outbound_ixfr"), 1, "{}", knot.knot.log());
    assert_eq!(d("xfr.outbound_axfr"), 0, "no whole zone the second time");
    eprintln!(
        "signed queries answered in the change: {}",
        d("xfr.signed_queries")
    );
    let log = knot.knot.log();
    assert!(log.contains("IXFR, incoming"), "knotd took an IXFR:\n{log}");

    // Who may not: the client's address (not in the ACL), a wrong secret, no key.
    let before = net.stats().unwrap();
    let e = axfr_from(&net.client_ns, Some(key())).unwrap_err();
    assert!(e.contains("REFUSED"), "from outside the ACL: {e}");
    let wrong = TsigKey::new("region.example.", "hmac-sha256", b"not the secret");
    let e = axfr_from(&net.server_ns, Some(wrong)).unwrap_err();
    assert!(e.contains("BADSIG"), "a wrong secret: {e}");
    let e = axfr_from(&net.server_ns, None).unwrap_err();
    assert!(e.contains("REFUSED"), "unsigned: {e}");
    // And who may: the whole zone, SOA twice.
    let n = axfr_from(&net.server_ns, Some(key())).unwrap();
    assert_eq!(n, 4 + 500 + 1, "SOA, NS, ns, www, 500 hosts and new");
    let after = net.stats().unwrap();
    let d = |n| counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.outbound_refused"), 3);
    assert_eq!(d("xfr.outbound_axfr"), 1);
}
