//! SipHash-2-4 (Aumasson and Bernstein, the hash of RFC 9018 §4.4) over a message of whole
//! 64-bit words plus a last partial word, in straight-line code for the verifier.
//!
//! The engine uses the `siphasher` crate; the TEST_RUN differential checks that both give the
//! same server cookies.

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    round(v);
    round(v);
    v[0] ^= m;
}

/// SipHash-2-4 state: keyed (by userspace: `keyed`), then message words absorbed one by one (`absorb`), then
/// finished with the last partial word (`finish`). A copy shares the words absorbed so far:
/// the cookie made now and the cookie validated share the key and the client cookie.
#[derive(Clone, Copy)]
pub struct State([u64; 4]);

impl State {
    /// The state keyed as `dns_common::siphash_keyed` gives it.
    #[inline(always)]
    pub fn keyed(v: &[u64; 4]) -> State {
        State(*v)
    }

    /// Absorbs one whole little-endian message word.
    #[inline(always)]
    pub fn absorb(mut self, m: u64) -> State {
        compress(&mut self.0, m);
        self
    }

    /// The hash of the message absorbed, then `words[..n]`, then `tail`: the last 0 to 7
    /// octets as a little-endian word, which must already carry the message length in its
    /// top octet.
    #[inline(always)]
    pub fn finish(self, words: &[u64; 2], n: usize, tail: u64) -> u64 {
        let mut v = self.0;
        let mut i = 0;
        while i < 2 {
            if i < n {
                compress(&mut v, words[i]);
            }
            i += 1;
        }
        compress(&mut v, tail);
        v[2] ^= 0xff;
        round(&mut v);
        round(&mut v);
        round(&mut v);
        round(&mut v);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}
