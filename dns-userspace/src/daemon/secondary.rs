//! The secondary zones of a running server: each restored from storage at start (and served at
//! once, without waiting for a primary), then kept by its own task, which refreshes it when its
//! timers say so or a NOTIFY arrives, serves each new version as soon as it is stored, stops
//! serving it when it expires under `honour`, and retries failures at RETRY. Transfers block,
//! so they run on the blocking pool; a panic in one is contained and counted.
//!
//! Status (`xdpdns status`) and counters (`xdpdns stats`, `xfr.*`) are kept here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::mpsc;

use super::clock::DaemonClock;
use super::held;
use super::remote::SecondarySpec;
use super::served::Served;
use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
use crate::net::contain;
use crate::wire::name::Name;
use crate::xfr::client::Method;
use crate::xfr::secondary::{Event, Secondary};
use crate::xfr::store::Store;
use crate::xfr::timers::{ExpirePolicy, Status, TimerState};
use crate::zone::Zone;

/// How long a zone's refreshes pause after one that could not complete (its store failing, or
/// a panic), which leaves the timers where they were.
const HOLD_AFTER_ERROR: Duration = Duration::from_secs(30);
/// NOTIFYs waiting for a zone's task; more are dropped (a refresh is already coming).
const WAKE_QUEUE: usize = 16;

/// Counters of the secondary zones, all zones together.
#[derive(Debug, Default)]
pub struct XfrStats {
    pub refreshes: AtomicU64,
    pub up_to_date: AtomicU64,
    pub transfers_axfr: AtomicU64,
    pub transfers_ixfr: AtomicU64,
    /// IXFR requests answered with the whole zone.
    pub transfers_ixfr_full: AtomicU64,
    /// AXFRs after an IXFR that could not be used (also counted in `transfers_axfr`).
    pub ixfr_fallbacks: AtomicU64,
    /// Refreshes that failed at every primary, or could not complete.
    pub failures: AtomicU64,
    pub store_errors: AtomicU64,
    pub publish_errors: AtomicU64,
    pub notify_accepted: AtomicU64,
    pub notify_refused: AtomicU64,
}

impl XfrStats {
    /// `name value` lines, every counter always.
    pub fn lines(&self) -> Vec<(&'static str, u64)> {
        [
            ("xfr.refreshes", &self.refreshes),
            ("xfr.up_to_date", &self.up_to_date),
            ("xfr.transfers_axfr", &self.transfers_axfr),
            ("xfr.transfers_ixfr", &self.transfers_ixfr),
            ("xfr.transfers_ixfr_full", &self.transfers_ixfr_full),
            ("xfr.ixfr_fallbacks", &self.ixfr_fallbacks),
            ("xfr.failures", &self.failures),
            ("xfr.store_errors", &self.store_errors),
            ("xfr.publish_errors", &self.publish_errors),
            ("xfr.notify_accepted", &self.notify_accepted),
            ("xfr.notify_refused", &self.notify_refused),
        ]
        .into_iter()
        .map(|(n, v)| (n, v.load(Relaxed)))
        .collect()
    }
}

/// Where a zone stands, for `status` (updated by its task).
#[derive(Clone, Debug)]
struct View {
    serial: Option<u32>,
    timers: TimerState,
    status: Status,
    /// When the last refresh ended (the daemon clock's time), and how.
    last: Option<(u64, String)>,
}

/// One secondary zone as the rest of the server sees it.
#[derive(Debug)]
pub struct ZoneHandle {
    pub spec: SecondarySpec,
    pub dir: PathBuf,
    wake: mpsc::Sender<Option<u32>>,
    view: Mutex<View>,
}

impl ZoneHandle {
    /// Tells the zone's task of a NOTIFY (its sender checked), with the serial it announced.
    pub fn notified(&self, serial: Option<u32>) {
        // A full queue already holds a wake-up.
        let _ = self.wake.try_send(serial);
    }

    fn note(&self, sec: &Secondary, clock: &DaemonClock) {
        let now = clock.now();
        let status = sec.timers().status(now);
        let mut v = held(&self.view);
        let zone = &self.spec.zone;
        if status != v.status {
            match (status, self.spec.policy) {
                (Status::Expired, ExpirePolicy::Honour) => log::error!(
                    "zone {zone} expired (no primary reached within EXPIRE): no longer served, \
                     answered SERVFAIL (expire-policy honour); still retrying"
                ),
                (Status::Expired, ExpirePolicy::ServeStale) => log::warn!(
                    "zone {zone} expired (no primary reached within EXPIRE): serving the stale \
                     copy, serial {:?} (expire-policy serve-stale); still retrying",
                    sec.serial()
                ),
                (_, _) if v.status == Status::Expired => {
                    log::info!("zone {zone} no longer expired: serial {:?}", sec.serial())
                }
                _ => {}
            }
        }
        v.serial = sec.serial();
        v.timers = sec.timers().state().clone();
        v.status = status;
    }

    fn finished(&self, now: u64, what: String) {
        held(&self.view).last = Some((now, what));
    }

    /// The zone's lines in `xdpdns status`.
    pub fn status(&self, now: u64) -> String {
        let v = held(&self.view).clone();
        let s = &self.spec;
        let policy = match s.policy {
            ExpirePolicy::Honour => "honour",
            ExpirePolicy::ServeStale => "serve-stale",
        };
        let ago = |t: u64| match now.checked_sub(t) {
            Some(d) => format!("{d} s ago"),
            None => format!("in {} s", t - now),
        };
        let serial = v.serial.map_or("none".to_owned(), |n| n.to_string());
        let primaries: Vec<String> = s.primaries.iter().map(|r| r.describe()).collect();
        let mut out = format!(
            "secondary {} serial {serial} policy {policy} storage {}\n  primary {}\n",
            s.zone,
            self.dir.display(),
            primaries.join(", ")
        );
        match &v.last {
            Some((t, what)) => out.push_str(&format!("  last refresh {}: {what}\n", ago(*t))),
            None => out.push_str("  last refresh: none since start\n"),
        }
        if let Some(t) = v.timers.last_success {
            out.push_str(&format!("  last success {}\n", ago(t)));
        }
        let next = v.timers.next_check;
        let due = if next <= now {
            "now".to_owned()
        } else {
            format!("in {} s", next - now)
        };
        out.push_str(&format!(
            "  next refresh {due} ({} failures in a row)\n",
            v.timers.failures
        ));
        let expiry = match (v.status, v.timers.expires_at) {
            (Status::Empty, _) | (_, None) => {
                "no copy yet: SERVFAIL until the first transfer".to_owned()
            }
            (Status::Expired, Some(e)) => match s.policy {
                ExpirePolicy::ServeStale => {
                    format!("expired {} s ago, serving stale by policy", now - e)
                }
                ExpirePolicy::Honour => {
                    format!("expired {} s ago, not served by policy (SERVFAIL)", now - e)
                }
            },
            (_, Some(e)) => format!("expires in {} s", e.saturating_sub(now)),
        };
        out.push_str(&format!("  {expiry}\n"));
        out
    }
}

/// A zone opened at start, its task not yet running.
pub struct Opened {
    pub handle: Arc<ZoneHandle>,
    secondary: Secondary,
    wake: mpsc::Receiver<Option<u32>>,
}

impl Opened {
    /// The version to serve at start.
    pub fn serving(&self, clock: &DaemonClock) -> Option<Arc<Zone>> {
        self.secondary.serving(&*clock.clock)
    }
}

#[cfg(test)]
impl Opened {
    /// The next NOTIFY handed to the zone's task, if any.
    pub fn woken(&mut self) -> Option<Option<u32>> {
        self.wake.try_recv().ok()
    }
}

/// The directory of `zone` under `storage`: its labels, lower-cased, joined by dots (`root`
/// for the root zone); octets other than letters, digits, `-` and `_` as `%XX`.
pub fn zone_dir(storage: &Path, zone: &Name) -> PathBuf {
    if zone.is_root() {
        return storage.join("root");
    }
    let labels: Vec<String> = zone
        .labels()
        .map(|l| {
            l.iter()
                .map(|&b| match b.to_ascii_lowercase() {
                    c if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' => {
                        (c as char).to_string()
                    }
                    c => format!("%{c:02X}"),
                })
                .collect()
        })
        .collect();
    storage.join(labels.join("."))
}

/// Stores the version in `file` as the first one of the zone.
fn seed(dir: &Path, zone: &Name, file: &Path) -> Result<u32> {
    let parsed = crate::zonefile::parse_file(file, zone)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {}", file.display()))?;
    let label = file.display().to_string();
    let src = crate::zone::ZoneSource {
        name: &label,
        locations: parsed.locations.as_deref(),
    };
    let (z, _) = Zone::build(zone.clone(), parsed.records.clone(), &src)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Store::open(dir, zone)?.save_version(&parsed.records)?;
    Ok(crate::xfr::soa::Soa::from_rdata(&z.soa().rdatas[0]).map_or(0, |s| s.serial))
}

/// Opens every secondary zone's store under `storage`: the newest good version and the timers
/// are restored (a zone with nothing stored starts from its `file`, when it has one). Problems
/// met on disk are logged; a store that cannot be opened at all is an error.
pub fn open(specs: &[SecondarySpec], storage: &Path, clock: &DaemonClock) -> Result<Vec<Opened>> {
    let mut out = Vec::new();
    for spec in specs {
        let dir = zone_dir(storage, &spec.zone);
        let open = || {
            Secondary::open(
                spec.zone.clone(),
                spec.clients(),
                &dir,
                spec.policy,
                &*clock.clock,
            )
            .with_context(|| format!("secondary zone {}: opening {}", spec.zone, dir.display()))
        };
        let (mut secondary, problems) = open()?;
        for p in &problems {
            log::warn!("secondary zone {}: {p}", spec.zone);
        }
        if let (None, Some(file)) = (secondary.serial(), &spec.file) {
            match seed(&dir, &spec.zone, file) {
                Ok(serial) => {
                    log::info!(
                        "secondary zone {}: nothing stored yet; starting from {} (serial {serial})",
                        spec.zone,
                        file.display()
                    );
                    secondary = open()?.0;
                }
                Err(e) => log::warn!(
                    "secondary zone {}: nothing stored, and its file cannot be used: {e:#}",
                    spec.zone
                ),
            }
        }
        match secondary.serial() {
            Some(s) => log::info!(
                "secondary zone {}: serial {s} restored from {}",
                spec.zone,
                dir.display()
            ),
            None => log::info!(
                "secondary zone {}: no copy yet (SERVFAIL until the first transfer)",
                spec.zone
            ),
        }
        let (tx, rx) = mpsc::channel(WAKE_QUEUE);
        let now = clock.now();
        let handle = Arc::new(ZoneHandle {
            spec: spec.clone(),
            dir,
            wake: tx,
            view: Mutex::new(View {
                serial: secondary.serial(),
                timers: secondary.timers().state().clone(),
                status: secondary.timers().status(now),
                last: None,
            }),
        });
        out.push(Opened {
            handle,
            secondary,
            wake: rx,
        });
    }
    Ok(out)
}

/// Describes a refresh's outcome, counting it.
fn outcome(event: &Event, stats: &XfrStats) -> String {
    match event {
        Event::UpToDate { serial } => {
            stats.up_to_date.fetch_add(1, Relaxed);
            format!("serial {serial} is current")
        }
        Event::Updated { serial, method, .. } => {
            let how = match method {
                Method::Axfr => {
                    stats.transfers_axfr.fetch_add(1, Relaxed);
                    "AXFR".to_owned()
                }
                Method::Ixfr { diffs } => {
                    stats.transfers_ixfr.fetch_add(1, Relaxed);
                    format!("IXFR ({diffs} diffs)")
                }
                Method::IxfrFull => {
                    stats.transfers_ixfr_full.fetch_add(1, Relaxed);
                    "IXFR answered with the whole zone".to_owned()
                }
                Method::AxfrAfterIxfr(why) => {
                    stats.transfers_axfr.fetch_add(1, Relaxed);
                    stats.ixfr_fallbacks.fetch_add(1, Relaxed);
                    format!("AXFR after an IXFR that could not be used ({why})")
                }
            };
            format!("updated to serial {serial} by {how}")
        }
        Event::Failed(why) => {
            stats.failures.fetch_add(1, Relaxed);
            format!("failed: {}", why.join("; "))
        }
    }
}

/// A zone's task; runs until the server stops.
pub async fn run(opened: Opened, served: Arc<Served>, stats: Arc<XfrStats>, clock: DaemonClock) {
    let Opened {
        handle: z,
        mut secondary,
        mut wake,
    } = opened;
    let zone = z.spec.zone.clone();
    let publish_errors = LogThrottle::new(LOG_INTERVAL);
    let mut hold_until: Option<Instant> = None;
    loop {
        // Serve what the secondary says may be served now (a new version, or none once
        // expired under `honour`); a failed publication is tried again at the next look.
        let want = secondary.serving(&*clock.clock);
        let same = match (&want, served.secondary(&zone).flatten()) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, &b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            let (s, name, w) = (served.clone(), zone.clone(), want.clone());
            let r = tokio::task::spawn_blocking(move || {
                s.change(|src| {
                    src.secondaries.insert(name, w);
                })
            })
            .await;
            let Ok(r) = r else { return };
            match r {
                Ok((p, zones)) => log::info!(
                    "zone {zone}: {}; {zones} zones served{}",
                    match secondary.serial().filter(|_| want.is_some()) {
                        Some(s) => format!("serial {s} served"),
                        None => "no longer served (SERVFAIL)".to_owned(),
                    },
                    p.map(|p| format!(", XDP generation {}", p.generation))
                        .unwrap_or_default()
                ),
                Err(e) => {
                    stats.publish_errors.fetch_add(1, Relaxed);
                    publish_errors.warn(format_args!(
                        "zone {zone}: serving the new state failed, the old one still serves: {e:#}"
                    ));
                }
            }
        }
        z.note(&secondary, &clock);

        let held_now = hold_until.is_some_and(|t| Instant::now() < t);
        if secondary.due(&*clock.clock) && !held_now {
            stats.refreshes.fetch_add(1, Relaxed);
            let c = clock.clone();
            let joined = tokio::task::spawn_blocking(move || {
                let r = contain::contained(|| secondary.refresh(&*c.clock));
                (secondary, r)
            })
            .await;
            let Ok((s, r)) = joined else { return };
            secondary = s;
            hold_until = None;
            let what = match r {
                Ok(Ok(event)) => {
                    let what = outcome(&event, &stats);
                    match &event {
                        Event::Failed(_) => log::warn!(
                            "zone {zone}: refresh {what}; next attempt in {} s",
                            secondary
                                .timers()
                                .state()
                                .next_check
                                .saturating_sub(clock.now())
                        ),
                        Event::Updated { warnings, .. } => {
                            for w in warnings {
                                log::warn!("zone {zone}: {w}");
                            }
                            log::info!("zone {zone}: {what}");
                        }
                        Event::UpToDate { .. } => log::debug!("zone {zone}: {what}"),
                    }
                    what
                }
                Ok(Err(e)) => {
                    stats.store_errors.fetch_add(1, Relaxed);
                    stats.failures.fetch_add(1, Relaxed);
                    log::error!("zone {zone}: refresh not completed, storage failed: {e:#}");
                    hold_until = Some(Instant::now() + HOLD_AFTER_ERROR);
                    format!("storage failed: {e:#}")
                }
                Err(why) => {
                    stats.failures.fetch_add(1, Relaxed);
                    log::error!("zone {zone}: panic while refreshing, contained: {why}");
                    hold_until = Some(Instant::now() + HOLD_AFTER_ERROR);
                    format!("panic: {why}")
                }
            };
            z.finished(clock.now(), what);
            continue;
        }

        let now = clock.now();
        let next = secondary.timers().next_event(now);
        let mut wait = Duration::from_secs(next.saturating_sub(now)).min(clock.nap);
        if let Some(t) = hold_until.filter(|_| held_now) {
            wait = wait.min(t.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            serial = wake.recv() => {
                let Some(mut serial) = serial else { return };
                loop {
                    match secondary.notified(&*clock.clock, serial) {
                        Ok(true) => log::info!(
                            "zone {zone}: NOTIFY (serial {serial:?}): refreshing now"
                        ),
                        Ok(false) => log::info!(
                            "zone {zone}: NOTIFY (serial {serial:?}) is not newer than ours, {:?}",
                            secondary.serial()
                        ),
                        Err(e) => {
                            stats.store_errors.fetch_add(1, Relaxed);
                            log::warn!("zone {zone}: NOTIFY: storing the timers failed: {e:#}");
                        }
                    }
                    match wake.try_recv() {
                        Ok(s) => serial = s,
                        Err(_) => break,
                    }
                }
                // A NOTIFY ends a pause after an error.
                hold_until = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_directories() {
        let s = Path::new("/var/lib/xdpdns");
        let d = |n: &str| zone_dir(s, &Name::parse(n, None).unwrap());
        assert_eq!(d("Example.TLD."), s.join("example.tld"));
        assert_eq!(d("."), s.join("root"));
        assert_eq!(d("a\\/b.tld."), s.join("a%2Fb.tld"));
        assert_eq!(d("a\\032b."), s.join("a%20b"));
        assert_eq!(d("a\\.b.tld."), s.join("a%2Eb.tld"));
    }
}
