//! Finding the answer to a question inside one zone (RFC 1034 §4.3.2 with RFC 2308, RFC 4592,
//! RFC 6672 and RFC 4035 §3.1): exact answers, CNAME chains, wildcards, DNAME, referrals with
//! glue, NXDOMAIN and NODATA, with RRSIGs and NSEC proofs when DO is set on a signed zone.

use std::borrow::Cow;

use super::writer::OutSet;
use crate::wire::name::Name;
use crate::wire::record::{class, read_name, rtype};
use crate::zone::{Node, Position, RRset, Zone};

/// Longest CNAME/DNAME chain followed inside a zone.
const MAX_CHAIN: usize = 8;

/// The sections of an answer, before rendering.
#[derive(Debug, Default)]
pub struct Resolution<'z> {
    pub rcode: u16,
    pub aa: bool,
    pub answer: Vec<OutSet<'z>>,
    /// Authority RRsets; all required (TC when they do not fit).
    pub authority: Vec<OutSet<'z>>,
    /// Additional RRsets, each with whether it is required (in-domain glue, RFC 9471).
    pub additional: Vec<(OutSet<'z>, bool)>,
    /// What the XDP counters call this answer.
    pub kind: Kind,
    /// For referrals and NXDOMAIN: the cut or closest encloser. The answer is the same for all
    /// names below it, and the writer compresses only against it and its ancestors.
    pub anchor: Option<Name>,
}

/// Answer kinds, as the XDP counters see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Exact,
    Referral,
    Negative,
    Chaos,
}

pub(crate) fn set<'z>(owner: &Name, s: &'z RRset) -> OutSet<'z> {
    OutSet {
        owner: owner.clone(),
        rtype: s.rtype,
        class: class::IN,
        ttl: s.ttl,
        rdatas: Cow::Borrowed(&s.rdatas),
    }
}

pub(crate) fn sigs<'z>(owner: &Name, s: &'z RRset) -> OutSet<'z> {
    OutSet {
        owner: owner.clone(),
        rtype: rtype::RRSIG,
        class: class::IN,
        ttl: s.sig_ttl,
        rdatas: Cow::Borrowed(&s.sigs),
    }
}

pub(super) struct Ctx<'z> {
    pub(super) zone: &'z Zone,
    pub(super) dnssec: bool,
    tcp: bool,
    /// TTL of the SOA in negative answers.
    negative_ttl: u32,
    pub(super) res: Resolution<'z>,
}

impl<'z> Ctx<'z> {
    /// Pushes an RRset and, with DNSSEC, its signatures.
    pub(super) fn add(&mut self, to: Part, owner: &Name, s: &'z RRset) {
        let mut v = vec![set(owner, s)];
        if self.dnssec && !s.sigs.is_empty() {
            v.push(sigs(owner, s));
        }
        for o in v {
            match to {
                Part::Answer => self.res.answer.push(o),
                Part::Authority => {
                    if !self
                        .res
                        .authority
                        .iter()
                        .any(|a| a.owner == o.owner && a.rtype == o.rtype && a.rdatas == o.rdatas)
                    {
                        self.res.authority.push(o)
                    }
                }
                Part::Additional(required) => self.res.additional.push((o, required)),
            }
        }
    }

    /// The SOA for a negative answer, with the negative TTL (RFC 2308 §3).
    fn negative_soa(&mut self) {
        let apex = self.zone.apex().clone();
        let soa = self.zone.soa();
        let mut o = set(&apex, soa);
        o.ttl = self.negative_ttl;
        self.res.authority.push(o);
        if self.dnssec && !soa.sigs.is_empty() {
            let mut s = sigs(&apex, soa);
            s.ttl = self.negative_ttl.min(soa.sig_ttl);
            self.res.authority.push(s);
        }
    }

    /// Answers from an existing node (or a wildcard node standing in for `qname`).
    /// Returns the next name when a CNAME is to be followed.
    fn answer_node(&mut self, qname: &Name, node: &'z Node, qtype: u16) -> Option<Name> {
        if qtype == rtype::ANY && !node.rrsets.is_empty() {
            // RFC 8482: over UDP, one RRset is enough.
            let take = if self.tcp { node.rrsets.len() } else { 1 };
            for s in node
                .rrsets
                .iter()
                .filter(|s| s.rtype != rtype::RRSIG)
                .take(take)
            {
                self.add(Part::Answer, qname, s);
                // Over TCP every RRset at the name matches, the RRSIGs too, DO or not
                // (RFC 3225 §3).
                if self.tcp && !self.dnssec && !s.sigs.is_empty() {
                    self.res.answer.push(sigs(qname, s));
                }
            }
            return None;
        }
        if qtype == rtype::RRSIG && node.rrsets.iter().any(|s| !s.sigs.is_empty()) {
            for s in &node.rrsets {
                if !s.sigs.is_empty() {
                    self.res.answer.push(sigs(qname, s));
                }
            }
            return None;
        }
        if let Some(s) = node.get(qtype) {
            self.add(Part::Answer, qname, s);
            self.additional_for(s);
            return None;
        }
        if let Some(c) = node.get(rtype::CNAME) {
            self.add(Part::Answer, qname, c);
            return read_name(&c.rdatas[0]).map(|(n, _)| n);
        }
        // NODATA
        self.res.kind = Kind::Negative;
        self.negative_soa();
        None
    }
}

#[derive(Clone, Copy)]
pub(super) enum Part {
    Answer,
    Authority,
    Additional(bool),
}

/// Resolves `qname`/`qtype` (class IN) in `zone`.
pub fn resolve<'z>(
    zone: &'z Zone,
    qname: &Name,
    qtype: u16,
    dnssec_ok: bool,
    tcp: bool,
) -> Resolution<'z> {
    let Some(negative_ttl) = zone.negative_ttl() else {
        // The SOA cannot be read (`Zone::build` refuses such zones): nothing is served.
        return Resolution {
            rcode: super::query::RCODE_SERVFAIL,
            ..Default::default()
        };
    };
    let mut cx = Ctx {
        zone,
        dnssec: dnssec_ok && zone.is_signed(),
        tcp,
        negative_ttl,
        res: Resolution {
            aa: true,
            ..Default::default()
        },
    };
    let mut name = qname.clone();
    let mut seen: Vec<Name> = Vec::new();
    for _ in 0..MAX_CHAIN {
        if !name.is_subdomain_of(zone.apex()) || seen.contains(&name) {
            break;
        }
        seen.push(name.clone());
        match zone.position(&name) {
            Position::Delegated { cut, ns } if !(cut == name && qtype == rtype::DS) => {
                // After a CNAME chain the referral follows it, in an authoritative answer
                // (RFC 1034 §4.3.2 step 3.b, after the restart).
                let chained = !cx.res.answer.is_empty();
                cx.referral(&cut, ns, chained);
                break;
            }
            Position::BelowDname { owner, dname } => {
                cx.add(Part::Answer, &owner, dname);
                let Some((target, _)) = read_name(&dname.rdatas[0]) else {
                    break;
                };
                match name.replace_suffix(&owner, &target) {
                    Ok(next) => {
                        cx.res.answer.push(OutSet {
                            owner: name.clone(),
                            rtype: rtype::CNAME,
                            class: class::IN,
                            ttl: dname.ttl,
                            rdatas: Cow::Owned(vec![next.wire().to_vec()]),
                        });
                        if qtype == rtype::CNAME {
                            // The synthesized CNAME is the answer (RFC 6672 §3.2).
                            break;
                        }
                        name = next;
                        continue;
                    }
                    Err(_) => {
                        cx.res.rcode = super::query::RCODE_YXDOMAIN;
                        break;
                    }
                }
            }
            _ => {}
        }
        if let Some((_, node)) = zone.node(&name) {
            let before = cx.res.answer.len();
            let next = cx.answer_node(&name, node, qtype);
            if cx.res.kind == Kind::Negative {
                cx.deny_type(&name);
                if before > 0 {
                    cx.res.kind = Kind::Exact;
                }
            }
            match next {
                Some(n) => {
                    name = n;
                    continue;
                }
                None => break,
            }
        }
        // No such name: wildcard (RFC 4592) or NXDOMAIN.
        let ce = zone.closest_encloser(&name);
        let wild = ce.wildcard().ok();
        let wnode = wild.as_ref().and_then(|w| zone.node(w));
        match wnode {
            Some((wname, wnode)) => {
                let wname = wname.clone();
                let before = cx.res.answer.len();
                let next = cx.answer_node(&name, wnode, qtype);
                if cx.res.kind == Kind::Negative {
                    cx.deny_wildcard_type(&name, &wname);
                    if before > 0 {
                        cx.res.kind = Kind::Exact;
                    }
                } else {
                    cx.deny_for_wildcard(&name, &ce);
                }
                match next {
                    Some(n) => {
                        name = n;
                        continue;
                    }
                    None => break,
                }
            }
            None => {
                cx.res.rcode = super::query::RCODE_NXDOMAIN;
                if cx.res.answer.is_empty() {
                    cx.res.kind = Kind::Negative;
                    cx.res.anchor = Some(ce.clone());
                }
                cx.negative_soa();
                cx.deny_name(&name, &ce);
                break;
            }
        }
    }
    cx.res
}
