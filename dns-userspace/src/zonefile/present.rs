//! RDATA wire form → presentation format, the inverse of the parser: the common and DNSSEC
//! types, SVCB/HTTPS, and the RFC 3597 `\# len hex` form for other types and for RDATA that is
//! malformed for its type. For RDATA the parser produced, the output reads back to the same
//! wire form.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXUPPER};

use super::types::{svc_key_name, type_name, SPF};
use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype};

/// Presentation format of `rdata` for a record of type `rtype` (never fails: RDATA that does
/// not fit its type is shown in the generic form).
pub fn rdata_to_text(rtype: u16, rdata: &[u8]) -> String {
    typed(rtype, rdata).unwrap_or_else(|| generic(rdata))
}

/// RFC 3597 §5: `\# length hex`.
fn generic(rdata: &[u8]) -> String {
    if rdata.is_empty() {
        "\\# 0".to_owned()
    } else {
        format!("\\# {} {}", rdata.len(), HEXUPPER.encode(rdata))
    }
}

/// Cursor over RDATA; every read is checked.
struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn name(&mut self) -> Option<Name> {
        let (n, len) = read_name(self.b.get(self.p..)?)?;
        self.p += len;
        Some(n)
    }
    /// A length-prefixed character-string, quoted.
    fn charstr(&mut self) -> Option<String> {
        let n = self.u8()?;
        Some(quote(self.bytes(usize::from(n))?))
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = self.b.get(self.p..).unwrap_or(&[]);
        self.p = self.b.len();
        r
    }
    fn done(&self) -> bool {
        self.p >= self.b.len()
    }
}

/// Appends octets with `"` and `\` escaped and non-printable octets as `\DDD`.
fn escape_into(s: &mut String, bytes: &[u8]) {
    for &c in bytes {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\{c:03}");
            }
        }
    }
}

fn quote(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    escape_into(&mut s, bytes);
    s.push('"');
    s
}

/// `YYYYMMDDHHmmSS` for seconds since 1970 (RFC 4034 §3.2).
fn time(t: u32) -> String {
    let days = i64::from(t / 86400);
    let secs = t % 86400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Type bitmap (RFC 4034 §4.1.2) as mnemonics, each preceded by a space; `None` unless the
/// windows are increasing and minimal.
fn bitmap(mut b: &[u8]) -> Option<String> {
    let mut s = String::new();
    let mut last: Option<u8> = None;
    while !b.is_empty() {
        let (&window, &len) = (b.first()?, b.get(1)?);
        if last.is_some_and(|l| l >= window) || len == 0 || len > 32 {
            return None;
        }
        last = Some(window);
        let bits = b.get(2..2 + usize::from(len))?;
        if bits.last() == Some(&0) {
            return None; // not minimal: the parser would not write it so
        }
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let t = u16::from(window) << 8 | (i * 8 + bit) as u16;
                    s.push(' ');
                    s.push_str(&type_name(t));
                }
            }
        }
        b = &b[2 + usize::from(len)..];
    }
    Some(s)
}

fn salt(r: &mut Rd<'_>) -> Option<String> {
    let n = r.u8()?;
    let salt = r.bytes(usize::from(n))?;
    Some(if salt.is_empty() {
        "-".into()
    } else {
        HEXUPPER.encode(salt)
    })
}

fn typed(t: u16, rdata: &[u8]) -> Option<String> {
    let mut r = Rd { b: rdata, p: 0 };
    let s = match t {
        rtype::A => Ipv4Addr::from(<[u8; 4]>::try_from(r.bytes(4)?).ok()?).to_string(),
        rtype::AAAA => Ipv6Addr::from(<[u8; 16]>::try_from(r.bytes(16)?).ok()?).to_string(),
        rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => r.name()?.to_string(),
        rtype::SOA => format!(
            "{} {} {} {} {} {} {}",
            r.name()?,
            r.name()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?
        ),
        rtype::MX => format!("{} {}", r.u16()?, r.name()?),
        rtype::TXT | SPF => {
            let mut parts = vec![r.charstr()?];
            while !r.done() {
                parts.push(r.charstr()?);
            }
            parts.join(" ")
        }
        rtype::HINFO => format!("{} {}", r.charstr()?, r.charstr()?),
        rtype::SRV => format!("{} {} {} {}", r.u16()?, r.u16()?, r.u16()?, r.name()?),
        rtype::NAPTR => format!(
            "{} {} {} {} {} {}",
            r.u16()?,
            r.u16()?,
            r.charstr()?,
            r.charstr()?,
            r.charstr()?,
            r.name()?
        ),
        rtype::CAA => {
            let flags = r.u8()?;
            let n = r.u8()?;
            let tag = r.bytes(usize::from(n))?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let tag = std::str::from_utf8(tag).ok()?;
            format!("{flags} {tag} {}", quote(r.rest()))
        }
        rtype::SSHFP => format!("{} {} {}", r.u8()?, r.u8()?, hex(r.rest())?),
        rtype::TLSA => format!("{} {} {} {}", r.u8()?, r.u8()?, r.u8()?, hex(r.rest())?),
        rtype::DS | rtype::CDS => {
            format!("{} {} {} {}", r.u16()?, r.u8()?, r.u8()?, hex(r.rest())?)
        }
        rtype::DNSKEY | rtype::CDNSKEY => {
            let head = format!("{} {} {}", r.u16()?, r.u8()?, r.u8()?);
            format!("{head} {}", b64(r.rest())?)
        }
        rtype::RRSIG => {
            let head = format!(
                "{} {} {} {} {} {} {} {}",
                type_name(r.u16()?),
                r.u8()?,
                r.u8()?,
                r.u32()?,
                time(r.u32()?),
                time(r.u32()?),
                r.u16()?,
                r.name()?
            );
            format!("{head} {}", b64(r.rest())?)
        }
        rtype::NSEC => format!("{}{}", r.name()?, bitmap(r.rest())?),
        rtype::NSEC3 => {
            let head = format!("{} {} {} {}", r.u8()?, r.u8()?, r.u16()?, salt(&mut r)?);
            let n = r.u8()?;
            let next = r.bytes(usize::from(n)).filter(|h| !h.is_empty())?;
            let next = BASE32HEX_NOPAD.encode(next);
            format!("{head} {next}{}", bitmap(r.rest())?)
        }
        rtype::NSEC3PARAM => format!("{} {} {} {}", r.u8()?, r.u8()?, r.u16()?, salt(&mut r)?),
        rtype::ZONEMD => {
            let head = format!("{} {} {}", r.u32()?, r.u8()?, r.u8()?);
            let digest = r.rest();
            if digest.len() < 12 {
                return None;
            }
            format!("{head} {}", HEXUPPER.encode(digest))
        }
        rtype::SVCB | rtype::HTTPS => svcb(&mut r)?,
        _ => return None,
    };
    r.done().then_some(s)
}

fn hex(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| HEXUPPER.encode(b))
}

fn b64(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| BASE64.encode(b))
}

/// SVCB/HTTPS (RFC 9460 §2.1): keys in wire order, which must be strictly increasing.
fn svcb(r: &mut Rd<'_>) -> Option<String> {
    let mut s = format!("{} {}", r.u16()?, r.name()?);
    let mut params: Vec<(u16, &[u8])> = Vec::new();
    while !r.done() {
        let key = r.u16()?;
        if params.last().is_some_and(|&(l, _)| l >= key) || key == 65535 {
            return None;
        }
        let len = r.u16()?;
        params.push((key, r.bytes(usize::from(len))?));
    }
    // The keys listed in "mandatory" must be increasing, not 0, and present (RFC 9460 §8).
    if let Some(&(0, m)) = params.first() {
        if m.is_empty() || m.len() % 2 != 0 {
            return None;
        }
        let keys: Vec<u16> = m
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let increasing = keys.windows(2).all(|w| w[0] < w[1]);
        let present = keys.iter().all(|k| params.iter().any(|(p, _)| p == k));
        if !increasing || keys[0] == 0 || !present {
            return None;
        }
    }
    for (key, v) in params {
        s.push(' ');
        s.push_str(&svc_key_name(key));
        let mut vr = Rd { b: v, p: 0 };
        match key {
            0 => {
                let mut names = Vec::new();
                while !vr.done() {
                    names.push(svc_key_name(vr.u16()?));
                }
                if names.is_empty() {
                    return None;
                }
                let _ = write!(s, "={}", names.join(","));
            }
            1 => {
                let mut items = Vec::new();
                while !vr.done() {
                    let n = vr.u8()?;
                    let id = vr.bytes(usize::from(n)).filter(|id| !id.is_empty())?;
                    let mut item = String::new();
                    for &c in id {
                        match c {
                            b',' => item.push_str("\\\\,"),
                            b'\\' => item.push_str("\\\\\\\\"),
                            _ => escape_into(&mut item, &[c]),
                        }
                    }
                    items.push(item);
                }
                if items.is_empty() {
                    return None;
                }
                let _ = write!(s, "=\"{}\"", items.join(","));
            }
            2 | 8 if v.is_empty() => {}
            3 => {
                let _ = write!(s, "={}", vr.u16()?);
            }
            4 | 6 => {
                let size = if key == 4 { 4 } else { 16 };
                if v.is_empty() || v.len() % size != 0 {
                    return None;
                }
                let mut addrs = Vec::new();
                while !vr.done() {
                    addrs.push(match key {
                        4 => Ipv4Addr::from(<[u8; 4]>::try_from(vr.bytes(4)?).ok()?).to_string(),
                        _ => Ipv6Addr::from(<[u8; 16]>::try_from(vr.bytes(16)?).ok()?).to_string(),
                    });
                }
                let _ = write!(s, "={}", addrs.join(","));
            }
            5 if !v.is_empty() => {
                let _ = write!(s, "={}", BASE64.encode(v));
                vr.rest();
            }
            2 | 5 | 8 => return None,
            7 if v.is_empty() || std::str::from_utf8(v).is_err() => return None,
            _ => {
                if !v.is_empty() {
                    s.push('=');
                    s.push_str(&quote(vr.rest()));
                }
            }
        }
        if !vr.done() {
            return None;
        }
    }
    Some(s)
}
