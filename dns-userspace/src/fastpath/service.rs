//! The service addresses the XDP program answers on: every one of them in the `SERVICE_ADDRS`
//! hash, and, when there are at most `SERVICE_INLINE`, all of them in `Config::service` too,
//! which the program then compares with instead of looking the hash up (see
//! `dns_common::Config`). Both are written here, and checked here for `xdpdns map check`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use anyhow::{Context as _, Result};
use dns_common::{service_words, Config, SERVICE_INLINE};

use super::xdp::XdpServer;

/// Key of the service address map: IPv6, or IPv4 mapped into IPv6.
pub fn service_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// `cfg` with its service fields describing `keys` (the whole set `SERVICE_ADDRS` holds).
pub fn with_service(mut cfg: Config, keys: &BTreeSet<[u8; 16]>) -> Config {
    cfg.service_count = keys.len() as u32;
    cfg.service = Default::default();
    if keys.len() <= SERVICE_INLINE {
        for (slot, k) in cfg.service.iter_mut().zip(keys) {
            *slot = service_words(k);
        }
    }
    cfg
}

fn show(k: &[u8; 16]) -> String {
    let a = Ipv6Addr::from(*k);
    a.to_ipv4_mapped()
        .map_or_else(|| a.to_string(), |v4| v4.to_string())
}

impl XdpServer {
    /// The keys `SERVICE_ADDRS` holds.
    fn service_keys(&self) -> Result<BTreeSet<[u8; 16]>> {
        self.service_addrs
            .keys()
            .map(|k| k.context("reading the service addresses"))
            .collect()
    }

    /// Writes `cfg` as the program's configuration, with the service fields for the addresses
    /// `SERVICE_ADDRS` holds.
    pub fn set_config(&mut self, cfg: Config) -> Result<()> {
        let cfg = with_service(cfg, &self.service_keys()?);
        self.config.set(0, cfg, 0).context("writing XDP config")
    }

    /// The configuration's service fields brought to what `SERVICE_ADDRS` holds.
    fn sync_service(&mut self) -> Result<()> {
        let cfg = self.config()?;
        self.set_config(cfg)
    }

    /// Adds an address the XDP path answers on.
    pub fn add_service_addr(&mut self, addr: IpAddr) -> Result<()> {
        self.service_addrs
            .insert(service_key(addr), 1, 0)
            .with_context(|| format!("adding service address {addr}"))?;
        self.sync_service()
    }

    /// Makes the service addresses exactly `addrs`: the new ones added first, then the
    /// configuration's copy written, then the old ones removed.
    pub fn set_service_addrs(&mut self, addrs: &[IpAddr]) -> Result<()> {
        let want: BTreeSet<[u8; 16]> = addrs.iter().map(|a| service_key(*a)).collect();
        for k in &want {
            self.service_addrs
                .insert(k, 1, 0)
                .with_context(|| format!("adding service address {}", show(k)))?;
        }
        let cfg = with_service(self.config()?, &want);
        self.config.set(0, cfg, 0).context("writing XDP config")?;
        for k in self.service_keys()?.difference(&want) {
            self.service_addrs
                .remove(k)
                .context("removing a service address")?;
        }
        Ok(())
    }

    /// How the service addresses the program answers on (the hash, and the configuration's
    /// copy) differ from `addrs`.
    pub fn check_service(&self, addrs: &[IpAddr]) -> Result<ServiceCheck> {
        let want: BTreeSet<[u8; 16]> = addrs.iter().map(|a| service_key(*a)).collect();
        let held = self.service_keys()?;
        let cfg = self.config()?;
        let expected = with_service(cfg, &want);
        let config = (cfg.service_count != expected.service_count
            || cfg.service != expected.service)
            .then(|| {
                format!(
                    "{} counted, {} inline",
                    cfg.service_count,
                    cfg.service.iter().filter(|s| **s != [0, 0]).count()
                )
            });
        Ok(ServiceCheck {
            missing: want.difference(&held).map(show).collect(),
            unexpected: held.difference(&want).map(show).collect(),
            config,
        })
    }
}

/// What `check_service` found.
pub struct ServiceCheck {
    /// Addresses `SERVICE_ADDRS` lacks.
    pub missing: Vec<String>,
    /// Addresses it has that are not service addresses.
    pub unexpected: Vec<String>,
    /// How the configuration's copy differs, when it does.
    pub config: Option<String>,
}

impl ServiceCheck {
    /// A line per difference, as `xdpdns map check` lists them.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .missing
            .iter()
            .map(|a| format!("missing: service address {a}"))
            .chain(
                self.unexpected
                    .iter()
                    .map(|a| format!("unexpected: service address {a}")),
            )
            .collect();
        if let Some(why) = &self.config {
            out.push(format!(
                "different: the configuration's service addresses ({why})"
            ));
        }
        out
    }
}
