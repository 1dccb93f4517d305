//! TSIG (RFC 8945): shared-secret keys (HMAC-SHA1/256/384/512, from `[[key]]` configuration
//! entries), signing and verifying requests, responses and multi-message responses.
//!
//! The MAC of a request covers the message (TSIG removed, ARCOUNT as before signing, the
//! original ID) and the TSIG variables (§4.3.3). A response's MAC is preceded by the request's
//! MAC (§4.3.2). In a multi-message response (§5.3.1) each later signed message's MAC covers the
//! prior MAC, every message since it (unsigned ones included) and the timers only; at most 99
//! messages in a row may be unsigned and the last one must be signed.

use thiserror::Error;

use super::message::{rcode, Message};
use super::tsig_key::Hm;
pub use super::tsig_key::{Algorithm, Key, KeyConfig};
use crate::wire::name::Name;
use crate::wire::record::{class, read_name, rtype, Record};

/// Seconds of clock difference allowed (the value RFC 8945 §10 recommends).
pub const FUDGE: u16 = 300;

/// Most messages in a row a multi-message response may leave unsigned (§5.3.1).
pub const MAX_UNSIGNED: usize = 99;

/// The fields of a TSIG RDATA (§4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tsig {
    pub key: Name,
    pub algorithm: Name,
    /// Seconds since the epoch, 48 bits.
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

impl Tsig {
    /// A TSIG to be signed now for a message with this ID; BADTIME answers carry the
    /// responder's clock in Other Data (§5.2.3).
    fn fresh(key: Name, algorithm: Name, now: u64, original_id: u16, error: u16) -> Tsig {
        let now = now & 0xffff_ffff_ffff;
        Tsig {
            key,
            algorithm,
            time_signed: now,
            fudge: FUDGE,
            mac: Vec::new(),
            original_id,
            error,
            other: if error == rcode::BADTIME {
                now.to_be_bytes()[2..].to_vec()
            } else {
                Vec::new()
            },
        }
    }

    /// From a TSIG record (class ANY, TTL 0).
    pub fn from_record(r: &Record) -> Result<Tsig, TsigError> {
        let bad = |m: &str| TsigError::Malformed(format!("{}: {m}", r.owner));
        if r.class != class::ANY || r.ttl != 0 {
            return Err(bad("class must be ANY and TTL 0"));
        }
        let rd = &r.rdata;
        let (algorithm, mut p) = read_name(rd).ok_or_else(|| bad("bad algorithm name"))?;
        let mut take = |n: usize| -> Result<&[u8], TsigError> {
            let s = rd.get(p..p + n).ok_or_else(|| bad("RDATA too short"))?;
            p += n;
            Ok(s)
        };
        let t = take(6)?;
        let time_signed = t.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        let u16_at = |s: &[u8]| u16::from_be_bytes([s[0], s[1]]);
        let fudge = u16_at(take(2)?);
        let mac_len = u16_at(take(2)?) as usize;
        let mac = take(mac_len)?.to_vec();
        let original_id = u16_at(take(2)?);
        let error = u16_at(take(2)?);
        let other_len = u16_at(take(2)?) as usize;
        let other = take(other_len)?.to_vec();
        if p != rd.len() {
            return Err(bad("octets after Other Data"));
        }
        Ok(Tsig {
            key: r.owner.clone(),
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
        })
    }

    /// The TSIG record in wire form.
    fn to_wire(&self) -> Vec<u8> {
        let mut rd = self.algorithm.lower_wire();
        rd.extend_from_slice(&self.time_signed.to_be_bytes()[2..]);
        rd.extend_from_slice(&self.fudge.to_be_bytes());
        rd.extend_from_slice(&(self.mac.len() as u16).to_be_bytes());
        rd.extend_from_slice(&self.mac);
        rd.extend_from_slice(&self.original_id.to_be_bytes());
        rd.extend_from_slice(&self.error.to_be_bytes());
        rd.extend_from_slice(&(self.other.len() as u16).to_be_bytes());
        rd.extend_from_slice(&self.other);
        let mut w = self.key.lower_wire();
        w.extend_from_slice(&rtype::TSIG.to_be_bytes());
        w.extend_from_slice(&class::ANY.to_be_bytes());
        w.extend_from_slice(&0u32.to_be_bytes());
        w.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        w.extend_from_slice(&rd);
        w
    }

    /// Feeds the TSIG variables (§4.3.3), or only the timers for later messages of a
    /// multi-message response.
    fn update_variables(&self, h: &mut Hm, timers_only: bool) {
        if !timers_only {
            h.update(&self.key.lower_wire());
            h.update(&class::ANY.to_be_bytes());
            h.update(&0u32.to_be_bytes());
            h.update(&self.algorithm.lower_wire());
        }
        h.update(&self.time_signed.to_be_bytes()[2..]);
        h.update(&self.fudge.to_be_bytes());
        if !timers_only {
            h.update(&self.error.to_be_bytes());
            h.update(&(self.other.len() as u16).to_be_bytes());
            h.update(&self.other);
        }
    }
}

/// Why a TSIG check failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TsigError {
    #[error("message is not signed (TSIG with key {0} required)")]
    Unsigned(Name),
    #[error("message signed with key {found}, expected {expected}")]
    WrongKey { found: String, expected: String },
    #[error("unknown TSIG key {0} (BADKEY)")]
    UnknownKey(String),
    #[error("TSIG MAC does not verify with key {0} (BADSIG)")]
    BadSig(Name),
    #[error("TSIG time signed {signed} is more than {fudge} s from our clock {now} (BADTIME)")]
    BadTime { signed: u64, now: u64, fudge: u16 },
    #[error("TSIG MAC truncated to {len} octets, fewer than the {min} allowed")]
    BadTrunc { len: usize, min: usize },
    #[error("the peer rejected our TSIG: {0}")]
    Rejected(String),
    #[error("more than {MAX_UNSIGNED} messages in a row are unsigned")]
    TooManyUnsigned,
    #[error("the last message of the response is not signed")]
    LastUnsigned,
    #[error("malformed TSIG record {0}")]
    Malformed(String),
}

impl TsigError {
    /// The TSIG error a responder puts in its answer (§5.2).
    pub fn rcode(&self) -> u16 {
        match self {
            TsigError::UnknownKey(_) | TsigError::WrongKey { .. } => rcode::BADKEY,
            TsigError::BadTime { .. } => rcode::BADTIME,
            TsigError::BadTrunc { .. } => rcode::BADTRUNC,
            TsigError::Malformed(_) => rcode::FORMERR,
            _ => rcode::BADSIG,
        }
    }
}

/// The TSIG of a message, parsed.
fn tsig_of(msg: &Message<'_>) -> Result<Option<(Tsig, usize)>, TsigError> {
    msg.tsig
        .as_ref()
        .map(|(r, at)| Ok((Tsig::from_record(r)?, *at)))
        .transpose()
}

/// Checks MAC length (§5.2.2.1), MAC and time, in that order.
fn check(h: Hm, key: &Key, t: &Tsig, now: u64) -> Result<(), TsigError> {
    let out = key.algorithm.output_len();
    let min = (out / 2).max(10);
    if t.mac.len() > out {
        return Err(TsigError::BadSig(key.name.clone()));
    }
    if t.mac.len() < min {
        return Err(TsigError::BadTrunc {
            len: t.mac.len(),
            min,
        });
    }
    if !h.verify(&t.mac) {
        return Err(TsigError::BadSig(key.name.clone()));
    }
    if now.abs_diff(t.time_signed) > u64::from(t.fudge) {
        return Err(TsigError::BadTime {
            signed: t.time_signed,
            now,
            fudge: t.fudge,
        });
    }
    Ok(())
}

/// Appends a TSIG record for `key` to `msg` (whose ID is the original ID), with the MAC over
/// `prior` (a request MAC or prior MAC, or none), the message and the variables.
fn append(msg: &mut Vec<u8>, key: &Key, prior: Option<&[u8]>, error: u16, now: u64) -> Vec<u8> {
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let mut t = Tsig::fresh(key.name.clone(), key.algorithm.name(), now, id, error);
    let mut h = key.hmac();
    if let Some(p) = prior {
        h.update_mac(p);
    }
    h.update(msg);
    t.update_variables(&mut h, false);
    t.mac = h.finalize();
    add_record(msg, &t);
    t.mac
}

fn add_record(msg: &mut Vec<u8>, t: &Tsig) {
    msg.extend_from_slice(&t.to_wire());
    let ar = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Signs a request; returns its MAC, which the response's verification needs.
pub fn sign_request(msg: &mut Vec<u8>, key: &Key, now: u64) -> Vec<u8> {
    append(msg, key, None, 0, now)
}

/// A verified request: which key signed it and its MAC (for signing the response).
#[derive(Clone, Debug)]
pub struct Signed<'k> {
    pub key: &'k Key,
    pub mac: Vec<u8>,
}

/// A request whose TSIG was rejected, with what the response must carry (§5.2).
#[derive(Debug)]
pub struct Rejection<'k> {
    pub error: TsigError,
    /// The key, when known (BADTIME answers are signed with it).
    pub key: Option<&'k Key>,
    /// The request's TSIG, to echo the key and algorithm names.
    pub tsig: Tsig,
}

/// Verifies a request's TSIG against `keys`. `Ok(None)`: the request is unsigned.
pub fn verify_request<'k>(
    msg: &Message<'_>,
    keys: &'k [Key],
    now: u64,
) -> Result<Option<Signed<'k>>, Box<Rejection<'k>>> {
    let (t, at) = match tsig_of(msg) {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(None),
        Err(error) => {
            let owner = msg.tsig.as_ref().expect("present").0.owner.clone();
            let tsig = Tsig::fresh(owner, Name::root(), 0, msg.id, 0);
            return Err(Box::new(Rejection {
                error,
                key: None,
                tsig,
            }));
        }
    };
    let key = keys
        .iter()
        .find(|k| k.name == t.key && k.algorithm.name() == t.algorithm);
    let Some(key) = key else {
        return Err(Box::new(Rejection {
            error: TsigError::UnknownKey(format!("{} ({})", t.key, t.algorithm)),
            key: None,
            tsig: t,
        }));
    };
    let mut h = key.hmac();
    h.update_stripped(msg.wire, at, t.original_id);
    t.update_variables(&mut h, false);
    match check(h, key, &t, now) {
        Ok(()) => Ok(Some(Signed {
            key,
            mac: t.mac.clone(),
        })),
        Err(error) => Err(Box::new(Rejection {
            error,
            key: Some(key),
            tsig: t,
        })),
    }
}

/// Adds the TSIG a rejected request's response carries (§5.2): BADKEY and BADSIG unsigned
/// (MAC empty), BADTIME signed with the server's time in Other Data.
pub fn sign_rejection(msg: &mut Vec<u8>, r: &Rejection<'_>, now: u64) {
    let error = r.error.rcode();
    match (error, r.key) {
        (rcode::BADTIME, Some(key)) => {
            append(msg, key, Some(&r.tsig.mac), error, now);
        }
        _ => {
            let id = u16::from_be_bytes([msg[0], msg[1]]);
            let (k, a) = (r.tsig.key.clone(), r.tsig.algorithm.clone());
            add_record(msg, &Tsig::fresh(k, a, now, id, error));
        }
    }
}

/// Signs the messages of a response in order: the first with the request MAC, later ones with
/// the prior MAC over the messages since (§5.3.1).
pub struct ResponseSigner<'k> {
    key: std::borrow::Cow<'k, Key>,
    prior: Vec<u8>,
    /// HMAC fed with the prior MAC and the unsigned messages since it.
    pending: Option<Hm>,
}

impl<'k> ResponseSigner<'k> {
    pub fn new(key: &'k Key, request_mac: &[u8]) -> ResponseSigner<'k> {
        ResponseSigner {
            key: std::borrow::Cow::Borrowed(key),
            prior: request_mac.to_vec(),
            pending: None,
        }
    }

    /// A signer that owns its key, for responses produced after the request is gone.
    pub fn owned(key: Key, request_mac: &[u8]) -> ResponseSigner<'static> {
        ResponseSigner {
            key: std::borrow::Cow::Owned(key),
            prior: request_mac.to_vec(),
            pending: None,
        }
    }

    /// Signs `msg` (`sign`), or leaves it unsigned for the next signature to cover. The caller
    /// signs at least every 100th message and the last one.
    pub fn next(&mut self, msg: &mut Vec<u8>, sign: bool, now: u64) {
        match self.pending.take() {
            // The first message is always signed, with the full variables after the request
            // MAC.
            None => self.prior = append(msg, &self.key, Some(&self.prior), 0, now),
            Some(mut h) if !sign => {
                h.update(msg);
                self.pending = Some(h);
                return;
            }
            Some(mut h) => {
                let id = u16::from_be_bytes([msg[0], msg[1]]);
                let (k, a) = (self.key.name.clone(), self.key.algorithm.name());
                let mut t = Tsig::fresh(k, a, now, id, 0);
                h.update(msg);
                t.update_variables(&mut h, true);
                t.mac = h.finalize();
                add_record(msg, &t);
                self.prior = t.mac;
            }
        }
        let mut next = self.key.hmac();
        next.update_mac(&self.prior);
        self.pending = Some(next);
    }
}

/// Verifies the messages of a response in order (§5.3.1), given the request's MAC.
pub struct ResponseVerifier<'k> {
    key: &'k Key,
    pending: Hm,
    first: bool,
    unsigned: usize,
}

impl<'k> ResponseVerifier<'k> {
    pub fn new(key: &'k Key, request_mac: &[u8]) -> ResponseVerifier<'k> {
        let mut pending = key.hmac();
        pending.update_mac(request_mac);
        ResponseVerifier {
            key,
            pending,
            first: true,
            unsigned: 0,
        }
    }

    /// Checks the next message. The first must be signed; later ones may be unsigned, at most
    /// 99 in a row.
    pub fn verify(&mut self, msg: &Message<'_>, now: u64) -> Result<(), TsigError> {
        let Some((t, at)) = tsig_of(msg)? else {
            if self.first {
                return Err(TsigError::Unsigned(self.key.name.clone()));
            }
            self.unsigned += 1;
            if self.unsigned > MAX_UNSIGNED {
                return Err(TsigError::TooManyUnsigned);
            }
            self.pending.update(msg.wire);
            return Ok(());
        };
        if t.error != 0 {
            return Err(TsigError::Rejected(rcode::to_string(t.error)));
        }
        if t.key != self.key.name || t.algorithm != self.key.algorithm.name() {
            return Err(TsigError::WrongKey {
                found: format!("{} ({})", t.key, t.algorithm),
                expected: format!("{} ({})", self.key.name, self.key.algorithm.mnemonic()),
            });
        }
        let mut h = std::mem::replace(&mut self.pending, self.key.hmac());
        h.update_stripped(msg.wire, at, t.original_id);
        t.update_variables(&mut h, !self.first);
        check(h, self.key, &t, now)?;
        self.pending.update_mac(&t.mac);
        self.first = false;
        self.unsigned = 0;
        Ok(())
    }

    /// At the end of the response: the last message must have been signed.
    pub fn finish(&self) -> Result<(), TsigError> {
        if self.first {
            return Err(TsigError::Unsigned(self.key.name.clone()));
        }
        if self.unsigned > 0 {
            return Err(TsigError::LastUnsigned);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tsig_tests.rs"]
mod tests;
