//! DNS Cookies in the driver, as the engine's `engine/cookie.rs` makes them (RFC 7873 §5.2,
//! RFC 9018): validates the server cookie a query brings back against the current and the
//! previous secret, and writes the COOKIE option of the answer — the client cookie and a fresh
//! server cookie of the current second, always made with the current secret.

use aya_ebpf::programs::XdpContext;
use dns_common::{
    counter, EdnsConfig, COOKIE_MAX_AGE, COOKIE_MAX_AHEAD, EDNS_COOKIE_PREVIOUS, OPTION_COOKIE,
    SERVER_COOKIE_LEN, SERVER_COOKIE_VERSION,
};

use crate::siphash;

/// Length of the COOKIE option of an answer: code, length, client and server cookie.
pub const REPLY_LEN: usize = 4 + 8 + SERVER_COOKIE_LEN;

#[inline(always)]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The client's address as the hash takes it: the message words after the client cookie and
/// the server cookie's first word, and the count of whole words.
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
            n: 4,
            tail: 32 << 56,
        }
    } else {
        let p: *const [u8; 4] =
            crate::packet::ptr_at(ctx, l3 + 12).map_err(|_| counter::PASS_ERROR)?;
        // SAFETY: bounds checked by ptr_at.
        let a = unsafe { p.read_unaligned() };
        Client {
            words: [0, 0],
            n: 2,
            tail: u32::from_le_bytes(a) as u64 | (20 << 56),
        }
    })
}

/// SipHash-2-4 of `client cookie | server cookie header | address` under `secret`.
#[inline(always)]
fn hash(secret: &[u8; 16], cc: u64, header: u64, c: &Client) -> u64 {
    let words = [cc, header, c.words[0], c.words[1]];
    siphash::hash(le64(secret, 0), le64(secret, 8), &words, c.n, c.tail)
}

/// Whether `cookie[..len]` (a COOKIE of valid length) holds a server cookie we made with the
/// current or the previous secret, of a time in the window around `now` (RFC 9018 §4.3).
#[inline(always)]
pub fn valid(cfg: &EdnsConfig, cookie: &[u8; 40], len: usize, c: &Client, now: u32) -> bool {
    if len != 8 + SERVER_COOKIE_LEN || cookie[8] != SERVER_COOKIE_VERSION {
        return false;
    }
    let ts = u32::from_be_bytes([cookie[12], cookie[13], cookie[14], cookie[15]]);
    if now.wrapping_sub(ts) > COOKIE_MAX_AGE && ts.wrapping_sub(now) > COOKIE_MAX_AHEAD {
        return false;
    }
    let cc = le64(cookie, 0);
    let header = le64(cookie, 8);
    let mac = le64(cookie, 16);
    if hash(&cfg.secret, cc, header, c) == mac {
        return true;
    }
    cfg.flags & EDNS_COOKIE_PREVIOUS != 0 && hash(&cfg.previous, cc, header, c) == mac
}

/// The COOKIE option of the answer: the client cookie of `cookie` and a server cookie made
/// now with the current secret.
#[inline(always)]
pub fn reply(cfg: &EdnsConfig, cookie: &[u8; 40], c: &Client, now: u32) -> [u8; REPLY_LEN] {
    let t = now.to_be_bytes();
    let header = [SERVER_COOKIE_VERSION, 0, 0, 0, t[0], t[1], t[2], t[3]];
    let cc = le64(cookie, 0);
    let mac = hash(&cfg.secret, cc, u64::from_le_bytes(header), c).to_le_bytes();
    let code = OPTION_COOKIE.to_be_bytes();
    let mut out = [0u8; REPLY_LEN];
    out[0] = code[0];
    out[1] = code[1];
    out[3] = (8 + SERVER_COOKIE_LEN) as u8;
    out[4..12].copy_from_slice(&cookie[..8]);
    out[12..20].copy_from_slice(&header);
    out[20..28].copy_from_slice(&mac);
    out
}
