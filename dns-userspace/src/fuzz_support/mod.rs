//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` are one-line wrappers over these),
//! so that the libFuzzer runs of `cargo xtask fuzz` and the fixed-length runs of the test suite
//! (`tests/tests/fuzz_engine/targets.rs`) execute the same code.
//!
//! Each body takes arbitrary octets, feeds them to one parser of the server and checks what
//! comes out: it returns the class of outcome (`"refused"`, `"built"`, ...) so that the suite
//! can assert that mutations reach each class, and panics when an invariant breaks (a crash,
//! a response that does not parse, a round trip that changes the data). The inputs:
//!
//! | target | input |
//! |---|---|
//! | `zonefile` | a zone's origin on the first line, then the zone text (parsed, built, answered, compiled) |
//! | `wire` | a query message (`engine::query`) and, read again, a type and RDATA (`wire::rdata`) |
//! | `engine` | one octet (bit 0: TCP) and a query for the built-in zones |
//! | `message` | a message for `xfr::message::parse`, rebuilt and parsed again |
//! | `axfr` | TCP-framed response messages of an AXFR of `example.` |
//! | `ixfr` | TCP-framed response messages of an IXFR of `example.` from the built-in version |
//! | `tsig` | TCP-framed messages: a request, then the messages of its response |
//! | `notify` | a NOTIFY request |

mod engine;
mod wire;
mod xfr;
mod zonefile;

pub use engine::{build_zone, engine, engine_of, Refused, ZONES};
pub use wire::{message, wire};
pub use xfr::{axfr, ixfr, notify, tsig, FUZZ_KEY, FUZZ_NOW};
pub use zonefile::zonefile;

/// A fuzz target's body: input octets to the class of outcome.
pub type Body = fn(&[u8]) -> &'static str;

/// Every target by name, as `cargo xtask fuzz` and the corpus directories name them.
pub const TARGETS: &[(&str, Body)] = &[
    ("zonefile", zonefile),
    ("wire", wire),
    ("engine", engine),
    ("message", message),
    ("axfr", axfr),
    ("ixfr", ixfr),
    ("tsig", tsig),
    ("notify", notify),
];

/// At most this many messages of a framed input are read (a bound on the work per input).
const MAX_FRAMES: usize = 64;

/// Splits a TCP stream into messages (RFC 1035 §4.2.2: two octets of length, then the
/// message). A short last frame is dropped, as a connection closed mid-message would be.
pub fn frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut p = 0;
    while out.len() < MAX_FRAMES && p + 2 <= data.len() {
        let len = usize::from(u16::from_be_bytes([data[p], data[p + 1]]));
        let Some(m) = data.get(p + 2..p + 2 + len) else {
            break;
        };
        out.push(m);
        p += 2 + len;
    }
    out
}

/// The inverse of [`frames`]: messages as they travel over TCP.
pub fn framed<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_drop_a_cut_message() {
        let msgs: [&[u8]; 3] = [b"abc", b"", b"de"];
        let mut wire = framed(msgs);
        assert_eq!(frames(&wire), msgs);
        wire.extend_from_slice(&[0, 9, 1]);
        assert_eq!(frames(&wire), msgs);
    }

    #[test]
    fn every_target_takes_empty_and_random_input() {
        for (name, body) in TARGETS {
            for input in [&b""[..], b"\0", b"\xff\xff\xff", b"example.\n@ SOA"] {
                let class = body(input);
                assert!(!class.is_empty(), "{name}");
            }
        }
    }
}
