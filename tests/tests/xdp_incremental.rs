//! Incremental XDP publication through BPF_PROG_TEST_RUN (root, no network; the harness is
//! `xdpdns_tests::incremental`): a zone is published, then changed by a series of small random
//! diffs, as a secondary receives them by IXFR (delegations added and removed, glue changed,
//! name servers left without their delegation, sibling glue and MX targets moved, A records
//! added and removed, names appearing and going with their empty non-terminals, a wildcard, a
//! name becoming a cut and back, NSEC records moving in a signed zone; a new SOA serial in
//! three steps of four), each published with `FastPath::publish_change`. After every step:
//! - every XDP answer to a generated query set is byte for byte the new engine's (or the query
//!   is passed), and enough of them are answered;
//! - while the step was written, queries at the changed names run after every single map
//!   write got the old engine's answer or the new one's (or were passed);
//! - the maps hold exactly what a full publication of the new engine holds (per-name epochs
//!   aside, which must be those of each name's suffix entries), and every stored template is
//!   referred to;
//! - the zone's dependency index equals one built afresh from the new zone;
//! - the update touched entries in proportion to the change, not to the zone.
//!
//! Also: a change of the apex NS set is published in full; a write that fails part way is
//! undone, leaving the old zone's maps and answers.
//!
//! Sizes: `XDPDNS_INCREMENTAL_STEPS` (default 40) steps per zone.

use xdpdns::engine::Engine;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::fastpath::Update;
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{name_len, rtype, Record};
use xdpdns_tests::incremental::{
    first_label_is, how, incremental, name, probes, rr, steps, subtree, How, World,
};
use xdpdns_tests::tld::{self, Rng};
use xdpdns_tests::zone_file;

/// One random change to the TLD; returns (removed, added, names to query).
fn tld_change(w: &World, rng: &mut Rng, k: usize) -> (Vec<Record>, Vec<Record>, Vec<Name>) {
    let o = w.origin.to_string();
    let r = |s: String| rr(&w.origin, &s);
    let cuts: Vec<Name> = w
        .records
        .iter()
        .filter(|r| r.rtype == rtype::NS && r.owner != w.origin)
        .map(|r| r.owner.clone())
        .collect();
    let glue: Vec<&Record> = w
        .records
        .iter()
        .filter(|x| x.rtype == rtype::A && cuts.iter().any(|c| x.owner.is_subdomain_of(c)))
        .collect();
    let pick = |rng: &mut Rng, v: &[Name]| v[rng.below(v.len() as u64) as usize].clone();
    let addr = |rng: &mut Rng| format!("198.18.{}.{}", 100 + rng.below(100), 1 + rng.below(250));
    match rng.below(13) {
        // A delegation with in-bailiwick glue, out-of-zone name servers or a sibling's.
        0 | 1 => {
            let d = format!("n{k}.{o}");
            let mut add = match rng.below(3) {
                0 => vec![
                    r(format!("{d} NS ns1.{d}")),
                    r(format!("ns1.{d} A {}", addr(rng))),
                    r(format!("ns1.{d} AAAA fd00:99::{k:x}")),
                ],
                1 => vec![r(format!("{d} NS ns1.hoster{}.net.", k % 7))],
                _ => {
                    let g = &glue[rng.below(glue.len() as u64) as usize];
                    vec![r(format!("{d} NS {}", g.owner))]
                }
            };
            if rng.chance(30) {
                add.push(r(format!("{d} DS 12345 13 2 {}", "ab".repeat(32))));
            }
            (vec![], add, vec![name(&d)])
        }
        2 => {
            let c = pick(rng, &cuts);
            (subtree(w, &c), vec![], vec![c])
        }
        // A name server that other delegations use (sibling glue) moves.
        11 => {
            let used: Vec<Name> = w
                .records
                .iter()
                .filter(|x| x.rtype == rtype::NS && x.owner != w.origin)
                .filter_map(|x| x.target())
                .filter(|t| t.is_subdomain_of(&w.origin))
                .filter(|t| glue.iter().any(|g| g.owner == *t))
                .collect();
            let referrers: Vec<Name> = w
                .records
                .iter()
                .filter(|x| x.rtype == rtype::NS && x.target().is_some_and(|t| used.contains(&t)))
                .map(|x| x.owner.clone())
                .collect();
            let Some(t) = used
                .iter()
                .find(|t| referrers.iter().any(|r| !t.is_subdomain_of(r)))
            else {
                return (vec![], vec![], vec![]);
            };
            let g = glue.iter().find(|g| g.owner == *t).unwrap();
            let new = r(format!("{} A {}", g.owner, addr(rng)));
            ((vec![(*g).clone()]), vec![new], referrers)
        }
        // A delegation whose name server is two labels below it, then moved.
        12 => {
            let d = format!("deep{k}.{o}");
            let add = vec![
                r(format!("{d} NS ns.a.{d}")),
                r(format!("ns.a.{d} A {}", addr(rng))),
            ];
            let moved: Vec<&Record> = w
                .records
                .iter()
                .filter(|x| x.rtype == rtype::A && x.owner.to_string().starts_with("ns.a.deep"))
                .collect();
            match moved.first() {
                Some(m) if rng.chance(60) => {
                    let new = r(format!("{} A {}", m.owner, addr(rng)));
                    let f = vec![m.owner.parent().unwrap().parent().unwrap()];
                    (vec![(*m).clone()], vec![new], f)
                }
                _ => (vec![], add, vec![name(&d)]),
            }
        }
        // Glue moved.
        3 | 4 => {
            let g = glue[rng.below(glue.len() as u64) as usize].clone();
            let new = r(format!("{} A {}", g.owner, addr(rng)));
            let mut focus = vec![g.owner.clone()];
            focus.extend(g.owner.parent());
            (vec![g], vec![new], focus)
        }
        // A delegation's NS removed, its glue left: the glue becomes authoritative.
        5 => {
            let c = pick(rng, &cuts);
            let ns: Vec<Record> = subtree(w, &c)
                .into_iter()
                .filter(|x| x.owner == c && x.rtype != rtype::A)
                .collect();
            (
                ns,
                vec![r(format!("{c} TXT \"was a delegation\""))],
                vec![c],
            )
        }
        // Names appearing (with empty non-terminals) and going; A records at existing names.
        6 | 7 => {
            let host = format!("h{}.x{}.{o}", k, rng.below(3));
            let existing: Vec<Record> = w
                .records
                .iter()
                .filter(|x| x.rtype == rtype::A && first_label_is(&x.owner, "h"))
                .cloned()
                .collect();
            if !existing.is_empty() && rng.chance(50) {
                let x = existing[rng.below(existing.len() as u64) as usize].clone();
                let f = x.owner.clone();
                (vec![x], vec![], vec![f])
            } else {
                let add = vec![
                    r(format!("{host} A {}", addr(rng))),
                    r(format!("nic.{o} A {}", addr(rng))),
                ];
                (vec![], add, vec![name(&host), name(&format!("nic.{o}"))])
            }
        }
        // A wildcard below nic, on and off.
        8 => {
            let wild = r(format!("*.nic.{o} A 198.18.10.9"));
            let f = vec![name(&format!("nic.{o}"))];
            if w.records.contains(&wild) {
                (vec![wild], vec![], f)
            } else {
                (vec![], vec![wild], f)
            }
        }
        // nic becomes a cut (the apex name server a.nic its glue), and back.
        9 => {
            let cut = r(format!("nic.{o} NS a.nic.{o}"));
            let f = vec![name(&format!("nic.{o}")), w.origin.clone()];
            if w.records.contains(&cut) {
                (vec![cut], vec![], f)
            } else {
                (vec![], vec![cut], f)
            }
        }
        // An MX whose target is another name of the zone, and that name moving.
        _ => {
            let mail: Vec<&Record> = w
                .records
                .iter()
                .filter(|x| first_label_is(&x.owner, "mail") && x.rtype == rtype::A)
                .collect();
            if let Some(m) = mail.first().filter(|_| rng.chance(50)) {
                let new = r(format!("{} A {}", m.owner, addr(rng)));
                return (vec![(*m).clone()], vec![new], vec![m.owner.clone()]);
            }
            let mx = format!("m{k}.{o}");
            let add = vec![
                r(format!("{mx} MX 10 mail.m{}.{o}", k + 1)),
                r(format!("mail.m{}.{o} A {}", k + 1, addr(rng))),
            ];
            (vec![], add, vec![name(&mx)])
        }
    }
}

#[test]
fn random_diffs_to_a_tld_published_incrementally_equal_the_engine() {
    let text = tld::zone_text("tld.", 2000);
    let mut w = World::new("tld.", &text, &[zone_file("example.zone")]);
    let mut rng = Rng::new(0x1c4e);
    let (mut names, mut writes) = (0, 0);
    for k in 0..steps() {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let mut focus = Vec::new();
        for j in 0..rng.below(4) {
            let (r, a, f) = tld_change(&w, &mut rng, k * 4 + j as usize);
            // Each record at most once in a diff.
            removed.extend(r.into_iter().filter(|x| !added.contains(x)));
            added.extend(a.into_iter().filter(|x| !removed.contains(x)));
            focus.extend(f);
        }
        // A step with a new serial compiles the authoritative names again (their answers hold
        // the SOA), besides what the diff reaches.
        let holders =
            w.fp.zone_deps(&w.origin)
                .unwrap()
                .soa_holders()
                .unwrap()
                .len();
        let probes = probes(&mut rng, &w, &focus, &removed, &added);
        let p = w.step_probed(removed, added, how(k), &probes);
        let (n, t) = incremental(&p);
        assert!(n <= holders + 24, "step {k}: {n} names compiled again");
        names += n;
        writes += t.writes();
        w.check_maps();
        w.check_queries(&mut rng, &focus, 600);
    }
    // A change of the apex NS set takes a full publication.
    let ns = rr(&w.origin, "tld. NS ns3.example.");
    let p = w.step(vec![], vec![ns], false);
    assert!(
        matches!(&p.update, Update::Full { reason: Some(r) } if r.contains("apex NS")),
        "{:?}",
        p.update
    );
    w.check_maps();
    w.check_queries(&mut rng, &[], 600);
    println!(
        "{} steps: {names} names compiled again, {writes} map writes in all",
        steps()
    );
    w.tally.report("TLD", 40);
}

/// One random change to the NSEC-signed zone: signed names added and removed with the NSEC
/// chain kept linked, unsigned names (with empty non-terminals), A records changed.
fn nsec_change(w: &World, rng: &mut Rng, k: usize) -> (Vec<Record>, Vec<Record>, Vec<Name>) {
    let o = w.origin.to_string();
    let nsecs: Vec<Record> = w
        .records
        .iter()
        .filter(|r| r.rtype == rtype::NSEC)
        .cloned()
        .collect();
    let next_of = |r: &Record| Name::from_wire(&r.rdata[..name_len(&r.rdata).unwrap()]).unwrap();
    let relink = |r: &Record, next: &Name| {
        let mut x = r.clone();
        let bitmap = r.rdata[name_len(&r.rdata).unwrap()..].to_vec();
        x.rdata = next.wire().to_vec();
        x.rdata.extend(bitmap);
        x
    };
    let toggle = |host: &str, a: &str, b: &str| {
        let x = rr(&w.origin, &format!("{host}.{o} 3600 A {a}"));
        let y = rr(&w.origin, &format!("{host}.{o} 3600 A {b}"));
        let f = vec![name(&format!("{host}.{o}"))];
        if w.records.contains(&x) {
            (vec![x], vec![y], f)
        } else {
            (vec![y], vec![x], f)
        }
    };
    // The steps without a new serial (see `how`) move the SRV target, or change the NSEC
    // before the empty non-terminals ent and b.ent.
    let case = match k % 8 {
        2 => 5,
        6 => 6,
        _ => rng.below(6),
    };
    match case {
        6 => {
            let sip = name(&format!("_sip._udp.{o}"));
            let old = nsecs.iter().find(|r| r.owner == sip).unwrap().clone();
            let mut new = old.clone();
            new.ttl = if old.ttl == 300 { 299 } else { 300 };
            let f = vec![sip, name(&format!("ent.{o}")), name(&format!("b.ent.{o}"))];
            (vec![old], vec![new], f)
        }
        // The SRV target of _sip._udp (a name neither above nor below it).
        5 => {
            let (r, a, mut f) = toggle("sip", "192.0.2.53", "192.0.2.54");
            f.push(name(&format!("_sip._udp.{o}")));
            (r, a, f)
        }
        4 => toggle("www", "192.0.2.80", "192.0.2.81"),
        0 | 1 => {
            let n = name(&format!("n{k}.{o}"));
            // The NSEC before the new name in canonical order, wrapping.
            let prev = nsecs
                .iter()
                .filter(|r| r.owner < n)
                .max_by(|a, b| a.owner.cmp(&b.owner))
                .or_else(|| nsecs.iter().max_by(|a, b| a.owner.cmp(&b.owner)))
                .unwrap()
                .clone();
            let added = vec![
                rr(&w.origin, &format!("{n} 3600 A 192.0.2.{}", 100 + k % 100)),
                rr(
                    &w.origin,
                    &format!("{n} NSEC {} A RRSIG NSEC", next_of(&prev)),
                ),
                relink(&prev, &n),
            ];
            let f = vec![n, prev.owner.clone()];
            (vec![prev], added, f)
        }
        2 => {
            // A signed name goes, its predecessor linked past it.
            let signed: Vec<&Record> = nsecs
                .iter()
                .filter(|r| first_label_is(&r.owner, "n"))
                .collect();
            let Some(gone) = signed.first().copied() else {
                return (vec![], vec![], vec![]);
            };
            let prev = nsecs.iter().find(|r| next_of(r) == gone.owner).unwrap();
            let removed = [subtree(w, &gone.owner), vec![prev.clone()]].concat();
            let added = vec![relink(prev, &next_of(gone))];
            (removed, added, vec![gone.owner.clone(), prev.owner.clone()])
        }
        _ => {
            // Unsigned names below empty non-terminals, and their removal.
            let existing: Vec<Record> = w
                .records
                .iter()
                .filter(|r| first_label_is(&r.owner, "u"))
                .cloned()
                .collect();
            if let Some(x) = existing.first().filter(|_| rng.chance(50)) {
                return (vec![x.clone()], vec![], vec![x.owner.clone()]);
            }
            let u = name(&format!("u{k}.e{}.{o}", rng.below(3)));
            let add = vec![rr(&w.origin, &format!("{u} A 192.0.2.{}", k % 200))];
            let f = vec![u.clone(), u.parent().unwrap()];
            (vec![], add, f)
        }
    }
}

#[test]
fn random_diffs_to_an_nsec_signed_zone_published_incrementally_equal_the_engine() {
    let text = std::fs::read_to_string(zone_file("signed/nsec.example.zone")).unwrap();
    let mut w = World::new("nsec.example.", &text, &[zone_file("example.zone")]);
    let mut rng = Rng::new(0x5ec);
    for k in 0..steps() {
        let (removed, added, focus) = nsec_change(&w, &mut rng, k);
        let probes = probes(&mut rng, &w, &focus, &removed, &added);
        // The program's NSEC data (records, labels) is written per generation: a changed
        // chain takes a full publication, anything else is incremental.
        let chain = removed.iter().chain(&added).any(|r| r.rtype == rtype::NSEC);
        let p = w.step_probed(removed, added, how(k), &probes);
        if chain {
            assert!(
                matches!(&p.update, Update::Full { reason: Some(r) } if r.contains("NSEC chain")),
                "{:?}",
                p.update
            );
        } else {
            incremental(&p);
        }
        w.check_maps();
        w.check_queries(&mut rng, &focus, 400);
    }
    w.tally.report(&format!("NSEC zone, {} steps", steps()), 30);
}

#[test]
fn a_three_record_change_to_a_10k_delegation_zone_touches_few_entries() {
    let text = tld::zone_text("tld.", 10_000);
    let mut w = World::new("tld.", &text, &[]);
    let full = w.fp.entries;
    let o = w.origin.clone();
    let mut rng = Rng::new(7);
    let add = vec![
        rr(&o, "new.tld. NS ns1.new.tld."),
        rr(&o, "ns1.new.tld. A 198.18.200.1"),
        rr(&o, "ns1.new.tld. AAAA fd00:200::1"),
    ];
    let steps: Vec<(&str, Vec<Record>, Vec<Record>)> = vec![
        ("a delegation added", vec![], add.clone()),
        (
            "its glue moved",
            vec![add[1].clone()],
            vec![rr(&o, "ns1.new.tld. A 198.18.200.2")],
        ),
        (
            "a delegation removed",
            subtree(&w, &name("d10.tld.")),
            vec![],
        ),
    ];
    for (what, removed, added) in steps {
        let p = w.step(removed, added, false);
        let (names, t) = incremental(&p);
        println!(
            "{what}: {names} names compiled again, {} index writes ({} inserted, {} switched, {} deleted), {} templates added, {} retired; a full publication writes {full} entries",
            t.index_writes(),
            t.exact_inserted + t.suffix_inserted,
            t.suffix_changed,
            t.exact_deleted + t.suffix_deleted,
            t.templates_added,
            t.templates_retired
        );
        assert!(names <= 12, "{what}: {names} names");
        assert!(t.index_writes() <= 40, "{what}: {t:?}");
        assert!(t.writes() <= 64, "{what}: {t:?}");
        w.check_maps();
        let focus = vec![name("new.tld."), name("d10.tld."), o.clone()];
        w.check_queries(&mut rng, &focus, 300);
    }
}

#[test]
fn a_failed_update_is_undone_and_the_old_answers_stay() {
    let text = tld::zone_text("tld.", 500);
    let mut w = World::new("tld.", &text, &[]);
    let mut rng = Rng::new(0xfa11);
    let mut failed = 0;
    for k in 0..24 {
        let (removed, added, focus) = tld_change(&w, &mut rng, k);
        // A write fails (the map is full, say) after a random number of writes.
        let fail_after = rng.below(40) as usize;
        let mut writes = 0;
        let mut fail = |_: &mut XdpServer, _: &[&Engine]| {
            writes += 1;
            if writes > fail_after {
                anyhow::bail!("injected failure after {fail_after} writes");
            }
            Ok(())
        };
        let how = How {
            between: false,
            same_serial: false,
        };
        match w.try_step(removed.clone(), added.clone(), how, &mut fail) {
            Err(e) => {
                assert!(format!("{e:#}").contains("injected failure"), "{e:#}");
                failed += 1;
                // Undone: the maps hold the old zone, and the old answers are given.
                w.check_maps();
                w.check_queries(&mut rng, &focus, 100);
                incremental(&w.step(removed, added, false));
            }
            Ok(p) => {
                incremental(&p);
            }
        }
        w.check_maps();
        w.check_queries(&mut rng, &focus, 100);
    }
    println!("{failed} of 24 updates failed and were undone");
    assert!(
        failed >= 8,
        "the failure path is exercised ({failed} times)"
    );
}

/// The program skips label depths that no suffix entry of the generation has (`SUFFIX_SEED`'s
/// depth masks): a name deeper than any before, added by an incremental update, must have
/// its depth cleared from the mask before its entry is written, or queries for it would be
/// answered from a shorter suffix.
#[test]
fn a_name_deeper_than_any_before_is_found_after_an_incremental_update() {
    let text = tld::zone_text("tld.", 50);
    let mut w = World::new("tld.", &text, &[]);
    let mut rng = Rng::new(0xdee9);
    w.check_maps();
    let deep = "a.b.c.d.e.tld.";
    let p = w.step(
        vec![],
        vec![rr(&w.origin, &format!("{deep} A 198.18.7.7"))],
        false,
    );
    assert!(
        matches!(p.update, Update::Incremental { .. }),
        "{:?}",
        p.update
    );
    w.check_maps();
    w.check_queries(&mut rng, &[name(deep), name("c.d.e.tld.")], 400);
}
