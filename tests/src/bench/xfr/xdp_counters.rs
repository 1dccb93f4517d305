//! The XDP counters of a running xdpdns read straight from the kernel: its `COUNTERS` map
//! (per-CPU array), found among the BPF maps the process holds open. Reading them never waits
//! on the daemon, whose `stats` command waits while a publication holds the fast path — so a
//! query can be attributed to XDP while the maps are still being rewritten.

use anyhow::{bail, Context as _, Result};
use aya::maps::{Map, MapData, MapInfo, PerCpuArray};
use dns_common::counter;

/// The counters map of one xdpdns process.
pub struct XdpCounters {
    map: PerCpuArray<MapData, u64>,
}

/// Counter values, summed over the CPUs, by `dns_common::counter` index.
pub type Values = Vec<u64>;

impl XdpCounters {
    /// Finds the `COUNTERS` map among the BPF map fds of process `pid`.
    pub fn of(pid: u32) -> Result<XdpCounters> {
        let dir = format!("/proc/{pid}/fdinfo");
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let info = std::fs::read_to_string(e?.path()).unwrap_or_default();
            let Some(id) = info
                .lines()
                .find_map(|l| l.strip_prefix("map_id:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(mi) = MapInfo::from_id(id) else {
                continue;
            };
            if mi.name_as_str() != Some(dns_common::maps::COUNTERS) {
                continue;
            }
            let data = MapData::from_id(id).context("opening the COUNTERS map")?;
            let map = PerCpuArray::try_from(Map::from_map_data(data)?)
                .context("the COUNTERS map is not a per-CPU array of u64")?;
            return Ok(XdpCounters { map });
        }
        bail!("process {pid} holds no BPF map named COUNTERS (is XDP loaded?)")
    }

    /// Every counter now.
    pub fn read(&self) -> Result<Values> {
        (0..counter::COUNT)
            .map(|i| {
                let v = self.map.get(&i, 0).context("reading the COUNTERS map")?;
                Ok(v.iter().sum())
            })
            .collect()
    }
}

/// Whether exactly one referral was answered by XDP between `before` and `after`, and
/// nothing passed to userspace.
pub fn one_xdp_referral(before: &Values, after: &Values) -> bool {
    let d = |i: u32| after[i as usize].wrapping_sub(before[i as usize]);
    let passed: u64 = (counter::PASS_NOT_DNS..counter::COUNT)
        .filter(|&i| counter::is_pass(i))
        .map(d)
        .sum();
    d(counter::ANSWERED_REFERRAL) == 1 && passed == 0
}

/// What answered a query, from the counters around it: `XDP` for one referral answered and
/// nothing passed, else the counters that moved (`pass_cold +1`, ...).
pub fn path(before: &Values, after: &Values) -> String {
    if one_xdp_referral(before, after) {
        return "XDP".into();
    }
    let moved: Vec<String> = counter::NAMES
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a != b)
        .map(|(n, (b, a))| format!("{n} +{}", a.wrapping_sub(*b)))
        .collect();
    format!("not XDP alone ({})", moved.join(", "))
}
