//! Sender profiles (issue 12, item 4): the share of the benchmark's query mix that the XDP
//! program answers for what real resolvers send — a DNS COOKIE with DO=1 (BIND: an 8-octet
//! client cookie on every query), DO=1 without options (Unbound), no EDNS, and an NSID probe
//! (anycast operators) — with the rest counted by pass reason. Measured two ways on the
//! unsigned, the NSEC-signed and the NSEC3-signed bench zone: in TEST_RUN, whose page-sized buffers stand for a
//! real NIC, with the program loaded as `xdpdns serve` loads it (NSID and cookies configured);
//! and over the veth against `xdpdns serve` in XDP mode, the queries sent from the client
//! namespace by a kernel UDP socket (kxdpgun cannot send EDNS options), one at a time.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use dns_common::counter;

use super::json::{obj, Json};
use super::micro::{engine_for, qtype_code, xdp_for};
use super::net::{in_netns, BenchNet};
use super::servers::{Kind, Server};
use super::{zone, Options};
use crate::client::Q;
use crate::frame::{self, FrameSpec};
use crate::stats::{try_delta, Counters};

/// A kind of sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Cookie,
    DoNoOptions,
    NoEdns,
    Nsid,
}

pub const PROFILES: [Profile; 4] = [
    Profile::Cookie,
    Profile::DoNoOptions,
    Profile::NoEdns,
    Profile::Nsid,
];

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Cookie => "cookie, DO=1 (BIND)",
            Profile::DoNoOptions => "DO=1, no options (Unbound)",
            Profile::NoEdns => "no EDNS",
            Profile::Nsid => "NSID probe",
        }
    }

    /// Whether this sender sets DO.
    pub fn dnssec_ok(self) -> bool {
        matches!(self, Profile::Cookie | Profile::DoNoOptions)
    }

    /// `q` as this sender sends it; `i` makes each client cookie different.
    pub fn query(self, q: &zone::Query, i: usize) -> Vec<u8> {
        let mut m = Q::new(&q.name, qtype_code(q.qtype));
        m.id = i as u16;
        match self {
            Profile::Cookie => {
                m.dnssec_ok = true;
                let cc = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes();
                m.options = vec![(10, cc.to_vec())];
            }
            Profile::DoNoOptions => m.dnssec_ok = true,
            Profile::NoEdns => m.edns = None,
            Profile::Nsid => m.options = vec![(3, Vec::new())],
        }
        m.wire()
    }
}

/// What one profile got on one zone.
#[derive(Clone, Debug)]
pub struct Share {
    pub zone: String,
    pub profile: Profile,
    pub queries: u64,
    pub answered: u64,
    /// Pass reasons that moved, by counter name.
    pub passed: Vec<(&'static str, u64)>,
}

impl Share {
    pub fn percent(&self) -> f64 {
        self.answered as f64 * 100.0 / self.queries.max(1) as f64
    }

    pub fn json(&self) -> Json {
        obj([
            ("zone", self.zone.as_str().into()),
            ("profile", self.profile.name().into()),
            ("queries", self.queries.into()),
            ("answered", self.answered.into()),
            ("answered_pct", self.percent().into()),
            (
                "passed",
                Json::Obj(
                    self.passed
                        .iter()
                        .map(|(k, v)| (k.to_string(), (*v).into()))
                        .collect(),
                ),
            ),
        ])
    }

    pub fn line(&self) -> String {
        let passed: Vec<String> = self
            .passed
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "  {:<8} {:<28} {:>6.1}% of {} answered in XDP; passed: {}\n",
            self.zone,
            self.profile.name(),
            self.percent(),
            self.queries,
            if passed.is_empty() {
                "none".to_owned()
            } else {
                passed.join(", ")
            }
        )
    }
}

/// Every profile's share of `qs` on zone `z` (labelled `label`), in TEST_RUN.
pub fn test_run(z: &zone::Zone, label: &str, qs: &[zone::Query]) -> Result<Vec<Share>> {
    let engine = engine_for(z)?;
    let mut xdp = xdp_for(&engine)?;
    let spec = FrameSpec::udp(crate::CLIENT_V4.into(), crate::SERVER_V4.into(), 53);
    let mut out = Vec::new();
    for profile in PROFILES {
        let before = xdp.counters()?;
        for (i, q) in qs.iter().enumerate() {
            xdp.test_run(&frame::build(&spec, &profile.query(q, i)))?;
        }
        let after = xdp.counters()?;
        let moved = |i: usize| after[i] - before[i];
        let pass = counter::PASS_NOT_DNS as usize;
        out.push(Share {
            zone: label.to_owned(),
            profile,
            queries: (0..after.len()).map(moved).sum(),
            answered: (0..after.len())
                .filter(|&i| counter::is_answered(i as u32))
                .map(moved)
                .sum(),
            passed: (pass..after.len())
                .filter(|&i| moved(i) > 0 && counter::is_pass(i as u32))
                .map(|i| (counter::NAMES[i], moved(i)))
                .collect(),
        });
    }
    Ok(out)
}

/// How long one veth query waits for its answer, and one profile's run at most.
const VETH_WAIT: Duration = Duration::from_millis(200);
const VETH_RUN: Duration = Duration::from_secs(30);

/// Sends `msgs` one at a time to the bench server from this thread's namespace; returns how
/// many were answered. Bounded by `VETH_WAIT` per query and `VETH_RUN` in all.
fn send_all(msgs: &[Vec<u8>]) -> Result<u64> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect((crate::SERVER_V4, 53))?;
    sock.set_read_timeout(Some(VETH_WAIT))?;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    for m in msgs {
        if start.elapsed() > VETH_RUN {
            break;
        }
        sock.send(m)?;
        answered += sock.recv(&mut buf).is_ok() as u64;
    }
    Ok(answered)
}

/// The share of one profile between two `xdpdns stats` readings (the XDP counters; packets
/// that are no DNS, such as neighbour discovery, left out).
fn share_of(label: &str, profile: Profile, before: &Counters, after: &Counters) -> Result<Share> {
    let d = |name: &str| try_delta(before, after, &format!("xdp.{name}"));
    let pass = counter::PASS_NOT_DNS as usize;
    let answered = (0..counter::NAMES.len())
        .filter(|&i| counter::is_answered(i as u32))
        .map(|i| d(counter::NAMES[i]))
        .sum::<Result<u64>>()?;
    let mut passed = Vec::new();
    let passes = (pass + 1..counter::NAMES.len()).filter(|&i| counter::is_pass(i as u32));
    for name in passes.map(|i| counter::NAMES[i]) {
        let n = d(name)?;
        if n > 0 {
            passed.push((name, n));
        }
    }
    Ok(Share {
        zone: label.to_owned(),
        profile,
        queries: answered + passed.iter().map(|(_, n)| n).sum::<u64>(),
        answered,
        passed,
    })
}

/// Every profile's share of `qs` over the veth, against `xdpdns serve` on zone `z`.
pub fn veth(
    net: &mut BenchNet,
    z: &zone::Zone,
    label: &str,
    dir: &Path,
    qs: &[zone::Query],
) -> Result<Vec<Share>> {
    let server = Server::start(Kind::XdpdnsXdp, net, &z.path, dir)?;
    let run = (|| {
        net.client_pass(true)?;
        let mut out = Vec::new();
        for profile in PROFILES {
            let msgs: Vec<Vec<u8>> = qs
                .iter()
                .enumerate()
                .map(|(i, q)| profile.query(q, i))
                .collect();
            let before = server.stats()?;
            let got = in_netns(&net.client_ns, move || send_all(&msgs))??;
            let after = server.stats()?;
            let s = share_of(label, profile, &before, &after)?;
            anyhow::ensure!(got > 0, "{}: no answers over the veth", profile.name());
            out.push(s);
        }
        Ok(out)
    })();
    server.stop(net).context("stopping the profiles server")?;
    run
}

/// The profiles section: every zone kind (unsigned, NSEC, NSEC3; at most 2 000 delegations,
/// 5 000 queries of the bench's mix), in TEST_RUN and over the veth of `net`. Returns the JSON
/// and the text.
pub fn section(net: &mut BenchNet, work: &Path, o: &Options) -> (Json, String) {
    let (mut test_run_shares, mut veth_shares) = (Vec::new(), Vec::new());
    let mut failed = String::new();
    for signing in zone::Signing::ALL {
        let label = signing.label();
        let dir = work.join(format!("profiles-{label}"));
        let z = match zone::generate_signed(&dir, o.delegations.min(2000), signing, o.seed) {
            Ok(z) => z,
            Err(e) => {
                failed.push_str(&format!("  {label}: FAILED: {e:#}\n"));
                continue;
            }
        };
        let qs = zone::queries(&z, &o.mix, 0, o.queries.min(5000), o.seed);
        match test_run(&z, label, &qs) {
            Ok(s) => test_run_shares.extend(s),
            Err(e) => failed.push_str(&format!("  {label} TEST_RUN: FAILED: {e:#}\n")),
        }
        match veth(net, &z, label, &dir.join("server"), &qs) {
            Ok(s) => veth_shares.extend(s),
            Err(e) => failed.push_str(&format!("  {label} veth: FAILED: {e:#}\n")),
        }
    }
    let lines = |v: &[Share]| v.iter().map(Share::line).collect::<String>();
    let text = format!(
        "sender profiles, TEST_RUN (page-sized buffers):\n{}sender profiles, veth (xdpdns \
         serve, XDP native):\n{}{failed}",
        lines(&test_run_shares),
        lines(&veth_shares)
    );
    let json = |v: &[Share]| Json::Arr(v.iter().map(Share::json).collect());
    let doc = obj([
        ("test_run", json(&test_run_shares)),
        ("veth", json(&veth_shares)),
        ("errors", failed.as_str().into()),
    ]);
    (doc, text)
}
