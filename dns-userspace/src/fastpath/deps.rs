//! What the compiled answers of a zone depend on besides each name's own node, indexed per
//! zone so that an incremental publication (see `incremental`) can find every name whose
//! entries a change reaches without looking at the whole zone:
//! - `soa`: the names whose entries hold the apex SOA (every negative answer does): the
//!   authoritative names (NODATA and NXDOMAIN), and in signed zones every delegation too (the
//!   NODATA answer to DS). Past a limit the set is dropped, and an SOA change takes a full
//!   publication;
//! - `refs`: additional-section targets (of NS, MX, SRV, SVCB and HTTPS records, and the name
//!   servers of referrals) inside the zone that are not at or below the name referring to them
//!   — sibling glue, say — with the names referring to them. Targets at or below their referrer
//!   are found from the target by walking up its ancestors, and need no index;
//! - in NSEC-signed zones, `unchained`: the compiled names without an NSEC record of their own
//!   (empty non-terminals, unsigned names), whose proofs use the NSEC of the name before them;
//!   and `children`: how many children each name has (a signed name with children leaves its
//!   NXDOMAIN answers to userspace, which proves them with NSEC ranges).

use std::collections::{HashMap, HashSet};

use super::compile::zone_owns;
use crate::engine::Engine;
use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype};
use crate::zone::{Node, Position, Zone};

/// Most names indexed as referring to one target; a target with more is `crowded`.
const MAX_REFS: usize = 256;

/// How a compiled name takes part in the zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Authoritative data (or an empty non-terminal): exact, NODATA and NXDOMAIN entries.
    Authoritative,
    /// A delegation point: the referral (and DS in signed zones).
    Cut,
}

/// The role of `name` in `zone`: `None` when the zone makes no entries for it (no such node,
/// below a cut or a DNAME, or in another served zone).
pub fn role(engine: &Engine, zone: &Zone, name: &Name) -> Option<Role> {
    zone.node(name)?;
    if !zone_owns(engine, zone, name) {
        return None;
    }
    match zone.position(name) {
        Position::Authoritative => Some(Role::Authoritative),
        Position::Delegated { cut, .. } if cut == *name => Some(Role::Cut),
        _ => None,
    }
}

/// Whether the zone's proofs are NSEC ones (signed, without a usable NSEC3 chain).
pub fn nsec_signed(zone: &Zone) -> bool {
    zone.is_signed() && zone.nsec3().is_none_or(|c| c.is_empty())
}

/// Whether the entries of a name in this role hold the apex SOA.
fn holds_soa(zone: &Zone, role: Option<Role>) -> bool {
    match role {
        Some(Role::Authoritative) => true,
        Some(Role::Cut) => zone.is_signed(),
        None => false,
    }
}

/// The names the additional section of an answer from `node` may look up: targets of NS, MX,
/// SRV, SVCB and HTTPS records (as the engine's additional section processing reads them).
pub fn targets(node: &Node) -> impl Iterator<Item = Name> + '_ {
    node.rrsets
        .iter()
        .filter_map(|s| {
            let off = match s.rtype {
                rtype::NS => 0,
                rtype::MX | rtype::SVCB | rtype::HTTPS => 2,
                rtype::SRV => 6,
                _ => return None,
            };
            Some(
                s.rdatas
                    .iter()
                    .filter_map(move |rd| rd.get(off..).and_then(read_name).map(|(n, _)| n)),
            )
        })
        .flatten()
}

/// The dependency index of one zone.
#[derive(Debug, Default)]
pub struct ZoneDeps {
    /// Names whose entries hold the SOA; `None` when there are more than `limit`.
    soa: Option<HashSet<Name>>,
    /// Targets → the names referring to them that are not their ancestors.
    refs: HashMap<Name, Vec<Name>>,
    /// Targets with more than `MAX_REFS` such names.
    crowded: HashSet<Name>,
    /// NSEC-signed zones: compiled names without an NSEC RRset; `None` past `limit`.
    unchained: Option<HashSet<Name>>,
    /// NSEC-signed zones: children per name.
    children: HashMap<Name, u32>,
    nsec: bool,
    limit: usize,
}

/// The largest set of names an incremental publication handles for a zone of `len` names;
/// past it a full one costs about as much.
pub fn limit(len: usize) -> usize {
    (len / 4).max(1024)
}

impl ZoneDeps {
    /// Indexes `zone` as `engine` serves it, on as many threads as the process may use.
    pub fn build(engine: &Engine, zone: &Zone) -> ZoneDeps {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = zone.len().div_ceil(threads).max(16_384);
        ZoneDeps::build_in_chunks(engine, zone, chunk)
    }

    /// `build`, one thread per `chunk` names.
    fn build_in_chunks(engine: &Engine, zone: &Zone, chunk: usize) -> ZoneDeps {
        let nsec = nsec_signed(zone);
        let empty = || ZoneDeps {
            soa: Some(HashSet::new()),
            unchained: nsec.then(HashSet::new),
            nsec,
            limit: limit(zone.len()),
            ..Default::default()
        };
        let nodes: Vec<(&Name, &Node)> = zone.nodes().collect();
        let parts: Vec<ZoneDeps> = std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut d = empty();
                        for (name, node) in part {
                            d.add_node(engine, zone, name, node);
                        }
                        d
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("indexing thread"))
                .collect()
        });
        let mut d = empty();
        for p in parts {
            d.merge(p);
        }
        d
    }

    fn add_node(&mut self, engine: &Engine, zone: &Zone, name: &Name, node: &Node) {
        self.add_refs(zone, name, node);
        if self.nsec {
            if let Some(p) = name.parent().filter(|p| p.is_subdomain_of(zone.apex())) {
                *self.children.entry(p).or_default() += 1;
            }
        }
        self.set_role(zone, name, role(engine, zone, name));
    }

    /// Adds the index of other names of the same zone.
    fn merge(&mut self, o: ZoneDeps) {
        let union = |a: &mut Option<HashSet<Name>>, b: Option<HashSet<Name>>, limit: usize| {
            *a = match (a.take(), b) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    (a.len() <= limit).then_some(a)
                }
                _ => None,
            };
        };
        union(&mut self.soa, o.soa, self.limit);
        if self.nsec {
            union(&mut self.unchained, o.unchained, self.limit);
        }
        for (n, c) in o.children {
            *self.children.entry(n).or_default() += c;
        }
        for t in o.crowded {
            self.refs.remove(&t);
            self.crowded.insert(t);
        }
        for (t, v) in o.refs {
            if self.crowded.contains(&t) {
                continue;
            }
            let mine = self.refs.entry(t.clone()).or_default();
            for r in v {
                if !mine.contains(&r) {
                    mine.push(r);
                }
            }
            if mine.len() > MAX_REFS {
                self.refs.remove(&t);
                self.crowded.insert(t);
            }
        }
    }

    fn add_refs(&mut self, zone: &Zone, name: &Name, node: &Node) {
        for t in targets(node) {
            if !t.is_subdomain_of(zone.apex()) || t.is_subdomain_of(name) {
                continue;
            }
            if self.crowded.contains(&t) {
                continue;
            }
            let v = self.refs.entry(t.clone()).or_default();
            if !v.contains(name) {
                v.push(name.clone());
            }
            if v.len() > MAX_REFS {
                self.refs.remove(&t);
                self.crowded.insert(t);
            }
        }
    }

    fn remove_refs(&mut self, name: &Name, node: &Node) {
        for t in targets(node) {
            if let Some(v) = self.refs.get_mut(&t) {
                v.retain(|r| r != name);
                if v.is_empty() {
                    self.refs.remove(&t);
                }
            }
        }
    }

    /// Records the role `name` has now in the sets that follow it.
    fn set_role(&mut self, zone: &Zone, name: &Name, role: Option<Role>) {
        if let Some(s) = &mut self.soa {
            if holds_soa(zone, role) {
                s.insert(name.clone());
            } else {
                s.remove(name);
            }
            if s.len() > self.limit {
                self.soa = None;
            }
        }
        if let Some(u) = &mut self.unchained {
            let lacks = zone
                .node(name)
                .is_some_and(|(_, n)| n.get(rtype::NSEC).is_none());
            if role.is_some() && lacks {
                u.insert(name.clone());
            } else {
                u.remove(name);
            }
            if u.len() > self.limit {
                self.unchained = None;
            }
        }
    }

    /// Names whose entries hold the SOA, or `None` when there are too many to track.
    pub fn soa_holders(&self) -> Option<&HashSet<Name>> {
        self.soa.as_ref()
    }

    /// The names referring to `target` that are not its ancestors; `None` when there are too
    /// many to track.
    pub fn referrers(&self, target: &Name) -> Option<&[Name]> {
        if self.crowded.contains(target) {
            return None;
        }
        Some(self.refs.get(target).map_or(&[], |v| v.as_slice()))
    }

    /// NSEC-signed zones: the compiled names without NSEC (`None`: too many to track, or not
    /// an NSEC-signed zone).
    pub fn unchained(&self) -> Option<&HashSet<Name>> {
        self.unchained.as_ref()
    }

    pub fn is_nsec(&self) -> bool {
        self.nsec
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `name` has children, with `delta` children more than indexed.
    pub fn has_children(&self, name: &Name, delta: i64) -> bool {
        self.children.get(name).copied().unwrap_or(0) as i64 + delta > 0
    }

    /// Brings the index from `old` to `new`: `changed` are the names whose nodes differ,
    /// `affected` every name whose role may differ, `child_delta` the change of the number of
    /// children per name.
    pub fn update(
        &mut self,
        engine: &Engine,
        old: &Zone,
        new: &Zone,
        changed: &HashSet<Name>,
        affected: &HashSet<Name>,
        child_delta: &HashMap<Name, i64>,
    ) {
        for name in changed {
            if let Some((_, node)) = old.node(name) {
                self.remove_refs(name, node);
            }
            if let Some((owner, node)) = new.node(name) {
                self.add_refs(new, owner, node);
            }
        }
        for name in affected.iter().chain(changed) {
            self.set_role(new, name, role(engine, new, name));
        }
        for (name, d) in child_delta {
            let n = self.children.get(name).copied().unwrap_or(0) as i64 + d;
            if n > 0 {
                self.children.insert(name.clone(), n as u32);
            } else {
                self.children.remove(name);
            }
        }
    }

    /// Whether two indexes hold the same (for tests: an updated index against a rebuilt one).
    pub fn same_as(&self, other: &ZoneDeps) -> bool {
        let sorted = |m: &HashMap<Name, Vec<Name>>| {
            let mut v: Vec<(Name, Vec<Name>)> = m
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    v.sort();
                    (k.clone(), v)
                })
                .collect();
            v.sort();
            v
        };
        self.soa == other.soa
            && self.crowded == other.crowded
            && self.unchained == other.unchained
            && self.children == other.children
            && self.nsec == other.nsec
            && sorted(&self.refs) == sorted(&other.refs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Catalog, EngineConfig};
    use crate::zone::ZoneSource;

    #[test]
    fn an_index_built_in_parts_equals_one_built_at_once() {
        for file in ["example.zone", "signed/nsec.example.zone"] {
            let origin = if file == "example.zone" {
                "example."
            } else {
                "nsec.example."
            };
            let origin = Name::parse(origin, None).unwrap();
            let path = format!("{}/../zones/{file}", env!("CARGO_MANIFEST_DIR"));
            let mut text = std::fs::read_to_string(path).unwrap();
            // Sibling references, so that the parts have references to merge.
            for i in 0..40 {
                text.push_str(&format!(
                    "s{i}.{origin} NS ns1.s{}.{origin}\n",
                    (i + 1) % 40
                ));
                text.push_str(&format!("ns1.s{i}.{origin} A 192.0.2.{i}\n"));
            }
            let parsed = crate::zonefile::parse_str(&text, &origin, "z").unwrap();
            let src = ZoneSource {
                name: "z",
                locations: None,
            };
            let zone = Arc::new(Zone::build(origin, parsed.records, &src).unwrap().0);
            let mut c = Catalog::new();
            c.insert(zone.clone());
            let engine = Engine::new(c, EngineConfig::default());
            let whole = ZoneDeps::build_in_chunks(&engine, &zone, usize::MAX);
            let parts = ZoneDeps::build_in_chunks(&engine, &zone, 7);
            assert!(whole.same_as(&parts), "{file}");
            assert!(whole.refs.len() >= 40, "{file}");
            assert!(!whole.soa_holders().unwrap().is_empty());
        }
    }
}
