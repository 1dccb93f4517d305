//! Who may transfer a zone from us: an ordered list of rules, each a set of address prefixes and
//! of TSIG keys, allowing or denying. The first rule that matches a request decides; a request
//! that no rule matches is refused. The semantics are Knot's `acl`: a rule with addresses
//! matches only peers inside one of them (no addresses: any peer); a rule with keys matches only
//! requests signed (and verified) with one of them, a rule without keys only unsigned requests.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use super::tsig::Key;
use crate::wire::name::Name;

/// An address prefix: `198.18.0.0/15`, `fd00::/8`, or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// The address as it is compared: IPv4-mapped IPv6 addresses (a dual-stack socket's view of
/// IPv4 peers) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

impl Prefix {
    /// `addr/len`; the bits past `len` must be zero (a typo in the length otherwise widens or
    /// narrows the rule unnoticed).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix> {
        let addr = canonical(addr);
        let (b, max) = bits(addr);
        if len > max {
            bail!("prefix length {len} is longer than the {max} bits of {addr}");
        }
        let host = (!0u128).checked_shr(u32::from(len)).unwrap_or(0);
        if b & host != 0 {
            bail!("{addr}/{len} has bits set past the prefix length");
        }
        Ok(Prefix { addr, len })
    }

    /// The prefix's address (IPv4 for IPv4-mapped ones) and length.
    pub fn parts(&self) -> (IpAddr, u8) {
        (self.addr, self.len)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let mask = if self.len == 0 {
            0
        } else {
            !0u128 << (128 - u32::from(self.len))
        };
        bits(ip).0 & mask == bits(self.addr).0 & mask
    }
}

impl FromStr for Prefix {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Prefix> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| anyhow!("{s:?}: not an IP address or prefix"))?;
        let len = match l {
            Some(l) => l
                .trim()
                .parse()
                .map_err(|_| anyhow!("{s:?}: bad prefix length {l:?}"))?,
            None => bits(canonical(addr)).1,
        };
        Prefix::new(addr, len).map_err(|e| anyhow!("{s:?}: {e}"))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Peers the rule applies to; empty: every peer.
    pub addresses: Vec<Prefix>,
    /// Keys the request must be signed with; empty: the request must be unsigned.
    pub keys: Vec<Name>,
    /// A matching request is refused.
    pub deny: bool,
}

impl Rule {
    fn matches(&self, peer: IpAddr, key: Option<&Name>) -> bool {
        let address = self.addresses.is_empty() || self.addresses.iter().any(|p| p.contains(peer));
        let key = match key {
            None => self.keys.is_empty(),
            Some(k) => self.keys.contains(k),
        };
        address && key
    }
}

/// A `[[zone.acl]]`-style configuration entry: `address = ["198.18.0.0/15"]`, `key = ["name"]`,
/// `deny = false`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(default)]
    pub address: Vec<String>,
    #[serde(default)]
    pub key: Vec<String>,
    #[serde(default)]
    pub deny: bool,
}

/// The transfer ACL of a zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    pub rules: Vec<Rule>,
}

impl Acl {
    /// From configuration entries; every key named must be among `keys`.
    pub fn from_config(rules: &[RuleConfig], keys: &[Key]) -> Result<Acl> {
        let mut out = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let at = |e: anyhow::Error| anyhow!("acl rule {}: {e:#}", i + 1);
            let addresses = r
                .address
                .iter()
                .map(|a| a.parse())
                .collect::<Result<Vec<Prefix>>>()
                .map_err(at)?;
            let mut names = Vec::with_capacity(r.key.len());
            for k in &r.key {
                let fq = if k.ends_with('.') {
                    k.clone()
                } else {
                    format!("{k}.")
                };
                let name =
                    Name::parse(&fq, None).map_err(|e| at(anyhow!("key name {k:?}: {e}")))?;
                if !keys.iter().any(|key| key.name == name) {
                    return Err(at(anyhow!("key {name} is not among the [[key]] entries")));
                }
                names.push(name);
            }
            out.push(Rule {
                addresses,
                keys: names,
                deny: r.deny,
            });
        }
        Ok(Acl { rules: out })
    }

    /// Whether `peer`, with a request signed by `key` (verified) or unsigned, may transfer;
    /// `Err` says why not.
    pub fn check(&self, peer: IpAddr, key: Option<&Name>) -> Result<(), String> {
        let who = || match key {
            Some(k) => format!("{} with key {k}", canonical(peer)),
            None => format!("{} unsigned", canonical(peer)),
        };
        match self.rules.iter().position(|r| r.matches(peer, key)) {
            Some(i) if self.rules[i].deny => {
                Err(format!("{}: denied by acl rule {}", who(), i + 1))
            }
            Some(_) => Ok(()),
            None => Err(format!("{}: no acl rule allows it", who())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::tsig::Algorithm;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn name(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn prefixes_parse_and_contain() {
        let p: Prefix = "198.18.0.0/15".parse().unwrap();
        assert!(p.contains(ip("198.19.255.255")) && p.contains(ip("198.18.0.1")));
        assert!(!p.contains(ip("198.20.0.0")) && !p.contains(ip("fd00::1")));
        assert!(p.contains(ip("::ffff:198.18.3.4")), "IPv4-mapped peers");
        let host: Prefix = "fd00::1".parse().unwrap();
        assert!(host.contains(ip("fd00::1")) && !host.contains(ip("fd00::2")));
        let six: Prefix = "fd00::/8".parse().unwrap();
        assert!(six.contains(ip("fd12::1")) && !six.contains(ip("fe80::1")));
        let one: Prefix = "198.18.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "198.18.0.1/32");
        assert!(one.contains(ip("198.18.0.1")) && !one.contains(ip("198.18.0.2")));
        let all: Prefix = "::/0".parse().unwrap();
        assert!(all.contains(ip("fd00::9")) && !all.contains(ip("198.18.0.1")));
        for bad in [
            "198.18.0.1/15",
            "198.18.0.0/33",
            "fd00::/129",
            "nope",
            "198.18.0.0/x",
        ] {
            let e = bad.parse::<Prefix>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn first_matching_rule_decides_and_keys_must_match() {
        let keys = [
            Key::new(name("k1."), Algorithm::HmacSha256, b"a".to_vec()),
            Key::new(name("k2."), Algorithm::HmacSha256, b"b".to_vec()),
        ];
        let conf: Vec<RuleConfig> =
            toml::from_str::<std::collections::BTreeMap<String, Vec<RuleConfig>>>(
                r#"acl = [
                { address = ["198.18.0.9"], deny = true, key = ["k1"] },
                { address = ["198.18.0.0/24", "fd00::/64"], key = ["k1"] },
                { address = ["198.18.1.0/24"] },
            ]"#,
            )
            .unwrap()
            .remove("acl")
            .unwrap();
        let acl = Acl::from_config(&conf, &keys).unwrap();
        let k1 = name("K1.");
        let k2 = name("k2.");
        assert_eq!(acl.check(ip("198.18.0.1"), Some(&k1)), Ok(()));
        assert_eq!(acl.check(ip("fd00::5"), Some(&k1)), Ok(()));
        let e = acl.check(ip("198.18.0.9"), Some(&k1)).unwrap_err();
        assert!(e.contains("denied by acl rule 1"), "{e}");
        let e = acl.check(ip("198.18.0.1"), Some(&k2)).unwrap_err();
        assert!(
            e.contains("with key k2.") && e.contains("no acl rule"),
            "{e}"
        );
        let e = acl.check(ip("198.18.0.1"), None).unwrap_err();
        assert!(e.contains("unsigned"), "{e}");
        assert_eq!(acl.check(ip("198.18.1.7"), None), Ok(()));
        assert!(acl.check(ip("198.18.1.7"), Some(&k1)).is_err());
        assert!(acl.check(ip("198.18.2.1"), None).is_err());
        assert!(Acl::default().check(ip("198.18.0.1"), None).is_err());

        let unknown = [RuleConfig {
            key: vec!["k3".into()],
            ..RuleConfig::default()
        }];
        let e = Acl::from_config(&unknown, &keys).unwrap_err().to_string();
        assert!(e.contains("acl rule 1") && e.contains("k3."), "{e}");
        let bad = [RuleConfig {
            address: vec!["198.18.0.0/99".into()],
            ..RuleConfig::default()
        }];
        assert!(Acl::from_config(&bad, &keys).is_err());
    }
}
