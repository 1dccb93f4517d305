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

/// The SipHash state of `secret` after the client cookie `cc`.
#[inline(always)]
fn keyed(secret: &[u8; 16], cc: u64) -> siphash::State {
    siphash::State::new(le64(secret, 0), le64(secret, 8)).absorb(cc)
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
    /// The option's octets.
    #[inline(always)]
    pub fn bytes(&self) -> [u8; REPLY_LEN] {
        let code = OPTION_COOKIE.to_be_bytes();
        let mut out = [0u8; REPLY_LEN];
        out[0] = code[0];
        out[1] = code[1];
        out[3] = (8 + SERVER_COOKIE_LEN) as u8;
        out[4..12].copy_from_slice(&self.words[0].to_le_bytes());
        out[12..20].copy_from_slice(&self.words[1].to_le_bytes());
        out[20..28].copy_from_slice(&self.words[2].to_le_bytes());
        out
    }
}

/// The 16-bit words of `w` (in memory order), summed.
#[inline(always)]
fn word_sum(w: u64) -> u64 {
    (w & 0xffff_ffff) + (w >> 32)
}

/// The COOKIE option of the answer to the COOKIE `cookie` (of valid length `len`): the client
/// cookie and a server cookie made `now` with the current secret; and whether `cookie` holds a
/// server cookie we made with the current or the previous secret, of a time in the window
/// around `now` (RFC 9018 §4.3), checked only when `validate`. The two hashes with the current
/// secret share the key and the client cookie, and are one when the cookie is of this second.
#[inline(always)]
pub fn answer(
    cfg: &EdnsConfig,
    cookie: &[u8; 40],
    len: usize,
    c: &Client,
    now: u32,
    validate: bool,
) -> (Reply, bool) {
    let cc = le64(cookie, 0);
    let current = keyed(&cfg.secret, cc);
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
    if !validate || len != 8 + SERVER_COOKIE_LEN || cookie[8] != SERVER_COOKIE_VERSION {
        return (reply, false);
    }
    let ts = u32::from_be_bytes([cookie[12], cookie[13], cookie[14], cookie[15]]);
    if now.wrapping_sub(ts) > COOKIE_MAX_AGE && ts.wrapping_sub(now) > COOKIE_MAX_AHEAD {
        return (reply, false);
    }
    let sent = le64(cookie, 8);
    let sent_mac = le64(cookie, 16);
    let valid = if sent == made {
        mac == sent_mac
    } else {
        hash(current, sent, c) == sent_mac
    };
    let valid = valid
        || cfg.flags & EDNS_COOKIE_PREVIOUS != 0
            && hash(keyed(&cfg.previous, cc), sent, c) == sent_mac;
    (reply, valid)
}
