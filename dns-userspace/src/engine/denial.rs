//! Authenticated denial of existence for pre-signed zones: which NSEC (RFC 4035 §3.1.3) or
//! NSEC3 (RFC 5155 §7.2) records prove a negative or wildcard answer or an unsigned delegation.

use super::resolve::{Ctx, Part};
use crate::wire::name::Name;
use crate::wire::record::rtype;

impl<'z> Ctx<'z> {
    /// The NSEC at `owner`, or the NSEC covering `name` (wrapping), with its signature.
    fn nsec_for(&mut self, name: &Name) {
        let zone = self.zone;
        let Some(owner) = zone.nsec_for(name) else {
            return;
        };
        if let Some((owner, node)) = zone.node(owner) {
            if let Some(nsec) = node.get(rtype::NSEC) {
                let owner = owner.clone();
                self.add(Part::Authority, &owner, nsec);
            }
        }
    }

    fn nsec3_matching(&mut self, name: &Name) -> bool {
        let Some(chain) = self.zone.nsec3() else {
            return false;
        };
        match chain.matching(name) {
            Some((owner, set)) => {
                let owner = owner.clone();
                self.add(Part::Authority, &owner, set);
                true
            }
            None => false,
        }
    }

    fn nsec3_covering(&mut self, name: &Name) {
        let Some(chain) = self.zone.nsec3() else {
            return;
        };
        if let Some((owner, set)) = chain.covering(name) {
            let owner = owner.clone();
            self.add(Part::Authority, &owner, set);
        }
    }

    /// Closest (provable) encloser proof (RFC 5155 §7.2.1): the NSEC3 matching the closest
    /// ancestor of `name` that has one, and the NSEC3 covering the next closer name.
    /// Returns the closest provable encloser.
    fn nsec3_encloser_proof(&mut self, name: &Name) -> Name {
        let apex = self.zone.apex().clone();
        let mut next_closer = name.clone();
        let mut ancestor = name.parent();
        while let Some(a) = ancestor {
            let has = self.zone.nsec3().is_some_and(|c| c.matching(&a).is_some());
            if has || a == apex {
                self.nsec3_matching(&a);
                self.nsec3_covering(&next_closer);
                return a;
            }
            next_closer = a.clone();
            ancestor = a.parent();
        }
        apex
    }

    fn is_nsec3(&self) -> bool {
        self.zone.nsec3().is_some_and(|c| !c.is_empty())
    }

    /// NODATA at an existing name (RFC 4035 §3.1.3.1, RFC 5155 §7.2.3–4).
    pub(super) fn deny_type(&mut self, name: &Name) {
        if !self.dnssec {
            return;
        }
        if self.is_nsec3() {
            if !self.nsec3_matching(name) {
                // Opt-out: no NSEC3 at this name (RFC 5155 §7.2.4).
                self.nsec3_encloser_proof(name);
            }
        } else {
            self.nsec_for(name);
        }
    }

    /// NXDOMAIN (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2). `closest` is the closest encloser.
    pub(super) fn deny_name(&mut self, name: &Name, closest: &Name) {
        if !self.dnssec {
            return;
        }
        if self.is_nsec3() {
            let ce = self.nsec3_encloser_proof(name);
            if let Ok(w) = ce.wildcard() {
                self.nsec3_covering(&w);
            }
        } else {
            self.nsec_for(name);
            if let Ok(w) = closest.wildcard() {
                self.nsec_for(&w);
            }
        }
    }

    /// A wildcard expansion (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6): the query name does not
    /// exist.
    pub(super) fn deny_for_wildcard(&mut self, name: &Name, closest: &Name) {
        if !self.dnssec {
            return;
        }
        if self.is_nsec3() {
            let ncn = name.suffix(closest.label_count() + 1);
            self.nsec3_covering(&ncn);
        } else {
            self.nsec_for(name);
        }
    }

    /// NODATA at a wildcard (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5).
    pub(super) fn deny_wildcard_type(&mut self, name: &Name, wildcard: &Name) {
        if !self.dnssec {
            return;
        }
        if self.is_nsec3() {
            self.nsec3_encloser_proof(name);
            self.nsec3_matching(wildcard);
        } else {
            self.nsec_for(name);
            self.nsec_for(wildcard);
        }
    }

    /// A referral to a delegation without DS (RFC 4035 §3.1.4.1, RFC 5155 §7.2.7).
    pub(super) fn deny_ds(&mut self, cut: &Name) {
        if !self.dnssec {
            return;
        }
        if self.is_nsec3() {
            if !self.nsec3_matching(cut) {
                self.nsec3_encloser_proof(cut);
            }
        } else {
            self.nsec_for(cut);
        }
    }
}
