//! A query corpus generated from the zone files themselves, for the differential test.
//!
//! Deterministic for a given seed (a xorshift64* generator; no dependencies). For every zone:
//!
//! - names: the apex, every owner name, delegation points and names below them (glue and
//!   random ones), empty non-terminals, wildcard owners and names they match (one and two
//!   labels deep), CNAME and DNAME owners and names below DNAMEs (random, ones that map onto
//!   existing names, and one of 255 octets whose substitution may overflow), three NSEC3 owner
//!   names (hashed names, taken from the file), and non-existent names (random labels below the
//!   apex, below existing names and below empty non-terminals);
//! - types: for each name the types present at its node (and RRSIG when signed), A, ANY,
//!   TYPE65000 and the types that matter for its kind (DS at apexes and delegations, CNAME and
//!   DNAME around aliases, NSEC3 at NSEC3 owners...), and a random sample
//!   (`Params::random_types`) of every type present in the zone plus A, AAAA, NS, SOA, MX, TXT,
//!   DS, DNSKEY, RRSIG, NSEC, NSEC3, CNAME, DNAME, ANY and TYPE65000;
//! - per query, at random: EDNS absent, 512, 1232 or 4096; DO 0/1 (with EDNS); 0x20 case on
//!   the name; RD and CD; UDP or TCP; IPv4 or IPv6; the ID; and a share of (name, type) pairs
//!   is asked twice with different options (`Params::repeat_percent`).
//!
//! Plus a few names outside every zone (REFUSED).

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context as _, Result};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::rtype;
use xdpdns::zone::load::{load_zone, ZoneSpec};
use xdpdns::zone::Zone;

use crate::client::Q;

/// xorshift64* (Vigna): small, fast and good enough to pick test cases.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Never zero; mix the seed a little so that nearby seeds differ.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 32) as usize * n) >> 32
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    /// A random label: 1 to 12 octets of [a-z0-9-], not starting or ending with '-'.
    pub fn label(&mut self) -> String {
        const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 1 + self.below(12);
        let mut s = String::with_capacity(len);
        for i in 0..len {
            if i > 0 && i + 1 < len && self.chance(1, 10) {
                s.push('-');
            } else {
                s.push(*self.pick(CH) as char);
            }
        }
        s
    }
}

/// What kind of name a query asks for, relative to its zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    Apex,
    /// An owner name with data (not one of the kinds below).
    Existing,
    /// A delegation point (NS below the apex).
    Delegation,
    /// An owner name below a delegation (glue or occluded data).
    Glue,
    /// A name that is not in the zone but below a delegation.
    BelowDelegation,
    EmptyNonTerminal,
    /// A `*` owner name itself.
    WildcardOwner,
    /// A name a wildcard matches.
    WildcardMatch,
    /// An owner of a CNAME.
    CnameOwner,
    /// An owner of a DNAME.
    DnameOwner,
    /// A name below a DNAME owner.
    BelowDname,
    /// The owner of an NSEC3 record (a hashed name).
    Nsec3Owner,
    /// A name that does not exist (and no wildcard matches).
    NonExistent,
    /// A name outside every zone.
    OutOfZone,
}

impl NameKind {
    pub fn name(self) -> &'static str {
        match self {
            NameKind::Apex => "apex",
            NameKind::Existing => "existing",
            NameKind::Delegation => "delegation",
            NameKind::Glue => "glue",
            NameKind::BelowDelegation => "below-delegation",
            NameKind::EmptyNonTerminal => "empty-non-terminal",
            NameKind::WildcardOwner => "wildcard-owner",
            NameKind::WildcardMatch => "wildcard-match",
            NameKind::CnameOwner => "cname-owner",
            NameKind::DnameOwner => "dname-owner",
            NameKind::BelowDname => "below-dname",
            NameKind::Nsec3Owner => "nsec3-owner",
            NameKind::NonExistent => "nonexistent",
            NameKind::OutOfZone => "out-of-zone",
        }
    }
}

/// A type that exists nowhere (in the private-use range).
pub const TYPE_UNKNOWN: u16 = 65000;

/// Types asked in every zone, besides the ones the zone holds.
pub const COMMON_TYPES: &[u16] = &[
    rtype::A,
    rtype::AAAA,
    rtype::NS,
    rtype::SOA,
    rtype::MX,
    rtype::TXT,
    rtype::DS,
    rtype::DNSKEY,
    rtype::RRSIG,
    rtype::NSEC,
    rtype::NSEC3,
    rtype::CNAME,
    rtype::DNAME,
    rtype::ANY,
    TYPE_UNKNOWN,
];

/// EDNS choices: none, or the payload size.
pub const EDNS_CHOICES: &[Option<u16>] = &[None, Some(512), Some(1232), Some(4096)];

/// One query of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusQuery {
    /// The zone the name was made from (its apex, lower case); `-` for out-of-zone names.
    pub zone: String,
    pub kind: NameKind,
    /// The name as sent (0x20 case applied), absolute.
    pub qname: String,
    pub qtype: u16,
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
    pub rd: bool,
    pub cd: bool,
    pub tcp: bool,
    pub ipv6: bool,
    pub id: u16,
}

impl CorpusQuery {
    /// The query message builder.
    pub fn q(&self) -> Q {
        let mut q = Q::new(&self.qname, self.qtype);
        q.id = self.id;
        q.rd = self.rd;
        q.cd = self.cd;
        q.edns = self.edns;
        q.dnssec_ok = self.dnssec_ok;
        q
    }

    pub fn wire(&self) -> Vec<u8> {
        self.q().wire()
    }

    /// The query name, lower case.
    pub fn qname_lower(&self) -> String {
        self.qname.to_ascii_lowercase()
    }

    pub fn type_name(&self) -> String {
        rtype::to_string(self.qtype)
    }
}

impl fmt::Display for CorpusQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zone {} | {} {} ({}) | DO={} EDNS={} {}{} {}{}",
            self.zone,
            self.qname,
            self.type_name(),
            self.kind.name(),
            self.dnssec_ok as u8,
            self.edns.map_or("none".to_owned(), |p| p.to_string()),
            if self.tcp { "TCP" } else { "UDP" },
            if self.ipv6 { "/v6" } else { "/v4" },
            if self.rd { "RD " } else { "" },
            if self.cd { "CD" } else { "" },
        )
    }
}

/// Corpus parameters.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    /// Types drawn at random per name, besides the node's own types, A, ANY and TYPE65000.
    pub random_types: usize,
    /// Percent of (name, type) pairs asked a second time with other random options.
    pub repeat_percent: usize,
    /// Percent of queries sent over TCP.
    pub tcp_percent: usize,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            seed: 0x5eed_d1ff_0000_0001,
            random_types: 8,
            repeat_percent: 30,
            tcp_percent: 25,
        }
    }
}

/// The generated corpus.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub queries: Vec<CorpusQuery>,
    /// Distinct names per zone, in the order of the specs.
    pub names_per_zone: Vec<(String, usize)>,
}

/// Builds the corpus for `specs`.
pub fn generate(specs: &[ZoneSpec], params: &Params) -> Result<Corpus> {
    let mut rng = Rng::new(params.seed);
    let mut corpus = Corpus::default();
    for spec in specs {
        let (zone, _warnings) =
            load_zone(spec).with_context(|| format!("loading {}", spec.file.display()))?;
        let mut names = names_for(&zone, &mut rng);
        // NSEC3 owners live outside the name tree (the zone may not list them as nodes): take
        // them from the file, a few per zone.
        let mut have = names
            .iter()
            .filter(|(_, k)| *k == NameKind::Nsec3Owner)
            .count();
        for owner in nsec3_owners(spec)? {
            if have >= 3 {
                break;
            }
            if !names.iter().any(|(n, _)| *n == owner) {
                names.push((owner, NameKind::Nsec3Owner));
                have += 1;
            }
        }
        let apex = zone.apex().to_string().to_ascii_lowercase();
        corpus.names_per_zone.push((apex, names.len()));
        corpus
            .queries
            .extend(queries_for_names(&zone, &names, params, &mut rng));
    }
    // Names in no zone: REFUSED from both.
    let out: Vec<String> = vec![
        ".".into(),
        "test.".into(),
        format!("{}.test.", rng.label()),
        format!("{}.invalid.", rng.label()),
    ];
    for name in out {
        for qtype in [rtype::A, rtype::NS, rtype::SOA, rtype::ANY] {
            let name = Name::parse(&name, None).expect("valid name");
            corpus.queries.push(query(
                "-",
                NameKind::OutOfZone,
                &name,
                qtype,
                params,
                &mut rng,
            ));
        }
    }
    Ok(corpus)
}

/// The queries for `names` of `zone` (from `names_for`, say): for each name the types of
/// `types_for_name`, some asked twice (`Params::repeat_percent`), with random options.
pub fn queries_for_names(
    zone: &Zone,
    names: &[(Name, NameKind)],
    params: &Params,
    rng: &mut Rng,
) -> Vec<CorpusQuery> {
    let types = types_for(zone);
    let apex = zone.apex().to_string().to_ascii_lowercase();
    let mut out = Vec::new();
    for (name, kind) in names {
        for qtype in types_for_name(zone, name, *kind, &types, params, rng) {
            let n = if rng.chance(params.repeat_percent, 100) {
                2
            } else {
                1
            };
            for _ in 0..n {
                out.push(query(&apex, *kind, name, qtype, params, rng));
            }
        }
    }
    out
}

fn query(
    zone: &str,
    kind: NameKind,
    name: &Name,
    qtype: u16,
    params: &Params,
    rng: &mut Rng,
) -> CorpusQuery {
    let edns = *rng.pick(EDNS_CHOICES);
    CorpusQuery {
        zone: zone.to_owned(),
        kind,
        qname: random_case(&name.to_string(), rng),
        qtype,
        edns,
        dnssec_ok: edns.is_some() && rng.chance(1, 2),
        rd: rng.chance(1, 4),
        cd: rng.chance(1, 4),
        tcp: rng.chance(params.tcp_percent, 100),
        ipv6: rng.chance(1, 2),
        id: rng.next_u64() as u16,
    }
}

/// Flips the case of each letter with probability 1/2 (DNS 0x20).
pub fn random_case(name: &str, rng: &mut Rng) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && rng.chance(1, 2) {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// All types asked in a zone: the common ones and every type the zone holds.
fn types_for(zone: &Zone) -> Vec<u16> {
    let mut t: BTreeSet<u16> = COMMON_TYPES.iter().copied().collect();
    for (_, node) in zone.nodes() {
        for s in &node.rrsets {
            t.insert(s.rtype);
        }
    }
    t.into_iter().collect()
}

fn types_for_name(
    zone: &Zone,
    name: &Name,
    kind: NameKind,
    all: &[u16],
    params: &Params,
    rng: &mut Rng,
) -> Vec<u16> {
    let mut t: BTreeSet<u16> = [rtype::A, rtype::ANY, TYPE_UNKNOWN].into_iter().collect();
    // The types that matter most for each kind of name, always asked.
    t.extend(match kind {
        NameKind::Apex => &[rtype::SOA, rtype::NS, rtype::DS, rtype::DNSKEY][..],
        NameKind::Delegation | NameKind::BelowDelegation => &[rtype::NS, rtype::DS][..],
        NameKind::CnameOwner | NameKind::WildcardMatch => &[rtype::CNAME, rtype::RRSIG][..],
        NameKind::DnameOwner | NameKind::BelowDname => &[rtype::CNAME, rtype::DNAME][..],
        NameKind::Nsec3Owner => &[rtype::NSEC3, rtype::RRSIG][..],
        NameKind::NonExistent | NameKind::EmptyNonTerminal => &[rtype::NSEC, rtype::DS][..],
        _ => &[][..],
    });
    if let Some((_, node)) = zone.node(name) {
        t.extend(node.rrsets.iter().map(|s| s.rtype));
        if node.rrsets.iter().any(|s| !s.sigs.is_empty()) {
            t.insert(rtype::RRSIG);
        }
    }
    for _ in 0..params.random_types {
        t.insert(*rng.pick(all));
    }
    t.into_iter().collect()
}

/// Owner names of the NSEC3 records in the zone file, in canonical order.
fn nsec3_owners(spec: &ZoneSpec) -> Result<Vec<Name>> {
    let parsed = xdpdns::zonefile::parse_file(&spec.file, &spec.origin)
        .map_err(|e| anyhow::anyhow!("{}: {e}", spec.file.display()))?;
    let owners: BTreeSet<Name> = parsed
        .records
        .into_iter()
        .filter(|r| r.rtype == rtype::NSEC3)
        .map(|r| r.owner)
        .collect();
    Ok(owners.into_iter().collect())
}

fn is_nsec3_only(node: &xdpdns::zone::Node) -> bool {
    !node.rrsets.is_empty() && node.rrsets.iter().all(|s| s.rtype == rtype::NSEC3)
}

/// The names asked in a zone, with their kinds, in a fixed order.
pub fn names_for(zone: &Zone, rng: &mut Rng) -> Vec<(Name, NameKind)> {
    let apex = zone.apex().clone();
    let mut nodes: Vec<(Name, &xdpdns::zone::Node)> =
        zone.nodes().map(|(n, node)| (n.clone(), node)).collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let cuts: Vec<Name> = nodes
        .iter()
        .filter(|(n, node)| *n != apex && node.get(rtype::NS).is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let below_cut = |n: &Name| cuts.iter().any(|c| n != c && n.is_subdomain_of(c));
    let mut out: Vec<(Name, NameKind)> = Vec::new();
    let mut nsec3 = 0;
    // Names that exist: every node, classified.
    for (name, node) in &nodes {
        let kind = if *name == apex {
            NameKind::Apex
        } else if is_nsec3_only(node) {
            nsec3 += 1;
            if nsec3 > 3 {
                continue;
            }
            NameKind::Nsec3Owner
        } else if below_cut(name) {
            NameKind::Glue
        } else if node.get(rtype::NS).is_some() {
            NameKind::Delegation
        } else if node.is_empty_non_terminal() {
            NameKind::EmptyNonTerminal
        } else if name.is_wildcard() {
            NameKind::WildcardOwner
        } else if node.get(rtype::CNAME).is_some() {
            NameKind::CnameOwner
        } else if node.get(rtype::DNAME).is_some() {
            NameKind::DnameOwner
        } else {
            NameKind::Existing
        };
        out.push((name.clone(), kind));
    }
    let add = |out: &mut Vec<(Name, NameKind)>, base: &Name, labels: &[String], k| {
        let mut n = base.clone();
        for l in labels.iter().rev() {
            match n.prepend(l.as_bytes()) {
                Ok(m) => n = m,
                Err(_) => return,
            }
        }
        if zone.node(&n).is_none() && !out.iter().any(|(m, _)| *m == n) {
            out.push((n, k));
        }
    };
    for (name, node) in &nodes {
        if is_nsec3_only(node) {
            continue;
        }
        if cuts.contains(name) {
            add(&mut out, name, &[rng.label()], NameKind::BelowDelegation);
            add(
                &mut out,
                name,
                &[rng.label(), rng.label()],
                NameKind::BelowDelegation,
            );
            continue;
        }
        if below_cut(name) {
            continue;
        }
        if name.is_wildcard() {
            let parent = name.parent().expect("wildcard has a parent");
            add(&mut out, &parent, &[rng.label()], NameKind::WildcardMatch);
            add(
                &mut out,
                &parent,
                &[rng.label(), rng.label()],
                NameKind::WildcardMatch,
            );
            continue;
        }
        if let Some(d) = node.get(rtype::DNAME) {
            add(&mut out, name, &[rng.label()], NameKind::BelowDname);
            add(&mut out, name, &["www".into()], NameKind::BelowDname);
            // Names that the DNAME maps onto existing names.
            if let Some((target, _)) = xdpdns::wire::record::read_name(&d.rdatas[0]) {
                for (m, _) in &nodes {
                    if m != &target && m.is_subdomain_of(&target) {
                        if let Ok(mapped) = m.replace_suffix(&target, name) {
                            add(&mut out, &mapped, &[], NameKind::BelowDname);
                        }
                    }
                }
                add(
                    &mut out,
                    name,
                    &[rng.label(), rng.label()],
                    NameKind::BelowDname,
                );
            }
            // As long as a name can be: the substitution overflows when the target is longer
            // than the owner (YXDOMAIN, RFC 6672 §2.2).
            if let Some(long) = longest_below(name) {
                add(&mut out, &long, &[], NameKind::BelowDname);
            }
            continue;
        }
        // Non-existent names below this one: always below the apex and empty non-terminals,
        // below every other name half of the time. A wildcard child turns them into matches.
        let wildcard_below = name
            .wildcard()
            .ok()
            .is_some_and(|w| zone.node(&w).is_some());
        let kind = if wildcard_below {
            NameKind::WildcardMatch
        } else {
            NameKind::NonExistent
        };
        let count = if *name == apex {
            4
        } else if node.is_empty_non_terminal() || rng.chance(1, 2) {
            1
        } else {
            0
        };
        for _ in 0..count {
            add(&mut out, name, &[rng.label()], kind);
        }
        if *name == apex {
            // Two labels below the apex: the parent does not exist either.
            add(&mut out, name, &[rng.label(), rng.label()], kind);
        }
    }
    out
}

/// A name below `base` of (nearly) 255 octets, made of `x` labels.
fn longest_below(base: &Name) -> Option<Name> {
    let mut n = base.clone();
    loop {
        let room = 255usize.checked_sub(n.wire().len())?;
        if room < 2 {
            return Some(n);
        }
        let len = (room - 1).min(63);
        n = n.prepend(&vec![b'x'; len]).ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let va: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
        assert_eq!(va, vb);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[a.below(4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn labels_are_valid() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let l = r.label();
            assert!(!l.is_empty() && l.len() <= 12);
            assert!(!l.starts_with('-') && !l.ends_with('-'));
        }
    }
}
