//! Incremental XDP publication through BPF_PROG_TEST_RUN (root, no network): a zone is
//! published, then changed by a series of small random diffs, as a secondary receives them by
//! IXFR (delegations added and removed, glue changed, name servers left without their
//! delegation, A records added and removed, names appearing and going with their empty
//! non-terminals, a wildcard, a name becoming a cut and back, NSEC records moving in a signed
//! zone, and a new SOA serial every time), each published with `FastPath::publish_change`.
//! After every step:
//! - every XDP answer to a generated query set is byte for byte the new engine's (or the query
//!   is passed), and enough of them are answered;
//! - the maps hold exactly what a full publication of the new engine holds (per-name epochs
//!   aside, which must be those of each name's suffix entries), and every stored template is
//!   referred to;
//! - the zone's dependency index equals one built afresh from the new zone;
//! - the update touched entries in proportion to the change, not to the zone.
//!
//! Sizes: `XDPDNS_INCREMENTAL_STEPS` (default 40) steps per zone.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use dns_common::{AnswerKey, AnswerKind, KEY_FLAG_CHAOS, KIND_EPOCH_MASK, KIND_EPOCH_SHIFT};
use xdpdns::engine::{Catalog, Engine, EngineConfig};
use xdpdns::fastpath::change::ZoneChange;
use xdpdns::fastpath::compile::{self, Entries, SuffixKey};
use xdpdns::fastpath::deps::ZoneDeps;
use xdpdns::fastpath::render::pass_marker;
use xdpdns::fastpath::templates::Body;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::fastpath::{FastPath, Published, Update};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{name_len, rtype, Record};
use xdpdns::zone::load::load_zone;
use xdpdns::zone::{Zone, ZoneSource};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::FrameSpec;
use xdpdns_tests::oracle;
use xdpdns_tests::tld::{self, Rng};
use xdpdns_tests::zone_file;

fn steps() -> usize {
    std::env::var("XDPDNS_INCREMENTAL_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn server() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn records(origin: &Name, text: &str) -> Vec<Record> {
    xdpdns::zonefile::parse_str(text, origin, "test")
        .unwrap()
        .records
}

/// One record from its presentation form (absolute owner, TTL 300 unless given).
fn rr(origin: &Name, line: &str) -> Record {
    records(origin, &format!("$TTL 300\n{line}\n")).remove(0)
}

fn build(origin: &Name, recs: &[Record]) -> Zone {
    let src = ZoneSource {
        name: "test",
        locations: None,
    };
    Zone::build(origin.clone(), recs.to_vec(), &src)
        .expect("the generated zone is servable")
        .0
}

/// How a step is made.
#[derive(Clone, Copy)]
struct How {
    /// The change found by comparing the zones (else given by the diff's records).
    between: bool,
    /// No new SOA serial (a reload of an edited file whose serial was not raised, say): the
    /// SOA holders are then not compiled again, and only the rules for the diff find names.
    same_serial: bool,
}

fn how(k: usize) -> How {
    How {
        between: k % 2 == 1,
        same_serial: k % 4 == 2,
    }
}

/// A zone being changed step by step, served with other zones that stay as they are.
struct World {
    origin: Name,
    records: Vec<Record>,
    others: Vec<Arc<Zone>>,
    engine: Engine,
    fp: FastPath,
    tally: Tally,
}

/// Queries run and answered: after the steps, and while they were being written.
#[derive(Default)]
struct Tally {
    sent: usize,
    answered: usize,
    probed: usize,
    probed_answered: usize,
}

impl Tally {
    /// Prints the counts and checks that at least `percent` of the queries were answered.
    fn report(&self, what: &str, percent: usize) {
        let Tally {
            sent,
            answered,
            probed,
            probed_answered,
        } = self;
        println!(
            "{what}: {answered} of {sent} queries answered in XDP, all equal to the engine; while writing, {probed_answered} of {probed} probes answered, each with the old or the new answer"
        );
        assert!(
            answered * 100 > sent * percent,
            "the query set exercises the XDP path ({answered} of {sent})"
        );
    }
}

fn engine_of(zone: Zone, others: &[Arc<Zone>]) -> Engine {
    let mut c = Catalog::new();
    c.insert(Arc::new(zone));
    for o in others {
        c.insert(o.clone());
    }
    Engine::new(c, EngineConfig::default())
}

impl World {
    fn new(origin: &str, text: &str, others: &[String]) -> World {
        let origin = name(origin);
        let records = records(&origin, text);
        let others: Vec<Arc<Zone>> = others
            .iter()
            .map(|s| Arc::new(load_zone(&s.parse().unwrap()).unwrap().0))
            .collect();
        let engine = engine_of(build(&origin, &records), &others);
        let fp = FastPath::load(&engine, &[server()], 53, None).unwrap();
        World {
            origin,
            records,
            others,
            engine,
            fp,
            tally: Tally::default(),
        }
    }

    fn zone(&self) -> &Arc<Zone> {
        self.engine.catalog.get(&self.origin).unwrap()
    }

    /// Applies a diff and a new SOA serial, as an IXFR does, and publishes it incrementally;
    /// the change is given by the diff's records, or with `between` found by comparing the
    /// zones.
    fn step(&mut self, removed: Vec<Record>, added: Vec<Record>, between: bool) -> Published {
        let how = How {
            between,
            same_serial: false,
        };
        self.step_probed(removed, added, how, &[])
    }

    /// `step`, running `probes` after every write of the update against the maps as they are
    /// then: each answer must be the old engine's or the new one's.
    fn step_probed(
        &mut self,
        removed: Vec<Record>,
        added: Vec<Record>,
        how: How,
        probes: &[Vec<u8>],
    ) -> Published {
        let spec = FrameSpec::udp("198.18.0.2".parse().unwrap(), server(), 53);
        let (mut runs, mut answered) = (0, 0);
        let mut observe = |x: &mut XdpServer, engines: &[&Engine]| {
            for q in probes {
                runs += 1;
                answered += oracle::check_any(x, engines, &spec, q).is_some() as usize;
            }
            Ok(())
        };
        let p = self.try_step(removed, added, how, &mut observe).unwrap();
        self.tally.probed += runs;
        self.tally.probed_answered += answered;
        p
    }

    /// `step`, calling `observe` with the maps and the old and new engines after every write
    /// of the update; on an error (an error of `observe` fails the update) the zone stays as
    /// it was.
    fn try_step(
        &mut self,
        mut removed: Vec<Record>,
        mut added: Vec<Record>,
        how: How,
        observe: &mut dyn FnMut(&mut XdpServer, &[&Engine]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Published> {
        let saved = self.records.clone();
        let soa = self
            .records
            .iter()
            .find(|r| r.rtype == rtype::SOA)
            .unwrap()
            .clone();
        let mut next = soa.clone();
        let at = name_len(&soa.rdata).unwrap();
        let at = at + name_len(&soa.rdata[at..]).unwrap();
        let serial = u32::from_be_bytes(soa.rdata[at..at + 4].try_into().unwrap());
        next.rdata[at..at + 4].copy_from_slice(&(serial + 1).to_be_bytes());
        if !how.same_serial {
            removed.push(soa);
            added.push(next);
        }
        self.records.retain(|r| !removed.contains(r));
        self.records.extend(added.iter().cloned());
        let old = self.zone().clone();
        let engine = engine_of(build(&self.origin, &self.records), &self.others);
        let change = if how.between {
            ZoneChange::between(&old, engine.catalog.get(&self.origin).unwrap())
        } else {
            ZoneChange::from_records(self.origin.clone(), &removed, &added)
        };
        let before = self.engine.clone();
        let published = self
            .fp
            .publish_change_observed(&engine, &change, &mut |x| observe(x, &[&before, &engine]));
        match published {
            Ok(p) => {
                self.engine = engine;
                Ok(p)
            }
            Err(e) => {
                self.records = saved;
                Err(e)
            }
        }
    }

    /// Every query of a generated set around `focus` (and the zone's own names) gets the new
    /// engine's answer or is passed.
    fn check_queries(&mut self, rng: &mut Rng, focus: &[Name], n: usize) {
        let mut names: Vec<Name> = self.zone().nodes().map(|(n, _)| n.clone()).collect();
        names.sort();
        let mut answered = 0;
        for i in 0..n {
            let base = if i % 2 == 0 && !focus.is_empty() {
                &focus[rng.below(focus.len() as u64) as usize]
            } else {
                &names[rng.below(names.len() as u64) as usize]
            };
            let q = query(rng, &base.to_string());
            let spec = FrameSpec::udp("198.18.0.2".parse().unwrap(), server(), 53);
            answered +=
                oracle::check(&mut self.fp.server, &self.engine, &spec, &q).is_some() as usize;
        }
        self.tally.sent += n;
        self.tally.answered += answered;
    }

    /// The maps hold what a full publication of the engine holds; the index is up to date.
    fn check_maps(&self) {
        let (exact, suffix) = dump(&self.fp);
        let (want_exact, want_suffix) = expected(&self.engine, self.fp.generation());
        diff("ANSWERS", &exact, &want_exact);
        diff("SUFFIXES", &suffix, &want_suffix);
        let referred: HashSet<&Body> = exact
            .values()
            .chain(suffix.values())
            .filter(|b| b.kind() & 0xff != AnswerKind::Pass as u16)
            .collect();
        assert_eq!(
            self.fp.server.template_counts().0,
            referred.len(),
            "every stored template is referred to, and only those"
        );
        assert_eq!(self.fp.entries, exact.len() + suffix.len());
        let rebuilt = ZoneDeps::build(&self.engine, self.zone());
        assert!(
            self.fp.zone_deps(&self.origin).unwrap().same_as(&rebuilt),
            "the updated dependency index equals a rebuilt one"
        );
    }
}

const TYPES: [u16; 14] = [1, 2, 5, 6, 15, 16, 28, 43, 46, 47, 48, 255, 65280, 99];

fn query(rng: &mut Rng, base: &str) -> Vec<u8> {
    let name = match rng.below(5) {
        0 | 1 => base.to_string(),
        2 => format!("{}.{base}", rng.label()),
        3 => format!("www.{base}"),
        _ => format!("{}.{}.{base}", rng.label(), rng.label()),
    };
    let mut q = Q::new(
        &rng.mix_case(&name),
        TYPES[rng.below(TYPES.len() as u64) as usize],
    );
    q.id = rng.next_u64() as u16;
    q.edns = [None, Some(1232), Some(4096), Some(1232)][rng.below(4) as usize];
    q.dnssec_ok = q.edns.is_some() && rng.chance(50);
    q.wire()
}

fn body_of(fp: &FastPath, kind: u16, anchor_len: u16, template: u32) -> Body {
    let kind = kind & !KIND_EPOCH_MASK;
    if kind & 0xff == AnswerKind::Pass as u16 {
        let mut a = pass_marker(anchor_len as usize);
        a.kind = kind;
        return Body::new(&a);
    }
    let a = fp
        .server
        .templates
        .get(&template, 0)
        .unwrap_or_else(|e| panic!("template {template} is cached: {e}"));
    assert_eq!((a.kind, a.anchor_len), (kind, anchor_len));
    Body::new(&a)
}

/// What the maps hold for the current generation, with the epochs taken out of the keys (each
/// checked against its name's suffix entries).
fn dump(fp: &FastPath) -> (HashMap<AnswerKey, Body>, HashMap<SuffixKey, Body>) {
    let g = fp.generation();
    let mut suffix = HashMap::new();
    let mut epochs: HashMap<Vec<u8>, u16> = HashMap::new();
    for item in fp.server.suffixes.iter() {
        let (k, r) = item.unwrap();
        let bits = k.prefix_len();
        let data = k.data();
        if (data[0] >> 1) as u16 != g & 0x7f {
            continue;
        }
        let prefix: Box<[u8]> = data[..bits as usize / 8].into();
        let wire: Vec<u8> = prefix[1..].iter().rev().copied().collect();
        let epoch = (r.kind & KIND_EPOCH_MASK) >> KIND_EPOCH_SHIFT;
        let was = epochs.insert(wire.clone(), epoch);
        assert!(
            was.is_none_or(|e| e == epoch),
            "the DO=0 and DO=1 entries of a name have one epoch"
        );
        suffix.insert(
            SuffixKey { bits, prefix },
            body_of(fp, r.kind, r.anchor_len, r.template),
        );
    }
    let mut exact = HashMap::new();
    for item in fp.server.answers.iter() {
        let (mut k, r) = item.unwrap();
        if k.generation != g {
            continue;
        }
        let start = k.name.iter().position(|b| *b != 0).unwrap_or(k.name.len());
        let wire = k.name[start..].to_vec();
        let gate = if k.flags & KEY_FLAG_CHAOS != 0 {
            Some(0)
        } else {
            epochs.get(&wire).copied()
        };
        assert_eq!(
            Some(k.epoch),
            gate,
            "an exact entry is under the epoch of its name's suffix entry: {k:?}"
        );
        k.epoch = 0;
        exact.insert(k, body_of(fp, r.kind, r.anchor_len, r.template));
    }
    (exact, suffix)
}

/// What a full publication of `engine` holds.
fn expected(engine: &Engine, g: u16) -> (HashMap<AnswerKey, Body>, HashMap<SuffixKey, Body>) {
    let mut e = Entries::default();
    compile::compile_chaos(engine, g, &mut e);
    compile::compile_refused(engine, g, &mut e);
    for z in engine.catalog.zones() {
        compile::compile_zone(engine, z, g, &mut e);
    }
    (
        e.exact.into_iter().collect(),
        e.suffix.into_iter().collect(),
    )
}

fn diff<K: std::hash::Hash + Eq + std::fmt::Debug>(
    what: &str,
    got: &HashMap<K, Body>,
    want: &HashMap<K, Body>,
) {
    let extra: Vec<&K> = got
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let missing: Vec<&K> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: {} entries differ from a full publication, {} missing; first: {:?} / {:?}",
        extra.len(),
        missing.len(),
        extra.first(),
        missing.first()
    );
}

fn incremental(p: &Published) -> (usize, xdpdns::fastpath::Touched) {
    match &p.update {
        Update::Incremental { names, touched } => (*names, *touched),
        other => panic!("expected an incremental publication, got {other:?}"),
    }
}

/// Queries at the names a diff touches, their parents and below them, in both DO flavours
/// (run against every intermediate state of the maps).
fn probes(
    rng: &mut Rng,
    w: &World,
    focus: &[Name],
    removed: &[Record],
    added: &[Record],
) -> Vec<Vec<u8>> {
    let mut names: Vec<Name> = focus.to_vec();
    for r in removed.iter().chain(added) {
        names.push(r.owner.clone());
        names.extend(r.owner.parent().filter(|p| p.is_subdomain_of(&w.origin)));
    }
    names.push(w.origin.clone());
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in names.iter().take(8) {
        for _ in 0..3 {
            out.push(query(rng, &n.to_string()));
        }
    }
    out
}

/// Records at or below `n`.
fn subtree(w: &World, n: &Name) -> Vec<Record> {
    w.records
        .iter()
        .filter(|r| r.owner.is_subdomain_of(n))
        .cloned()
        .collect()
}

/// Whether the first label of `n` is `prefix` followed by digits only.
fn first_label_is(n: &Name, prefix: &str) -> bool {
    let s = n.to_string();
    let first = s.split('.').next().unwrap_or("");
    first
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}

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
        let p = w.step_probed(removed, added, how(k), &probes);
        incremental(&p);
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
