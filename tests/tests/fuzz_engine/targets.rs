//! The fuzz targets' bodies (`xdpdns::fuzz_support`, run by libFuzzer through `cargo xtask
//! fuzz`) over their seed corpus (`fuzz/corpus/<target>/`) and over deterministic mutations
//! of it: zone text by this suite's zone mutators, messages (queries, responses, one message
//! of a framed transfer at a time) by its query mutator. Every seed must reach an accepting
//! outcome, and the mutations must reach each outcome class a target has (lower bounds), so
//! that a target that stopped parsing, or stopped refusing, fails here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use xdpdns::fuzz_support::{framed, frames, Body, TARGETS};
use xdpdns_tests::corpus::Rng;
use xdpdns_tests::workspace_root;

use super::query_bytes::mutate_query;
use super::zone_text::{mutate_bytes, mutate_lines};
use super::{env, random_bytes};

/// The seeds of a target, sorted by file name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace_root().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).expect("seed");
            (p, b)
        })
        .collect()
}

/// A mutation of `seed` for `target`.
fn mutate(target: &str, seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    match target {
        "zonefile" => {
            let text = String::from_utf8_lossy(seed);
            let (origin, zone) = text.split_once('\n').unwrap_or((&text, ""));
            let zone = if rng.chance(1, 2) {
                mutate_bytes(zone, rng)
            } else {
                mutate_lines(zone, rng)
            };
            format!("{origin}\n{zone}").into_bytes()
        }
        "engine" => {
            let mut m = vec![seed.first().copied().unwrap_or(0) ^ u8::from(rng.chance(1, 8))];
            m.extend(mutate_query(seed.get(1..).unwrap_or_default(), rng));
            m
        }
        "wire" | "message" | "notify" => mutate_query(seed, rng),
        _ => {
            // One message of a framed transfer mutated, sometimes one dropped or cut off.
            let mut msgs: Vec<Vec<u8>> = frames(seed).into_iter().map(<[u8]>::to_vec).collect();
            if msgs.is_empty() {
                return random_bytes(rng, 64);
            }
            let i = rng.below(msgs.len());
            match rng.below(8) {
                0 => {
                    msgs.remove(i);
                }
                1 => msgs.truncate(i + 1),
                _ => msgs[i] = mutate_query(&msgs[i], rng),
            }
            let mut out = framed(msgs.iter().map(Vec::as_slice));
            if rng.chance(1, 16) {
                out.truncate(rng.below(out.len() + 1));
            }
            out
        }
    }
}

/// Outcomes a seed of this target may have: the accepting ones (and the refusals the corpus
/// holds on purpose: a request signed an hour off).
fn seed_ok(target: &str, file: &str, class: &str) -> bool {
    match target {
        // Type and RDATA seeds are no queries.
        "wire" if file.starts_with("seed-rdata-") => class == "rdata",
        "zonefile" | "axfr" => class == "built",
        "wire" => class == "query",
        "engine" => matches!(class, "noerror" | "nxdomain"),
        "message" => class != "malformed",
        "ixfr" => matches!(class, "applied" | "up_to_date" | "full"),
        "tsig" => matches!(class, "response_verified" | "unsigned" | "rejected"),
        "notify" => matches!(class, "accepted" | "accepted_signed"),
        _ => false,
    }
}

/// Outcome classes the mutations must reach, each in at least 1/`den` of the cases.
const BOUNDS: &[(&str, &[(&str, usize)])] = &[
    (
        "zonefile",
        &[("built", 8), ("unparsed", 8), ("refused", 20)],
    ),
    ("wire", &[("query", 100), ("rdata", 10), ("error", 10)]),
    (
        "engine",
        &[
            ("noerror", 50),
            ("nxdomain", 100),
            ("formerr", 4),
            ("other_rcode", 10),
        ],
    ),
    (
        "message",
        &[
            ("malformed", 2),
            ("plain", 25),
            ("edns", 60),
            ("signed", 40),
        ],
    ),
    (
        "axfr",
        &[
            ("built", 12),
            ("malformed", 4),
            ("protocol", 40),
            ("incomplete", 12),
        ],
    ),
    (
        "ixfr",
        &[
            ("applied", 32),
            ("full", 32),
            ("up_to_date", 32),
            ("malformed", 4),
            ("protocol", 80),
        ],
    ),
    (
        "tsig",
        &[
            ("response_verified", 80),
            ("rejected", 20),
            ("unsigned", 12),
            ("verified", 30),
        ],
    ),
    (
        "notify",
        &[("accepted", 20), ("refused_answered", 4), ("refused", 50)],
    ),
];

fn run(target: &str, body: Body, cases: usize, rng: &mut Rng) {
    let seeds = corpus(target);
    assert!(seeds.len() >= 2, "{target}: {} seeds", seeds.len());
    for (path, data) in &seeds {
        let class = body(data);
        let file = path.file_name().expect("name").to_string_lossy();
        assert!(
            seed_ok(target, &file, class),
            "{target}: seed {file} is {class}"
        );
    }
    let start = Instant::now();
    let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..cases {
        let (_, seed) = rng.pick(&seeds);
        let input = mutate(target, seed, rng);
        *classes.entry(body(&input)).or_default() += 1;
    }
    eprintln!(
        "{target}: {} seeds, {cases} mutations in {:.1?}: {classes:?}",
        seeds.len(),
        start.elapsed()
    );
    let bounds = BOUNDS.iter().find(|(t, _)| *t == target).expect("bounds").1;
    for (class, den) in bounds {
        let n = classes.get(class).copied().unwrap_or(0);
        assert!(
            n * den >= cases,
            "{target}: {n} of {cases} mutations {class}"
        );
    }
}

#[test]
fn fuzz_targets_hold_over_their_corpus_and_its_mutations() {
    let rounds = env("FUZZ_ROUNDS", 300) as usize;
    let mut rng = Rng::new(env("FUZZ_SEED", 0x7a_2637));
    assert_eq!(TARGETS.len(), BOUNDS.len());
    for (target, body) in TARGETS {
        // Zone text costs a build and a few hundred answers per case.
        let cases = if *target == "zonefile" {
            rounds * 3
        } else {
            rounds * 10
        };
        run(target, *body, cases, &mut rng);
    }
}
