//! The configuration file (TOML): server settings and the zones to serve, as Knot's and NSD's
//! configuration files hold them. Command-line options override the file.
//!
//! ```toml
//! [server]
//! listen = ["[::]:53"]
//! iface = "eth0"
//! xdp-mode = "native"          # native | generic | auto | off
//! control = "/run/xdpdns/xdpdns.sock"
//! identity = "anycast-node-7"  # CH TXT id.server / hostname.bind
//! version = "xdpdns"           # CH TXT version.bind (omit to refuse)
//! nsid = "node-7"
//! server-payload = 1232
//! xdp-capacity = 200000        # templates in the XDP cache (default: all, twice over)
//! xdp-promote-after = 2        # cold misses per second that promote an answer
//! udp-workers = 2              # UDP threads per address (default: one per CPU)
//! service-addrs = ["198.51.100.53"]  # more addresses XDP answers on (see --service-addr)
//! tcp-idle-timeout = 10        # seconds a TCP connection may wait for a query
//! tcp-write-timeout = 5        # seconds a TCP client may take to accept an answer
//! tcp-max-connections = 1024   # TCP connections at once
//! tcp-max-per-source = 64      # of which from one IPv4 address or IPv6 /64
//!
//! [[zone]]
//! domain = "example."
//! file = "zones/example.zone"  # relative to the configuration file
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use serde::Deserialize;

use crate::wire::name::Name;
use crate::zone::load::ZoneSpec;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSection {
    pub listen: Option<Vec<SocketAddr>>,
    pub service_addrs: Option<Vec<IpAddr>>,
    pub iface: Option<String>,
    pub xdp_mode: Option<String>,
    pub control: Option<PathBuf>,
    pub identity: Option<String>,
    pub version: Option<String>,
    pub nsid: Option<String>,
    pub server_payload: Option<u16>,
    pub tcp_idle_timeout: Option<u64>,
    pub tcp_write_timeout: Option<u64>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_per_source: Option<usize>,
    pub xdp_capacity: Option<u32>,
    pub xdp_promote_after: Option<u32>,
    pub udp_workers: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSection {
    pub domain: String,
    pub file: PathBuf,
}

/// A parsed configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub zone: Vec<ZoneSection>,
}

impl ConfigFile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg: ConfigFile =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for z in &mut cfg.zone {
            if z.file.is_relative() {
                z.file = base.join(&z.file);
            }
        }
        Ok(cfg)
    }

    /// The zones as load specifications.
    pub fn zones(&self) -> Result<Vec<ZoneSpec>> {
        self.zone
            .iter()
            .map(|z| {
                let name = if z.domain.ends_with('.') {
                    z.domain.clone()
                } else {
                    format!("{}.", z.domain)
                };
                let origin =
                    Name::parse(&name, None).map_err(|e| anyhow!("zone {}: {e}", z.domain))?;
                Ok(ZoneSpec {
                    origin,
                    file: z.file.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_and_zones_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("xdpdns-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xdpdns.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = [\"198.18.0.1:53\"]\nxdp-mode = \"off\"\nidentity = \"n1\"\n\
             service-addrs = [\"198.19.0.53\", \"fd00:ff::53\"]\ntcp-write-timeout = 2\n\
             tcp-max-per-source = 3\n\n[[zone]]\ndomain = \"example\"\nfile = \"example.zone\"\n",
        )
        .unwrap();
        let c = ConfigFile::load(&path).unwrap();
        assert_eq!(c.server.identity.as_deref(), Some("n1"));
        let service: Vec<IpAddr> = vec![
            "198.19.0.53".parse().unwrap(),
            "fd00:ff::53".parse().unwrap(),
        ];
        assert_eq!(c.server.service_addrs, Some(service));
        assert_eq!(c.server.tcp_write_timeout, Some(2));
        assert_eq!(c.server.tcp_max_per_source, Some(3));
        let z = c.zones().unwrap();
        assert_eq!(z[0].origin.to_string(), "example.");
        assert_eq!(z[0].file, dir.join("example.zone"));
        std::fs::write(&path, "[server]\nlisten-typo = []\n").unwrap();
        let e = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("listen-typo"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
