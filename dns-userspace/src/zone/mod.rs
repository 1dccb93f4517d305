//! An authoritative zone in memory: nodes by name (empty non-terminals included), RRsets per
//! node with their RRSIGs attached, and the lookups the answer engine needs.
//!
//! The nodes, the NSEC chain and the NSEC3 chain are persistent maps (`imbl`): a clone of a
//! zone is cheap and shares everything, so `Zone::apply` (in `apply`) makes the next version
//! from a change without rebuilding the zone, while the old version keeps serving unchanged.
//! Records that `Zone::build` sets aside (RRSIGs covering nothing, NSEC3 records of other
//! parameters) are kept beside the nodes, so that `records` gives back the whole record set
//! and a later change that completes them finds them.

mod apply;
mod build;
mod build_checks;
pub mod load;
pub mod nsec3;
mod records;

use std::sync::Arc;

pub use apply::Change;
pub use build::{ZoneError, ZoneSource};

use crate::wire::name::{Name, NameRef};
use crate::wire::record::{rtype, Record};

/// All records of one type at one name, with the RRSIGs that cover them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    pub rtype: u16,
    pub ttl: u32,
    pub rdatas: Vec<Vec<u8>>,
    /// RRSIG RDATAs covering this RRset.
    pub sigs: Vec<Vec<u8>>,
    pub sig_ttl: u32,
    /// Index of the RRset's first record in its source, for messages.
    pub first: u32,
}

/// A name in the zone. A node without RRsets is an empty non-terminal.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub rrsets: Vec<RRset>,
    /// Nodes whose parent this is (so that an empty non-terminal goes with its last child).
    children: u32,
}

impl Node {
    pub fn get(&self, t: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == t)
    }

    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// How a name relates to the zone cuts on the way down from the apex.
pub enum Position<'z> {
    /// Authoritative data (or the absence of it) at or above the name.
    Authoritative,
    /// The name is at or below a delegation point (`cut`, with its NS RRset).
    Delegated { cut: Name, ns: &'z RRset },
    /// The name is strictly below a DNAME owner.
    BelowDname { owner: Name, dname: &'z RRset },
}

/// Nodes by owner name: keys compare case-insensitively and keep the zone's case. FxHash: keys
/// come from the zone file, and lookups by query names cannot lengthen chains. A persistent
/// hash map (HAMT): versions of a zone share the nodes a change does not touch.
pub type NodeMap =
    imbl::GenericHashMap<Name, Node, rustc_hash::FxBuildHasher, imbl::shared_ptr::DefaultSharedPtr>;

/// One zone. A clone is cheap (the maps are shared until one of the copies changes).
#[derive(Clone, Debug)]
pub struct Zone {
    apex: Name,
    /// Owner names in original case, keyed case-insensitively.
    nodes: NodeMap,
    /// NSEC owners in canonical order, for covering-NSEC lookups.
    nsec_chain: imbl::OrdSet<Name>,
    /// Records `build` does not serve: RRSIGs that cover no RRset, NSEC3 records whose
    /// parameters are not the zone's (usually none).
    unattached: Arc<Vec<Record>>,
    /// NSEC3 records, when the zone is NSEC3-signed.
    nsec3: Option<nsec3::Nsec3Chain>,
    /// min(SOA TTL, MINIMUM); `None` when the SOA RDATA cannot be read.
    negative_ttl: Option<u32>,
    /// The file(s) this zone came from, for messages.
    pub source: String,
}

impl Zone {
    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The node at `name` and its name in the zone's case.
    pub fn node(&self, name: &Name) -> Option<(&Name, &Node)> {
        self.node_ref(name.as_name_ref())
    }

    /// `node`, for a borrowed name.
    pub fn node_ref(&self, name: &NameRef) -> Option<(&Name, &Node)> {
        self.nodes.get_key_value(name)
    }

    pub fn apex_node(&self) -> &Node {
        self.nodes
            .get(&self.apex)
            .expect("zone checks guarantee an apex")
    }

    pub fn soa(&self) -> &RRset {
        self.apex_node()
            .get(rtype::SOA)
            .expect("zone checks guarantee an SOA")
    }

    /// TTL for the SOA in negative answers (RFC 2308 §3): min(SOA TTL, MINIMUM). `None` when
    /// the SOA RDATA is malformed (which `Zone::build` refuses): the zone cannot be served.
    pub fn negative_ttl(&self) -> Option<u32> {
        self.negative_ttl
    }

    /// Whether the zone carries DNSSEC signatures.
    pub fn is_signed(&self) -> bool {
        !self.soa().sigs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.nodes.iter()
    }

    /// Walks from the apex down towards `qname` and reports the first zone cut or DNAME met.
    /// A delegation at `qname` itself counts (the caller handles DS at the cut).
    pub fn position(&self, qname: &Name) -> Position<'_> {
        let depth = qname.label_count();
        for n in self.apex.label_count() + 1..=depth {
            let Some((owner, node)) = self.node_ref(qname.suffix_ref(n)) else {
                break;
            };
            if let Some(ns) = node.get(rtype::NS) {
                return Position::Delegated {
                    cut: owner.clone(),
                    ns,
                };
            }
            if n < depth {
                if let Some(dname) = node.get(rtype::DNAME) {
                    return Position::BelowDname {
                        owner: owner.clone(),
                        dname,
                    };
                }
            }
        }
        if depth > self.apex.label_count() {
            // DNAME at the apex applies to every name below it.
            if let Some(dname) = self.apex_node().get(rtype::DNAME) {
                return Position::BelowDname {
                    owner: self.apex.clone(),
                    dname,
                };
            }
        }
        Position::Authoritative
    }

    /// The closest encloser of `qname` (RFC 5155 §1.3): the longest existing ancestor.
    pub fn closest_encloser(&self, qname: &Name) -> Name {
        let mut n = qname.clone();
        while let Some(p) = n.parent() {
            if self.nodes.contains_key(&p) {
                return p;
            }
            if p == self.apex {
                break;
            }
            n = p;
        }
        self.apex.clone()
    }

    /// The NSEC3 chain of an NSEC3-signed zone.
    pub fn nsec3(&self) -> Option<&nsec3::Nsec3Chain> {
        self.nsec3.as_ref()
    }

    /// The NSEC owner that covers or matches `name`: the last NSEC owner ≤ name in canonical
    /// order (wrapping to the last one).
    pub fn nsec_for(&self, name: &Name) -> Option<&Name> {
        self.nsec_chain
            .get_prev(name)
            .or_else(|| self.nsec_chain.get_max())
    }
}
