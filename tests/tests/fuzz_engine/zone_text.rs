//! Zone text for the fuzz tests: the seeds (the repository's zone files, and the zones and
//! records of dns-userspace's unit tests) and their mutations — octets, lines, types swapped,
//! RDATA rewritten in the RFC 3597 form, corrupted or random. Mutations insert ASCII only (the
//! zone-file parser's handling of arbitrary octets is fuzzed in `zonefile`'s tests).

use std::path::Path;

use xdpdns::wire::name::Name;
use xdpdns::wire::record::{rtype, Record};
use xdpdns::zone::Zone;
use xdpdns::zonefile::{self, present::rdata_to_text};
use xdpdns_tests::corpus::Rng;
use xdpdns_tests::workspace_root;

use super::{hex, random_bytes};

/// The zone files the mutations start from, with their origins.
const FILES: &[(&str, &str)] = &[
    ("example.", "zones/example.zone"),
    ("nsec.example.", "zones/signed/nsec.example.zone"),
    ("nsec3.example.", "zones/signed/nsec3.example.zone"),
    ("knot.example.", "zones/signed/knot.example.zone"),
    ("diff.example.", "tests/zones/diff.example.zone"),
    ("types.example.", "tests/zones/types.example.zone"),
];

/// Types swapped in: the checked types and some opaque ones (0 is refused).
const TYPES: &[u16] = &[
    1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 35, 39, 43, 44, 46, 47, 48, 50, 51, 52, 59, 60, 63, 64, 65,
    257, 99, 17, 18, 36, 14, 21, 26, 7, 8, 9, 10, 29, 25, 24, 11, 0, 256, 65280, 65535,
];

/// Octets the zone-file syntax cares about, and some it does not.
const SPECIAL: &[u8] = b"\\\"();$@. \t\n0123456789#=,-*aAzZ";

pub struct Seed {
    pub origin: Name,
    pub text: String,
    pub records: Vec<Record>,
}

/// The zone files, the zones of dns-userspace's unit tests, and a zone of the records its
/// RDATA tests write (those that build together).
pub fn seeds() -> Vec<Seed> {
    let root = workspace_root();
    let mut texts: Vec<(String, String)> = FILES
        .iter()
        .map(|(o, f)| {
            (
                o.to_string(),
                std::fs::read_to_string(root.join(f)).expect(f),
            )
        })
        .collect();
    let (mut zones, mut records) = (Vec::new(), Vec::new());
    unit_test_texts(&root.join("dns-userspace/src"), &mut zones, &mut records);
    let n = texts.len();
    texts.extend(zones.into_iter().filter(|(o, t)| {
        let o = Name::parse(o, None).unwrap();
        build(&o, t).is_ok()
    }));
    assert!(texts.len() > n, "no zone of the unit tests builds");
    let origin = Name::parse("example.", None).unwrap();
    let mut zone =
        "$ORIGIN example.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 198.18.0.1\n".to_owned();
    let mut added = 0;
    for r in records {
        let more = format!("{zone}{r}\n");
        if build(&origin, &more).is_ok() {
            zone = more;
            added += 1;
        }
    }
    assert!(added >= 5, "{added} records of the unit tests");
    texts.push(("example.".into(), zone));
    texts
        .into_iter()
        .map(|(o, text)| {
            let origin = Name::parse(&o, None).unwrap();
            let parsed = zonefile::parse_str(&text, &origin, "seed.zone").expect(&o);
            // Every seed builds: the mutations start from good zones.
            if let Err(Refused::Build(e)) = build(&origin, &text) {
                panic!("{o}: {e}");
            }
            Seed {
                origin,
                text,
                records: parsed.records,
            }
        })
        .collect()
}

/// The raw string literals in the sources below `dir`: zone texts (those with an SOA; the
/// origin from `$ORIGIN`, else `example.`) and one-line records owned by `a`.
fn unit_test_texts(dir: &Path, zones: &mut Vec<(String, String)>, records: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("dns-userspace sources") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            unit_test_texts(&path, zones, records);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("source");
        for piece in src.split("r#\"").skip(1) {
            let Some((body, _)) = piece.split_once("\"#") else {
                continue;
            };
            if body.contains(" SOA ") {
                let origin = body.lines().find_map(|l| l.strip_prefix("$ORIGIN "));
                zones.push((origin.unwrap_or("example.").to_owned(), body.to_owned()));
            } else if body.starts_with("a ") && !body.contains('\n') {
                records.push(body.to_owned());
            }
        }
    }
}

pub use xdpdns::fuzz_support::Refused;

/// The zone of `text`, or why not (`xdpdns::fuzz_support::build_zone`, as the fuzz targets).
pub fn build(origin: &Name, text: &str) -> Result<Zone, Refused> {
    xdpdns::fuzz_support::build_zone(origin, text.as_bytes())
}

fn random_byte(rng: &mut Rng) -> u8 {
    if rng.chance(1, 2) {
        *rng.pick(SPECIAL)
    } else {
        0x20 + rng.below(0x5f) as u8
    }
}

/// 1 to 6 octets replaced, removed or inserted.
pub fn mutate_bytes(text: &str, rng: &mut Rng) -> String {
    let mut m = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(m.len().max(1));
        let b = random_byte(rng);
        match rng.below(3) {
            0 if at < m.len() => m[at] = b,
            1 if at < m.len() => {
                m.remove(at);
            }
            _ => m.insert(at.min(m.len()), b),
        }
    }
    String::from_utf8_lossy(&m).into_owned()
}

/// `\# len hex`; the length is sometimes wrong.
fn generic(rdata: &[u8], rng: &mut Rng) -> String {
    let len = if rng.chance(1, 16) {
        rdata.len() + 1
    } else {
        rdata.len()
    };
    format!("\\# {len} {}", hex(rdata))
}

/// Lines deleted, doubled or cut short; a type replaced; RDATA replaced by random octets.
pub fn mutate_lines(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(lines.len());
        match rng.below(5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let cut = rng.below(lines[i].len() + 1);
                lines[i] = lines[i].chars().take(cut).collect();
            }
            op => {
                let toks: Vec<&str> = lines[i].split_whitespace().collect();
                let Some(t) = toks.iter().position(|t| rtype::from_str(t).is_some()) else {
                    continue;
                };
                let owner = if lines[i].starts_with([' ', '\t']) {
                    ""
                } else {
                    toks[0]
                };
                let head = toks[..t].iter().skip(usize::from(!owner.is_empty()));
                let head: Vec<&str> = head.copied().collect();
                let ty = rtype::to_string(*rng.pick(TYPES));
                let rdata = if op == 3 {
                    toks[t + 1..].join(" ")
                } else {
                    generic(&random_bytes(rng, 48), rng)
                };
                lines[i] = format!("{owner} {} {ty} {rdata}", head.join(" "));
            }
        }
        if lines.is_empty() {
            break;
        }
    }
    lines.join("\n") + "\n"
}

/// Corrupted wire RDATA: cut short, an octet changed or added (often a length or label
/// octet), junk appended, or random.
fn corrupt(rd: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = rd.to_vec();
    let at = rng.below(v.len().max(1));
    let special = *rng.pick(&[0u8, 1, 2, 4, 63, 64, 0x3f, 0xc0, 0xc0, 0xff]);
    let b = if rng.chance(1, 2) {
        special
    } else {
        rng.next_u64() as u8
    };
    match rng.below(5) {
        0 => v.truncate(at),
        1 if !v.is_empty() => v[at] = b,
        2 => v.insert(at.min(v.len()), b),
        3 => v.extend(random_bytes(rng, 6)),
        _ => v = random_bytes(rng, 40),
    }
    v
}

/// The seed's records one per line (presentation form), with 1 to 3 of them rewritten in the
/// RFC 3597 form: corrupted, retyped, given another record's RDATA, or unchanged.
pub fn rewrite_records(records: &[Record], rng: &mut Rng) -> String {
    let mut victims: Vec<usize> = (0..1 + rng.below(3))
        .map(|_| rng.below(records.len()))
        .collect();
    victims.sort_unstable();
    let mut out = String::new();
    for (i, r) in records.iter().enumerate() {
        let mut t = r.rtype;
        let rdata = if victims.binary_search(&i).is_ok() {
            let rd = match rng.below(4) {
                0 => r.rdata.clone(),
                1 => rng.pick(records).rdata.clone(),
                _ => corrupt(&r.rdata, rng),
            };
            if rng.chance(1, 4) {
                t = *rng.pick(TYPES);
            }
            generic(&rd, rng)
        } else {
            rdata_to_text(t, &r.rdata)
        };
        let t = rtype::to_string(t);
        out.push_str(&format!("{} {} IN {t} {rdata}\n", r.owner, r.ttl));
    }
    out
}
