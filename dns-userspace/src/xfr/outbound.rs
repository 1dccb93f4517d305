//! Serving zone transfers to downstream secondaries: one function, `respond`, that the server's
//! TCP (and UDP) path calls with a request and the peer's address, and that returns the
//! response messages to write.
//!
//! In order (RFC 8945 §5.2 puts TSIG first): the request is read (FORMERR when it cannot be);
//! its TSIG verified (NOTAUTH with the TSIG error when it fails, the error signed as §5.2
//! says); the zone found (NOTAUTH when we do not serve it, RFC 5936 §2.2.1); the zone's ACL
//! checked against the peer's address and the verified key (REFUSED). Then:
//! - AXFR (RFC 5936, TCP only): the SOA, every other record, the SOA, in messages of up to
//!   64 KiB.
//! - IXFR (RFC 1995) with the secondary's SOA in the authority section: a single SOA when it
//!   is up to date (or newer); the journal's diffs when they lead from its serial to ours;
//!   otherwise the whole zone, AXFR-style. Over UDP, when the answer does not fit in one
//!   datagram, a single SOA, which sends the secondary to TCP (§2).
//!
//! Every answer to a signed request is signed; with EDNS the answer carries OPT, and EDNS
//! EXPIRE (RFC 7314) with the time the caller says is left when the request asked for it.
//! Every outcome is logged with the peer and the key, and returned for counting.
//!
//! Wiring: the server hands a query to `respond` when `is_transfer` says it is one, passing a
//! closure that gives the zone's `Offer` (for a secondary, `Secondary::offer`), and writes the
//! reply's messages in order, each taken when the connection can take it; every other query
//! goes through `signed_query::answer` to the engine, so that downstreams' signed SOA checks
//! are answered signed. After a new version, `notify_out::notify_downstreams`.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::acl::Acl;
use super::axfr::is_apex_soa;
use super::ixfr::{serial, Diff};
use super::message::{self, opcode, rcode, Message, OPTION_EXPIRE};
use super::response::{
    axfr_segments, ixfr_segments, question_wire, Head, Messages, Segment, Stream,
};
use super::soa::{serial_newer, Soa};
use super::tsig::{self, Key, ResponseSigner};
use crate::engine::Transport;
use crate::wire::name::Name;
use crate::wire::record::{class, rtype, Record};
use crate::zone::Zone;

/// Extended RCODE BADVERS (RFC 6891 §9).
const BADVERS: u16 = 16;

/// Largest message over TCP.
pub const TCP_MESSAGE: usize = 65535;

/// A version of a zone as transfers serve it.
#[derive(Clone, Debug)]
pub struct Served {
    pub apex: Name,
    pub soa: Record,
    pub serial: u32,
    /// Every record of the version (its SOA among them), made from the zone at the first
    /// AXFR that needs them.
    records: Arc<OnceLock<Arc<[Record]>>>,
    zone: Option<Arc<Zone>>,
    /// Diffs from older versions, oldest first, the last ending at `serial`.
    pub history: Arc<[Arc<Diff>]>,
}

impl Served {
    /// The version `records` of `apex`, with the diffs that lead to it (a journal's). Diffs
    /// that do not form a chain ending at the version's serial are left out.
    pub fn new(
        apex: Name,
        records: Arc<[Record]>,
        history: Vec<Arc<Diff>>,
    ) -> Result<Served, String> {
        let soa = records
            .iter()
            .find(|r| is_apex_soa(r, &apex) && Soa::from_record(r).is_some())
            .cloned()
            .ok_or_else(|| format!("zone {apex}: the version has no SOA"))?;
        let served = Served::with(apex, soa, None, history);
        let _ = served.records.set(records);
        Ok(served)
    }

    /// The version `zone`, with the diffs that lead to it; its records are made when an AXFR
    /// first asks for them (not for every version: most are only ever sent as diffs).
    pub fn of_zone(zone: Arc<Zone>, history: Vec<Arc<Diff>>) -> Served {
        let apex = zone.apex().clone();
        let soa = zone.soa().records(&apex).next().expect("one SOA");
        Served::with(apex, soa, Some(zone), history)
    }

    fn with(apex: Name, soa: Record, zone: Option<Arc<Zone>>, history: Vec<Arc<Diff>>) -> Served {
        let current = serial(&soa);
        // The longest unbroken chain ending at the version's serial.
        let mut start = history.len();
        let mut reached = current;
        while start > 0 && serial(&history[start - 1].to) == reached {
            start -= 1;
            reached = serial(&history[start].from);
        }
        Served {
            apex,
            soa,
            serial: current,
            records: Arc::new(OnceLock::new()),
            zone,
            history: history[start..].into(),
        }
    }

    /// Every record of the version.
    pub fn records(&self) -> Arc<[Record]> {
        self.records
            .get_or_init(|| {
                let zone = self.zone.as_ref().expect("records or a zone");
                zone.records().into()
            })
            .clone()
    }

    /// The diffs from serial `from` to this version, when the history has them.
    pub fn chain_from(&self, from: u32) -> Option<&[Arc<Diff>]> {
        let i = self.history.iter().position(|d| serial(&d.from) == from)?;
        Some(&self.history[i..])
    }
}

/// What the caller offers for a zone at the time of a request.
#[derive(Clone, Debug)]
pub struct Offer {
    pub served: Served,
    pub acl: Arc<Acl>,
    /// Seconds until the zone expires here, for EDNS EXPIRE (RFC 7314 §4: a secondary's time
    /// left, a primary's SOA EXPIRE); `None`: the option is not sent.
    pub expire: Option<u32>,
}

/// What a request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Axfr {
        serial: u32,
    },
    /// Diffs from the secondary's serial.
    Ixfr {
        from: u32,
        to: u32,
        diffs: usize,
    },
    /// The secondary is up to date (or newer): a single SOA.
    UpToDate {
        theirs: u32,
        serial: u32,
    },
    /// The journal does not reach back to the secondary's serial: the whole zone.
    IxfrFull {
        from: u32,
        serial: u32,
    },
    /// Over UDP the diffs do not fit: a single SOA sends the secondary to TCP.
    UseTcp {
        from: u32,
        serial: u32,
    },
    /// Answered with an error RCODE (and, for TSIG failures, the TSIG error).
    Refused {
        rcode: u16,
        reason: String,
    },
    /// Not answered (a response, or bytes that are no DNS message).
    Dropped {
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Axfr { serial } => write!(f, "AXFR, serial {serial}"),
            Outcome::Ixfr { from, to, diffs } => {
                write!(f, "IXFR from serial {from} to {to}, {diffs} diffs")
            }
            Outcome::UpToDate { theirs, serial } => {
                write!(f, "IXFR from serial {theirs}: up to date (serial {serial})")
            }
            Outcome::IxfrFull { from, serial } => write!(
                f,
                "IXFR from serial {from}: no diffs from there, the whole zone (serial {serial})"
            ),
            Outcome::UseTcp { from, serial } => write!(
                f,
                "IXFR over UDP from serial {from} to {serial}: too large, single SOA (use TCP)"
            ),
            // In an answer's RCODE (not a TSIG error), 16 is BADVERS.
            Outcome::Refused {
                rcode: BADVERS,
                reason,
            } => write!(f, "refused (BADVERS): {reason}"),
            Outcome::Refused { rcode: rc, reason } => {
                write!(f, "refused ({}): {reason}", rcode::to_string(*rc))
            }
            Outcome::Dropped { reason } => write!(f, "dropped: {reason}"),
        }
    }
}

/// The answer to a transfer request.
#[derive(Debug)]
pub struct Reply {
    pub zone: Option<Name>,
    /// The key that signed the request, when it verified.
    pub key: Option<Name>,
    pub outcome: Outcome,
    /// The messages to write, in order (none for a dropped request).
    pub messages: Messages,
}

/// Whether `wire` is a query (QR clear, opcode QUERY) for AXFR or IXFR: what the server's
/// TCP and UDP paths hand to `respond` rather than to the answer engine.
pub fn is_transfer(wire: &[u8]) -> bool {
    if wire.len() < 12 || wire[2] & 0xf8 != 0 || wire[4..6] != [0, 1] {
        return false;
    }
    let Ok((_, at)) = message::read_name(wire, 12) else {
        return false;
    };
    matches!(
        wire.get(at..at + 2),
        Some(&[0, t]) if u16::from(t) == rtype::AXFR || u16::from(t) == rtype::IXFR
    )
}

/// Answers a transfer request from `peer` over `transport`: TSIG checked against `keys` at
/// time `now` (seconds since the epoch), the zone's offer asked of `offer`. Logs the outcome.
pub fn respond(
    request: &[u8],
    peer: IpAddr,
    transport: Transport,
    keys: &[Key],
    now: u64,
    offer: impl FnOnce(&Name) -> Option<Offer>,
) -> Reply {
    let ctx = Ctx {
        peer,
        transport,
        keys,
        now,
    };
    let reply = answer(request, &ctx, offer);
    let zone = reply
        .zone
        .as_ref()
        .map_or_else(|| "?".to_owned(), Name::to_string);
    let key = reply
        .key
        .as_ref()
        .map_or_else(|| "unsigned".to_owned(), |k| format!("key {k}"));
    match &reply.outcome {
        Outcome::Refused { .. } => {
            log::warn!("transfer of {zone} to {peer} ({key}): {}", reply.outcome)
        }
        Outcome::Dropped { .. } => log::debug!("transfer request from {peer}: {}", reply.outcome),
        o => log::info!("transfer of {zone} to {peer} ({key}): {o}"),
    }
    reply
}

/// The largest UDP answer to `msg` (RFC 6891 §6.2.5, RFC 1035 §4.2.1).
fn udp_limit(msg: &Message<'_>) -> usize {
    msg.opt.as_ref().map_or(512, |o| {
        usize::from(o.payload.clamp(512, dns_common::DEFAULT_SERVER_PAYLOAD))
    })
}

/// Where a request came from, how, and what it is checked with.
struct Ctx<'a> {
    peer: IpAddr,
    transport: Transport,
    keys: &'a [Key],
    now: u64,
}

fn answer(request: &[u8], ctx: &Ctx<'_>, offer: impl FnOnce(&Name) -> Option<Offer>) -> Reply {
    let Ctx {
        peer,
        transport,
        keys,
        now,
    } = *ctx;
    let mut reply = Reply {
        zone: None,
        key: None,
        outcome: Outcome::Dropped {
            reason: String::new(),
        },
        messages: Messages::none(),
    };
    let msg = match message::parse(request) {
        Ok(m) => m,
        Err(e) => {
            // FORMERR when at least the header of a request can be read.
            if request.len() >= 12 && request[2] & 0x80 == 0 {
                let id = u16::from_be_bytes([request[0], request[1]]);
                let flags = u16::from_be_bytes([request[2], request[3]]);
                reply.messages = Messages::one(Head::new(id, flags, None).bare(rcode::FORMERR));
                reply.outcome = Outcome::Refused {
                    rcode: rcode::FORMERR,
                    reason: e.to_string(),
                };
            } else {
                reply.outcome = Outcome::Dropped {
                    reason: e.to_string(),
                };
            }
            return reply;
        }
    };
    if msg.is_response() {
        reply.outcome = Outcome::Dropped {
            reason: "a response, not a request".into(),
        };
        return reply;
    }
    let q = match msg.questions.as_slice() {
        [q] => Some(q),
        _ => None,
    };
    let mut head = Head::new(msg.id, msg.flags, q.map(question_wire));
    if msg.opt.is_some() {
        head = head.with_edns(None, 0);
    }
    reply.zone = q.map(|q| q.name.clone());
    let refuse = |reply: &mut Reply, head: &Head, rc: u16, reason: String| {
        reply.messages = Messages::one(head.bare(rc));
        reply.outcome = Outcome::Refused { rcode: rc, reason };
    };
    let Some(q) = q else {
        let n = msg.questions.len();
        refuse(
            &mut reply,
            &head,
            rcode::FORMERR,
            format!("{n} questions, not one"),
        );
        return reply;
    };
    if msg.opcode() != opcode::QUERY {
        let why = format!("opcode {}, not QUERY", msg.opcode());
        refuse(&mut reply, &head, rcode::NOTIMP, why);
        return reply;
    }
    if q.qtype != rtype::AXFR && q.qtype != rtype::IXFR {
        let why = format!("a query for {}, not a transfer", rtype::to_string(q.qtype));
        refuse(&mut reply, &head, rcode::NOTIMP, why);
        return reply;
    }
    let signed = match tsig::verify_request(&msg, keys, now) {
        Ok(s) => s,
        Err(rejection) => {
            let mut m = head.bare(rcode::NOTAUTH);
            tsig::sign_rejection(&mut m, &rejection, now);
            reply.messages = Messages::one(m);
            reply.outcome = Outcome::Refused {
                rcode: rcode::NOTAUTH,
                reason: rejection.error.to_string(),
            };
            return reply;
        }
    };
    let signer = signed.map(|s| (s.key.clone(), s.mac));
    reply.key = signer.as_ref().map(|(k, _)| k.name.clone());
    // Error answers to a signed request are signed too.
    let refuse = |reply: &mut Reply, head: &Head, rc: u16, reason: String| {
        let mut m = head.bare(rc);
        if let Some((k, mac)) = &signer {
            ResponseSigner::new(k, mac).next(&mut m, true, now);
        }
        reply.messages = Messages::one(m);
        reply.outcome = Outcome::Refused { rcode: rc, reason };
    };
    if q.qclass != class::IN {
        refuse(
            &mut reply,
            &head,
            rcode::REFUSED,
            format!("class {}", q.qclass),
        );
        return reply;
    }
    let Some(offer) = offer(&q.name) else {
        let why = format!("we do not serve {}", q.name);
        refuse(&mut reply, &head, rcode::NOTAUTH, why);
        return reply;
    };
    if let Err(why) = offer.acl.check(peer, reply.key.as_ref()) {
        refuse(&mut reply, &head, rcode::REFUSED, why);
        return reply;
    }
    if let Some(o) = msg.opt.as_ref() {
        if o.version != 0 {
            // BADVERS: extended RCODE 16, the upper bits in OPT (RFC 6891 §6.1.3).
            let h = head.clone().with_edns(None, 1);
            refuse(
                &mut reply,
                &h,
                BADVERS,
                format!("EDNS version {}", o.version),
            );
            return reply;
        }
        if o.options.iter().any(|(c, _)| *c == OPTION_EXPIRE) {
            head = head.with_edns(offer.expire, 0);
        }
    }
    let served = &offer.served;
    let (segments, outcome) = if q.qtype == rtype::AXFR {
        if transport == Transport::Udp {
            let why = "AXFR over UDP (RFC 5936 §4.2: TCP only)".to_owned();
            refuse(&mut reply, &head, rcode::FORMERR, why);
            return reply;
        }
        let s = axfr_segments(&served.soa, served.records());
        (
            s,
            Outcome::Axfr {
                serial: served.serial,
            },
        )
    } else {
        let theirs = msg
            .authority
            .iter()
            .find(|r| is_apex_soa(r, &q.name))
            .and_then(Soa::from_record);
        let Some(theirs) = theirs else {
            let why = "IXFR without the secondary's SOA in the authority section".to_owned();
            refuse(&mut reply, &head, rcode::FORMERR, why);
            return reply;
        };
        ixfr_plan(served, theirs.serial)
    };
    let stream = |segments: Vec<Segment>, limit: usize| {
        Stream::new(head.clone(), segments, limit, signer.clone(), now)
    };
    reply.outcome = outcome;
    if transport == Transport::Tcp {
        reply.messages = Messages::Stream(Box::new(stream(segments, TCP_MESSAGE)));
        return reply;
    }
    let mut s = stream(segments, udp_limit(&msg));
    let first = s.next().expect("a stream makes at least one message");
    if s.is_done() && s.failure.is_none() {
        reply.messages = Messages::one(first);
    } else {
        let mut single = stream(vec![Segment::One(served.soa.clone())], udp_limit(&msg));
        reply.messages = Messages::one(single.next().expect("one message"));
        reply.outcome = Outcome::UseTcp {
            from: theirs_of(&reply.outcome),
            serial: served.serial,
        };
    }
    reply
}

fn theirs_of(o: &Outcome) -> u32 {
    match o {
        Outcome::Ixfr { from, .. } | Outcome::IxfrFull { from, .. } => *from,
        Outcome::UpToDate { theirs, .. } => *theirs,
        _ => 0,
    }
}

/// What an IXFR from serial `theirs` sends (RFC 1995 §4).
fn ixfr_plan(served: &Served, theirs: u32) -> (Vec<Segment>, Outcome) {
    let serial = served.serial;
    if !serial_newer(serial, theirs) {
        let single = vec![Segment::One(served.soa.clone())];
        return (single, Outcome::UpToDate { theirs, serial });
    }
    match served.chain_from(theirs) {
        Some(chain) => (
            ixfr_segments(&served.soa, chain),
            Outcome::Ixfr {
                from: theirs,
                to: serial,
                diffs: chain.len(),
            },
        ),
        None => (
            axfr_segments(&served.soa, served.records()),
            Outcome::IxfrFull {
                from: theirs,
                serial,
            },
        ),
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
