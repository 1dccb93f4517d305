//! Response rate limiting (RRL) on the userspace path, with the same settings and the same
//! bucket rule (`dns_common::rrl`) as the XDP program: per (source prefix, response class)
//! token buckets, every `slip`-th limited response sent truncated (`slip`), exempt prefixes,
//! clients that bring back a valid server cookie exempt, `dry-run`. Only UDP answers are
//! limited; TCP never is (a TC=1 slip sends the client there). RRL is off unless configured.

pub mod config;
pub mod slip;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use dns_common::rrl::{
    account, class, key, prefix_mask, RrlBucket, RrlConfig, RrlKey, Verdict, CLASS_ERROR,
    RRL_DRY_RUN, RRL_ENABLED,
};

use crate::engine::query::{self, Parsed};
use crate::engine::Engine;
use crate::net::ServerStats;
use crate::xfr::acl::Prefix;

/// Default `slip` (BIND's): every second limited response is truncated.
pub const DEFAULT_SLIP: u32 = 2;
/// Default `window` in seconds (BIND's): a quiet prefix may burst `rate × window` responses.
pub const DEFAULT_WINDOW: u32 = 15;
/// Default IPv4 prefix length of a bucket.
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// Default IPv6 prefix length of a bucket.
pub const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Buckets userspace keeps per shard; beyond that, buckets that have caught up (the same as
/// new ones) are forgotten, at most once per `SWEEP_NS` (a sweep reads the whole shard), and
/// while none has, a new prefix is not limited.
const SHARD_CAPACITY: usize = 1 << 14;
const SWEEP_NS: u64 = 1_000_000_000;
const SHARDS: usize = 16;

/// The `[rrl]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Responses per second per (prefix, class).
    pub rate: u32,
    /// Every `slip`-th limited response is truncated (TC=1); 0: all are dropped.
    pub slip: u32,
    /// Seconds of burst at a quiet prefix.
    pub window: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Never limited.
    pub exempt: Vec<Prefix>,
    /// Count what would be limited, limit nothing.
    pub dry_run: bool,
}

impl Settings {
    /// The settings with these values, checked: a rate and a window of at least 1, prefix
    /// lengths that fit.
    pub fn new(rate: u32) -> Settings {
        Settings {
            rate,
            slip: DEFAULT_SLIP,
            window: DEFAULT_WINDOW,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            exempt: Vec::new(),
            dry_run: false,
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.rate == 0 || self.rate > 1_000_000_000 {
            bail!("rrl rate-limit must be 1 to 1000000000 responses a second");
        }
        if self.window == 0 || self.window > 3600 {
            bail!("rrl window must be 1 to 3600 seconds");
        }
        if self.ipv4_prefix > 32 || self.ipv6_prefix > 128 {
            bail!("rrl ipv4-prefix must be at most 32 and ipv6-prefix at most 128");
        }
        Ok(())
    }

    fn interval_ns(&self) -> u64 {
        1_000_000_000 / u64::from(self.rate)
    }

    fn tolerance_ns(&self) -> u64 {
        (u64::from(self.window) * 1_000_000_000).saturating_sub(self.interval_ns())
    }

    /// The XDP program's settings (`RRL` map).
    pub fn xdp_config(&self) -> RrlConfig {
        let mut flags = RRL_ENABLED;
        if self.dry_run {
            flags |= RRL_DRY_RUN;
        }
        RrlConfig {
            flags,
            slip: self.slip,
            interval_ns: self.interval_ns(),
            tolerance_ns: self.tolerance_ns(),
            test_now_ns: 0,
            v4_mask: prefix_mask(96 + u32::from(self.ipv4_prefix)),
            v6_mask: prefix_mask(u32::from(self.ipv6_prefix)),
        }
    }

    /// The exempt prefixes as `RRL_EXEMPT` trie keys: (bits, IPv6 or IPv4-mapped address).
    pub fn exempt_keys(&self) -> Vec<(u32, [u8; 16])> {
        self.exempt
            .iter()
            .map(|p| match p.parts() {
                (IpAddr::V4(a), len) => (96 + u32::from(len), a.to_ipv6_mapped().octets()),
                (IpAddr::V6(a), len) => (u32::from(len), a.octets()),
            })
            .collect()
    }
}

/// The address as the buckets take it: IPv6, or IPv4 mapped into IPv6.
pub fn mapped(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The class of a response, from its header: NXDOMAIN, other errors, referrals (NOERROR, not
/// authoritative, no answer, an authority section), answers.
pub fn response_class(response: &[u8]) -> u32 {
    if response.len() < 12 {
        return CLASS_ERROR;
    }
    let flags = u16::from_be_bytes([response[2], response[3]]);
    let ancount = u16::from_be_bytes([response[6], response[7]]);
    let nscount = u16::from_be_bytes([response[8], response[9]]);
    let referral = flags & query::FLAG_AA == 0 && ancount == 0 && nscount > 0;
    class(flags, referral)
}

/// The userspace path's buckets, shared by the UDP workers.
#[derive(Debug)]
pub struct Limiter {
    pub settings: Settings,
    shards: Vec<Mutex<Shard>>,
    epoch: Instant,
}

impl Limiter {
    pub fn new(settings: Settings) -> Result<Limiter> {
        settings.check()?;
        Ok(Limiter {
            settings,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            epoch: Instant::now(),
        })
    }

    /// The limiter's clock: nanoseconds since it was made.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The verdict on one more response of `class` to `client` at `now_ns` (the limiter's
    /// clock), before the exemptions.
    pub fn account_at(&self, client: IpAddr, class: u32, now_ns: u64) -> Verdict {
        let s = &self.settings;
        let addr = mapped(client.to_canonical());
        let v4 = client.to_canonical().is_ipv4();
        let mask = if v4 {
            prefix_mask(96 + u32::from(s.ipv4_prefix))
        } else {
            prefix_mask(u32::from(s.ipv6_prefix))
        };
        let k = key(&addr, &mask, class);
        let shard = &self.shards[shard_of(&k)];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let Shard {
            buckets: table,
            swept_at,
        } = &mut *shard;
        if table.len() >= SHARD_CAPACITY && !table.contains_key(&k) {
            if now_ns.saturating_sub(*swept_at) >= SWEEP_NS {
                table.retain(|_, b| b.tat > now_ns);
                *swept_at = now_ns;
            }
            if table.len() >= SHARD_CAPACITY {
                return Verdict::Send;
            }
        }
        let b = table.entry(k).or_default();
        account(b, now_ns, s.interval_ns(), s.tolerance_ns(), s.slip)
    }

    /// Whether `client` is exempt: in an exempt prefix, or `query` brings back a valid server
    /// cookie.
    fn exempt(&self, engine: &Engine, query: &[u8], client: IpAddr) -> bool {
        if self.settings.exempt.iter().any(|p| p.contains(client)) {
            return true;
        }
        let Some(cookies) = &engine.config.cookies else {
            return false;
        };
        let Parsed::Query(q) = query::parse(query) else {
            return false;
        };
        let Some(option) = q.edns.as_ref().and_then(|e| e.cookie.as_ref()) else {
            return false;
        };
        cookies
            .check(option, client.to_canonical(), cookies.now())
            .0
            .is_valid()
    }

    /// What to send to `client` for `response`, the engine's answer to `query` over UDP, at
    /// `now_ns` of the limiter's clock (`now_ns()`): the response, its truncated form
    /// (`slip`), or nothing; counted in `stats`.
    pub fn apply(
        &self,
        engine: &Engine,
        query: &[u8],
        client: IpAddr,
        response: Vec<u8>,
        stats: &ServerStats,
        now_ns: u64,
    ) -> Option<Vec<u8>> {
        // Only queries (not NOTIFY or UPDATE) are limited.
        if query.len() < 12 || query[2] & 0x78 != 0 {
            return Some(response);
        }
        if self.exempt(engine, query, client) {
            return Some(response);
        }
        let verdict = self.account_at(client, response_class(&response), now_ns);
        if verdict == Verdict::Send {
            return Some(response);
        }
        stats.rrl_limited.fetch_add(1, Relaxed);
        if self.settings.dry_run {
            return Some(response);
        }
        match verdict {
            Verdict::Slip => match slip::truncated(&response) {
                Some(t) => {
                    stats.rrl_slipped.fetch_add(1, Relaxed);
                    Some(t)
                }
                None => {
                    stats.rrl_dropped.fetch_add(1, Relaxed);
                    None
                }
            },
            _ => {
                stats.rrl_dropped.fetch_add(1, Relaxed);
                None
            }
        }
    }
}

/// One lock's share of the buckets.
#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<RrlKey, RrlBucket>,
    /// When the buckets that had caught up were last forgotten.
    swept_at: u64,
}

fn shard_of(k: &RrlKey) -> usize {
    use std::hash::BuildHasher;
    (rustc_hash::FxBuildHasher.hash_one(k) as usize) % SHARDS
}

#[cfg(test)]
mod tests;
