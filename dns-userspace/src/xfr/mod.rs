//! The secondary service's library: zone transfers from a primary and what surrounds them.
//! - `message`: parsing responses and building requests and responses;
//! - `tsig`, `tsig_key`: transaction signatures (RFC 8945) and their keys;
//! - `soa`: SOA fields and serial arithmetic (RFC 1982);
//! - `axfr`, `ixfr`: reading transfer responses (RFC 5936, RFC 1995) and applying diffs;
//! - `tcp`, `client`: the exchanges with a primary (SOA query, AXFR, IXFR with fallback);
//! - `notify`, `notify_out`: NOTIFY in and out (RFC 1996), and to every downstream at once;
//! - `outbound`, `response`, `acl`: serving AXFR and IXFR to downstream secondaries, the
//!   response messages, and who may transfer; `signed_query`: TSIG on ordinary queries
//!   (downstreams' SOA checks);
//! - `journal`: the diffs between versions, kept on disk for IXFR;
//! - `store`: every version and the timers on disk, sealed and written atomically;
//! - `timers`: refresh, retry and expire, with an injectable clock;
//! - `secondary`: one secondary zone, tying the above together;
//! - `error`: what a failed exchange reports.

pub mod acl;
pub mod axfr;
pub mod client;
pub mod error;
pub mod ixfr;
pub mod journal;
pub mod message;
pub mod notify;
pub mod notify_out;
pub mod outbound;
pub mod response;
pub mod secondary;
pub mod signed_query;
pub mod soa;
pub mod store;
pub mod tcp;
pub mod timers;
pub mod tsig;
pub mod tsig_key;
