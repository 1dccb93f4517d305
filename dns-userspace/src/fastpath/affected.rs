//! The names whose XDP entries a change to a zone can reach, or why that cannot be bounded
//! (and a full publication is needed). The entries of a name are the engine's answers to
//! queries at it and below it; besides its own node they read (see `engine::resolve`):
//! 1. its ancestors: the cut or DNAME above it (its position), and for its parent, whether it
//!    exists (an empty non-terminal appears or goes with its last descendant), its wildcard
//!    child and the probe names below it (NXDOMAIN templates), whether it has children (NSEC
//!    ranges). So every changed name's parent is affected, and further ancestors while their
//!    existence changes;
//! 2. when a name that exists before and after gains or loses NS or DNAME, every name below it
//!    changes position: those are found by one pass over the zone;
//! 3. additional-section targets (glue of referrals, addresses of MX, SRV, SVCB/HTTPS and NS
//!    targets, SVCB denials): a referrer is affected when one of its targets changes or moves
//!    — found by walking up the target's ancestors (in-bailiwick glue) and from the index of
//!    other references (`deps::ZoneDeps::referrers`);
//! 4. the apex SOA, in every negative answer: an SOA change (every serial change) affects
//!    every name whose entries hold it (`deps::ZoneDeps::soa_holders`) — in a TLD the few
//!    authoritative names, in signed zones every delegation too (DS denial), which is mostly
//!    past the limit. Templates embed the SOA bytes (and their RRSIG), so there is no cheaper
//!    way with this map layout;
//! 5. in NSEC-signed zones, the NSEC of the name itself, or for names without one (empty
//!    non-terminals, unsigned names) the NSEC before them in canonical order: such a name is
//!    affected when that NSEC, before or after the change, is at a changed name;
//! 6. zone-wide data takes a full publication: the apex NS or DNAME, the NSEC3PARAM or any
//!    NSEC3 record (the hashed chain proves NODATA and unsigned delegations, and cannot be
//!    mapped back to names cheaply), and a change of signing.
//!
//! Names of other served zones are never affected: each zone's entries read that zone only.

use std::collections::{HashMap, HashSet};

use super::change::{same_node, same_opt_rrset, same_rrset};
use super::deps::{targets, ZoneDeps};
use crate::wire::name::Name;
use crate::wire::record::rtype;
use crate::zone::Zone;

/// The outcome for one change.
#[derive(Debug, Default)]
pub struct Affected {
    /// Names whose entries are compiled again (before and after).
    pub names: HashSet<Name>,
    /// Names whose nodes differ (created, removed or changed).
    pub changed: HashSet<Name>,
    /// NSEC-signed zones: the change of the number of children per name.
    pub child_delta: HashMap<Name, i64>,
}

fn exists(zone: &Zone, name: &Name) -> bool {
    zone.node(name).is_some()
}

fn has(zone: &Zone, name: &Name, t: u16) -> bool {
    zone.node(name).is_some_and(|(_, n)| n.get(t).is_some())
}

/// Whether the node at `name` differs between the zones.
fn differs(old: &Zone, new: &Zone, name: &Name) -> bool {
    match (old.node(name), new.node(name)) {
        (None, None) => false,
        (Some((_, a)), Some((_, b))) => !same_node(a, b),
        _ => true,
    }
}

/// Checks what only a full publication handles (rule 6).
fn zone_wide(old: &Zone, new: &Zone) -> Result<(), String> {
    if old.apex() != new.apex() {
        return Err(format!("zone {} replaced by {}", old.apex(), new.apex()));
    }
    if old.is_signed() != new.is_signed() {
        return Err("the zone was signed or unsigned".into());
    }
    for (t, what) in [
        (rtype::NS, "apex NS"),
        (rtype::DNAME, "apex DNAME"),
        (rtype::NSEC3PARAM, "NSEC3PARAM"),
    ] {
        if !same_opt_rrset(old.apex_node().get(t), new.apex_node().get(t)) {
            return Err(format!("the {what} changed"));
        }
    }
    if old.nsec3() != new.nsec3() {
        return Err("the NSEC3 chain changed".into());
    }
    Ok(())
}

/// Rule 1: the changed names, their parents, and the ancestors whose existence changes with
/// them; and the change of children counts that goes with it.
fn walk_up(old: &Zone, new: &Zone, out: &mut Affected, nsec: bool) {
    let apex = old.apex();
    let existence_changed = |n: &Name| exists(old, n) != exists(new, n);
    let mut done: HashSet<Name> = HashSet::new();
    for c in &out.changed {
        out.names.insert(c.clone());
        let mut name = c.clone();
        while name != *apex && done.insert(name.clone()) {
            let Some(p) = name.parent() else { break };
            out.names.insert(p.clone());
            if !existence_changed(&p) {
                break;
            }
            name = p;
        }
    }
    if nsec {
        for n in out
            .names
            .iter()
            .filter(|n| *n != apex && existence_changed(n))
        {
            if let Some(p) = n.parent() {
                *out.child_delta.entry(p).or_default() += if exists(new, n) { 1 } else { -1 };
            }
        }
    }
}

/// Rule 2: names below a name that exists before and after and gains or loses NS or DNAME.
fn moved_below(old: &Zone, new: &Zone, changed: &HashSet<Name>) -> Vec<Name> {
    let structural: HashSet<Name> = changed
        .iter()
        .filter(|c| *c != old.apex() && exists(old, c) && exists(new, c))
        .filter(|c| {
            [rtype::NS, rtype::DNAME]
                .iter()
                .any(|&t| has(old, c, t) != has(new, c, t))
        })
        .cloned()
        .collect();
    if structural.is_empty() {
        return Vec::new();
    }
    let below = |n: &Name| n.ancestors().skip(1).any(|a| structural.contains(a));
    let mut out: Vec<Name> = Vec::new();
    for zone in [old, new] {
        out.extend(zone.nodes().map(|(n, _)| n).filter(|n| below(n)).cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// Rule 3: the names whose answers look `x` up in the additional section.
fn referrers_of(
    old: &Zone,
    new: &Zone,
    deps: &ZoneDeps,
    x: &Name,
    out: &mut HashSet<Name>,
) -> Result<(), String> {
    let mut a = x.parent();
    while let Some(p) = a.filter(|p| p.is_subdomain_of(old.apex())) {
        for zone in [old, new] {
            if let Some((_, node)) = zone.node(&p) {
                if targets(node).any(|t| t == *x) {
                    out.insert(p.clone());
                }
            }
        }
        a = p.parent();
    }
    let refs = deps
        .referrers(x)
        .ok_or_else(|| format!("{x} is the target of too many names to follow"))?;
    out.extend(refs.iter().cloned());
    Ok(())
}

/// The names a change reaches: `names` are the owners of the records removed and added (other
/// names are ignored; so are names outside the zone). `Err` says why it takes a full
/// publication.
pub fn affected(
    old: &Zone,
    new: &Zone,
    names: &HashSet<Name>,
    deps: &ZoneDeps,
) -> Result<Affected, String> {
    zone_wide(old, new)?;
    let limit = deps.limit();
    let mut out = Affected {
        changed: names
            .iter()
            .filter(|n| n.is_subdomain_of(old.apex()) && differs(old, new, n))
            .cloned()
            .collect(),
        ..Default::default()
    };
    if out.changed.len() > limit {
        return Err(format!("{} names changed", out.changed.len()));
    }
    walk_up(old, new, &mut out, deps.is_nsec());
    // Names whose data or position changed: their referrers are affected.
    let mut moved: Vec<Name> = out.changed.iter().cloned().collect();
    let below = moved_below(old, new, &out.changed);
    out.names.extend(below.iter().cloned());
    moved.extend(below);
    if deps.is_nsec() {
        let unchained = deps
            .unchained()
            .ok_or("too many names without NSEC to follow the NSEC chain")?;
        for u in unchained {
            let hit = |z: &Zone| z.nsec_for(u).is_some_and(|p| out.changed.contains(p));
            if hit(old) || hit(new) {
                out.names.insert(u.clone());
                moved.push(u.clone());
            }
        }
    }
    if out.names.len() > limit {
        return Err(format!("{} names affected", out.names.len()));
    }
    let mut referrers = HashSet::new();
    for x in &moved {
        referrers_of(old, new, deps, x, &mut referrers)?;
    }
    out.names.extend(referrers);
    if !same_rrset(old.soa(), new.soa()) {
        let holders = deps
            .soa_holders()
            .ok_or("the SOA changed, and too many answers hold it")?;
        out.names.extend(holders.iter().cloned());
    }
    if out.names.len() > limit {
        return Err(format!("{} names affected", out.names.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Catalog, Engine, EngineConfig};
    use crate::zone::ZoneSource;

    fn zone(origin: &str, text: &str) -> Zone {
        let origin = Name::parse(origin, None).unwrap();
        let parsed = crate::zonefile::parse_str(text, &origin, "z.zone").unwrap();
        let src = ZoneSource {
            name: "z.zone",
            locations: None,
        };
        Zone::build(origin, parsed.records, &src).unwrap().0
    }

    fn deps(z: Zone) -> (Arc<Zone>, ZoneDeps) {
        let z = Arc::new(z);
        let mut c = Catalog::new();
        c.insert(z.clone());
        let e = Engine::new(c, EngineConfig::default());
        let d = ZoneDeps::build(&e, &z);
        (z, d)
    }

    fn names(list: &[&str]) -> HashSet<Name> {
        list.iter().map(|n| Name::parse(n, None).unwrap()).collect()
    }

    const BASE: &str = "$TTL 60
@ SOA ns h 1 2 3 4 5
@ NS ns
ns A 198.18.0.1
www A 198.18.0.2
mx A 198.18.0.3
@ MX 10 mx
d1 NS ns.d1
ns.d1 A 198.18.1.1
d2 NS ns.d1
host.sub A 198.18.0.4
x.host.sub A 198.18.0.5
";

    fn with(extra: &str) -> String {
        format!("{BASE}{extra}")
    }

    /// The names a change from `BASE` + `before` to `BASE` + `after` reaches.
    fn reach(before: &str, after: &str, owners: &[&str]) -> Result<HashSet<Name>, String> {
        let (old, d) = deps(zone("t.", &with(before)));
        let new = zone("t.", &with(after));
        affected(&old, &new, &names(owners), &d).map(|a| a.names)
    }

    #[test]
    fn zone_wide_changes_take_a_full_publication() {
        let e = reach("", "@ NS ns2\nns2 A 198.18.0.9\n", &["t.", "ns2.t."]).unwrap_err();
        assert!(e.contains("apex NS"), "{e}");
        let e = reach("", "@ DNAME other.\n", &["t."]).unwrap_err();
        assert!(e.contains("apex DNAME"), "{e}");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../zones/signed/nsec3.example.zone"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let (old, d) = deps(zone("nsec3.example.", &text));
        let new = zone(
            "nsec3.example.",
            &text.replace("NSEC3PARAM 1 0 1 ABCDEF0123", "NSEC3PARAM 1 0 2 ABCDEF0123"),
        );
        let e = affected(&old, &new, &names(&["nsec3.example."]), &d).unwrap_err();
        assert!(e.contains("NSEC3PARAM"), "{e}");
        // Any NSEC3 record (here: the TTL of one) changes the chain.
        let from = "\t300 IN NSEC3 1 1 1";
        assert!(text.contains(from));
        let new = zone(
            "nsec3.example.",
            &text.replacen(from, "\t301 IN NSEC3 1 1 1", 1),
        );
        let e = affected(&old, &new, &names(&["nsec3.example."]), &d).unwrap_err();
        assert!(e.contains("NSEC3 chain"), "{e}");
    }

    #[test]
    fn glue_changes_reach_every_referral_that_carries_it() {
        let got = reach(
            "",
            "",
            &[], // nothing changed
        )
        .unwrap();
        assert!(got.is_empty());
        let (old, d) = deps(zone("t.", BASE));
        let new = zone("t.", &BASE.replace("198.18.1.1", "198.18.1.2"));
        let a = affected(&old, &new, &names(&["ns.d1.t."]), &d).unwrap();
        // d1 (in-bailiwick glue, found upwards) and d2 (sibling glue, from the index), and the
        // parent of the changed name.
        assert_eq!(a.names, names(&["ns.d1.t.", "d1.t.", "d2.t."]));
        assert_eq!(a.changed, names(&["ns.d1.t."]));
        // The MX target reaches the apex.
        let new = zone("t.", &BASE.replace("198.18.0.3", "198.18.0.7"));
        let a = affected(&old, &new, &names(&["mx.t."]), &d).unwrap();
        assert_eq!(a.names, names(&["mx.t.", "t."]));
    }

    #[test]
    fn an_soa_change_reaches_the_names_whose_answers_hold_it() {
        let (old, d) = deps(zone("t.", BASE));
        let new = zone("t.", &BASE.replace("ns h 1 2", "ns h 2 2"));
        let a = affected(&old, &new, &names(&["t."]), &d).unwrap();
        // Every authoritative name (the empty non-terminal sub too), no delegation or glue.
        let expected = names(&[
            "t.",
            "ns.t.",
            "www.t.",
            "mx.t.",
            "sub.t.",
            "host.sub.t.",
            "x.host.sub.t.",
        ]);
        assert_eq!(a.names, expected);
    }

    #[test]
    fn new_names_reach_the_ancestors_that_appear_with_them() {
        let got = reach("", "a.b.c.host.sub A 198.18.0.6\n", &["a.b.c.host.sub.t."]).unwrap();
        // b.c.host.sub and c.host.sub appear as empty non-terminals; host.sub gains a child.
        assert_eq!(
            got,
            names(&[
                "a.b.c.host.sub.t.",
                "b.c.host.sub.t.",
                "c.host.sub.t.",
                "host.sub.t."
            ])
        );
        let got = reach("a.b.c.host.sub A 198.18.0.6\n", "", &["a.b.c.host.sub.t."]).unwrap();
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_name_becoming_a_cut_reaches_every_name_below_it() {
        let got = reach("", "host.sub NS ns.d1\n", &["host.sub.t."]).unwrap();
        assert_eq!(got, names(&["host.sub.t.", "sub.t.", "x.host.sub.t."]));
        // A delegation removed with its glue left: the glue becomes authoritative, and d2,
        // whose name server it is, changes too.
        let (old, d) = deps(zone("t.", BASE));
        let new = zone("t.", &BASE.replace("d1 NS ns.d1\n", "d1 A 198.18.1.9\n"));
        let a = affected(&old, &new, &names(&["d1.t."]), &d).unwrap();
        assert_eq!(a.names, names(&["d1.t.", "t.", "ns.d1.t.", "d2.t."]));
    }

    #[test]
    fn names_without_nsec_follow_the_nsec_before_them() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../zones/signed/nsec.example.zone"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let (old, d) = deps(zone("nsec.example.", &text));
        assert!(d.is_nsec());
        let ent = Name::parse("b.ent.nsec.example.", None).unwrap();
        assert!(d.unchained().unwrap().contains(&ent));
        // The NSEC before the empty non-terminals ent and b.ent is at _sip._udp: a change
        // there (its TTL) reaches them.
        let new = zone(
            "nsec.example.",
            &text.replacen(
                "_sip._udp.nsec.example.\t300\tIN\tNSEC",
                "_sip._udp.nsec.example.\t299\tIN\tNSEC",
                1,
            ),
        );
        let a = affected(&old, &new, &names(&["_sip._udp.nsec.example."]), &d).unwrap();
        assert!(a.names.contains(&ent), "{:?}", a.names);
        assert!(a
            .names
            .contains(&Name::parse("ent.nsec.example.", None).unwrap()));
    }
}
