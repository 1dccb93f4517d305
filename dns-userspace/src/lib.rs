//! xdpdns: an authoritative DNS server whose hot answers are sent by an XDP program.
//!
//! The library holds everything but the command line, in the order data flows through it:
//! - `wire`: names and records in wire form;
//! - `zonefile`: RFC 1035 zone files into records;
//! - `zone`: records into checked zones, and loading them;
//! - `engine`: the answers (the single source of DNS truth);
//! - `fastpath`: the compiler from zones to XDP map entries, the template cache, promotion and
//!   the loaded program;
//! - `net`: the userspace UDP and TCP service;
//! - `rrl`: response rate limiting (the userspace side; the bucket rule is shared with XDP);
//! - `daemon`: configuration, the running server and its control socket;
//! - `xfr`: the secondary service: zone transfers, NOTIFY, TSIG, refresh timers, storage.
//! - `fuzz_support`: the bodies of the fuzz targets, shared by `fuzz/` and the test suite
//!   (feature `fuzz-support`).

pub mod daemon;
pub mod engine;
pub mod fastpath;
#[cfg(any(test, feature = "fuzz-support"))]
pub mod fuzz_support;
pub mod net;
pub mod rrl;
pub mod wire;
pub mod xfr;
pub mod zone;
pub mod zonefile;
