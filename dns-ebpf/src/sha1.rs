//! SHA-1 (FIPS 180-4 §6.1) compression of one 64-octet block, for NSEC3 owner hashes
//! (RFC 5155 §5). The 80 rounds are unrolled in the source (a macro per round, the five
//! working variables renamed from round to round instead of moved), so every index into the
//! 16-word message schedule ring is a constant: the program runs straight-line code with the
//! working variables in registers, no loop counters, no computed addresses and no
//! data-dependent branches.

const K: [u32; 4] = [0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc, 0xca62_c1d6];

/// The initial hash value (FIPS 180-4 §5.3.1).
pub const INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// Word `i` of the message schedule, computed in place in the 16-word ring from `i` = 16 on.
/// Volatile, so that the compiler keeps each word's load in its round instead of hoisting
/// them all and spilling them past the 512-octet BPF stack.
#[inline(always)]
fn schedule(w: &mut [u32; 16], i: usize) -> u32 {
    let p = w.as_mut_ptr();
    // SAFETY: every index is masked to the ring's 16 words.
    unsafe {
        let at = |j: usize| core::ptr::read_volatile(p.add(j & 15));
        if i < 16 {
            return at(i);
        }
        let x = (at(i + 13) ^ at(i + 8) ^ at(i + 2) ^ at(i)).rotate_left(1);
        core::ptr::write_volatile(p.add(i & 15), x);
        x
    }
}

/// The round function of round `i` (Ch, Parity, Maj, Parity).
#[inline(always)]
fn f(i: usize, b: u32, c: u32, d: u32) -> u32 {
    match i / 20 {
        0 => d ^ (b & (c ^ d)),
        2 => (b & c) | (d & (b | c)),
        _ => b ^ c ^ d,
    }
}

/// Runs the compression function on `state` with the block `w` (16 big-endian words, as
/// numbers), which becomes the end of its message schedule.
#[inline(always)]
pub fn compress(state: &mut [u32; 5], w: &mut [u32; 16]) {
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    // Round i on (a, b, c, d, e): e takes the new a, b its rotation; the next round runs on
    // (e, a, b, c, d).
    macro_rules! round {
        ($i:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {{
            let wi = schedule(w, $i);
            $e = $e
                .wrapping_add($a.rotate_left(5))
                .wrapping_add(f($i, $b, $c, $d))
                .wrapping_add(K[$i / 20])
                .wrapping_add(wi);
            $b = $b.rotate_left(30);
        }};
    }
    macro_rules! five {
        ($i:expr) => {{
            round!($i, a, b, c, d, e);
            round!($i + 1, e, a, b, c, d);
            round!($i + 2, d, e, a, b, c);
            round!($i + 3, c, d, e, a, b);
            round!($i + 4, b, c, d, e, a);
        }};
    }
    five!(0);
    five!(5);
    five!(10);
    five!(15);
    five!(20);
    five!(25);
    five!(30);
    five!(35);
    five!(40);
    five!(45);
    five!(50);
    five!(55);
    five!(60);
    five!(65);
    five!(70);
    five!(75);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
    state[4] = state[4].wrapping_add(e);
}
