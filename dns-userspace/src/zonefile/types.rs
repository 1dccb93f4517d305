//! Mnemonic tables the master-file syntax needs beyond `crate::wire::record::rtype`: further type
//! mnemonics (accepted in the type column with the RFC 3597 `\#` form, and in NSEC/NSEC3 type
//! bitmaps), DNSSEC algorithm mnemonics (RFC 4034 Appendix A.1) and SVCB key names (RFC 9460).

use crate::wire::record::rtype;

/// SPF (RFC 7208 §3.1): TXT syntax. The only extra type with a presentation parser.
pub(crate) const SPF: u16 = 99;

/// Type mnemonics not in `rtype::NAMES` (IANA registry).
const EXTRA_TYPES: &[(u16, &str)] = &[
    (3, "MD"),
    (4, "MF"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (11, "WKS"),
    (14, "MINFO"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (22, "NSAP"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (34, "ATMA"),
    (36, "KX"),
    (37, "CERT"),
    (38, "A6"),
    (40, "SINK"),
    (42, "APL"),
    (45, "IPSECKEY"),
    (49, "DHCID"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (SPF, "SPF"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (256, "URI"),
    (258, "AVC"),
    (259, "DOA"),
    (260, "AMTRELAY"),
    (261, "RESINFO"),
    (262, "WALLET"),
    (32768, "TA"),
    (32769, "DLV"),
];

/// Type number from a mnemonic (known to `rtype` or listed here) or `TYPEnnn`.
pub(crate) fn type_from_str(s: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(s).ok()?;
    if let Some(t) = rtype::from_str(s) {
        // `rtype::from_str` accepts `TYPE+5` and the like; insist on plain digits.
        let digits = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("TYPE"))
            .map(|_| &s[4..]);
        if digits.is_some_and(|d| d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit())) {
            return None;
        }
        return Some(t);
    }
    EXTRA_TYPES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(s))
        .map(|&(t, _)| t)
}

/// Mnemonic for presentation: `rtype::to_string`, then the names listed here, else `TYPEnnn`.
pub(crate) fn type_name(t: u16) -> String {
    if rtype::NAMES.iter().any(|&(n, _)| n == t) {
        return rtype::to_string(t);
    }
    match EXTRA_TYPES.iter().find(|&&(n, _)| n == t) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("TYPE{t}"),
    }
}

/// DNSSEC algorithm mnemonics (IANA "DNS Security Algorithm Numbers").
const ALGORITHMS: &[(u8, &str)] = &[
    (1, "RSAMD5"),
    (2, "DH"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA-NSEC3-SHA1"),
    (7, "RSASHA1-NSEC3-SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC-GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
    (252, "INDIRECT"),
    (253, "PRIVATEDNS"),
    (254, "PRIVATEOID"),
];

/// Algorithm number from decimal or a mnemonic.
pub(crate) fn algorithm_from_str(s: &[u8]) -> Option<u8> {
    if let Some(v) = super::text::parse_uint(s, 255) {
        return Some(v as u8);
    }
    ALGORITHMS
        .iter()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(s))
        .map(|&(a, _)| a)
}

/// SVCB/HTTPS SvcParamKey names (RFC 9460 §14.3.2, RFC 9461).
pub(crate) const SVC_KEYS: &[(u16, &str)] = &[
    (0, "mandatory"),
    (1, "alpn"),
    (2, "no-default-alpn"),
    (3, "port"),
    (4, "ipv4hint"),
    (5, "ech"),
    (6, "ipv6hint"),
    (7, "dohpath"),
    (8, "ohttp"),
];

/// SvcParamKey from a name, the draft alias `echconfig`, or `keyNNNNN` (65535 is reserved).
pub(crate) fn svc_key_from_str(s: &[u8]) -> Option<u16> {
    if let Some(&(k, _)) = SVC_KEYS.iter().find(|(_, n)| n.as_bytes() == s) {
        return Some(k);
    }
    if s == b"echconfig" {
        return Some(5);
    }
    let n = super::text::parse_uint(s.strip_prefix(b"key")?, 65534)?;
    Some(n as u16)
}

/// Presentation name of a SvcParamKey.
pub(crate) fn svc_key_name(k: u16) -> String {
    match SVC_KEYS.iter().find(|&&(n, _)| n == k) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("key{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_mnemonics() {
        assert_eq!(type_from_str(b"a"), Some(1));
        assert_eq!(type_from_str(b"TYPE65534"), Some(65534));
        assert_eq!(type_from_str(b"type1"), Some(1));
        assert_eq!(type_from_str(b"Spf"), Some(99));
        assert_eq!(type_from_str(b"NSAP-PTR"), Some(23));
        assert_eq!(type_from_str(b"TYPE+1"), None);
        assert_eq!(type_from_str(b"TYPE65536"), None);
        assert_eq!(type_from_str(b"BOGUS"), None);
        assert_eq!(type_name(99), "SPF");
        assert_eq!(type_name(46), "RRSIG");
        assert_eq!(type_name(65534), "TYPE65534");
    }

    #[test]
    fn algorithms_and_keys() {
        assert_eq!(algorithm_from_str(b"13"), Some(13));
        assert_eq!(algorithm_from_str(b"ecdsap256sha256"), Some(13));
        assert_eq!(algorithm_from_str(b"256"), None);
        assert_eq!(svc_key_from_str(b"alpn"), Some(1));
        assert_eq!(svc_key_from_str(b"echconfig"), Some(5));
        assert_eq!(svc_key_from_str(b"key65000"), Some(65000));
        assert_eq!(svc_key_from_str(b"key65535"), None);
        assert_eq!(svc_key_name(65000), "key65000");
    }
}
