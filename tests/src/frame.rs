//! Ethernet frames carrying UDP or TCP over IPv4/IPv6, with optional 802.1Q/802.1ad tags: built
//! for BPF_PROG_TEST_RUN and parsed back with every checksum verified. Used by the tests and the
//! XDP micro-benchmark.

use std::net::IpAddr;

use anyhow::{bail, ensure, Result};

/// Addressing of a test frame.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// VLAN tags, outermost first: (TPID, TCI).
    pub vlans: Vec<(u16, u16)>,
    /// IP protocol: 17 for UDP, 6 for TCP (a bare header is written for TCP).
    pub proto: u8,
}

impl FrameSpec {
    pub fn udp(src: IpAddr, dst: IpAddr, dport: u16) -> FrameSpec {
        FrameSpec {
            src,
            dst,
            sport: 40000,
            dport,
            vlans: Vec::new(),
            proto: 17,
        }
    }
}

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Ones' complement sum of `data` as big-endian 16-bit words.
fn sum16(data: &[u8]) -> u32 {
    let mut s = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += w as u32;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut s = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => sum16(&a.octets()) + sum16(&b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => sum16(&a.octets()) + sum16(&b.octets()),
        _ => panic!("mixed address families"),
    };
    s += proto as u32 + len as u32;
    s
}

/// Builds an Ethernet frame around `payload` (the UDP payload, or TCP segment payload).
pub fn build(spec: &FrameSpec, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 80);
    f.extend_from_slice(&SERVER_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    for (tpid, tci) in &spec.vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    let l4_len = if spec.proto == 6 { 20 } else { 8 } + payload.len();
    match (spec.src, spec.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let start = f.len();
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, spec.proto, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            let c = !fold(sum16(&f[start..start + 20]));
            f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[spec.proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families"),
    }
    let l4 = f.len();
    f.extend_from_slice(&spec.sport.to_be_bytes());
    f.extend_from_slice(&spec.dport.to_be_bytes());
    if spec.proto == 6 {
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    let s = pseudo_sum(spec.src, spec.dst, spec.proto, l4_len) + sum16(&f[l4..]);
    let mut c = !fold(s);
    if c == 0 {
        c = 0xffff;
    }
    let at = if spec.proto == 6 { l4 + 16 } else { l4 + 6 };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// A parsed UDP frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFrame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

/// Parses a UDP frame and checks the IPv4 header checksum and the UDP checksum.
pub fn parse(f: &[u8]) -> Result<ParsedFrame> {
    parse_with(f, true)
}

/// Parses the XDP program's answer to `query` (a frame the test made, perhaps mutated). The
/// program takes the answer's checksums from the query's (RFC 1624): when the query's were
/// right, the answer's must be; when the query's UDP or IPv4 header checksum was wrong, the
/// answer's must be wrong by as much (the client then drops it, as its kernel would have
/// dropped the query), or right (an answer summed in full: a query with EDNS options or
/// without a UDP checksum).
pub fn parse_answer(query: &[u8], answer: &[u8]) -> Result<ParsedFrame> {
    let (Some(q), Some(a)) = (sums(query), sums(answer)) else {
        return parse(answer);
    };
    if q.0 == 0xffff && q.1 == 0xffff {
        return parse(answer);
    }
    ensure!(
        a.0 == q.0,
        "IPv4 header checksum error {:04x}, the query's {:04x}",
        a.0,
        q.0
    );
    ensure!(
        a.1 == 0xffff || a.1 == q.1,
        "UDP checksum error {:04x}, the query's {:04x}",
        a.1,
        q.1
    );
    parse_with(answer, false)
}

/// The folded sums over a UDP frame's IPv4 header (0xffff for IPv6) and over its UDP
/// pseudo-header and datagram (0xffff without a checksum): 0xffff where a checksum is right.
fn sums(f: &[u8]) -> Option<(u16, u16)> {
    let p = parse_with(f, false).ok()?;
    let mut off = 12 + 4 * p.vlans.len() + 2;
    let ip = if p.src.is_ipv6() {
        0xffff
    } else {
        let s = fold(sum16(f.get(off..off + 20)?));
        off += 20;
        s
    };
    if p.src.is_ipv6() {
        off += 40;
    }
    let udp = f.get(off..off + 8 + p.payload.len())?;
    let csum = u16::from_be_bytes([udp[6], udp[7]]);
    let u = if csum == 0 && !p.src.is_ipv6() {
        0xffff
    } else {
        fold(pseudo_sum(p.src, p.dst, 17, udp.len()) + sum16(udp))
    };
    Some((ip, u))
}

fn parse_with(f: &[u8], checked: bool) -> Result<ParsedFrame> {
    ensure!(f.len() >= 14, "short frame");
    let mut off = 12;
    let mut vlans = Vec::new();
    let mut et = u16::from_be_bytes([f[off], f[off + 1]]);
    while et == 0x8100 || et == 0x88a8 {
        ensure!(f.len() >= off + 6, "short VLAN tag");
        vlans.push((et, u16::from_be_bytes([f[off + 2], f[off + 3]])));
        off += 4;
        et = u16::from_be_bytes([f[off], f[off + 1]]);
    }
    off += 2;
    let (src, dst, l4, l4_len) = match et {
        0x0800 => {
            let ip = f
                .get(off..off + 20)
                .ok_or_else(|| anyhow::anyhow!("short IPv4"))?;
            ensure!(ip[0] == 0x45, "IPv4 options");
            ensure!(
                !checked || fold(sum16(ip)) == 0xffff,
                "bad IPv4 header checksum"
            );
            ensure!(ip[9] == 17, "not UDP");
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            ensure!(f.len() >= off + total, "IPv4 total length beyond frame");
            let s: [u8; 4] = ip[12..16].try_into()?;
            let d: [u8; 4] = ip[16..20].try_into()?;
            (IpAddr::from(s), IpAddr::from(d), off + 20, total - 20)
        }
        0x86dd => {
            let ip = f
                .get(off..off + 40)
                .ok_or_else(|| anyhow::anyhow!("short IPv6"))?;
            ensure!(ip[6] == 17, "not UDP");
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            ensure!(f.len() >= off + 40 + plen, "IPv6 payload beyond frame");
            let s: [u8; 16] = ip[8..24].try_into()?;
            let d: [u8; 16] = ip[24..40].try_into()?;
            (IpAddr::from(s), IpAddr::from(d), off + 40, plen)
        }
        _ => bail!("not IP"),
    };
    let udp = &f[l4..l4 + l4_len];
    ensure!(udp.len() >= 8, "short UDP");
    ensure!(
        u16::from_be_bytes([udp[4], udp[5]]) as usize == l4_len,
        "UDP length mismatch"
    );
    let csum = u16::from_be_bytes([udp[6], udp[7]]);
    if checked && (csum != 0 || src.is_ipv6()) {
        let s = pseudo_sum(src, dst, 17, l4_len) + sum16(udp);
        ensure!(fold(s) == 0xffff, "bad UDP checksum");
    }
    Ok(ParsedFrame {
        dst_mac: f[0..6].try_into()?,
        src_mac: f[6..12].try_into()?,
        vlans,
        src,
        dst,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        payload: udp[8..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_v4_v6_vlan() {
        for (s, d) in [("198.18.0.1", "198.18.0.2"), ("fd00::1", "fd00::2")] {
            let mut spec = FrameSpec::udp(s.parse().unwrap(), d.parse().unwrap(), 53);
            spec.vlans = vec![(0x88a8, 5), (0x8100, 7)];
            let f = build(&spec, b"hello");
            let p = parse(&f).unwrap();
            assert_eq!(p.payload, b"hello");
            assert_eq!(p.vlans, spec.vlans);
            assert_eq!(p.dport, 53);
            let mut bad = f.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            assert!(parse(&bad).is_err());
        }
    }
}
