//! Query messages for the fuzz tests: mutations of valid queries (header bits and counts, EDNS
//! OPT records with random options, bad question names, extra records, the opcode).

use xdpdns_tests::corpus::Rng;

use super::random_bytes;

/// An OPT record: payload, extended RCODE, version, DO and Z bits, and 0 to 4 options, some
/// with a length that does not match their data.
fn random_opt(rng: &mut Rng) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    let payload = *rng.pick(&[0u16, 1, 511, 512, 1232, 4096, 65535]);
    o.extend_from_slice(&payload.to_be_bytes());
    o.push(if rng.chance(1, 8) {
        rng.next_u64() as u8
    } else {
        0
    });
    o.push(if rng.chance(1, 6) {
        rng.next_u64() as u8
    } else {
        0
    });
    o.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    let mut opts = Vec::new();
    for _ in 0..rng.below(5) {
        let random = rng.next_u64() as u16;
        let code = *rng.pick(&[3u16, 8, 10, 12, 15, 65001, random]);
        let data = random_bytes(rng, 24);
        let len = if rng.chance(1, 8) {
            data.len() + rng.below(4) + 1
        } else {
            data.len()
        };
        opts.extend_from_slice(&code.to_be_bytes());
        opts.extend_from_slice(&(len as u16).to_be_bytes());
        opts.extend_from_slice(&data);
    }
    if rng.chance(1, 8) {
        opts.truncate(rng.below(opts.len() + 1));
    }
    o.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    o.extend(opts);
    o
}

/// A question name that is not a plain uncompressed name: pointers (to itself, the header, past
/// the end), reserved label types, labels running past the end, names over 255 octets, no root.
fn bad_name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(7) {
        0 => vec![0xc0, 12],
        1 => vec![0xc0, rng.below(12) as u8],
        2 => vec![3, b'w', b'w', b'w', 0xc0, 0xff],
        3 => vec![0x40 + rng.below(0x80) as u8, b'x', 0],
        4 => vec![20, b'a', b'b'],
        5 => {
            let mut n = Vec::new();
            for _ in 0..128 + rng.below(3) {
                n.extend_from_slice(&[1, b'a']);
            }
            n.push(0);
            n
        }
        _ => vec![7, b'e', b'x', b'a', b'm', b'p', b'l', b'e'],
    }
}

/// One to three mutations of a query message.
pub fn mutate_query(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(12) {
            0 => {
                m[2] ^= 1 << rng.below(8);
                m[3] ^= 1 << rng.below(8);
                if rng.chance(3, 4) {
                    m[2] &= 0x7f;
                }
            }
            1 if m.len() >= 12 => {
                let at = 4 + 2 * rng.below(4);
                let v = if rng.chance(1, 2) {
                    rng.below(3) as u16
                } else {
                    rng.next_u64() as u16
                };
                m[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            2 => m.truncate(rng.below(m.len() + 1).max(4)),
            3 => m.extend(random_bytes(rng, 32)),
            4 if m.len() > 4 => {
                for _ in 0..1 + rng.below(4) {
                    let at = 4 + rng.below(m.len() - 4);
                    m[at] = rng.next_u64() as u8;
                }
            }
            5 | 6 if m.len() >= 12 => {
                // Another OPT record (or the first), the count sometimes wrong.
                m.extend(random_opt(rng));
                let ar = u16::from_be_bytes([m[10], m[11]]);
                let ar = if rng.chance(1, 8) {
                    ar
                } else {
                    ar.wrapping_add(1)
                };
                m[10..12].copy_from_slice(&ar.to_be_bytes());
            }
            7 if m.len() >= 12 => {
                // OPT owned by a name other than the root.
                let mut o = random_opt(rng);
                o.splice(0..1, [1, b'x', 0]);
                m.extend(o);
                m[11] = m[11].wrapping_add(1);
            }
            8 | 9 if m.len() > 12 => {
                // The question name replaced; the rest of the message kept.
                let end = xdpdns::wire::record::name_len(&m[12..]).map_or(m.len(), |l| 12 + l);
                m.splice(12..end, bad_name(rng));
            }
            10 if m.len() >= 12 => {
                // A record in the answer or authority section.
                let mut rr = vec![0xc0, 12];
                rr.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
                rr.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                let rd = random_bytes(rng, 8);
                rr.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                rr.extend(rd);
                m.extend(rr);
                let at = 6 + 2 * rng.below(2);
                m[at + 1] = m[at + 1].wrapping_add(1);
            }
            // The opcode.
            _ => m[2] = (m[2] & 0x87) | ((rng.below(16) as u8) << 3),
        }
    }
    m
}
