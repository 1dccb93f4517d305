//! Fuzz tests of the zone checks and the answer engine, in the normal test suite: deterministic
//! (the corpus's xorshift64* with fixed seeds; `FUZZ_SEED` changes them) and bounded in time
//! (`FUZZ_ROUNDS` scales the number of cases).
//!
//! - Zone text (`zone_text`): the zone files of the repository (`tests/zones/types.example.zone`
//!   holds every type whose RDATA the server checks) and the zones and records of
//!   dns-userspace's unit tests, mutated. Each fails to load with an error, or builds and then
//!   answers queries for its names and random ones (DO 0/1, with and without EDNS, UDP and
//!   TCP) with well-formed messages (`response`), and compiles to XDP entries — without a panic
//!   anywhere.
//! - The fuzz targets (`targets`): `xdpdns::fuzz_support`, the bodies `cargo xtask fuzz` runs
//!   under libFuzzer, over `fuzz/corpus/` and its mutations.
//! - Query bytes (`query_bytes`): queries of the corpus for those zones, mutated. The engine
//!   answers every message that has an ID and is not a response, with a well-formed message
//!   carrying that ID.

mod query_bytes;
mod response;
mod targets;
mod zone_text;

use std::time::Instant;

use hickory_proto::op::ResponseCode;
use xdpdns::engine::Transport;
use xdpdns::fastpath::compile;
use xdpdns::fuzz_support::engine_of;
use xdpdns::zone::Zone;
use xdpdns_tests::corpus::{names_for, queries_for_names, NameKind, Params, Rng};

use query_bytes::mutate_query;
use response::check_response;
use zone_text::{build, mutate_bytes, mutate_lines, rewrite_records, seeds, Refused};

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| rng.next_u64() as u8)
        .collect()
}

/// Queries for a built zone: a sample of the corpus for its names and random names below it.
fn zone_queries(zone: &Zone, rng: &mut Rng, max: usize) -> Vec<(Vec<u8>, Transport)> {
    let mut names = names_for(zone, rng);
    for _ in 0..3 {
        if let Ok(n) = zone.apex().prepend(rng.label().as_bytes()) {
            names.push((n, NameKind::NonExistent));
        }
    }
    let params = Params {
        seed: 0,
        random_types: 2,
        repeat_percent: 0,
        tcp_percent: 30,
    };
    let mut qs = queries_for_names(zone, &names, &params, rng);
    let mut out = Vec::new();
    while !qs.is_empty() && out.len() < max {
        let q = qs.swap_remove(rng.below(qs.len()));
        let t = if q.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        out.push((q.wire(), t));
    }
    out
}

#[test]
fn mutated_zones_are_refused_or_answer_well_formed_messages() {
    let rounds = env("FUZZ_ROUNDS", 300) as usize;
    let mut rng = Rng::new(env("FUZZ_SEED", 0x20e_c4ec));
    let seeds = seeds();
    let start = Instant::now();
    let (mut built, mut unparsed, mut refused, mut rdata_refused) = (0, 0, 0, 0);
    let (mut answers, mut compiled) = (0, 0);
    for seed in &seeds {
        for round in 0..rounds {
            let text = match round % 4 {
                0 => mutate_bytes(&seed.text, &mut rng),
                1 => mutate_lines(&seed.text, &mut rng),
                _ => rewrite_records(&seed.records, &mut rng),
            };
            let zone = match build(&seed.origin, &text) {
                Ok(z) => z,
                Err(Refused::Parse) => {
                    unparsed += 1;
                    continue;
                }
                Err(Refused::Build(m)) => {
                    refused += 1;
                    rdata_refused += usize::from(m.contains("RDATA"));
                    continue;
                }
            };
            built += 1;
            let queries = zone_queries(&zone, &mut rng, 40);
            let engine = engine_of(vec![zone]);
            for (q, t) in &queries {
                let resp = engine
                    .answer(q, *t)
                    .unwrap_or_else(|| panic!("no answer to {}\nzone:\n{text}", hex(q)));
                check_response(q, &resp, *t);
                answers += 1;
            }
            if built % 4 == 0 {
                let zone = engine.catalog.zones().next().expect("one zone");
                let mut entries = compile::Entries::default();
                compile::compile_zone(&engine, zone, 1, &mut entries);
                compiled += 1;
            }
        }
    }
    eprintln!(
        "{built} zones built, {unparsed} not parsed, {refused} refused ({rdata_refused} for \
         their RDATA); {answers} answers, {compiled} zones compiled, in {:.1?}",
        start.elapsed()
    );
    let cases = seeds.len() * rounds;
    assert!(built * 8 >= cases, "{built} of {cases} zones built");
    assert!(unparsed * 4 >= cases, "{unparsed} of {cases} not parsed");
    assert!(refused * 5 >= cases, "{refused} of {cases} refused");
    assert!(
        rdata_refused * 5 >= cases,
        "{rdata_refused} refused for RDATA"
    );
    assert!(answers >= built * 20, "{answers} answers for {built} zones");
    assert!(
        compiled * 5 >= built,
        "{compiled} of {built} zones compiled"
    );
}

#[test]
fn mutated_queries_get_well_formed_answers_with_their_id() {
    let rounds = env("FUZZ_ROUNDS", 300) as usize;
    let mut rng = Rng::new(env("FUZZ_SEED", 0x0_9e4e5));
    let seeds = seeds();
    let zones: Vec<Zone> = seeds
        .iter()
        .map(|s| build(&s.origin, &s.text).unwrap_or_else(|_| panic!("{}", s.origin)))
        .collect();
    let mut base: Vec<(Vec<u8>, Transport)> = Vec::new();
    for z in &zones {
        base.extend(zone_queries(z, &mut rng, 300));
    }
    let engine = engine_of(zones);
    let start = Instant::now();
    let (mut sent, mut dropped, mut answered, mut formerr, mut other) = (0, 0, 0, 0, 0);
    let cases = rounds * 500;
    for i in 0..cases {
        let (q, t) = if i % 10 == 9 {
            // Random octets, a header's worth and more.
            let q = random_bytes(&mut rng, 600);
            (q, *rng.pick(&[Transport::Udp, Transport::Tcp]))
        } else {
            let (q, t) = rng.pick(&base);
            // A share of the queries as they are, so that the answers get mutated EDNS too.
            let q = if rng.chance(1, 4) {
                q.clone()
            } else {
                mutate_query(q, &mut rng)
            };
            (q, *t)
        };
        sent += 1;
        let Some(resp) = engine.answer(&q, t) else {
            // Only messages without an ID and flags, and responses, go unanswered.
            assert!(q.len() < 4 || q[2] & 0x80 != 0, "no answer to {}", hex(&q));
            dropped += 1;
            continue;
        };
        match check_response(&q, &resp, t) {
            ResponseCode::NoError | ResponseCode::NXDomain => answered += 1,
            ResponseCode::FormErr => formerr += 1,
            _ => other += 1,
        }
    }
    eprintln!(
        "{sent} queries: {dropped} dropped, {answered} answered, {formerr} FORMERR, {other} \
         other RCODEs, in {:.1?}",
        start.elapsed()
    );
    assert!(dropped * 20 >= cases, "{dropped} dropped");
    assert!(answered * 10 >= cases, "{answered} answered");
    assert!(formerr * 10 >= cases, "{formerr} FORMERR");
    assert!(other * 20 >= cases, "{other} other RCODEs");
}
