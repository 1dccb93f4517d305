//! `Zone::apply` against `Zone::build`: random changes applied in place give the zone that
//! building the changed record set gives (same nodes, RRsets, children, NSEC and NSEC3 chains,
//! unattached records, and the same engine answers), and a change that does not apply is an
//! error.

use std::sync::Arc;

use super::*;
use crate::engine::{Catalog, Engine, EngineConfig, Transport};
use crate::wire::record::Record;
use crate::zone::{Zone, ZoneSource};

const APEX: &str = "example.";
const SOA: &str = "@ 3600 SOA ns1 host 1 7200 3600 1209600 300";

/// Records the random changes draw from (the SOA aside).
const UNIVERSE: &str = r#"
@ 3600 NS ns1
@ 3600 NS ns2
ns1 A 198.18.0.1
ns2 A 198.18.0.2
ns2 AAAA fd00::2
www A 198.18.0.80
www A 198.18.0.81
www AAAA fd00::80
www TXT "web"
alias CNAME www
alias A 198.18.0.9
a.b.ent TXT "deep"
c.b.ent TXT "deep2"
x.y.z.deep TXT "x"
y.z.deep A 198.18.0.7
sub NS ns.sub
sub NS ns2.sub
sub NS ns.other.test.
sub DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.sub A 198.18.1.1
ns2.sub AAAA fd00::1
occ.sub TXT "hidden"
deep.ns.sub A 198.18.1.2
mx MX 10 mail
mx MX 20 mail2
mail A 198.18.0.25
*.wild A 198.18.0.99
*.wild TXT "wild"
dn DNAME other.example.
x.dn A 198.18.0.3
ttl 60 TXT "a"
ttl 120 TXT "b"
www NSEC alias A AAAA TXT RRSIG NSEC
alias NSEC mx CNAME RRSIG NSEC
@ NSEC www NS SOA RRSIG NSEC
www RRSIG A 13 2 3600 20300101000000 20200101000000 1 example. AAAA
www RRSIG A 13 2 3600 20300101000000 20200101000000 2 example. AAAB
www RRSIG TXT 13 2 3600 20300101000000 20200101000000 1 example. AAAC
alias RRSIG CNAME 13 2 3600 20300101000000 20200101000000 1 example. AAAD
nothing RRSIG A 13 2 3600 20300101000000 20200101000000 1 example. AAAE
"#;

/// An NSEC3-signed variant: the parameters, NSEC3 records of them and of others (at an owner
/// of their own: `build` reads NSEC3 records of one owner into one RRset, their TTLs merged,
/// before it sorts out those of other parameters).
const NSEC3_UNIVERSE: &str = r#"
@ 3600 NS ns1
@ 3600 NS ns2
ns1 A 198.18.0.1
www A 198.18.0.80
a.b.ent TXT "deep"
0123456789abcdefghijklmnopqrstuv 300 NSEC3 1 0 0 - 123456789ABCDEFGHIJKLMNOPQRSTUV0 A RRSIG
0123456789abcdefghijklmnopqrstuv 300 NSEC3 1 1 0 - 223456789ABCDEFGHIJKLMNOPQRSTUV0 A
123456789abcdefghijklmnopqrstuv0 300 NSEC3 1 0 0 - 0123456789ABCDEFGHIJKLMNOPQRSTUV NS SOA
323456789abcdefghijklmnopqrstuv0 300 NSEC3 1 0 5 AB 0123456789ABCDEFGHIJKLMNOPQRSTUV NS
223456789abcdefghijklmnopqrstuv0 300 NSEC3 1 0 0 - 0123456789ABCDEFGHIJKLMNOPQRSTUV TXT
0123456789abcdefghijklmnopqrstuv RRSIG NSEC3 13 2 300 20300101000000 20200101000000 1 example. AAAF
not-a-hash 300 NSEC3 1 0 0 - 0123456789ABCDEFGHIJKLMNOPQRSTUV A
"#;

const PARAM: &str = "@ 0 NSEC3PARAM 1 0 0 -";
const PARAM2: &str = "@ 0 NSEC3PARAM 1 0 5 AB";

fn origin() -> Name {
    Name::parse(APEX, None).unwrap()
}

fn parse(text: &str) -> Vec<Record> {
    crate::zonefile::parse_str(&format!("$TTL 3600\n{text}\n"), &origin(), "u.zone")
        .unwrap()
        .records
}

fn soa(serial: u32) -> Record {
    parse(&SOA.replace(" 1 7200", &format!(" {serial} 7200"))).remove(0)
}

fn build(records: &[Record]) -> Result<Zone, ZoneError> {
    let src = ZoneSource {
        name: "reference",
        locations: None,
    };
    Zone::build(origin(), records.to_vec(), &src).map(|(z, _)| z)
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.owner == b.owner && a.rtype == b.rtype && a.rdata == b.rdata
}

/// Why zones `a` (applied) and `b` (built) differ, if they do.
fn differences(a: &Zone, b: &Zone) -> Vec<String> {
    let mut out = Vec::new();
    if a.nodes.len() != b.nodes.len() {
        out.push(format!("{} nodes, built {}", a.nodes.len(), b.nodes.len()));
    }
    for (name, na) in a.nodes.iter() {
        let Some(nb) = b.nodes.get(name) else {
            out.push(format!("{name} is a node, not in the built zone"));
            continue;
        };
        let key = |s: &RRset| (s.rtype, s.ttl, s.rdatas.clone(), s.sigs.clone(), s.sig_ttl);
        let (ka, kb): (Vec<_>, Vec<_>) = (
            na.rrsets.iter().map(key).collect(),
            nb.rrsets.iter().map(key).collect(),
        );
        if ka != kb {
            out.push(format!("{name}: {ka:?} vs built {kb:?}"));
        }
        if na.children != nb.children {
            out.push(format!(
                "{name}: {} children, built {}",
                na.children, nb.children
            ));
        }
    }
    if a.nsec_chain != b.nsec_chain {
        out.push(format!(
            "NSEC chain {:?} vs built {:?}",
            a.nsec_chain, b.nsec_chain
        ));
    }
    if a.nsec3 != b.nsec3 {
        out.push(format!("NSEC3 chain {:?} vs built {:?}", a.nsec3, b.nsec3));
    }
    let sorted = |z: &Zone| {
        let mut v: Vec<_> = z
            .unattached
            .iter()
            // TTLs aside: `build` gives NSEC3 records of other parameters the TTL of the
            // RRset they were read into.
            .map(|r| (r.owner.lower_wire(), r.rtype, r.rdata.clone()))
            .collect();
        v.sort();
        v
    };
    if sorted(a) != sorted(b) {
        out.push(format!(
            "unattached {:?} vs built {:?}",
            a.unattached, b.unattached
        ));
    }
    if a.negative_ttl != b.negative_ttl {
        out.push("negative TTL differs".into());
    }
    out
}

/// The engine's answers from each zone to the same queries are the same octets.
fn same_answers(a: &Zone, b: &Zone, names: &[Name]) {
    let engine = |z: &Zone| {
        let mut c = Catalog::new();
        c.insert(Arc::new(z.clone()));
        Engine::new(c, EngineConfig::default())
    };
    let (ea, eb) = (engine(a), engine(b));
    for name in names {
        for t in [
            rtype::A,
            rtype::AAAA,
            rtype::NS,
            rtype::TXT,
            rtype::MX,
            rtype::DS,
            rtype::NSEC,
            rtype::SOA,
        ] {
            let q = crate::xfr::message::query(7, name, t, None);
            assert_eq!(
                ea.answer(&q, Transport::Udp),
                eb.answer(&q, Transport::Udp),
                "{name} {}",
                rtype::to_string(t)
            );
        }
    }
}

/// Query names: every owner of the universe, names below and beside them.
fn query_names(universe: &[Record]) -> Vec<Name> {
    let mut names: Vec<Name> = universe.iter().map(|r| r.owner.clone()).collect();
    for extra in [
        "nx",
        "q.a.b.ent",
        "b.ent",
        "z.deep",
        "x.sub",
        "a.dn",
        "q.wild",
    ] {
        names.push(Name::parse(extra, Some(&origin())).unwrap());
    }
    names.sort();
    names.dedup();
    names
}

/// Random rounds of changes to a zone of records from `universe`; each applied in place and
/// compared with the zone built from the changed records.
fn random_rounds(universe: &[Record], seed: u64, rounds: usize, extra: &[Record]) {
    let mut rng = Rng(seed);
    let names = query_names(universe);
    let mut serial = 1;
    // Start from the SOA, the apex NS and a random half of the rest.
    let (mut current, mut zone) = loop {
        let mut current: Vec<Record> = vec![soa(serial)];
        current.extend(extra.iter().cloned());
        for r in universe {
            if r.rtype == rtype::NS && r.owner == origin() || rng.below(2) == 0 {
                current.push(r.clone());
            }
        }
        if let Ok(z) = build(&current) {
            break (current, z);
        }
    };
    let (mut applied, mut refused) = (0, 0);
    for round in 0..rounds {
        let mut removed = vec![soa(serial)];
        let mut added = Vec::new();
        for _ in 0..rng.below(5) {
            let r = &current[1 + rng.below(current.len() - 1)];
            if !removed.iter().any(|x| same_record(x, r)) {
                removed.push(r.clone());
            }
        }
        for _ in 0..rng.below(5) {
            let r = &universe[rng.below(universe.len())];
            let here = current.iter().any(|x| same_record(x, r));
            let gone = removed.iter().any(|x| same_record(x, r));
            // Re-adding a removed record is a TTL change.
            if (!here || gone) && !added.iter().any(|x| same_record(x, r)) {
                let mut r = r.clone();
                if gone {
                    r.ttl += 1;
                }
                added.push(r);
            }
        }
        serial += 1;
        added.insert(0, soa(serial));
        let mut next: Vec<Record> = current
            .iter()
            .filter(|r| !removed.iter().any(|x| same_record(x, r)))
            .cloned()
            .collect();
        next.extend(added.iter().cloned());
        let change = Change {
            removed: removed.iter().collect(),
            added: added.iter().collect(),
        };
        let got = zone.apply(&[change], "test change");
        // The version applied to is as it was (its maps are shared, never changed).
        let d = differences(&zone, &build(&current).unwrap());
        assert!(
            d.is_empty(),
            "round {round} (seed {seed}), old version: {d:#?}"
        );
        match (got, build(&next)) {
            (Ok((z, _)), Ok(want)) => {
                let d = differences(&z, &want);
                assert!(d.is_empty(), "round {round} (seed {seed}): {d:#?}");
                same_answers(&z, &want, &names);
                // The diff between the versions, owner by owner, is the one between their
                // whole record sets.
                let key = |mut v: Vec<Record>| {
                    v.sort_by(|a, b| {
                        (a.owner.lower_wire(), a.rtype, &a.rdata, a.ttl).cmp(&(
                            b.owner.lower_wire(),
                            b.rtype,
                            &b.rdata,
                            b.ttl,
                        ))
                    });
                    v
                };
                let (removed, added) = z.changes_from(&zone);
                let whole =
                    crate::xfr::journal::diff(&origin(), &zone.records(), &z.records()).unwrap();
                assert_eq!(key(removed), key(whole.removed), "round {round}");
                assert_eq!(key(added), key(whole.added), "round {round}");
                // The next round starts from what the zone holds (TTLs as served).
                current = z.records();
                zone = z;
                applied += 1;
            }
            (Err(e), Err(_)) => {
                if std::env::var_os("APPLY_TRACE").is_some() {
                    eprintln!("refused: {e}");
                }
                serial -= 1;
                refused += 1;
            }
            (Ok(_), Err(e)) => panic!("round {round} (seed {seed}): applied, but build says {e}"),
            (Err(e), Ok(_)) => panic!("round {round} (seed {seed}): build works, apply says {e}"),
        }
    }
    assert!(applied > rounds / 2, "{applied} applied, {refused} refused");
}

#[test]
fn random_changes_applied_in_place_equal_the_built_zone() {
    let universe = parse(UNIVERSE);
    for seed in 1..=40 {
        random_rounds(&universe, seed * 7919, 60, &[]);
    }
}

#[test]
fn random_changes_to_an_nsec3_zone_equal_the_built_zone() {
    let universe = parse(NSEC3_UNIVERSE);
    let param = parse(PARAM);
    for seed in 1..=40 {
        random_rounds(&universe, seed * 104_729, 40, &param);
    }
}

fn zone_of(text: &str) -> Zone {
    build(&parse(&format!("{SOA}\n{text}"))).unwrap()
}

#[test]
fn a_change_that_does_not_apply_is_an_error_and_changes_nothing() {
    let zone = zone_of("@ NS ns1\nns1 A 198.18.0.1\nwww A 198.18.0.2\n");
    let before = zone.records().len();
    let absent = parse("www A 198.18.0.3");
    let present = parse("www A 198.18.0.2");
    let cname = parse("www CNAME ns1");
    let mut outside = parse("x A 198.18.0.4");
    outside[0].owner = Name::parse("other.test.", None).unwrap();
    let step = "IXFR, step 1";
    let cases: [(&[Record], &[Record], &str, &str); 4] = [
        (
            &absent,
            &[],
            "removes www.example. A, which the zone does not have",
            step,
        ),
        (
            &[],
            &present,
            "adds www.example. A, which the zone has already",
            step,
        ),
        (
            &[],
            &cname,
            "www.example. has a CNAME and other data (A)",
            "IXFR",
        ),
        (&[], &outside, "outside the zone", step),
    ];
    for (removed, added, why, at) in cases {
        let change = Change {
            removed: removed.iter().collect(),
            added: added.iter().collect(),
        };
        let e = zone.apply(&[change], "IXFR").unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
        assert_eq!(e.location, at, "{e}");
    }
    assert_eq!(zone.records().len(), before);
    // Removing the apex NS leaves a zone that cannot be served.
    let ns = parse("@ NS ns1");
    let e = zone
        .apply(
            &[Change {
                removed: ns.iter().collect(),
                added: vec![],
            }],
            "IXFR",
        )
        .unwrap_err();
    assert!(e.message.contains("no NS records"), "{e}");
}

#[test]
fn empty_non_terminals_come_and_go_with_the_names_below() {
    let zone = zone_of("@ NS ns1\nns1 A 198.18.0.1\n");
    let deep = parse("a.b.c A 198.18.0.9");
    let add = Change {
        removed: vec![],
        added: deep.iter().collect(),
    };
    let (z, _) = zone.apply(&[add], "add").unwrap();
    let n = |s: &str| Name::parse(s, Some(&origin())).unwrap();
    assert!(z.node(&n("b.c")).unwrap().1.is_empty_non_terminal());
    assert!(z.node(&n("c")).is_some());
    // The old version is as it was.
    assert!(zone.node(&n("c")).is_none());
    let del = Change {
        removed: deep.iter().collect(),
        added: vec![],
    };
    let (z2, _) = z.apply(&[del], "del").unwrap();
    assert!(z2.node(&n("c")).is_none() && z2.node(&n("b.c")).is_none());
    assert_eq!(z2.len(), zone.len());
    assert!(z.node(&n("a.b.c")).is_some());
}

#[test]
fn a_new_nsec3_parameter_set_rebuilds_the_chain() {
    let universe = parse(NSEC3_UNIVERSE);
    let mut records = vec![soa(1)];
    records.extend(universe.iter().cloned());
    records.extend(parse(PARAM));
    let zone = build(&records).unwrap();
    assert_eq!(zone.nsec3().unwrap().len(), 3);
    let (old, new) = (parse(PARAM), parse(PARAM2));
    let change = Change {
        removed: old.iter().collect(),
        added: new.iter().collect(),
    };
    let (z, _) = zone.apply(&[change], "re-salt").unwrap();
    assert_eq!(z.nsec3().unwrap().len(), 1);
    let mut want = vec![soa(1)];
    want.extend(universe.iter().cloned());
    want.extend(parse(PARAM2));
    assert!(differences(&z, &build(&want).unwrap()).is_empty());
}

#[test]
fn records_build_the_same_zone_again() {
    let mut records = vec![soa(1)];
    records.extend(
        parse(UNIVERSE)
            .into_iter()
            .filter(|r| r.rtype != rtype::CNAME),
    );
    let zone = build(&records).unwrap();
    let again = build(&zone.records()).unwrap();
    assert!(differences(&again, &zone).is_empty());
    assert_eq!(zone.records()[0].rtype, rtype::SOA);
    // The RRSIGs of the CNAME left out and of a name without data.
    assert_eq!(zone.unattached().len(), 2, "{:?}", zone.unattached());
}
