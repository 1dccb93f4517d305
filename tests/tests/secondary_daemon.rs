//! Secondary zones in the running daemon (issue 10), configured on the command line, against a
//! knotd primary in a namespace behind the server's (tests/src/upstream.rs):
//! - NOTIFY over UDP and TCP: unsigned, badly signed, from an address that is not the zone's
//!   remote, or for a zone that is not ours is refused, counted and changes nothing; the
//!   primary's own signed NOTIFY brings the change (IXFR). `reload` keeps the secondary zone,
//!   and a zone-file zone beside it serves as before.
//! - A zone with no copy is SERVFAIL (XDP passing it) until its first transfer, which its
//!   timers start at the bootstrap retry once the primary is reachable; a zone with a starting
//!   `--zone` file is served from it at once, and a primary that refuses it changes nothing.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use xdpdns::wire::name::Name;
use xdpdns::xfr::client::unix_now;
use xdpdns::xfr::message::{self, rcode};
use xdpdns::xfr::notify;
use xdpdns::xfr::tsig::{self, Key};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::upstream::{Upstream, EDGE_V4, UPSTREAM_V4};
use xdpdns_tests::{example_zone, in_netns, TestNet, SERVER_V4, SERVER_V6};

const SECRET: &[u8] = b"xdpdns secondary daemon test key";

fn key() -> TsigKey {
    TsigKey::new("edge-test.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.80\n{extra}"
    )
}

/// The serve arguments for secondary zone `tld.` from the upstream knotd.
fn args(net: &TestNet, extra: &[&str]) -> Vec<String> {
    let k = key();
    let mut a = vec![
        "--listen".to_owned(),
        "[::]:53".to_owned(),
        "--storage".to_owned(),
        net.dir.join("storage").display().to_string(),
        "--key".to_owned(),
        format!("{}:{}:{}", k.name, k.algorithm, k.secret),
        "--primary".to_owned(),
        format!("tld.={UPSTREAM_V4}@53,key={}", k.name),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn start(net: &mut TestNet, args: &[String], clock: Option<&str>) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = clock
        .map(|c| ("XDPDNS_TEST_CLOCK_FILE", c))
        .into_iter()
        .collect();
    net.start_server_with(&[], &a, &env).unwrap();
}

fn wait_status(net: &TestNet, what: &str, ok: impl Fn(&str) -> bool) -> String {
    net.wait_for_status(what, ok).unwrap()
}

/// The RCODE and SOA serial (if any) of `name` SOA from the client, on v4 and v6 alike.
fn soa(net: &TestNet, name: &str) -> (u8, Option<u32>) {
    let q = Q::new(name, 6).wire();
    let got = net
        .in_client(move || {
            [IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)].map(|a| {
                let r = client::udp(SocketAddr::new(a, 53), &q).unwrap();
                let serial =
                    client::parse(&r)
                        .unwrap()
                        .answers
                        .iter()
                        .find_map(|a| match &a.data {
                            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                            _ => None,
                        });
                (r[3] & 0x0f, serial)
            })
        })
        .unwrap();
    assert_eq!(got[0], got[1], "v4 and v6 answer alike");
    got[0]
}

/// A NOTIFY for `zone` over TCP to the edge from namespace `ns`; the answer's RCODE.
fn notify_tcp(ns: &str, zone: &str, key: Option<Key>) -> u16 {
    let z = Name::parse(zone, None).unwrap();
    in_netns(ns, move || {
        let mut m = notify::request(0x5151, &z, None);
        if let Some(k) = &key {
            tsig::sign_request(&mut m, k, unix_now());
        }
        let mut s = TcpStream::connect((EDGE_V4, 53)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut framed = (m.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&m);
        s.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r).unwrap();
        message::parse(&r).unwrap().rcode()
    })
    .unwrap()
}

/// A NOTIFY for `zone` over UDP to `to` from namespace `ns`: Ok, or the error naming the RCODE.
fn notify_udp(ns: &str, to: IpAddr, zone: &str, key: Option<Key>) -> Result<(), String> {
    let z = Name::parse(zone, None).unwrap();
    let to = SocketAddr::new(to, 53);
    in_netns(ns, move || {
        notify::send(to, &z, None, key.as_ref(), Duration::from_secs(2), 2)
            .map_err(|e| e.to_string())
    })
    .unwrap()
}

#[test]
fn notify_is_checked_and_only_the_primarys_brings_the_change() {
    let mut net = TestNet::new().unwrap();
    let up = Upstream::new(&net).unwrap();
    // knotd does not NOTIFY by itself here: the test sends every NOTIFY.
    let opts = KnotOptions {
        keys: vec![key()],
        journal: true,
        site: Some(up.site(53)),
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 53, "tld.", &zone(1, ""), &opts).unwrap();
    let file_zone = format!("example.={}", example_zone());
    let a = args(&net, &["--zone", &file_zone]);
    start(&mut net, &a, None);
    wait_status(&net, "the first transfer", |s| {
        s.contains("secondary tld. serial 1 ")
    });
    assert_eq!(soa(&net, "tld."), (0, Some(1)));
    knot.update(&zone(2, "new A 198.18.0.99\n")).unwrap();

    let before = net.stats().unwrap();
    let wrong = TsigKey::new("edge-test.example.", "hmac-sha256", b"not the secret").key();
    let right = key().key();
    let e = notify_udp(&up.ns, IpAddr::V4(EDGE_V4), "tld.", None).unwrap_err();
    assert!(e.contains("REFUSED"), "unsigned: {e}");
    assert_eq!(notify_tcp(&up.ns, "tld.", None), rcode::REFUSED);
    let e = notify_udp(&up.ns, IpAddr::V4(EDGE_V4), "tld.", Some(wrong.clone())).unwrap_err();
    assert!(e.contains("BADSIG"), "wrong secret: {e}");
    assert_eq!(notify_tcp(&up.ns, "tld.", Some(wrong)), rcode::NOTAUTH);
    let e = notify_udp(
        &net.client_ns,
        IpAddr::V4(SERVER_V4),
        "tld.",
        Some(right.clone()),
    );
    let e = e.unwrap_err();
    assert!(e.contains("REFUSED"), "from the client's address: {e}");
    let e = notify_udp(&up.ns, IpAddr::V4(EDGE_V4), "example.", Some(right.clone()));
    assert!(e.unwrap_err().contains("NOTAUTH"), "a zone-file zone");
    std::thread::sleep(Duration::from_millis(300));
    let after = net.stats().unwrap();
    let d = |n| xdpdns_tests::counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.notify_refused"), 6);
    assert_eq!(d("xfr.notify_accepted"), 0);
    assert_eq!(d("xfr.refreshes"), 0, "a refused NOTIFY changes nothing");
    assert_eq!(soa(&net, "tld."), (0, Some(1)));
    let log = net.server_log();
    assert!(
        log.contains("over Udp refused: NOTIFY for tld.: unsigned, remote --primary"),
        "logged:\n{log}"
    );

    // The primary's, signed, over TCP and then UDP: the change arrives by IXFR.
    assert_eq!(
        notify_tcp(&up.ns, "tld.", Some(right.clone())),
        rcode::NOERROR
    );
    wait_status(&net, "the change", |s| {
        s.contains("secondary tld. serial 2 ")
    });
    assert_eq!(soa(&net, "tld."), (0, Some(2)));
    notify_udp(&up.ns, IpAddr::V4(EDGE_V4), "tld.", Some(right)).unwrap();
    let after = net.stats().unwrap();
    let d = |n| xdpdns_tests::counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xfr.notify_accepted"), 2);
    assert_eq!(d("xfr.transfers_ixfr"), 1);
    assert_eq!(d("xfr.failures"), 0);

    // A reload of the zone files keeps the secondary zone; both serve on both paths.
    let out = net.ctl("reload").unwrap();
    assert!(
        out.contains("reloaded 1 zones from files (1 secondary zones kept)"),
        "{out}"
    );
    let before = net.stats().unwrap();
    assert_eq!(soa(&net, "tld."), (0, Some(2)));
    assert_eq!(soa(&net, "example.").0, 0);
    let after = net.stats().unwrap();
    let xdp = xdpdns_tests::counter_delta(&before, &after, "xdp.answered").unwrap();
    assert_eq!(xdp, 4, "the four SOA queries answered by XDP");
    let status = net.ctl("status").unwrap();
    assert!(status.contains("zone example. serial"), "{status}");
    assert!(status.contains(&format!(
        "primary --primary {UPSTREAM_V4}@53 ({UPSTREAM_V4}@53)"
    )));
}

#[test]
fn a_zone_without_a_copy_is_servfail_until_its_first_transfer() {
    let mut net = TestNet::new().unwrap();
    let up = Upstream::new(&net).unwrap();
    let opts = KnotOptions {
        keys: vec![key()],
        site: Some(up.site(53)),
        ..KnotOptions::default()
    };
    let _knot = KnotPrimary::start(&net, 53, "tld.", &zone(1, ""), &opts).unwrap();
    up.cut().unwrap();
    let clock = net.dir.join("clock");
    let t0 = unix_now();
    std::fs::write(&clock, t0.to_string()).unwrap();
    // seed. starts from its file; knotd does not serve it, so its refreshes fail.
    let seed = net.dir.join("seed.zone");
    std::fs::write(&seed, zone(7, "")).unwrap();
    let extra = [
        "--zone".to_owned(),
        format!("seed.={}", seed.display()),
        "--primary".to_owned(),
        format!("seed.={UPSTREAM_V4}@53,key={}", key().name),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let a = args(&net, &extra);
    start(&mut net, &a, Some(clock.to_str().unwrap()));
    wait_status(&net, "the first attempts", |s| {
        s.matches("failed:").count() == 2
    });

    let before = net.stats().unwrap();
    assert_eq!(soa(&net, "tld.").0, 2, "SERVFAIL before the first transfer");
    assert_eq!(soa(&net, "www.tld.").0, 2);
    assert_eq!(soa(&net, "seed."), (0, Some(7)), "served from its file");
    let after = net.stats().unwrap();
    let d = |n| xdpdns_tests::counter_delta(&before, &after, n).unwrap();
    assert_eq!(d("xdp.answered"), 2, "XDP answers seed., passes tld.");
    let status = net.ctl("status").unwrap();
    assert!(
        status.contains("no copy yet: SERVFAIL until the first transfer"),
        "{status}"
    );
    assert!(
        status.contains("zone tld. not served (SERVFAIL)"),
        "{status}"
    );

    // Reachable again: the next attempt (10 s later by the zone's clock) transfers it.
    up.restore().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(soa(&net, "tld.").0, 2, "no attempt before the retry time");
    std::fs::write(&clock, (t0 + 10).to_string()).unwrap();
    let status = wait_status(&net, "the first transfer", |s| {
        s.contains("secondary tld. serial 1 ")
    });
    assert_eq!(soa(&net, "tld."), (0, Some(1)));
    assert!(status.contains("updated to serial 1 by AXFR"), "{status}");
    // seed.'s next attempt, at RETRY: knotd refuses it, and it is still served from its file.
    std::fs::write(&clock, (t0 + 600).to_string()).unwrap();
    let status = wait_status(&net, "seed.'s second attempt", |s| {
        s.contains("(2 failures in a row)")
    });
    assert!(status.contains("secondary seed. serial 7 "), "{status}");
    assert_eq!(soa(&net, "seed."), (0, Some(7)));
    let stats = net.stats().unwrap();
    assert_eq!(stats.get("xfr.transfers_axfr").unwrap(), 1);
    assert!(stats.get("xfr.failures").unwrap() >= 3, "{stats:?}");
}
