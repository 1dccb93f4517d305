//! Secondary zones as configured: the remotes (primaries and the servers that may NOTIFY us),
//! their addresses and TSIG keys, and the expire policy — resolved from the configuration
//! file's `[[key]]`, `[[remote]]` and `[[zone]]` entries or from the command line
//! (`--key NAME:ALGORITHM:SECRET`, `--primary ZONE=ADDRESS[,key=NAME]`), with errors that name
//! the entry at fault; and what the zone feeds other secondaries with: who may transfer it
//! (`acl`, `--allow-transfer`) and whom we NOTIFY (`notify`, `--notify`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};

use crate::wire::name::Name;
use crate::xfr::acl::{Acl, RuleConfig};
use crate::xfr::client::Primary;
use crate::xfr::timers::ExpirePolicy;
use crate::xfr::tsig::{Key, KeyConfig};

/// The DNS port, when an address names none.
pub const DEFAULT_PORT: u16 = 53;

/// Where received zone versions are kept by default (`[server] storage`, `--storage`).
pub const DEFAULT_STORAGE: &str = "/var/lib/xdpdns";

/// A server we transfer from or take NOTIFY from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    pub addrs: Vec<SocketAddr>,
    /// Signs our requests to it, and must sign its NOTIFY.
    pub key: Option<Key>,
}

impl Remote {
    /// `id (address, ...)`, for messages and `xdpdns status`.
    pub fn describe(&self) -> String {
        let addrs: Vec<String> = self.addrs.iter().map(|a| show_addr(*a)).collect();
        format!("{} ({})", self.id, addrs.join(", "))
    }
}

/// `ip@port`, the way Knot writes remote addresses.
pub fn show_addr(a: SocketAddr) -> String {
    format!("{}@{}", a.ip(), a.port())
}

/// A secondary zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondarySpec {
    pub zone: Name,
    /// Tried in order at each refresh.
    pub primaries: Vec<Remote>,
    /// Who may NOTIFY us of a change (by source address, and key when the remote has one).
    pub notify_from: Vec<Remote>,
    pub policy: ExpirePolicy,
    /// A zone file to start from when the storage holds no copy yet.
    pub file: Option<PathBuf>,
    /// Who may transfer the zone from us (no rule: nobody).
    pub acl: Acl,
    /// Downstream secondaries we NOTIFY of each new version.
    pub notify: Vec<Remote>,
}

impl SecondarySpec {
    /// The transfer client of every primary address, in order.
    pub fn clients(&self) -> Vec<Primary> {
        self.primaries
            .iter()
            .flat_map(|r| r.addrs.iter().map(|a| Primary::new(*a, r.key.clone())))
            .collect()
    }
}

/// A name with or without its final dot.
pub fn fqdn(text: &str) -> Result<Name> {
    Name::parse(text, Some(&Name::root())).map_err(|e| anyhow!("{text:?}: {e}"))
}

/// `ip`, `ip@port`, `ipv4:port` or `[ipv6]:port`; the port defaults to 53.
pub fn parse_address(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    if let Some((ip, port)) = s.rsplit_once('@') {
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if let (Ok(ip), Ok(port)) = (ip.parse::<IpAddr>(), port.parse::<u16>()) {
            return Ok(SocketAddr::new(ip, port));
        }
    }
    s.parse::<SocketAddr>().map_err(|_| {
        anyhow!("address {s:?}: expected IP, IP@PORT, IPv4:PORT or [IPv6]:PORT (port 53 if none)")
    })
}

/// The key named `name` among `keys`.
pub fn find_key<'k>(keys: &'k [Key], name: &str) -> Result<&'k Key> {
    let want = fqdn(name)?;
    keys.iter().find(|k| k.name == want).ok_or_else(|| {
        let known: Vec<String> = keys.iter().map(|k| k.name.to_string()).collect();
        anyhow!(
            "no key named {name:?} (keys: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    })
}

/// Keys from their configuration entries, refusing two of the same name.
pub fn keys_from(configs: &[KeyConfig]) -> Result<Vec<Key>> {
    let mut keys: Vec<Key> = Vec::new();
    for c in configs {
        let k = Key::from_config(c).map_err(|e| anyhow!("[[key]] {:?}: {e:#}", c.name))?;
        if keys.iter().any(|o| o.name == k.name) {
            bail!(
                "[[key]] {:?}: a key of that name is already defined",
                c.name
            );
        }
        keys.push(k);
    }
    Ok(keys)
}

/// `--key NAME:ALGORITHM:SECRET` (the secret in base64).
#[derive(Clone, Debug)]
pub struct CliKey(pub Key);

impl FromStr for CliKey {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<CliKey> {
        let mut parts = s.splitn(3, ':');
        let (Some(name), Some(algorithm), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("--key {s:?}: expected NAME:ALGORITHM:SECRET, e.g. xfr:hmac-sha256:c2VjcmV0");
        };
        let c = KeyConfig {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            secret: secret.to_owned(),
        };
        Key::from_config(&c)
            .map(CliKey)
            .map_err(|e| anyhow!("--key {name}: {e:#}"))
    }
}

/// `ZONE=VALUE[,key=NAME]`, the form of --primary, --notify and --allow-transfer: the zone,
/// the value and the key name.
fn zone_value_key<'a>(
    flag: &str,
    s: &'a str,
    example: &str,
) -> Result<(Name, &'a str, Option<String>)> {
    let usage = format!("expected ZONE={example}");
    let (zone, rest) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} {s:?}: {usage}"))?;
    let (value, key) = match rest.split_once(',') {
        Some((a, k)) => match k.strip_prefix("key=") {
            Some(k) if !k.is_empty() => (a, Some(k.to_owned())),
            _ => bail!("{flag} {s:?}: {usage}"),
        },
        None => (rest, None),
    };
    let zone = fqdn(zone).map_err(|e| anyhow!("{flag} {s:?}: zone {e}"))?;
    Ok((zone, value, key))
}

/// `--primary ZONE=ADDRESS[,key=NAME]` (and `--notify`, of the same form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliPrimary {
    pub zone: Name,
    pub addr: SocketAddr,
    pub key: Option<String>,
}

impl CliPrimary {
    fn parse(flag: &str, s: &str) -> Result<CliPrimary> {
        let (zone, addr, key) = zone_value_key(
            flag,
            s,
            "ADDRESS[,key=NAME], e.g. tld.=198.18.0.1@53,key=xfr",
        )?;
        Ok(CliPrimary {
            zone,
            addr: parse_address(addr).map_err(|e| anyhow!("{flag} {s:?}: {e}"))?,
            key,
        })
    }
}

impl FromStr for CliPrimary {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<CliPrimary> {
        CliPrimary::parse("--primary", s)
    }
}

/// `--notify ZONE=ADDRESS[,key=NAME]`: a downstream secondary to NOTIFY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliNotify(pub CliPrimary);

impl FromStr for CliNotify {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<CliNotify> {
        CliPrimary::parse("--notify", s).map(CliNotify)
    }
}

/// `--allow-transfer ZONE=PREFIX[,key=NAME]`: an ACL rule allowing transfers of ZONE from
/// PREFIX, signed with the key when one is named (unsigned otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliAllow {
    pub zone: Name,
    pub rule: RuleConfig,
}

impl FromStr for CliAllow {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<CliAllow> {
        let flag = "--allow-transfer";
        let (zone, prefix, key) = zone_value_key(
            flag,
            s,
            "PREFIX[,key=NAME], e.g. tld.=198.18.0.0/15,key=xfr",
        )?;
        prefix
            .parse::<crate::xfr::acl::Prefix>()
            .map_err(|e| anyhow!("{flag} {s:?}: {e}"))?;
        Ok(CliAllow {
            zone,
            rule: RuleConfig {
                address: vec![prefix.to_owned()],
                key: key.into_iter().collect(),
                deny: false,
            },
        })
    }
}

/// The secondary zones the command line names: one per zone of `primaries` (its primaries in
/// the order given, which may also NOTIFY it), with `policy`; `file` gives a zone's starting
/// file, if any.
pub fn from_cli(
    primaries: &[CliPrimary],
    keys: &[Key],
    policy: ExpirePolicy,
    file: impl Fn(&Name) -> Option<PathBuf>,
) -> Result<Vec<SecondarySpec>> {
    from_cli_with(primaries, &[], &[], keys, policy, file)
}

/// `from_cli`, with the downstreams to NOTIFY (`--notify`) and the transfer ACL rules
/// (`--allow-transfer`) of the zones.
pub fn from_cli_with(
    primaries: &[CliPrimary],
    notify: &[CliNotify],
    allow: &[CliAllow],
    keys: &[Key],
    policy: ExpirePolicy,
    file: impl Fn(&Name) -> Option<PathBuf>,
) -> Result<Vec<SecondarySpec>> {
    let remote = |flag: &str, p: &CliPrimary| -> Result<Remote> {
        let key = match &p.key {
            Some(k) => Some(
                find_key(keys, k)
                    .map_err(|e| anyhow!("{flag} {}={}: {e}", p.zone, show_addr(p.addr)))?
                    .clone(),
            ),
            None => None,
        };
        Ok(Remote {
            id: format!("{flag} {}", show_addr(p.addr)),
            addrs: vec![p.addr],
            key,
        })
    };
    let mut out: Vec<SecondarySpec> = Vec::new();
    for p in primaries {
        let remote = remote("--primary", p)?;
        match out.iter_mut().find(|s| s.zone == p.zone) {
            Some(s) => {
                s.primaries.push(remote.clone());
                s.notify_from.push(remote);
            }
            None => out.push(SecondarySpec {
                zone: p.zone.clone(),
                primaries: vec![remote.clone()],
                notify_from: vec![remote],
                policy,
                file: file(&p.zone),
                acl: Acl::default(),
                notify: Vec::new(),
            }),
        }
    }
    let not_secondary = |flag: &str, zone: &Name| {
        anyhow!("{flag} {zone}: not a --primary zone (only secondary zones feed others here)")
    };
    for n in notify {
        let r = remote("--notify", &n.0)?;
        let s = out
            .iter_mut()
            .find(|s| s.zone == n.0.zone)
            .ok_or_else(|| not_secondary("--notify", &n.0.zone))?;
        s.notify.push(r);
    }
    for s in &mut out {
        let rules: Vec<RuleConfig> = allow
            .iter()
            .filter(|a| a.zone == s.zone)
            .map(|a| a.rule.clone())
            .collect();
        s.acl = Acl::from_config(&rules, keys)
            .map_err(|e| anyhow!("--allow-transfer {}: {e:#}", s.zone))?;
    }
    if let Some(a) = allow.iter().find(|a| !out.iter().any(|s| s.zone == a.zone)) {
        return Err(not_secondary("--allow-transfer", &a.zone));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_ports() {
        let a = |s: &str| parse_address(s).unwrap().to_string();
        assert_eq!(a("198.18.0.1"), "198.18.0.1:53");
        assert_eq!(a("198.18.0.1@5353"), "198.18.0.1:5353");
        assert_eq!(a("198.18.0.1:5353"), "198.18.0.1:5353");
        assert_eq!(a("fd00::1"), "[fd00::1]:53");
        assert_eq!(a("fd00::1@5353"), "[fd00::1]:5353");
        assert_eq!(a("[fd00::1]:5353"), "[fd00::1]:5353");
        for bad in [
            "",
            "198.18.0.1@",
            "198.18.0.1@x",
            "host.example",
            "198.18.0.1:99999",
        ] {
            let e = parse_address(bad).unwrap_err().to_string();
            assert!(e.contains("expected IP"), "{bad}: {e}");
        }
    }

    #[test]
    fn command_line_keys_and_primaries() {
        let k: CliKey = "xfr:hmac-sha256:c2VjcmV0".parse().unwrap();
        assert_eq!(k.0.name.to_string(), "xfr.");
        let e = "xfr:hmac-md5:c2VjcmV0".parse::<CliKey>().unwrap_err();
        assert!(format!("{e:#}").contains("unsupported algorithm"), "{e:#}");
        let e = "xfr:hmac-sha256:not*base64".parse::<CliKey>().unwrap_err();
        assert!(format!("{e:#}").contains("--key xfr: key xfr.: secret is not base64"));
        assert!("xfr:hmac-sha256".parse::<CliKey>().is_err());

        let p: CliPrimary = "tld=198.18.0.1@5300,key=xfr".parse().unwrap();
        assert_eq!(p.zone.to_string(), "tld.");
        assert_eq!(p.addr.to_string(), "198.18.0.1:5300");
        assert_eq!(p.key.as_deref(), Some("xfr"));
        let q: CliPrimary = "tld.=[fd00::1]:53".parse().unwrap();
        assert_eq!(q.key, None);
        assert!("tld.=198.18.0.1,kex=xfr".parse::<CliPrimary>().is_err());
        assert!("198.18.0.1".parse::<CliPrimary>().is_err());

        let specs = from_cli(
            &[p.clone(), q],
            std::slice::from_ref(&k.0),
            ExpirePolicy::ServeStale,
            |_| None,
        )
        .unwrap();
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!(s.primaries.len(), 2);
        assert_eq!(s.notify_from, s.primaries);
        assert_eq!(s.primaries[0].key.as_ref(), Some(&k.0));
        assert_eq!(s.clients().len(), 2);
        assert_eq!(s.policy, ExpirePolicy::ServeStale);
        let e = from_cli(&[p], &[], ExpirePolicy::Honour, |_| None).unwrap_err();
        assert!(
            e.to_string().contains("no key named \"xfr\" (keys: none)"),
            "{e}"
        );
    }
}
