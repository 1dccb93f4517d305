//! The template cache as an array of slots (`TEMPLATES`, `fastpath::template_cache`), through
//! BPF_PROG_TEST_RUN (root, no network):
//! - a template whose slots all hold other templates is passed (`pass_cold`, its id in the
//!   `COLD` ring), and once promoted answered in XDP (equal to the engine), while the template
//!   it evicted is passed in turn;
//! - every slot write follows the protocol that rules out a torn answer: a body changes only
//!   under id none, not before the grace period after the slot's id went to none, and the id
//!   is written last over the same bytes;
//! - `map check` reports a slot whose body is not the store's, and an id in two slots.

use std::collections::HashMap;

use dns_common::{counter, Answer, TEMPLATE_NONE};
use xdpdns::engine::{Engine, EngineConfig};
use xdpdns::fastpath::template_cache::{body_hash, group, Write, GRACE};
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns::fastpath::{compile, FastPath};
use xdpdns::wire::name::Name;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::FrameSpec;
use xdpdns_tests::oracle;
use xdpdns_tests::tld::{self, Rng};

const DELEGATIONS: usize = 60;

struct Rig {
    xdp: XdpServer,
    engine: Engine,
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    rng: Rng,
    dir: std::path::PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLD of `DELEGATIONS` delegations served with a cache of `slots` slots.
fn rig(tag: &str, slots: u32) -> Rig {
    let dir = std::env::temp_dir().join(format!("xdpdns-tplcache-{tag}-{}", std::process::id()));
    let zone = tld::write_zone(&dir, "tld.", DELEGATIONS, false).unwrap();
    let spec: ZoneSpec = format!("tld.={}", zone.display()).parse().unwrap();
    let (catalog, _) = load_catalog(&[spec]).unwrap();
    let engine = Engine::new(catalog, EngineConfig::default());
    let capacity = Capacity {
        templates: slots,
        ..Capacity::default()
    };
    let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, capacity, 3).unwrap();
    let (stored, size) = xdp.template_counts();
    assert!(
        stored > 2 * slots as usize,
        "{stored} templates for {size} slots"
    );
    assert_eq!(xdp.templates_cached(), slots as usize, "every slot filled");
    let ring = xdp.take_cold_ring().unwrap();
    Rig {
        xdp,
        engine,
        ring,
        rng: Rng::new(0x7e57),
        dir,
    }
}

fn s4() -> FrameSpec {
    FrameSpec::udp(
        "198.18.0.2".parse().unwrap(),
        "198.18.0.1".parse().unwrap(),
        53,
    )
}

impl Rig {
    fn query(&mut self, delegation: usize) -> Vec<u8> {
        let name = format!("{}.{}.tld.", self.rng.label(), tld::delegation(delegation));
        let mut q = Q::new(&self.rng.mix_case(&name), 1);
        q.id = self.rng.next_u64() as u16;
        q.edns = Some(1232);
        q.wire()
    }

    /// Runs the query (XDP's answer checked against the engine's); whether XDP answered, and
    /// the ids it put into the ring.
    fn run(&mut self, dns: &[u8]) -> (bool, Vec<u32>) {
        let answered = oracle::check(&mut self.xdp, &self.engine, &s4(), dns).is_some();
        let mut ids = Vec::new();
        while let Some(item) = self.ring.next() {
            ids.push(u32::from_ne_bytes(item[..4].try_into().unwrap()));
        }
        (answered, ids)
    }

    /// A delegation whose referral is cold, with its query and template id (other than
    /// `not`).
    fn cold(&mut self, not: &[u32]) -> (usize, Vec<u8>, u32) {
        for d in 0..DELEGATIONS {
            let q = self.query(d);
            let (answered, ids) = self.run(&q);
            if !answered && ids.len() == 1 && !not.contains(&ids[0]) {
                return (d, q, ids[0]);
            }
        }
        panic!("no cold referral among {DELEGATIONS} delegations");
    }

    /// The template id of delegation `d`'s referral (DO=0), from the suffix index.
    fn template_of(&self, d: usize) -> u32 {
        let name = Name::parse(&format!("{}.tld.", tld::delegation(d)), None).unwrap();
        let key = compile::suffix_key(&name, false, 3);
        self.xdp.suffixes.get(&key).unwrap().unwrap().template
    }

    fn pass_cold(&self) -> u64 {
        self.xdp.counters().unwrap()[counter::PASS_COLD as usize]
    }
}

#[test]
fn a_template_whose_slots_hold_others_passes_cold_until_promoted() {
    let mut r = rig("cold", 8);
    let slots = r.xdp.templates.slots();
    let before = r.pass_cold();
    let (_, q, id) = r.cold(&[]);
    assert_eq!(r.pass_cold(), before + 1, "counted as pass_cold");
    assert!(r.xdp.templates.slot(id).is_none());
    let ways: Vec<u32> = group(id, slots).collect();
    assert!(!ways.is_empty(), "its home is below the capacity");
    let holders: Vec<u32> = ways
        .iter()
        .map(|s| r.xdp.templates.read(*s).unwrap().id)
        .collect();
    for (s, h) in ways.iter().zip(&holders) {
        assert!(*h != TEMPLATE_NONE && *h != id, "slot {s} holds {h}");
    }
    // Promoted: into a slot of its group, in place of one of the others.
    assert_eq!(r.xdp.promote(&[id]).unwrap(), 1);
    let at = r.xdp.templates.slot(id).expect("cached");
    let way = ways
        .iter()
        .position(|s| *s == at)
        .expect("a slot of its group");
    assert_eq!(r.xdp.templates.read(at).unwrap().id, id);
    let (answered, ids) = r.run(&q);
    assert!(
        answered && ids.is_empty(),
        "answered in XDP after promotion"
    );
    // The template it evicted is cold now: its queries pass and name it in the ring.
    let evicted = holders[way];
    assert!(r.xdp.templates.slot(evicted).is_none());
    if let Some(d) = (0..DELEGATIONS).find(|d| r.template_of(*d) == evicted) {
        let q = r.query(d);
        assert_eq!(
            r.run(&q),
            (false, vec![evicted]),
            "the evicted template passes cold"
        );
    }
    // Every delegation: answered exactly when its template is cached, cold otherwise.
    for d in 0..DELEGATIONS {
        let t = r.template_of(d);
        let q = r.query(d);
        let (answered, ids) = r.run(&q);
        match r.xdp.templates.slot(t) {
            Some(_) => assert!(answered && ids.is_empty(), "delegation {d}: cached {t}"),
            None => assert_eq!((answered, ids), (false, vec![t]), "delegation {d}: cold"),
        }
    }
}

/// Checks every write against the protocol, from the slots' values before the first.
fn check_protocol(before: &HashMap<u32, (u32, u64)>, writes: &[Write]) -> usize {
    let mut state = before.clone();
    let mut none_at = HashMap::new();
    let mut replaced = 0;
    for (i, w) in writes.iter().enumerate() {
        let (id, body) = state[&w.slot];
        if w.body != body {
            assert!(
                id == TEMPLATE_NONE && w.id == TEMPLATE_NONE,
                "write {i} {w:?}: a body changes only under none (slot held {id})"
            );
            if let Some(at) = none_at.remove(&w.slot) {
                assert!(
                    w.at.duration_since(at) >= GRACE,
                    "write {i} {w:?}: body changed {:?} after the id went to none",
                    w.at.duration_since(at)
                );
                replaced += 1;
            }
        }
        if id != TEMPLATE_NONE && w.id != TEMPLATE_NONE {
            assert_eq!(w.id, id, "write {i}: one id over another");
        }
        if id != TEMPLATE_NONE && w.id == TEMPLATE_NONE {
            none_at.insert(w.slot, w.at);
        }
        state.insert(w.slot, (w.id, w.body));
    }
    replaced
}

fn slot_state(a: &Answer) -> (u32, u64) {
    (a.id, body_hash(a))
}

#[test]
fn slot_writes_never_change_a_body_under_an_id() {
    let mut r = rig("protocol", 8);
    let slots = r.xdp.templates.slots();
    let before: HashMap<u32, _> = (0..slots)
        .map(|s| (s, slot_state(&r.xdp.templates.read(s).unwrap())))
        .collect();
    r.xdp.templates.record_writes();
    // Hits mark slots used, which the CLOCK hand clears with writes of the same bytes.
    for d in 0..DELEGATIONS {
        let q = r.query(d);
        r.run(&q);
    }
    // Evictions into full groups, a removal, and a promotion into the slot it freed.
    let mut promoted = Vec::new();
    for _ in 0..3 {
        let (_, _, id) = r.cold(&promoted);
        assert_eq!(r.xdp.promote(&[id]).unwrap(), 1);
        promoted.push(id);
    }
    let gone = r.xdp.templates.ids().next().unwrap();
    let freed = r.xdp.templates.slot(gone).unwrap();
    assert!(r.xdp.templates.remove(gone).unwrap());
    assert_eq!(r.xdp.templates.read(freed).unwrap().id, TEMPLATE_NONE);
    let (_, q, id) = r.cold(&promoted);
    assert_eq!(r.xdp.promote(&[id]).unwrap(), 1);
    assert!(r.run(&q).0, "answered after promotion");
    let writes = r.xdp.templates.writes().to_vec();
    let replaced = check_protocol(&before, &writes);
    assert!(
        replaced >= 4,
        "{replaced} slots given another body ({} writes)",
        writes.len()
    );
    // And every slot ends holding its id's body as the store has it: map-level equality.
    for s in 0..slots {
        let a = r.xdp.templates.read(s).unwrap();
        if a.id != TEMPLATE_NONE {
            assert_eq!(r.xdp.templates.slot(a.id), Some(s));
        }
    }
}

#[test]
fn map_check_reports_a_slot_with_another_body_and_an_id_in_two_slots() {
    let engine = xdpdns_tests::testrun::example_engine(EngineConfig::default());
    let fp = FastPath::load(&engine, &[xdpdns_tests::SERVER_V4.into()], 53, None).unwrap();
    let c = fp.check(&engine).unwrap();
    assert_eq!(c.differences(), 0, "{}", c.text());
    let cache = &fp.server.templates;
    let slots = cache.slots();
    // A cached template with a free slot in its group.
    let (id, at, free) = cache
        .ids()
        .find_map(|id| {
            let at = cache.slot(id)?;
            let free = group(id, slots).find(|s| cache.read(*s).unwrap().id == TEMPLATE_NONE)?;
            Some((id, at, free))
        })
        .expect("a group with a free slot");
    // Written behind the server's back, as a bug or another process would.
    let data = aya::maps::MapData::from_id(cache.map_id().unwrap()).unwrap();
    let mut map: aya::maps::Array<_, Answer> =
        aya::maps::Array::try_from(aya::maps::Map::from_map_data(data).unwrap()).unwrap();
    let good = map.get(&at, 0).unwrap();
    let mut bad = good;
    bad.data[0] ^= 0x5a;
    map.set(at, bad, 0).unwrap();
    let c = fp.check(&engine).unwrap();
    assert!(c.different >= 1, "{}", c.text());
    let listed = |c: &xdpdns::fastpath::check::MapCheck, what: &str| {
        assert!(
            c.lines.iter().any(|l| l.contains(what)),
            "{what}: {}",
            c.text()
        );
    };
    listed(
        &c,
        &format!("slot {at} holds template {id} with another body"),
    );
    map.set(at, good, 0).unwrap();
    map.set(free, good, 0).unwrap();
    let c = fp.check(&engine).unwrap();
    listed(&c, &format!("template {id} is in slots"));
    let mut empty = good;
    empty.id = TEMPLATE_NONE;
    map.set(free, empty, 0).unwrap();
    let c = fp.check(&engine).unwrap();
    assert_eq!(c.differences(), 0, "{}", c.text());
}
