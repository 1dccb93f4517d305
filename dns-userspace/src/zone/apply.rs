//! Changing a zone in place: `Zone::apply` makes the next version of a zone from a change
//! (records removed, then records added, in steps: the diff sequences of an IXFR, RFC 1995, or
//! an operator's edit) without rebuilding it. The new version starts as a clone of the old one
//! (its persistent maps shared), and only the nodes, NSEC owners and NSEC3 entries the change
//! touches are copied and patched; the old version is never modified, so whoever serves it
//! goes on seeing it whole.
//!
//! The checks `Zone::build` makes run for what the change touches: every record removed must be
//! there and every record added must not (the type, owner and RDATA compared, not the TTL: an
//! IXFR changes a TTL by removing the record and adding it again); added records are zone data,
//! in the zone, with RDATA well formed for their type; at the touched names, no CNAME beside
//! other data nor two CNAMEs, no SOA but at the apex; at the apex one SOA and NS records. An
//! error changes nothing (the old version is still whole) and says which step it was in.
//! Warnings (occluded data, missing glue, differing TTLs, RRSIGs covering nothing) are given for
//! the touched names and the delegations above them.
//!
//! Empty non-terminals come and go with the names below them (each node counts its children).
//! A change to the NSEC3PARAM (a new salt or hash, an NSEC3 chain added or removed) makes the
//! whole zone anew from its records: every NSEC3 record depends on it.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::build::{node_error, not_zone_data};
use super::nsec3::owner_hash;
use super::{Node, RRset, Zone, ZoneError, ZoneSource};
use crate::wire::name::Name;
use crate::wire::rdata;
use crate::wire::record::{read_name, rtype, Record};

/// One step of a change to a zone: records removed, then records added. For an IXFR diff
/// sequence, the old SOA is among the removed and the new one among the added.
#[derive(Clone, Debug, Default)]
pub struct Change<'a> {
    pub removed: Vec<&'a Record>,
    pub added: Vec<&'a Record>,
}

/// A zone being changed.
struct Patch {
    zone: Zone,
    /// Owner names whose data changed (and empty non-terminals made or removed).
    touched: FxHashSet<Name>,
    warnings: Vec<String>,
}

fn describe(r: &Record) -> String {
    format!("{} {}", r.owner, rtype::to_string(r.rtype))
}

impl Zone {
    /// The zone with `changes` applied, in order, and its warnings; or the first error, and
    /// nothing changed. `source` names the change in messages and becomes the new zone's.
    pub fn apply(
        &self,
        changes: &[Change<'_>],
        source: &str,
    ) -> Result<(Zone, Vec<String>), ZoneError> {
        let apex = &self.apex;
        let reparameterised = changes
            .iter()
            .flat_map(|c| c.removed.iter().chain(&c.added))
            .any(|r| r.rtype == rtype::NSEC3PARAM && r.owner == *apex);
        if reparameterised {
            return self.rebuild(changes, source);
        }
        let mut zone = self.clone();
        zone.source = source.to_owned();
        let mut p = Patch {
            zone,
            touched: FxHashSet::default(),
            warnings: Vec::new(),
        };
        let err = |i: usize, message: String| ZoneError {
            location: format!("{source}, step {}", i + 1),
            message,
        };
        for (i, c) in changes.iter().enumerate() {
            for r in &c.removed {
                p.remove(r).map_err(|m| err(i, m))?;
            }
            for r in &c.added {
                p.add(r).map_err(|m| err(i, m))?;
            }
        }
        p.check(source)?;
        Ok((p.zone, p.warnings))
    }

    /// `apply` by building the whole zone again from its records with the change made.
    fn rebuild(
        &self,
        changes: &[Change<'_>],
        source: &str,
    ) -> Result<(Zone, Vec<String>), ZoneError> {
        type Key = (Name, u16, Vec<u8>);
        let key = |r: &Record| -> Key { (r.owner.clone(), r.rtype, r.rdata.clone()) };
        let mut records: Vec<Option<Record>> = self.records().into_iter().map(Some).collect();
        let mut index: rustc_hash::FxHashMap<Key, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (key(r.as_ref().expect("all there")), i))
            .collect();
        for (i, c) in changes.iter().enumerate() {
            let err = |message: String| ZoneError {
                location: format!("{source}, step {}", i + 1),
                message,
            };
            for r in &c.removed {
                let at = index.remove(&key(r)).ok_or_else(|| {
                    err(format!(
                        "removes {}, which the zone does not have",
                        describe(r)
                    ))
                })?;
                records[at] = None;
            }
            for r in &c.added {
                if index.contains_key(&key(r)) {
                    return Err(err(format!(
                        "adds {}, which the zone has already",
                        describe(r)
                    )));
                }
                index.insert(key(r), records.len());
                records.push(Some((*r).clone()));
            }
        }
        let src = ZoneSource {
            name: source,
            locations: None,
        };
        Zone::build(
            self.apex.clone(),
            records.into_iter().flatten().collect(),
            &src,
        )
    }
}

/// Takes the unattached RRSIGs at `owner` covering `covered`.
fn take_sigs(unattached: &mut Arc<Vec<Record>>, owner: &Name, covered: u16) -> Vec<Record> {
    let hit = |r: &Record| r.owner == *owner && r.rrsig_covered() == Some(covered);
    if !unattached.iter().any(hit) {
        return Vec::new();
    }
    let (taken, kept) = Arc::make_mut(unattached).drain(..).partition(hit);
    *Arc::make_mut(unattached) = kept;
    taken
}

/// Removes `r` from the unattached records; whether it was there.
fn take_unattached(unattached: &mut Arc<Vec<Record>>, r: &Record) -> bool {
    let same = |x: &Record| x.owner == r.owner && x.rtype == r.rtype && x.rdata == r.rdata;
    match unattached.iter().position(same) {
        Some(i) => {
            Arc::make_mut(unattached).remove(i);
            true
        }
        None => false,
    }
}

/// A new RRset of the record `r`, with the unattached RRSIGs that cover it.
fn new_set(r: &Record, unattached: &mut Arc<Vec<Record>>) -> RRset {
    let mut set = RRset {
        rtype: r.rtype,
        ttl: r.ttl,
        rdatas: vec![r.rdata.clone()],
        sigs: Vec::new(),
        sig_ttl: 0,
        first: 0,
    };
    for s in take_sigs(unattached, &r.owner, r.rtype) {
        set.sig_ttl = if set.sigs.is_empty() {
            s.ttl
        } else {
            set.sig_ttl.min(s.ttl)
        };
        set.sigs.push(s.rdata);
    }
    set
}

/// Adds `r` to its RRset `set`.
fn add_rdata(set: &mut RRset, r: &Record, warnings: &mut Vec<String>) -> Result<(), String> {
    if set.rdatas.contains(&r.rdata) {
        return Err(format!("adds {}, which the zone has already", describe(r)));
    }
    if set.ttl != r.ttl {
        let keep = set.ttl.min(r.ttl);
        warnings.push(format!(
            "{} has differing TTLs ({} and {}); using {keep}",
            describe(r),
            set.ttl,
            r.ttl
        ));
        set.ttl = keep;
    }
    set.rdatas.push(r.rdata.clone());
    Ok(())
}

impl Patch {
    /// Whether an NSEC3 record belongs in the zone's NSEC3 chain (rather than among the nodes,
    /// or the unattached records).
    fn in_chain(&self, r: &Record) -> bool {
        self.zone
            .nsec3
            .as_ref()
            .is_some_and(|c| c.same_params(&r.rdata) && owner_hash(&r.owner).is_ok())
    }

    /// The RRset of type `t` at `owner` (NSEC3: in the chain, when the zone has one).
    fn set_mut(&mut self, owner: &Name, t: u16) -> Option<&mut RRset> {
        let z = &mut self.zone;
        match &mut z.nsec3 {
            Some(chain) if t == rtype::NSEC3 => chain.entry_mut(owner),
            _ => z
                .nodes
                .get_mut(owner)?
                .rrsets
                .iter_mut()
                .find(|s| s.rtype == t),
        }
    }

    /// Unattached RRSIGs, with the warning `build` gives for them.
    fn orphan_sigs(&mut self, owner: &Name, set: &RRset) {
        if set.sigs.is_empty() {
            return;
        }
        self.warnings.push(format!(
            "RRSIG at {owner} covers {}, which does not exist there; ignored",
            rtype::to_string(set.rtype)
        ));
        Arc::make_mut(&mut self.zone.unattached).extend(set.sig_records(owner));
    }

    fn remove(&mut self, r: &Record) -> Result<(), String> {
        let absent = || format!("removes {}, which the zone does not have", describe(r));
        if !r.owner.is_subdomain_of(&self.zone.apex) {
            return Err(absent());
        }
        self.touched.insert(r.owner.clone());
        if r.rtype == rtype::RRSIG {
            let covered = r.rrsig_covered().ok_or_else(absent)?;
            if let Some(set) = self.set_mut(&r.owner, covered) {
                if let Some(i) = set.sigs.iter().position(|s| *s == r.rdata) {
                    set.sigs.remove(i);
                    if set.sigs.is_empty() {
                        set.sig_ttl = 0;
                    }
                    return Ok(());
                }
            }
            return take_unattached(&mut self.zone.unattached, r)
                .then_some(())
                .ok_or_else(absent);
        }
        if r.rtype == rtype::NSEC3 && self.zone.nsec3.is_some() {
            if !self.in_chain(r) {
                return take_unattached(&mut self.zone.unattached, r)
                    .then_some(())
                    .ok_or_else(absent);
            }
            let chain = self.zone.nsec3.as_mut().expect("checked");
            let set = chain.entry_mut(&r.owner).ok_or_else(absent)?;
            let i = set.rdatas.iter().position(|x| *x == r.rdata);
            set.rdatas.remove(i.ok_or_else(absent)?);
            if set.rdatas.is_empty() {
                let set = chain.remove(&r.owner).expect("there");
                self.orphan_sigs(&r.owner, &set);
            }
            return Ok(());
        }
        let node = self.zone.nodes.get_mut(&r.owner).ok_or_else(absent)?;
        let si = node.rrsets.iter().position(|s| s.rtype == r.rtype);
        let set = &mut node.rrsets[si.ok_or_else(absent)?];
        let i = set.rdatas.iter().position(|x| *x == r.rdata);
        set.rdatas.remove(i.ok_or_else(absent)?);
        if set.rdatas.is_empty() {
            let set = node.rrsets.remove(si.expect("found"));
            self.orphan_sigs(&r.owner, &set);
            self.prune(&r.owner);
        }
        Ok(())
    }

    /// Removes the node at `name` when it holds nothing and has no children, and so on up.
    fn prune(&mut self, name: &Name) {
        let z = &mut self.zone;
        let mut name = name.clone();
        while name != z.apex {
            match z.nodes.get(&name) {
                Some(n) if n.rrsets.is_empty() && n.children == 0 => {}
                _ => return,
            }
            z.nodes.remove(&name);
            let parent = name.parent().expect("below the apex");
            if let Some(p) = z.nodes.get_mut(&parent) {
                p.children -= 1;
            }
            self.touched.insert(name);
            name = parent;
        }
    }

    /// Makes a node at `owner` (below the apex, not there yet), and the empty non-terminals
    /// between it and the nearest node above.
    fn create(&mut self, owner: &Name) {
        let z = &mut self.zone;
        z.nodes.insert(owner.clone(), Node::default());
        let mut name = owner.clone();
        loop {
            let parent = name.parent().expect("below the apex");
            if let Some(p) = z.nodes.get_mut(&parent) {
                p.children += 1;
                return;
            }
            z.nodes.insert(
                parent.clone(),
                Node {
                    rrsets: Vec::new(),
                    children: 1,
                },
            );
            self.touched.insert(parent.clone());
            name = parent;
        }
    }

    fn add(&mut self, r: &Record) -> Result<(), String> {
        let apex = &self.zone.apex;
        if !r.owner.is_subdomain_of(apex) {
            return Err(format!("{} is outside the zone {apex}", r.owner));
        }
        if let Some(why) = not_zone_data(r.rtype) {
            return Err(format!(
                "{} cannot be stored in a zone: {why}",
                rtype::to_string(r.rtype)
            ));
        }
        rdata::check(r.rtype, &r.rdata).map_err(|e| format!("{} {e}", r.owner))?;
        self.touched.insert(r.owner.clone());
        let present = || format!("adds {}, which the zone has already", describe(r));
        if r.rtype == rtype::RRSIG {
            let covered = r.rrsig_covered().ok_or("short RRSIG")?;
            if let Some(set) = self.set_mut(&r.owner, covered) {
                if set.sigs.contains(&r.rdata) {
                    return Err(present());
                }
                set.sig_ttl = if set.sigs.is_empty() {
                    r.ttl
                } else {
                    set.sig_ttl.min(r.ttl)
                };
                set.sigs.push(r.rdata.clone());
                return Ok(());
            }
            return self.add_unattached(r);
        }
        if r.rtype == rtype::NSEC3 && self.zone.nsec3.is_some() {
            if !self.in_chain(r) {
                if let Err(e) = owner_hash(&r.owner) {
                    self.warnings.push(e);
                }
                return self.add_unattached(r);
            }
            let z = &mut self.zone;
            let chain = z.nsec3.as_mut().expect("checked");
            match chain.entry_mut(&r.owner) {
                Some(set) => add_rdata(set, r, &mut self.warnings)?,
                None => {
                    let set = new_set(r, &mut z.unattached);
                    chain.insert(r.owner.clone(), set)?;
                }
            }
            return Ok(());
        }
        if !self.zone.nodes.contains_key(&r.owner) {
            self.create(&r.owner);
        }
        let z = &mut self.zone;
        let node = z.nodes.get_mut(&r.owner).expect("made");
        match node.rrsets.iter_mut().find(|s| s.rtype == r.rtype) {
            Some(set) => add_rdata(set, r, &mut self.warnings)?,
            None => {
                let set = new_set(r, &mut z.unattached);
                let at = node.rrsets.partition_point(|s| s.rtype < r.rtype);
                node.rrsets.insert(at, set);
            }
        }
        Ok(())
    }

    /// Keeps `r` among the records the zone does not serve.
    fn add_unattached(&mut self, r: &Record) -> Result<(), String> {
        let same = |x: &Record| x.owner == r.owner && x.rtype == r.rtype && x.rdata == r.rdata;
        if self.zone.unattached.iter().any(same) {
            return Err(format!("adds {}, which the zone has already", describe(r)));
        }
        if let Some(covered) = r.rrsig_covered() {
            self.warnings.push(format!(
                "RRSIG at {} covers {}, which does not exist there; ignored",
                r.owner,
                rtype::to_string(covered)
            ));
        }
        Arc::make_mut(&mut self.zone.unattached).push(r.clone());
        Ok(())
    }

    /// The checks `build` makes, for the apex and the touched names; brings the NSEC chain
    /// and the negative TTL up to date.
    fn check(&mut self, source: &str) -> Result<(), ZoneError> {
        let z = &mut self.zone;
        let apex = z.apex.clone();
        let whole = |message: String| ZoneError {
            location: source.to_owned(),
            message,
        };
        let apex_node = z.nodes.get(&apex).expect("the apex stays");
        match apex_node.get(rtype::SOA) {
            None => return Err(whole(format!("no SOA record at the zone apex {apex}"))),
            Some(s) if s.rdatas.len() != 1 => {
                return Err(whole(format!(
                    "{} SOA records at the apex; exactly one is allowed",
                    s.rdatas.len()
                )))
            }
            Some(soa) => {
                z.negative_ttl = rdata::soa_timers(&soa.rdatas[0]).map(|t| soa.ttl.min(t[4]));
            }
        }
        if apex_node.get(rtype::NS).is_none() {
            return Err(whole(format!("no NS records at the zone apex {apex}")));
        }
        let mut cuts_to_check: FxHashSet<Name> = FxHashSet::default();
        for name in &self.touched {
            let Some(node) = z.nodes.get(name) else {
                z.nsec_chain.remove(name);
                continue;
            };
            if let Some((_, message)) = node_error(&apex, name, node) {
                return Err(whole(message));
            }
            if node.get(rtype::NSEC).is_some() {
                z.nsec_chain.insert(name.clone());
            } else {
                z.nsec_chain.remove(name);
            }
            if *name != apex && node.get(rtype::NS).is_some() {
                cuts_to_check.insert(name.clone());
            }
            // The delegation above, whose glue or occluded data this may be.
            let cut = name
                .ancestors()
                .skip(1)
                .take_while(|p| p.wire().len() > apex.wire().len())
                .find(|p| z.nodes.get(*p).is_some_and(|n| n.get(rtype::NS).is_some()));
            if let Some(cut) = cut {
                cuts_to_check.insert(cut.to_name());
                if let Some(s) = node
                    .rrsets
                    .iter()
                    .find(|s| !matches!(s.rtype, rtype::A | rtype::AAAA))
                {
                    self.warnings.push(format!(
                        "{source}: {name} {} is below a delegation and is not glue; it is occluded and not served",
                        rtype::to_string(s.rtype)
                    ));
                }
            }
        }
        for cut in &cuts_to_check {
            let Some(ns) = z.nodes.get(cut).and_then(|n| n.get(rtype::NS)) else {
                continue;
            };
            for rd in &ns.rdatas {
                let Some((target, _)) = read_name(rd) else {
                    continue;
                };
                let glue = z
                    .nodes
                    .get(&target)
                    .is_some_and(|n| n.get(rtype::A).is_some() || n.get(rtype::AAAA).is_some());
                if target.is_subdomain_of(cut) && !glue {
                    self.warnings.push(format!(
                        "{source}: delegation {cut} has name server {target} inside it but no glue (A/AAAA)"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
