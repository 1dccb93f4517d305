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
use super::transfers::{notify, Outbound};
use crate::fastpath::Update;
use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
use crate::net::contain;
use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::xfr::acl::Acl;
use crate::xfr::client::Method;
use crate::xfr::journal::JournalLimits;
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
    /// New versions that reached the XDP maps as a change to the zone alone, and as a whole
    /// publication (the first version, or a change that could not be bounded).
    pub publish_incremental: AtomicU64,
    pub publish_full: AtomicU64,
    pub notify_accepted: AtomicU64,
    pub notify_refused: AtomicU64,
    /// Transfers to downstreams: whole zones (AXFR, or IXFR answered with the zone).
    pub outbound_axfr: AtomicU64,
    pub outbound_ixfr: AtomicU64,
    /// IXFR requests answered with a single SOA (up to date, or: use TCP).
    pub outbound_up_to_date: AtomicU64,
    pub outbound_refused: AtomicU64,
    /// TSIG-signed queries (downstreams' SOA checks) answered signed, and refused.
    pub signed_queries: AtomicU64,
    pub signed_queries_refused: AtomicU64,
    /// NOTIFY to downstreams answered, and given up on.
    pub notify_sent: AtomicU64,
    pub notify_failed: AtomicU64,
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
            ("xfr.publish_incremental", &self.publish_incremental),
            ("xfr.publish_full", &self.publish_full),
            ("xfr.notify_accepted", &self.notify_accepted),
            ("xfr.notify_refused", &self.notify_refused),
            ("xfr.outbound_axfr", &self.outbound_axfr),
            ("xfr.outbound_ixfr", &self.outbound_ixfr),
            ("xfr.outbound_up_to_date", &self.outbound_up_to_date),
            ("xfr.outbound_refused", &self.outbound_refused),
            ("xfr.signed_queries", &self.signed_queries),
            ("xfr.signed_queries_refused", &self.signed_queries_refused),
            ("xfr.notify_sent", &self.notify_sent),
            ("xfr.notify_failed", &self.notify_failed),
        ]
        .into_iter()
        .map(|(n, v)| (n, v.load(Relaxed)))
        .collect()
    }
}

/// Where a zone stands, for `status` (updated by its task).
#[derive(Clone, Debug)]
pub(super) struct View {
    pub serial: Option<u32>,
    pub timers: TimerState,
    pub status: Status,
    /// When the last refresh ended (the daemon clock's time), and how.
    pub last: Option<(u64, String)>,
}

/// One secondary zone as the rest of the server sees it.
#[derive(Debug)]
pub struct ZoneHandle {
    pub spec: SecondarySpec,
    pub dir: PathBuf,
    /// Who may transfer the zone from us.
    pub acl: Arc<Acl>,
    /// The zone as transfers to downstreams see it.
    pub outbound: Outbound,
    wake: mpsc::Sender<Option<u32>>,
    view: Mutex<View>,
}

impl ZoneHandle {
    /// Tells the zone's task of a NOTIFY (its sender checked), with the serial it announced.
    pub fn notified(&self, serial: Option<u32>) {
        // A full queue already holds a wake-up.
        let _ = self.wake.try_send(serial);
    }

    /// Takes the zone's state after a look; the SOA of a version new since the last look.
    fn note(&self, sec: &Secondary, clock: &DaemonClock) -> Option<Record> {
        let new = self.outbound.update(sec, clock, &self.acl);
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
        new
    }

    fn finished(&self, now: u64, what: String) {
        held(&self.view).last = Some((now, what));
    }

    /// Where the zone stands now.
    pub(super) fn view(&self) -> View {
        held(&self.view).clone()
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

/// The SOA serial of `zone`.
fn zone_serial(zone: &Zone) -> Option<u32> {
    crate::xfr::soa::Soa::from_rdata(&zone.soa().rdatas[0]).map(|s| s.serial)
}

/// Stores the version in `file` as the first one of the zone.
fn seed(dir: &Path, zone: &Name, file: &Path) -> Result<u32> {
    let parsed = crate::zonefile::parse_file(file, zone)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {}", file.display()))?;
    let label = file.display().to_string();
    let src = crate::zone::ZoneSource {
        name: &label,
        locations: parsed.locations.as_ref(),
    };
    let (z, _) =
        Zone::build(zone.clone(), parsed.records, &src).map_err(|e| anyhow::anyhow!("{e}"))?;
    Store::open(dir, zone)?.save_zone(&z)?;
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
        let (mut secondary, mut problems) = open()?;
        problems.extend(secondary.keep_journal(JournalLimits::default())?);
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
                    for p in secondary.keep_journal(JournalLimits::default())? {
                        log::warn!("secondary zone {}: {p}", spec.zone);
                    }
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
            acl: Arc::new(spec.acl.clone()),
            outbound: Outbound::default(),
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

/// What a zone's task works with.
struct Task {
    z: Arc<ZoneHandle>,
    served: Arc<Served>,
    stats: Arc<XfrStats>,
    clock: DaemonClock,
    publish_errors: LogThrottle,
}

impl Task {
    fn zone(&self) -> &Name {
        &self.z.spec.zone
    }

    /// Serves `want` for the zone (a version, or none: SERVFAIL) unless it is served already.
    /// A publication that fails is counted and logged; the next look tries again. `None` when
    /// the server is stopping.
    /// `secondary` gives the serial and the journal's diffs (none: stop serving the zone).
    async fn serve(&self, want: Option<Arc<Zone>>, secondary: Option<&Secondary>) -> Option<()> {
        let serial = secondary.and_then(Secondary::serial);
        let current = self.served.secondary(self.zone()).flatten();
        let same = match (&want, &current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return Some(());
        }
        // The journal's diffs from the version served to this one, when it has them.
        let diffs = current
            .as_deref()
            .and_then(zone_serial)
            .zip(secondary)
            .and_then(|(from, sec)| sec.chain_from(from));
        let (s, name, w) = (self.served.clone(), self.zone().clone(), want.clone());
        let t = Instant::now();
        let r = tokio::task::spawn_blocking(move || s.change_secondary(&name, w, diffs.as_deref()))
            .await
            .ok()?;
        log::debug!(
            "zone {}: engine and XDP publication in {:.3} s",
            self.zone(),
            t.elapsed().as_secs_f64()
        );
        if let Ok((Some(p), _)) = &r {
            let c = match &p.update {
                Update::Incremental { .. } => &self.stats.publish_incremental,
                Update::Full { .. } => &self.stats.publish_full,
            };
            c.fetch_add(1, Relaxed);
            if let Update::Full { reason: Some(why) } = &p.update {
                log::info!("zone {}: whole XDP publication: {why}", self.zone());
            }
        }
        let zone = self.zone();
        match r {
            Ok((p, zones)) => log::info!(
                "zone {zone}: {}; {zones} zones served{}",
                match serial.filter(|_| want.is_some()) {
                    Some(s) => format!("serial {s} served"),
                    None => "no longer served (SERVFAIL)".to_owned(),
                },
                p.map(|p| format!(", XDP generation {}", p.generation))
                    .unwrap_or_default()
            ),
            Err(e) => {
                self.stats.publish_errors.fetch_add(1, Relaxed);
                self.publish_errors.warn(format_args!(
                    "zone {zone}: serving the new state failed, the old one still serves: {e:#}"
                ));
            }
        }
        Some(())
    }

    /// One refresh on the blocking pool. Meanwhile an expiry still takes effect (a transfer
    /// may take long). Returns the secondary and whether the refresh completed (succeeded or
    /// failed at the primaries, the timers moved); `None` when the server is stopping.
    async fn refresh(&self, secondary: Secondary) -> Option<(Secondary, bool)> {
        self.stats.refreshes.fetch_add(1, Relaxed);
        let timers = secondary.timers().clone();
        let c = self.clock.clone();
        let mut job = tokio::task::spawn_blocking(move || {
            let mut secondary = secondary;
            let r = contain::contained(|| secondary.refresh(&*c.clock));
            (secondary, r)
        });
        let (secondary, r) = loop {
            tokio::select! {
                joined = &mut job => break joined.ok()?,
                _ = tokio::time::sleep(self.clock.nap) => {
                    if !timers.serves(self.clock.now()) {
                        self.serve(None, None).await?;
                    }
                }
            }
        };
        let zone = self.zone();
        let (what, completed) = match r {
            Ok(Ok(event)) => {
                let what = outcome(&event, &self.stats);
                match &event {
                    Event::Failed(_) => log::warn!(
                        "zone {zone}: refresh {what}; next attempt in {} s",
                        secondary
                            .timers()
                            .state()
                            .next_check
                            .saturating_sub(self.clock.now())
                    ),
                    Event::Updated { warnings, .. } => {
                        for w in warnings {
                            log::warn!("zone {zone}: {w}");
                        }
                        log::info!("zone {zone}: {what}");
                    }
                    Event::UpToDate { .. } => log::debug!("zone {zone}: {what}"),
                }
                (what, true)
            }
            Ok(Err(e)) => {
                self.stats.store_errors.fetch_add(1, Relaxed);
                self.stats.failures.fetch_add(1, Relaxed);
                log::error!("zone {zone}: refresh not completed, storage failed: {e:#}");
                (format!("storage failed: {e:#}"), false)
            }
            Err(why) => {
                self.stats.failures.fetch_add(1, Relaxed);
                log::error!("zone {zone}: panic while refreshing, contained: {why}");
                (format!("panic: {why}"), false)
            }
        };
        self.z.finished(self.clock.now(), what);
        Some((secondary, completed))
    }

    /// A NOTIFY the handler accepted, with the serial it announced.
    fn notified(&self, secondary: &mut Secondary, serial: Option<u32>) {
        let zone = self.zone();
        match secondary.notified(&*self.clock.clock, serial) {
            Ok(true) => log::info!("zone {zone}: NOTIFY (serial {serial:?}): refreshing now"),
            Ok(false) => log::info!(
                "zone {zone}: NOTIFY (serial {serial:?}) is not newer than ours, {:?}",
                secondary.serial()
            ),
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Relaxed);
                log::warn!("zone {zone}: NOTIFY: storing the timers failed: {e:#}");
            }
        }
    }
}

/// A zone's task; runs until the server stops.
pub async fn run(opened: Opened, served: Arc<Served>, stats: Arc<XfrStats>, clock: DaemonClock) {
    let Opened {
        handle,
        mut secondary,
        mut wake,
    } = opened;
    let task = Task {
        z: handle,
        served,
        stats,
        clock,
        publish_errors: LogThrottle::new(LOG_INTERVAL),
    };
    let clock = &task.clock;
    let mut hold_until: Option<Instant> = None;
    loop {
        // Serve what the secondary says may be served now (a new version, or none once
        // expired under `honour`).
        let want = secondary.serving(&*clock.clock);
        if task.serve(want, Some(&secondary)).await.is_none() {
            return;
        }
        if let Some(soa) = task.z.note(&secondary, clock) {
            notify(&task.z, soa, &task.stats);
        }

        let held_now = hold_until.is_some_and(|t| Instant::now() < t);
        if secondary.due(&*clock.clock) && !held_now {
            let Some((s, completed)) = task.refresh(secondary).await else {
                return;
            };
            secondary = s;
            // A refresh that could not complete left the timers as they were: pause.
            hold_until = (!completed).then(|| Instant::now() + HOLD_AFTER_ERROR);
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
                    task.notified(&mut secondary, serial);
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
