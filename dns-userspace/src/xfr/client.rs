//! The secondary's side of an exchange with its primary, over TCP and signed with TSIG when a
//! key is configured: the SOA query of a refresh check, AXFR, IXFR (falling back to AXFR when
//! the primary cannot give a diff), each asking for EDNS EXPIRE (RFC 7314).
//!
//! Every response message is checked before its records are used: ID, QR, opcode, TC, the
//! question, the RCODE and the TSIG (every signed message verified, the last one signed).
//! Nothing is returned until the whole response has been read and checked, so a failed
//! transfer changes nothing.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::axfr::{is_apex_soa, AxfrReader, Limits};
use super::error::{Exchange, Kind, XfrError};
use super::ixfr::{apply, Ixfr, IxfrReader};
use super::message::{self, rcode, Message, FLAG_QR, FLAG_TC};
use super::soa::{serial_newer, Soa};
use super::tcp::{Connection, Timeouts};
use super::tsig::{self, Key, ResponseVerifier};
use crate::wire::name::Name;
use crate::wire::record::{class, rtype, Record};

/// A primary to transfer zones from.
#[derive(Clone, Debug)]
pub struct Primary {
    pub addr: SocketAddr,
    /// Signs every request and requires every response signed.
    pub key: Option<Key>,
    pub timeouts: Timeouts,
    pub limits: Limits,
}

/// The primary's SOA, from a refresh check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaAnswer {
    pub soa: Record,
    pub serial: u32,
    /// EDNS EXPIRE (RFC 7314), when the primary sent it.
    pub expire: Option<u32>,
}

/// How a new version of the zone arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Axfr,
    /// IXFR diffs applied to our copy.
    Ixfr {
        diffs: usize,
    },
    /// An AXFR-style reply to our IXFR request.
    IxfrFull,
    /// An AXFR after an IXFR that could not be used, and why.
    AxfrAfterIxfr(String),
}

/// The outcome of a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Our copy is current (the primary's serial is not newer).
    UpToDate { serial: u32, expire: Option<u32> },
    /// A new version: all its records, SOA first.
    Updated {
        records: Vec<Record>,
        serial: u32,
        method: Method,
        expire: Option<u32>,
    },
}

/// What a transfer brought, before it is applied to anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Our copy is current.
    UpToDate { serial: u32, expire: Option<u32> },
    /// A whole version (AXFR, or an IXFR answered AXFR-style), SOA first.
    Whole {
        records: Vec<Record>,
        method: Method,
        expire: Option<u32>,
    },
    /// IXFR diff sequences from our serial to the primary's, oldest first.
    Diffs {
        diffs: Vec<super::ixfr::Diff>,
        expire: Option<u32>,
    },
}

/// Seconds since the epoch, for TSIG.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random message ID (RFC 5452 §9.2).
pub fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: getrandom(2) writes at most the given length into the buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 2 {
        // Never fails for two octets once the pool is initialised; fall back on the clock.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return t.subsec_nanos() as u16;
    }
    u16::from_ne_bytes(b)
}

/// The SOA serial of a record set (its apex SOA).
fn serial_of<'a>(records: &'a [Record], apex: &Name) -> Option<(u32, &'a Record)> {
    let soa = records.iter().find(|r| is_apex_soa(r, apex))?;
    Some((Soa::from_record(soa)?.serial, soa))
}

impl Primary {
    pub fn new(addr: SocketAddr, key: Option<Key>) -> Primary {
        Primary {
            addr,
            key,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
        }
    }

    fn error(&self, exchange: Exchange, zone: &Name, kind: Kind) -> XfrError {
        XfrError {
            exchange,
            zone: zone.clone(),
            peer: self.addr,
            kind,
        }
    }

    /// Sends `query` for `zone` and hands every checked response message to `each` until it
    /// returns `true`. Returns the EDNS EXPIRE of the first message.
    fn exchange(
        &self,
        exchange: Exchange,
        zone: &Name,
        qtype: u16,
        authority: Option<&Record>,
        mut each: impl FnMut(Message<'_>) -> Result<bool, Kind>,
    ) -> Result<Option<u32>, XfrError> {
        self.run(zone, qtype, authority, &mut each)
            .map_err(|k| self.error(exchange, zone, k))
    }

    fn run(
        &self,
        zone: &Name,
        qtype: u16,
        authority: Option<&Record>,
        each: &mut dyn FnMut(Message<'_>) -> Result<bool, Kind>,
    ) -> Result<Option<u32>, Kind> {
        let id = random_id();
        let mut query = message::query(id, zone, qtype, authority);
        let mut verifier = self.key.as_ref().map(|k| {
            let mac = tsig::sign_request(&mut query, k, unix_now());
            ResponseVerifier::new(k, &mac)
        });
        let mut conn = Connection::open(self.addr, &self.timeouts)?;
        conn.send(&query)?;
        let mut expire = None;
        for n in 0usize.. {
            let Some(wire) = conn.recv()? else {
                return Err(Kind::Protocol(format!(
                    "the primary closed the connection after {n} messages, before the end of the response"
                )));
            };
            let msg = message::parse(&wire)?;
            check_header(&msg, id, zone, qtype)?;
            if let Some(v) = verifier.as_mut() {
                if let Err(e) = v.verify(&msg, unix_now()) {
                    // An unsigned error answer says more than "unsigned".
                    if msg.tsig.is_none() && msg.rcode() != rcode::NOERROR {
                        return Err(Kind::Rcode(msg.rcode()));
                    }
                    return Err(e.into());
                }
            }
            if msg.rcode() != rcode::NOERROR {
                return Err(Kind::Rcode(msg.rcode()));
            }
            if n == 0 {
                expire = msg.opt.as_ref().and_then(message::Opt::expire);
            }
            if each(msg)? {
                if let Some(v) = &verifier {
                    v.finish()?;
                }
                return Ok(expire);
            }
        }
        unreachable!("the loop returns")
    }

    /// The primary's SOA for `zone` (the refresh check of RFC 1034 §4.3.5).
    pub fn soa(&self, zone: &Name) -> Result<SoaAnswer, XfrError> {
        let mut found = None;
        let expire = self.exchange(Exchange::SoaQuery, zone, rtype::SOA, None, |msg| {
            if msg.flags & message::FLAG_AA == 0 {
                return Err(Kind::Protocol("the answer is not authoritative".into()));
            }
            found = msg.answers.into_iter().find(|r| is_apex_soa(r, zone));
            Ok(true)
        })?;
        let soa = found.ok_or_else(|| {
            self.error(
                Exchange::SoaQuery,
                zone,
                Kind::Protocol("the answer holds no SOA for the zone".into()),
            )
        })?;
        let serial = Soa::from_record(&soa).map(|s| s.serial).ok_or_else(|| {
            self.error(
                Exchange::SoaQuery,
                zone,
                Kind::Protocol("malformed SOA".into()),
            )
        })?;
        Ok(SoaAnswer {
            soa,
            serial,
            expire,
        })
    }

    /// The whole zone by AXFR: its records, SOA first, and the EDNS EXPIRE value.
    pub fn axfr(&self, zone: &Name) -> Result<(Vec<Record>, Option<u32>), XfrError> {
        let mut reader = AxfrReader::new(zone.clone(), self.limits);
        let expire = self.exchange(Exchange::Axfr, zone, rtype::AXFR, None, |msg| {
            reader.push(msg.answers)
        })?;
        let records = reader
            .finish()
            .map_err(|k| self.error(Exchange::Axfr, zone, k))?;
        Ok((records, expire))
    }

    /// An IXFR from the version whose SOA is `ours`.
    pub fn ixfr(&self, zone: &Name, ours: &Record) -> Result<(Ixfr, Option<u32>), XfrError> {
        let serial = Soa::from_record(ours).map_or(0, |s| s.serial);
        let mut reader = IxfrReader::new(zone.clone(), serial, self.limits);
        let expire = self.exchange(Exchange::Ixfr, zone, rtype::IXFR, Some(ours), |msg| {
            reader.push(msg.answers)
        })?;
        let ixfr = reader
            .finish()
            .map_err(|k| self.error(Exchange::Ixfr, zone, k))?;
        Ok((ixfr, expire))
    }

    /// A refresh: the SOA query, and when the primary's serial is newer than ours (or we have
    /// no copy), a transfer. Diffs are applied to `current` (see `fetch` for the diffs alone).
    pub fn refresh(&self, zone: &Name, current: Option<&[Record]>) -> Result<Refresh, XfrError> {
        let ours = current.and_then(|c| serial_of(c, zone)).map(|(_, soa)| soa);
        let fetched = self.fetch(zone, ours)?;
        self.applied(zone, current, fetched)
    }

    /// A transfer without the SOA query: IXFR from our copy when we have one (AXFR when the
    /// IXFR cannot be used), AXFR otherwise.
    pub fn transfer(&self, zone: &Name, current: Option<&[Record]>) -> Result<Refresh, XfrError> {
        let ours = current.and_then(|c| serial_of(c, zone)).map(|(_, soa)| soa);
        let fetched = self.fetch_transfer(zone, ours)?;
        self.applied(zone, current, fetched)
    }

    /// `Fetched` as a whole version: diffs applied to `current`, AXFR when they do not apply.
    fn applied(
        &self,
        zone: &Name,
        current: Option<&[Record]>,
        fetched: Fetched,
    ) -> Result<Refresh, XfrError> {
        match fetched {
            Fetched::UpToDate { serial, expire } => Ok(Refresh::UpToDate { serial, expire }),
            Fetched::Whole {
                records,
                method,
                expire,
            } => Ok(updated(records, zone, method, expire)),
            Fetched::Diffs { diffs, expire } => match apply(current.unwrap_or_default(), &diffs) {
                Ok(records) => {
                    let method = Method::Ixfr { diffs: diffs.len() };
                    Ok(updated(records, zone, method, expire))
                }
                Err(kind) => {
                    let why = self.error(Exchange::Ixfr, zone, kind).to_string();
                    let (records, expire) = self.axfr(zone)?;
                    Ok(updated(records, zone, Method::AxfrAfterIxfr(why), expire))
                }
            },
        }
    }

    /// A refresh that leaves the diffs to the caller: the SOA query, and when the primary's
    /// serial is newer than that of `ours` (our SOA; none: no copy), a transfer.
    pub fn fetch(&self, zone: &Name, ours: Option<&Record>) -> Result<Fetched, XfrError> {
        let answer = self.soa(zone)?;
        if let Some(ours) = ours.and_then(Soa::from_record).map(|s| s.serial) {
            if !serial_newer(answer.serial, ours) {
                return Ok(Fetched::UpToDate {
                    serial: ours,
                    expire: answer.expire,
                });
            }
        }
        self.fetch_transfer(zone, ours)
    }

    /// `fetch` without the SOA query: IXFR from `ours` when given (AXFR when the IXFR cannot
    /// be used), AXFR otherwise.
    pub fn fetch_transfer(&self, zone: &Name, ours: Option<&Record>) -> Result<Fetched, XfrError> {
        let mut reason = None;
        if let Some((serial, soa)) = ours.and_then(|r| Some((Soa::from_record(r)?.serial, r))) {
            match self.ixfr(zone, soa) {
                Ok((Ixfr::UpToDate(_), expire)) => return Ok(Fetched::UpToDate { serial, expire }),
                Ok((Ixfr::Full(records), expire)) => {
                    return Ok(Fetched::Whole {
                        records,
                        method: Method::IxfrFull,
                        expire,
                    })
                }
                Ok((Ixfr::Diffs(diffs), expire)) => return Ok(Fetched::Diffs { diffs, expire }),
                Err(e) if e.calls_for_axfr() => reason = Some(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        let (records, expire) = self.axfr(zone)?;
        let method = reason.map_or(Method::Axfr, Method::AxfrAfterIxfr);
        Ok(Fetched::Whole {
            records,
            method,
            expire,
        })
    }
}

fn updated(records: Vec<Record>, zone: &Name, method: Method, expire: Option<u32>) -> Refresh {
    let serial = serial_of(&records, zone).map_or(0, |(s, _)| s);
    Refresh::Updated {
        records,
        serial,
        method,
        expire,
    }
}

/// Checks a response message's header and question against the query.
fn check_header(msg: &Message<'_>, id: u16, zone: &Name, qtype: u16) -> Result<(), Kind> {
    if msg.id != id {
        return Err(Kind::Protocol(format!(
            "response ID {} does not match query ID {id}",
            msg.id
        )));
    }
    if msg.flags & FLAG_QR == 0 || msg.opcode() != message::opcode::QUERY {
        return Err(Kind::Protocol("not a response to a query".into()));
    }
    if msg.flags & FLAG_TC != 0 {
        return Err(Kind::Protocol("truncated (TC) response over TCP".into()));
    }
    match msg.questions.as_slice() {
        [] => Ok(()),
        [q] if q.name == *zone && q.qtype == qtype && q.qclass == class::IN => Ok(()),
        [q] => Err(Kind::Protocol(format!(
            "the response is for {} {}, not {zone} {}",
            q.name,
            rtype::to_string(q.qtype),
            rtype::to_string(qtype)
        ))),
        _ => Err(Kind::Protocol("more than one question".into())),
    }
}
