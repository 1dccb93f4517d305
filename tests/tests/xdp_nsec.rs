//! NSEC denials in the XDP program through BPF_PROG_TEST_RUN (root, no network): a TLD signed
//! with ldns-signzone (NSEC), random NXDOMAIN names at depths 1 and 2 below the apex and below
//! other names, names sorting before the first and after the last of the zone, labels with
//! `-`, digits, upper case, zero and other binary octets, labels that extend or prefix the
//! zone's, DO=1 (with and without a DNS COOKIE) and DO=0, over IPv4 and IPv6. Every XDP answer
//! is byte-equal to the engine's; every NXDOMAIN with DO=1 is answered in XDP (below a name
//! with children, the apex, an other name or an empty non-terminal, the covering NSEC found
//! by the program's search over its child labels), and everything is counted by kind. The covering NSEC depends on where the name
//! sorts, so equal answers check the program's canonical order against the engine's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dns_common::{counter, EDNS_TEST_FIXED_TIME};
use xdpdns::engine::cookie::{self, Cookies};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns::xfr::timers::Clock;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::oracle;
use xdpdns_tests::tld::{self, Rng};

const ORIGIN: &str = "nsec-tld.";
const NOW: u32 = 1_800_000_000;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        NOW as u64
    }
}

/// The TLD of `n` delegations, with more names whose labels sort at the edges (`!` before
/// the wildcard's `*`, `~` last), upper case, a zero octet, names with children (`nic`, `sub`)
/// and an empty non-terminal (`ent`); signed with NSEC.
fn signed_zone(dir: &Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut z = tld::zone_text(ORIGIN, n);
    let mut rng = Rng::new(11);
    for i in 0..n {
        let l = format!("{}-{i}", rng.label());
        let _ = writeln!(z, "{l} NS ns1.hoster.net.");
    }
    for extra in [
        "\\!bang A 198.18.30.1",
        "MiXeD-9 NS ns1.hoster.net.",
        "0start A 198.18.30.2",
        "a\\000b A 198.18.30.3",
        "~tilde A 198.18.30.4",
        "sub A 198.18.30.5",
        "a.sub A 198.18.30.6",
        "z.sub A 198.18.30.7",
        "x.ent A 198.18.30.8",
    ] {
        let _ = writeln!(z, "{extra}");
    }
    let unsigned = dir.join("nsec-tld.zone");
    std::fs::write(&unsigned, z).unwrap();
    let out = dir.join("nsec-tld.signed");
    tld::sign_ldns(dir, ORIGIN, &unsigned, &out, &[]).unwrap();
    out
}

fn secret() -> cookie::Secret {
    cookie::parse_secret("445536bcd2513298075a5d379663c962").unwrap()
}

fn rig(zone: &Path) -> (XdpServer, Engine) {
    let spec: ZoneSpec = format!("{ORIGIN}={}", zone.display()).parse().unwrap();
    let (catalog, _) = load_catalog(&[spec]).unwrap();
    let config = EngineConfig {
        cookies: Some(Cookies {
            secret: secret(),
            previous: None,
            require: false,
            clock: Arc::new(FixedClock),
        }),
        ..Default::default()
    };
    let engine = Engine::new(catalog, config);
    let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, Capacity::default(), 3).unwrap();
    let mut e = xdpdns::fastpath::edns::config(&engine.config);
    e.flags |= EDNS_TEST_FIXED_TIME;
    e.test_time = NOW;
    xdp.set_edns(e).unwrap();
    (xdp, engine)
}

/// A random label: letters in both cases, digits and `-` mostly; sometimes any octets (zero,
/// `.`, high octets), the edges of the order, or a zone label extended or cut.
fn label(rng: &mut Rng) -> Vec<u8> {
    let text = |rng: &mut Rng, n: usize| -> Vec<u8> {
        let chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
        (0..n)
            .map(|_| chars[rng.below(chars.len() as u64) as usize])
            .collect()
    };
    match rng.below(10) {
        0 => (0..1 + rng.below(8))
            .map(|_| rng.next_u64() as u8)
            .collect(),
        1 => [
            &[0u8][..],
            &[1],
            b"!",
            b"!a",
            b"0",
            b"-",
            &[0xff, 0xff],
            b"~~",
            b"zzzz",
        ][rng.below(9) as usize]
            .to_vec(),
        2 => {
            let base = [
                &b"d1"[..],
                b"d10",
                b"mixed-9",
                b"bang",
                b"a\0b",
                b"sub",
                b"ent",
            ];
            let mut l = base[rng.below(base.len() as u64) as usize].to_vec();
            match rng.below(3) {
                0 => l.push(0),
                1 => l.extend_from_slice(b"-x"),
                _ => l.truncate(l.len() - 1),
            }
            l
        }
        3 => text(rng, 63),
        _ => {
            let n = 1 + rng.below(20) as usize;
            text(rng, n)
        }
    }
}

/// Where a query name is.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(usize)]
enum Below {
    /// Its closest encloser is the apex.
    Apex,
    /// Below a name with children other than the apex (`sub`, `nic`, the ENT `ent`).
    Parent,
    /// Below a name without children.
    Leaf,
}

/// The query's name in wire form and where it is.
fn name(rng: &mut Rng) -> (Vec<u8>, Below) {
    let (suffix, below): (&[&[u8]], Below) = match rng.below(8) {
        0 => (&[b"sub"], Below::Parent),
        1 => (&[b"ent"], Below::Parent),
        2 => (&[b"nic"], Below::Parent),
        3 => (&[b"a", b"sub"], Below::Leaf),
        _ => (&[], Below::Apex),
    };
    let mut labels: Vec<Vec<u8>> = (0..1 + rng.below(2)).map(|_| label(rng)).collect();
    labels.extend(suffix.iter().map(|l| l.to_vec()));
    labels.push(b"nsec-tld".to_vec());
    let mut wire = Vec::new();
    for l in &labels {
        wire.push(l.len() as u8);
        wire.extend_from_slice(l);
    }
    wire.push(0);
    (wire, below)
}

/// `q`'s message with its name replaced by `wire`.
fn with_name(q: &Q, wire: &[u8]) -> Vec<u8> {
    let mut m = q.wire();
    // Q's name is "x": [1, 'x', 0] after the header.
    m.splice(12..15, wire.iter().copied());
    m
}

#[test]
fn nsec_nxdomain_answers_equal_the_engine_and_are_answered_in_xdp() {
    let dir = std::env::temp_dir().join(format!("xdpdns-nsec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let zone = signed_zone(&dir, 150);
    let (mut xdp, engine) = rig(&zone);
    let count: usize = std::env::var("XDPDNS_NSEC_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    let mut rng = Rng::new(42);
    let mut by_counter = vec![0usize; counter::COUNT as usize];
    let (mut signed, mut nx) = ([0usize; 3], 0);
    for i in 0..count {
        let (wire, below) = name(&mut rng);
        let mut q = Q::new("x", [1, 28, 15, 16][i % 4]);
        q.id = i as u16;
        q.dnssec_ok = i % 5 != 0;
        if rng.chance(50) {
            q.options = vec![(10, (rng.next_u64()).to_be_bytes().to_vec())];
        }
        let dns = with_name(&q, &wire);
        let s = oracle::spec(&mut rng);
        let expected = engine.answer_to(&dns, Transport::Udp, s.src).unwrap();
        let rcode = expected[3] & 0xf;
        let before = xdp.counters().unwrap();
        let answered = oracle::check(&mut xdp, &engine, &s, &dns).is_some();
        let after = xdp.counters().unwrap();
        let moved: Vec<usize> = (0..after.len())
            .filter(|&c| after[c] != before[c])
            .collect();
        assert_eq!(moved.len(), 1, "one counter per packet: {moved:?}");
        by_counter[moved[0]] += 1;
        assert_ne!(moved[0], counter::PASS_ERROR as usize, "{wire:02x?}");
        if rcode != 3 {
            continue;
        }
        nx += 1;
        if answered {
            assert_eq!(moved[0], counter::ANSWERED_NEGATIVE as usize, "{wire:02x?}");
        }
        if q.dnssec_ok {
            signed[below as usize] += 1;
            assert!(
                answered,
                "NXDOMAIN DO=1 ({below:?}) answered in XDP: {wire:02x?}"
            );
        }
    }
    let mut table = String::new();
    for (i, n) in by_counter.iter().enumerate().filter(|(_, n)| **n > 0) {
        let _ = writeln!(table, "  {:<20} {n}", counter::NAMES[i]);
    }
    println!("{count} queries, {nx} NXDOMAIN; by counter:\n{table}");
    println!("NXDOMAIN DO=1 answered in XDP below the apex, other parents, leaves: {signed:?}");
    assert!(
        signed.iter().all(|n| *n > count / 20),
        "the corpus asks below each: {signed:?}"
    );
    assert!(nx * 10 > count * 9, "the corpus is NXDOMAIN: {nx}");
    let _ = std::fs::remove_dir_all(&dir);
}
