//! The `zonefile` target: zone text through the parser and the zone checks; a zone that builds
//! answers queries for every name it holds (checked as in the `engine` target) and compiles to
//! XDP map entries.

use super::engine::{answer_checked, build_zone, engine_of};
use crate::engine::Transport;
use crate::fastpath::compile;
use crate::wire::name::Name;
use crate::wire::record::{class, rtype};
use crate::xfr::message::{opcode, Builder};

/// Names of a built zone that are queried, at most.
const MAX_NAMES: usize = 64;

/// The `zonefile` target: the first line is the origin (`example.` when it is not a name).
pub fn zonefile(data: &[u8]) -> &'static str {
    let (first, text) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let origin = std::str::from_utf8(first)
        .ok()
        .and_then(|o| Name::parse(o.trim(), None).ok())
        .unwrap_or_else(|| Name::parse("example.", None).expect("name"));
    // `$INCLUDE` reads other files (a FIFO or /dev/zero would never end); the directive's
    // parsing is in the parser's unit tests.
    if text.windows(8).any(|w| w.eq_ignore_ascii_case(b"$include")) {
        return "include";
    }
    // Parsing in chunks (as large files are, in parallel) gives what the sequential parser
    // gives: records, locations, warnings and errors.
    for n in [2, 3, 7] {
        if let Some(d) = crate::zonefile::chunks::difference(text, &origin, "fuzz.zone", n) {
            panic!("{d}");
        }
    }
    let zone = match build_zone(&origin, text) {
        Ok(z) => z,
        Err(r) => return r.class(),
    };
    let names: Vec<Name> = zone
        .nodes()
        .take(MAX_NAMES)
        .map(|(n, _)| n.clone())
        .collect();
    let engine = engine_of(vec![zone]);
    for (i, name) in names.iter().enumerate() {
        for (j, qtype) in [rtype::SOA, rtype::A, rtype::NS, rtype::DS, 255]
            .iter()
            .enumerate()
        {
            let b = Builder::new(i as u16, opcode::QUERY, 0).question(name, *qtype, class::IN);
            let (q, t) = match (i + j) % 3 {
                0 => (b.finish(), Transport::Udp),
                1 => (b.opt(&[(3, &[])]).finish(), Transport::Udp),
                _ => (b.finish(), Transport::Tcp),
            };
            answer_checked(&engine, &q, t);
        }
    }
    let zone = engine.catalog.zones().next().expect("one zone");
    let mut entries = compile::Entries::default();
    compile::compile_zone(&engine, zone, 1, &mut entries);
    "built"
}
