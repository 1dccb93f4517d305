//! One secondary zone: its primaries, the version it serves, its timers and its store, kept
//! consistent. A refresh asks the primaries in turn; a new version is checked (the zone builds,
//! or the IXFR diffs apply to our copy: `Zone::apply`, in place), made durable, and only then
//! becomes the one served, with the timers stored after it. A failed refresh changes nothing but
//! the timers (the next retry); diffs that do not apply to our copy fall back to AXFR.
//!
//! Durable means, as Knot's journal with zonefile-sync: a whole version (AXFR) is written as a
//! snapshot (`store`); IXFR diffs, as received, go into the journal (`journal`, sealed files,
//! fsync and rename) and a snapshot is written only every `snapshot_every` diffs, in the
//! background after the new version is served (the diffs already on disk make it durable). At
//! start the newest good snapshot is loaded and the journal's diffs after it replayed; a bad or
//! truncated diff ends the replay there, reported, and the newest good state is served. Without
//! a journal (`keep_journal` not called and none on disk) every version is a snapshot.
//!
//! With a journal, `offer` gives what downstream secondaries may transfer: the version, the
//! diffs leading to it and the time left before it expires.
//!
//! Refreshes block on the network (bounded by each primary's timeouts): a server runs them off
//! its answering threads and swaps `serving()` into its catalog when they report `Updated`.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Result};

use super::acl::Acl;
use super::client::{Fetched, Method, Primary};
use super::ixfr::{serial, Diff};
use super::journal::{Journal, JournalLimits};
use super::outbound::{Offer, Served};
use super::soa::Soa;
use super::store::Store;
use super::timers::{Clock, ExpirePolicy, Timers};
use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::zone::{Zone, ZoneSource};

/// Diffs between snapshots, by default (within the journal's 20, so that it can always replay
/// from the newest snapshot).
pub const SNAPSHOT_EVERY: usize = 10;

/// The version being served.
#[derive(Debug)]
struct Current {
    zone: Arc<Zone>,
    soa: Soa,
    soa_record: Record,
}

impl Current {
    fn of(zone: Arc<Zone>) -> Current {
        let soa_record = zone.soa().records(zone.apex()).next().expect("one SOA");
        Current {
            soa: Soa::from_record(&soa_record).expect("zone checks guarantee an SOA"),
            soa_record,
            zone,
        }
    }
}

/// What a refresh did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The primary has nothing newer.
    UpToDate { serial: u32 },
    /// A new version is served (and stored).
    Updated {
        serial: u32,
        method: Method,
        warnings: Vec<String>,
    },
    /// Every primary failed; one line per primary.
    Failed(Vec<String>),
}

/// Snapshots on disk: the newest one's serial, the diffs since, one being written.
#[derive(Debug, Default)]
struct Snapshots {
    serial: Option<u32>,
    since: usize,
    every: usize,
    writing: Option<(u32, JoinHandle<Result<()>>)>,
}

/// A secondary zone.
#[derive(Debug)]
pub struct Secondary {
    pub zone: Name,
    pub primaries: Vec<Primary>,
    store: Store,
    timers: Timers,
    current: Option<Current>,
    journal: Option<Journal>,
    snapshots: Snapshots,
}

/// `zone` with the `chain` of diffs applied one by one, as far as they apply; the diffs
/// applied, and what stopped the replay.
fn replay(zone: Arc<Zone>, chain: &[Arc<Diff>]) -> (Arc<Zone>, usize, Option<String>) {
    let mut z = zone;
    for (i, d) in chain.iter().enumerate() {
        let label = format!("journal diff {} to {}", serial(&d.from), serial(&d.to));
        match z.apply(&[d.change()], &label) {
            Ok((next, _)) => z = Arc::new(next),
            Err(e) => return (z, i, Some(format!("{e}; the replay stops there"))),
        }
    }
    (z, chain.len(), None)
}

impl Secondary {
    /// Opens the zone's store in `dir`: the newest good snapshot, the journal's diffs after it
    /// replayed, and the timers are restored (without stored timers, a refresh is due at
    /// once). Returns the problems met on disk.
    pub fn open(
        zone: Name,
        primaries: Vec<Primary>,
        dir: &Path,
        policy: ExpirePolicy,
        clock: &dyn Clock,
    ) -> Result<(Secondary, Vec<String>)> {
        let store = Store::open(dir, &zone)?;
        let loaded = store.load()?;
        let mut problems = loaded.problems;
        let mut current = loaded.version.map(|v| Current::of(Arc::new(v.zone)));
        let mut snapshots = Snapshots {
            serial: current.as_ref().map(|c| c.soa.serial),
            every: SNAPSHOT_EVERY,
            ..Snapshots::default()
        };
        let jdir = dir.join("journal");
        let mut journal = None;
        if jdir.is_dir() {
            let (mut j, p) =
                Journal::open_at(&jdir, &zone, JournalLimits::default(), snapshots.serial)?;
            problems.extend(p);
            if let Some(c) = current.take() {
                let chain = j.chain_from(c.soa.serial).unwrap_or_default();
                let (z, applied, stop) = replay(c.zone.clone(), &chain);
                if let Some(why) = stop {
                    problems.push(format!("zone {zone}: {why}"));
                }
                let c = if applied > 0 { Current::of(z) } else { c };
                if j.span().is_some_and(|s| s.1 != c.soa.serial) && !j.truncate_to(c.soa.serial) {
                    problems.push(format!(
                        "zone {zone}: the journal ends at serial {:?}, the version held is {}; cleared",
                        j.span().map(|s| s.1),
                        c.soa.serial
                    ));
                    j.clear();
                }
                snapshots.since = applied;
                current = Some(c);
            }
            journal = Some(j);
        }
        let timers = match (loaded.timers, &current) {
            (Some(t), Some(c)) if t.serial == Some(c.soa.serial) => Timers::restore(t, policy),
            (Some(t), None) if t.serial.is_none() => Timers::restore(t, policy),
            (Some(mut t), _) => {
                // The timers belong to another version (the newest was set aside): keep the
                // expiry already earned, check again now.
                problems.push(format!(
                    "zone {zone}: stored timers are for serial {:?}, the version on disk is {:?}; refreshing now",
                    t.serial,
                    current.as_ref().map(|c| c.soa.serial)
                ));
                t.serial = current.as_ref().map(|c| c.soa.serial);
                t.next_check = clock.now();
                if current.is_none() {
                    t.expires_at = None;
                }
                Timers::restore(t, policy)
            }
            (None, _) => {
                let mut t = Timers::new(policy, clock.now());
                if let Some(c) = &current {
                    // No timers on disk: the expiry counts from now, a check is due now.
                    t.succeeded(clock.now(), &c.soa, None);
                    t.notified(clock.now(), None);
                }
                t
            }
        };
        Ok((
            Secondary {
                zone,
                primaries,
                store,
                timers,
                current,
                journal,
                snapshots,
            },
            problems,
        ))
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The serial of the version held.
    pub fn serial(&self) -> Option<u32> {
        self.current.as_ref().map(|c| c.soa.serial)
    }

    /// The zone to answer from now: none before the first version, nor once expired under the
    /// `honour` policy.
    pub fn serving(&self, clock: &dyn Clock) -> Option<Arc<Zone>> {
        let c = self.current.as_ref()?;
        self.timers.serves(clock.now()).then(|| c.zone.clone())
    }

    pub fn due(&self, clock: &dyn Clock) -> bool {
        self.timers.due(clock.now())
    }

    /// A NOTIFY for this zone (its TSIG already checked); returns whether a refresh is due.
    pub fn notified(&mut self, clock: &dyn Clock, serial: Option<u32>) -> Result<bool> {
        let due = self.timers.notified(clock.now(), serial);
        if due {
            self.store.save_timers(self.timers.state())?;
        }
        Ok(due)
    }

    /// Keeps the diffs between versions in a journal beside the store (`journal/`), for IXFR
    /// to downstreams and as the durable form of IXFR updates. A journal that does not end at
    /// the version held is cleared. Returns the problems met on disk.
    pub fn keep_journal(&mut self, limits: JournalLimits) -> Result<Vec<String>> {
        let (mut j, mut problems) = Journal::open_at(
            &self.store.dir.join("journal"),
            &self.zone,
            limits,
            self.snapshots.serial,
        )?;
        let end = j.span().map(|s| s.1);
        if end.is_some() && end != self.serial() {
            problems.push(format!(
                "zone {}: the journal ends at serial {end:?}, the version held is {:?}; cleared",
                self.zone,
                self.serial()
            ));
            j.clear();
        }
        self.journal = Some(j);
        self.make_replayable()?;
        Ok(problems)
    }

    /// Diffs between snapshots (default `SNAPSHOT_EVERY`).
    pub fn set_snapshot_every(&mut self, n: usize) {
        self.snapshots.every = n.max(1);
    }

    /// The serial of the newest snapshot on disk, and the diffs held since.
    pub fn snapshot(&self) -> (Option<u32>, usize) {
        (self.snapshots.serial, self.snapshots.since)
    }

    /// The journal's diffs from serial `from` to the version held, when it has them.
    pub fn chain_from(&self, from: u32) -> Option<Vec<Arc<Diff>>> {
        self.journal.as_ref()?.chain_from(from)
    }

    /// Whether a restart would come back to the version held: the newest snapshot is it, or
    /// the journal leads from the snapshot to it.
    fn replayable(&self) -> bool {
        self.serial().is_none_or(|s| self.replayable_to(s))
    }

    /// Whether a restart would come back to serial `to`.
    fn replayable_to(&self, to: u32) -> bool {
        let Some(snap) = self.snapshots.serial else {
            return false;
        };
        snap == to
            || self
                .chain_from(snap)
                .and_then(|ch| ch.last().map(|d| serial(&d.to)))
                == Some(to)
    }

    /// Writes a snapshot of the version held now, unless a restart would come back to it.
    fn make_replayable(&mut self) -> Result<()> {
        self.finish_snapshot()?;
        if self.replayable() {
            return Ok(());
        }
        let c = self.current.as_ref().expect("replayable without a version");
        self.store.save_zone(&c.zone)?;
        self.snapshots.serial = Some(c.soa.serial);
        self.snapshots.since = 0;
        Ok(())
    }

    /// Waits for the snapshot being written, if any.
    fn finish_snapshot(&mut self) -> Result<()> {
        if let Some((serial, job)) = self.snapshots.writing.take() {
            job.join()
                .map_err(|_| anyhow!("zone {}: the snapshot writer panicked", self.zone))??;
            self.snapshots.since = self.chain_from(serial).map_or(0, |c| c.len());
            self.snapshots.serial = Some(serial);
        }
        Ok(())
    }

    /// Starts writing a snapshot of the version held, in the background.
    fn start_snapshot(&mut self) -> Result<()> {
        let Some(c) = &self.current else {
            return Ok(());
        };
        let (store, zone, serial) = (self.store.clone(), c.zone.clone(), c.soa.serial);
        let job = std::thread::Builder::new()
            .name("xfr-snapshot".into())
            .spawn(move || {
                let t = Instant::now();
                store.save_zone(&zone)?;
                log::debug!(
                    "zone {}: snapshot of serial {serial} written in {:.3} s",
                    store.zone,
                    t.elapsed().as_secs_f64()
                );
                Ok(())
            })?;
        self.snapshots.writing = Some((serial, job));
        Ok(())
    }

    /// What downstream secondaries may transfer now, under `acl`: the version served (none
    /// before the first, nor once expired under the `honour` policy), the journal's diffs to
    /// it, and the seconds left before it expires (for EDNS EXPIRE).
    pub fn offer(&self, clock: &dyn Clock, acl: Arc<Acl>) -> Option<Offer> {
        let c = self.current.as_ref()?;
        let now = clock.now();
        if !self.timers.serves(now) {
            return None;
        }
        let history = self
            .journal
            .as_ref()
            .map(Journal::diffs)
            .unwrap_or_default();
        let served = Served::of_zone(c.zone.clone(), history);
        let expire = self
            .timers
            .state()
            .expires_at
            .map(|e| u32::try_from(e.saturating_sub(now)).unwrap_or(u32::MAX));
        Some(Offer {
            served,
            acl,
            expire,
        })
    }

    /// Refreshes from the primaries in order, the first success ending it. Errors are only
    /// those of the store (a version that cannot be written is not served).
    pub fn refresh(&mut self, clock: &dyn Clock) -> Result<Event> {
        let mut failures = Vec::new();
        for p in self.primaries.clone() {
            let t = Instant::now();
            let ours = self.current.as_ref().map(|c| c.soa_record.clone());
            let fetched = match p.fetch(&self.zone, ours.as_ref()) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(e.to_string());
                    continue;
                }
            };
            let fetched_s = t.elapsed().as_secs_f64();
            let (records, method, expire) = match fetched {
                Fetched::UpToDate { serial, expire } => {
                    let Some(soa) = self.current.as_ref().map(|c| c.soa.clone()) else {
                        failures.push(format!("{}: up to date without a copy", p.addr));
                        continue;
                    };
                    self.timers.succeeded(clock.now(), &soa, expire);
                    self.store.save_timers(self.timers.state())?;
                    return Ok(Event::UpToDate { serial });
                }
                Fetched::Diffs { diffs, expire } => {
                    let label = format!("IXFR of {} from {}", self.zone, p.addr);
                    let old = self.current.as_ref().map(|c| c.zone.clone());
                    let old = old.ok_or_else(|| anyhow!("{label}: diffs without a copy"))?;
                    let t = Instant::now();
                    let changes: Vec<_> = diffs.iter().map(Diff::change).collect();
                    match old.apply(&changes, &label) {
                        Ok((zone, warnings)) => {
                            log::debug!(
                                "zone {}: IXFR of {} diffs fetched in {fetched_s:.3} s, applied in place in {:.3} s",
                                self.zone,
                                diffs.len(),
                                t.elapsed().as_secs_f64()
                            );
                            return self.install_diffs(clock, zone, diffs, warnings, expire);
                        }
                        Err(e) => {
                            let why = format!("{label}: the diffs do not apply to our copy: {e}");
                            match p.axfr(&self.zone) {
                                Ok((records, expire)) => {
                                    (records, Method::AxfrAfterIxfr(why), expire)
                                }
                                Err(e) => {
                                    failures.push(format!("{why}; then {e}"));
                                    continue;
                                }
                            }
                        }
                    }
                }
                Fetched::Whole {
                    records,
                    method,
                    expire,
                } => (records, method, expire),
            };
            let label = format!("{method:?} of {} from {}", self.zone, p.addr);
            let src = ZoneSource {
                name: &label,
                locations: None,
            };
            let t = Instant::now();
            let n = records.len();
            match Zone::build(self.zone.clone(), records, &src) {
                Ok((zone, warnings)) => {
                    log::debug!(
                        "zone {}: {method:?} of {n} records fetched in {fetched_s:.3} s, built in {:.3} s",
                        self.zone,
                        t.elapsed().as_secs_f64()
                    );
                    return self.install_whole(clock, zone, method, warnings, expire);
                }
                Err(e) => failures.push(format!("{label}: the zone is not servable: {e}")),
            }
        }
        self.timers.failed(clock.now());
        self.store.save_timers(self.timers.state())?;
        Ok(Event::Failed(failures))
    }

    /// Serves a version made from IXFR diffs, once the diffs are on disk.
    fn install_diffs(
        &mut self,
        clock: &dyn Clock,
        zone: Zone,
        diffs: Vec<Diff>,
        mut warnings: Vec<String>,
        expire: Option<u32>,
    ) -> Result<Event> {
        let t = Instant::now();
        let n = diffs.len();
        self.finish_snapshot()?;
        let mut kept = false;
        if let Some(j) = self.journal.as_mut() {
            kept = true;
            for d in diffs {
                warnings.extend(j.append(d)?);
            }
        }
        let journal_s = t.elapsed().as_secs_f64();
        let method = Method::Ixfr { diffs: n };
        let next = Current::of(Arc::new(zone));
        if kept && self.replayable_to(next.soa.serial) {
            self.snapshots.since += n;
        } else {
            // Not durable by the journal: a snapshot, before it is served.
            self.store.save_zone(&next.zone)?;
            self.snapshots.serial = Some(next.soa.serial);
            self.snapshots.since = 0;
        }
        self.current = Some(next);
        let serial = self.serial().expect("just set");
        let soa = self.current.as_ref().expect("just set").soa.clone();
        self.timers.succeeded(clock.now(), &soa, expire);
        self.store.save_timers(self.timers.state())?;
        if self.snapshots.since >= self.snapshots.every {
            self.start_snapshot()?;
        }
        log::debug!(
            "zone {}: serial {serial} durable in {:.3} s (journal {journal_s:.3} s)",
            self.zone,
            t.elapsed().as_secs_f64()
        );
        Ok(Event::Updated {
            serial,
            method,
            warnings,
        })
    }

    /// Serves a whole version (AXFR), once written as a snapshot. The journal gets its diff
    /// from the version before, made by comparing the two.
    fn install_whole(
        &mut self,
        clock: &dyn Clock,
        zone: Zone,
        method: Method,
        mut warnings: Vec<String>,
        expire: Option<u32>,
    ) -> Result<Event> {
        let t = Instant::now();
        self.finish_snapshot()?;
        self.store.save_zone(&zone)?;
        let stored_s = t.elapsed().as_secs_f64();
        let zone = Arc::new(zone);
        let old = self.current.as_ref().map(|c| c.zone.clone());
        if let (Some(j), Some(old)) = (self.journal.as_mut(), old) {
            let (removed, added) = zone.changes_from(&old);
            let d = Diff {
                from: Current::of(old).soa_record,
                to: zone.soa().records(zone.apex()).next().expect("one SOA"),
                removed,
                added,
            };
            let change = j.record_diff(d);
            match change {
                Ok(note) => warnings.extend(note),
                Err(e) => {
                    j.clear();
                    warnings.push(format!("{e:#}; the journal is cleared"));
                }
            }
        } else if let Some(j) = self.journal.as_mut() {
            j.clear();
        }
        self.current = Some(Current::of(zone));
        let serial = self.serial().expect("just set");
        self.snapshots.serial = Some(serial);
        self.snapshots.since = 0;
        let soa = self.current.as_ref().expect("just set").soa.clone();
        self.timers.succeeded(clock.now(), &soa, expire);
        self.store.save_timers(self.timers.state())?;
        log::debug!(
            "zone {}: serial {serial} stored in {stored_s:.3} s, journal in {:.3} s",
            self.zone,
            t.elapsed().as_secs_f64() - stored_s
        );
        Ok(Event::Updated {
            serial,
            method,
            warnings,
        })
    }
}

#[cfg(test)]
#[path = "secondary_tests.rs"]
mod tests;
