//! One secondary zone: its primaries, the version it serves, its timers and its store, kept
//! consistent. A refresh asks the primaries in turn; a new version is checked (the zone builds),
//! written to disk, and only then becomes the one served, with the timers stored after it. A
//! failed refresh changes nothing but the timers (the next retry). At start the newest good
//! version on disk and the stored timers are restored, problems reported.
//!
//! With a journal (`keep_journal`), every new version's diff from the one before is kept, and
//! `offer` gives what downstream secondaries may transfer: the version, the diffs leading to
//! it and the time left before it expires.
//!
//! Refreshes block on the network (bounded by each primary's timeouts): a server runs them off
//! its answering threads and swaps `serving()` into its catalog when they report `Updated`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::acl::Acl;
use super::client::{Method, Primary, Refresh};
use super::ixfr::Diff;
use super::journal::{Journal, JournalLimits};
use super::outbound::{Offer, Served};
use super::soa::Soa;
use super::store::Store;
use super::timers::{Clock, ExpirePolicy, Timers};
use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::zone::{Zone, ZoneSource};

/// The version being served.
#[derive(Debug)]
struct Current {
    records: Arc<[Record]>,
    zone: Arc<Zone>,
    soa: Soa,
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

/// A secondary zone.
#[derive(Debug)]
pub struct Secondary {
    pub zone: Name,
    pub primaries: Vec<Primary>,
    store: Store,
    timers: Timers,
    current: Option<Current>,
    journal: Option<Journal>,
}

fn soa_of(zone: &Zone) -> Soa {
    Soa::from_rdata(&zone.soa().rdatas[0]).expect("zone checks guarantee an SOA")
}

impl Secondary {
    /// Opens the zone's store in `dir`: the newest good version and the timers are restored
    /// (without stored timers, a refresh is due at once). Returns the problems met on disk.
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
        let current = loaded.version.map(|v| Current {
            soa: soa_of(&v.zone),
            records: v.records.into(),
            zone: Arc::new(v.zone),
        });
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
                journal: None,
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
    /// to downstreams. A journal that does not end at the version held is cleared. Returns
    /// the problems met on disk.
    pub fn keep_journal(&mut self, limits: JournalLimits) -> Result<Vec<String>> {
        let (mut j, mut problems) =
            Journal::open(&self.store.dir.join("journal"), &self.zone, limits)?;
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
        Ok(problems)
    }

    /// The journal's diffs from serial `from` to the version held, when it has them.
    pub fn chain_from(&self, from: u32) -> Option<Vec<Arc<Diff>>> {
        self.journal.as_ref()?.chain_from(from)
    }

    /// Records the diff to the new version `records` in the journal; what went wrong is a
    /// warning (the journal is then cleared: transfers fall back to AXFR, never to a wrong
    /// diff).
    fn journal_change(&mut self, records: &[Record]) -> Option<String> {
        let j = self.journal.as_mut()?;
        let Some(old) = self.current.as_ref() else {
            j.clear();
            return None;
        };
        match j.record_versions(&old.records, records) {
            Ok(note) => note,
            Err(e) => {
                j.clear();
                Some(format!("{e:#}; the journal is cleared"))
            }
        }
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
        let served = Served::new(self.zone.clone(), c.records.clone(), history).ok()?;
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
        for p in &self.primaries {
            let current = self.current.as_ref().map(|c| &c.records[..]);
            let outcome = p.refresh(&self.zone, current).map_err(|e| e.to_string());
            let outcome = outcome.and_then(|r| match r {
                Refresh::UpToDate { serial, expire } => Ok((None, serial, expire)),
                Refresh::Updated {
                    records,
                    serial,
                    method,
                    expire,
                } => {
                    let label = format!("{method:?} of {} from {}", self.zone, p.addr);
                    let src = ZoneSource {
                        name: &label,
                        locations: None,
                    };
                    match Zone::build(self.zone.clone(), records.clone(), &src) {
                        Ok((zone, warnings)) => {
                            Ok((Some((records, zone, method, warnings)), serial, expire))
                        }
                        Err(e) => Err(format!("{label}: the zone is not servable: {e}")),
                    }
                }
            });
            match outcome {
                Ok((None, serial, expire)) => {
                    let Some(soa) = self.current.as_ref().map(|c| c.soa.clone()) else {
                        failures.push(format!("{}: up to date without a copy", p.addr));
                        continue;
                    };
                    self.timers.succeeded(clock.now(), &soa, expire);
                    self.store.save_timers(self.timers.state())?;
                    return Ok(Event::UpToDate { serial });
                }
                Ok((Some((records, zone, method, mut warnings)), serial, expire)) => {
                    // On disk first; served only once stored.
                    self.store.save_version(&records)?;
                    warnings.extend(self.journal_change(&records));
                    let soa = soa_of(&zone);
                    self.timers.succeeded(clock.now(), &soa, expire);
                    self.current = Some(Current {
                        records: records.into(),
                        zone: Arc::new(zone),
                        soa,
                    });
                    self.store.save_timers(self.timers.state())?;
                    return Ok(Event::Updated {
                        serial,
                        method,
                        warnings,
                    });
                }
                Err(e) => failures.push(e),
            }
        }
        self.timers.failed(clock.now());
        self.store.save_timers(self.timers.state())?;
        Ok(Event::Failed(failures))
    }
}
