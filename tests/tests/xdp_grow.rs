//! Zones that outgrow the XDP maps: a fast path loaded for a small zone (as a secondary zone's
//! is while it has no copy yet) is given a 20k-delegation version. The publication loads the
//! program again with maps sized for it; the maps then hold what a full publication holds,
//! every template is cached, XDP answers as the engine does (BPF_PROG_TEST_RUN), and the
//! counters go on from where the old program's stopped.

use xdpdns_tests::incremental::{build, engine_of, name, records, World};
use xdpdns_tests::tld::{self, Rng};

#[test]
fn zones_that_outgrow_the_maps_are_published_into_a_program_loaded_again() {
    let mut w = World::new("tld.", &tld::zone_text("tld.", 4), &[]);
    let mut rng = Rng::new(11);
    w.check_queries(&mut rng, &[], 50);
    let small = w.fp.server.capacity();
    let counted: u64 = w.fp.server.counters().unwrap().iter().sum();
    assert!(counted >= 50, "the queries were counted ({counted})");

    w.records = records(&w.origin, &tld::zone_text("tld.", 20_000));
    w.engine = engine_of(build(&w.origin, &w.records), &[]);
    let p =
        w.fp.publish(&w.engine)
            .expect("published into a larger program");
    let large = w.fp.server.capacity();
    assert!(
        large.suffixes as usize > 2 * 20_000 && large.suffixes > small.suffixes,
        "{small:?} -> {large:?}"
    );
    assert!(large.templates > small.templates, "{small:?} -> {large:?}");
    assert_eq!(p.cached, p.new_templates, "every template cached: {p:?}");
    let carried: u64 = w.fp.server.counters().unwrap().iter().sum();
    assert_eq!(carried, counted, "the counters carried over");

    w.check_maps();
    let focus = [name("d10.tld."), name("d11.tld."), name("d19999.tld.")];
    w.check_queries(&mut rng, &focus, 400);
    w.tally
        .report("a 4-delegation program given 20k delegations", 30);
    // It grows again only when the zones outgrow it once more.
    let g = w.fp.generation();
    w.fp.publish(&w.engine).unwrap();
    assert_eq!(w.fp.server.capacity().suffixes, large.suffixes);
    assert_ne!(w.fp.generation(), g);
}
