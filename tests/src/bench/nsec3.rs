//! NSEC3 (and NSEC) denials in the driver (`--nsec3-only`): for TLDs NSEC3-signed (opt-out,
//! no salt) with dnssec-signzone at several iteration counts, the XDP program's cost per NSEC3
//! NXDOMAIN answer through BPF_PROG_TEST_RUN (median of single runs over distinct random
//! names, net of the empty program timed the same way in the same run) and the share of DO=1
//! NXDOMAIN queries it answers; before this, every one of them was passed to userspace. Then
//! the same for the bench zone (`zone`, a tenth of its delegations secure, so its NSEC3 chain
//! has one record per secure delegation and the search its full depth) signed with NSEC3 and
//! with NSEC (the search over the apex's child labels).

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use dns_common::{counter, Config};
use xdpdns::engine::{Engine, EngineConfig};
use xdpdns::fastpath::compile::{self, Entries};
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::zone::load::{load_catalog, ZoneSpec};

use super::bpf;
use super::json::{obj, Json};
use super::zone::{self, Signing};
use crate::client::Q;
use crate::frame::{self, FrameSpec};
use crate::tld::{self, Rng};

const ORIGIN: &str = "nsec3-bench.";

/// Figures at one iteration count.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The zone: `tld` (the TLD of `tld::write_zone`, no secure delegations) or the bench
    /// zone signed with NSEC3 or NSEC.
    pub zone: &'static str,
    pub iterations: u16,
    pub nsec3_records: usize,
    pub median_ns: f64,
    /// The same names with DO=0: the NXDOMAIN without the proof (the lookup and respond
    /// programs), the share of the cost that is not the denial's.
    pub do0_ns: f64,
    pub baseline_ns: f64,
    pub answered_pct: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the section: `runs` single TEST_RUN calls per iteration count, then per bench zone
/// kind.
pub fn run(
    work: &Path,
    delegations: usize,
    iterations: &[u16],
    runs: usize,
) -> Result<Vec<Figures>> {
    let mut out = Vec::new();
    let pass = bpf::Prog::load_xdp("xdp_pass")?;
    for &it in iterations {
        let dir = work.join(format!("nsec3-{it}"));
        std::fs::create_dir_all(&dir)?;
        let zone = tld::write_zone(&dir, ORIGIN, delegations, false)?;
        let signed = dir.join("signed.zone");
        tld::sign_nsec3(&dir, ORIGIN, &zone, &signed, "", it, true)?;
        out.push(measure(&pass, "tld", it, ORIGIN, &signed, runs)?);
        let _ = std::fs::remove_dir_all(&dir);
    }
    for (signing, label) in [
        (Signing::Nsec3, "bench NSEC3"),
        (Signing::Nsec, "bench NSEC"),
    ] {
        let dir = work.join(format!("bench-{}", signing.label()));
        let z = zone::generate_signed(&dir, delegations, signing, 0x3e3)?;
        out.push(measure(&pass, label, 0, zone::ORIGIN, &z.path, runs)?);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

/// The figures of one signed zone file of `origin`: DO=1 NXDOMAIN for random names below
/// the apex.
fn measure(
    pass: &bpf::Prog,
    zone: &'static str,
    iterations: u16,
    origin: &str,
    file: &Path,
    runs: usize,
) -> Result<Figures> {
    let server: IpAddr = crate::SERVER_V4.into();
    let spec = FrameSpec::udp(crate::CLIENT_V4.into(), server, 53);
    let zspec: ZoneSpec = format!("{origin}={}", file.display()).parse()?;
    let (catalog, _) = load_catalog(&[zspec])?;
    let engine = Engine::new(catalog, EngineConfig::default());
    let mut xdp = XdpServer::load()?;
    xdp.add_service_addr(server)?;
    let mut entries = Entries::default();
    for z in engine.catalog.zones() {
        compile::compile_zone(&engine, z, 7, &mut entries);
    }
    let records = entries
        .nsec3
        .iter()
        .map(|z| match &z.nsec {
            Some(n) => n.labels.len(),
            None => z.hashes.len(),
        })
        .sum();
    xdp.insert(&entries)?;
    xdp.set_config(Config {
        port: 53,
        server_payload: 1232,
        generation: 7,
        flags: 0,
        ..Default::default()
    })?;
    let mut rng = Rng::new(0x3e3 ^ iterations as u64);
    let names: Vec<String> = (0..runs.max(1))
        .map(|i| format!("q-{}-{i}.{origin}", rng.label()))
        .collect();
    let frame = |name: &str, dnssec_ok: bool| {
        let mut q = Q::new(name, 1);
        q.edns = Some(1232);
        q.dnssec_ok = dnssec_ok;
        frame::build(&spec, &q.wire())
    };
    let frames: Vec<Vec<u8>> = names.iter().map(|n| frame(n, true)).collect();
    let before = xdp.counters()?;
    let mut ns = Vec::with_capacity(frames.len());
    for f in &frames {
        ns.push(xdp.test_run_repeat(f, 1)?.as_nanos() as f64);
    }
    let after = xdp.counters()?;
    let answered =
        after[counter::ANSWERED_NEGATIVE as usize] - before[counter::ANSWERED_NEGATIVE as usize];
    let mut do0 = Vec::with_capacity(frames.len());
    for n in &names {
        do0.push(xdp.test_run_repeat(&frame(n, false), 1)?.as_nanos() as f64);
    }
    let mut base = Vec::with_capacity(frames.len());
    for f in &frames {
        base.push(pass.test_run(f, 1)?.1 as f64);
    }
    Ok(Figures {
        zone,
        iterations,
        nsec3_records: records,
        median_ns: median(ns),
        do0_ns: median(do0),
        baseline_ns: median(base),
        answered_pct: answered as f64 * 100.0 / frames.len() as f64,
    })
}

impl Figures {
    pub fn json(&self) -> Json {
        obj([
            ("zone", self.zone.into()),
            ("iterations", (self.iterations as u64).into()),
            ("nsec3_records", self.nsec3_records.into()),
            ("median_ns", self.median_ns.into()),
            ("baseline_xdp_pass_ns", self.baseline_ns.into()),
            ("net_ns", (self.median_ns - self.baseline_ns).into()),
            ("do0_net_ns", (self.do0_ns - self.baseline_ns).into()),
            ("answered_in_xdp_pct", self.answered_pct.into()),
        ])
    }

    pub fn line(&self) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}% |",
            self.zone,
            self.iterations,
            self.nsec3_records,
            self.median_ns,
            self.baseline_ns,
            self.median_ns - self.baseline_ns,
            self.do0_ns - self.baseline_ns,
            self.answered_pct
        )
    }
}
