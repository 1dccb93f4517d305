//! A secondary zone (`xfr::secondary::Secondary`) against a knotd primary with an IXFR
//! journal and TSIG, its clock moved by hand (issue 10):
//! - first refresh by AXFR, stored before it is served; a change announced by NOTIFY arrives by
//!   IXFR; a restart restores the version and the timers from disk;
//! - the newest file corrupted: the version before is served and the refresh catches up;
//! - a spoiled transfer and an unreachable primary change nothing but the retry time; past
//!   EXPIRE the zone is no longer served under `honour`, and still is under `serve-stale`.

use std::path::Path;
use std::time::Duration;

use xdpdns::wire::name::Name;
use xdpdns::xfr::client::{unix_now, Method, Primary};
use xdpdns::xfr::secondary::{Event, Secondary};
use xdpdns::xfr::timers::{Clock, ExpirePolicy, ManualClock};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::xfr_proxy::{Proxy, Spoil};
use xdpdns_tests::TestNet;

const SECRET: &[u8] = b"xdpdns secondary test key, 32 o";

fn key() -> TsigKey {
    TsigKey::new("secondary-test.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.2\n{extra}"
    )
}

fn origin() -> Name {
    Name::parse("example.", None).unwrap()
}

fn primary(addr: std::net::SocketAddr) -> Primary {
    let mut p = Primary::new(addr, Some(key().key()));
    p.timeouts.connect = Duration::from_secs(2);
    p.timeouts.idle = Duration::from_secs(3);
    p.timeouts.total = Duration::from_secs(20);
    p
}

/// Runs `f` on the secondary inside the client namespace (sockets must be made there).
fn with<T: Send + 'static>(
    net: &TestNet,
    s: Secondary,
    clock: std::sync::Arc<ManualClock>,
    f: impl FnOnce(&mut Secondary, &ManualClock) -> T + Send + 'static,
) -> (Secondary, T) {
    net.in_client(move || {
        let mut s = s;
        let t = f(&mut s, &clock);
        (s, t)
    })
    .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn open(
    dir: &Path,
    primaries: Vec<Primary>,
    policy: ExpirePolicy,
    clock: &ManualClock,
) -> (Secondary, Vec<String>) {
    Secondary::open(origin(), primaries, dir, policy, clock).unwrap()
}

/// A knotd primary requiring the key, with an IXFR journal.
fn knot_options() -> KnotOptions {
    KnotOptions {
        keys: vec![key()],
        journal: true,
        ..KnotOptions::default()
    }
}

#[test]
fn secondary_transfers_stores_restarts_and_expires() {
    let net = TestNet::new().unwrap();
    let dir = net.dir.join("secondary");
    let opts = knot_options();
    let mut knot = KnotPrimary::start(&net, 5310, "example.", &zone(1, ""), &opts).unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(unix_now()));
    let t0 = clock.now();
    let reopen = |addr, policy| open(&dir, vec![primary(addr)], policy, &clock);

    let (s, problems) = reopen(knot.addr(), ExpirePolicy::Honour);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(s.serving(&*clock).is_none() && s.due(&*clock));
    let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
    assert!(
        matches!(
            ev,
            Event::Updated {
                serial: 1,
                method: Method::Axfr,
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(s.serving(&*clock).unwrap().soa().rdatas.len(), 1);
    assert_eq!(files(&dir), ["timers", "v0000000001-s1.zone"]);
    assert_eq!(s.timers().state().next_check, t0 + 3600);

    // A change, announced by NOTIFY: due at once, arrives by IXFR.
    knot.update(&zone(2, "new A 198.18.0.9\n")).unwrap();
    let mut s = s;
    assert!(s.notified(&*clock, Some(2)).unwrap());
    let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
    assert!(
        matches!(
            ev,
            Event::Updated {
                serial: 2,
                method: Method::Ixfr { diffs: 1 },
                ..
            }
        ),
        "{ev:?}"
    );
    let served = s.serving(&*clock).unwrap();
    assert!(served
        .node(&Name::parse("new.example.", None).unwrap())
        .is_some());
    let state = s.timers().state().clone();
    drop(s);

    // Restart: version 2 and the timers come back from disk.
    let (s, problems) = reopen(knot.addr(), ExpirePolicy::Honour);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(s.serial(), Some(2));
    assert_eq!(s.timers().state(), &state);
    assert!(!s.due(&*clock));
    drop(s);

    // The newest file corrupted on disk: version 1 is served, and the refresh catches up.
    let newest = dir.join("v0000000002-s2.zone");
    let mut d = std::fs::read(&newest).unwrap();
    let at = d.len() - 5;
    d[at] ^= 0x10;
    std::fs::write(&newest, d).unwrap();
    let (s, problems) = reopen(knot.addr(), ExpirePolicy::Honour);
    assert!(
        problems.iter().any(|p| p.contains("checksum mismatch")),
        "{problems:?}"
    );
    assert_eq!(s.serial(), Some(1));
    assert!(s.serving(&*clock).is_some() && s.due(&*clock));
    let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
    assert!(matches!(ev, Event::Updated { serial: 2, .. }), "{ev:?}");
    drop(s);

    // A spoiled transfer changes nothing but the retry time.
    knot.update(&zone(3, "")).unwrap();
    let spoiled = Proxy::start(&net, knot.addr(), Spoil::FlipBit).unwrap();
    let (mut s, _) = reopen(spoiled.addr, ExpirePolicy::Honour);
    s.notified(&*clock, None).unwrap();
    let before = files(&dir);
    let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
    let Event::Failed(why) = ev else {
        panic!("{ev:?}")
    };
    assert!(why[0].contains("BADSIG"), "{why:?}");
    assert_eq!(s.serial(), Some(2));
    assert_eq!(files(&dir), before);
    assert_eq!(s.timers().state().next_check, clock.now() + 600);
    drop(s);

    // The primary gone: retries every RETRY; past EXPIRE, honour stops serving.
    knot.knot.stop().unwrap();
    for policy in [ExpirePolicy::Honour, ExpirePolicy::ServeStale] {
        clock.set(t0);
        let (s, _) = reopen(knot.addr(), policy);
        clock.set(t0 + 4000);
        let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
        assert!(matches!(&ev, Event::Failed(w) if w.len() == 1), "{ev:?}");
        assert_eq!(s.timers().state().next_check, t0 + 4600);
        assert!(s.serving(&*clock).is_some());
        clock.set(s.timers().state().expires_at.unwrap());
        assert_eq!(
            s.serving(&*clock).is_some(),
            policy == ExpirePolicy::ServeStale,
            "{policy:?}"
        );
    }
}

/// An IXFR whose diff does not apply to our copy (it removes a record we lack: our version 1
/// is not the primary's) changes nothing by itself; the zone comes by AXFR instead, and the
/// journal starts from it.
#[test]
fn an_ixfr_that_does_not_apply_falls_back_to_axfr() {
    let net = TestNet::new().unwrap();
    let dir = net.dir.join("secondary-fallback");
    let opts = knot_options();
    let v1 = zone(1, "old A 198.18.0.7\n");
    let knot = KnotPrimary::start(&net, 5311, "example.", &v1, &opts).unwrap();
    knot.update(&zone(2, "")).unwrap();
    // Our version 1 lacks `old`, which the primary's diff 1 to 2 removes.
    let ours = xdpdns::zonefile::parse_str(&zone(1, ""), &origin(), "ours")
        .unwrap()
        .records;
    xdpdns::xfr::store::Store::open(&dir, &origin())
        .unwrap()
        .save_version(&ours)
        .unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(unix_now()));
    let (mut s, problems) = open(
        &dir,
        vec![primary(knot.addr())],
        ExpirePolicy::Honour,
        &clock,
    );
    assert!(problems.is_empty(), "{problems:?}");
    s.keep_journal(Default::default()).unwrap();
    assert_eq!(s.serial(), Some(1));
    let (s, ev) = with(&net, s, clock.clone(), |s, c| s.refresh(c).unwrap());
    let Event::Updated {
        serial: 2,
        method: Method::AxfrAfterIxfr(why),
        ..
    } = &ev
    else {
        panic!("{ev:?}")
    };
    assert!(
        why.contains("do not apply") && why.contains("old.example. A"),
        "{why}"
    );
    let served = s.serving(&*clock).unwrap();
    assert!(served
        .node(&Name::parse("old.example.", None).unwrap())
        .is_none());
    assert_eq!(s.snapshot(), (Some(2), 0));
    assert!(
        files(&dir).contains(&"v0000000002-s2.zone".to_owned()),
        "{:?}",
        files(&dir)
    );
    // The journal has the diff from our version 1 to 2 (ours, not the primary's).
    assert_eq!(s.chain_from(1).map(|c| c.len()), Some(1));
}
