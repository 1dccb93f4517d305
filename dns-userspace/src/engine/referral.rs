//! Referrals (RFC 1034 §4.3.2 step 3b): the delegation's NS RRset in the authority section,
//! DS or the proof of its absence with DNSSEC (RFC 4035 §3.1.4), and glue (RFC 9471).

use super::resolve::{set, Ctx, Kind, Part};
use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype};
use crate::zone::RRset;

impl<'z> Ctx<'z> {
    pub(super) fn referral(&mut self, cut: &Name, ns: &'z RRset, after_chain: bool) {
        if !after_chain {
            self.res.aa = false;
            self.res.kind = Kind::Referral;
            self.res.anchor = Some(cut.clone());
        }
        self.res.authority.push(set(cut, ns));
        if self.dnssec {
            let zone = self.zone;
            let node = zone.node(cut).map(|(_, n)| n);
            match node.and_then(|n| n.get(rtype::DS)) {
                Some(ds) => self.add(Part::Authority, cut, ds),
                None => self.deny_ds(cut),
            }
        }
        for rd in &ns.rdatas {
            if let Some((target, _)) = read_name(rd) {
                let in_domain = target.is_subdomain_of(cut);
                self.address_records(&target, in_domain, true);
            }
        }
    }
}
