//! The checks `Zone::build` makes on every node once the RRsets are assembled — a CNAME beside
//! other data, an SOA but at the apex (errors), data below a zone cut that is not glue, a
//! delegation whose in-bailiwick name server has no address (warnings) — and the empty
//! non-terminals the nodes need. They only read the nodes, so a large zone is checked on
//! several threads, each over one slice of the nodes in the map's iteration order; the
//! slices' findings are joined in that order, so errors and warnings are the same, in the
//! same order, as one pass would give.

use rustc_hash::FxHashSet;

use super::build::{node_error, ZoneError, ZoneSource};
use super::Node;
use crate::wire::name::{Name, NameRef};
use crate::wire::record::{read_name, rtype};

/// Nodes below which the checks run on one thread.
const PARALLEL_MIN_NODES: usize = 65_536;

/// What one slice of the nodes shows.
#[derive(Default)]
struct Findings<'n> {
    /// The first node error: its record index and message.
    error: Option<(usize, String)>,
    occluded: Vec<String>,
    no_glue: Vec<String>,
    /// Ancestors of owners that are no node (empty non-terminals to add).
    ents: FxHashSet<&'n NameRef>,
}

/// Index of the record that put RRset `t` at `node` (0 when there is none).
fn first(node: &Node, t: u16) -> usize {
    node.get(t).map_or(0, |s| s.first as usize)
}

/// The checks over the nodes of zone `apex`: the first error, or the warnings (occluded
/// data first, then missing glue) and the empty non-terminals to add.
pub(super) fn check_nodes(
    apex: &Name,
    nodes: &super::build::Building,
    source: &ZoneSource<'_>,
) -> Result<(Vec<String>, Vec<Name>), ZoneError> {
    let threads = if nodes.len() >= PARALLEL_MIN_NODES {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    } else {
        1
    };
    check_nodes_on(apex, nodes, source, threads)
}

/// `check_nodes` on `threads` threads.
fn check_nodes_on(
    apex: &Name,
    nodes: &super::build::Building,
    source: &ZoneSource<'_>,
    threads: usize,
) -> Result<(Vec<String>, Vec<Name>), ZoneError> {
    let all: Vec<(&Name, &Node)> = nodes.iter().collect();
    let per = all.len().div_ceil(threads).max(1);
    let found: Vec<Findings<'_>> = if threads == 1 {
        vec![slice_findings(apex, nodes, &all, source)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = all
                .chunks(per)
                .map(|c| s.spawn(move || slice_findings(apex, nodes, c, source)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    if let Some((i, message)) = found.iter().find_map(|f| f.error.clone()) {
        return Err(ZoneError {
            location: source.at(i),
            message,
        });
    }
    let mut warnings = Vec::new();
    for f in &found {
        warnings.extend(f.occluded.iter().cloned());
    }
    for f in &found {
        warnings.extend(f.no_glue.iter().cloned());
    }
    let mut ents: FxHashSet<&NameRef> = FxHashSet::default();
    for f in &found {
        ents.extend(f.ents.iter().copied());
    }
    Ok((warnings, ents.into_iter().map(NameRef::to_name).collect()))
}

fn slice_findings<'n>(
    apex: &Name,
    nodes: &'n super::build::Building,
    slice: &[(&'n Name, &'n Node)],
    source: &ZoneSource<'_>,
) -> Findings<'n> {
    let mut f = Findings::default();
    for &(name, node) in slice {
        if let Some((t, message)) = node_error(apex, name, node) {
            f.error = Some((first(node, t), message));
            return f;
        }
    }
    let apex_len = apex.wire().len();
    let is_cut = |p: &NameRef| {
        p.wire().len() > apex_len && nodes.get(p).is_some_and(|n| n.get(rtype::NS).is_some())
    };
    for &(name, node) in slice {
        // Below a cut: some proper ancestor (below the apex) is a cut. Walks up the name, so
        // the cost is the name's depth, not the number of cuts.
        let below_cut = name
            .ancestors()
            .skip(1)
            .take_while(|p| p.wire().len() > apex_len)
            .any(is_cut);
        if below_cut {
            let non_glue = node
                .rrsets
                .iter()
                .find(|s| !matches!(s.rtype, rtype::A | rtype::AAAA));
            if let Some(s) = non_glue {
                f.occluded.push(format!(
                    "{}: {name} {} is below a delegation and is not glue; it is occluded and not served",
                    source.at(s.first as usize),
                    rtype::to_string(s.rtype)
                ));
            }
        }
        if name != apex {
            if let Some(ns) = node.get(rtype::NS) {
                for rd in &ns.rdatas {
                    let Some((target, _)) = read_name(rd) else {
                        continue;
                    };
                    if !target.is_subdomain_of(name) {
                        continue;
                    }
                    let has = nodes
                        .get(&target)
                        .is_some_and(|n| n.get(rtype::A).is_some() || n.get(rtype::AAAA).is_some());
                    if !has {
                        f.no_glue.push(format!(
                            "{}: delegation {name} has name server {target} inside it but no glue (A/AAAA)",
                            source.at(ns.first as usize)
                        ));
                    }
                }
            }
        }
        for p in name.ancestors().skip(1) {
            if p.wire().len() <= apex_len || nodes.contains_key(p) || !f.ents.insert(p) {
                break;
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::RRset;

    fn set(rtype: u16, rdatas: Vec<Vec<u8>>, first: u32) -> RRset {
        RRset {
            rtype,
            ttl: 60,
            rdatas,
            sigs: Vec::new(),
            sig_ttl: 0,
            first,
        }
    }

    fn name(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    /// Delegations with and without glue, occluded data, names under empty non-terminals.
    fn nodes(n: usize) -> super::super::build::Building {
        let mut nodes = super::super::build::Building::default();
        let node = |rrsets| Node {
            rrsets,
            children: 0,
        };
        for i in 0..n {
            let cut = format!("d{i}.example.");
            let ns = name(&format!("ns.{cut}")).wire().to_vec();
            nodes.insert(name(&cut), node(vec![set(rtype::NS, vec![ns], i as u32)]));
            if i % 2 == 0 {
                let a = set(rtype::A, vec![vec![198, 18, 0, 1]], i as u32);
                nodes.insert(name(&format!("ns.{cut}")), node(vec![a]));
            }
            if i % 7 == 0 {
                let txt = set(rtype::TXT, vec![vec![1, b'x']], i as u32);
                nodes.insert(name(&format!("x.y.{cut}")), node(vec![txt]));
            }
            if i % 5 == 0 {
                let a = set(rtype::A, vec![vec![198, 18, 0, 2]], i as u32);
                nodes.insert(name(&format!("a.b{i}.c.example.")), node(vec![a]));
            }
        }
        nodes
    }

    #[test]
    fn threads_find_what_one_pass_finds_in_the_same_order() {
        let apex = name("example.");
        let source = ZoneSource {
            name: "z.zone",
            locations: None,
        };
        let mut nodes = nodes(3000);
        let (w1, mut e1) = check_nodes_on(&apex, &nodes, &source, 1).unwrap();
        assert!(w1.iter().any(|w| w.contains("occluded")), "{w1:?}");
        assert!(w1.iter().any(|w| w.contains("no glue")), "{w1:?}");
        e1.sort_by_key(|n| n.to_string());
        assert!(e1.contains(&name("b5.c.example.")) && e1.contains(&name("c.example.")));
        for threads in [2, 3, 8] {
            let (w, mut e) = check_nodes_on(&apex, &nodes, &source, threads).unwrap();
            assert_eq!(w, w1, "{threads} threads");
            e.sort_by_key(|n| n.to_string());
            assert_eq!(e, e1, "{threads} threads");
        }
        // The first error in iteration order, whatever the threads.
        for i in [10, 2000] {
            let bad = node_with_cname_and_a(i);
            nodes.insert(name(&format!("bad{i}.example.")), bad);
        }
        let one = check_nodes_on(&apex, &nodes, &source, 1).unwrap_err();
        assert!(one.message.contains("CNAME and other data"), "{one}");
        for threads in [2, 3, 8] {
            let e = check_nodes_on(&apex, &nodes, &source, threads).unwrap_err();
            assert_eq!(e.to_string(), one.to_string(), "{threads} threads");
        }
    }

    fn node_with_cname_and_a(i: u32) -> Node {
        let target = name("t.example.").wire().to_vec();
        Node {
            rrsets: vec![
                set(rtype::A, vec![vec![198, 18, 0, 3]], i),
                set(rtype::CNAME, vec![target], i),
            ],
            children: 0,
        }
    }
}
