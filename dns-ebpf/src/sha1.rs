//! SHA-1 (FIPS 180-4 §6.1) compression of one 64-octet block, for NSEC3 owner hashes
//! (RFC 5155 §5). The 80 rounds are unrolled in the source (a macro per round, the five
//! working variables renamed from round to round instead of moved), so every index into the
//! 16-word message schedule ring is a constant: the program runs straight-line code with the
//! working variables in registers, no loop counters, no computed addresses and no
//! data-dependent branches.
//!
//! The arithmetic is on 64-bit registers whose upper halves may hold garbage: additions,
//! the round functions and left shifts only carry garbage upward, so the low 32 bits stay
//! the 32-bit results. The low half of a rotation (a right shift) is masked to the bits it
//! brings down instead of shifting a zero-extended copy (the BPF target has no 32-bit
//! subregisters by default), and ROTL5 of the last round's result is added after the rest
//! of the round's sum: the round-to-round chain went from seven instructions to four (the
//! compiler still joins ROTL5's halves before the addition), about a fifth off a block
//! (README). A three-instruction chain (the halves added one at a time through an asm
//! addition) measured no better.

const K: [u64; 4] = [0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc, 0xca62_c1d6];

/// The initial hash value (FIPS 180-4 §5.3.1).
pub const INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// Word `i` of the message schedule, computed in place in the 16-word ring from `i` = 16 on
/// (its upper half garbage). Volatile, so that the compiler keeps each word's load in its
/// round instead of hoisting them all and spilling them past the 512-octet BPF stack.
#[inline(always)]
fn schedule(w: &mut [u32; 16], i: usize) -> u64 {
    let p = w.as_mut_ptr();
    // SAFETY: every index is masked to the ring's 16 words.
    unsafe {
        let at = |j: usize| core::ptr::read_volatile(p.add(j & 15)) as u64;
        if i < 16 {
            return at(i);
        }
        // Clean: the xor of zero-extended words.
        let x = at(i + 13) ^ at(i + 8) ^ at(i + 2) ^ at(i);
        let x = (x << 1) | ((x >> 31) & 1);
        core::ptr::write_volatile(p.add(i & 15), x as u32);
        x
    }
}

/// The round function of round `i` (Ch, Parity, Maj, Parity), garbage in, garbage out.
#[inline(always)]
fn f(i: usize, b: u64, c: u64, d: u64) -> u64 {
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
    let [mut a, mut b, mut c, mut d, mut e] = state.map(|v| v as u64);
    let ks = K;
    // Round i on (a, b, c, d, e): e takes the new a, b its rotation; the next round runs on
    // (e, a, b, c, d). What does not depend on the last round's result (a) is summed first,
    // then ROTL5(a) is added as its two halves.
    macro_rules! round {
        ($i:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {{
            let wi = schedule(w, $i);
            // SAFETY: a read of a local array; volatile, so that the compiler does not move
            // the constant to the end of the sum (its canonical place), onto the chain.
            let k = unsafe { core::ptr::read_volatile(&ks[$i / 20]) };
            let t = $e
                .wrapping_add(f($i, $b, $c, $d))
                .wrapping_add(k)
                .wrapping_add(wi);
            $e = t.wrapping_add($a << 5).wrapping_add(($a >> 27) & 0x1f);
            $b = ($b << 30) | (($b >> 2) & 0x3fff_ffff);
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
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v as u32);
    }
}
