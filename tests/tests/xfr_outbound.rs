//! Feeding other secondaries (issue 10 item 7): our `xfr` library serves AXFR and IXFR with
//! TSIG and an ACL to real downstream secondaries, and notifies them.
//!
//! In the test's namespaces: a knotd primary stands for the registry; we are its secondary
//! (`Secondary` with a journal) in the client namespace, answering downstreams through a small
//! stand-in for the daemon's TCP/UDP paths (`feeder`: transfers to `outbound::respond`, other
//! queries, TSIG checked by `signed_query`, to the answer engine). knotd (over IPv4) and NSD
//! (over IPv6) are our secondaries, each with its own key.
//! - `downstreams_follow_us_by_axfr_then_ixfr`: both bootstrap by AXFR and hold exactly our
//!   records; after the registry changes and we refresh (by IXFR, the diff journaled) and
//!   NOTIFY them, both fetch the change by IXFR from our journal (our outcomes, knotd's log)
//!   and hold our records again; after our restart from disk a further change still reaches
//!   them by IXFR, and a client at the first serial gets both journaled diffs, with EXPIRE.
//! - `refusals_as_real_peers_see_them`: kdig and knotd downstreams with a wrong secret
//!   (NOTAUTH, BADSIG), an unknown key (BADKEY), a known key the ACL does not name, no key,
//!   and addresses the ACL does not name (REFUSED).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xdpdns::engine::{Catalog, Engine, EngineConfig, Transport};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::Record;
use xdpdns::xfr::acl::{Acl, Rule};
use xdpdns::xfr::client::{unix_now, Method, Primary};
use xdpdns::xfr::ixfr::{apply, Ixfr};
use xdpdns::xfr::journal::JournalLimits;
use xdpdns::xfr::notify_out::{notify_downstreams, Downstream, Retries};
use xdpdns::xfr::outbound::{self, Offer, Outcome, Served};
use xdpdns::xfr::secondary::{Event, Secondary};
use xdpdns::xfr::signed_query;
use xdpdns::xfr::timers::{ExpirePolicy, SystemClock};
use xdpdns::zone::{Zone, ZoneSource};
use xdpdns_tests::downstream::{wait_serial, KnotSecondary};
use xdpdns_tests::feeder::{Feeder, Handler};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, Nsd, TsigKey};
use xdpdns_tests::{TestNet, CLIENT_V4, SERVER_V4, SERVER_V6};

const ORIGIN: &str = "example.";
/// The fixture's serial.
const S1: u32 = 2026112701;

fn origin() -> Name {
    Name::parse(ORIGIN, None).unwrap()
}

fn tkey(name: &str, secret: &[u8]) -> TsigKey {
    TsigKey::new(name, "hmac-sha256", secret)
}

/// Between the registry and us.
fn k_up() -> TsigKey {
    tkey("registry.key.", b"registry to ISP instance, 32 oc")
}

/// Our knotd downstream's, from 198.18.0.1.
fn k_knot() -> TsigKey {
    tkey("knot-down.key.", b"ISP instance to knotd, 32 octet")
}

/// Our NSD downstream's, from fd00::1.
fn k_nsd() -> TsigKey {
    tkey("nsd-down.key.", b"ISP instance to NSD, 32 octets!")
}

/// The test client's, from 198.18.0.2.
fn k_test() -> TsigKey {
    tkey("test-client.key.", b"the test's own client, 32 octet")
}

/// A key we know that no ACL rule names.
fn k_other() -> TsigKey {
    tkey("other.key.", b"known to us, allowed nowhere, 32")
}

/// Our transfer ACL: each downstream's address with its key, the test client's with its.
fn acl() -> Arc<Acl> {
    let rule = |addr: IpAddr, k: TsigKey| Rule {
        addresses: vec![addr.to_string().parse().unwrap()],
        keys: vec![k.key().name],
        deny: false,
    };
    Arc::new(Acl {
        rules: vec![
            rule(IpAddr::V4(SERVER_V4), k_knot()),
            rule(IpAddr::V6(SERVER_V6), k_nsd()),
            rule(IpAddr::V4(CLIENT_V4), k_test()),
        ],
    })
}

/// The example fixture at `serial`, with hosts `h{i}` for `hosts` (an A and a TXT each, to
/// need several messages) and `extra` lines.
fn zone_text(serial: u32, hosts: impl Iterator<Item = usize>, extra: &str) -> String {
    let fixture = std::fs::read_to_string(xdpdns_tests::example_zone()).unwrap();
    let mut t = fixture.replace(&format!("{S1} ; serial"), &format!("{serial} ; serial"));
    assert!(
        t.contains(&format!("{serial} ; serial")),
        "the fixture's serial line"
    );
    t.push_str(&format!("$ORIGIN {ORIGIN}\n"));
    for i in hosts {
        t.push_str(&format!(
            "h{i} 300 IN A 198.18.{}.{}\nh{i} 300 IN TXT \"host {i}\"\n",
            i / 250,
            i % 250 + 1
        ));
    }
    t.push_str(extra);
    t
}

fn v1() -> String {
    zone_text(S1, 0..3000, "ttl 300 IN TXT \"ttl changes\"\n")
}

fn v2() -> String {
    let hosts = (0..3001).filter(|&i| i != 5);
    zone_text(S1 + 1, hosts, "ttl 600 IN TXT \"ttl changes\"\n")
}

fn v3() -> String {
    let hosts = (0..3001).filter(|&i| i != 5 && i != 6);
    zone_text(
        S1 + 2,
        hosts,
        "ttl 600 IN TXT \"ttl changes\"\nnew A 198.18.9.9\n",
    )
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by(|a, b| {
        (&a.owner, a.rtype, &a.rdata, a.ttl).cmp(&(&b.owner, b.rtype, &b.rdata, b.ttl))
    });
    v
}

/// What the stand-in served: peer, transport, key and outcome of each transfer request.
type Seen = Arc<Mutex<Vec<(SocketAddr, Transport, Option<Name>, Outcome)>>>;

/// The zone's offer and its built form for ordinary queries, at the time of a request.
type Source = Arc<dyn Fn() -> Option<(Offer, Arc<Zone>)> + Send + Sync>;

/// The daemon's part, as it will be wired: transfers to `outbound::respond`, everything else
/// through `signed_query` to the answer engine.
fn stand_in(source: Source, seen: Seen) -> Handler {
    let keys: Vec<_> = [k_knot(), k_nsd(), k_test(), k_other()]
        .iter()
        .map(TsigKey::key)
        .collect();
    Arc::new(move |req: &[u8], peer: SocketAddr, transport: Transport| {
        let now = unix_now();
        let current = source();
        if outbound::is_transfer(req) {
            let offer = current.map(|c| c.0);
            let reply = outbound::respond(req, peer.ip(), transport, &keys, now, |z| {
                offer.filter(|o| o.served.apex == *z)
            });
            seen.lock()
                .unwrap()
                .push((peer, transport, reply.key.clone(), reply.outcome.clone()));
            return Box::new(reply.messages) as xdpdns_tests::feeder::Messages;
        }
        let mut catalog = Catalog::new();
        if let Some((_, zone)) = current {
            catalog.insert(zone);
        }
        let engine = Engine::new(catalog, EngineConfig::default());
        let a = signed_query::answer(req, &keys, now, |q| engine.answer(q, transport));
        Box::new(a.response.into_iter())
    })
}

/// AXFR of `ORIGIN` from `addr` with `key`, from the client namespace.
fn axfr(net: &TestNet, addr: SocketAddr, key: &TsigKey) -> Vec<Record> {
    let p = Primary::new(addr, Some(key.key()));
    net.in_client(move || p.axfr(&origin()))
        .unwrap()
        .unwrap_or_else(|e| panic!("AXFR from {addr}: {e}"))
        .0
}

/// Refreshes our secondary from the registry (in the client namespace).
fn refresh(net: &TestNet, sec: &Arc<Mutex<Secondary>>) -> Event {
    let s = sec.clone();
    net.in_client(move || s.lock().unwrap().refresh(&SystemClock))
        .unwrap()
        .unwrap()
}

fn offer(sec: &Arc<Mutex<Secondary>>) -> Offer {
    sec.lock().unwrap().offer(&SystemClock, acl()).unwrap()
}

/// Waits until the stand-in has served `want` to the holder of `key` (bounded).
fn wait_seen(seen: &Seen, key: &TsigKey, want: &Outcome) {
    let k = key.key().name;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, _, key, o)| key.as_ref() == Some(&k) && o == want)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {want} to {k}: {:#?}", seen.lock().unwrap());
}

/// NOTIFY to both downstreams, from the client namespace; both must answer.
fn notify(net: &TestNet, knot: SocketAddr, nsd: SocketAddr, soa: Record) {
    let targets = vec![
        Downstream {
            addr: knot,
            key: Some(k_knot().key()),
        },
        Downstream {
            addr: nsd,
            key: Some(k_nsd().key()),
        },
    ];
    let got = net
        .in_client(move || notify_downstreams(&origin(), &soa, &targets, Retries::default()))
        .unwrap();
    for n in got {
        assert!(n.result.is_ok(), "{}: {:?}", n.to, n.result);
    }
}

#[test]
fn downstreams_follow_us_by_axfr_then_ixfr() {
    let net = TestNet::new().unwrap();
    let opts = KnotOptions {
        keys: vec![k_up()],
        journal: true,
        ..KnotOptions::default()
    };
    let registry = KnotPrimary::start(&net, 5410, ORIGIN, &v1(), &opts).unwrap();
    let dir = net.dir.join("isp");
    let open = |dir: &Path| {
        let up = Primary::new(registry.addr(), Some(k_up().key()));
        let (mut s, problems) =
            Secondary::open(origin(), vec![up], dir, ExpirePolicy::Honour, &SystemClock).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let problems = s.keep_journal(JournalLimits::default()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        s
    };
    let sec = Arc::new(Mutex::new(open(&dir)));
    let e = refresh(&net, &sec);
    assert!(
        matches!(
            e,
            Event::Updated {
                serial: S1,
                method: Method::Axfr,
                ..
            }
        ),
        "{e:?}"
    );
    let first = offer(&sec).served.records().to_vec();

    let seen: Seen = Arc::default();
    let s = sec.clone();
    let source: Source = Arc::new(move || {
        let s = s.lock().unwrap();
        Some((s.offer(&SystemClock, acl())?, s.serving(&SystemClock)?))
    });
    let feeder = Feeder::start(&net, 5411, stand_in(source, seen.clone())).unwrap();
    let knot = KnotSecondary::start(&net, 5412, ORIGIN, feeder.addr(), &k_knot(), true).unwrap();
    let nsd = Nsd::start_secondary(&net, 5413, ORIGIN, feeder.addr_v6(), &k_nsd()).unwrap();
    let nsd_v6 = SocketAddr::new(IpAddr::V6(SERVER_V6), nsd.port);

    // Both bootstrapped by a whole transfer and hold exactly our records.
    for (k, peer) in [
        (k_knot(), IpAddr::V4(SERVER_V4)),
        (k_nsd(), IpAddr::V6(SERVER_V6)),
    ] {
        let name = k.key().name;
        let full = seen.lock().unwrap().iter().any(|(p, _, key, o)| {
            p.ip() == peer
                && key.as_ref() == Some(&name)
                && matches!(
                    o,
                    Outcome::Axfr { serial: S1 } | Outcome::IxfrFull { serial: S1, .. }
                )
        });
        assert!(full, "{name}: {:#?}", seen.lock().unwrap());
    }
    assert_eq!(
        sorted(axfr(&net, knot.addr(), &k_knot())),
        sorted(first.clone())
    );
    assert_eq!(
        sorted(axfr(&net, nsd.addr(), &k_nsd())),
        sorted(first.clone())
    );

    // The registry changes; we follow by IXFR and journal the diff, then notify.
    registry.update(&v2()).unwrap();
    let e = refresh(&net, &sec);
    assert!(
        matches!(
            e,
            Event::Updated {
                method: Method::Ixfr { diffs: 1 },
                ..
            }
        ),
        "{e:?}"
    );
    let o = offer(&sec);
    assert_eq!((o.served.serial, o.served.history.len()), (S1 + 1, 1));
    notify(&net, knot.addr(), nsd_v6, o.served.soa.clone());
    let ixfr = Outcome::Ixfr {
        from: S1,
        to: S1 + 1,
        diffs: 1,
    };
    wait_seen(&seen, &k_knot(), &ixfr);
    wait_seen(&seen, &k_nsd(), &ixfr);
    let knot_log = || knot.knot.log();
    let within = Duration::from_secs(20);
    wait_serial(&net, knot.addr(), ORIGIN, S1 + 1, within, "knotd", knot_log).unwrap();
    wait_serial(&net, nsd.addr(), ORIGIN, S1 + 1, within, "nsd", || {
        nsd.log()
    })
    .unwrap();
    assert!(
        knot.knot.log().contains("IXFR, incoming"),
        "{}",
        knot.knot.log()
    );
    let second = o.served.records().to_vec();
    assert_eq!(
        sorted(axfr(&net, knot.addr(), &k_knot())),
        sorted(second.clone())
    );
    assert_eq!(sorted(axfr(&net, nsd.addr(), &k_nsd())), sorted(second));

    // Restarted from disk (version, timers, journal), we follow one more change.
    *sec.lock().unwrap() = open(&dir);
    assert_eq!(offer(&sec).served.history.len(), 1, "the journal came back");
    registry.update(&v3()).unwrap();
    let e = refresh(&net, &sec);
    assert!(
        matches!(
            e,
            Event::Updated {
                method: Method::Ixfr { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let o = offer(&sec);
    notify(&net, knot.addr(), nsd_v6, o.served.soa.clone());
    let ixfr = Outcome::Ixfr {
        from: S1 + 1,
        to: S1 + 2,
        diffs: 1,
    };
    wait_seen(&seen, &k_knot(), &ixfr);
    wait_seen(&seen, &k_nsd(), &ixfr);
    wait_serial(&net, knot.addr(), ORIGIN, S1 + 2, within, "knotd", knot_log).unwrap();
    wait_serial(&net, nsd.addr(), ORIGIN, S1 + 2, within, "nsd", || {
        nsd.log()
    })
    .unwrap();
    let third = o.served.records().to_vec();
    assert_eq!(
        sorted(axfr(&net, knot.addr(), &k_knot())),
        sorted(third.clone())
    );
    assert_eq!(
        sorted(axfr(&net, nsd.addr(), &k_nsd())),
        sorted(third.clone())
    );

    // A client still at the first serial gets both diffs, one from before the restart, and
    // the expire time we have left (the registry's SOA EXPIRE, 1209600, less a few seconds).
    let soa1 = first
        .iter()
        .find(|r| r.rtype == 6 && r.owner == origin())
        .unwrap()
        .clone();
    let p = Primary::new(feeder.addr(), Some(k_test().key()));
    let (ixfr, expire) = net
        .in_client(move || p.ixfr(&origin(), &soa1))
        .unwrap()
        .unwrap();
    let Ixfr::Diffs(diffs) = ixfr else {
        panic!("not diffs: {ixfr:?}")
    };
    assert_eq!(diffs.len(), 2);
    assert_eq!(sorted(apply(&first, &diffs).unwrap()), sorted(third));
    let expire = expire.expect("EDNS EXPIRE");
    assert!((1_209_000..=1_209_600).contains(&expire), "{expire}");
}

/// A stand-in serving the fixture (v1) as a fixed version, no journal.
fn fixed(seen: Seen) -> Handler {
    let records = xdpdns::zonefile::parse_str(&v1(), &origin(), "v1")
        .unwrap()
        .records;
    let src = ZoneSource {
        name: "v1",
        locations: None,
    };
    let zone = Arc::new(Zone::build(origin(), records.clone(), &src).unwrap().0);
    let served = Served::new(origin(), records.into(), vec![]).unwrap();
    let source: Source = Arc::new(move || {
        let o = Offer {
            served: served.clone(),
            acl: acl(),
            expire: None,
        };
        Some((o, zone.clone()))
    });
    stand_in(source, seen)
}

/// kdig's AXFR of the zone from `to`, run in namespace `ns`, with `key` (`name:secret`).
fn kdig(net: &TestNet, ns: &str, to: SocketAddr, key: Option<&TsigKey>) -> String {
    let mut c = net.in_ns_cmd(ns, Path::new("kdig"));
    c.arg(format!("@{}", to.ip()))
        .args(["-p", &to.port().to_string(), "+time=3", "+retry=0"]);
    if let Some(k) = key {
        c.arg("-y")
            .arg(format!("{}:{}:{}", k.algorithm, k.name, k.secret));
    }
    c.args([ORIGIN, "AXFR"]);
    let out = c.output().expect("kdig runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn refusals_as_real_peers_see_them() {
    let net = TestNet::new().unwrap();
    let seen: Seen = Arc::default();
    let feeder = Feeder::start(&net, 5421, fixed(seen.clone())).unwrap();
    let server = net.server_ns.clone();
    let client = net.client_ns.clone();
    let to = feeder.addr();

    // The right key from the right address: the whole zone.
    let out = kdig(&net, &server, to, Some(&k_knot()));
    assert!(
        out.contains("h2999.example.") && out.contains("NOERROR"),
        "{out}"
    );
    // A wrong secret: NOTAUTH with BADSIG; an unknown key: NOTAUTH with BADKEY. kdig names
    // the TSIG error; our outcome has the RCODE.
    let wrong = tkey("knot-down.key.", b"not the secret at all, 32 octet");
    let last = || seen.lock().unwrap().last().unwrap().3.clone();
    for (k, error) in [(&wrong, "BADSIG"), (&tkey("nobody.key.", b"x"), "BADKEY")] {
        let out = kdig(&net, &server, to, Some(k));
        assert!(out.contains(&format!("error '{error}'")), "{out}");
        let o = last();
        assert!(
            matches!(&o, Outcome::Refused { rcode: 9, reason } if reason.contains(error)),
            "{o}"
        );
    }
    // A key we know that the ACL does not name, no key, and the right key from an address
    // the ACL gives another key (the client's) or none (IPv6 to the knotd rule's key).
    for (ns, to, k) in [
        (&server, to, Some(k_other())),
        (&server, to, None),
        (&client, to, Some(k_knot())),
        (&server, feeder.addr_v6(), Some(k_knot())),
    ] {
        let out = kdig(&net, ns, to, k.as_ref());
        assert!(out.contains("REFUSED"), "{ns} {to} {k:?}: {out}");
        assert!(
            matches!(last(), Outcome::Refused { rcode: 5, .. }),
            "{}",
            last()
        );
    }
    let refused = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, _, o)| matches!(o, Outcome::Refused { .. }))
        .count();
    assert_eq!(refused, 6, "{:#?}", seen.lock().unwrap());

    // Real downstreams: knotd with a key the ACL does not name (its SOA check is answered,
    // its AXFR refused), and with a wrong secret (its SOA check already gets BADSIG).
    let at = format!("{}@{}", to.ip(), to.port());
    let refused = format!("AXFR, incoming, remote {at}, server responded with error 'REFUSED'");
    let badsig = format!("remote upstream, address {at}, failed (failed to verify TSIG)");
    for (port, k, want) in [(5423, k_other(), refused), (5422, wrong, badsig)] {
        let want = want.as_str();
        let knot = KnotSecondary::start(&net, port, ORIGIN, to, &k, false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !knot.knot.log().contains(want) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(knot.knot.log().contains(want), "{}", knot.knot.log());
    }
}
