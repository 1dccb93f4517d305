//! RDATA presentation → uncompressed wire form: the dispatcher (including the RFC 3597 `\#`
//! generic form for every type) and the basic types (A, AAAA, NS, CNAME, DNAME, PTR, SOA, MX,
//! TXT, SPF, HINFO, SRV, NAPTR, CAA, SSHFP, TLSA). DNSSEC types live in `rdata_dnssec`, SVCB and
//! HTTPS in `rdata_svcb`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lexer::Token;
use super::text::{at, bad, charstr, FResult, FieldError, Fields};
use super::types::{type_name, SPF};
use super::{rdata_dnssec as dnssec, rdata_svcb as svcb};
use crate::wire::record::rtype;

/// Parses the RDATA of a record of type `t`. Errors name the type.
pub(crate) fn parse_rdata(t: u16, f: &mut Fields<'_, '_>) -> FResult<Vec<u8>> {
    let generic = f
        .peek()
        .is_some_and(|tok| !tok.quoted && tok.text == b"\\#");
    let r = if generic {
        parse_generic(f)
    } else {
        parse_typed(t, f)
    };
    let rdata = r.map_err(|e| FieldError {
        line: e.line,
        message: format!("{} record: {}", type_name(t), e.message),
    })?;
    if rdata.len() > 65535 {
        return Err(FieldError {
            line: f.end_line,
            message: format!("{} record: RDATA longer than 65535 octets", type_name(t)),
        });
    }
    Ok(rdata)
}

/// RFC 3597 §5: `\# length hex...`.
fn parse_generic(f: &mut Fields<'_, '_>) -> FResult<Vec<u8>> {
    f.next("\\#")?;
    let len = f.u16("RFC 3597 RDATA length")?;
    let data = if f.is_empty() {
        Vec::new()
    } else {
        f.hex_rest("RFC 3597 RDATA hex")?
    };
    if data.len() != usize::from(len) {
        return Err(FieldError {
            line: f.end_line,
            message: format!(
                "RFC 3597 RDATA length {len} does not match the {} octets of hex data",
                data.len()
            ),
        });
    }
    Ok(data)
}

fn parse_typed(t: u16, f: &mut Fields<'_, '_>) -> FResult<Vec<u8>> {
    let mut out = Vec::new();
    match t {
        rtype::A => {
            let tok = f.next("IPv4 address")?;
            out.extend_from_slice(&ipv4(&tok)?.octets());
        }
        rtype::AAAA => {
            let tok = f.next("IPv6 address")?;
            out.extend_from_slice(&ipv6(&tok)?.octets());
        }
        rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => {
            out.reserve(32);
            f.push_name(&mut out, "target name")?;
        }
        rtype::SOA => {
            f.push_name(&mut out, "MNAME (primary server)")?;
            f.push_name(&mut out, "RNAME (mailbox)")?;
            out.extend_from_slice(&f.u32("SERIAL")?.to_be_bytes());
            for what in ["REFRESH", "RETRY", "EXPIRE", "MINIMUM"] {
                out.extend_from_slice(&f.ttl(what)?.to_be_bytes());
            }
        }
        rtype::MX => {
            out.extend_from_slice(&f.u16("preference")?.to_be_bytes());
            f.push_name(&mut out, "exchange name")?;
        }
        rtype::TXT | SPF => {
            if f.is_empty() {
                return Err(f.missing("character-string"));
            }
            for tok in f.rest() {
                push_charstr(&mut out, tok, "character-string")?;
            }
        }
        rtype::HINFO => {
            push_charstr(&mut out, &f.next("CPU")?, "CPU")?;
            push_charstr(&mut out, &f.next("OS")?, "OS")?;
        }
        rtype::SRV => {
            for what in ["priority", "weight", "port"] {
                out.extend_from_slice(&f.u16(what)?.to_be_bytes());
            }
            f.push_name(&mut out, "target name")?;
        }
        rtype::NAPTR => {
            out.extend_from_slice(&f.u16("order")?.to_be_bytes());
            out.extend_from_slice(&f.u16("preference")?.to_be_bytes());
            for what in ["flags", "services", "regexp"] {
                push_charstr(&mut out, &f.next(what)?, what)?;
            }
            f.push_name(&mut out, "replacement name")?;
        }
        rtype::CAA => caa(f, &mut out)?,
        rtype::SSHFP => {
            out.push(f.u8("algorithm")?);
            out.push(f.u8("fingerprint type")?);
            out.extend(f.hex_rest("fingerprint")?);
        }
        rtype::TLSA => {
            out.push(f.u8("certificate usage")?);
            out.push(f.u8("selector")?);
            out.push(f.u8("matching type")?);
            out.extend(f.hex_rest("certificate association data")?);
        }
        rtype::DS | rtype::CDS => dnssec::ds(f, &mut out)?,
        rtype::DNSKEY | rtype::CDNSKEY => dnssec::dnskey(f, &mut out)?,
        rtype::RRSIG => dnssec::rrsig(f, &mut out)?,
        rtype::NSEC => dnssec::nsec(f, &mut out)?,
        rtype::NSEC3 => dnssec::nsec3(f, &mut out)?,
        rtype::NSEC3PARAM => dnssec::nsec3param(f, &mut out)?,
        rtype::ZONEMD => dnssec::zonemd(f, &mut out)?,
        rtype::SVCB | rtype::HTTPS => svcb::svcb(f, &mut out)?,
        _ => {
            return Err(FieldError {
                line: f.peek().map_or(f.end_line, |t| t.line),
                message: "no presentation format is supported for this type; \
                          write the RDATA in the RFC 3597 form '\\# length hex'"
                    .into(),
            })
        }
    }
    f.finish()?;
    Ok(out)
}

/// Appends a length-prefixed character-string.
pub(crate) fn push_charstr(out: &mut Vec<u8>, tok: &Token<'_>, what: &str) -> FResult<()> {
    let s = charstr(tok, what)?;
    out.push(s.len() as u8);
    out.extend_from_slice(&s);
    Ok(())
}

pub(crate) fn ipv4(tok: &Token<'_>) -> FResult<Ipv4Addr> {
    std::str::from_utf8(tok.text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(tok, "IPv4 address", "a dotted quad such as 192.0.2.1"))
}

pub(crate) fn ipv6(tok: &Token<'_>) -> FResult<Ipv6Addr> {
    std::str::from_utf8(tok.text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(tok, "IPv6 address", "an address such as 2001:db8::1"))
}

/// CAA (RFC 8659 §4.1.1): `flags tag value`; the value is the rest of the RDATA, unprefixed.
fn caa(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.push(f.u8("flags")?);
    let tag = f.next("tag")?;
    if tag.text.is_empty()
        || tag.text.len() > 255
        || !tag.text.iter().all(u8::is_ascii_alphanumeric)
    {
        return Err(bad(&tag, "tag", "letters and digits, such as issue"));
    }
    out.push(tag.text.len() as u8);
    out.extend_from_slice(tag.text);
    let v = f.next("value")?;
    let value = super::text::unescape(v.text).map_err(|e| at(&v, format!("bad value: {e}")))?;
    out.extend_from_slice(&value);
    Ok(())
}
