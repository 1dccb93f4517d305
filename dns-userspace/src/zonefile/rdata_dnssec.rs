//! RDATA presentation → wire for the DNSSEC types: DS and CDS, DNSKEY and CDNSKEY, RRSIG, NSEC,
//! NSEC3, NSEC3PARAM (RFC 4034, RFC 5155, RFC 7344), ZONEMD (RFC 8976), and the NSEC/NSEC3 type
//! bitmap (RFC 4034 §4.1.2).

use data_encoding::{BASE32HEX_NOPAD, HEXLOWER_PERMISSIVE};

use super::lexer::Token;
use super::text::{bad, parse_time, FResult, FieldError, Fields};
use super::types::{algorithm_from_str, type_from_str};

fn algorithm(f: &mut Fields<'_, '_>) -> FResult<u8> {
    let t = f.next("algorithm")?;
    algorithm_from_str(t.text).ok_or_else(|| bad(&t, "algorithm", "a number 0-255 or a mnemonic"))
}

/// DS and CDS (RFC 4034 §5.3): `key-tag algorithm digest-type digest-hex...`.
pub(crate) fn ds(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.extend_from_slice(&f.u16("key tag")?.to_be_bytes());
    out.push(algorithm(f)?);
    out.push(f.u8("digest type")?);
    out.extend(f.hex_rest("digest")?);
    Ok(())
}

/// DNSKEY and CDNSKEY (RFC 4034 §2.2): `flags protocol algorithm base64-key...`.
pub(crate) fn dnskey(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.extend_from_slice(&f.u16("flags")?.to_be_bytes());
    out.push(f.u8("protocol")?);
    out.push(algorithm(f)?);
    out.extend(f.base64_rest("public key")?);
    Ok(())
}

/// RRSIG (RFC 4034 §3.2).
pub(crate) fn rrsig(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    let t = f.next("type covered")?;
    let covered = type_from_str(t.text)
        .ok_or_else(|| bad(&t, "type covered", "a type mnemonic or TYPEnnn"))?;
    out.extend_from_slice(&covered.to_be_bytes());
    out.push(algorithm(f)?);
    out.push(f.u8("labels")?);
    out.extend_from_slice(&f.ttl("original TTL")?.to_be_bytes());
    for what in ["signature expiration", "signature inception"] {
        let t = f.next(what)?;
        let v = parse_time(t.text)
            .ok_or_else(|| bad(&t, what, "YYYYMMDDHHmmSS or seconds since 1970"))?;
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&f.u16("key tag")?.to_be_bytes());
    f.push_name(out, "signer name")?;
    out.extend(f.base64_rest("signature")?);
    Ok(())
}

/// NSEC (RFC 4034 §4.2): `next-name type...`.
pub(crate) fn nsec(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    f.push_name(out, "next domain name")?;
    type_bitmap(f.rest(), out)
}

fn salt(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    let t = f.next("salt")?;
    if t.text == b"-" {
        out.push(0);
        return Ok(());
    }
    let s = HEXLOWER_PERMISSIVE
        .decode(t.text)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| bad(&t, "salt", "'-' or 1-255 octets in hexadecimal"))?;
    out.push(s.len() as u8);
    out.extend_from_slice(&s);
    Ok(())
}

fn nsec3_head(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.push(f.u8("hash algorithm")?);
    out.push(f.u8("flags")?);
    out.extend_from_slice(&f.u16("iterations")?.to_be_bytes());
    salt(f, out)
}

/// NSEC3 (RFC 5155 §3.3): `alg flags iterations salt next-hashed-owner type...`.
pub(crate) fn nsec3(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    nsec3_head(f, out)?;
    let t = f.next("next hashed owner name")?;
    let hash = BASE32HEX_NOPAD
        .decode(&t.text.to_ascii_uppercase())
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 255)
        .ok_or_else(|| bad(&t, "next hashed owner name", "base32hex without padding"))?;
    out.push(hash.len() as u8);
    out.extend_from_slice(&hash);
    type_bitmap(f.rest(), out)
}

/// NSEC3PARAM (RFC 5155 §4.3): `alg flags iterations salt`.
pub(crate) fn nsec3param(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    nsec3_head(f, out)
}

/// ZONEMD (RFC 8976 §2.3): `serial scheme hash-algorithm digest-hex...`.
pub(crate) fn zonemd(f: &mut Fields<'_, '_>, out: &mut Vec<u8>) -> FResult<()> {
    out.extend_from_slice(&f.u32("serial")?.to_be_bytes());
    out.push(f.u8("scheme")?);
    out.push(f.u8("hash algorithm")?);
    let line = f.peek().map_or(f.end_line, |t| t.line);
    let digest = f.hex_rest("digest")?;
    if digest.len() < 12 {
        return Err(FieldError {
            line,
            message: format!("digest of {} octets is shorter than 12", digest.len()),
        });
    }
    out.extend(digest);
    Ok(())
}

/// Type bitmap (RFC 4034 §4.1.2): windows in increasing order, each as short as possible.
/// Duplicates are ignored; an empty list gives an empty bitmap.
pub(crate) fn type_bitmap(toks: &[Token<'_>], out: &mut Vec<u8>) -> FResult<()> {
    let mut types = Vec::with_capacity(toks.len());
    for t in toks {
        let v = type_from_str(t.text)
            .ok_or_else(|| bad(t, "type in bitmap", "a type mnemonic or TYPEnnn"))?;
        types.push(v);
    }
    types.sort_unstable();
    types.dedup();
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    Ok(())
}
