//! A zone back as records: what a snapshot on disk and an AXFR to a downstream are made of.
//! `Zone::build` of `Zone::records` gives the same zone again (RRsets with one TTL each: an
//! RRset whose records had differing TTLs comes back with the one it was served with).

use super::{RRset, Zone};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype, Record};

impl RRset {
    /// The RRset's records (its RRSIGs aside), owned by `owner`.
    pub fn records<'a>(&'a self, owner: &'a Name) -> impl Iterator<Item = Record> + 'a {
        self.rdatas.iter().map(move |rd| Record {
            owner: owner.clone(),
            rtype: self.rtype,
            class: class::IN,
            ttl: self.ttl,
            rdata: rd.clone(),
        })
    }

    /// The RRSIG records covering the RRset, owned by `owner`.
    pub fn sig_records<'a>(&'a self, owner: &'a Name) -> impl Iterator<Item = Record> + 'a {
        self.sigs.iter().map(move |rd| Record {
            owner: owner.clone(),
            rtype: rtype::RRSIG,
            class: class::IN,
            ttl: self.sig_ttl,
            rdata: rd.clone(),
        })
    }
}

/// A record of an owner: type, TTL, RDATA.
#[derive(PartialEq, Eq)]
struct Rr<'a>(u16, u32, &'a [u8]);

/// Records by owner.
type ByOwner<'a> = rustc_hash::FxHashMap<&'a Name, Vec<Rr<'a>>>;

impl Rr<'_> {
    fn record(&self, owner: &Name) -> Record {
        Record {
            owner: owner.clone(),
            rtype: self.0,
            class: class::IN,
            ttl: self.1,
            rdata: self.2.to_vec(),
        }
    }
}

impl Zone {
    /// Every record of the zone, the apex SOA first; then the nodes' RRsets with their RRSIGs,
    /// the NSEC3 chain's, and the records `build` set aside. Records `build` merged (equal
    /// records given twice) come once.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.nodes.len() * 2 + self.unattached.len());
        self.visit_records(|owner, rtype, ttl, rdata| {
            out.push(Record {
                owner: owner.clone(),
                rtype,
                class: class::IN,
                ttl,
                rdata: rdata.to_vec(),
            })
        });
        out
    }

    /// Calls `f` with (owner, type, TTL, RDATA) of every record, in the order of `records`,
    /// without making records (for writing the zone out).
    pub fn visit_records(&self, mut f: impl FnMut(&Name, u16, u32, &[u8])) {
        let apex = &self.apex;
        let soa = self.soa();
        f(apex, rtype::SOA, soa.ttl, &soa.rdatas[0]);
        let mut set = |owner: &Name, s: &RRset, skip_data: bool| {
            if !skip_data {
                for rd in &s.rdatas {
                    f(owner, s.rtype, s.ttl, rd);
                }
            }
            for rd in &s.sigs {
                f(owner, rtype::RRSIG, s.sig_ttl, rd);
            }
        };
        for (owner, node) in self.nodes.iter() {
            for s in &node.rrsets {
                set(owner, s, s.rtype == rtype::SOA && owner == apex);
            }
        }
        for (owner, s) in self.nsec3.iter().flat_map(|c| c.iter()) {
            set(owner, s, false);
        }
        for r in self.unattached.iter() {
            f(&r.owner, r.rtype, r.ttl, &r.rdata);
        }
    }

    /// The records of `old` that this zone lacks, and the records of this zone that `old`
    /// lacks (the apex SOAs aside), compared owner by owner without making either whole record
    /// set: a diff between two versions. A TTL changed is a record removed and added.
    pub fn changes_from(&self, old: &Zone) -> (Vec<Record>, Vec<Record>) {
        let (mine, theirs) = (self.by_owner(), old.by_owner());
        // The records of `a` that `b` lacks.
        let only_in = |a: &ByOwner<'_>, b: &ByOwner<'_>| -> Vec<Record> {
            let mut out = Vec::new();
            for (owner, recs) in a {
                let other = b.get(owner).map_or(&[][..], Vec::as_slice);
                out.extend(
                    recs.iter()
                        .filter(|r| !other.contains(r))
                        .map(|r| r.record(owner)),
                );
            }
            out
        };
        (only_in(&theirs, &mine), only_in(&mine, &theirs))
    }

    /// Every record but the apex SOA, by owner, borrowed.
    fn by_owner(&self) -> ByOwner<'_> {
        let mut out = ByOwner::default();
        let apex = &self.apex;
        let node_sets = self
            .nodes
            .iter()
            .flat_map(|(n, node)| node.rrsets.iter().map(move |s| (n, s)));
        let chain = self.nsec3.iter().flat_map(|c| c.iter());
        for (owner, s) in node_sets.chain(chain) {
            let v = out.entry(owner).or_default();
            if !(s.rtype == rtype::SOA && owner == apex) {
                v.extend(s.rdatas.iter().map(|rd| Rr(s.rtype, s.ttl, rd)));
            }
            v.extend(s.sigs.iter().map(|rd| Rr(rtype::RRSIG, s.sig_ttl, rd)));
        }
        for r in self.unattached.iter() {
            out.entry(&r.owner)
                .or_default()
                .push(Rr(r.rtype, r.ttl, &r.rdata));
        }
        out
    }

    /// The records `build` keeps but does not serve (RRSIGs covering nothing, NSEC3 records of
    /// other parameters).
    pub fn unattached(&self) -> &[Record] {
        &self.unattached
    }
}
