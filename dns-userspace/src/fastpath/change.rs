//! A change to one zone, as the incremental publication takes it: the zone's apex and the
//! owner names of the records removed and added. From an IXFR's diff sequences (what a
//! secondary receives), from removed and added records, or — when neither is at hand — by
//! comparing two versions of the zone (one pass over both).

use std::collections::HashSet;

use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::xfr::ixfr::Diff;
use crate::zone::{Node, RRset, Zone};

/// Whether two RRsets hold the same data (their place in the source aside).
pub fn same_rrset(a: &RRset, b: &RRset) -> bool {
    a.rtype == b.rtype
        && a.ttl == b.ttl
        && a.rdatas == b.rdatas
        && a.sigs == b.sigs
        && a.sig_ttl == b.sig_ttl
}

/// Whether two nodes hold the same RRsets (see `same_rrset`).
pub fn same_node(a: &Node, b: &Node) -> bool {
    a.rrsets.len() == b.rrsets.len()
        && a.rrsets
            .iter()
            .zip(&b.rrsets)
            .all(|(x, y)| same_rrset(x, y))
}

/// Whether two optional RRsets are the same (see `same_rrset`).
pub fn same_opt_rrset(a: Option<&RRset>, b: Option<&RRset>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_rrset(a, b),
        _ => false,
    }
}

/// The names a change to the zone `apex` touches.
#[derive(Clone, Debug)]
pub struct ZoneChange {
    pub apex: Name,
    /// Owners of removed and added records (RRSIGs, NSEC and NSEC3 records included).
    pub names: HashSet<Name>,
}

impl ZoneChange {
    pub fn new(apex: Name) -> ZoneChange {
        ZoneChange {
            apex,
            names: HashSet::new(),
        }
    }

    /// Notes a removed or added record.
    pub fn record(&mut self, r: &Record) {
        self.names.insert(r.owner.clone());
    }

    /// The change made by removing `removed` and adding `added`.
    pub fn from_records<'a>(
        apex: Name,
        removed: impl IntoIterator<Item = &'a Record>,
        added: impl IntoIterator<Item = &'a Record>,
    ) -> ZoneChange {
        let mut c = ZoneChange::new(apex);
        for r in removed.into_iter().chain(added) {
            c.record(r);
        }
        c
    }

    /// The change made by a series of IXFR diff sequences (their SOAs included).
    pub fn from_diffs(apex: Name, diffs: &[Diff]) -> ZoneChange {
        let mut c = ZoneChange::new(apex);
        for d in diffs {
            for r in [&d.from, &d.to]
                .into_iter()
                .chain(&d.removed)
                .chain(&d.added)
            {
                c.record(r);
            }
        }
        c
    }

    /// The names whose nodes differ between two versions of a zone (created, removed or with
    /// other data), and the apex when the NSEC3 chain differs. Looks at every node of both.
    pub fn between(old: &Zone, new: &Zone) -> ZoneChange {
        let mut c = ZoneChange::new(new.apex().clone());
        for (name, node) in new.nodes() {
            if old.node(name).is_none_or(|(_, o)| !same_node(o, node)) {
                c.names.insert(name.clone());
            }
        }
        for (name, _) in old.nodes() {
            if new.node(name).is_none() {
                c.names.insert(name.clone());
            }
        }
        if old.nsec3() != new.nsec3() {
            c.names.insert(new.apex().clone());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::ZoneSource;

    fn parse(text: &str) -> Vec<Record> {
        let origin = Name::parse("t.", None).unwrap();
        crate::zonefile::parse_str(text, &origin, "z")
            .unwrap()
            .records
    }

    fn zone(text: &str) -> Zone {
        let src = ZoneSource {
            name: "z",
            locations: None,
        };
        let origin = Name::parse("t.", None).unwrap();
        Zone::build(origin, parse(text), &src).unwrap().0
    }

    fn names(list: &[&str]) -> HashSet<Name> {
        list.iter().map(|n| Name::parse(n, None).unwrap()).collect()
    }

    const HEAD: &str = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n";

    #[test]
    fn changes_name_the_owners_of_what_differs() {
        let old = zone(&format!("{HEAD}www A 198.18.0.2\ngone TXT x\n"));
        // Same data in another order: nothing differs.
        let same = zone(&format!("gone 60 TXT x\n{HEAD}www A 198.18.0.2\n"));
        assert!(ZoneChange::between(&old, &same).names.is_empty());
        let new = zone(&format!("{HEAD}www A 198.18.0.3\na.b.new A 198.18.0.4\n"));
        let c = ZoneChange::between(&old, &new);
        // The empty non-terminal b.new appears too.
        let expected = ["www.t.", "gone.t.", "a.b.new.t.", "b.new.t.", "new.t."];
        assert_eq!(c.names, names(&expected));
        let removed = parse("$TTL 60\nwww A 198.18.0.2\ngone TXT x\n");
        let added = parse("$TTL 60\nwww A 198.18.0.3\na.b.new A 198.18.0.4\n");
        let c = ZoneChange::from_records(Name::parse("t.", None).unwrap(), &removed, &added);
        assert_eq!(c.names, names(&["www.t.", "gone.t.", "a.b.new.t."]));
        let soa = |s: u32| parse(&format!("$TTL 60\n@ SOA ns h {s} 2 3 4 5\n")).remove(0);
        let diff = Diff {
            from: soa(1),
            to: soa(2),
            removed,
            added,
        };
        let c = ZoneChange::from_diffs(Name::parse("t.", None).unwrap(), &[diff]);
        assert_eq!(c.names, names(&["t.", "www.t.", "gone.t.", "a.b.new.t."]));
    }
}
