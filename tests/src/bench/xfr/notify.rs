//! NOTIFY to answers: with a secondary holding the zone, a staged 100-delegation change is
//! committed on the primary (which then NOTIFYs the edge), and the clients' side is polled
//! every 5 ms (at most 120 s) for the new SOA serial and for a changed delegation's new
//! referral. For xdpdns each referral query is bracketed by reads of its XDP counters from the
//! kernel, so the time is the first new referral that XDP itself answered; afterwards one more
//! query is bracketed by `xdpdns stats` (XDP referral counter +1, `udp.queries` +0), and the
//! `xfr.*` counters and `status` say how the change came (IXFR or otherwise).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::change::Change;
use super::edge::{service, Edge, EdgeKind};
use super::primary::Primary;
use super::probe::{self, bare, LogWatch, Mark, Prober, POLL};
use super::xdp_counters::{self, XdpCounters};
use crate::bench::net::BenchNet;
use crate::bench::zone::ORIGIN;
use crate::stats::{try_delta, Counters};

/// The longest the loop polls after the commit.
const NOTIFY_MAX: Duration = Duration::from_secs(120);
/// How long a control-socket request may wait (the daemon answers `stats` after a
/// publication in progress).
const CONTROL_WAIT: Duration = Duration::from_secs(300);

/// Seconds from the commit.
#[derive(Clone, Debug, Default)]
pub struct Notified {
    /// `knotc zone-commit` returned.
    pub commit_s: f64,
    pub serial: Option<u32>,
    /// The new serial first answered.
    pub serial_s: Option<f64>,
    /// The changed delegation's new referral first answered (by any path).
    pub referral_s: Option<f64>,
    /// xdpdns: the new referral first answered by XDP (kernel counters around the query).
    pub referral_xdp_s: Option<f64>,
    /// xdpdns: what answered the first new referral (`XDP`, or the counters that moved).
    pub first_path: Option<String>,
    /// Log marks (name, seconds from the commit, line).
    pub marks: Vec<(&'static str, f64, String)>,
    /// xdpdns: the `xfr.*` counters that moved, and by how much.
    pub xfr: Vec<(String, u64)>,
    /// xdpdns: how the change came, from the counters.
    pub method: Option<String>,
    /// xdpdns: the zone's `last refresh` line of `xdpdns status`.
    pub last_refresh: Option<String>,
    /// xdpdns: (`xdp.answered_referral`, `udp.queries`) deltas over one referral query.
    pub confirm: Option<(u64, u64)>,
}

impl Notified {
    /// xdpdns: how the new version reached the XDP maps (`incremental`, `full`), from the
    /// `xfr.publish_*` counters.
    pub fn xdp_update(&self) -> Option<&'static str> {
        let moved = |k: &str| self.xfr.iter().any(|(name, _)| name == k);
        match (moved("xfr.publish_incremental"), moved("xfr.publish_full")) {
            (true, false) => Some("incremental"),
            (false, true) => Some("full"),
            (true, true) => Some("incremental and full"),
            (false, false) => None,
        }
    }
}

fn marks(kind: EdgeKind) -> Vec<Mark> {
    match kind {
        EdgeKind::Xdpdns => vec![
            Mark::new("notify", &["NOTIFY (serial"]),
            Mark::new("transferred", &["updated to serial", " by "]),
            Mark::new("published", &[" served; "]),
        ],
        EdgeKind::Knot => vec![
            Mark::new("notify", &["notify, incoming"]),
            Mark::new("transferred", &["XFR, incoming", "finished"]),
            Mark::new("loaded", &["zone updated"]),
        ],
    }
}

/// The xfr counters that tell how a new version came.
const METHODS: [(&str, &str); 4] = [
    ("xfr.transfers_ixfr", "IXFR"),
    (
        "xfr.transfers_ixfr_full",
        "IXFR answered with the whole zone",
    ),
    ("xfr.ixfr_fallbacks", "AXFR after an unusable IXFR"),
    ("xfr.transfers_axfr", "AXFR"),
];

/// Commits `change` (staged on `primary`) and times it into `edge`'s answers; `old` is the
/// serial the edge serves now.
pub fn measure(
    edge: &Edge,
    net: &BenchNet,
    primary: &Primary,
    change: &Change,
    old: u32,
) -> Result<Notified> {
    let xdp = match edge.kind {
        EdgeKind::Xdpdns => Some(XdpCounters::of(edge.pid()?)?),
        EdgeKind::Knot => None,
    };
    let before = match edge.kind {
        EdgeKind::Xdpdns => Some(probe::stats(&edge.control, CONTROL_WAIT)?),
        EdgeKind::Knot => None,
    };
    let (name, new_ns) = change.probe();
    let new_ns: Vec<String> = new_ns.iter().map(|n| bare(n)).collect();
    let is_new = |ns: &Option<Vec<String>>| {
        ns.as_ref()
            .is_some_and(|ns| new_ns.iter().all(|n| ns.contains(n)))
    };
    let mut probe = Prober::new(&net.client_ns, service())?;
    if is_new(&probe.referral(&name)?) {
        bail!("{name} has its new referral before the commit");
    }
    let mut watch = LogWatch::from_end(&edge.log, marks(edge.kind));
    let mut commit = primary.knotc();
    commit.args(["zone-commit", ORIGIN]);
    let t0 = Instant::now();
    let committing = std::thread::spawn(move || (crate::sh(&mut commit), t0.elapsed()));
    let mut n = Notified::default();
    let secs = || t0.elapsed().as_secs_f64();
    loop {
        watch.poll(secs())?;
        if n.serial_s.is_none() {
            if let Some(s) = probe.serial(ORIGIN)?.filter(|s| *s != old) {
                n.serial_s = Some(secs());
                n.serial = Some(s);
            }
        }
        let before = xdp.as_ref().map(XdpCounters::read).transpose()?;
        let ns = probe.referral(&name)?;
        let after = xdp.as_ref().map(XdpCounters::read).transpose()?;
        if is_new(&ns) {
            let t = secs();
            let first = n.referral_s.is_none();
            n.referral_s.get_or_insert(t);
            if let (Some(b), Some(a)) = (&before, &after) {
                if first {
                    n.first_path = Some(xdp_counters::path(b, a));
                }
                if n.referral_xdp_s.is_none() && xdp_counters::one_xdp_referral(b, a) {
                    n.referral_xdp_s = Some(t);
                }
            }
        }
        let xdp_done = xdp.is_none() || n.referral_xdp_s.is_some();
        if n.serial_s.is_some() && n.referral_s.is_some() && xdp_done {
            break;
        }
        if t0.elapsed() > NOTIFY_MAX {
            bail!(
                "{} within {NOTIFY_MAX:?} of the commit: serial {:?} at {:?} s, new referral at \
                 {:?} s (by XDP: {:?} s); log:\n{}",
                edge.kind.name(),
                n.serial,
                n.serial_s,
                n.referral_s,
                n.referral_xdp_s,
                edge.log_tail()
            );
        }
        std::thread::sleep(POLL);
    }
    let (r, took) = committing
        .join()
        .map_err(|_| anyhow::anyhow!("the knotc thread panicked"))?;
    r.context("knotc zone-commit")?;
    n.commit_s = took.as_secs_f64();
    watch.finish(secs, Duration::from_secs(5))?;
    n.marks = watch.seen;
    if let Some(before) = before {
        confirm(edge, &mut probe, &name, &is_new, &before, &mut n)?;
    }
    Ok(n)
}

/// xdpdns after the change: one referral query bracketed by `xdpdns stats`, and how the change
/// came (the `xfr.*` counters since `before`, the `status` line).
fn confirm(
    edge: &Edge,
    probe: &mut Prober,
    name: &str,
    is_new: &dyn Fn(&Option<Vec<String>>) -> bool,
    before: &Counters,
    n: &mut Notified,
) -> Result<()> {
    let a = probe::stats(&edge.control, CONTROL_WAIT)?;
    let ns = probe.referral(name)?;
    let b = probe::stats(&edge.control, CONTROL_WAIT)?;
    if !is_new(&ns) {
        bail!("{name}: the new referral is no longer answered ({ns:?})");
    }
    let d = |k: &str| try_delta(&a, &b, k);
    n.confirm = Some((d("xdp.answered_referral")?, d("udp.queries")?));
    for name in b.names().filter(|k| k.starts_with("xfr.")) {
        let moved = try_delta(before, &b, name)?;
        if moved > 0 {
            n.xfr.push((name.to_owned(), moved));
        }
    }
    let moved = |k: &str| n.xfr.iter().any(|(name, _)| name == k);
    n.method = METHODS
        .iter()
        .find(|(k, _)| moved(k))
        .map(|(_, m)| (*m).to_owned());
    if n.method.is_none() {
        bail!(
            "no transfer counted in xdpdns stats (xfr counters moved: {:?})",
            n.xfr
        );
    }
    let status = probe::control(&edge.control, "status", CONTROL_WAIT)?;
    n.last_refresh = status
        .lines()
        .find(|l| l.trim_start().starts_with("last refresh"))
        .map(|l| l.trim().to_owned());
    Ok(())
}
