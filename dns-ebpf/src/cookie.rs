//! DNS Cookies in the driver, as the engine's `engine/cookie.rs` makes them (RFC 7873 §5.2,
//! RFC 9018): validates the server cookie a query brings back against the current and the
//! previous secret, and writes the COOKIE option of the answer — the client cookie and a fresh
//! server cookie of the current second, always made with the current secret.

use aya_ebpf::programs::XdpContext;
use dns_common::{
    counter, EdnsConfig, COOKIE_MAX_AGE, COOKIE_MAX_AHEAD, EDNS_COOKIE_PREVIOUS, OPTION_COOKIE,
    SERVER_COOKIE_LEN, SERVER_COOKIE_VERSION,
};

use crate::{checksum, siphash};

/// Length of the COOKIE option of an answer: code, length, client and server cookie.
pub const REPLY_LEN: usize = 4 + 8 + SERVER_COOKIE_LEN;

#[inline(always)]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The client's address as the hash takes it: the message words after the server cookie's
/// first word, how many of them, and the last partial word with the message length.
pub struct Client {
    words: [u64; 2],
    n: usize,
    tail: u64,
}

/// Reads the query's source address (IPv4 at `l3 + 12`, IPv6 at `l3 + 8`) from the packet
/// directly (no helper call: the headers are in the linear frame).
#[inline(always)]
pub fn client(ctx: &XdpContext, l3: usize, v6: bool) -> Result<Client, u32> {
    let l3 = l3 & 0x1f;
    Ok(if v6 {
        let p: *const [u8; 16] =
            crate::packet::ptr_at(ctx, l3 + 8).map_err(|_| counter::PASS_ERROR)?;
        // SAFETY: bounds checked by ptr_at.
        let a = unsafe { p.read_unaligned() };
        Client {
            words: [le64(&a, 0), le64(&a, 8)],
            n: 2,
            tail: 32 << 56,
        }
    } else {
        let p: *const [u8; 4] =
            crate::packet::ptr_at(ctx, l3 + 12).map_err(|_| counter::PASS_ERROR)?;
        // SAFETY: bounds checked by ptr_at.
        let a = unsafe { p.read_unaligned() };
        Client {
            words: [0, 0],
            n: 0,
            tail: u32::from_le_bytes(a) as u64 | (20 << 56),
        }
    })
}

/// SipHash-2-4 of `client cookie | server cookie header | address`, from the state keyed
/// and holding the client cookie already (`keyed`).
#[inline(always)]
fn hash(keyed: siphash::State, header: u64, c: &Client) -> u64 {
    keyed.absorb(header).finish(&c.words, c.n, c.tail)
}

/// The SipHash state of a secret (keyed by userspace) after the client cookie `cc`.
#[inline(always)]
fn keyed(secret: &[u64; 4], cc: u64) -> siphash::State {
    siphash::State::keyed(secret).absorb(cc)
}

/// The server cookie's first word (version, reserved, timestamp) for the second `now`.
#[inline(always)]
fn header(now: u32) -> u64 {
    let t = now.to_be_bytes();
    u64::from_le_bytes([SERVER_COOKIE_VERSION, 0, 0, 0, t[0], t[1], t[2], t[3]])
}

/// The COOKIE option of the answer, as three little-endian words after its code and length
/// (the client cookie, then the server cookie: its first word and its hash), with the folded
/// checksum sum of the whole option (RFC 1071; from an even offset).
pub struct Reply {
    pub words: [u64; 3],
    pub sum: u16,
}

impl Reply {
    /// Writes the option's octets at `out`.
    ///
    /// # Safety
    /// `out` must hold `REPLY_LEN` octets.
    #[inline(always)]
    pub unsafe fn write(&self, out: *mut u8) {
        let code = OPTION_COOKIE.to_be_bytes();
        let head = [code[0], code[1], 0, (8 + SERVER_COOKIE_LEN) as u8];
        for (i, b) in head.iter().enumerate() {
            *out.add(i) = *b;
        }
        for (w, word) in self.words.iter().enumerate() {
            for i in 0..8 {
                *out.add(4 + 8 * w + i) = (word >> (8 * i)) as u8;
            }
        }
    }
}

/// The 16-bit words of `w` (in memory order), summed.
#[inline(always)]
pub fn word_sum(w: u64) -> u64 {
    (w & 0xffff_ffff) + (w >> 32)
}

/// The COOKIE option of the answer to the COOKIE `cookie` (its first three little-endian
/// words, of valid length `len`): the client cookie and a server cookie made `now` with the
/// current secret; and whether `cookie` holds a server cookie we made with the current or the
/// previous secret, of a time in the window around `now` (RFC 9018 §4.3), checked only when
/// `validate`. The two hashes with the current secret share the key and the client cookie,
/// and are one when the cookie is of this second.
#[inline(always)]
pub fn answer(
    cfg: &EdnsConfig,
    cookie: &[u64; 3],
    len: usize,
    c: &Client,
    now: u32,
    validate: bool,
) -> (Reply, bool) {
    let [cc, sent, sent_mac] = *cookie;
    let current = keyed(&cfg.secret_keyed, cc);
    let made = header(now);
    let mac = hash(current, made, c);
    let reply = Reply {
        words: [cc, made, mac],
        sum: checksum::fold(
            checksum::field(OPTION_COOKIE)
                + checksum::field((8 + SERVER_COOKIE_LEN) as u16)
                + word_sum(cc)
                + word_sum(made)
                + word_sum(mac),
        ),
    };
    // The version octet first, then the timestamp (octets 4-7 of the word, big-endian).
    if !validate || len != 8 + SERVER_COOKIE_LEN || sent & 0xff != SERVER_COOKIE_VERSION as u64 {
        return (reply, false);
    }
    let ts = ((sent >> 32) as u32).swap_bytes();
    if now.wrapping_sub(ts) > COOKIE_MAX_AGE && ts.wrapping_sub(now) > COOKIE_MAX_AHEAD {
        return (reply, false);
    }
    let valid = if sent == made {
        mac == sent_mac
    } else {
        hash(current, sent, c) == sent_mac
    };
    let valid = valid
        || cfg.flags & EDNS_COOKIE_PREVIOUS != 0
            && hash(keyed(&cfg.previous_keyed, cc), sent, c) == sent_mac;
    (reply, valid)
}
