//! DNS Cookies, server side (RFC 7873 §5.2), with the interoperable server cookies of RFC 9018:
//! version 1, three reserved octets, a 32-bit timestamp and SipHash-2-4 over
//! client cookie | version | reserved | timestamp | client address, keyed by a 16-octet secret
//! that the anycast instances of a zone share (as BIND's `cookie-secret`).
//!
//! It owns the verdict on a query's COOKIE option and the COOKIE option of the answer. The
//! rules, which the XDP program follows too (`dns-ebpf/src/edns.rs`):
//! - a COOKIE of fewer than 8, of 9 to 15, or of more than 40 octets is FORMERR (§5.2.2);
//! - a valid server cookie is one of 16 octets, version 1, whose hash matches the current or
//!   the previous secret and whose timestamp is at most an hour old and at most five minutes
//!   ahead (RFC 9018 §4.3, in serial number arithmetic);
//! - every answer to a query with a COOKIE carries the client cookie and a fresh server cookie,
//!   always made with the current secret and the current second, whatever came in (as BIND
//!   does), so that both paths write the same bytes in the same second;
//! - with `require` (BIND's `require-server-cookie`), a UDP query that has a COOKIE but no
//!   valid server cookie gets BADCOOKIE (extended RCODE 23, §5.2.3) with a fresh cookie; a
//!   query without COOKIE and queries over TCP are answered as usual.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;

use dns_common::{
    CLIENT_COOKIE_LEN, COOKIE_MAX, COOKIE_MAX_AGE, COOKIE_MAX_AHEAD, SERVER_COOKIE_LEN,
    SERVER_COOKIE_VERSION,
};
use siphasher::sip::SipHasher24;

use crate::xfr::timers::Clock;

/// Extended RCODE BADCOOKIE (RFC 7873 §8).
pub const RCODE_BADCOOKIE: u16 = 23;

/// A cookie secret: the SipHash-2-4 key.
pub type Secret = [u8; 16];

/// The COOKIE option data of an answer: client cookie and server cookie.
pub type Reply = [u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN];

/// The server's cookie settings.
#[derive(Clone)]
pub struct Cookies {
    /// Makes every server cookie, and validates them.
    pub secret: Secret,
    /// The secret before the last rollover: cookies made with it are still valid.
    pub previous: Option<Secret>,
    /// BADCOOKIE for UDP queries with a COOKIE but no valid server cookie.
    pub require: bool,
    /// Seconds since the epoch, for the timestamps.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets stay out of logs.
        f.debug_struct("Cookies")
            .field("previous", &self.previous.is_some())
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

/// What a query's COOKIE option was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No COOKIE option (or no cookie support configured, or no client address known).
    Absent,
    /// Of a length RFC 7873 §5.2.2 calls malformed: FORMERR.
    Malformed,
    /// A client cookie alone.
    ClientOnly,
    /// A server cookie that is not ours, not version 1, or too old or too new.
    Invalid,
    /// A server cookie we made, in its validity window.
    Valid,
}

impl Verdict {
    /// Whether the query carried a valid server cookie: the hook for rate limiting (a client
    /// that returns our cookie has shown it receives at its address).
    pub fn is_valid(self) -> bool {
        self == Verdict::Valid
    }
}

/// The SipHash-2-4 of RFC 9018 §4.4 over `client | version, reserved, timestamp | address`.
pub fn hash(secret: &Secret, client: &[u8], header: &[u8; 8], addr: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(header);
    match addr {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

/// The COOKIE data of an answer: `client` and a server cookie made at `now`.
pub fn make(secret: &Secret, client: &[u8; CLIENT_COOKIE_LEN], addr: IpAddr, now: u32) -> Reply {
    let mut header = [SERVER_COOKIE_VERSION, 0, 0, 0, 0, 0, 0, 0];
    header[4..].copy_from_slice(&now.to_be_bytes());
    let mut out = [0u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN];
    out[..8].copy_from_slice(client);
    out[8..16].copy_from_slice(&header);
    out[16..].copy_from_slice(&hash(secret, client, &header, addr));
    out
}

/// Whether `timestamp` lies in the window of RFC 9018 §4.3 around `now` (serial arithmetic).
fn fresh(timestamp: u32, now: u32) -> bool {
    let age = now.wrapping_sub(timestamp);
    age <= COOKIE_MAX_AGE || timestamp.wrapping_sub(now) <= COOKIE_MAX_AHEAD
}

/// The address a cookie is bound to: IPv4 also when it came on a dual-stack socket.
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

impl Cookies {
    /// The current time in cookie seconds.
    pub fn now(&self) -> u32 {
        self.clock.now() as u32
    }

    /// Judges the COOKIE option data `option` from `addr` at `now`; for every verdict but
    /// `Malformed`, also the COOKIE data of the answer.
    pub fn check(&self, option: &[u8], addr: IpAddr, now: u32) -> (Verdict, Option<Reply>) {
        let len = option.len();
        if len < CLIENT_COOKIE_LEN || (9..16).contains(&len) || len > COOKIE_MAX {
            return (Verdict::Malformed, None);
        }
        let addr = canonical(addr);
        let client: [u8; CLIENT_COOKIE_LEN] = option[..8].try_into().expect("length checked");
        let reply = Some(make(&self.secret, &client, addr, now));
        if len == CLIENT_COOKIE_LEN {
            return (Verdict::ClientOnly, reply);
        }
        let server = &option[8..];
        let valid = server.len() == SERVER_COOKIE_LEN && server[0] == SERVER_COOKIE_VERSION && {
            let header: [u8; 8] = server[..8].try_into().expect("length checked");
            let timestamp = u32::from_be_bytes(header[4..].try_into().expect("4 octets"));
            fresh(timestamp, now)
                && std::iter::once(&self.secret)
                    .chain(self.previous.as_ref())
                    .any(|s| hash(s, &client, &header, addr) == server[8..])
        };
        let verdict = if valid {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        (verdict, reply)
    }
}

/// Parses a secret written as 32 hex digits.
pub fn parse_secret(text: &str) -> anyhow::Result<Secret> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.trim().as_bytes())
        // The text stays out of the message: it may be a secret with a typo.
        .map_err(|e| anyhow::anyhow!("cookie secret is not 32 hex digits: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!(
            "cookie secret has {} octets, not 16 (32 hex digits)",
            b.len()
        )
    })
}

/// A random secret, for a server configured without one.
pub fn random_secret() -> anyhow::Result<Secret> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut s = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut s))
        .context("reading a random cookie secret from /dev/urandom")?;
    Ok(s)
}

#[cfg(test)]
mod tests;
