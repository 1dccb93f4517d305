//! A synthetic TLD for tests and measurements: N delegations, half with in-bailiwick glue
//! (A + AAAA), half with out-of-zone name servers; optionally NSEC3-signed (opt-out) with
//! dnssec-signzone. And the TLD query mix: referrals, NXDOMAIN and apex queries.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::sh;

/// A deterministic xorshift generator (no dependency, same sequence everywhere).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random lower-case label of 3 to 14 letters and digits.
    pub fn label(&mut self) -> String {
        let len = 3 + self.below(12) as usize;
        (0..len)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[self.below(36) as usize] as char)
            .collect()
    }

    /// Random 0x20 letter case.
    pub fn mix_case(&mut self, name: &str) -> String {
        name.chars()
            .map(|c| {
                if self.chance(50) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }
}

/// The name of delegation `i`.
pub fn delegation(i: usize) -> String {
    format!("d{i}")
}

/// Writes the zone text for `origin` with `n` delegations.
pub fn zone_text(origin: &str, n: usize) -> String {
    let mut z = String::new();
    let _ = writeln!(z, "$ORIGIN {origin}\n$TTL 86400");
    let _ = writeln!(
        z,
        "@ SOA a.nic hostmaster.nic 2026112701 1800 900 604800 3600"
    );
    let _ = writeln!(z, "@ NS a.nic\n@ NS b.nic.other-tld.");
    let _ = writeln!(z, "a.nic A 198.18.10.1\na.nic AAAA fd00:10::1");
    let _ = writeln!(z, "nic A 198.18.10.2\nwww.nic A 198.18.10.3");
    for i in 0..n {
        let d = delegation(i);
        if i % 2 == 0 {
            let _ = writeln!(z, "{d} NS ns1.{d}\n{d} NS ns2.{d}");
            let _ = writeln!(z, "ns1.{d} A 198.18.{}.{}", 20 + i / 250 % 200, i % 250 + 1);
            let (hi, lo) = ((i + 1) >> 16, (i + 1) & 0xffff);
            let _ = writeln!(z, "ns1.{d} AAAA fd00:20::{hi:x}:{lo:x}");
            let _ = writeln!(z, "ns2.{d} A 198.19.{}.{}", 20 + i / 250 % 200, i % 250 + 1);
            let _ = writeln!(z, "ns2.{d} AAAA fd00:21::{hi:x}:{lo:x}");
        } else {
            let _ = writeln!(
                z,
                "{d} NS ns1.hoster{}.net.\n{d} NS ns2.hoster{}.net.",
                i % 7,
                i % 7
            );
        }
    }
    z
}

/// Writes the zone file `dir/<origin>zone`; with `signed`, signs it with NSEC3 opt-out.
pub fn write_zone(dir: &Path, origin: &str, n: usize, signed: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{origin}zone"));
    std::fs::write(&path, zone_text(origin, n))?;
    if !signed {
        return Ok(path);
    }
    let signed_path = dir.join(format!("{origin}signed.zone"));
    sign_nsec3(dir, origin, &path, &signed_path, "ABCD", 0, true)?;
    Ok(signed_path)
}

/// Signs the zone file `zone` of `origin` into `out` with dnssec-signzone (ECDSA P-256 keys
/// made in `dir/keys`): NSEC3 with `salt` (hex, empty for none), `iterations`, opt-out.
pub fn sign_nsec3(
    dir: &Path,
    origin: &str,
    zone: &Path,
    out: &Path,
    salt: &str,
    iterations: u16,
    opt_out: bool,
) -> Result<()> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    let name = origin.trim_end_matches('.');
    for extra in [&["-f", "KSK"][..], &[][..]] {
        sh(Command::new("dnssec-keygen")
            .args(["-q", "-K"])
            .arg(&keys)
            .args(["-a", "ECDSAP256SHA256"])
            .args(extra)
            .arg(name))
        .context("dnssec-keygen")?;
    }
    let salt = if salt.is_empty() { "-" } else { salt };
    let mut c = Command::new("dnssec-signzone");
    c.args(["-q", "-S", "-K"])
        .arg(&keys)
        .arg("-d")
        .arg(dir)
        .current_dir(dir)
        .args(["-3", salt, "-H", &iterations.to_string()]);
    if opt_out {
        c.arg("-A");
    }
    sh(c.args(["-o", name, "-f"]).arg(out).arg(zone)).context("dnssec-signzone")?;
    Ok(())
}

/// One query of a mix.
#[derive(Clone, Debug)]
pub struct MixQuery {
    pub name: String,
    pub qtype: u16,
    pub dnssec_ok: bool,
    pub kind: &'static str,
}

/// The TLD mix, in exact proportions: 70% referrals (to delegations and names below them), 20%
/// NXDOMAIN for random labels, 10% apex (SOA, NS, DNSKEY, A of the registry's names); `do_percent` with DO=1; random
/// 0x20 case.
pub fn tld_mix(
    rng: &mut Rng,
    origin: &str,
    n: usize,
    count: usize,
    do_percent: u64,
) -> Vec<MixQuery> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // Exact proportions: of every ten queries, 7 referrals, 2 NXDOMAIN, 1 apex.
        let roll = [0u64, 75, 10, 20, 80, 30, 40, 95, 50, 60][i % 10];
        let (name, qtype, kind) = if roll < 70 {
            let d = delegation(rng.below(n as u64) as usize);
            let name = match rng.below(3) {
                0 => format!("{d}.{origin}"),
                1 => format!("www.{d}.{origin}"),
                _ => format!("{}.{d}.{origin}", rng.label()),
            };
            (name, [1u16, 28, 2, 15][rng.below(4) as usize], "referral")
        } else if roll < 90 {
            (
                format!("{}.{origin}", rng.label()),
                [1u16, 28][rng.below(2) as usize],
                "nxdomain",
            )
        } else {
            let qtype = [6u16, 2, 48, 1][rng.below(4) as usize];
            let name = if qtype == 1 {
                format!("nic.{origin}")
            } else {
                origin.to_string()
            };
            (name, qtype, "apex")
        };
        out.push(MixQuery {
            name: rng.mix_case(&name),
            qtype,
            dnssec_ok: rng.chance(do_percent),
            kind,
        });
    }
    out
}

/// Signs the zone file `zone` of `origin` into `out` with ldns-signzone and new ECDSA P-256
/// keys (a KSK and a ZSK made by ldns-keygen in `dir`); `args` go before the zone's (`-n ...`
/// for NSEC3; none for NSEC).
pub fn sign_ldns(dir: &Path, origin: &str, zone: &Path, out: &Path, args: &[&str]) -> Result<()> {
    let name = origin.trim_end_matches('.');
    let mut keys = Vec::new();
    for ksk in [true, false] {
        let mut c = Command::new("ldns-keygen");
        c.current_dir(dir).args(["-a", "ECDSAP256SHA256"]);
        if ksk {
            c.arg("-k");
        }
        keys.push(sh(c.arg(name)).context("ldns-keygen")?.trim().to_string());
    }
    let mut c = Command::new("ldns-signzone");
    c.current_dir(dir).args(args).args(["-o", name, "-f"]);
    sh(c.arg(out).arg(zone).args(&keys)).context("ldns-signzone")?;
    Ok(())
}
