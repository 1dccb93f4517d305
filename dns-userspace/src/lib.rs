//! xdpdns: an authoritative DNS server whose hot answers are sent by an XDP program.
//!
//! The library holds everything but the command line: names and records, zones, the answer
//! engine (the single source of DNS truth), the compiler from zones to XDP map entries, the XDP
//! loader and the UDP/TCP server.

pub mod compile;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod fastpath;
pub mod frame;
pub mod load;
pub mod name;
pub mod promote;
pub mod record;
pub mod server;
pub mod templates;
pub mod udp;
pub mod xdp;
pub mod zone;
pub mod zonefile;
