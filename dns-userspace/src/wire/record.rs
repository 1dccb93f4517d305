//! Resource records (RFC 1035 §3.2) with RDATA kept in uncompressed wire form, and the type and
//! class numbers the server knows by name.

use crate::wire::name::Name;

/// RR type numbers (IANA "Resource Record (RR) TYPEs").
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const TLSA: u16 = 52;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
    pub const ZONEMD: u16 = 63;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
    pub const CAA: u16 = 257;

    /// Mnemonics for the types known by name; anything else is `TYPEnnn` (RFC 3597).
    pub const NAMES: &[(u16, &str)] = &[
        (A, "A"),
        (NS, "NS"),
        (CNAME, "CNAME"),
        (SOA, "SOA"),
        (PTR, "PTR"),
        (HINFO, "HINFO"),
        (MX, "MX"),
        (TXT, "TXT"),
        (AAAA, "AAAA"),
        (SRV, "SRV"),
        (NAPTR, "NAPTR"),
        (DNAME, "DNAME"),
        (OPT, "OPT"),
        (DS, "DS"),
        (SSHFP, "SSHFP"),
        (RRSIG, "RRSIG"),
        (NSEC, "NSEC"),
        (DNSKEY, "DNSKEY"),
        (NSEC3, "NSEC3"),
        (NSEC3PARAM, "NSEC3PARAM"),
        (TLSA, "TLSA"),
        (CDS, "CDS"),
        (CDNSKEY, "CDNSKEY"),
        (ZONEMD, "ZONEMD"),
        (SVCB, "SVCB"),
        (HTTPS, "HTTPS"),
        (TSIG, "TSIG"),
        (IXFR, "IXFR"),
        (AXFR, "AXFR"),
        (ANY, "ANY"),
        (CAA, "CAA"),
    ];

    /// Type number from a mnemonic or `TYPEnnn`, case-insensitively.
    pub fn from_str(s: &str) -> Option<u16> {
        if let Some(&(t, _)) = NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)) {
            return Some(t);
        }
        let digits = s.get(..4)?.eq_ignore_ascii_case("TYPE").then(|| &s[4..])?;
        digits.parse().ok()
    }

    /// Mnemonic, or `TYPEnnn`.
    pub fn to_string(t: u16) -> String {
        match NAMES.iter().find(|(n, _)| *n == t) {
            Some((_, name)) => (*name).to_owned(),
            None => format!("TYPE{t}"),
        }
    }

    /// Meta and query-only types (RFC 6895 §3.1): never stored in a zone.
    pub fn is_meta(t: u16) -> bool {
        t == OPT || (128..=255).contains(&t)
    }
}

/// Class numbers.
pub mod class {
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;

    /// Class number from a mnemonic or `CLASSnnn`.
    pub fn from_str(s: &str) -> Option<u16> {
        match s.to_ascii_uppercase().as_str() {
            "IN" => Some(IN),
            "CH" => Some(CH),
            "HS" => Some(HS),
            "NONE" => Some(NONE),
            "ANY" => Some(ANY),
            u => u.strip_prefix("CLASS")?.parse().ok(),
        }
    }
}

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub owner: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// RDATA in uncompressed wire form. Names inside keep the case they were written with.
    pub rdata: Vec<u8>,
}

/// Reads an uncompressed wire name at the start of `buf`; returns it and its length.
pub fn read_name(buf: &[u8]) -> Option<(Name, usize)> {
    let pos = name_len(buf)?;
    let name = Name::from_wire(&buf[..pos]).ok()?;
    Some((name, pos))
}

/// Length of the uncompressed wire name at the start of `buf`.
pub fn name_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = *buf.get(pos)? as usize;
        if len > 63 {
            return None;
        }
        pos += len + 1;
        if pos > crate::wire::name::NAME_MAX {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// (offset, length) of the names in an RDATA of type `rtype` that RFC 1035 allows to be
/// compressed (see `Record::compressible_names`), without allocating.
pub fn compressible_names(rtype: u16, rdata: &[u8]) -> impl Iterator<Item = (usize, usize)> {
    let mut out = [(0usize, 0usize); 2];
    let mut n = 0;
    let mut at = |off: usize| -> Option<usize> {
        let len = name_len(rdata.get(off..)?)?;
        out[n] = (off, len);
        n += 1;
        Some(off + len)
    };
    match rtype {
        rtype::NS | rtype::CNAME | rtype::PTR => {
            at(0);
        }
        rtype::MX => {
            at(2);
        }
        rtype::SOA => {
            if let Some(next) = at(0) {
                at(next);
            }
        }
        _ => {}
    }
    out.into_iter().take(n)
}

/// Whether two RDATAs of type `rtype` are the same record data: equal octets, or equal but for
/// the letter case of the names that may be compressed (RFC 4343; RFC 4034 §6.2 lowers them in
/// the canonical form). Such records are duplicates (RFC 2181 §5), and a message writer may
/// change that case, compressing a name to an earlier one spelt otherwise.
pub fn same_rdata(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    let names: Vec<(usize, usize)> = compressible_names(rtype, a).collect();
    if names.is_empty() || names != compressible_names(rtype, b).collect::<Vec<_>>() {
        return false;
    }
    a.iter().zip(b).enumerate().all(|(i, (x, y))| {
        let in_name = names.iter().any(|&(o, l)| (o..o + l).contains(&i));
        x == y || (in_name && x.eq_ignore_ascii_case(y))
    })
}

impl Record {
    /// Names in RDATA that RFC 1035 allows to be compressed, with their offsets: NS, CNAME, PTR,
    /// MX and SOA. Other types are written as they are (RFC 3597 §4).
    pub fn compressible_names(&self) -> Vec<(usize, usize)> {
        compressible_names(self.rtype, &self.rdata).collect()
    }

    /// The target name of NS, CNAME, DNAME, PTR, MX and SRV records.
    pub fn target(&self) -> Option<Name> {
        let off = match self.rtype {
            rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => 0,
            rtype::MX => 2,
            rtype::SRV => 6,
            _ => return None,
        };
        read_name(self.rdata.get(off..)?).map(|(n, _)| n)
    }

    /// SOA MINIMUM field (RFC 2308 §4).
    pub fn soa_minimum(&self) -> Option<u32> {
        if self.rtype != rtype::SOA || self.rdata.len() < 4 {
            return None;
        }
        let b = &self.rdata[self.rdata.len() - 4..];
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Type covered by an RRSIG.
    pub fn rrsig_covered(&self) -> Option<u16> {
        if self.rtype != rtype::RRSIG || self.rdata.len() < 2 {
            return None;
        }
        Some(u16::from_be_bytes([self.rdata[0], self.rdata[1]]))
    }
}
