//! The secondary service's library: zone transfers from a primary and what surrounds them.
//! - `message`: parsing responses and building requests;
//! - `tsig`: transaction signatures (RFC 8945);

pub mod message;
pub mod tsig;
