//! The structure of RDATA in uncompressed wire form, type by type (RFC 1035 §3.3 and the RFC
//! of each type): the check `Zone::build` makes of every record, whether it was written in
//! presentation form or in the RFC 3597 `\# length hex` form.
//!
//! Fixed fields must be present; names complete, at most 255 octets and uncompressed;
//! character-strings, SvcParams (RFC 9460 §2.2) and type bitmaps (RFC 4034 §4.1.2) must fill
//! their space exactly; nothing may follow the last field. NSEC3 iterations are limited to 150
//! (see `NSEC3_MAX_ITERATIONS`), which bounds the hashing a negative answer costs. The answer engine, name
//! compression and the XDP compiler then read RDATA without checking it again. Types not
//! listed here are opaque octets.

use std::fmt;

use crate::wire::name::NAME_MAX;
use crate::wire::record::rtype;

/// Most NSEC3 iterations a zone may use: validators treat answers with more as insecure
/// (RFC 9276 §3.2 reports 150 as their limit), and each costs a SHA-1 per name hashed.
pub const NSEC3_MAX_ITERATIONS: u16 = 150;

/// Why an RDATA is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdataError {
    pub rtype: u16,
    pub message: String,
}

impl fmt::Display for RdataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} RDATA: {}",
            rtype::to_string(self.rtype),
            self.message
        )
    }
}

impl std::error::Error for RdataError {}

type R<T> = Result<T, String>;

// Types known here by number only.
const MD: u16 = 3;
const MF: u16 = 4;
const MB: u16 = 7;
const MG: u16 = 8;
const MR: u16 = 9;
const WKS: u16 = 11;
const MINFO: u16 = 14;
const RP: u16 = 17;
const AFSDB: u16 = 18;
const X25: u16 = 19;
const ISDN: u16 = 20;
const RT: u16 = 21;
const NSAP_PTR: u16 = 23;
const KEY: u16 = 25;
const PX: u16 = 26;
const LOC: u16 = 29;
const KX: u16 = 36;
const SMIMEA: u16 = 53;
const CSYNC: u16 = 62;
const SPF: u16 = 99;

/// A cursor over one RDATA.
struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.p
    }

    fn take(&mut self, n: usize, what: &str) -> R<&'a [u8]> {
        if n > self.left() {
            return Err(format!(
                "ends inside the {what} ({} of {n} octets)",
                self.left()
            ));
        }
        let s = &self.b[self.p..self.p + n];
        self.p += n;
        Ok(s)
    }

    /// All of the RDATA, which must be `n` octets.
    fn exactly(&mut self, n: usize, what: &str) -> R<()> {
        match self.left() {
            l if l == n => self.take(n, what).map(drop),
            l => Err(format!("{l} octets, not the {n} of {what}")),
        }
    }

    fn u8(&mut self, what: &str) -> R<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> R<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A complete uncompressed name.
    fn name(&mut self, what: &str) -> R<()> {
        let start = self.p;
        loop {
            let len = self.u8(what)?;
            match len {
                0 => return Ok(()),
                1..=63 => {
                    self.take(len.into(), what)?;
                }
                0xc0..=0xff => {
                    return Err(format!(
                        "the {what} is compressed (names in zone data are written in full)"
                    ))
                }
                _ => return Err(format!("the {what} has a label of unknown type {len:#04x}")),
            }
            if self.p - start >= NAME_MAX {
                return Err(format!("the {what} is longer than 255 octets"));
            }
        }
    }

    fn charstr(&mut self, what: &str) -> R<&'a [u8]> {
        let n = self.u8(what)?;
        self.take(n.into(), what)
    }

    /// The rest, which must not be empty.
    fn rest(&mut self, what: &str) -> R<&'a [u8]> {
        if self.left() == 0 {
            return Err(format!("the {what} is missing"));
        }
        self.take(self.left(), what)
    }

    fn done(&self) -> R<()> {
        match self.left() {
            0 => Ok(()),
            1 => Err("1 octet follows the last field".into()),
            n => Err(format!("{n} octets follow the last field")),
        }
    }
}

/// Checks an RDATA of type `t`.
pub fn check(t: u16, rdata: &[u8]) -> Result<(), RdataError> {
    let mut r = Rd { b: rdata, p: 0 };
    let fit = match rdata.len() {
        0..=65535 => Ok(()),
        n => Err(format!("{n} octets are more than RDLENGTH can say (65535)")),
    };
    fit.and_then(|()| fields(t, &mut r))
        .and_then(|()| r.done())
        .map_err(|message| RdataError { rtype: t, message })
}

fn fields(t: u16, r: &mut Rd<'_>) -> R<()> {
    match t {
        rtype::A => r.exactly(4, "an IPv4 address"),
        rtype::AAAA => r.exactly(16, "an IPv6 address"),
        rtype::NS
        | rtype::CNAME
        | rtype::DNAME
        | rtype::PTR
        | MD
        | MF
        | MB
        | MG
        | MR
        | NSAP_PTR => r.name("target name"),
        rtype::SOA => {
            r.name("MNAME")?;
            r.name("RNAME")?;
            r.take(20, "SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM")
                .map(drop)
        }
        MINFO | RP => {
            r.name("first name")?;
            r.name("second name")
        }
        rtype::MX | AFSDB | RT | KX => {
            r.u16("preference")?;
            r.name("target name")
        }
        PX => {
            r.u16("preference")?;
            r.name("MAP822 name")?;
            r.name("MAPX400 name")
        }
        rtype::SRV => {
            r.take(6, "priority, weight and port")?;
            r.name("target name")
        }
        rtype::NAPTR => naptr(r),
        rtype::TXT | SPF => {
            r.charstr("character-string")?;
            while r.left() > 0 {
                r.charstr("character-string")?;
            }
            Ok(())
        }
        rtype::HINFO => {
            r.charstr("CPU")?;
            r.charstr("OS").map(drop)
        }
        X25 => r.charstr("PSDN address").map(drop),
        ISDN => {
            r.charstr("ISDN address")?;
            if r.left() > 0 {
                r.charstr("subaddress")?;
            }
            Ok(())
        }
        WKS => r.take(5, "address and protocol").map(drop),
        LOC => {
            // Version 0 (RFC 1876 §2) has a fixed size; other versions are opaque.
            if r.u8("version")? == 0 {
                r.take(15, "size, precisions, latitude, longitude and altitude")?;
            } else {
                r.p = r.b.len();
            }
            Ok(())
        }
        rtype::RRSIG => {
            r.take(18, "fixed fields (type covered to key tag)")?;
            r.name("signer name")?;
            r.rest("signature").map(drop)
        }
        rtype::DNSKEY | rtype::CDNSKEY | KEY => {
            r.take(4, "flags, protocol and algorithm")?;
            r.rest("public key").map(drop)
        }
        rtype::DS | rtype::CDS => {
            r.take(4, "key tag, algorithm and digest type")?;
            r.rest("digest").map(drop)
        }
        rtype::SSHFP => {
            r.take(2, "algorithm and fingerprint type")?;
            r.rest("fingerprint").map(drop)
        }
        rtype::TLSA | SMIMEA => {
            r.take(3, "usage, selector and matching type")?;
            r.rest("certificate association data").map(drop)
        }
        rtype::NSEC => {
            r.name("next domain name")?;
            type_bitmap(r)
        }
        rtype::NSEC3 => {
            nsec3_head(r)?;
            let hash = r.charstr("next hashed owner name")?;
            if hash.is_empty() {
                return Err("the next hashed owner name is empty".into());
            }
            type_bitmap(r)
        }
        rtype::NSEC3PARAM => nsec3_head(r),
        CSYNC => {
            r.take(6, "SOA serial and flags")?;
            type_bitmap(r)
        }
        rtype::ZONEMD => {
            r.take(6, "serial, scheme and hash algorithm")?;
            let digest = r.rest("digest")?;
            if digest.len() < 12 {
                return Err(format!(
                    "the digest of {} octets is shorter than 12",
                    digest.len()
                ));
            }
            Ok(())
        }
        rtype::SVCB | rtype::HTTPS => svcb(r),
        rtype::CAA => {
            r.u8("flags")?;
            // RFC 8659 §4.1.1: 1 to 15 letters and digits (more is a SHOULD NOT, which clients
            // such as hickory-proto enforce by refusing the whole message).
            let tag = r.charstr("tag")?;
            if !(1..=15).contains(&tag.len()) || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err("the tag is not 1 to 15 letters and digits (RFC 8659 §4.1.1)".into());
            }
            r.p = r.b.len();
            Ok(())
        }
        _ => {
            r.p = r.b.len();
            Ok(())
        }
    }
}

/// NAPTR (RFC 3403 §4.1): order, preference, flags, services, regexp, replacement.
fn naptr(r: &mut Rd<'_>) -> R<()> {
    r.take(4, "order and preference")?;
    let flags = r.charstr("flags")?;
    if !flags.iter().all(u8::is_ascii_alphanumeric) {
        return Err("the flags are not letters and digits (RFC 3403 §4.1)".into());
    }
    r.charstr("services")?;
    r.charstr("regexp")?;
    r.name("replacement name")
}

/// NSEC3 and NSEC3PARAM: hash algorithm, flags, iterations, salt.
fn nsec3_head(r: &mut Rd<'_>) -> R<()> {
    r.take(2, "hash algorithm and flags")?;
    let iterations = r.u16("iterations")?;
    if iterations > NSEC3_MAX_ITERATIONS {
        return Err(format!(
            "{iterations} iterations are more than {NSEC3_MAX_ITERATIONS} (RFC 9276 §3.2)"
        ));
    }
    r.charstr("salt").map(drop)
}

/// A type bitmap (RFC 4034 §4.1.2): windows in increasing order, each 1 to 32 octets long,
/// without trailing zero octets. It may be empty.
fn type_bitmap(r: &mut Rd<'_>) -> R<()> {
    let mut last: Option<u8> = None;
    while r.left() > 0 {
        let window = r.u8("type bitmap window")?;
        let len = r.u8("type bitmap window length")?;
        if last.is_some_and(|l| window <= l) {
            return Err(format!(
                "type bitmap window {window} comes after window {}",
                last.unwrap_or(0)
            ));
        }
        if !(1..=32).contains(&len) {
            return Err(format!(
                "type bitmap window {window} is {len} octets long, not 1 to 32"
            ));
        }
        let bits = r.take(len.into(), "type bitmap")?;
        if bits.last() == Some(&0) {
            return Err(format!(
                "type bitmap window {window} ends with a zero octet"
            ));
        }
        last = Some(window);
    }
    Ok(())
}

/// The presentation name of a SvcParamKey (RFC 9460 §14.3.2).
fn svc_key(key: u16) -> String {
    match key {
        0 => "mandatory".into(),
        1 => "alpn".into(),
        2 => "no-default-alpn".into(),
        3 => "port".into(),
        4 => "ipv4hint".into(),
        5 => "ech".into(),
        6 => "ipv6hint".into(),
        7 => "dohpath".into(),
        8 => "ohttp".into(),
        k => format!("key{k}"),
    }
}

/// SVCB and HTTPS (RFC 9460 §2.2): priority, target name, SvcParams in strictly increasing key
/// order, each value well formed for its key, and the keys listed as mandatory present.
fn svcb(r: &mut Rd<'_>) -> R<()> {
    r.u16("SvcPriority")?;
    r.name("TargetName")?;
    let mut keys: Vec<u16> = Vec::new();
    let mut mandatory: &[u8] = &[];
    while r.left() > 0 {
        let key = r.u16("SvcParamKey")?;
        let name = svc_key(key);
        let len = r.u16(&format!("length of SvcParam {name}"))?;
        let value = r.take(len.into(), &format!("value of SvcParam {name}"))?;
        if keys.last().is_some_and(|&l| key <= l) {
            return Err(format!(
                "SvcParam {name} comes after {} (keys must increase)",
                svc_key(keys[keys.len() - 1])
            ));
        }
        svc_value(key, value).map_err(|e| format!("SvcParam {name}: {e}"))?;
        if key == 0 {
            mandatory = value;
        }
        keys.push(key);
    }
    for k in mandatory.chunks_exact(2) {
        let k = u16::from_be_bytes([k[0], k[1]]);
        if !keys.contains(&k) {
            return Err(format!("SvcParam {} is mandatory but missing", svc_key(k)));
        }
    }
    Ok(())
}

fn svc_value(key: u16, v: &[u8]) -> R<()> {
    let sized = |unit: usize, what: &str| {
        if v.is_empty() || !v.len().is_multiple_of(unit) {
            Err(format!("{} octets are not one or more {what}", v.len()))
        } else {
            Ok(())
        }
    };
    match key {
        0 => {
            sized(2, "keys")?;
            let ks: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            if ks.contains(&0) || ks.windows(2).any(|w| w[0] >= w[1]) {
                return Err("keys must increase and not include mandatory".into());
            }
            Ok(())
        }
        1 => {
            let mut r = Rd { b: v, p: 0 };
            loop {
                if r.charstr("alpn-id")?.is_empty() {
                    return Err("an alpn-id is empty".into());
                }
                if r.left() == 0 {
                    return Ok(());
                }
            }
        }
        2 | 8 if !v.is_empty() => Err("takes no value".into()),
        3 if v.len() != 2 => Err(format!("{} octets, not 2", v.len())),
        4 => sized(4, "IPv4 addresses"),
        6 => sized(16, "IPv6 addresses"),
        5 if v.is_empty() => Err("the ECHConfigList is empty".into()),
        7 if v.is_empty() || std::str::from_utf8(v).is_err() => {
            Err("not a UTF-8 URI template".into())
        }
        _ => Ok(()),
    }
}

/// SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM of an SOA RDATA; `None` when it is malformed.
pub fn soa_timers(rdata: &[u8]) -> Option<[u32; 5]> {
    check(rtype::SOA, rdata).ok()?;
    let t = &rdata[rdata.len() - 20..];
    let mut out = [0u32; 5];
    for (o, c) in out.iter_mut().zip(t.chunks_exact(4)) {
        *o = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    Some(out)
}
