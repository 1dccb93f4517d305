//! Response rate limiting in the benchmark, through BPF_PROG_TEST_RUN with the program's clock
//! fixed (`RRL_TEST_FIXED_TIME`) and moved on per packet, so that the figures do not depend on
//! how fast this machine runs the packets:
//! - a spoofed flood: 100 000 queries a second for 2 s (1 s in smoke mode; the bench's query
//!   mix) from random
//!   addresses of one victim /24, with legitimate queries from 500 other /24s (10 a second
//!   each) in between; every packet goes through the XDP program, and what it passes through
//!   the userspace engine and its limiter (`xdpdns::rrl`), as `xdpdns serve` would answer it.
//!   Figures: the amplification factor toward the victim (frame bytes out / frame bytes in)
//!   with RRL off and on (the defaults: 20 a second, window 15, slip 2), and the share of
//!   legitimate queries answered in full during the flood (≥ 99% is the goal);
//! - the in-kernel cost RRL adds per answer: median single TEST_RUN of a referral with RRL
//!   off, on (under the limit), limited and dropped, and limited and slipped.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use dns_common::rrl::{RrlConfig, RRL_TEST_FIXED_TIME};
use xdpdns::engine::{Engine, Transport};
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::net::ServerStats;
use xdpdns::rrl::{Limiter, Settings};

use super::json::{obj, Json};
use super::micro::{engine_for, qtype_code, xdp_for};
use super::zone;
use crate::client::Q;
use crate::frame::{self, FrameSpec};

const FLOOD_QPS: u64 = 100_000;
/// One legitimate query every this many flood packets, from the next of `LEGIT_PREFIXES`.
const LEGIT_EVERY: u64 = 20;
const LEGIT_PREFIXES: u64 = 500;
/// The program's clock is written every this many packets.
const CLOCK_EVERY: u64 = 10;
const T0: u64 = 1_000_000_000_000;

const XDP_TX: u32 = 3;
const XDP_PASS: u32 = 2;

/// One flood run.
#[derive(Debug, Default)]
pub struct Flood {
    pub rrl: bool,
    pub seconds: u64,
    pub victim_bytes_in: u64,
    pub victim_bytes_out: u64,
    pub legit_sent: u64,
    pub legit_answered: u64,
    pub limited: u64,
    pub slipped: u64,
    pub dropped: u64,
}

impl Flood {
    pub fn amplification(&self) -> f64 {
        self.victim_bytes_out as f64 / self.victim_bytes_in.max(1) as f64
    }

    pub fn legit_share(&self) -> f64 {
        self.legit_answered as f64 / self.legit_sent.max(1) as f64
    }

    fn json(&self) -> Json {
        obj([
            ("rrl", self.rrl.into()),
            ("victim_bytes_in", self.victim_bytes_in.into()),
            ("victim_bytes_out", self.victim_bytes_out.into()),
            ("amplification", self.amplification().into()),
            ("legit_sent", self.legit_sent.into()),
            ("legit_answered", self.legit_answered.into()),
            ("legit_share", self.legit_share().into()),
            ("limited", self.limited.into()),
            ("slipped", self.slipped.into()),
            ("dropped", self.dropped.into()),
        ])
    }
}

fn set_clock(xdp: &mut XdpServer, s: Option<&Settings>, now: u64) -> Result<()> {
    let cfg = match s {
        Some(s) => RrlConfig {
            flags: s.xdp_config().flags | RRL_TEST_FIXED_TIME,
            test_now_ns: now,
            ..s.xdp_config()
        },
        None => RrlConfig::default(),
    };
    xdp.set_rrl(cfg, &[])
}

fn wire(q: &zone::Query, id: u16) -> Vec<u8> {
    let mut m = Q::new(&q.name, qtype_code(q.qtype));
    m.dnssec_ok = q.dnssec_ok;
    m.id = id;
    m.wire()
}

/// What the server sends for `f` (the query `dns` from `src`): the XDP answer, or for a pass
/// the userspace answer through its limiter. `None`: nothing.
fn served(
    xdp: &mut XdpServer,
    engine: &Engine,
    limiter: Option<&Limiter>,
    stats: &ServerStats,
    f: &[u8],
    (dns, src, now): (&[u8], IpAddr, u64),
) -> Result<Option<(usize, bool)>> {
    let (action, out) = xdp.test_run(f)?;
    match action {
        XDP_TX => {
            let tc = out.len() > 14 && frame::parse(&out).is_ok_and(|p| p.payload[2] & 2 != 0);
            Ok(Some((out.len(), tc)))
        }
        XDP_PASS => {
            let Some(r) = engine.answer_to(dns, Transport::Udp, src) else {
                return Ok(None);
            };
            let r = match limiter {
                Some(l) => l.apply(engine, dns, src, r, stats, now - T0),
                None => Some(r),
            };
            // The userspace answer in a frame of the query's addressing.
            Ok(r.map(|r| (f.len() - dns.len() + r.len(), r[2] & 2 != 0)))
        }
        _ => Ok(None),
    }
}

/// The flood against `engine`'s program, RRL as `settings` (or off).
fn flood(
    engine: &Engine,
    qs: &[zone::Query],
    settings: Option<&Settings>,
    seconds: u64,
) -> Result<Flood> {
    let mut xdp = xdp_for(engine)?;
    let limiter = settings.map(|s| Limiter::new(s.clone())).transpose()?;
    let stats = ServerStats::default();
    let server: IpAddr = crate::SERVER_V4.into();
    let mut rng = crate::tld::Rng::new(0x0f100d);
    let mut out = Flood {
        rrl: settings.is_some(),
        seconds,
        ..Flood::default()
    };
    let before = xdp.counters()?;
    let total = FLOOD_QPS * seconds;
    let step = 1_000_000_000 / FLOOD_QPS;
    for i in 0..total {
        let now = T0 + i * step;
        if i % CLOCK_EVERY == 0 {
            set_clock(&mut xdp, settings, now)?;
        }
        let q = &qs[(i as usize) % qs.len()];
        let victim: IpAddr = Ipv4Addr::new(198, 19, 77, rng.below(256) as u8).into();
        let dns = wire(q, i as u16);
        let f = frame::build(&FrameSpec::udp(victim, server, 53), &dns);
        out.victim_bytes_in += f.len() as u64;
        if let Some((n, _)) = served(
            &mut xdp,
            engine,
            limiter.as_ref(),
            &stats,
            &f,
            (&dns, victim, now),
        )? {
            out.victim_bytes_out += n as u64;
        }
        if i % LEGIT_EVERY == 0 {
            let k = (i / LEGIT_EVERY) % LEGIT_PREFIXES;
            let src: IpAddr = Ipv4Addr::new(198, 18, (k % 250) as u8, 10 + (k / 250) as u8).into();
            let q = &qs[rng.below(qs.len() as u64) as usize];
            let dns = wire(q, i as u16);
            let f = frame::build(&FrameSpec::udp(src, server, 53), &dns);
            out.legit_sent += 1;
            let got = served(
                &mut xdp,
                engine,
                limiter.as_ref(),
                &stats,
                &f,
                (&dns, src, now),
            )?;
            out.legit_answered += got.is_some_and(|(_, tc)| !tc) as u64;
        }
    }
    let after = xdp.counters()?;
    let d = |i: u32| after[i as usize] - before[i as usize];
    use std::sync::atomic::Ordering::Relaxed;
    out.limited = d(dns_common::counter::RRL_LIMITED) + stats.rrl_limited.load(Relaxed);
    out.slipped = d(dns_common::counter::RRL_SLIPPED) + stats.rrl_slipped.load(Relaxed);
    out.dropped = d(dns_common::counter::RRL_DROPPED) + stats.rrl_dropped.load(Relaxed);
    Ok(out)
}

/// Median single-run TEST_RUN time of `f`, `runs` times.
fn median_ns(xdp: &mut XdpServer, f: &[u8], runs: usize) -> Result<f64> {
    let mut ns = Vec::with_capacity(runs);
    for _ in 0..runs {
        ns.push(xdp.test_run_repeat(f, 1)?.as_nanos() as f64);
    }
    ns.sort_by(f64::total_cmp);
    Ok(ns[ns.len() / 2])
}

/// The in-kernel cost of RRL on one referral query: (label, median ns).
fn cost(engine: &Engine, referral: &zone::Query, runs: usize) -> Result<Vec<(&'static str, f64)>> {
    let mut xdp = xdp_for(engine)?;
    let spec = FrameSpec::udp(crate::CLIENT_V4.into(), crate::SERVER_V4.into(), 53);
    let f = frame::build(&spec, &wire(referral, 1));
    let mut out = vec![("RRL off", median_ns(&mut xdp, &f, runs)?)];
    // Under the limit: a rate no run reaches.
    let mut on = Settings::new(1_000_000_000);
    on.window = 3600;
    set_clock(&mut xdp, Some(&on), T0)?;
    out.push(("RRL on, under the limit", median_ns(&mut xdp, &f, runs)?));
    for (label, slip) in [("limited, dropped", 0), ("limited, slipped", 1)] {
        let mut s = Settings::new(1);
        s.window = 1;
        s.slip = slip;
        set_clock(&mut xdp, Some(&s), T0 + 1_000_000_000_000)?;
        xdp.test_run(&f)?;
        out.push((label, median_ns(&mut xdp, &f, runs)?));
    }
    Ok(out)
}

/// The figures of one section run.
pub struct Figures {
    pub off: Flood,
    pub on: Flood,
    /// (probe, median ns), RRL off first.
    pub cost: Vec<(&'static str, f64)>,
}

/// The flood of `seconds` with RRL off and on (the defaults), and the cost probes.
pub fn figures(z: &zone::Zone, qs: &[zone::Query], runs: usize, seconds: u64) -> Result<Figures> {
    let engine = engine_for(z)?;
    let defaults = Settings::new(20);
    let off = flood(&engine, qs, None, seconds)?;
    let on = flood(&engine, qs, Some(&defaults), seconds)?;
    let referral = qs
        .iter()
        .find(|q| q.name.split('.').count() > 3 && !q.dnssec_ok)
        .unwrap_or(&qs[0]);
    let cost = cost(&engine, referral, runs)?;
    Ok(Figures { off, on, cost })
}

/// The RRL section: JSON and text.
pub fn section(
    z: &zone::Zone,
    qs: &[zone::Query],
    runs: usize,
    seconds: u64,
) -> Result<(Json, String)> {
    let Figures {
        off,
        on,
        cost: costs,
    } = figures(z, qs, runs, seconds)?;
    let defaults = Settings::new(20);
    let mut text = format!(
        "response rate limiting (TEST_RUN, fixed clock): spoofed flood of {FLOOD_QPS} q/s for \
         {seconds} s from one /24, legitimate queries from {LEGIT_PREFIXES} other /24s:\n"
    );
    for f in [&off, &on] {
        text.push_str(&format!(
            "  RRL {:<3}  amplification toward the victim {:>6.2}x ({} B in, {} B out); \
             legitimate answered {:.2}% ({} of {}); limited {}, slipped {}, dropped {}\n",
            if f.rrl { "on" } else { "off" },
            f.amplification(),
            f.victim_bytes_in,
            f.victim_bytes_out,
            f.legit_share() * 100.0,
            f.legit_answered,
            f.legit_sent,
            f.limited,
            f.slipped,
            f.dropped
        ));
    }
    text.push_str(&format!(
        "  amplification with RRL / without: {:.4}\n  in-kernel cost per referral \
         (median single TEST_RUN, {runs} runs):",
        on.amplification() / off.amplification().max(f64::MIN_POSITIVE)
    ));
    let base = costs[0].1;
    for (label, ns) in &costs {
        text.push_str(&format!("  {label} {ns:.0} ns ({:+.0} ns)", ns - base));
    }
    text.push('\n');
    let json = obj([
        ("rate_limit", defaults.rate.into()),
        ("window", defaults.window.into()),
        ("slip", defaults.slip.into()),
        ("flood_qps", FLOOD_QPS.into()),
        ("flood_seconds", seconds.into()),
        ("legit_prefixes", LEGIT_PREFIXES.into()),
        ("off", off.json()),
        ("on", on.json()),
        (
            "cost_ns",
            Json::Arr(
                costs
                    .iter()
                    .map(|(l, ns)| obj([("probe", (*l).into()), ("median_ns", (*ns).into())]))
                    .collect(),
            ),
        ),
    ]);
    Ok((json, text))
}

/// `--rrl-only`: the rate limiting section alone, on the bench zone and mix.
pub fn only(o: &super::Options) -> Result<Json> {
    let work = std::env::temp_dir().join(format!("xdpdns-bench-rrl-{}", std::process::id()));
    super::cleanup::add_dir(work.clone());
    let zone = zone::generate(&work.join("zone"), o.delegations, o.signed, o.seed)?;
    let qs = zone::queries(&zone, &o.mix, o.do_share, o.queries, o.seed);
    let r = section(&zone, &qs, o.micro_runs, if o.smoke { 1 } else { 2 });
    let _ = std::fs::remove_dir_all(&work);
    super::cleanup::forget_dir(&work);
    let (json, text) = r?;
    println!("\n{text}");
    let doc = obj([
        ("mode", if o.smoke { "smoke" } else { "full" }.into()),
        ("rrl", json),
    ]);
    super::write_reports(o, &[("bench.json", doc.pretty()), ("bench.txt", text)])?;
    Ok(doc)
}
