//! Writes the seed corpus of the fuzz targets, `fuzz/corpus/<target>/` (see
//! `xdpdns::fuzz_support` for what each target reads): the repository's zone files, queries
//! of the test corpus and queries captured from real clients (dig, with its cookie, and kdig,
//! sent to a socket on loopback), and AXFR, IXFR, TSIG and NOTIFY messages made by the
//! server's own transfer code (the code Knot and NSD take transfers from in the suite).
//! Deterministic but for the captured queries' IDs and cookies.
//!
//! `cargo run -p xdpdns-tests --bin fuzz-corpus [DIR]` (the files are in the repository; run
//! it again when the targets' inputs change). Regression inputs (`regress-*`) are kept.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use xdpdns::fuzz_support::{build_zone, framed, FUZZ_KEY, FUZZ_NOW, ZONES};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{class, rtype, Record};
use xdpdns::xfr::ixfr::Diff;
use xdpdns::xfr::message::{opcode, Builder, FLAG_QR};
use xdpdns::xfr::notify;
use xdpdns::xfr::response::{axfr_segments, ixfr_segments, Head, Stream};
use xdpdns::xfr::tsig::{self, Key, ResponseSigner};
use xdpdns_tests::corpus::{names_for, queries_for_names, Params, Rng};
use xdpdns_tests::workspace_root;

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) -> Result<()> {
    let d = dir.join(target);
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(format!("seed-{name}")), data).with_context(|| name.to_owned())
}

/// One query as `cmd` sends it, caught on a loopback socket (the client is then stopped).
fn capture(cmd: &str, args: &[&str]) -> Result<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let port = sock.local_addr()?.port().to_string();
    let mut full = vec!["@127.0.0.1", "-p", &port];
    full.extend_from_slice(args);
    let mut child = Command::new(cmd)
        .args(&full)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("{cmd} (installed by cargo xtask bootstrap)"))?;
    let mut buf = [0u8; 4096];
    let got = sock.recv(&mut buf);
    let _ = child.kill();
    let _ = child.wait();
    let n = got.with_context(|| format!("no query from {cmd}"))?;
    Ok(buf[..n].to_vec())
}

fn key() -> Key {
    let (name, algorithm, secret) = FUZZ_KEY;
    Key::new(Name::parse(name, None).unwrap(), algorithm, secret.to_vec())
}

fn stream(
    head: Head,
    segments: Vec<xdpdns::xfr::response::Segment>,
    limit: usize,
    signer: Option<(Key, Vec<u8>)>,
) -> Vec<Vec<u8>> {
    let mut s = Stream::new(head, segments, limit, signer, FUZZ_NOW);
    let out: Vec<Vec<u8>> = s.by_ref().collect();
    assert!(s.failure.is_none(), "{:?}", s.failure);
    out
}

fn soa_with_serial(soa: &Record, serial: u32) -> Record {
    let mut r = soa.clone();
    let n = r.rdata.len();
    r.rdata[n - 20..n - 16].copy_from_slice(&serial.to_be_bytes());
    r
}

fn main() -> Result<()> {
    let root = workspace_root();
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("fuzz/corpus"), std::path::PathBuf::from);
    // The seeds are made again; regression inputs (`regress-*`, found by libFuzzer) stay.
    for d in std::fs::read_dir(&dir).into_iter().flatten() {
        for f in std::fs::read_dir(d?.path())? {
            let f = f?.path();
            if f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                std::fs::remove_file(f)?;
            }
        }
    }
    let mut rng = Rng::new(0xf022);
    let mut queries = Vec::new();
    let mut example = Vec::new();
    // The repository's zone files, as the engine target serves them.
    for (origin, text) in ZONES {
        let seed = format!("{origin}\n{text}").into_bytes();
        let stem = origin.trim_end_matches('.');
        write(&dir, "zonefile", stem, &seed)?;
        let o = Name::parse(origin, None)?;
        let zone =
            build_zone(&o, text.as_bytes()).map_err(|e| anyhow::anyhow!("{origin}: {e:?}"))?;
        // Type and RDATA of each distinct type, for `wire`.
        let mut seen = std::collections::BTreeSet::new();
        for (_, node) in zone.nodes() {
            for set in node.rrsets.iter() {
                if seen.insert(set.rtype) {
                    let mut w = set.rtype.to_be_bytes().to_vec();
                    w.extend_from_slice(&set.rdatas[0]);
                    write(
                        &dir,
                        "wire",
                        &format!("rdata-{stem}-{}", rtype::to_string(set.rtype)),
                        &w,
                    )?;
                }
            }
        }
        let names = names_for(&zone, &mut rng);
        let params = Params {
            seed: 0,
            random_types: 1,
            repeat_percent: 0,
            tcp_percent: 30,
        };
        let qs = queries_for_names(&zone, &names, &params, &mut rng);
        for q in qs.iter().step_by((qs.len() / 6).max(1)).take(6) {
            queries.push((
                format!(
                    "{stem}-{}-{}",
                    q.qname_lower().trim_end_matches('.'),
                    q.type_name()
                ),
                q.wire(),
                q.tcp,
            ));
        }
        if *origin == "example." {
            example = zone
                .nodes()
                .flat_map(|(n, node)| {
                    node.rrsets.iter().flat_map(move |s| {
                        s.rdatas.iter().map(move |rd| Record {
                            owner: n.clone(),
                            rtype: s.rtype,
                            class: class::IN,
                            ttl: s.ttl,
                            rdata: rd.clone(),
                        })
                    })
                })
                .collect::<Vec<_>>();
        }
    }
    for (cmd, args, name) in [
        ("dig", &["example.", "SOA"][..], "dig-cookie-soa"),
        (
            "dig",
            &["+dnssec", "+nsid", "www.example.", "A"][..],
            "dig-dnssec-nsid",
        ),
        (
            "kdig",
            &["+edns", "shop.example.", "NS"][..],
            "kdig-edns-ns",
        ),
    ] {
        queries.push((name.to_owned(), capture(cmd, args)?, false));
    }
    for (name, wire, tcp) in &queries {
        write(&dir, "wire", name, wire)?;
        let mut e = vec![u8::from(*tcp)];
        e.extend_from_slice(wire);
        write(&dir, "engine", name, &e)?;
    }

    // Transfers of example.: the zone's SOA first.
    let Some(at) = example.iter().position(|r| r.rtype == rtype::SOA) else {
        bail!("example. has no SOA");
    };
    let soa = example.remove(at);
    example.insert(0, soa.clone());
    let apex = Name::parse("example.", None)?;
    let records: Arc<[Record]> = example.clone().into();
    for limit in [512, 16384] {
        let msgs = stream(
            Head::new(7, 0, None),
            axfr_segments(&soa, records.clone()),
            limit,
            None,
        );
        write(
            &dir,
            "axfr",
            &format!("example-{limit}"),
            &framed(msgs.iter().map(Vec::as_slice)),
        )?;
        write(&dir, "message", &format!("axfr-{limit}"), &msgs[0])?;
    }
    // IXFR from the example zone's serial: one diff removing www's A records and adding one.
    let serial = xdpdns::xfr::soa::Soa::from_record(&soa).unwrap().serial;
    let newer = soa_with_serial(&soa, serial + 1);
    let www: Vec<Record> = example
        .iter()
        .filter(|r| r.owner.to_string() == "www.example." && r.rtype == rtype::A)
        .cloned()
        .collect();
    let mut added = www[0].clone();
    added.rdata = vec![198, 18, 0, 82];
    let diff = Arc::new(Diff {
        from: soa.clone(),
        to: newer.clone(),
        removed: www,
        added: vec![added],
    });
    let msgs = stream(
        Head::new(8, 0, None),
        ixfr_segments(&newer, &[diff]),
        512,
        None,
    );
    write(
        &dir,
        "ixfr",
        "one-diff",
        &framed(msgs.iter().map(Vec::as_slice)),
    )?;
    write(&dir, "message", "ixfr", &msgs[0])?;
    let up = Builder::new(9, opcode::QUERY, FLAG_QR)
        .question(&apex, rtype::IXFR, class::IN)
        .record(1, &soa)
        .finish();
    write(&dir, "ixfr", "up-to-date", &framed([up.as_slice()]))?;
    let msgs = stream(
        Head::new(10, 0, None),
        axfr_segments(&newer, records.clone()),
        16384,
        None,
    );
    write(
        &dir,
        "ixfr",
        "axfr-style",
        &framed(msgs.iter().map(Vec::as_slice)),
    )?;

    // TSIG: a signed AXFR request and its signed response; a request signed at another time.
    let k = key();
    let mut req = xdpdns::xfr::message::query(11, &apex, rtype::AXFR, None);
    let mac = tsig::sign_request(&mut req, &k, FUZZ_NOW);
    let head = Head::new(11, 0, None).with_edns(Some(86400), 0);
    let resp = stream(
        head,
        axfr_segments(&soa, records.clone()),
        1024,
        Some((k.clone(), mac)),
    );
    let mut all = vec![req.as_slice()];
    all.extend(resp.iter().map(Vec::as_slice));
    write(&dir, "tsig", "axfr-signed", &framed(all))?;
    write(&dir, "message", "tsig-request", &req)?;
    write(&dir, "message", "tsig-response", &resp[0])?;
    let mut late = xdpdns::xfr::message::query(12, &apex, rtype::SOA, None);
    tsig::sign_request(&mut late, &k, FUZZ_NOW - 3600);
    write(&dir, "tsig", "badtime", &framed([late.as_slice()]))?;
    let plain = xdpdns::xfr::message::query(13, &apex, rtype::SOA, None);
    let answer = Builder::new(13, opcode::QUERY, FLAG_QR)
        .question(&apex, rtype::SOA, class::IN)
        .record(1, &soa)
        .finish();
    write(
        &dir,
        "tsig",
        "unsigned",
        &framed([plain.as_slice(), answer.as_slice()]),
    )?;
    let mut signed_answer = answer.clone();
    let mut pmac = plain.clone();
    let m2 = tsig::sign_request(&mut pmac, &k, FUZZ_NOW);
    ResponseSigner::new(&k, &m2).next(&mut signed_answer, true, FUZZ_NOW);
    write(
        &dir,
        "tsig",
        "soa-signed",
        &framed([pmac.as_slice(), signed_answer.as_slice()]),
    )?;

    // NOTIFY: unsigned, with the SOA, signed.
    write(&dir, "notify", "plain", &notify::request(14, &apex, None))?;
    write(
        &dir,
        "notify",
        "with-soa",
        &notify::request(15, &apex, Some(&newer)),
    )?;
    let mut n = notify::request(16, &apex, Some(&newer));
    tsig::sign_request(&mut n, &k, FUZZ_NOW);
    write(&dir, "notify", "signed", &n)?;
    write(&dir, "message", "notify-signed", &n)?;
    let mut count = 0;
    for d in std::fs::read_dir(&dir)? {
        count += std::fs::read_dir(d?.path())?.count();
    }
    println!("{count} seed files in {}", dir.display());
    Ok(())
}
