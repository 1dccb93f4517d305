//! The configuration file (TOML): server settings and the zones to serve, as Knot's and NSD's
//! configuration files hold them — zone files, and secondary zones with their remotes and
//! keys (resolved in `remote`). Command-line options override the file.
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
//! cookie-secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"  # shared by the anycast instances
//! cookie-secret-previous = "445536bcd2513298075a5d379663c962"  # still accepted (rollover)
//! require-cookie = false       # BADCOOKIE over UDP without a valid server cookie
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
//! storage = "/var/lib/xdpdns"  # received zone versions and timers (the default)
//! metrics = "127.0.0.1:9153"   # Prometheus endpoint, GET /metrics (default: off)
//! user = "xdpdns"              # run as this user once bound and attached (default: stay root)
//! log-format = "json"          # text | json | kv
//!
//! [rrl]                        # response rate limiting, off without this (see `rrl::config`)
//! rate-limit = 20
//!
//! [[zone]]
//! domain = "example."
//! file = "zones/example.zone"  # relative to the configuration file
//!
//! # A secondary zone, in the manner of Knot's key, remote and zone sections:
//! [[key]]
//! id = "xfr"                   # the key name (`name` also works)
//! algorithm = "hmac-sha256"
//! secret = "base64=="
//!
//! [[remote]]
//! id = "primary"
//! address = ["198.18.0.1@53", "[fd00::1]:53"]  # ip, ip@port or ip:port; port 53 by default
//! key = "xfr"                  # signs our requests; its NOTIFY must be signed with it
//!
//! [[zone]]
//! domain = "tld."
//! primary = ["primary"]        # tried in order
//! notify-from = ["primary"]    # who may NOTIFY (default: the primaries)
//! expire-policy = "serve-stale"  # or "honour" (the default): SERVFAIL once EXPIRE passes
//! # file = "tld.zone"          # optional: the version to start from when storage has none
//! acl = ["region"]             # who may transfer it from us (default: nobody)
//! notify = ["edge-2"]          # downstream secondaries to NOTIFY of each new version
//!
//! # Feeding the other instances of the region, as Knot's acl section:
//! [[acl]]
//! id = "region"
//! address = ["198.18.0.0/15", "fd00::/8"]  # prefixes (none: any address)
//! key = ["xfr"]                # keys the request must be signed with (none: unsigned)
//! # deny = true                # a matching request is refused; the first matching rule decides
//!
//! [[remote]]
//! id = "edge-2"
//! address = "198.18.0.7"
//! key = "xfr"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;

use super::remote::{find_key, fqdn, keys_from, parse_address, Remote, SecondarySpec};
use crate::xfr::acl::{Acl, RuleConfig};
use crate::xfr::timers::ExpirePolicy;
use crate::xfr::tsig::KeyConfig;
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
    /// DNS Cookie secret, 32 hex digits (`--cookie-secret`).
    pub cookie_secret: Option<String>,
    /// The secret before the last rollover (`--cookie-secret-previous`).
    pub cookie_secret_previous: Option<String>,
    /// BADCOOKIE without a valid server cookie over UDP (`--require-cookie`).
    pub require_cookie: Option<bool>,
    pub server_payload: Option<u16>,
    pub tcp_idle_timeout: Option<u64>,
    pub tcp_write_timeout: Option<u64>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_per_source: Option<usize>,
    pub xdp_capacity: Option<u32>,
    pub xdp_promote_after: Option<u32>,
    pub udp_workers: Option<usize>,
    /// Directory of the secondary zones' received versions (`remote::DEFAULT_STORAGE`).
    pub storage: Option<PathBuf>,
    /// Address of the Prometheus endpoint (`--metrics`).
    pub metrics: Option<SocketAddr>,
    /// The user to run as once everything is bound (`--user`).
    pub user: Option<String>,
    pub log_format: Option<super::logging::LogFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ZoneSection {
    pub domain: String,
    /// The zone file; for a secondary zone, the version to start from when storage has none.
    pub file: Option<PathBuf>,
    /// Remote ids: makes the zone a secondary zone.
    pub primary: Option<Vec<String>>,
    pub notify_from: Option<Vec<String>>,
    pub expire_policy: Option<ExpirePolicy>,
    /// `[[acl]]` ids: who may transfer the zone from us, the first matching rule deciding.
    pub acl: Option<Vec<String>>,
    /// Remote ids: downstream secondaries to NOTIFY.
    pub notify: Option<Vec<String>>,
}

/// An `[[acl]]`: a rule of who may transfer a zone from us.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSection {
    pub id: String,
    pub address: Option<OneOrMore>,
    pub key: Option<OneOrMore>,
    #[serde(default)]
    pub deny: bool,
}

impl AclSection {
    fn rule(&self) -> RuleConfig {
        let items = |o: &Option<OneOrMore>| o.as_ref().map(|o| o.items().to_vec());
        RuleConfig {
            address: items(&self.address).unwrap_or_default(),
            key: items(&self.key).unwrap_or_default(),
            deny: self.deny,
        }
    }
}

/// One string or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    pub fn items(&self) -> &[String] {
        match self {
            OneOrMore::One(s) => std::slice::from_ref(s),
            OneOrMore::More(v) => v,
        }
    }
}

/// A `[[remote]]`: a primary, or a server that may NOTIFY us.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSection {
    pub id: String,
    pub address: OneOrMore,
    pub key: Option<String>,
}

/// A parsed configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub key: Vec<KeyConfig>,
    #[serde(default)]
    pub remote: Vec<RemoteSection>,
    #[serde(default)]
    pub acl: Vec<AclSection>,
    #[serde(default)]
    pub zone: Vec<ZoneSection>,
    /// Response rate limiting (`rrl::config`); none: off.
    pub rrl: Option<crate::rrl::config::RrlSection>,
}

impl ConfigFile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg: ConfigFile =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if let Some(r) = &cfg.rrl {
            r.settings()
                .with_context(|| format!("{}: [rrl]", path.display()))?;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let files = cfg.zone.iter_mut().filter_map(|z| z.file.as_mut());
        for f in files.chain(cfg.server.storage.as_mut()) {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        Ok(cfg)
    }

    /// The zones served from their files, as load specifications.
    pub fn zones(&self) -> Result<Vec<ZoneSpec>> {
        let mut out = Vec::new();
        for z in self.zone.iter().filter(|z| z.primary.is_none()) {
            let origin = fqdn(&z.domain).map_err(|e| anyhow!("[[zone]] {e}"))?;
            if z.notify_from.is_some()
                || z.expire_policy.is_some()
                || z.acl.is_some()
                || z.notify.is_some()
            {
                bail!(
                    "[[zone]] {origin}: notify-from, expire-policy, acl and notify are for \
                     secondary zones (with primary = [...])"
                );
            }
            let file = z.file.clone().ok_or_else(|| {
                anyhow!("[[zone]] {origin}: no file, and no primary to transfer it from")
            })?;
            out.push(ZoneSpec { origin, file });
        }
        Ok(out)
    }

    /// The secondary zones (those with `primary`), their remotes and keys resolved.
    pub fn secondaries(&self) -> Result<Vec<SecondarySpec>> {
        let keys = keys_from(&self.key)?;
        let mut remotes: Vec<Remote> = Vec::new();
        for r in &self.remote {
            let what = || format!("[[remote]] {:?}", r.id);
            if remotes.iter().any(|o| o.id == r.id) {
                bail!("{}: a remote of that id is already defined", what());
            }
            let addrs = r
                .address
                .items()
                .iter()
                .map(|a| parse_address(a))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| anyhow!("{}: {e}", what()))?;
            if addrs.is_empty() {
                bail!("{}: no address", what());
            }
            let key = match &r.key {
                Some(k) => Some(
                    find_key(&keys, k)
                        .map_err(|e| anyhow!("{}: {e}", what()))?
                        .clone(),
                ),
                None => None,
            };
            remotes.push(Remote {
                id: r.id.clone(),
                addrs,
                key,
            });
        }
        let mut out = Vec::new();
        for z in &self.zone {
            let Some(primary) = &z.primary else { continue };
            let zone = fqdn(&z.domain).map_err(|e| anyhow!("[[zone]] {e}"))?;
            let pick = |ids: &[String], field: &str| -> Result<Vec<Remote>> {
                ids.iter()
                    .map(|id| {
                        remotes.iter().find(|r| r.id == *id).cloned().ok_or_else(|| {
                            let known: Vec<&str> = remotes.iter().map(|r| r.id.as_str()).collect();
                            anyhow!(
                                "[[zone]] {zone}: {field} {id:?} is not a [[remote]] id (remotes: {})",
                                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                            )
                        })
                    })
                    .collect()
            };
            let primaries = pick(primary, "primary")?;
            if primaries.is_empty() {
                bail!("[[zone]] {zone}: primary = [] names no remote");
            }
            let notify_from = match &z.notify_from {
                Some(ids) => pick(ids, "notify-from")?,
                None => primaries.clone(),
            };
            let notify = match &z.notify {
                Some(ids) => pick(ids, "notify")?,
                None => Vec::new(),
            };
            let mut rules = Vec::new();
            for id in z.acl.iter().flatten() {
                let a = self.acl.iter().find(|a| a.id == *id).ok_or_else(|| {
                    let known: Vec<&str> = self.acl.iter().map(|a| a.id.as_str()).collect();
                    anyhow!(
                        "[[zone]] {zone}: acl {id:?} is not an [[acl]] id (acls: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )
                })?;
                rules.push(a.rule());
            }
            let acl = Acl::from_config(&rules, &keys)
                .map_err(|e| anyhow!("[[zone]] {zone}: acl: {e:#}"))?;
            out.push(SecondarySpec {
                zone,
                primaries,
                notify_from,
                policy: z.expire_policy.unwrap_or_default(),
                file: z.file.clone(),
                acl,
                notify,
            });
        }
        Ok(out)
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
             tcp-max-per-source = 3\ncookie-secret = \"e5e973e5a6b2a43f48e7dc849e37bfcf\"\n\
             cookie-secret-previous = \"445536bcd2513298075a5d379663c962\"\n\
             require-cookie = true\n\n[rrl]\nrate-limit = 5\nslip = 0\nexempt = [\"fd00::/8\"]\n\n\
             [[zone]]\ndomain = \"example\"\nfile = \"example.zone\"\n",
        )
        .unwrap();
        let c = ConfigFile::load(&path).unwrap();
        let rrl = c.rrl.as_ref().unwrap().settings().unwrap();
        assert_eq!(
            (rrl.rate, rrl.slip, rrl.window, rrl.ipv4_prefix),
            (5, 0, 15, 24)
        );
        assert_eq!(rrl.exempt, vec!["fd00::/8".parse().unwrap()]);
        assert!(!rrl.dry_run);
        assert_eq!(c.server.identity.as_deref(), Some("n1"));
        assert_eq!(
            c.server.cookie_secret.as_deref(),
            Some("e5e973e5a6b2a43f48e7dc849e37bfcf")
        );
        assert!(c.server.cookie_secret_previous.is_some());
        assert_eq!(c.server.require_cookie, Some(true));
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
        for (bad, says) in [
            ("rate-limit = 0", "rate-limit"),
            ("rate-limit = 5\nipv4-prefix = 33", "ipv4-prefix"),
            (
                "rate-limit = 5\nexempt = [\"198.18.0.1/8\"]",
                "198.18.0.1/8",
            ),
            ("slip = 2", "rate-limit"),
        ] {
            std::fs::write(&path, format!("[rrl]\n{bad}\n")).unwrap();
            let e = format!("{:#}", ConfigFile::load(&path).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    fn secondary_config(dir: &Path, text: &str) -> Result<Vec<SecondarySpec>> {
        let path = dir.join("secondary.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::load(&path)?.secondaries()
    }

    const KEYS_AND_REMOTES: &str = "[server]\nstorage = \"state\"\n\
        [[key]]\nid = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n\
        [[remote]]\nid = \"p1\"\naddress = [\"198.18.0.1@5300\", \"fd00::1\"]\nkey = \"xfr\"\n\
        [[remote]]\nid = \"p2\"\naddress = \"198.18.0.2:53\"\n";

    #[test]
    fn reads_keys_remotes_and_secondary_zones() {
        let dir = std::env::temp_dir().join(format!("xdpdns-config-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "{KEYS_AND_REMOTES}[[zone]]\ndomain = \"tld\"\nprimary = [\"p1\"]\n\
             expire-policy = \"serve-stale\"\n\
             [[zone]]\ndomain = \"other.\"\nprimary = [\"p2\", \"p1\"]\nnotify-from = [\"p2\"]\n\
             file = \"other.zone\"\n[[zone]]\ndomain = \"example.\"\nfile = \"example.zone\"\n"
        );
        let path = dir.join("secondary.toml");
        std::fs::write(&path, &text).unwrap();
        let c = ConfigFile::load(&path).unwrap();
        assert_eq!(c.server.storage, Some(dir.join("state")));
        assert_eq!(c.zones().unwrap().len(), 1, "only example. is a file zone");
        let s = c.secondaries().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].zone.to_string(), "tld.");
        assert_eq!(s[0].policy, ExpirePolicy::ServeStale);
        assert_eq!(
            s[0].notify_from, s[0].primaries,
            "NOTIFY from the primaries by default"
        );
        let p1 = &s[0].primaries[0];
        assert_eq!(p1.addrs[0].to_string(), "198.18.0.1:5300");
        assert_eq!(p1.addrs[1].to_string(), "[fd00::1]:53");
        assert_eq!(p1.key.as_ref().unwrap().name.to_string(), "xfr.");
        assert_eq!(s[0].clients().len(), 2);
        assert_eq!(s[0].file, None);
        assert_eq!(s[1].policy, ExpirePolicy::Honour, "honour by default");
        assert_eq!(s[1].primaries.len(), 2);
        assert_eq!(s[1].notify_from.len(), 1);
        assert_eq!(s[1].notify_from[0].key, None);
        assert_eq!(s[1].file, Some(dir.join("other.zone")));

        // Errors name the entry.
        let bad = [
            (
                format!("{KEYS_AND_REMOTES}[[zone]]\ndomain = \"tld.\"\nprimary = [\"p3\"]\n"),
                "[[zone]] tld.: primary \"p3\" is not a [[remote]] id (remotes: p1, p2)",
            ),
            (
                format!("{KEYS_AND_REMOTES}[[zone]]\ndomain = \"tld.\"\nprimary = [\"p1\"]\nnotify-from = [\"x\"]\n"),
                "[[zone]] tld.: notify-from \"x\" is not a [[remote]] id",
            ),
            (
                "[[remote]]\nid = \"p\"\naddress = \"198.18.0.1\"\nkey = \"nokey\"\n".into(),
                "[[remote]] \"p\": no key named \"nokey\" (keys: none)",
            ),
            (
                "[[key]]\nid = \"k\"\nalgorithm = \"hmac-sha256\"\nsecret = \"!!\"\n".into(),
                "[[key]] \"k\": key k.: secret is not base64",
            ),
            (
                "[[key]]\nid = \"k\"\nalgorithm = \"hmac-md5\"\nsecret = \"c2VjcmV0\"\n".into(),
                "[[key]] \"k\": key k.: unsupported algorithm \"hmac-md5\"",
            ),
            (
                "[[remote]]\nid = \"p\"\naddress = \"primary.example\"\n".into(),
                "[[remote]] \"p\": address \"primary.example\": expected IP",
            ),
            (
                "[[remote]]\nid = \"p\"\naddress = \"198.18.0.1\"\nkeys = \"x\"\n".into(),
                "unknown field `keys`",
            ),
            (
                format!("{KEYS_AND_REMOTES}[[zone]]\ndomain = \"tld.\"\nprimary = [\"p1\"]\nexpire-policy = \"never\"\n"),
                "unknown variant `never`",
            ),
        ];
        for (text, want) in bad {
            let e = format!("{:#}", secondary_config(&dir, &text).unwrap_err());
            assert!(e.contains(want), "{text}\n=> {e}\nwanted {want}");
        }
        // A zone with neither file nor primary, and secondary keys on a file zone.
        std::fs::write(&path, "[[zone]]\ndomain = \"tld.\"\n").unwrap();
        let e = ConfigFile::load(&path)
            .unwrap()
            .zones()
            .unwrap_err()
            .to_string();
        assert!(e.contains("[[zone]] tld.: no file, and no primary"), "{e}");
        std::fs::write(
            &path,
            "[[zone]]\ndomain = \"tld.\"\nfile = \"f\"\nexpire-policy = \"honour\"\n",
        )
        .unwrap();
        let e = ConfigFile::load(&path)
            .unwrap()
            .zones()
            .unwrap_err()
            .to_string();
        assert!(e.contains("are for secondary zones"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
