//! The benchmark's data: a synthetic TLD zone (`bench.`) with N delegations — even ones with
//! in-bailiwick glue (A + AAAA), odd ones with out-of-zone NS names — optionally signed, with
//! NSEC3 (opt-out) or NSEC (keys made in the zone's directory), and the query sets (referrals, NXDOMAIN and
//! apex names in a chosen mix, a share with DO=1, random 0x20 case). Everything comes from a
//! seeded PRNG, so a seed gives the same zone and queries on every run.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::sh;

/// The zone's name.
pub const ORIGIN: &str = "bench.";

/// SplitMix64: small, fast and good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability pct/100.
    pub fn percent(&mut self, pct: u32) -> bool {
        self.below(100) < pct as u64
    }
    fn letters(&mut self, min: u64, max: u64, alphabet: &[u8]) -> String {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const LDH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// How a generated zone is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Unsigned,
    /// NSEC3, no salt, 0 iterations, opt-out.
    Nsec3,
    Nsec,
}

impl Signing {
    /// The zone kinds of the sender-profile table, in its order.
    pub const ALL: [Signing; 3] = [Signing::Unsigned, Signing::Nsec, Signing::Nsec3];

    pub fn label(self) -> &'static str {
        match self {
            Signing::Unsigned => "unsigned",
            Signing::Nsec3 => "NSEC3",
            Signing::Nsec => "NSEC",
        }
    }
}

/// A generated zone.
pub struct Zone {
    /// The file servers load (`bench.zone`, signed when asked).
    pub path: PathBuf,
    /// Delegation labels, index order (even: glue, odd: out-of-zone NS).
    pub labels: Vec<String>,
    pub signed: bool,
    pub signing: Signing,
}

fn base36(mut v: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(LDH[v % 36]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// Writes `bench.zone` with `n` delegations into `dir` (NSEC3-signed if asked) and returns it.
pub fn generate(dir: &Path, n: usize, signed: bool, seed: u64) -> Result<Zone> {
    let signing = if signed {
        Signing::Nsec3
    } else {
        Signing::Unsigned
    };
    generate_signed(dir, n, signing, seed)
}

/// Writes `bench.zone` with `n` delegations into `dir`, signed as asked, and returns it.
pub fn generate_signed(dir: &Path, n: usize, signing: Signing, seed: u64) -> Result<Zone> {
    let signed = signing != Signing::Unsigned;
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng::new(seed);
    // "word-index": unique, of varied length, like real registrations.
    let labels: Vec<String> = (0..n)
        .map(|i| format!("{}-{}", rng.letters(3, 12, LETTERS), base36(i)))
        .collect();
    let unsigned = dir.join(if signed {
        "bench.unsigned"
    } else {
        "bench.zone"
    });
    let file = std::fs::File::create(&unsigned)
        .with_context(|| format!("creating {}", unsigned.display()))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "$ORIGIN {ORIGIN}\n$TTL 86400")?;
    writeln!(
        w,
        "@ SOA ns1.nic.{ORIGIN} hostmaster.nic.{ORIGIN} 2026112701 7200 3600 1209600 3600"
    )?;
    writeln!(w, "@ NS ns1.nic\n@ NS ns2.nic")?;
    writeln!(w, "ns1.nic A 198.18.1.1\nns1.nic AAAA fd00::1:1")?;
    writeln!(w, "ns2.nic A 198.18.1.2\nns2.nic AAAA fd00::1:2")?;
    let mut line = String::new();
    for (i, l) in labels.iter().enumerate() {
        line.clear();
        if i % 2 == 0 {
            let (a, b) = ((i >> 8) & 0xff, i & 0xff);
            let (hi, lo) = (i >> 16, i & 0xffff);
            writeln!(line, "{l} 172800 NS ns1.{l}\n{l} 172800 NS ns2.{l}")?;
            writeln!(line, "ns1.{l} 172800 A 198.19.{a}.{b}")?;
            writeln!(line, "ns1.{l} 172800 AAAA fd00::2:{hi:x}:{lo:x}")?;
            writeln!(line, "ns2.{l} 172800 A 198.18.{}.{b}", 128 + (a & 0x7f))?;
            writeln!(line, "ns2.{l} 172800 AAAA fd00::3:{hi:x}:{lo:x}")?;
        } else {
            let p = rng.below(500);
            writeln!(line, "{l} 172800 NS ns1.dns{p}.hosting.example.")?;
            writeln!(line, "{l} 172800 NS ns2.dns{p}.hosting.example.")?;
        }
        if signed && i % 10 == 0 {
            let digest: String = (0..4).map(|_| format!("{:016X}", rng.next_u64())).collect();
            writeln!(line, "{l} 86400 DS {} 13 2 {digest}", rng.below(65536))?;
        }
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    drop(w);
    let path = dir.join("bench.zone");
    if signed {
        sign(dir, &unsigned, &path, signing == Signing::Nsec3)?;
    }
    Ok(Zone {
        path,
        labels,
        signed,
        signing,
    })
}

/// Signing with dnssec-signzone, NSEC3 (no salt, 0 iterations, opt-out) or NSEC; new keys
/// (and the dsset file) in `dir/keys`, those of an earlier run removed.
fn sign(dir: &Path, unsigned: &Path, out: &Path, nsec3: bool) -> Result<()> {
    let keys = dir.join("keys");
    let _ = std::fs::remove_dir_all(&keys);
    std::fs::create_dir_all(&keys)?;
    for ksk in [true, false] {
        let mut c = Command::new("dnssec-keygen");
        c.args(["-q", "-a", "ECDSAP256SHA256", "-K"]).arg(&keys);
        if ksk {
            c.args(["-f", "KSK"]);
        }
        sh(c.arg("bench")).context("dnssec-keygen")?;
    }
    let mut c = Command::new("dnssec-signzone");
    c.args(["-q", "-S", "-K"]).arg(&keys).args(["-o", ORIGIN]);
    if nsec3 {
        c.args(["-3", "-", "-H", "0", "-A"]);
    }
    sh(c.args(["-N", "keep", "-d"])
        .arg(&keys)
        .arg("-f")
        .arg(out)
        .arg(unsigned))
    .context("dnssec-signzone")?;
    if !out.exists() {
        bail!("dnssec-signzone wrote no {}", out.display());
    }
    Ok(())
}

/// Shares of the three query categories, in percent.
#[derive(Clone, Debug)]
pub struct Mix {
    pub name: String,
    pub referral: u32,
    pub nxdomain: u32,
    pub apex: u32,
}

impl Mix {
    /// `tld` (70/20/10), `referral`, `nxdomain`, `apex`, or `R/N/A` percentages.
    pub fn parse(s: &str) -> Result<Mix> {
        let (r, n, a) = match s {
            "tld" => (70, 20, 10),
            "referral" => (100, 0, 0),
            "nxdomain" => (0, 100, 0),
            "apex" => (0, 0, 100),
            custom => {
                let v: Vec<u32> = custom
                    .split('/')
                    .map(|x| x.parse())
                    .collect::<Result<_, _>>()
                    .with_context(|| {
                        format!("mix {custom:?}: expected tld|referral|nxdomain|apex|R/N/A")
                    })?;
                if v.len() != 3 || v.iter().sum::<u32>() != 100 {
                    bail!("mix {custom:?}: three percentages that add up to 100");
                }
                (v[0], v[1], v[2])
            }
        };
        Ok(Mix {
            name: s.to_owned(),
            referral: r,
            nxdomain: n,
            apex: a,
        })
    }
}

/// One query.
#[derive(Clone, Debug)]
pub struct Query {
    pub name: String,
    pub qtype: &'static str,
    pub dnssec_ok: bool,
}

fn random_case(rng: &mut Rng, name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && rng.percent(50) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn pick<T: Copy>(rng: &mut Rng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|w| w.1).sum();
    let mut x = rng.below(total as u64) as u32;
    for (v, w) in weighted {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    weighted[0].0
}

/// `count` queries in the mix; `do_share` percent with DO=1.
pub fn queries(zone: &Zone, mix: &Mix, do_share: u32, count: usize, seed: u64) -> Vec<Query> {
    let mut rng = Rng::new(seed.wrapping_add(1));
    let existing: HashSet<&str> = zone.labels.iter().map(|s| s.as_str()).collect();
    let mut out = Vec::with_capacity(count);
    let apex_types: &[(&str, u32)] = if zone.signed {
        &[("SOA", 40), ("NS", 40), ("DNSKEY", 20)]
    } else {
        &[("SOA", 50), ("NS", 50)]
    };
    for _ in 0..count {
        let cat = pick(
            &mut rng,
            &[(0, mix.referral), (1, mix.nxdomain), (2, mix.apex)],
        );
        let (name, qtype) = match cat {
            0 if !zone.labels.is_empty() => {
                let l = &zone.labels[rng.below(zone.labels.len() as u64) as usize];
                let name = match pick(&mut rng, &[(0, 40), (1, 40), (2, 20)]) {
                    0 => format!("{l}.{ORIGIN}"),
                    1 => format!("www.{l}.{ORIGIN}"),
                    _ => format!("{}.{l}.{ORIGIN}", rng.letters(1, 10, LDH)),
                };
                let t = pick(&mut rng, &[("A", 45), ("AAAA", 35), ("MX", 10), ("NS", 10)]);
                (name, t)
            }
            0 | 1 => {
                let mut l = rng.letters(4, 15, LDH);
                while existing.contains(l.as_str()) {
                    l = rng.letters(4, 15, LDH);
                }
                let name = if rng.percent(20) {
                    format!("www.{l}.{ORIGIN}")
                } else {
                    format!("{l}.{ORIGIN}")
                };
                (name, pick(&mut rng, &[("A", 60), ("AAAA", 40)]))
            }
            _ => (ORIGIN.to_owned(), pick(&mut rng, apex_types)),
        };
        out.push(Query {
            name: random_case(&mut rng, &name),
            qtype,
            dnssec_ok: rng.percent(do_share),
        });
    }
    out
}

/// Writes the kxdpgun query file (`name type E|D`: EDNS, or EDNS with DO).
pub fn write_kxdpgun(path: &Path, qs: &[Query]) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for q in qs {
        writeln!(
            w,
            "{} {} {}",
            q.name,
            q.qtype,
            if q.dnssec_ok { "D" } else { "E" }
        )?;
    }
    w.flush()?;
    Ok(())
}

/// Writes dnsperf query files for the DO=0 and DO=1 queries (dnsperf sets EDNS/DO per run).
pub fn write_dnsperf(dir: &Path, qs: &[Query]) -> Result<(PathBuf, PathBuf)> {
    let plain = dir.join("dnsperf-edns.txt");
    let dnssec = dir.join("dnsperf-do.txt");
    for (path, want) in [(&plain, false), (&dnssec, true)] {
        let mut w = BufWriter::new(std::fs::File::create(path)?);
        for q in qs.iter().filter(|q| q.dnssec_ok == want) {
            writeln!(w, "{} {}", q.name, q.qtype)?;
        }
        w.flush()?;
    }
    Ok((plain, dnssec))
}
