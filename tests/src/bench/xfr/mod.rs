//! The transfer section of `cargo xtask bench` (`--xfr`): xdpdns as the secondary of a TLD
//! registry's primary, against knotd in the same role, in the same run.
//!
//! A knotd primary in a namespace upstream of the server's (`crate::upstream`; TSIG
//! hmac-sha256, an IXFR journal, NOTIFY to the edge) serves the generated N-delegation TLD.
//! Then, one at a time, on the server core: xdpdns (XDP native on the client veth) and knotd
//! are started as its secondaries and timed until they answer the serial (AXFR); once quiet,
//! 100 delegations are changed on the primary in one `knotc` transaction, and the time from
//! the commit to the new serial and to a changed delegation's new referral is measured (for
//! xdpdns: answered by XDP, proven by its counters). xdpdns' transfer client is also timed
//! alone (AXFR into memory) to split its transfer from building and storing the zone.
//!
//! Submodules: `primary` (the knotd primary), `edge` (the secondaries, AXFR), `change` (the
//! update), `notify` (NOTIFY to answers), `probe` (queries, log marks, control socket),
//! `xdp_counters` (XDP counters read from the kernel), `report` (text and JSON).

pub mod change;
pub mod edge;
pub mod notify;
pub mod primary;
pub mod probe;
pub mod report;
pub mod xdp_counters;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};

use super::net::{self, BenchNet, SERVER_CPU};
use super::{cleanup, zone};
use crate::primary::TsigKey;
use crate::upstream::{Upstream, EDGE_V4};
use change::Change;
use edge::{Edge, EdgeKind};
use primary::Primary;
use probe::Prober;
use report::Phase;
pub use report::XfrResult;

/// What the section runs with.
#[derive(Clone, Debug)]
pub struct XfrOptions {
    pub delegations: usize,
    pub seed: u64,
}

/// The key the primary requires for transfers and signs its NOTIFYs with.
const KEY_NAME: &str = "bench-xfr.";
const KEY_SECRET: &[u8] = b"xdpdns transfer bench key, 32 o.";
/// How long a secondary may stay busy after its first transfer.
const SETTLE_MAX: Duration = Duration::from_secs(300);

/// Runs the section in `net` (adding an upstream namespace), with its files under `work`.
/// Failures are recorded in the result, which has whatever was measured before.
pub fn run(net: &mut BenchNet, work: &Path, o: &XfrOptions, progress: &dyn Fn(&str)) -> XfrResult {
    let mut res = XfrResult {
        delegations: o.delegations,
        ..XfrResult::default()
    };
    let dir = work.join("xfr");
    if let Err(e) = run_in(net, &dir, o, progress, &mut res) {
        progress(&format!("xfr: FAILED: {e:#}"));
        res.error = Some(format!("{e:#}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn run_in(
    net: &mut BenchNet,
    dir: &Path,
    o: &XfrOptions,
    progress: &dyn Fn(&str),
    res: &mut XfrResult,
) -> Result<()> {
    progress(&format!(
        "xfr: generating the zone ({} delegations)",
        o.delegations
    ));
    let z = zone::generate(&dir.join("zone"), o.delegations, false, o.seed)?;
    res.zone_bytes = std::fs::metadata(&z.path)?.len();
    room_for(dir, res.zone_bytes)?;
    let up = Upstream::behind(&net.server_ns)?;
    cleanup::add_netns(&up.ns);
    let r = with_upstream(net, &up, dir, &z, progress, res);
    let ns = up.ns.clone();
    drop(up);
    cleanup::forget_netns(&ns);
    r
}

fn with_upstream(
    net: &mut BenchNet,
    up: &Upstream,
    dir: &Path,
    z: &zone::Zone,
    progress: &dyn Fn(&str),
    res: &mut XfrResult,
) -> Result<()> {
    let key = TsigKey::new(KEY_NAME, "hmac-sha256", KEY_SECRET);
    let notify = SocketAddr::new(IpAddr::V4(EDGE_V4), 53);
    progress("xfr: starting the knotd primary upstream");
    let primary = Primary::start(net, up, &key, &z.path, notify, &dir.join("primary"))?;
    res.primary_load_s = Some(primary.load_s);
    res.serial = Some(serial_of(net, &primary)?);
    progress(&format!(
        "xfr: primary serving serial {} after {:.2}s",
        res.serial.unwrap_or(0),
        primary.load_s
    ));
    let client = client_axfr(net, primary.addr, &key);
    match &client {
        Ok((secs, n)) => progress(&format!(
            "xfr: xdpdns' transfer client alone: AXFR of {n} records in {secs:.2}s"
        )),
        Err(e) => progress(&format!(
            "xfr: xdpdns' transfer client alone: FAILED: {e:#}"
        )),
    }
    res.client_axfr = Some(client.map_err(|e| format!("{e:#}")));
    for (round, kind) in [EdgeKind::Xdpdns, EdgeKind::Knot].into_iter().enumerate() {
        let p = phase(net, &primary, &key, z, kind, round, dir, progress);
        match kind {
            EdgeKind::Xdpdns => res.xdpdns = p,
            EdgeKind::Knot => res.knot = p,
        }
    }
    Ok(())
}

/// Fails unless `dir`'s file system has room for the copies of the zone the section writes
/// (xdpdns stores two versions during an IXFR, knotd flushes its own, the journals).
fn room_for(dir: &Path, zone_bytes: u64) -> Result<()> {
    let st =
        nix::sys::statvfs::statvfs(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    let need = zone_bytes * 4 + (64 << 20);
    if free < need {
        anyhow::bail!(
            "{} has {} MiB free, the transfers need about {} MiB (TMPDIR=/dev/shm puts them in memory)",
            dir.display(),
            free >> 20,
            need >> 20
        );
    }
    Ok(())
}

/// The serial the primary serves now.
fn serial_of(net: &BenchNet, primary: &Primary) -> Result<u32> {
    Prober::new(&net.server_ns, primary.addr)?
        .serial(zone::ORIGIN)?
        .context("the primary does not answer its SOA")
}

/// One secondary: start, AXFR, settle, NOTIFY after round `round`'s change, stop.
#[allow(clippy::too_many_arguments)]
fn phase(
    net: &mut BenchNet,
    primary: &Primary,
    key: &TsigKey,
    z: &zone::Zone,
    kind: EdgeKind,
    round: usize,
    dir: &Path,
    progress: &dyn Fn(&str),
) -> Phase {
    let mut p = Phase::default();
    let name = kind.name();
    let r = (|| -> Result<()> {
        let serial = serial_of(net, primary)?;
        progress(&format!("xfr: {name} as secondary, first transfer"));
        let mut edge = Edge::start(kind, net, key, primary.addr, &dir.join(name))?;
        let r = measure(net, primary, z, &mut edge, round, serial, progress, &mut p);
        if kind == EdgeKind::Xdpdns {
            p.breakdown = edge.timing_lines();
        }
        let stopped = edge.stop(net);
        r?;
        stopped
    })();
    if let Err(e) = r {
        // A transaction left open would fail the next round.
        let _ = primary.ctl(&["zone-abort", zone::ORIGIN]);
        progress(&format!("xfr: {name}: FAILED: {e:#}"));
        p.error = Some(format!("{e:#}"));
    }
    p
}

#[allow(clippy::too_many_arguments)]
fn measure(
    net: &mut BenchNet,
    primary: &Primary,
    z: &zone::Zone,
    edge: &mut Edge,
    round: usize,
    serial: u32,
    progress: &dyn Fn(&str),
    p: &mut Phase,
) -> Result<()> {
    let name = edge.kind.name();
    let axfr = edge.axfr(net, serial)?;
    let marks: Vec<String> = axfr
        .marks
        .iter()
        .map(|(m, t, _)| format!("{m} {t:.2}s"))
        .collect();
    progress(&format!(
        "xfr: {name}: serial {serial} answered {:.2}s after the start ({}); peak RSS {} MiB",
        axfr.answered_s,
        marks.join(", "),
        axfr.peak_rss_kib >> 10
    ));
    p.axfr = Some(axfr);
    let settled = probe::settle(edge.pid()?, SETTLE_MAX)?;
    p.settle_s = Some(settled);
    progress(&format!(
        "xfr: {name}: quiet after {settled:.1}s more; staging the change"
    ));
    let change = Change::plan(&z.labels, round)?;
    change.stage(primary)?;
    let n = notify::measure(edge, net, primary, &change, serial)?;
    progress(&format!(
        "xfr: {name}: {} delegations changed; from the commit: serial {:?} at {:.3}s, new \
         referral at {:.3}s{}; {}",
        change.len(),
        n.serial,
        n.serial_s.unwrap_or(f64::NAN),
        n.referral_s.unwrap_or(f64::NAN),
        n.referral_xdp_s
            .map_or(String::new(), |t| format!(" (by XDP at {t:.3}s)")),
        n.method
            .as_ref()
            .map_or(String::new(), |m| format!("method {m}"))
    ));
    p.notify = Some(n);
    Ok(())
}

/// xdpdns' transfer client alone, on the server core in the server namespace: an AXFR of the
/// zone into memory. Returns the seconds and the records.
fn client_axfr(net: &BenchNet, addr: SocketAddr, key: &TsigKey) -> Result<(f64, usize)> {
    let key = key.key();
    let zone = xdpdns::wire::name::Name::parse(zone::ORIGIN, None)
        .map_err(|e| anyhow!("{}: {e:?}", zone::ORIGIN))?;
    crate::in_netns(&net.server_ns, move || -> Result<(f64, usize)> {
        // SAFETY: gettid(2) has no preconditions.
        let tid = unsafe { libc::gettid() };
        net::set_affinity(tid, SERVER_CPU)?;
        let t = Instant::now();
        let (records, _) = xdpdns::xfr::client::Primary::new(addr, Some(key))
            .axfr(&zone)
            .map_err(|e| anyhow!("{e}"))?;
        Ok((t.elapsed().as_secs_f64(), records.len()))
    })?
}
