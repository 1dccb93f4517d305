//! Tests on real zones: the signed fixtures in `zones/signed/` (ldns-signzone, dnssec-signzone,
//! Knot DNS) and the demo zone load with the expected records; every loaded record survives a
//! presentation round trip; mutated and random input never panics; and an ignored benchmark of a
//! generated delegation-heavy zone.

use std::collections::BTreeMap;
use std::path::Path;

use super::present::rdata_to_text;
use super::tests::n;
use super::types::{type_from_str, type_name};
use super::{parse_bytes, parse_file, parse_str, ZoneFile};
use crate::wire::record::rtype;

const ZONES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zones/");

fn load(file: &str, apex: &str) -> ZoneFile {
    let path = format!("{ZONES}{file}");
    parse_file(Path::new(&path), &n(apex)).unwrap_or_else(|e| panic!("{e}"))
}

fn counts(z: &ZoneFile) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in &z.records {
        *m.entry(type_name(r.rtype)).or_insert(0) += 1;
    }
    m
}

/// Record counts by type found the way `grep` would: a line starts a record when, after an
/// optional owner, a TTL (digits) is followed by an optional `IN` and a type mnemonic. This
/// holds for the one-record-per-line output of ldns and Knot and for BIND's multi-line output,
/// whose continuation lines never have a type in that place.
fn grep_counts(file: &str) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(format!("{ZONES}{file}")).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        let toks: Vec<&str> = line.split_whitespace().collect();
        let skip = usize::from(!line.starts_with([' ', '\t']));
        let Some(ttl) = toks.get(skip) else { continue };
        if !ttl.bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let mut i = skip + 1;
        if toks.get(i) == Some(&"IN") {
            i += 1;
        }
        if let Some(t) = toks.get(i).and_then(|t| type_from_str(t.as_bytes())) {
            *m.entry(type_name(t)).or_insert(0) += 1;
        }
    }
    m
}

fn expect(z: &ZoneFile, file: &str, hard: &[(&str, usize)]) {
    let got = counts(z);
    let hard: BTreeMap<String, usize> = hard.iter().map(|&(t, c)| (t.to_owned(), c)).collect();
    assert_eq!(
        got, hard,
        "{file}: counts verified with ldns-read-zone and named-checkzone"
    );
    assert_eq!(got, grep_counts(file), "{file}: grep-style count");
}

/// Every record reads back from its presentation form; RRSIGs are signed by the apex.
fn check_records(z: &ZoneFile, apex: &str) {
    let apex = n(apex);
    for r in &z.records {
        assert!(r.owner.is_subdomain_of(&apex));
        let text = rdata_to_text(r.rtype, &r.rdata);
        let line = format!("@ 1 IN {} {text}\n", type_name(r.rtype));
        let again = parse_str(&line, &r.owner, "again").unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(again.records[0].rdata, r.rdata, "{line}");
        if r.rtype == rtype::RRSIG {
            let labels = usize::from(r.rdata[3]);
            assert!(labels <= r.owner.label_count());
            let (signer, _) = crate::wire::record::read_name(&r.rdata[18..]).unwrap();
            assert_eq!(signer, apex);
        }
    }
}

#[test]
fn ldns_signed_nsec_zone() {
    let file = "signed/nsec.example.zone";
    let z = load(file, "nsec.example.");
    expect(
        &z,
        file,
        &[
            ("A", 6),
            ("AAAA", 2),
            ("CAA", 1),
            ("CNAME", 1),
            ("DNSKEY", 2),
            ("HINFO", 1),
            ("MX", 1),
            ("NAPTR", 1),
            ("NS", 3),
            ("NSEC", 13),
            ("RRSIG", 34),
            ("SOA", 1),
            ("SRV", 1),
            ("SSHFP", 1),
            ("TLSA", 1),
            ("TXT", 3),
        ],
    );
    assert_eq!(z.records.len(), 72);
    assert!(z.warnings.is_empty(), "{:?}", z.warnings);
    check_records(&z, "nsec.example.");
    let apex_nsec = z.records.iter().find(|r| r.rtype == rtype::NSEC).unwrap();
    assert_eq!(
        rdata_to_text(rtype::NSEC, &apex_nsec.rdata),
        "_sip._udp.nsec.example. NS SOA MX TXT RRSIG NSEC DNSKEY CAA"
    );
}

#[test]
fn bind_signed_nsec3_optout_zone() {
    let file = "signed/nsec3.example.zone";
    let z = load(file, "nsec3.example.");
    expect(
        &z,
        file,
        &[
            ("A", 8),
            ("AAAA", 2),
            ("CAA", 2),
            ("CNAME", 1),
            ("DNSKEY", 2),
            ("DS", 1),
            ("MX", 2),
            ("NS", 4),
            ("NSEC3", 15),
            ("NSEC3PARAM", 1),
            ("RRSIG", 36),
            ("SOA", 1),
            ("SRV", 1),
            ("TXT", 3),
        ],
    );
    assert!(z.warnings.is_empty(), "{:?}", z.warnings);
    check_records(&z, "nsec3.example.");
    for r in z.records.iter().filter(|r| r.rtype == rtype::NSEC3) {
        // Opt-out flag, one iteration, salt ABCDEF0123, SHA-1 hashes.
        assert_eq!(r.rdata[..10], [1, 1, 0, 1, 5, 0xab, 0xcd, 0xef, 0x01, 0x23]);
        assert_eq!(r.rdata[10], 20);
    }
    let param = z
        .records
        .iter()
        .find(|r| r.rtype == rtype::NSEC3PARAM)
        .unwrap();
    assert_eq!(rdata_to_text(param.rtype, &param.rdata), "1 0 1 ABCDEF0123");
    let soa = z.records.iter().find(|r| r.rtype == rtype::SOA).unwrap();
    assert_eq!(soa.soa_minimum(), Some(300));
    let ds = z.records.iter().find(|r| r.rtype == rtype::DS).unwrap();
    assert_eq!(ds.owner.to_string(), "secure.nsec3.example.");
}

#[test]
fn knot_signed_nsec3_zone() {
    let file = "signed/knot.example.zone";
    let z = load(file, "knot.example.");
    expect(
        &z,
        file,
        &[
            ("A", 6),
            ("AAAA", 1),
            ("CDNSKEY", 1),
            ("CDS", 1),
            ("DNAME", 1),
            ("DNSKEY", 2),
            ("HTTPS", 2),
            ("MX", 1),
            ("NS", 3),
            ("NSEC3", 16),
            ("NSEC3PARAM", 1),
            ("RRSIG", 38),
            ("SOA", 1),
            ("SVCB", 2),
            ("TLSA", 1),
            ("TXT", 2),
            ("ZONEMD", 1),
        ],
    );
    assert!(z.warnings.is_empty(), "{:?}", z.warnings);
    check_records(&z, "knot.example.");
    for r in z.records.iter().filter(|r| r.rtype == rtype::NSEC3) {
        assert_eq!(r.rdata[..6], [1, 0, 0, 0, 0, 20], "no salt, no iterations");
    }
    let svcb = z.records.iter().find(|r| r.rtype == rtype::SVCB).unwrap();
    assert_eq!(
        rdata_to_text(svcb.rtype, &svcb.rdata),
        "1 www.knot.example. alpn=\"dot,h2\" port=853 dohpath=\"/dns-query{?dns}\""
    );
}

#[test]
fn demo_zone_parses() {
    let z = load("example.zone", "example.");
    assert_eq!(z.records.len(), 27);
    assert_eq!(z.records[0].rtype, rtype::SOA);
    assert!(z.records.iter().all(|r| r.ttl == 3600));
    assert!(z.warnings.is_empty(), "{:?}", z.warnings);
    check_records(&z, "example.");
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPECIAL: &[u8] = b"\\\"();$@. \t\n\r0123456789#=,-*aAzZ\xff\x00";

/// Truncated and mutated fixtures and random bytes: `Ok` or `Err`, never a panic.
/// `ZONEFILE_FUZZ_ROUNDS` (default 300) sets the mutations per fixture, `ZONEFILE_FUZZ_SEED` the
/// seed.
#[test]
fn fuzz_never_panics() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("ZONEFILE_FUZZ_ROUNDS", 300);
    let origin = n("example.");
    let mut bases: Vec<Vec<u8>> = [
        "signed/nsec.example.zone",
        "signed/nsec3.example.zone",
        "signed/knot.example.zone",
        "example.zone",
    ]
    .iter()
    .map(|f| std::fs::read(format!("{ZONES}{f}")).unwrap())
    .collect();
    bases.push(
        b"$TTL 1\n@ SOA a b 1 2 3 4 5\nx SVCB 1 . alpn=\"h2,h3\" mandatory=alpn ipv6hint=::1\n\
          y RRSIG A 13 2 3600 20360101000000 20260101000000 1 . AQID\nz NSEC3 1 1 1 - CPNMUOJ1E8 A\n\
          w TYPE9 \\# 2 0102\nv CAA 0 issue \"x\"\n$ORIGIN sub\nu NAPTR 1 2 S \"\" x .\n"
            .to_vec(),
    );
    let mut rng = Rng(env("ZONEFILE_FUZZ_SEED", 0x9e37_79b9_7f4a_7c15) | 1);
    let mut parsed = 0usize;
    for base in &bases {
        for i in 0..=100 {
            let cut = base.len() * i / 100;
            let _ = parse_bytes(&base[..cut], &origin, "fuzz.zone");
            parsed += 1;
        }
        for _ in 0..rounds {
            let mut m = base.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(m.len());
                let byte = if rng.below(2) == 0 {
                    SPECIAL[rng.below(SPECIAL.len())]
                } else {
                    rng.next() as u8
                };
                match rng.below(3) {
                    0 if !m.is_empty() => m[at] = byte,
                    1 if !m.is_empty() => {
                        m.remove(at);
                    }
                    _ => m.insert(at, byte),
                }
            }
            let _ = parse_bytes(&m, &origin, "fuzz.zone");
            parsed += 1;
        }
    }
    for _ in 0..rounds + 200 {
        let len = rng.below(400);
        let r: Vec<u8> = (0..len)
            .map(|_| match rng.below(4) {
                0 => rng.next() as u8,
                _ => SPECIAL[rng.below(SPECIAL.len())],
            })
            .collect();
        let _ = parse_bytes(&r, &origin, "fuzz.zone");
        for t in [
            1u16, 2, 6, 15, 16, 43, 46, 47, 48, 50, 51, 63, 64, 65, 257, 9,
        ] {
            let _ = super::present::rdata_to_text(t, &r);
        }
        parsed += 1;
    }
    assert!(parsed > 2000);
}

/// `cargo test --release -- --ignored --nocapture delegations`; `ZONEFILE_DELEGATIONS` sets the
/// count (default 100000).
#[test]
#[ignore]
fn benchmark_delegations() {
    use std::fmt::Write;
    let count: usize = std::env::var("ZONEFILE_DELEGATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut text = String::from("$ORIGIN example.\n$TTL 86400\n@ SOA ns h 1 2 3 4 5\n  NS ns\n");
    for i in 0..count {
        let _ = writeln!(
            text,
            "d{i} NS ns1.d{i}\n  NS ns2.d{i}\nns1.d{i} A 192.0.{}.{}\nns2.d{i} 3600 IN AAAA 2001:db8::{:x}",
            (i >> 8) & 255,
            i & 255,
            i & 0xffff
        );
    }
    let path = std::env::temp_dir().join(format!("zonefile-bench-{}.zone", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let start = std::time::Instant::now();
    let z = parse_file(&path, &n("example.")).unwrap();
    let took = start.elapsed();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(z.records.len(), 2 + 4 * count);
    println!(
        "{count} delegations, {} records, {} MB of text: parsed in {took:?}",
        z.records.len(),
        text.len() / 1_000_000
    );
}
