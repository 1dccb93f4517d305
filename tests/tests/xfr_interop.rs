//! Zone transfers by the `xfr` client from real primaries (issue 10): Knot DNS and NSD in the
//! test's server namespace, the client in the client namespace, every exchange signed with
//! TSIG (hmac-sha256).
//!
//! - AXFR of a zone large enough for several messages from knotd (IPv4 and IPv6) and NSD, the
//!   records equal to the zone file's, the EDNS EXPIRE from knotd.
//! - IXFR from knotd's journal after the zone changed once and then twice, applied to our copy;
//!   the up-to-date answer.
//! - IXFR answered AXFR-style (knotd without a journal, NSD), and the fallback to AXFR when
//!   IXFR is answered NOTIMP.
//! - Wrong keys: the primaries' BADSIG and BADKEY answers, unsigned refusals, and our own
//!   verification of responses whose TSIG was removed or whose content was changed, or which
//!   were cut short: all errors naming the cause.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xdpdns::wire::name::Name;
use xdpdns::wire::record::Record;
use xdpdns::xfr::client::{Method, Primary, Refresh};
use xdpdns::xfr::ixfr::Ixfr;
use xdpdns::zone::{Zone, ZoneSource};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, NsdPrimary, TsigKey};
use xdpdns_tests::xfr_proxy::{Proxy, Spoil};
use xdpdns_tests::TestNet;

const ORIGIN: &str = "example.";
const SECRET: &[u8] = b"xdpdns transfer test key, 32 o.";

fn key() -> TsigKey {
    TsigKey::new("xfr-test.example.", "hmac-sha256", SECRET)
}

fn origin() -> Name {
    Name::parse(ORIGIN, None).unwrap()
}

/// A zone of `hosts` names (each with A and TXT) plus some other types, at `serial`, with
/// `extra` lines.
fn zone_text(serial: u32, hosts: usize, extra: &str) -> String {
    let mut t = format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n@ NS ns2\n\
         ns A 198.18.0.1\nns2 AAAA fd00::1\n@ MX 10 mail\nmail A 198.18.0.3\n\
         _sip._tcp SRV 0 5 5060 sip\nsip CNAME mail\n"
    );
    for i in 0..hosts {
        t.push_str(&format!(
            "h{i} A 198.18.{}.{}\nh{i} TXT \"host number {i}\"\n",
            i / 250,
            i % 250 + 1
        ));
    }
    t.push_str(extra);
    t
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by(|a, b| {
        (&a.owner, a.rtype, &a.rdata, a.ttl).cmp(&(&b.owner, b.rtype, &b.rdata, b.ttl))
    });
    v
}

fn records_of(text: &str) -> Vec<Record> {
    sorted(
        xdpdns::zonefile::parse_str(text, &origin(), "expected")
            .unwrap()
            .records,
    )
}

/// Checks the records build a zone and equal the zone file's.
fn assert_zone(records: &[Record], text: &str, what: &str) {
    let src = ZoneSource {
        name: what,
        locations: None,
    };
    Zone::build(origin(), records.to_vec(), &src).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        sorted(records.to_vec()) == records_of(text),
        "{what}: records differ from the zone file"
    );
}

fn primary(addr: SocketAddr, key: Option<&TsigKey>) -> Primary {
    let mut p = Primary::new(addr, key.map(TsigKey::key));
    p.timeouts.idle = Duration::from_secs(5);
    p.timeouts.total = Duration::from_secs(30);
    p
}

/// Waits until the primary at `addr` serves `serial`.
fn wait_serial(net: &TestNet, addr: SocketAddr, serial: u32) {
    let p = primary(addr, Some(&key()));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = p.clone();
        let got = net.in_client(move || p.soa(&origin())).unwrap();
        if got.as_ref().is_ok_and(|a| a.serial == serial) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "serial {serial} not served: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn axfr_with_tsig_from_knot_and_nsd() {
    let net = TestNet::new().unwrap();
    let text = zone_text(7, 4000, "");
    let opts = KnotOptions {
        keys: vec![key()],
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5301, ORIGIN, &text, &opts).unwrap();
    let nsd = NsdPrimary::start(&net, 5302, ORIGIN, &text, &key()).unwrap();
    for (what, addr) in [
        ("knotd v4", knot.addr()),
        ("knotd v6", knot.addr_v6()),
        ("nsd", nsd.addr()),
    ] {
        let p = primary(addr, Some(&key()));
        let (records, expire) = net
            .in_client(move || p.axfr(&origin()))
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_zone(&records, &text, what);
        if what.starts_with("knotd") {
            assert_eq!(expire, Some(86400), "{what}: EDNS EXPIRE");
        }
        let p = primary(addr, Some(&key()));
        let soa = net.in_client(move || p.soa(&origin())).unwrap().unwrap();
        assert_eq!(soa.serial, 7, "{what}");
    }
}

#[test]
fn ixfr_from_the_knot_journal() {
    let net = TestNet::new().unwrap();
    let v1 = zone_text(1, 50, "www A 198.18.0.10\n");
    let opts = KnotOptions {
        keys: vec![key()],
        journal: true,
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5303, ORIGIN, &v1, &opts).unwrap();
    let refresh = |current: Option<Vec<Record>>| {
        let p = primary(knot.addr(), Some(&key()));
        net.in_client(move || p.refresh(&origin(), current.as_deref()))
            .unwrap()
            .unwrap()
    };
    let Refresh::Updated {
        records, method, ..
    } = refresh(None)
    else {
        panic!("no zone")
    };
    assert_eq!(method, Method::Axfr);
    assert_zone(&records, &v1, "v1");
    let ours = records;

    // One change: www moves, mail2 appears, h3 goes.
    let v2 = zone_text(2, 50, "www A 198.18.0.11\nmail2 A 198.18.0.12\n")
        .replace("h3 A 198.18.0.4\nh3 TXT \"host number 3\"\n", "");
    knot.update(&v2).unwrap();
    wait_serial(&net, knot.addr(), 2);
    let Refresh::Updated {
        records,
        method,
        serial,
        expire,
    } = refresh(Some(ours.clone()))
    else {
        panic!("not updated")
    };
    assert_eq!((method, serial), (Method::Ixfr { diffs: 1 }, 2));
    assert_eq!(expire, Some(86400));
    assert_zone(&records, &v2, "v2 by IXFR");
    let ours = records;

    // Two changes before the next refresh: two diffs in one response.
    let v3 = zone_text(
        3,
        50,
        "www A 198.18.0.11\nmail2 A 198.18.0.12\nnew TXT three\n",
    );
    knot.update(&v3).unwrap();
    wait_serial(&net, knot.addr(), 3);
    let v4 = zone_text(4, 50, "www 600 A 198.18.0.11\nnew TXT four\n");
    knot.update(&v4).unwrap();
    wait_serial(&net, knot.addr(), 4);
    let Refresh::Updated {
        records, method, ..
    } = refresh(Some(ours))
    else {
        panic!("not updated")
    };
    assert_eq!(method, Method::Ixfr { diffs: 2 });
    assert_zone(&records, &v4, "v4 by IXFR");

    // Up to date: by the SOA check, and by IXFR's single-SOA answer.
    let current = records.clone();
    assert!(matches!(
        refresh(Some(current.clone())),
        Refresh::UpToDate { serial: 4, .. }
    ));
    let p = primary(knot.addr(), Some(&key()));
    let soa = records.iter().find(|r| r.rtype == 6).unwrap().clone();
    let (ixfr, _) = net
        .in_client(move || p.ixfr(&origin(), &soa))
        .unwrap()
        .unwrap();
    assert!(matches!(ixfr, Ixfr::UpToDate(_)), "{ixfr:?}");
}

#[test]
fn ixfr_answered_with_the_whole_zone_or_refused_falls_back_to_axfr() {
    let net = TestNet::new().unwrap();
    let v1 = zone_text(1, 20, "");
    let v2 = zone_text(2, 20, "www A 198.18.0.11\n");
    let ours = records_of(&v1);
    let opts = KnotOptions {
        keys: vec![key()],
        journal: false,
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5304, ORIGIN, &v1, &opts).unwrap();
    knot.update(&v2).unwrap();
    wait_serial(&net, knot.addr(), 2);
    let nsd = NsdPrimary::start(&net, 5305, ORIGIN, &v2, &key()).unwrap();
    let refused = Proxy::start(&net, knot.addr(), Spoil::RefuseIxfr).unwrap();
    for (what, addr) in [
        ("knotd without journal", knot.addr()),
        ("nsd", nsd.addr()),
        ("IXFR refused", refused.addr),
    ] {
        let p = primary(addr, Some(&key()));
        let current = ours.clone();
        let r = net
            .in_client(move || p.transfer(&origin(), Some(&current)))
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let Refresh::Updated {
            records, method, ..
        } = r
        else {
            panic!("{what}: not updated")
        };
        match what {
            "IXFR refused" => assert!(
                matches!(&method, Method::AxfrAfterIxfr(why) if why.contains("NOTIMP")),
                "{what}: {method:?}"
            ),
            _ => assert_eq!(method, Method::IxfrFull, "{what}"),
        }
        assert_zone(&records, &v2, what);
    }
}

/// The error of an AXFR from `addr` with `key`.
fn axfr_error(net: &TestNet, addr: SocketAddr, key: Option<&TsigKey>) -> String {
    let p = primary(addr, key);
    let e = net
        .in_client(move || p.axfr(&origin()))
        .unwrap()
        .expect_err("the transfer must fail")
        .to_string();
    eprintln!("refused as it should be: {e}");
    e
}

#[test]
fn wrong_keys_and_spoiled_responses_are_refused() {
    let net = TestNet::new().unwrap();
    let text = zone_text(3, 2000, "");
    let opts = KnotOptions {
        keys: vec![key()],
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5306, ORIGIN, &text, &opts).unwrap();
    let nsd = NsdPrimary::start(&net, 5307, ORIGIN, &text, &key()).unwrap();
    let wrong_secret = TsigKey::new("xfr-test.example.", "hmac-sha256", b"not the secret");
    let wrong_name = TsigKey::new("other.example.", "hmac-sha256", SECRET);
    for (what, addr) in [("knotd", knot.addr()), ("nsd", nsd.addr())] {
        let e = axfr_error(&net, addr, Some(&wrong_secret));
        assert!(e.contains("rejected our TSIG: BADSIG"), "{what}: {e}");
        let e = axfr_error(&net, addr, Some(&wrong_name));
        assert!(e.contains("rejected our TSIG: BADKEY"), "{what}: {e}");
        let e = axfr_error(&net, addr, None);
        assert!(e.contains("answered"), "{what} unsigned: {e}");
        assert!(e.starts_with("AXFR of example. with "), "{e}");
    }
    for (spoil, want) in [
        (Spoil::StripTsig, "not signed"),
        (Spoil::FlipBit, "BADSIG"),
        (Spoil::Cut, "closed the connection"),
    ] {
        let proxy = Proxy::start(&net, knot.addr(), spoil).unwrap();
        let e = axfr_error(&net, proxy.addr, Some(&key()));
        assert!(e.contains(want), "{spoil:?}: {e}");
    }
}
