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

impl Zone {
    /// Every record of the zone, the apex SOA first; then the nodes' RRsets with their RRSIGs,
    /// the NSEC3 chain's, and the records `build` set aside. Records `build` merged (equal
    /// records given twice) come once.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.nodes.len() * 2 + self.unattached.len());
        let apex = &self.apex;
        out.extend(self.soa().records(apex));
        let node_sets = self
            .nodes
            .iter()
            .flat_map(|(n, node)| node.rrsets.iter().map(move |s| (n, s)));
        let chain = self.nsec3.iter().flat_map(|c| c.iter());
        for (owner, set) in node_sets.chain(chain) {
            if !(set.rtype == rtype::SOA && owner == apex) {
                out.extend(set.records(owner));
            }
            out.extend(set.sig_records(owner));
        }
        out.extend(self.unattached.iter().cloned());
        out
    }

    /// The records `build` keeps but does not serve (RRSIGs covering nothing, NSEC3 records of
    /// other parameters).
    pub fn unattached(&self) -> &[Record] {
        &self.unattached
    }
}
