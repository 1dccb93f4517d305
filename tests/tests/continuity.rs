//! The acceptance scenario of issue 10: an ISP's edge copy of a zone keeps answering when the
//! region is cut off. Three namespaces: upstream (knotd, the primary, TSIG, an IXFR journal,
//! the edge as its NOTIFY target), the edge (xdpdns, XDP on the veth to the clients, the zone a
//! secondary one in its configuration file, its timers' clock in a file the test moves) and the
//! client (a bounded query load). Phases, each under the load:
//! 1. serving: the zone transferred from the primary;
//! 2. cut: the edge's link to the primary down;
//! 3. expired: the clock moved past EXPIRE (the edge retries and fails);
//! 4. restart: the edge killed with SIGKILL and started again, the primary still unreachable;
//! 5. reconnected: the link back, the zone changed on the primary, which NOTIFYs the edge; the
//!    new serial is answered (IXFR).
//!
//! Under `serve-stale` every query is answered in every phase, by XDP and userspace alike,
//! except for a bounded gap while the edge restarts. Under `honour` the zone is SERVFAIL once
//! expired — and XDP does not answer it — until the primary is back.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use xdpdns::xfr::client::unix_now;
use xdpdns_tests::load::{Expect, Load, Tally};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::stats::Counters;
use xdpdns_tests::upstream::{Upstream, EDGE_V4, UPSTREAM_V4};
use xdpdns_tests::{TestNet, SERVER_V4, SERVER_V6};

const SECRET: &[u8] = b"xdpdns continuity test key, 32 o";
/// The zone's SOA EXPIRE (knotd sends it as EDNS EXPIRE too).
const EXPIRE: u64 = 86400;
/// The longest an edge restart may leave the clients unanswered.
const RESTART_GAP_MAX: Duration = Duration::from_secs(8);

fn key() -> TsigKey {
    TsigKey::new("continuity.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 {EXPIRE} 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.80\nwww AAAA fd00::80\nmail MX 10 www\n{extra}"
    )
}

/// The queries of the load: every one in the zone, with the RCODE it must get.
fn load(duration: Duration) -> Load {
    let q = |n: &str, t, rc| Expect::new(n, t, rc);
    Load {
        targets: vec![
            SocketAddr::new(IpAddr::V4(SERVER_V4), 53),
            SocketAddr::new(IpAddr::V6(SERVER_V6), 53),
        ],
        queries: vec![
            q("example.", 6, 0),
            q("example.", 2, 0),
            q("www.example.", 1, 0),
            q("www.example.", 28, 0),
            q("ns.example.", 1, 0),
            q("mail.example.", 15, 0),
            q("www.example.", 16, 0),
            q("nope.example.", 1, 3),
        ],
        rate: 100,
        duration,
        timeout: Duration::from_millis(250),
        tcp_every: 10,
    }
}

/// One phase's line of the table.
struct Row {
    phase: &'static str,
    t: Tally,
    xdp: u64,
    xdp_passed: u64,
    udp: u64,
    tcp: u64,
}

struct Edge {
    policy: &'static str,
    knot: KnotPrimary,
    up: Upstream,
    net: TestNet,
    config: String,
    clock: String,
    t0: u64,
}

impl Edge {
    fn start(policy: &'static str) -> Result<Edge> {
        let net = TestNet::new()?;
        let up = Upstream::new(&net)?;
        let opts = KnotOptions {
            keys: vec![key()],
            journal: true,
            notify: Some(SocketAddr::new(IpAddr::V4(EDGE_V4), 53)),
            site: Some(up.site(53)),
            ..KnotOptions::default()
        };
        let knot = KnotPrimary::start(&net, 53, "example.", &zone(1, ""), &opts)?;
        let k = key();
        let config = net.dir.join("edge.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = [\"[::]:53\"]\nstorage = \"storage\"\n\
                 [[key]]\nid = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n\
                 [[remote]]\nid = \"primary\"\naddress = [\"{UPSTREAM_V4}@53\"]\nkey = \"{}\"\n\
                 [[zone]]\ndomain = \"example.\"\nprimary = [\"primary\"]\nexpire-policy = \"{policy}\"\n",
                k.name, k.algorithm, k.secret, k.name
            ),
        )?;
        let clock = net.dir.join("clock");
        let t0 = unix_now();
        std::fs::write(&clock, t0.to_string())?;
        let mut e = Edge {
            policy,
            knot,
            up,
            config: config.display().to_string(),
            clock: clock.display().to_string(),
            net,
            t0,
        };
        e.start_edge()?;
        e.wait_status("the first transfer", |s| s.contains("serial 1 "))?;
        Ok(e)
    }

    fn start_edge(&mut self) -> Result<()> {
        let env = [("XDPDNS_TEST_CLOCK_FILE", self.clock.as_str())];
        self.net
            .start_server_with(&[], &["--config", &self.config], &env)
    }

    fn set_clock(&self, t: u64) -> Result<()> {
        // Whole at every read: written beside, then renamed over.
        let tmp = format!("{}.tmp", self.clock);
        std::fs::write(&tmp, t.to_string())?;
        std::fs::rename(&tmp, &self.clock)?;
        Ok(())
    }

    fn wait_status(&self, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let r = self.net.wait_for_status(what, ok);
        r.map_err(|e| anyhow::anyhow!("{}: {e:#}\nknotd:\n{}", self.policy, self.knot.knot.log()))
    }

    /// Runs the load for a phase, with the counters' growth meanwhile.
    fn phase(&self, phase: &'static str, load: &Load) -> Result<Row> {
        let before = self.net.stats()?;
        let l = load.clone();
        let t = self
            .net
            .in_client(move || l.run(&AtomicBool::new(false)))??;
        let after = self.net.stats()?;
        row(phase, t, Some(&before), &after)
    }
}

/// The row of a phase; without `before` (a new server process), the counters from 0.
fn row(phase: &'static str, t: Tally, before: Option<&Counters>, after: &Counters) -> Result<Row> {
    let d = |name: &str| -> Result<u64> {
        match before {
            Some(b) => xdpdns_tests::counter_delta(b, after, name),
            None => after.get(name),
        }
    };
    Ok(Row {
        phase,
        xdp: d("xdp.answered")?,
        xdp_passed: d("xdp.passed")?,
        udp: d("udp.responses")?,
        tcp: d("tcp.queries")?,
        t,
    })
}

fn print(policy: &str, rows: &[Row]) {
    println!("\nexpire-policy {policy}:");
    println!(
        "{:<12} {:>5} {:>8} {:>8} {:>6} {:>5} {:>5} {:>10} {:>8} {:>5} {:>7}  serials",
        "phase",
        "sent",
        "answered",
        "servfail",
        "wrong",
        "none",
        "xdp",
        "xdp-passed",
        "udp",
        "tcp",
        "gap"
    );
    for r in rows {
        let t = &r.t;
        println!(
            "{:<12} {:>5} {:>8} {:>8} {:>6} {:>5} {:>5} {:>10} {:>8} {:>5} {:>6.2}s  {:?}",
            r.phase,
            t.sent,
            t.answered,
            t.servfail,
            t.wrong,
            t.unanswered,
            r.xdp,
            r.xdp_passed,
            r.udp,
            r.tcp,
            t.gap.as_secs_f64(),
            t.serials
        );
    }
}

/// Every query answered as expected, UDP ones largely by XDP, TCP ones by userspace.
fn all_answered(r: &Row, serial: u32) {
    let t = &r.t;
    assert!(t.sent >= 100, "{}: {t:?}", r.phase);
    assert_eq!(t.answered, t.sent, "{}: {t:?}", r.phase);
    assert_eq!(t.tcp_answered, t.tcp_sent, "{}: {t:?}", r.phase);
    assert_eq!(t.serials, [serial], "{}", r.phase);
    let udp = t.sent - t.tcp_sent;
    assert!(
        r.xdp * 2 > udp,
        "{}: XDP answered {} of {udp}",
        r.phase,
        r.xdp
    );
    assert!(
        r.tcp >= t.tcp_sent,
        "{}: {} TCP queries counted",
        r.phase,
        r.tcp
    );
}

/// SERVFAIL for everything, and nothing answered by XDP, which passed every UDP query it saw
/// (all of them, with XDP attached throughout).
fn all_servfail(r: &Row, attached_throughout: bool) {
    let t = &r.t;
    assert_eq!(t.answered, 0, "{}: {t:?}", r.phase);
    assert!(t.servfail > 0, "{}: {t:?}", r.phase);
    assert_eq!(r.xdp, 0, "{}: XDP answered an expired zone", r.phase);
    if attached_throughout {
        assert_eq!(t.servfail, t.sent, "{}: {t:?}", r.phase);
        assert!(r.xdp_passed >= t.sent - t.tcp_sent, "{}", r.phase);
    } else {
        assert!(r.xdp_passed > 0, "{}", r.phase);
    }
}

fn scenario(policy: &'static str) {
    let mut e = Edge::start(policy).unwrap();
    let stale = policy == "serve-stale";
    let steady = load(Duration::from_secs(2));
    let mut rows = Vec::new();

    rows.push(e.phase("serving", &steady).unwrap());

    e.up.cut().unwrap();
    rows.push(e.phase("cut", &steady).unwrap());

    let before = e.net.stats().unwrap();
    e.set_clock(e.t0 + EXPIRE + 3600).unwrap();
    let want = if stale {
        "expired 3600 s ago, serving stale by policy"
    } else {
        "zone example. not served (SERVFAIL)"
    };
    // The edge retries at once (the check is overdue) and fails, without the primary.
    let status = e
        .wait_status("expiry and a failed retry", |s| {
            s.contains(want) && s.contains("(1 failures in a row)")
        })
        .unwrap();
    let after = e.net.stats().unwrap();
    assert!(
        xdpdns_tests::counter_delta(&before, &after, "xfr.failures").unwrap() >= 1,
        "the edge retried the primary once due, and failed:\n{status}"
    );
    rows.push(e.phase("expired", &steady).unwrap());

    // kill -9, then start again with the primary still out of reach, under the load.
    e.net.kill_server().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(Duration::from_secs(20)).spawn(&e.net.client_ns, stop.clone());
    let t = Instant::now();
    e.start_edge().unwrap();
    let ready = t.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tally = running.join().unwrap().unwrap().unwrap();
    let after = e.net.stats().unwrap();
    let restart = row("restart", tally, None, &after).unwrap();
    let status = e.net.ctl("status").unwrap();
    println!(
        "{policy}: edge ready {:.2}s after the kill",
        ready.as_secs_f64()
    );
    assert!(
        status.contains("secondary example. serial 1 ") && status.contains(want),
        "restored from disk, timers too:\n{status}"
    );
    rows.push(restart);

    e.up.restore().unwrap();
    e.knot.update(&zone(2, "new A 198.18.0.99\n")).unwrap();
    let t = Instant::now();
    e.wait_status("the NOTIFY and the new serial", |s| {
        s.contains("secondary example. serial 2 ")
    })
    .unwrap();
    println!(
        "{policy}: serial 2 {:.2}s after the change",
        t.elapsed().as_secs_f64()
    );
    let before = e.net.stats().unwrap();
    let row5 = e.phase("reconnected", &steady).unwrap();
    rows.push(row5);
    let status = e.net.ctl("status").unwrap();
    print(policy, &rows);
    println!("{status}");

    for r in &rows[..2] {
        all_answered(r, 1);
    }
    all_answered(&rows[4], 2);
    let r = &rows[3];
    if stale {
        all_answered(&rows[2], 1);
        // The restart: nothing but silence while no process runs, then everything again.
        assert_eq!(r.t.answered + r.t.unanswered, r.t.sent, "{:?}", r.t);
        assert!(r.t.answered > 0 && r.xdp > 0, "{:?}", r.t);
        assert_eq!(r.t.serials, [1]);
        assert!(
            r.t.gap <= RESTART_GAP_MAX,
            "the restart left the clients unanswered for {:?}",
            r.t.gap
        );
    } else {
        all_servfail(&rows[2], true);
        all_servfail(r, false);
    }
    // The NOTIFY was accepted and the change came by IXFR, with EDNS EXPIRE's time granted.
    let after = e.net.stats().unwrap();
    assert!(after.get("xfr.notify_accepted").unwrap() >= 1);
    assert!(after.get("xfr.transfers_ixfr").unwrap() >= 1, "{status}");
    assert_eq!(
        xdpdns_tests::counter_delta(&before, &after, "xfr.notify_refused").unwrap(),
        0
    );
    assert!(
        status.contains(&format!("expires in {EXPIRE} s")),
        "{status}"
    );
}

#[test]
fn serve_stale_answers_through_cut_expiry_and_restart() {
    scenario("serve-stale");
}

#[test]
fn honour_stops_answering_past_expire_until_the_primary_returns() {
    scenario("honour");
}
