//! SHA-1 (FIPS 180-4 §6.1) compression of one 64-octet block, for NSEC3 owner hashes
//! (RFC 5155 §5). The message schedule is kept in a 16-word ring on the stack; the rounds are
//! unrolled in four loops of 20, without data-dependent branches, so the verifier walks them
//! once.

const K: [u32; 4] = [0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc, 0xca62_c1d6];

/// The initial hash value (FIPS 180-4 §5.3.1).
pub const INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// Runs the compression function on `state` with the block `w` (16 big-endian words, as
/// numbers).
#[inline(always)]
pub fn compress(state: &mut [u32; 5], block: &[u32; 16]) {
    let mut w = *block;
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    macro_rules! round {
        ($i:expr, $f:expr, $k:expr) => {{
            let i = $i;
            let wi = if i < 16 {
                w[i & 15]
            } else {
                let x = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
                let x = x.rotate_left(1);
                w[i & 15] = x;
                x
            };
            let t = a
                .rotate_left(5)
                .wrapping_add($f)
                .wrapping_add(e)
                .wrapping_add($k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }};
    }
    for i in 0..20 {
        round!(i, (b & c) | (!b & d), K[0]);
    }
    for i in 20..40 {
        round!(i, b ^ c ^ d, K[1]);
    }
    for i in 40..60 {
        round!(i, (b & c) | (b & d) | (c & d), K[2]);
    }
    for i in 60..80 {
        round!(i, b ^ c ^ d, K[3]);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
    state[4] = state[4].wrapping_add(e);
}
