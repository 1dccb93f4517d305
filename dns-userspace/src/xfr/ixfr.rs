//! Reading an IXFR response (RFC 1995 §4) and applying its diffs.
//!
//! The response opens with the primary's current SOA. Then either nothing (a single SOA: we are
//! up to date, or — when it is newer — the primary has no diff for us), or an AXFR-style
//! listing of the zone (second record not an SOA), or diff sequences: the old SOA, the records
//! removed, the new SOA, the records added, and so on, each starting from the serial the last
//! ended at, the first from ours, closed by the current SOA again.

use std::collections::BTreeMap;

use super::axfr::{is_apex_soa, AxfrReader, Budget, Limits};
use super::error::Kind;
use super::soa::{serial_newer, Soa};
use crate::wire::name::Name;
use crate::wire::record::{rtype, Record};

/// One diff sequence: from one version of the zone to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// The SOA of the version the diff starts from.
    pub from: Record,
    /// The SOA of the version it leads to.
    pub to: Record,
    /// Records removed and added, SOAs excluded.
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl Diff {
    /// The diff as a change to a zone (`Zone::apply`): the old SOA and the records removed,
    /// the new SOA and the records added.
    pub fn change(&self) -> crate::zone::Change<'_> {
        crate::zone::Change {
            removed: std::iter::once(&self.from).chain(&self.removed).collect(),
            added: std::iter::once(&self.to).chain(&self.added).collect(),
        }
    }
}

/// What an IXFR response said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ixfr {
    /// A single SOA, not newer than ours.
    UpToDate(Record),
    /// Diff sequences from our serial to the primary's.
    Diffs(Vec<Diff>),
    /// The whole zone (an AXFR-style reply), its SOA first.
    Full(Vec<Record>),
}

#[derive(Debug)]
enum State {
    Start,
    /// Only the opening SOA so far.
    Opened,
    Full(AxfrReader),
    /// Inside the removals (`adding` false) or additions of `cur`.
    Diffs {
        done: Vec<Diff>,
        cur: Diff,
        adding: bool,
    },
    Done(Ixfr),
}

/// The records of an IXFR response as they arrive.
#[derive(Debug)]
pub struct IxfrReader {
    apex: Name,
    ours: u32,
    budget: Budget,
    /// The opening SOA: the version the response leads to.
    newest: Option<Record>,
    state: State,
}

/// The serial of an SOA record (0 for anything else).
pub(crate) fn serial(r: &Record) -> u32 {
    Soa::from_record(r).map_or(0, |s| s.serial)
}

impl IxfrReader {
    /// A reader for the response to an IXFR from serial `ours`.
    pub fn new(apex: Name, ours: u32, limits: Limits) -> IxfrReader {
        IxfrReader {
            apex,
            ours,
            budget: Budget::new(limits),
            newest: None,
            state: State::Start,
        }
    }

    /// Takes the answer records of the next message; returns `true` when the response is
    /// complete (the closing SOA was its last record, or the message held a single SOA).
    pub fn push(&mut self, answers: Vec<Record>) -> Result<bool, Kind> {
        let n = answers.len();
        for (i, r) in answers.into_iter().enumerate() {
            self.record(r)?;
            if self.complete() && i + 1 != n {
                return Err(Kind::Protocol(format!(
                    "{} records after the closing SOA",
                    n - i - 1
                )));
            }
        }
        if matches!(self.state, State::Opened) {
            let newest = self.newest.clone().expect("opened");
            let theirs = serial(&newest);
            if serial_newer(theirs, self.ours) {
                return Err(Kind::NoDiff {
                    ours: self.ours,
                    theirs,
                });
            }
            self.state = State::Done(Ixfr::UpToDate(newest));
        }
        Ok(self.complete())
    }

    fn complete(&self) -> bool {
        match &self.state {
            State::Done(_) => true,
            State::Full(reader) => reader.is_done(),
            _ => false,
        }
    }

    fn record(&mut self, r: Record) -> Result<(), Kind> {
        if let State::Full(reader) = &mut self.state {
            reader.record(r)?;
            return Ok(());
        }
        self.budget.take(&r)?;
        let soa = is_apex_soa(&r, &self.apex);
        if soa && Soa::from_record(&r).is_none() {
            return Err(Kind::Protocol(format!(
                "malformed SOA RDATA at {}",
                r.owner
            )));
        }
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start if soa => {
                self.newest = Some(r);
                self.state = State::Opened;
            }
            State::Start => {
                return Err(Kind::Protocol(format!(
                    "the first record is {} {}, not the SOA of {}",
                    r.owner,
                    rtype::to_string(r.rtype),
                    self.apex
                )))
            }
            State::Opened if soa => {
                self.state = self.begin(Vec::new(), r, self.ours)?;
            }
            State::Opened => {
                let budget = std::mem::replace(&mut self.budget, Budget::new(Limits::default()));
                let newest = self.newest.clone().expect("opened");
                let mut reader = AxfrReader::after_soa(self.apex.clone(), budget, newest);
                reader.record(r)?;
                self.state = State::Full(reader);
            }
            State::Diffs {
                done,
                mut cur,
                adding: false,
            } => {
                if soa {
                    cur.to = r;
                    self.state = State::Diffs {
                        done,
                        cur,
                        adding: true,
                    };
                } else {
                    cur.removed.push(r);
                    self.state = State::Diffs {
                        done,
                        cur,
                        adding: false,
                    };
                }
            }
            State::Diffs {
                mut done,
                mut cur,
                adding: true,
            } => {
                if !soa {
                    cur.added.push(r);
                    self.state = State::Diffs {
                        done,
                        cur,
                        adding: true,
                    };
                    return Ok(());
                }
                let newest = self.newest.as_ref().expect("opened");
                let reached = serial(&cur.to);
                done.push(cur);
                if reached == serial(newest) {
                    if r.rdata != newest.rdata {
                        return Err(Kind::Protocol(
                            "the closing SOA differs from the opening SOA".into(),
                        ));
                    }
                    self.state = State::Done(Ixfr::Diffs(done));
                } else {
                    self.state = self.begin(done, r, reached)?;
                }
            }
            State::Done(_) => return Err(Kind::Protocol("records after the closing SOA".into())),
            State::Full(_) => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Starts a diff at the SOA `from`, which must carry serial `expected`.
    fn begin(&self, done: Vec<Diff>, from: Record, expected: u32) -> Result<State, Kind> {
        let s = serial(&from);
        if s != expected {
            return Err(Kind::Diff(format!(
                "diff {} starts at serial {s}, expected {expected}",
                done.len() + 1
            )));
        }
        Ok(State::Diffs {
            done,
            cur: Diff {
                to: from.clone(),
                from,
                removed: Vec::new(),
                added: Vec::new(),
            },
            adding: false,
        })
    }

    /// The response, once complete.
    pub fn finish(self) -> Result<Ixfr, Kind> {
        match self.state {
            State::Done(x) => Ok(x),
            State::Full(reader) => Ok(Ixfr::Full(reader.finish()?)),
            State::Start => Err(Kind::Protocol("the response holds no records".into())),
            State::Opened => unreachable!("settled at the end of each message"),
            State::Diffs { done, .. } => Err(Kind::Protocol(format!(
                "the response ended inside diff {} without the closing SOA",
                done.len() + 1
            ))),
        }
    }
}

/// Records of one owner name: (type, RDATA) and whether the zone had it.
type ByOwner = BTreeMap<Name, Vec<(u16, Vec<u8>, bool)>>;

fn find(map: &mut ByOwner, r: &Record) -> Option<usize> {
    map.get(&r.owner)?
        .iter()
        .position(|(t, rd, _)| *t == r.rtype && *rd == r.rdata)
}

/// Applies `diffs` to `records` (a zone whose SOA is the first diff's `from`). Every removed
/// record must be there; an added record that is there already replaces it (its TTL may
/// change). The result has the new SOA first, the other records in their old order, the
/// additions in canonical order after them.
pub fn apply(records: &[Record], diffs: &[Diff]) -> Result<Vec<Record>, Kind> {
    let mut removed = ByOwner::new();
    let mut added: BTreeMap<Name, Vec<Record>> = BTreeMap::new();
    for (i, d) in diffs.iter().enumerate() {
        let what = |r: &Record| {
            format!(
                "diff {} ({} to {}) removes {} {} twice",
                i + 1,
                serial(&d.from),
                serial(&d.to),
                r.owner,
                rtype::to_string(r.rtype)
            )
        };
        for r in std::iter::once(&d.from).chain(&d.removed) {
            let pending = added.get_mut(&r.owner).and_then(|v| {
                let at = v
                    .iter()
                    .position(|a| a.rtype == r.rtype && a.rdata == r.rdata)?;
                Some(v.remove(at))
            });
            if pending.is_none() {
                if find(&mut removed, r).is_some() {
                    return Err(Kind::Diff(what(r)));
                }
                removed
                    .entry(r.owner.clone())
                    .or_default()
                    .push((r.rtype, r.rdata.clone(), false));
            }
        }
        for r in std::iter::once(&d.to).chain(&d.added) {
            let v = added.entry(r.owner.clone()).or_default();
            v.retain(|a| a.rtype != r.rtype || a.rdata != r.rdata);
            v.push(r.clone());
        }
    }
    let mut out = Vec::with_capacity(records.len() + added.values().map(Vec::len).sum::<usize>());
    for r in records {
        if let Some(i) = find(&mut removed, r) {
            let hit = &mut removed.get_mut(&r.owner).expect("found")[i];
            if !hit.2 {
                hit.2 = true;
                continue;
            }
        }
        let replaced = added
            .get(&r.owner)
            .is_some_and(|v| v.iter().any(|a| a.rtype == r.rtype && a.rdata == r.rdata));
        if !replaced {
            out.push(r.clone());
        }
    }
    if let Some((owner, (t, _, _))) = removed
        .iter()
        .find_map(|(o, v)| v.iter().find(|x| !x.2).map(|x| (o, x)))
    {
        return Err(Kind::Diff(format!(
            "the diffs remove {owner} {} which our copy of the zone does not have",
            rtype::to_string(*t)
        )));
    }
    let mut adds: Vec<Record> = added.into_values().flatten().collect();
    if let Some(i) = adds.iter().position(|r| r.rtype == rtype::SOA) {
        out.insert(0, adds.remove(i));
    }
    out.extend(adds);
    Ok(out)
}

#[cfg(test)]
#[path = "ixfr_tests.rs"]
mod tests;
