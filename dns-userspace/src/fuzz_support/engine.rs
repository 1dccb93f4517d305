//! The `engine` target: queries for the built-in zones (the repository's example zone and its
//! NSEC, NSEC3 and Knot-signed versions, and the test suite's edge-case and all-types zones) answered by the engine, every response read again by
//! the secondary's full message parser and checked against its query. The check is shared
//! with the `zonefile` target.

use std::sync::{Arc, OnceLock};

use crate::engine::query::{self, Parsed};
use crate::engine::{Catalog, Engine, EngineConfig, Transport};
use crate::wire::name::Name;
use crate::xfr::message::{self, FLAG_QR};
use crate::zone::{Zone, ZoneSource};
use crate::zonefile;

/// The zones the engine target answers from: (origin, text); the repository's zone files.
pub const ZONES: &[(&str, &str)] = &[
    ("example.", include_str!("../../../zones/example.zone")),
    (
        "nsec.example.",
        include_str!("../../../zones/signed/nsec.example.zone"),
    ),
    (
        "nsec3.example.",
        include_str!("../../../zones/signed/nsec3.example.zone"),
    ),
    (
        "knot.example.",
        include_str!("../../../zones/signed/knot.example.zone"),
    ),
    (
        "diff.example.",
        include_str!("../../../tests/zones/diff.example.zone"),
    ),
    (
        "types.example.",
        include_str!("../../../tests/zones/types.example.zone"),
    ),
];

/// Why zone text did not make a zone.
#[derive(Debug)]
pub enum Refused {
    /// The zone-file parser refused it.
    Parse,
    /// The zone checks refused it (the message).
    Build(String),
}

impl Refused {
    /// The outcome class of the fuzz targets.
    pub fn class(&self) -> &'static str {
        match self {
            Refused::Parse => "unparsed",
            Refused::Build(_) => "refused",
        }
    }
}

/// Builds a zone from text (`$INCLUDE`s relative to a directory that does not exist); every
/// refusal by the zone checks names its place.
pub fn build_zone(origin: &Name, text: &[u8]) -> Result<Zone, Refused> {
    let parsed = zonefile::parse_bytes(text, origin, "/nonexistent/fuzz.zone")
        .map_err(|_| Refused::Parse)?;
    let src = ZoneSource {
        name: "fuzz.zone",
        locations: parsed.locations.as_ref(),
    };
    match Zone::build(origin.clone(), parsed.records, &src) {
        Ok((z, _)) => Ok(z),
        Err(e) => {
            assert!(
                e.location.contains("fuzz.zone"),
                "error without its place: {e}"
            );
            Err(Refused::Build(e.message))
        }
    }
}

/// An engine over these zones, with NSID and an identity (no version).
pub fn engine_of(zones: Vec<Zone>) -> Engine {
    let mut c = Catalog::new();
    for z in zones {
        c.insert(Arc::new(z));
    }
    let config = EngineConfig {
        nsid: Some(b"fuzz".to_vec()),
        identity: Some("fuzz".into()),
        ..Default::default()
    };
    Engine::new(c, config)
}

fn builtin() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let zones = ZONES
            .iter()
            .map(|(o, t)| {
                let origin = Name::parse(o, None).expect("origin");
                build_zone(&origin, t.as_bytes()).unwrap_or_else(|e| panic!("{o}: {e:?}"))
            })
            .collect();
        engine_of(zones)
    })
}

/// Answers `query` and checks the response: it parses, is a response with the query's ID and
/// opcode, echoes the question when the query had one that could be read, and over UDP fits
/// in the size the query allows (512 without EDNS, at most the server's 1232). Returns the
/// outcome class: `"dropped"` (no answer), or the response's RCODE class.
pub(super) fn answer_checked(engine: &Engine, q: &[u8], t: Transport) -> &'static str {
    let parsed = query::parse(q);
    let Some(resp) = engine.answer(q, t) else {
        assert!(
            matches!(parsed, Parsed::Drop),
            "no answer to a query the parser took: {q:02x?}"
        );
        return "dropped";
    };
    assert!(
        !matches!(parsed, Parsed::Drop),
        "an answer to a message the parser drops: {q:02x?}"
    );
    let m = message::parse(&resp)
        .unwrap_or_else(|e| panic!("unparsable response ({e}) to {q:02x?}: {resp:02x?}"));
    assert_eq!(resp[..2], q[..2], "response ID differs");
    assert!(m.flags & FLAG_QR != 0, "QR not set");
    assert_eq!(resp[2] & 0x78, q[2] & 0x78, "opcode not echoed");
    let (question, limit) = match &parsed {
        Parsed::Query(p) => (Some(p.question), p.edns.as_ref().map(|e| e.payload)),
        Parsed::Error { question, edns, .. } => (*question, edns.as_ref().map(|e| e.payload)),
        Parsed::Drop => unreachable!("answered"),
    };
    if let (Some(qb), [mq]) = (question, m.questions.as_slice()) {
        let n = mq.name.wire().len();
        assert!(
            qb.len() == n + 4 && mq.name == Name::from_wire(&qb[..n]).expect("question name"),
            "question not echoed"
        );
    }
    if t == Transport::Udp {
        let limit = usize::from(limit.unwrap_or(512).clamp(512, 1232));
        assert!(
            resp.len() <= limit,
            "UDP response of {} octets > {limit}",
            resp.len()
        );
    }
    match m.rcode() {
        0 => "noerror",
        3 => "nxdomain",
        1 => "formerr",
        _ => "other_rcode",
    }
}

/// The `engine` target.
pub fn engine(data: &[u8]) -> &'static str {
    let Some((&sel, q)) = data.split_first() else {
        return "empty";
    };
    let t = if sel & 1 == 1 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    answer_checked(builtin(), q, t)
}
