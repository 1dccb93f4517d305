//! The SOA fields a secondary acts on (RFC 1035 §3.3.13) and serial number arithmetic
//! (RFC 1982): a serial is newer when it is ahead by less than 2^31; at exactly 2^31 the
//! comparison is undefined and nothing is treated as newer.

use std::cmp::Ordering;

use crate::wire::name::Name;
use crate::wire::record::{read_name, rtype, Record};

/// The RDATA of an SOA record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl Soa {
    /// From SOA RDATA in uncompressed wire form.
    pub fn from_rdata(rd: &[u8]) -> Option<Soa> {
        let (mname, a) = read_name(rd)?;
        let (rname, b) = read_name(rd.get(a..)?)?;
        let f = rd.get(a + b..)?;
        if f.len() != 20 {
            return None;
        }
        let n = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
        Some(Soa {
            mname,
            rname,
            serial: n(0),
            refresh: n(4),
            retry: n(8),
            expire: n(12),
            minimum: n(16),
        })
    }

    /// From a record, when it is an SOA.
    pub fn from_record(r: &Record) -> Option<Soa> {
        (r.rtype == rtype::SOA)
            .then(|| Soa::from_rdata(&r.rdata))
            .flatten()
    }
}

/// RFC 1982 §3.2 comparison of `a` with `b`; `None` when undefined (distance 2^31).
pub fn serial_cmp(a: u32, b: u32) -> Option<Ordering> {
    let d = a.wrapping_sub(b);
    match d {
        0 => Some(Ordering::Equal),
        0x8000_0000 => None,
        d if d < 0x8000_0000 => Some(Ordering::Greater),
        _ => Some(Ordering::Less),
    }
}

/// Whether serial `a` is newer than `b`.
pub fn serial_newer(a: u32, b: u32) -> bool {
    serial_cmp(a, b) == Some(Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps_and_is_undefined_half_way() {
        assert!(serial_newer(2, 1));
        assert!(!serial_newer(1, 1));
        assert!(!serial_newer(1, 2));
        assert!(serial_newer(0, u32::MAX));
        assert!(serial_newer(5, 0xffff_fff0));
        assert!(serial_newer(0x7fff_ffff, 0));
        assert_eq!(serial_cmp(0x8000_0000, 0), None);
        assert!(!serial_newer(0x8000_0000, 0) && !serial_newer(0, 0x8000_0000));
        assert_eq!(serial_cmp(0x8000_0001, 0), Some(Ordering::Less));
    }

    #[test]
    fn soa_fields() {
        let mut rd = Name::parse("ns.example.", None).unwrap().wire().to_vec();
        rd.extend_from_slice(Name::parse("h.example.", None).unwrap().wire());
        for v in [7u32, 3600, 600, 86400, 300] {
            rd.extend_from_slice(&v.to_be_bytes());
        }
        let s = Soa::from_rdata(&rd).unwrap();
        assert_eq!(
            (s.serial, s.refresh, s.retry, s.expire, s.minimum),
            (7, 3600, 600, 86400, 300)
        );
        assert_eq!(s.rname.to_string(), "h.example.");
        assert!(Soa::from_rdata(&rd[..rd.len() - 1]).is_none());
    }
}
