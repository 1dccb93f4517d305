//! Unit tests of the engine, one or more per rule, on small zones given as text.

use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::*;
use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::zone::{Zone, ZoneError, ZoneSource};

const ZONE: &str = r#"
$ORIGIN example.
$TTL 3600
@ SOA ns1 host 1 7200 3600 1209600 300
@ NS ns1
@ NS ns2.other.test.
@ MX 10 mail
ns1 A 198.18.0.1
mail A 198.18.0.25
www A 198.18.0.80
www AAAA fd00::80
alias CNAME www
loop1 CNAME loop2
loop2 CNAME loop1
out CNAME www.other.test.
a.b.ent TXT "deep"
*.wild A 198.18.0.99
*.wild TXT "wild"
sub DNAME other.example.
x.other A 198.18.0.5
shop NS ns1.shop
shop NS ns.sibling
shop DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns1.shop A 198.18.1.1
sibling A 198.18.1.9
ns.sibling A 198.18.1.8
big TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big TXT "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big TXT "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big TXT "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big TXT "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

type Build = fn(Name, Vec<Record>, &ZoneSource<'_>) -> Result<(Zone, Vec<String>), ZoneError>;

fn zone_with(build: Build, text: &str, origin: &str) -> Zone {
    let origin = Name::parse(origin, None).unwrap();
    let parsed = crate::zonefile::parse_str(text, &origin, "test.zone").unwrap();
    let src = ZoneSource {
        name: "test.zone",
        locations: parsed.locations.as_ref(),
    };
    build(origin, parsed.records, &src).unwrap().0
}

/// A zone from zone file text (also for other modules' tests).
pub(crate) fn zone_from(text: &str, origin: &str) -> Zone {
    zone_with(Zone::build, text, origin)
}

fn engine_with(zones: Vec<Zone>) -> Engine {
    let mut c = Catalog::new();
    for z in zones {
        c.insert(Arc::new(z));
    }
    Engine::new(
        c,
        EngineConfig {
            identity: Some("node-1".into()),
            nsid: Some(b"nsid-1".to_vec()),
            ..Default::default()
        },
    )
}

fn engine() -> Engine {
    engine_with(vec![zone_from(ZONE, "example.")])
}

fn signed(file: &str, origin: &str) -> Engine {
    let path = format!("{}/../zones/signed/{file}", env!("CARGO_MANIFEST_DIR"));
    let origin = Name::parse(origin, None).unwrap();
    let (zone, _) =
        crate::zone::load::load_zone_file(std::path::Path::new(&path), &origin).unwrap();
    engine_with(vec![zone])
}

/// A query: name, type, flags word, EDNS (payload, DO).
fn query(name: &str, qtype: u16, flags: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, edns.is_some() as u8]);
    m.extend_from_slice(Name::parse(name, None).unwrap().wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some((p, d)) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&p.to_be_bytes());
        m.extend_from_slice(&[0, 0, if d { 0x80 } else { 0 }, 0, 0, 0]);
    }
    m
}

fn ask(e: &Engine, name: &str, qtype: u16) -> Message {
    ask_with(e, name, qtype, Some((1232, false)), Transport::Udp)
}

fn ask_with(
    e: &Engine,
    name: &str,
    qtype: u16,
    edns: Option<(u16, bool)>,
    t: Transport,
) -> Message {
    let r = e.answer(&query(name, qtype, 0x0100, edns), t).unwrap();
    Message::from_vec(&r).unwrap()
}

fn types(rs: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
    rs.iter().map(|r| r.record_type()).collect()
}

#[test]
fn exact_answer_echoes_question_id_and_rd() {
    let e = engine();
    let raw = e
        .answer(&query("WwW.Example.", 1, 0x0110, None), Transport::Udp)
        .unwrap();
    assert_eq!(&raw[..2], &[0xab, 0xcd]);
    let m = Message::from_vec(&raw).unwrap();
    assert!(
        m.metadata.authoritative && m.metadata.recursion_desired && m.metadata.checking_disabled
    );
    assert!(!m.metadata.recursion_available);
    assert_eq!(m.queries[0].name().to_string(), "WwW.Example.");
    assert_eq!(types(&m.answers), [RecordType::A]);
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let e = engine();
    let m = ask(&e, "nope.example.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    assert_eq!(m.authorities[0].ttl, 300);
    let m = ask(&e, "www.example.", 16);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
    // Empty non-terminals exist: NODATA, not NXDOMAIN.
    let m = ask(&e, "b.ent.example.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[test]
fn cname_chains_are_followed_in_zone_and_loops_stop() {
    let e = engine();
    let m = ask(&e, "alias.example.", 1);
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::A]);
    let m = ask(&e, "loop1.example.", 1);
    assert_eq!(types(&m.answers), [RecordType::CNAME, RecordType::CNAME]);
    let m = ask(&e, "out.example.", 1);
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
    let m = ask(&e, "alias.example.", 5);
    assert_eq!(types(&m.answers), [RecordType::CNAME]);
}

#[test]
fn wildcards_synthesise_and_nodata_at_wildcard() {
    let e = engine();
    let m = ask(&e, "Foo.Wild.example.", 1);
    assert_eq!(types(&m.answers), [RecordType::A]);
    assert_eq!(m.answers[0].name.to_string(), "Foo.Wild.example.");
    let m = ask(&e, "foo.wild.example.", 28);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::SOA]);
}

#[test]
fn dname_is_synthesised_with_its_cname() {
    let e = engine();
    let m = ask(&e, "x.sub.example.", 1);
    assert_eq!(
        types(&m.answers),
        [RecordType::DNAME, RecordType::CNAME, RecordType::A]
    );
    assert_eq!(m.answers[1].ttl, 3600);
}

#[test]
fn referrals_are_not_authoritative_and_carry_glue() {
    let e = engine();
    let m = ask(&e, "www.shop.example.", 1);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(types(&m.authorities), [RecordType::NS, RecordType::NS]);
    let glue: Vec<String> = m.additionals.iter().map(|r| r.name.to_string()).collect();
    assert!(glue.contains(&"ns1.shop.example.".to_string()));
    assert!(glue.contains(&"ns.sibling.example.".to_string()));
    // DS is answered from the parent side of the cut.
    let m = ask(&e, "shop.example.", 43);
    assert!(m.metadata.authoritative);
    assert_eq!(types(&m.answers), [RecordType::DS]);
}

#[test]
fn names_outside_our_zones_are_refused() {
    let e = engine();
    let m = ask(&e, "example.org.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative && !m.metadata.recursion_available);
}

#[test]
fn header_rules() {
    let e = engine();
    // QR=1: dropped.
    assert!(e
        .answer(&query("www.example.", 1, 0x8000, None), Transport::Udp)
        .is_none());
    // Opcode NOTIFY (4): NOTIMP.
    let r = e
        .answer(&query("www.example.", 1, 4 << 11, None), Transport::Udp)
        .unwrap();
    assert_eq!(
        Message::from_vec(&r).unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
    // QDCOUNT 2 and 0: FORMERR.
    let mut q = query("www.example.", 1, 0, None);
    q[5] = 2;
    let r = e.answer(&q, Transport::Udp).unwrap();
    assert_eq!(r[3] & 0xf, 1);
    q[5] = 0;
    let r = e.answer(&q, Transport::Udp).unwrap();
    assert_eq!(r[3] & 0xf, 1);
    // Two OPT records: FORMERR.
    let mut q = query("www.example.", 1, 0, Some((1232, false)));
    q[11] = 2;
    q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    let r = e.answer(&q, Transport::Udp).unwrap();
    assert_eq!(r[3] & 0xf, 1);
    // EDNS version 1: BADVERS (extended RCODE 16).
    let mut q = query("www.example.", 1, 0, Some((1232, false)));
    let n = q.len();
    q[n - 5] = 1;
    let m = Message::from_vec(&e.answer(&q, Transport::Udp).unwrap()).unwrap();
    // hickory names extended RCODE 16 BADSIG as well as BADVERS.
    assert_eq!(u16::from(m.metadata.response_code), 16);
}

#[test]
fn chaos_identity_and_hidden_version() {
    let e = engine();
    let mut q = query("id.server.", 16, 0, None);
    let n = q.len();
    q[n - 1] = 3;
    let m = Message::from_vec(&e.answer(&q, Transport::Udp).unwrap()).unwrap();
    assert_eq!(types(&m.answers), [RecordType::TXT]);
    let mut q = query("version.bind.", 16, 0, None);
    let n = q.len();
    q[n - 1] = 3;
    let m = Message::from_vec(&e.answer(&q, Transport::Udp).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn udp_size_limits_truncate_whole_rrsets() {
    let e = engine();
    let m = ask_with(&e, "big.example.", 16, None, Transport::Udp);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let raw = e
        .answer(&query("big.example.", 16, 0, None), Transport::Udp)
        .unwrap();
    assert!(raw.len() <= 512);
    let m = ask_with(&e, "big.example.", 16, Some((1232, false)), Transport::Udp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 5);
    let m = ask_with(&e, "big.example.", 16, None, Transport::Tcp);
    assert!(!m.metadata.truncation && m.answers.len() == 5);
}

#[test]
fn any_is_minimal_over_udp() {
    let e = engine();
    let m = ask(&e, "www.example.", 255);
    assert_eq!(m.answers.len(), 1);
    let m = ask_with(&e, "www.example.", 255, None, Transport::Tcp);
    assert_eq!(types(&m.answers), [RecordType::A, RecordType::AAAA]);
}

#[test]
fn nsid_is_sent_only_when_asked() {
    let e = engine();
    let mut q = query("www.example.", 1, 0, Some((1232, false)));
    let n = q.len();
    q[n - 1] = 4;
    q.extend_from_slice(&[0, 3, 0, 0]);
    let r = e.answer(&q, Transport::Udp).unwrap();
    assert!(r.windows(6).any(|w| w == b"nsid-1"));
    let r = e
        .answer(
            &query("www.example.", 1, 0, Some((1232, false))),
            Transport::Udp,
        )
        .unwrap();
    assert!(!r.windows(6).any(|w| w == b"nsid-1"));
}

#[test]
fn dnssec_records_only_with_do() {
    let e = signed("nsec.example.zone", "nsec.example.");
    let m = ask_with(&e, "nsec.example.", 6, Some((1232, true)), Transport::Udp);
    assert_eq!(types(&m.answers), [RecordType::SOA, RecordType::RRSIG]);
    let m = ask(&e, "nsec.example.", 6);
    assert_eq!(types(&m.answers), [RecordType::SOA]);
    let m = ask_with(
        &e,
        "nope.nsec.example.",
        1,
        Some((1232, true)),
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let t = types(&m.authorities);
    assert!(
        t.contains(&RecordType::NSEC) && t.contains(&RecordType::RRSIG),
        "{t:?}"
    );
}

#[test]
fn nsec3_hash_matches_rfc5155_appendix_a() {
    let h = crate::zone::nsec3::hash(
        &Name::parse("example.", None).unwrap(),
        12,
        &[0xaa, 0xbb, 0xcc, 0xdd],
    );
    assert_eq!(
        data_encoding::BASE32HEX_NOPAD
            .encode(&h)
            .to_ascii_lowercase(),
        "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
    );
}

#[test]
fn nsec3_nxdomain_has_the_closest_encloser_proof() {
    let e = signed("nsec3.example.zone", "nsec3.example.");
    let m = ask_with(
        &e,
        "a.b.nope.nsec3.example.",
        1,
        Some((1232, true)),
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let n3 = m
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC3)
        .count();
    assert!((2..=3).contains(&n3), "{:?}", types(&m.authorities));
    // NSEC3 owner names are not names in the zone.
    let owner = m
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NSEC3)
        .unwrap()
        .name
        .to_string();
    let m = ask(&e, &owner, 50);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// Offsets in `body` of the compression pointers in owner names and in the RDATA names that
/// may be compressed (NS, CNAME, PTR, MX, SOA), found by walking its `count` records.
fn walk_pointers(body: &[u8], count: usize) -> Vec<usize> {
    let mut ptrs = Vec::new();
    let mut name_at = |mut p: usize| loop {
        match body[p] {
            0 => return p + 1,
            l if l & 0xc0 == 0xc0 => {
                ptrs.push(p);
                return p + 2;
            }
            l => p += l as usize + 1,
        }
    };
    let mut pos = 0;
    for _ in 0..count {
        pos = name_at(pos);
        let t = u16::from_be_bytes([body[pos], body[pos + 1]]);
        let rdlen = u16::from_be_bytes([body[pos + 8], body[pos + 9]]) as usize;
        let rdata = pos + 10;
        match t {
            2 | 5 | 12 => {
                name_at(rdata);
            }
            15 => {
                name_at(rdata + 2);
            }
            6 => {
                let next = name_at(rdata);
                name_at(next);
            }
            _ => {}
        }
        pos = rdata + rdlen;
    }
    assert_eq!(pos, body.len(), "the counts cover the body");
    ptrs
}

/// Mail exchangers whose addresses (additional data, not required) fill more than 512 octets.
const MANY_MX: &str = r#"
$ORIGIN example.
$TTL 3600
@ SOA ns1 host 1 7200 3600 1209600 300
@ NS ns1
ns1 A 198.18.0.1
@ MX 10 exchanger-number-0
@ MX 10 exchanger-number-1
@ MX 10 exchanger-number-2
@ MX 10 exchanger-number-3
@ MX 10 exchanger-number-4
@ MX 10 exchanger-number-5
@ MX 10 exchanger-number-6
@ MX 10 exchanger-number-7
exchanger-number-0 A 198.18.0.10
exchanger-number-1 A 198.18.0.11
exchanger-number-2 A 198.18.0.12
exchanger-number-3 A 198.18.0.13
exchanger-number-4 A 198.18.0.14
exchanger-number-5 A 198.18.0.15
exchanger-number-6 A 198.18.0.16
exchanger-number-7 A 198.18.0.17
exchanger-number-0 AAAA fd00::10
exchanger-number-1 AAAA fd00::11
exchanger-number-2 AAAA fd00::12
exchanger-number-3 AAAA fd00::13
exchanger-number-4 AAAA fd00::14
exchanger-number-5 AAAA fd00::15
exchanger-number-6 AAAA fd00::16
exchanger-number-7 AAAA fd00::17
"#;

#[test]
fn structured_responses_render_to_exactly_the_answer_bytes() {
    let engines = [
        engine(),
        signed("nsec.example.zone", "nsec.example."),
        signed("nsec3.example.zone", "nsec3.example."),
    ];
    let names = [
        "example.",
        "WWW.example.",
        "alias.example.",
        "x.wild.example.",
        "a.sub.example.",
        "www.shop.example.",
        "big.example.",
        "nope.example.",
        "nsec.example.",
        "www.nsec.example.",
        "x.mail.nsec.example.",
        "www.secure.nsec3.example.",
        "nope.nsec3.example.",
        "other.test.",
    ];
    let mut checked = 0;
    for e in &engines {
        for name in names {
            for qtype in [1, 2, 6, 15, 16, 28, 43, 46, 255, 252, 65280] {
                for edns in [
                    None,
                    Some((512, false)),
                    Some((1232, true)),
                    Some((4096, true)),
                ] {
                    for t in [Transport::Udp, Transport::Tcp] {
                        let q = query(name, qtype, 0x0100, edns);
                        let r = e.respond(&q, t).unwrap();
                        let m = &r.message;
                        assert_eq!(m.render(), e.answer(&q, t).unwrap(), "{name} {qtype}");
                        assert_eq!(m.render(), m.bytes());
                        assert_eq!(m.question(), &q[12..12 + m.question().len()]);
                        assert_eq!(m.opt().is_some(), edns.is_some(), "{name} {qtype}");
                        let [an, ns, ar] = m.counts();
                        let walked = walk_pointers(m.body(), (an + ns + ar) as usize);
                        assert_eq!(m.pointers().collect::<Vec<_>>(), walked, "{name} {qtype}");
                        if m.flags() & FLAG_TC != 0 {
                            assert!(!m.complete(), "{name} {qtype}: TC means incomplete");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 14 * 11 * 4 * 2);
}

#[test]
fn responses_that_leave_out_optional_records_are_incomplete() {
    let e = engine_with(vec![zone_from(MANY_MX, "example.")]);
    let q = |edns| query("example.", 15, 0, edns);
    let small = e.respond(&q(None), Transport::Udp).unwrap().message;
    let m = Message::from_vec(small.bytes()).unwrap();
    assert!(!m.metadata.truncation && m.answers.len() == 8);
    assert!(m.additionals.len() < 16, "some addresses left out");
    assert!(!small.complete());
    let large = e
        .respond(&q(Some((4096, false))), Transport::Udp)
        .unwrap()
        .message;
    let m = Message::from_vec(large.bytes()).unwrap();
    assert_eq!(m.additionals.len(), 16);
    assert!(large.complete());
    // The big TXT set: truncated at 512, whole at 1232.
    let big = |edns| {
        let q = query("big.example.", 16, 0, edns);
        engine().respond(&q, Transport::Udp).unwrap().message
    };
    assert!(!big(None).complete());
    assert!(big(Some((1232, false))).complete());
}

#[test]
fn a_zone_whose_soa_cannot_be_read_gets_servfail_not_a_panic() {
    // Malformed SOA RDATA (refused by `Zone::build`): the first NXDOMAIN used to panic.
    let short = format!("\\# 21 {}", "00".repeat(21));
    for soa in ["\\# 0", "\\# 3 000000", "\\# 4 C00C0000", &short] {
        let text = format!("$TTL 60\n@ SOA {soa}\n@ NS ns\nns A 198.18.0.1\n");
        // Built without the RDATA checks of `Zone::build`.
        let e = engine_with(vec![zone_with(Zone::build_unchecked, &text, "example.")]);
        for (name, qtype) in [
            ("nope.example.", 1),
            ("ns.example.", 16),
            ("ns.example.", 1),
        ] {
            for edns in [None, Some((1232, true))] {
                let m = ask_with(&e, name, qtype, edns, Transport::Udp);
                assert_eq!(
                    m.metadata.response_code,
                    ResponseCode::ServFail,
                    "{soa} {name}"
                );
                assert!(
                    m.answers.is_empty() && m.authorities.is_empty(),
                    "{soa} {name}"
                );
                assert!(!m.metadata.authoritative);
            }
        }
    }
}

#[test]
fn an_unavailable_zone_answers_servfail_and_a_zone_below_it_still_answers() {
    let child = "$TTL 60\n@ SOA ns host 1 60 60 60 60\n@ NS ns\nns A 198.18.0.7\n";
    let mut e = engine_with(vec![zone_from(child, "sub.example.")]);
    let apex = Name::parse("example.", None).unwrap();
    e.catalog.insert_unavailable(apex.clone());
    assert!(!e.catalog.is_available(&apex));
    for (name, qtype) in [("example.", 6), ("www.example.", 1), ("nope.example.", 16)] {
        for edns in [None, Some((1232, true))] {
            let m = ask_with(&e, name, qtype, edns, Transport::Udp);
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
            assert!(!m.metadata.authoritative && m.answers.is_empty(), "{name}");
            assert_eq!(m.queries[0].name().to_string(), name);
        }
    }
    // The zone below it is served; names outside both are still refused.
    let m = ask(&e, "ns.sub.example.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    let m = ask(&e, "www.other.test.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A version arrives: served again.
    e.catalog.insert(Arc::new(zone_from(ZONE, "example.")));
    assert!(e.catalog.is_available(&apex));
    let m = ask(&e, "www.example.", 1);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
}
