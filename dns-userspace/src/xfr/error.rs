//! Why an exchange with a primary failed: every error names the exchange, the zone and the
//! primary, and says what was wrong. A failed exchange never changes the zone.

use std::net::SocketAddr;

use thiserror::Error;

use super::message::{rcode, MessageError};
use super::tsig::TsigError;
use crate::wire::name::Name;

/// Which exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    SoaQuery,
    Axfr,
    Ixfr,
    Notify,
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exchange::SoaQuery => "SOA query",
            Exchange::Axfr => "AXFR",
            Exchange::Ixfr => "IXFR",
            Exchange::Notify => "NOTIFY",
        })
    }
}

/// What went wrong.
#[derive(Debug, Error)]
pub enum Kind {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no {what} within {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("the server answered {}", rcode::to_string(*.0))]
    Rcode(u16),
    #[error(transparent)]
    Tsig(#[from] TsigError),
    #[error(transparent)]
    Malformed(#[from] MessageError),
    /// The response breaks the protocol (RFC 1995, RFC 5936).
    #[error("{0}")]
    Protocol(String),
    /// A configured bound was reached.
    #[error("{0}")]
    Limit(String),
    /// The IXFR diffs do not apply to our copy of the zone.
    #[error("{0}")]
    Diff(String),
    /// The IXFR response holds no diff (a single SOA newer than ours).
    #[error("the primary sent no diff from serial {ours} to {theirs}")]
    NoDiff { ours: u32, theirs: u32 },
}

/// A failed exchange with a primary.
#[derive(Debug, Error)]
#[error("{exchange} of {zone} with {peer}: {kind}")]
pub struct XfrError {
    pub exchange: Exchange,
    pub zone: Name,
    /// The primary (or, for an outgoing NOTIFY, the secondary).
    pub peer: SocketAddr,
    pub kind: Kind,
}

impl XfrError {
    /// Whether an IXFR failing so is worth an AXFR (RFC 1995 §4: a primary without IXFR
    /// answers NOTIMP, REFUSED or FORMERR; a missing or inconsistent diff also calls for one).
    pub fn calls_for_axfr(&self) -> bool {
        match &self.kind {
            Kind::Rcode(r) => matches!(*r, rcode::NOTIMP | rcode::REFUSED | rcode::FORMERR),
            Kind::NoDiff { .. } | Kind::Diff(_) => true,
            _ => false,
        }
    }
}
