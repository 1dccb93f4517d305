//! The harness of the incremental publication tests (`tests/xdp_incremental.rs`): a zone
//! changed step by step, served with other zones that stay as they are, and published with
//! `FastPath::publish_change` on a program run with BPF_PROG_TEST_RUN; the checks after a step
//! (XDP answers equal the new engine's, the maps equal a full publication, the dependency index
//! equals a rebuilt one) and while it is written (probes after every map write get the old or
//! the new answer); and the query generators.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use dns_common::{AnswerKey, AnswerKind, KEY_FLAG_CHAOS, KIND_EPOCH_MASK, KIND_EPOCH_SHIFT};
use xdpdns::engine::{Catalog, Engine, EngineConfig};
use xdpdns::fastpath::change::ZoneChange;
use xdpdns::fastpath::compile::{self, Entries, SuffixKey};
use xdpdns::fastpath::deps::ZoneDeps;
use xdpdns::fastpath::render::pass_marker;
use xdpdns::fastpath::suffix_index::SuffixIndex;
use xdpdns::fastpath::templates::Body;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::fastpath::{FastPath, Published, Touched, Update};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{name_len, rtype, Record};
use xdpdns::zone::load::load_zone;
use xdpdns::zone::{Zone, ZoneSource};

use crate::client::Q;
use crate::frame::FrameSpec;
use crate::oracle;
use crate::tld::Rng;

pub fn steps() -> usize {
    std::env::var("XDPDNS_INCREMENTAL_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

pub fn server() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}

pub fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

pub fn records(origin: &Name, text: &str) -> Vec<Record> {
    xdpdns::zonefile::parse_str(text, origin, "test")
        .unwrap()
        .records
}

/// One record from its presentation form (absolute owner, TTL 300 unless given).
pub fn rr(origin: &Name, line: &str) -> Record {
    records(origin, &format!("$TTL 300\n{line}\n")).remove(0)
}

pub fn build(origin: &Name, recs: &[Record]) -> Zone {
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
pub struct How {
    /// The change found by comparing the zones (else given by the diff's records).
    pub between: bool,
    /// No new SOA serial (a reload of an edited file whose serial was not raised, say): the
    /// SOA holders are then not compiled again, and only the rules for the diff find names.
    pub same_serial: bool,
}

pub fn how(k: usize) -> How {
    How {
        between: k % 2 == 1,
        same_serial: k % 4 == 2,
    }
}

/// A zone being changed step by step, served with other zones that stay as they are.
pub struct World {
    pub origin: Name,
    pub records: Vec<Record>,
    pub others: Vec<Arc<Zone>>,
    pub engine: Engine,
    pub fp: FastPath,
    pub tally: Tally,
}

/// Queries run and answered: after the steps, and while they were being written.
#[derive(Default)]
pub struct Tally {
    pub sent: usize,
    pub answered: usize,
    pub probed: usize,
    pub probed_answered: usize,
}

impl Tally {
    /// Prints the counts and checks that at least `percent` of the queries were answered.
    pub fn report(&self, what: &str, percent: usize) {
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

pub fn engine_of(zone: Zone, others: &[Arc<Zone>]) -> Engine {
    let mut c = Catalog::new();
    c.insert(Arc::new(zone));
    for o in others {
        c.insert(o.clone());
    }
    Engine::new(c, EngineConfig::default())
}

impl World {
    pub fn new(origin: &str, text: &str, others: &[String]) -> World {
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

    pub fn zone(&self) -> &Arc<Zone> {
        self.engine.catalog.get(&self.origin).unwrap()
    }

    /// Applies a diff and a new SOA serial, as an IXFR does, and publishes it incrementally;
    /// the change is given by the diff's records, or with `between` found by comparing the
    /// zones.
    pub fn step(&mut self, removed: Vec<Record>, added: Vec<Record>, between: bool) -> Published {
        let how = How {
            between,
            same_serial: false,
        };
        self.step_probed(removed, added, how, &[])
    }

    /// `step`, running `probes` after every write of the update against the maps as they are
    /// then: each answer must be the old engine's or the new one's.
    pub fn step_probed(
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
    pub fn try_step(
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
    pub fn check_queries(&mut self, rng: &mut Rng, focus: &[Name], n: usize) {
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
    pub fn check_maps(&self) {
        let (exact, suffix) = dump(&self.fp);
        let (want_exact, want_suffix) = expected(
            &self.engine,
            self.fp.generation(),
            self.fp.nsec3_first_slot(),
        );
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
        // `map check`, as an operator runs it: nothing different (a suffix entry at a label
        // depth the program skips, say) after every step.
        let c = self.fp.check(&self.engine).expect("map check");
        assert_eq!(c.different, 0, "map check: {:?}", c.lines);
    }
}

pub const TYPES: [u16; 14] = [1, 2, 5, 6, 15, 16, 28, 43, 46, 47, 48, 255, 65280, 99];

pub fn query(rng: &mut Rng, base: &str) -> Vec<u8> {
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

pub fn body_of(fp: &FastPath, kind: u16, anchor_len: u16, template: u32) -> Body {
    let kind = kind & !KIND_EPOCH_MASK;
    if kind & 0xff == AnswerKind::Pass as u16 {
        let mut a = pass_marker(anchor_len as usize);
        a.kind = kind;
        return Body::new(&a);
    }
    let (_, a) = fp
        .server
        .templates
        .lookup(template)
        .unwrap_or_else(|e| panic!("reading template {template}: {e:#}"))
        .unwrap_or_else(|| panic!("template {template} is not cached"));
    assert_eq!((a.kind, a.anchor_len), (kind, anchor_len));
    Body::new(&a)
}

/// What the maps hold for the current generation, with the epochs taken out of the keys (each
/// checked against its name's suffix entries).
pub fn dump(fp: &FastPath) -> (HashMap<AnswerKey, Body>, HashMap<SuffixKey, Body>) {
    let g = fp.generation();
    let mut suffix = HashMap::new();
    let mut epochs: HashMap<Vec<u8>, u16> = HashMap::new();
    for item in fp.server.suffixes.iter() {
        let (k, r) = item.unwrap();
        if SuffixIndex::generation_of(&k) != dns_common::suffix_generation(g) {
            continue;
        }
        let SuffixKey { bits, prefix } = k;
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
/// The entries of a full publication of `engine` in generation `g`, its zone slots from
/// `first_slot` on.
pub fn expected(
    engine: &Engine,
    g: u16,
    first_slot: u32,
) -> (HashMap<AnswerKey, Body>, HashMap<SuffixKey, Body>) {
    let mut e = Entries {
        nsec3_first_slot: first_slot,
        ..Entries::default()
    };
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

pub fn diff<K: std::hash::Hash + Eq + std::fmt::Debug>(
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

pub fn incremental(p: &Published) -> (usize, Touched) {
    match &p.update {
        Update::Incremental { names, touched } => (*names, *touched),
        other => panic!("expected an incremental publication, got {other:?}"),
    }
}

/// Queries at the names a diff touches, their parents and below them, in both DO flavours
/// (run against every intermediate state of the maps).
pub fn probes(
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
pub fn subtree(w: &World, n: &Name) -> Vec<Record> {
    w.records
        .iter()
        .filter(|r| r.owner.is_subdomain_of(n))
        .cloned()
        .collect()
}

/// Whether the first label of `n` is `prefix` followed by digits only.
pub fn first_label_is(n: &Name, prefix: &str) -> bool {
    let s = n.to_string();
    let first = s.split('.').next().unwrap_or("");
    first
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}
