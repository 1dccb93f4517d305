//! NSEC3 denials in the XDP program through BPF_PROG_TEST_RUN (root, no network): zones signed
//! with ldns-signzone (opt-out and not; salts of 0, 1, 8 and 255 octets; 0, 1, 10 and 150
//! iterations), random NXDOMAIN names at several depths, every XDP_TX byte-equal to the
//! engine's answer, and most NXDOMAIN queries answered in XDP. The covering NSEC3 of a next
//! closer name depends on its hash, so equal answers check the program's SHA-1 and iterations
//! against the userspace hashing (`zone/nsec3.rs`) for every name sent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use dns_common::{counter, Config};
use xdpdns::engine::{Engine, EngineConfig, Transport};
use xdpdns::fastpath::compile;
use xdpdns::fastpath::parts::ASSEMBLED_MAX;
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::zone::load::{load_catalog, ZoneSpec};
use xdpdns_tests::client::Q;
use xdpdns_tests::frame::{self, FrameSpec};
use xdpdns_tests::tld::{self, Rng};
use xdpdns_tests::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6};

const XDP_TX: u32 = 3;
const XDP_PASS: u32 = 2;

/// An NSEC3 signing: salt (hex, empty for none), iterations, opt-out, and whether BIND's
/// dnssec-signzone signs (ldns-signzone 1.8.3 aborts on salts of 128 octets and more).
#[derive(Clone, Copy, Debug)]
struct Params {
    salt: &'static str,
    iterations: u16,
    opt_out: bool,
    bind: bool,
}

/// The TLD zone of `n` delegations signed with ldns-signzone and these NSEC3 parameters.
fn signed_zone(dir: &Path, origin: &str, n: usize, p: Params) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let zone = tld::write_zone(dir, origin, n, false)?;
    let out = dir.join(format!("{origin}signed"));
    if p.bind {
        tld::sign_nsec3(dir, origin, &zone, &out, p.salt, p.iterations, p.opt_out)?;
        return Ok(out);
    }
    let iterations = p.iterations.to_string();
    let mut args = vec!["-n", "-t", &iterations];
    if !p.salt.is_empty() {
        args.extend(["-s", p.salt]);
    }
    if p.opt_out {
        args.push("-p");
    }
    tld::sign_ldns(dir, origin, &zone, &out, &args)?;
    Ok(out)
}

struct Rig {
    xdp: XdpServer,
    engine: Engine,
}

fn rig(zone: &Path, origin: &str, payload: u16) -> Rig {
    let spec: ZoneSpec = format!("{origin}={}", zone.display()).parse().unwrap();
    let (catalog, _) = load_catalog(&[spec]).unwrap();
    let engine = Engine::new(
        catalog,
        EngineConfig {
            server_payload: payload,
            ..Default::default()
        },
    );
    let mut xdp = XdpServer::load().unwrap();
    xdp.add_service_addr(server()).unwrap();
    let mut entries = compile::Entries::default();
    let mut nsec3 = 0;
    for z in engine.catalog.zones() {
        nsec3 += compile::compile_zone(&engine, z, 7, &mut entries).nsec3;
    }
    assert!(nsec3 > 0, "NSEC3 denial templates were made");
    xdp.insert(&entries).unwrap();
    xdp.set_config(Config {
        port: 53,
        server_payload: payload,
        generation: 7,
        flags: 0,
        ..Default::default()
    })
    .unwrap();
    Rig { xdp, engine }
}

fn server() -> IpAddr {
    "198.18.0.1".parse().unwrap()
}

fn spec() -> FrameSpec {
    FrameSpec::udp("198.18.0.2".parse().unwrap(), server(), 53)
}

/// A random label of 1 to 20 letters and digits, in mixed case.
fn label(rng: &mut Rng) -> String {
    let chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let n = 1 + rng.below(20);
    (0..n)
        .map(|_| chars[rng.below(chars.len() as u64) as usize] as char)
        .collect()
}

/// Sends `count` random NXDOMAIN queries (DO=1 and 0, depths 1–3 below the apex and below an
/// existing name); asserts every XDP answer equals the engine's and every pass is unchanged.
/// Returns (DO=1 queries answered in XDP, DO=1 queries).
fn differential(r: &mut Rig, origin: &str, count: usize, seed: u64) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let (mut answered, mut signed) = (0, 0);
    for i in 0..count {
        let depth = 1 + rng.below(3);
        // "q-" keeps them off the zone's own names.
        let mut name: Vec<String> = (0..depth)
            .map(|_| format!("q-{}", label(&mut rng)))
            .collect();
        if i % 3 == 0 {
            name.push("nic".into());
        }
        let name = format!("{}.{origin}", name.join("."));
        let dnssec = i % 4 != 0;
        let mut q = Q::new(&name, [1, 28, 15][i % 3]);
        q.edns = Some(4096);
        q.dnssec_ok = dnssec;
        q.id = i as u16;
        let dns = q.wire();
        let expected = r.engine.answer(&dns, Transport::Udp).unwrap();
        assert_eq!(expected[3] & 0xf, 3, "{name} is NXDOMAIN");
        let f = frame::build(&spec(), &dns);
        let before = r.xdp.counters().unwrap();
        let (action, out) = r.xdp.test_run(&f).unwrap();
        let after = r.xdp.counters().unwrap();
        let moved: Vec<usize> = (0..before.len())
            .filter(|&c| after[c] != before[c])
            .collect();
        assert_eq!(moved.len(), 1, "one counter per packet: {moved:?}");
        if action == XDP_TX {
            assert_eq!(moved[0], counter::ANSWERED_NEGATIVE as usize);
            let p = frame::parse(&out).expect("valid checksums and lengths");
            assert_eq!(
                p.payload, expected,
                "XDP answer to {name} (DO={dnssec}) equals the engine's"
            );
            answered += dnssec as usize;
        } else {
            assert_eq!(action, XDP_PASS);
            assert_eq!(out, f, "passed unchanged");
            assert_ne!(
                moved[0],
                counter::PASS_ERROR as usize,
                "{name}: not an error"
            );
        }
        signed += dnssec as usize;
    }
    (answered, signed)
}

fn check(p: Params, n: usize, payload: u16) {
    let origin = "nsec3-tld.";
    let dir = std::env::temp_dir().join(format!(
        "xdpdns-nsec3-{}-{}-{}-{}",
        std::process::id(),
        p.salt.len(),
        p.iterations,
        p.opt_out
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let zone = signed_zone(&dir, origin, n, p).unwrap();
    let mut r = rig(&zone, origin, payload);
    let (answered, signed) = differential(&mut r, origin, 400, p.iterations as u64 + 1);
    assert!(
        answered * 10 > signed * 9,
        "{p:?}: {answered} of {signed} DO=1 NXDOMAIN answered in XDP"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn opt_out_no_salt_no_iterations() {
    check(
        Params {
            salt: "",
            iterations: 0,
            opt_out: true,
            bind: false,
        },
        300,
        1232,
    );
}

#[test]
fn one_octet_salt_one_iteration() {
    check(
        Params {
            salt: "ab",
            iterations: 1,
            opt_out: false,
            bind: false,
        },
        200,
        1232,
    );
}

#[test]
fn eight_octet_salt_ten_iterations_opt_out() {
    check(
        Params {
            salt: "0123456789abcdef",
            iterations: 10,
            opt_out: true,
            bind: false,
        },
        100,
        1232,
    );
}

/// The longest salt makes the message and every iteration span several SHA-1 blocks; the
/// answers outgrow 1232 octets, so the server's payload is 4096 here.
#[test]
fn longest_salt_most_iterations() {
    let salt: &'static str = Box::leak("a5".repeat(255).into_boxed_str());
    check(
        Params {
            salt,
            iterations: 150,
            opt_out: false,
            bind: true,
        },
        50,
        4096,
    );
}

/// Changes to an NSEC3 zone published with `publish_change`: one that keeps the NSEC3 chain
/// is published in place and the denials keep their arrays; one that changes the chain is
/// published in full (a new generation with new arrays). After each, NXDOMAIN and the rest
/// equal the new engine or are passed.
#[test]
fn changes_to_an_nsec3_zone_keep_denials_equal_to_the_engine() {
    use xdpdns::fastpath::Update;
    use xdpdns::wire::record::rtype;
    use xdpdns_tests::incremental::{name, rr, How, World};
    let text =
        std::fs::read_to_string(xdpdns_tests::zone_file("signed/nsec3.example.zone")).unwrap();
    let mut w = World::new("nsec3.example.", &text, &[]);
    let mut rng = Rng::new(0x3e3c);
    let www = name("www.nsec3.example.");
    let nx = name("q-nx.www.nsec3.example.");
    let same_serial = How {
        between: false,
        same_serial: true,
    };
    // An A record of www changes: the chain stays.
    let old = rr(&w.origin, "www.nsec3.example. 3600 A 192.0.2.80");
    let new = rr(&w.origin, "www.nsec3.example. 3600 A 192.0.2.81");
    assert!(w.records.contains(&old));
    let p = w.step_probed(vec![old], vec![new], same_serial, &[]);
    assert!(
        matches!(p.update, Update::Incremental { .. }),
        "{:?}",
        p.update
    );
    w.check_queries(&mut rng, &[www.clone(), nx.clone()], 300);
    // An NSEC3 record's TTL changes: the chain differs.
    let n3 = w
        .records
        .iter()
        .find(|r| r.rtype == rtype::NSEC3)
        .unwrap()
        .clone();
    let mut changed = n3.clone();
    changed.ttl += 1;
    let p = w.step_probed(vec![n3], vec![changed], same_serial, &[]);
    match &p.update {
        Update::Full { reason: Some(r) } => assert!(r.contains("NSEC3"), "{r}"),
        other => panic!("published in full for the NSEC3 chain: {other:?}"),
    }
    w.check_queries(&mut rng, &[www, nx], 300);
    assert!(w.tally.answered > 0, "the queries were answered in XDP too");
}

/// A TLD whose apex has `ns` name servers with glue (A and AAAA), and 50 delegations.
fn big_apex_zone(origin: &str, ns: usize) -> String {
    let mut z = tld::zone_text(origin, 50);
    for i in 0..ns {
        z.push_str(&format!(
            "@ NS ns{i}.nic\nns{i}.nic A 198.18.30.{i}\nns{i}.nic AAAA fd00:30::{i:x}\n"
        ));
    }
    z
}

/// Apex answers too long for one template (the NS RRset with its glue and, signed, all their
/// RRSIGs), in one to three parts: answered in XDP, byte-equal to the engine, counted as exact
/// answers (NODATA as negative), DO=0 and DO=1, for an unsigned zone, an NSEC3 and an NSEC
/// zone; clients whose payload the answer exceeds are passed.
#[test]
fn apex_answers_too_long_for_a_template_are_assembled_like_the_engine() {
    let origin = "big-apex.";
    let dir = std::env::temp_dir().join(format!("xdpdns-big-apex-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // (servers added, signing): NS answers of one to three parts, and one beyond them.
    let cases = [
        (12, "unsigned"),
        (1, "nsec3"),
        (2, "nsec"),
        (3, "nsec3"),
        (4, "nsec"),
        (6, "nsec3"),
    ];
    // Beyond the parts, the apex answers are passed.
    let beyond_parts = |ns: usize| ns == 6;
    let mut parts_seen = std::collections::BTreeSet::new();
    for (ns, signing) in cases {
        let sub = dir.join(format!("{signing}-{ns}"));
        std::fs::create_dir_all(&sub).unwrap();
        let text = big_apex_zone(origin, ns);
        let plain = sub.join(format!("{origin}zone"));
        std::fs::write(&plain, &text).unwrap();
        let file = match signing {
            "unsigned" => plain,
            s => sign_ldns(&sub, origin, &plain, s == "nsec3"),
        };
        let spec: ZoneSpec = format!("{origin}={}", file.display()).parse().unwrap();
        let (catalog, _) = load_catalog(&[spec]).unwrap();
        let engine = Engine::new(
            catalog,
            EngineConfig {
                server_payload: 4096,
                ..Default::default()
            },
        );
        let (mut xdp, _) = xdpdns_tests::testrun::load(&engine, Default::default(), 9).unwrap();
        let mut assembled = 0;
        // The body of the apex answer to `t` at the server's payload.
        let longest = |engine: &Engine, t: u16, dnssec: bool| {
            let mut q = Q::new(origin, t);
            q.edns = Some(4096);
            q.dnssec_ok = dnssec;
            let wire = q.wire();
            engine.answer(&wire, Transport::Udp).unwrap().len() - wire.len()
        };
        for (qtype, nodata) in [(2, false), (6, false), (48, false), (16, true)] {
            for dnssec in [false, true] {
                for (payload, v6) in [(4096, false), (4096, true), (1232, false), (512, true)] {
                    let mut q = Q::new("BiG-aPeX.", qtype);
                    q.edns = Some(payload);
                    q.dnssec_ok = dnssec;
                    let dns = q.wire();
                    let s = if v6 {
                        FrameSpec::udp(CLIENT_V6.into(), SERVER_V6.into(), 53)
                    } else {
                        FrameSpec::udp(CLIENT_V4.into(), SERVER_V4.into(), 53)
                    };
                    let expected = engine.answer_to(&dns, Transport::Udp, s.src).unwrap();
                    let before = xdp.counters().unwrap();
                    let got = xdpdns_tests::oracle::check(&mut xdp, &engine, &s, &dns);
                    let after = xdp.counters().unwrap();
                    let moved = |c: u32| after[c as usize] - before[c as usize];
                    // Header, question and a bare OPT record on both sides.
                    let body = expected.len() - dns.len();
                    if got.is_none() {
                        // Only answers too big for the client, or (at the server's payload)
                        // for the parts: then XDP has none for any client.
                        // A NODATA entry is made only when every type at the name has its
                        // entries (both DO bits).
                        let beyond = |t: u16, d: bool| longest(&engine, t, d) > ASSEMBLED_MAX;
                        let incomplete = [2, 6, 48]
                            .into_iter()
                            .any(|t| beyond(t, false) || beyond(t, true));
                        let why = if beyond(qtype, dnssec) || nodata && incomplete {
                            counter::PASS_MISS
                        } else {
                            counter::PASS_TOO_BIG
                        };
                        assert_eq!(
                            moved(why),
                            1,
                            "{signing} {ns}: type {qtype} DO={dnssec} payload {payload}, body \
                             {body}: passed for the reason"
                        );
                        continue;
                    }
                    // An unsigned zone has no DNSKEY: NODATA.
                    let counted = if nodata || qtype == 48 && signing == "unsigned" {
                        counter::ANSWERED_NEGATIVE
                    } else {
                        counter::ANSWERED_EXACT
                    };
                    assert_eq!(
                        moved(counted),
                        1,
                        "{signing} {ns}: type {qtype} DO={dnssec} counted as answered"
                    );
                    if body > dns_common::ANSWER_MAX {
                        assembled += 1;
                        let rest = body - xdpdns::fastpath::parts::HEAD_MAX;
                        parts_seen.insert(rest.div_ceil(dns_common::NSEC3_RECORD_MAX));
                    }
                }
            }
        }
        assert_eq!(
            assembled > 0,
            !beyond_parts(ns),
            "{signing} {ns}: answers assembled: {assembled}"
        );
    }
    assert_eq!(
        parts_seen.into_iter().collect::<Vec<_>>(),
        [1, 2, 3],
        "one, two and three parts"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Signs `zone` with ldns-signzone, NSEC3 (opt-out, no salt, no iterations) or NSEC.
fn sign_ldns(dir: &Path, origin: &str, zone: &Path, nsec3: bool) -> PathBuf {
    let out = dir.join(format!("{origin}signed"));
    let args: &[&str] = if nsec3 { &["-n", "-t", "0", "-p"] } else { &[] };
    tld::sign_ldns(dir, origin, zone, &out, args).unwrap();
    out
}
