//! Additional section processing (RFC 1035 §3.3, RFC 2782, RFC 9460 §4.1): address records
//! for the names in NS, MX, SRV and SVCB/HTTPS RDATA, glue for referrals, and the proof that a
//! SVCB target lacks the record type with DNSSEC.

use super::resolve::{set, Ctx, Part};
use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype};
use crate::zone::{Position, RRset};

impl<'z> Ctx<'z> {
    /// A + AAAA for `target` when the zone holds them (additional section processing).
    pub(super) fn address_records(&mut self, target: &Name, required: bool, glue: bool) {
        let zone = self.zone;
        if !target.is_subdomain_of(zone.apex()) {
            return;
        }
        let authoritative = matches!(zone.position(target), Position::Authoritative);
        if !glue && !authoritative {
            return;
        }
        if let Some((owner, node)) = zone.node(target) {
            let owner = owner.clone();
            for t in [rtype::A, rtype::AAAA] {
                if let Some(s) = node.get(t) {
                    if authoritative {
                        // Authoritative data goes with its signatures (RFC 4035 §3.1.1).
                        self.add(Part::Additional(required), &owner, s);
                    } else {
                        // Glue is never signed.
                        self.res.additional.push((set(&owner, s), required));
                    }
                }
            }
        }
    }

    /// Additional section processing for NS, MX and SRV answers (RFC 1035 §3.3, RFC 2782).
    /// RFC 9460 §4.1: with DNSSEC, the proof that a SVCB TargetName in the zone has no
    /// record of the SVCB type, in the additional section.
    fn svcb_target_denial(&mut self, target: &Name, t: u16) {
        let zone = self.zone;
        let lacks = zone.node(target).is_some_and(|(_, n)| n.get(t).is_none());
        if !self.dnssec || !lacks || !matches!(zone.position(target), Position::Authoritative) {
            return;
        }
        let before = self.res.authority.len();
        self.deny_type(target);
        let proof: Vec<_> = self.res.authority.drain(before..).collect();
        self.res
            .additional
            .extend(proof.into_iter().map(|o| (o, false)));
    }

    pub(super) fn additional_for(&mut self, s: &RRset) {
        let off = match s.rtype {
            rtype::NS => 0,
            rtype::MX | rtype::SVCB | rtype::HTTPS => 2,
            rtype::SRV => 6,
            _ => return,
        };
        for rd in &s.rdatas {
            if let Some((target, _)) = rd.get(off..).and_then(read_name) {
                // SVCB/HTTPS "." (the owner itself): nothing to add, as Knot does.
                if target.is_root() {
                    continue;
                }
                self.address_records(&target, false, s.rtype == rtype::NS);
                if matches!(s.rtype, rtype::SVCB | rtype::HTTPS) {
                    self.svcb_target_denial(&target, s.rtype);
                }
            }
        }
    }
}
