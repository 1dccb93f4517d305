//! Building a zone from parsed records, with the checks named-checkzone makes: one SOA and NS
//! at the apex, no CNAME beside other data, no out-of-zone data, RDATA well formed for its type
//! (`wire::rdata`, also for the RFC 3597 `\#` form) (errors); occluded data below a delegation
//! and missing glue (warnings); differing TTLs within an RRset (normalised, warned).

use thiserror::Error;

use super::nsec3::{parse_param, Nsec3Chain};
use super::{Node, NodeMap, RRset, Zone};

/// The nodes while a zone is built: a plain hash map, several times faster to fill than the
/// persistent `NodeMap` the zone keeps (made from it in one pass at the end).
pub(super) type Building = rustc_hash::FxHashMap<Name, Node>;
use crate::wire::name::{Name, NameRef};
use crate::wire::rdata;
use crate::wire::record::{rtype, same_rdata, Record};

/// A zone that cannot be served, with the place in the source that is wrong.
#[derive(Debug, Error)]
#[error("{location}: {message}")]
pub struct ZoneError {
    pub location: String,
    pub message: String,
}

/// Where records came from: the file name, and a `file:line` per record when known.
pub struct ZoneSource<'a> {
    pub name: &'a str,
    pub locations: Option<&'a crate::zonefile::Locations>,
}

impl ZoneSource<'_> {
    pub(super) fn at(&self, i: usize) -> String {
        self.locations
            .and_then(|l| l.get(i))
            .unwrap_or_else(|| self.name.to_owned())
    }
}

impl Zone {
    /// `build` without the RDATA checks, for tests of what the engine does with data that
    /// `build` would refuse.
    #[cfg(test)]
    pub(crate) fn build_unchecked(
        apex: Name,
        records: Vec<Record>,
        source: &ZoneSource<'_>,
    ) -> Result<(Zone, Vec<String>), ZoneError> {
        Zone::assemble(apex, records, source, false)
    }

    /// Builds a zone; returns it with its warnings, or the first error.
    pub fn build(
        apex: Name,
        records: Vec<Record>,
        source: &ZoneSource<'_>,
    ) -> Result<(Zone, Vec<String>), ZoneError> {
        Zone::assemble(apex, records, source, true)
    }

    fn assemble(
        apex: Name,
        records: Vec<Record>,
        source: &ZoneSource<'_>,
        check_rdata: bool,
    ) -> Result<(Zone, Vec<String>), ZoneError> {
        let mut warnings = Vec::new();
        let err = |i: usize, message: String| ZoneError {
            location: source.at(i),
            message,
        };
        // Sized for two records a name (a delegation's NS RRset, glue A + AAAA): a large zone
        // is not rehashed on the way.
        let mut nodes: Building = Building::default();
        nodes.reserve(records.len() / 2);
        // RRSIGs wait until all RRsets exist.
        let mut sigs: Vec<(usize, Record)> = Vec::new();
        let mut unattached = Vec::new();
        for (i, r) in records.into_iter().enumerate() {
            if !r.owner.is_subdomain_of(&apex) {
                return Err(err(i, format!("{} is outside the zone {apex}", r.owner)));
            }
            if let Some(why) = not_zone_data(r.rtype) {
                return Err(err(
                    i,
                    format!(
                        "{} cannot be stored in a zone: {why}",
                        rtype::to_string(r.rtype)
                    ),
                ));
            }
            if check_rdata {
                rdata::check(r.rtype, &r.rdata).map_err(|e| err(i, format!("{} {e}", r.owner)))?;
            }
            if r.rtype == rtype::RRSIG {
                sigs.push((i, r));
                continue;
            }
            let Some(node) = nodes.get_mut(&r.owner) else {
                // The first record at this name: one lookup more, no clone of the name.
                let node = Node {
                    rrsets: vec![RRset::of(r.rtype, r.ttl, r.rdata, i)],
                    children: 0,
                };
                nodes.insert(r.owner, node);
                continue;
            };
            match node.rrsets.iter_mut().find(|s| s.rtype == r.rtype) {
                Some(set) => {
                    if set.ttl != r.ttl {
                        let keep = set.ttl.min(r.ttl);
                        warnings.push(format!(
                            "{}: {} {} has differing TTLs ({} and {}); using {keep}",
                            source.at(i),
                            r.owner,
                            rtype::to_string(r.rtype),
                            set.ttl,
                            r.ttl
                        ));
                        set.ttl = keep;
                    }
                    if !set.rdatas.iter().any(|d| same_rdata(r.rtype, d, &r.rdata)) {
                        push_small(&mut set.rdatas, r.rdata);
                    }
                }
                None => push_small(&mut node.rrsets, RRset::of(r.rtype, r.ttl, r.rdata, i)),
            }
        }
        for (i, r) in sigs {
            let covered = r
                .rrsig_covered()
                .ok_or_else(|| err(i, "short RRSIG".into()))?;
            let set = nodes
                .get_mut(&r.owner)
                .and_then(|n| n.rrsets.iter_mut().find(|s| s.rtype == covered));
            match set {
                Some(set) => {
                    set.sig_ttl = if set.sigs.is_empty() {
                        r.ttl
                    } else {
                        set.sig_ttl.min(r.ttl)
                    };
                    if !set.sigs.contains(&r.rdata) {
                        set.sigs.push(r.rdata);
                    }
                }
                None => {
                    warnings.push(format!(
                        "{}: RRSIG at {} covers {}, which does not exist there; ignored",
                        source.at(i),
                        r.owner,
                        rtype::to_string(covered)
                    ));
                    unattached.push(r);
                }
            }
        }
        for (_, node) in nodes.iter_mut() {
            node.rrsets.sort_by_key(|s| s.rtype);
        }
        let nsec3 = extract_nsec3(&apex, &mut nodes, &mut warnings, &mut unattached);

        let at = |name: &Name, t: u16| {
            nodes
                .get(name)
                .and_then(|n| n.get(t))
                .map_or(0, |s| s.first as usize)
        };
        let apex_node = nodes.get(&apex);
        let soa = apex_node.and_then(|n| n.get(rtype::SOA));
        match soa {
            None => {
                return Err(ZoneError {
                    location: source.name.to_owned(),
                    message: format!("no SOA record at the zone apex {apex}"),
                })
            }
            Some(s) if s.rdatas.len() != 1 => {
                return Err(err(
                    at(&apex, rtype::SOA),
                    format!(
                        "{} SOA records at the apex; exactly one is allowed",
                        s.rdatas.len()
                    ),
                ))
            }
            _ => {}
        }
        if apex_node.and_then(|n| n.get(rtype::NS)).is_none() {
            return Err(ZoneError {
                location: source.name.to_owned(),
                message: format!("no NS records at the zone apex {apex}"),
            });
        }
        let (checked, ents) = super::build_checks::check_nodes(&apex, &nodes, source)?;
        warnings.extend(checked);
        for p in ents {
            nodes.insert(p, Node::default());
        }
        count_children(&apex, &mut nodes);
        let nsec_chain: imbl::OrdSet<Name> = nodes
            .iter()
            .filter(|(_, n)| n.get(rtype::NSEC).is_some())
            .map(|(n, _)| n.clone())
            .collect();
        // Through a vector: the hash map's table (twice the entries, and their control bytes)
        // is freed before the persistent map grows.
        let nodes: Vec<(Name, Node)> = nodes.into_iter().collect();
        let nodes: NodeMap = nodes.into_iter().collect();
        let negative_ttl = nodes
            .get(&apex)
            .and_then(|n| n.get(rtype::SOA))
            .and_then(|soa| rdata::soa_timers(&soa.rdatas[0]).map(|t| soa.ttl.min(t[4])));
        Ok((
            Zone {
                apex,
                nodes,
                nsec_chain,
                unattached: std::sync::Arc::new(unattached),
                nsec3,
                negative_ttl,
                source: source.name.to_owned(),
            },
            warnings,
        ))
    }
}

/// Pushes `v` onto `to`, growing a short vector by one place only: most names of a large zone
/// have one to three RRsets, most RRsets one to three records, and the usual doubling (to four
/// places from one) would take twice the memory they need. Longer vectors grow as usual.
fn push_small<T>(to: &mut Vec<T>, v: T) {
    if to.len() == to.capacity() && to.len() < 4 {
        to.reserve_exact(1);
    }
    to.push(v);
}

impl RRset {
    /// An RRset of one record, record `i` of its source, unsigned.
    fn of(rtype: u16, ttl: u32, rdata: Vec<u8>, i: usize) -> RRset {
        RRset {
            rtype,
            ttl,
            rdatas: vec![rdata],
            sigs: Vec::new(),
            sig_ttl: 0,
            first: i as u32,
        }
    }
}

/// Sets every node's count of children (each node but the apex has its parent among the nodes,
/// empty non-terminals being added first). Counts by the nodes' positions in the map's
/// iteration order, which nothing changes in between: no name is copied.
fn count_children(apex: &Name, nodes: &mut Building) {
    let mut counts = vec![0u32; nodes.len()];
    {
        let mut parents: rustc_hash::FxHashMap<&NameRef, u32> = Default::default();
        parents.reserve(nodes.len());
        for (i, name) in nodes.keys().enumerate() {
            parents.insert(name.as_name_ref(), i as u32);
        }
        for name in nodes.keys() {
            if name == apex {
                continue;
            }
            let parent = name.suffix_ref(name.label_count() - 1);
            if let Some(&i) = parents.get(parent) {
                counts[i as usize] += 1;
            }
        }
    }
    for (node, c) in nodes.values_mut().zip(counts) {
        node.children = c;
    }
}

/// What is wrong with the node `name` of the zone `apex`, with the type whose record it is
/// at: a CNAME beside other data, two CNAMEs, an SOA but at the apex.
pub(super) fn node_error(apex: &Name, name: &Name, node: &Node) -> Option<(u16, String)> {
    if node.get(rtype::CNAME).is_some() {
        let other = node
            .rrsets
            .iter()
            .find(|s| !matches!(s.rtype, rtype::CNAME | rtype::RRSIG | rtype::NSEC));
        if let Some(o) = other {
            let what = format!(
                "{name} has a CNAME and other data ({})",
                rtype::to_string(o.rtype)
            );
            return Some((rtype::CNAME, what));
        }
        if node.get(rtype::CNAME).map(|s| s.rdatas.len()) > Some(1) {
            return Some((rtype::CNAME, format!("{name} has more than one CNAME")));
        }
    }
    if name != apex && node.get(rtype::SOA).is_some() {
        return Some((
            rtype::SOA,
            format!("SOA at {name}, which is not the zone apex"),
        ));
    }
    None
}

/// Why records of type `t` are not zone data, when they are not.
pub(super) fn not_zone_data(t: u16) -> Option<&'static str> {
    match t {
        0 => Some("type 0 is reserved (RFC 6895 §3.1)"),
        // Clients refuse SIG outside the additional section.
        24 => Some(
            "SIG is for transaction signatures (SIG(0)); zones are signed with RRSIG (RFC 3755 §3)",
        ),
        t if rtype::is_meta(t) => Some("meta and query types are not data (RFC 6895 §3.1)"),
        _ => None,
    }
}

/// Moves the NSEC3 records out of the nodes into the zone's NSEC3 chain (when the apex has an
/// NSEC3PARAM); nodes left empty disappear.
fn extract_nsec3(
    apex: &Name,
    nodes: &mut Building,
    warnings: &mut Vec<String>,
    unattached: &mut Vec<Record>,
) -> Option<Nsec3Chain> {
    let param = nodes
        .get(apex)
        .and_then(|n| n.get(rtype::NSEC3PARAM))
        .and_then(|p| parse_param(&p.rdatas[0]));
    let owners: Vec<Name> = nodes
        .iter()
        .filter(|(_, n)| n.get(rtype::NSEC3).is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let (alg, iterations, salt) = param?;
    let mut chain = Nsec3Chain::new(alg, iterations, salt);
    for owner in owners {
        let name = owner.clone();
        let node = nodes.get_mut(&owner).expect("listed");
        let i = node
            .rrsets
            .iter()
            .position(|s| s.rtype == rtype::NSEC3)
            .expect("listed");
        let set = node.rrsets.remove(i);
        if node.rrsets.is_empty() {
            nodes.remove(&owner);
        }
        let mut set = set;
        let (keep, other): (Vec<_>, Vec<_>) =
            set.rdatas.drain(..).partition(|rd| chain.same_params(rd));
        set.rdatas = keep;
        unattached.extend(other.into_iter().map(|rdata| Record {
            owner: name.clone(),
            rtype: rtype::NSEC3,
            class: crate::wire::record::class::IN,
            ttl: set.ttl,
            rdata,
        }));
        if set.rdatas.is_empty() {
            unattached.extend(set.sig_records(&name));
            continue;
        }
        if let Err(e) = chain.insert(name.clone(), set.clone()) {
            warnings.push(e);
            unattached.extend(set.records(&name));
            unattached.extend(set.sig_records(&name));
        }
    }
    chain.finish();
    Some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> Result<(Zone, Vec<String>), ZoneError> {
        let origin = Name::parse("example.", None).unwrap();
        let parsed = crate::zonefile::parse_str(text, &origin, "z.zone").unwrap();
        let src = ZoneSource {
            name: "z.zone",
            locations: parsed.locations.as_ref(),
        };
        Zone::build(origin, parsed.records, &src)
    }

    const HEAD: &str = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n";

    #[test]
    fn rejects_missing_or_double_soa_and_missing_ns() {
        let e = build("$TTL 60\n@ NS ns\nns A 198.18.0.1\n").unwrap_err();
        assert!(e.message.contains("no SOA"), "{e}");
        let e = build(&format!("{HEAD}@ SOA ns h 2 2 3 4 5\n")).unwrap_err();
        assert_eq!(e.location, "z.zone:2");
        assert!(e.message.contains("2 SOA records"), "{e}");
        let e = build("$TTL 60\n@ SOA ns h 1 2 3 4 5\nns A 198.18.0.1\n").unwrap_err();
        assert!(e.message.contains("no NS"), "{e}");
    }

    #[test]
    fn records_that_differ_only_in_the_case_of_a_name_are_one() {
        // Found by the `axfr` fuzz target: two NS records, `ns2.shop` and `nS2.shop`, were
        // both kept and answered (RFC 2181 §5: duplicates; RFC 4343: the same name).
        let (z, _) = build(&format!(
            "{HEAD}shop NS ns2.shop\nshop NS nS2.shop\nshop NS ns3.shop\n"
        ))
        .unwrap();
        let shop = Name::parse("shop.example.", None).unwrap();
        let (_, node) = z.node(&shop).unwrap();
        assert_eq!(node.get(rtype::NS).unwrap().rdatas.len(), 2);
        // Other types' RDATA is compared as octets (TXT keeps its case).
        let (z, _) = build(&format!("{HEAD}t TXT \"a\"\nt TXT \"A\"\n")).unwrap();
        let t = Name::parse("t.example.", None).unwrap();
        assert_eq!(
            z.node(&t).unwrap().1.get(rtype::TXT).unwrap().rdatas.len(),
            2
        );
    }

    #[test]
    fn rejects_soa_without_rdata_in_generic_form_with_its_line() {
        // `xdpdns check` used to pass this zone; its first NXDOMAIN then panicked.
        let e = build("$TTL 60\n@ SOA \\# 0\n@ NS ns\nns A 198.18.0.1\n").unwrap_err();
        assert_eq!(e.location, "z.zone:2");
        assert!(e.message.contains("SOA"), "{e}");
    }

    #[test]
    fn rejects_malformed_rdata_with_its_line_owner_and_reason() {
        // The RFC 3597 form of an MX whose exchange is a compression pointer.
        let e = build(&format!("{HEAD}www MX \\# 4 000ac00c\n")).unwrap_err();
        assert_eq!(e.location, "z.zone:5");
        assert_eq!(
            e.message,
            "www.example. MX RDATA: the target name is compressed (names in zone data are \
             written in full)"
        );
        // An RRSIG too, before it is attached to its RRset.
        let e = build(&format!("{HEAD}ns RRSIG \\# 3 000100\n")).unwrap_err();
        assert_eq!(e.location, "z.zone:5");
        assert!(e.message.contains("RRSIG RDATA: ends inside"), "{e}");
        // The same records written well build.
        build(&format!("{HEAD}www MX \\# 3 000a00\n")).unwrap();
    }

    #[test]
    fn rejects_types_that_are_not_zone_data() {
        for (rr, what) in [
            ("TYPE0 \\# 0", "TYPE0 cannot be stored"),
            (
                "TYPE24 \\# 20 000100000000000000000000000000000000 00 01",
                "TYPE24 cannot be stored in a zone: SIG is for transaction signatures",
            ),
        ] {
            let e = build(&format!("{HEAD}x {rr}\n")).unwrap_err();
            assert_eq!(e.location, "z.zone:5");
            assert!(e.message.contains(what), "{e}");
        }
    }

    #[test]
    fn rejects_cname_beside_other_data_with_its_line() {
        let e = build(&format!("{HEAD}www A 198.18.0.2\nwww CNAME ns\n")).unwrap_err();
        assert_eq!(e.location, "z.zone:6");
        assert!(e.message.contains("CNAME and other data"), "{e}");
    }

    #[test]
    fn warns_about_occluded_data_missing_glue_and_ttls() {
        let (_, w) = build(&format!(
            "{HEAD}sub NS ns.sub\nsub NS ns2.sub\nns.sub A 198.18.0.3\nx.sub TXT hidden\nwww 60 A 198.18.0.4\nwww 120 A 198.18.0.5\n"
        ))
        .unwrap();
        assert!(
            w.iter()
                .any(|m| m.starts_with("z.zone:8:") && m.contains("occluded")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.contains("ns2.sub.example.") && m.contains("no glue")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.starts_with("z.zone:10:") && m.contains("differing TTLs")),
            "{w:?}"
        );
    }
}
