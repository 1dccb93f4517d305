//! The DNS wire format: domain names (RFC 1035 §3.1, with compression) and resource records
//! (type, class, TTL, RDATA, in presentation and wire form).

pub mod name;
pub mod record;
