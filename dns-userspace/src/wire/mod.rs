//! The DNS wire format: domain names (RFC 1035 §3.1, with compression), resource records
//! (type, class, TTL, RDATA, in presentation and wire form) and the structure of each type's
//! RDATA.

pub mod name;
pub mod rdata;
pub mod record;

#[cfg(test)]
mod tests_rdata;
