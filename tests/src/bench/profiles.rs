//! Sender profiles (issue 12, item 4): the share of the benchmark's query mix that the XDP
//! program answers for what real resolvers send — a DNS COOKIE with DO=1 (BIND: an 8-octet
//! client cookie on every query), DO=1 without options (Unbound), no EDNS, and an NSID probe
//! (anycast operators) — with the rest counted by pass reason. Measured in TEST_RUN, whose
//! page-sized buffers stand for a real NIC, on the unsigned and the NSEC3-signed bench zone,
//! each loaded as `xdpdns serve` loads it (NSID and cookies configured).

use std::path::Path;

use anyhow::Result;
use dns_common::counter;

use super::json::{obj, Json};
use super::micro::{engine_for, qtype_code, xdp_for};
use super::zone;
use crate::client::Q;
use crate::frame::{self, FrameSpec};

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
            answered: (0..pass).map(moved).sum(),
            passed: (pass..after.len())
                .filter(|&i| moved(i) > 0)
                .map(|i| (counter::NAMES[i], moved(i)))
                .collect(),
        });
    }
    Ok(out)
}

/// The profiles section: both zone kinds of `delegations` delegations generated in `work`,
/// `count` queries of `mix` each. Returns the JSON and the text of the report.
pub fn section(
    work: &Path,
    delegations: usize,
    mix: &zone::Mix,
    count: usize,
    seed: u64,
) -> (Json, String) {
    let mut shares = Vec::new();
    let mut text = String::from("sender profiles (TEST_RUN, page-sized buffers):\n");
    for (label, signed) in [("unsigned", false), ("NSEC3", true)] {
        let run = zone::generate(
            &work.join(format!("profiles-{label}")),
            delegations,
            signed,
            seed,
        )
        .and_then(|z| {
            let qs = zone::queries(&z, mix, 0, count, seed);
            test_run(&z, label, &qs)
        });
        match run {
            Ok(s) => shares.extend(s),
            Err(e) => text.push_str(&format!("  {label}: FAILED: {e:#}\n")),
        }
    }
    text.extend(shares.iter().map(Share::line));
    (Json::Arr(shares.iter().map(Share::json).collect()), text)
}
