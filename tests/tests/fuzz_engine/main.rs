//! Fuzz tests of the zone checks and the answer engine, in the normal test suite: deterministic
//! (the corpus's xorshift64* with fixed seeds; `FUZZ_SEED` changes them) and bounded in time
//! (`FUZZ_ROUNDS` scales the number of cases).
//!
//! - Zone text: the zone files of the repository (`tests/zones/types.example.zone` holds every
//!   type whose RDATA the server checks), mutated (bytes, lines, types swapped, RDATA rewritten in the RFC 3597 form,
//!   corrupted or random). Each fails to load with an error, or builds and then answers queries
//!   for its names and random ones (DO 0/1, with and without EDNS, UDP and TCP) with messages
//!   that hickory-proto parses, and compiles to XDP entries — without a panic anywhere.
//! - Query bytes: queries of the corpus for those zones, mutated (header bits and counts, EDNS
//!   OPT records with random options, truncated and compressed names, pointer loops, extra
//!   records, random bytes). The engine answers every message that has an ID and is not a
//!   response, with a well-formed message carrying that ID.
//!
//! Mutations insert ASCII only: hickory-proto insists on UTF-8 ALPN ids, which RFC 9460 does
//! not; the zone-file parser's handling of arbitrary octets is fuzzed in `zonefile`'s tests.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, ResponseCode};
use xdpdns::engine::{Catalog, Engine, EngineConfig, Transport};
use xdpdns::fastpath::compile;
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{rtype, Record};
use xdpdns::zone::{Zone, ZoneSource};
use xdpdns::zonefile::{self, present::rdata_to_text};
use xdpdns_tests::corpus::{names_for, queries_for_names, NameKind, Params, Rng};
use xdpdns_tests::workspace_root;

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

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

struct Seed {
    origin: Name,
    text: String,
    records: Vec<Record>,
}

fn seeds() -> Vec<Seed> {
    let root = workspace_root();
    FILES
        .iter()
        .map(|(o, f)| (*o, std::fs::read_to_string(root.join(f)).expect(f)))
        .map(|(o, text)| {
            let origin = Name::parse(o, None).unwrap();
            let parsed = zonefile::parse_str(&text, &origin, "seed.zone").expect(o);
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

/// Why a zone did not build.
enum Refused {
    Parse,
    Build(String),
}

fn build(origin: &Name, text: &str) -> Result<Zone, Refused> {
    let parsed = zonefile::parse_str(text, origin, "fuzz.zone").map_err(|_| Refused::Parse)?;
    let src = ZoneSource {
        name: "fuzz.zone",
        locations: parsed.locations.as_deref(),
    };
    match Zone::build(origin.clone(), parsed.records, &src) {
        Ok((z, _)) => Ok(z),
        Err(e) => {
            assert!(
                e.location.starts_with("fuzz.zone"),
                "error without its place: {e}"
            );
            Err(Refused::Build(e.message))
        }
    }
}

fn random_byte(rng: &mut Rng) -> u8 {
    if rng.chance(1, 2) {
        *rng.pick(SPECIAL)
    } else {
        0x20 + rng.below(0x5f) as u8
    }
}

/// 1 to 6 octets replaced, removed or inserted.
fn mutate_bytes(text: &str, rng: &mut Rng) -> String {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| rng.next_u64() as u8)
        .collect()
}

/// Lines deleted, doubled or cut short; a type replaced; RDATA replaced by random octets.
fn mutate_lines(text: &str, rng: &mut Rng) -> String {
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
fn rewrite_records(records: &[Record], rng: &mut Rng) -> String {
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

fn engine_of(zones: Vec<Zone>) -> Engine {
    let mut c = Catalog::new();
    for z in zones {
        c.insert(Arc::new(z));
    }
    let config = EngineConfig {
        nsid: Some(b"fuzz".to_vec()),
        identity: Some("fuzz".into()),
        ..Default::default()
    };
    Engine::new(c, config)
}

/// Checks a response to `query`: a DNS message hickory-proto parses, a response, with the
/// query's ID, within the UDP size limit. Returns its RCODE.
fn check_response(query: &[u8], resp: &[u8], t: Transport) -> ResponseCode {
    let m = Message::from_vec(resp).unwrap_or_else(|e| {
        panic!(
            "unparsable response ({e}) to query {}:\n{}",
            hex(query),
            hex(resp)
        )
    });
    assert_eq!(resp[..2], query[..2], "response ID differs");
    assert_eq!(m.metadata.id, u16::from_be_bytes([query[0], query[1]]));
    assert!(resp[2] & 0x80 != 0, "QR is not set");
    if t == Transport::Udp {
        assert!(resp.len() <= 1232, "UDP response of {} octets", resp.len());
    }
    m.metadata.response_code
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
    let rounds = env("FUZZ_ROUNDS", 400) as usize;
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

/// An OPT record: payload, extended RCODE, version, DO and Z bits, and 0 to 4 options, some
/// with a length that does not match their data.
fn random_opt(rng: &mut Rng) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    let payload = *rng.pick(&[0u16, 1, 511, 512, 1232, 4096, 65535]);
    o.extend_from_slice(&payload.to_be_bytes());
    o.push(if rng.chance(1, 8) {
        rng.next_u64() as u8
    } else {
        0
    });
    o.push(if rng.chance(1, 6) {
        rng.next_u64() as u8
    } else {
        0
    });
    o.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    let mut opts = Vec::new();
    for _ in 0..rng.below(5) {
        let random = rng.next_u64() as u16;
        let code = *rng.pick(&[3u16, 8, 10, 12, 15, 65001, random]);
        let data = random_bytes(rng, 24);
        let len = if rng.chance(1, 8) {
            data.len() + rng.below(4) + 1
        } else {
            data.len()
        };
        opts.extend_from_slice(&code.to_be_bytes());
        opts.extend_from_slice(&(len as u16).to_be_bytes());
        opts.extend_from_slice(&data);
    }
    if rng.chance(1, 8) {
        opts.truncate(rng.below(opts.len() + 1));
    }
    o.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    o.extend(opts);
    o
}

/// A question name that is not a plain uncompressed name: pointers (to itself, the header, past
/// the end), reserved label types, labels running past the end, names over 255 octets, no root.
fn bad_name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(7) {
        0 => vec![0xc0, 12],
        1 => vec![0xc0, rng.below(12) as u8],
        2 => vec![3, b'w', b'w', b'w', 0xc0, 0xff],
        3 => vec![0x40 + rng.below(0x80) as u8, b'x', 0],
        4 => vec![20, b'a', b'b'],
        5 => {
            let mut n = Vec::new();
            for _ in 0..128 + rng.below(3) {
                n.extend_from_slice(&[1, b'a']);
            }
            n.push(0);
            n
        }
        _ => vec![7, b'e', b'x', b'a', b'm', b'p', b'l', b'e'],
    }
}

/// One to three mutations of a query message.
fn mutate_query(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(12) {
            0 => {
                m[2] ^= 1 << rng.below(8);
                m[3] ^= 1 << rng.below(8);
                if rng.chance(3, 4) {
                    m[2] &= 0x7f;
                }
            }
            1 if m.len() >= 12 => {
                let at = 4 + 2 * rng.below(4);
                let v = if rng.chance(1, 2) {
                    rng.below(3) as u16
                } else {
                    rng.next_u64() as u16
                };
                m[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            2 => m.truncate(rng.below(m.len() + 1).max(4)),
            3 => m.extend(random_bytes(rng, 32)),
            4 if m.len() > 4 => {
                for _ in 0..1 + rng.below(4) {
                    let at = 4 + rng.below(m.len() - 4);
                    m[at] = rng.next_u64() as u8;
                }
            }
            5 | 6 if m.len() >= 12 => {
                // Another OPT record (or the first), the count sometimes wrong.
                m.extend(random_opt(rng));
                let ar = u16::from_be_bytes([m[10], m[11]]);
                let ar = if rng.chance(1, 8) {
                    ar
                } else {
                    ar.wrapping_add(1)
                };
                m[10..12].copy_from_slice(&ar.to_be_bytes());
            }
            7 if m.len() >= 12 => {
                // OPT owned by a name other than the root.
                let mut o = random_opt(rng);
                o.splice(0..1, [1, b'x', 0]);
                m.extend(o);
                m[11] = m[11].wrapping_add(1);
            }
            8 | 9 if m.len() > 12 => {
                // The question name replaced; the rest of the message kept.
                let end = xdpdns::wire::record::name_len(&m[12..]).map_or(m.len(), |l| 12 + l);
                m.splice(12..end, bad_name(rng));
            }
            10 if m.len() >= 12 => {
                // A record in the answer or authority section.
                let mut rr = vec![0xc0, 12];
                rr.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
                rr.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                let rd = random_bytes(rng, 8);
                rr.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                rr.extend(rd);
                m.extend(rr);
                let at = 6 + 2 * rng.below(2);
                m[at + 1] = m[at + 1].wrapping_add(1);
            }
            // The opcode.
            _ => m[2] = (m[2] & 0x87) | ((rng.below(16) as u8) << 3),
        }
    }
    m
}

#[test]
fn mutated_queries_get_well_formed_answers_with_their_id() {
    let rounds = env("FUZZ_ROUNDS", 400) as usize;
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
