//! Tests of the master-file syntax: owners, TTL and class, default-TTL rules, directives and
//! `$INCLUDE`, lexical details, and the file:line of errors. Shared helpers for the other test
//! modules live here too.

use std::path::PathBuf;

use super::*;
use crate::wire::record::{class, rtype};

pub(super) fn origin() -> Name {
    Name::parse("example.", None).unwrap()
}

pub(super) fn parse(text: &str) -> Result<ZoneFile, ZoneFileError> {
    parse_str(text, &origin(), "test.zone")
}

pub(super) fn ok(text: &str) -> ZoneFile {
    parse(text).unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
}

pub(super) fn err(text: &str) -> ZoneFileError {
    match parse(text) {
        Ok(z) => panic!("accepted: {text}\n{:?}", z.records),
        Err(e) => e,
    }
}

/// The single record of `$TTL 300` + `rr`.
pub(super) fn one(rr: &str) -> Record {
    let z = ok(&format!("$TTL 300\n{rr}\n"));
    assert_eq!(z.records.len(), 1, "{rr}");
    z.records.into_iter().next().unwrap()
}

pub(super) fn rdata(rr: &str) -> Vec<u8> {
    one(rr).rdata
}

pub(super) fn n(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

/// A fresh scratch directory under the system temporary directory.
pub(super) fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zonefile-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn owners_relative_absolute_at_and_blank() {
    let z = ok(
        "$TTL 60\n@ A 192.0.2.1\nwww A 192.0.2.2\n  AAAA 2001:db8::1\n\
                mail.example. A 192.0.2.3\n\t TXT x\n",
    );
    let owners: Vec<String> = z.records.iter().map(|r| r.owner.to_string()).collect();
    assert_eq!(
        owners,
        [
            "example.",
            "www.example.",
            "www.example.",
            "mail.example.",
            "mail.example."
        ]
    );
    assert_eq!(z.records[2].rtype, rtype::AAAA);
    assert!(z.warnings.is_empty(), "{:?}", z.warnings);
    let at = z.locations.unwrap().strings();
    assert_eq!(
        at,
        [
            "test.zone:2",
            "test.zone:3",
            "test.zone:4",
            "test.zone:5",
            "test.zone:6"
        ]
    );
}

#[test]
fn ttl_and_class_in_either_order() {
    let z = ok(
        "$TTL 60\na 300 IN A 192.0.2.1\nb IN 1h30m A 192.0.2.1\nc A 192.0.2.1\n\
                d in 2W a 192.0.2.1\ne 1D CLASS1 A 192.0.2.1\nf 60s A 192.0.2.1\n  IN TXT x\n",
    );
    let ttls: Vec<u32> = z.records.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [300, 5400, 60, 1209600, 86400, 60, 60]);
    assert!(z.records.iter().all(|r| r.class == class::IN));
    assert_eq!(
        err("$TTL 60\na 1 2 A 192.0.2.1\n").message,
        "second TTL '2'"
    );
    assert_eq!(
        err("$TTL 60\na IN IN A 192.0.2.1\n").message,
        "unknown type 'IN'"
    );
    assert!(err("$TTL 60\na 1x A 192.0.2.1\n")
        .message
        .contains("bad TTL '1x'"));
}

#[test]
fn other_classes_are_errors() {
    let e = err("$TTL 60\na A 192.0.2.1\n\nb CH TXT x\n");
    assert_eq!((e.file.as_str(), e.line), ("test.zone", 4));
    assert!(e.message.contains("class 'CH'"), "{e}");
    assert!(err("$TTL 60\nb 60 CLASS3 A 192.0.2.1\n")
        .message
        .contains("only IN"));
    assert!(err("$TTL 60\nb ANY A 192.0.2.1\n")
        .message
        .contains("only IN"));
}

#[test]
fn default_ttl_dollar_ttl() {
    let z = ok("$TTL 1h\n@ SOA ns h 1 2 3 4 5\nwww 10 A 192.0.2.1\nftp A 192.0.2.2\n");
    let ttls: Vec<u32> = z.records.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [3600, 10, 3600]);
    assert!(z.warnings.is_empty());
}

#[test]
fn default_ttl_previous_record() {
    let z = ok("@ 600 SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\nftp 20 A 192.0.2.2\n  A 192.0.2.3\n");
    let ttls: Vec<u32> = z.records.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [600, 600, 20, 20]);
    assert_eq!(z.warnings.len(), 1);
    assert!(
        z.warnings[0].starts_with("test.zone:2: "),
        "{:?}",
        z.warnings
    );
}

#[test]
fn default_ttl_soa_minimum() {
    let z = ok("@ SOA ns h ( 1 2 3 4\n 1h )\nwww A 192.0.2.1\nftp 20 A 192.0.2.2\n  A 192.0.2.3\n");
    let ttls: Vec<u32> = z.records.iter().map(|r| r.ttl).collect();
    // As in BIND, the SOA MINIMUM becomes the default for the rest of the file.
    assert_eq!(ttls, [3600, 3600, 20, 3600]);
    assert_eq!(z.warnings.len(), 1);
    assert!(
        z.warnings[0].starts_with("test.zone:1: no TTL"),
        "{:?}",
        z.warnings
    );
}

#[test]
fn no_ttl_at_all_is_an_error() {
    let e = err("; c\nwww A 192.0.2.1\n@ SOA ns h 1 2 3 4 5\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("no TTL"), "{e}");
}

#[test]
fn huge_ttl_becomes_zero_with_warning() {
    let z = ok("$TTL 60\na 2147483648 A 192.0.2.1\nb 2147483647 A 192.0.2.1\n");
    assert_eq!(z.records[0].ttl, 0);
    assert_eq!(z.records[1].ttl, 2147483647);
    assert_eq!(z.warnings.len(), 1);
    assert!(z.warnings[0].starts_with("test.zone:2:"));
}

#[test]
fn origin_directive_and_at_in_rdata() {
    let z = ok("$TTL 60\n$ORIGIN sub\nwww CNAME @\n$ORIGIN Other.example.\n@ MX 10 mx\n");
    assert_eq!(z.records[0].owner.to_string(), "www.sub.example.");
    assert_eq!(z.records[0].target().unwrap().to_string(), "sub.example.");
    assert_eq!(z.records[1].owner.to_string(), "Other.example.");
    assert_eq!(
        z.records[1].target().unwrap().to_string(),
        "mx.Other.example."
    );
    assert!(err("$ORIGIN\n").message.contains("missing argument"));
    assert!(err("$ORIGIN a b\n").message.contains("too many arguments"));
}

#[test]
fn case_is_preserved() {
    let r = one("WwW.Example. CNAME Target.EXAMPLE.");
    assert_eq!(r.owner.wire(), b"\x03WwW\x07Example\x00");
    assert_eq!(r.rdata, b"\x06Target\x07EXAMPLE\x00");
}

#[test]
fn parentheses_comments_quotes_and_escapes() {
    let z = ok("$TTL 60\n\
                a\\.b TXT ( \"x ; not a comment\" ; a comment\n   \"(y)\" )\n\
                \\@\\$x A 192.0.2.1 ; trailing\n\
                c\\032d A 192.0.2.1\r\n\
                ; only a comment\n   \n\
                e ( A\n 192.0.2.1 )\n");
    assert_eq!(z.records.len(), 4);
    assert_eq!(z.records[0].owner.wire(), b"\x03a.b\x07example\x00");
    assert_eq!(z.records[0].rdata, b"\x11x ; not a comment\x03(y)");
    assert_eq!(z.records[1].owner.wire(), b"\x03@$x\x07example\x00");
    assert_eq!(z.records[2].owner.wire(), b"\x03c d\x07example\x00");
    assert_eq!(z.records[3].owner.to_string(), "e.example.");
}

#[test]
fn byte_order_mark_and_crlf() {
    let z = ok("\u{feff}$TTL 60\r\n@ A 192.0.2.1\r\n  A 192.0.2.2\r\n");
    assert_eq!(z.records.len(), 2);
}

#[test]
fn lexical_errors_name_the_line() {
    let e = err("$TTL 60\na TXT \"x\nb A 192.0.2.1\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "unterminated quoted string")
    );
    let e = err("$TTL 60\na A 192.0.2.1\nb SOA ( ns h\n 1 2 3 4 5\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("unbalanced '('"));
    assert_eq!(err("$TTL 60\n\na A 192.0.2.1 )\n").line, 3);
}

#[test]
fn field_errors_name_the_line_of_the_field() {
    let e = err("$TTL 60\n@ SOA ns h (\n 1\n 2\n bogus\n 4 5 )\n");
    assert_eq!(e.line, 5);
    assert_eq!(
        e.to_string(),
        "test.zone:5: SOA record: bad RETRY 'bogus': expected seconds or a duration such as 1h30m"
    );
    let e = err("$TTL 60\n@ SOA ns h ( 1 2 3\n 4 )\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "SOA record: missing MINIMUM")
    );
    let e = err("$TTL 60\na MX 10 b c\n");
    assert_eq!(
        e.message,
        "MX record: bad field 'c': expected no more fields"
    );
    let e = err("$TTL 60\na MX 70000 b\n");
    assert_eq!(
        e.message,
        "MX record: bad preference '70000': expected a number 0-65535"
    );
}

#[test]
fn types_unknown_missing_and_meta() {
    let e = err("$TTL 60\na A 192.0.2.1\nb FOO 1 2\n");
    assert_eq!((e.line, e.message.as_str()), (3, "unknown type 'FOO'"));
    assert_eq!(err("$TTL 60\nb 60 IN\n").message, "missing type");
    assert!(err("$TTL 60\nb ANY \\# 0\n").message.contains("only IN"));
    assert!(err("$TTL 60\nb IN ANY \\# 0\n")
        .message
        .contains("meta type"));
    assert!(err("$TTL 60\nb OPT \\# 0\n").message.contains("meta type"));
    assert!(err("$TTL 60\nb TYPE252 \\# 0\n")
        .message
        .contains("meta type"));
    let e = err("$TTL 60\nb LOC 52 22 23.000 N 4 53 32.000 E -2.00m\n");
    assert!(e.message.contains("RFC 3597"), "{e}");
}

#[test]
fn blank_owner_without_previous_owner() {
    let e = err("$TTL 60\n  A 192.0.2.1\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("no owner name"));
}

#[test]
fn zone_checks_out_of_zone_and_soa() {
    let e = err("$TTL 60\nwww A 192.0.2.1\nwww.other. A 192.0.2.1\n  AAAA ::1\nexample. TXT x\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("out-of-zone data"), "{e}");
    let e = err("$TTL 60\nwww SOA ns h 1 2 3 4 5\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("not by the zone apex"));
}

#[test]
fn generate_and_unknown_directives() {
    let e = err("$TTL 60\n$GENERATE 1-10 host$ A 192.0.2.$\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("$GENERATE is not supported"));
    assert_eq!(err("$FOO x\n").message, "unknown directive '$FOO'");
    assert!(err("$TTL\n").message.contains("missing argument"));
    assert!(err("$TTL x\n").message.contains("bad $TTL"));
}

#[test]
fn include_with_origin_relative_path_and_nesting() {
    let d = scratch("include");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(
        d.join("main.zone"),
        "$TTL 60\n@ SOA ns h 1 2 3 4 5\n$INCLUDE sub/a.inc lab\nafter A 192.0.2.9\n  AAAA ::9\n\
         $INCLUDE \"sub/a.inc\"\n",
    )
    .unwrap();
    // Relative to the including file's directory (sub/), not to main.zone's.
    std::fs::write(
        d.join("sub/a.inc"),
        "www A 192.0.2.1\n@ TXT here\n$INCLUDE b.inc\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sub/b.inc"),
        "$ORIGIN deep.example.\nx A 192.0.2.2\n",
    )
    .unwrap();
    let z = parse_file(&d.join("main.zone"), &origin()).unwrap();
    let owners: Vec<String> = z.records.iter().map(|r| r.owner.to_string()).collect();
    assert_eq!(
        owners,
        [
            "example.",
            "www.lab.example.",
            "lab.example.",
            "x.deep.example.",
            "after.example.",
            "after.example.",
            "www.example.",
            "example.",
            "x.deep.example."
        ]
    );
    let at = z.locations.unwrap().strings();
    let main = d.join("main.zone").display().to_string();
    let b = d.join("sub/b.inc").display().to_string();
    assert_eq!(at[0], format!("{main}:2"));
    assert_eq!(at[3], format!("{b}:2"));
    assert_eq!(at[4], format!("{main}:4"));
    assert_eq!(at.len(), z.records.len());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn include_errors_name_the_included_file_and_line() {
    let d = scratch("include-err");
    let inc = d.join("bad.inc");
    std::fs::write(d.join("main.zone"), "$TTL 60\n\n$INCLUDE bad.inc\n").unwrap();
    std::fs::write(
        &inc,
        "a A 192.0.2.1\n;\n;\n(\n)\nb A 192.0.2.2\nc A 192.0.2.300\n",
    )
    .unwrap();
    let e = parse_file(&d.join("main.zone"), &origin()).unwrap_err();
    assert_eq!(e.file, inc.display().to_string());
    assert_eq!(e.line, 7);
    assert!(
        e.message
            .starts_with("A record: bad IPv4 address '192.0.2.300'"),
        "{e}"
    );

    std::fs::write(d.join("missing.zone"), "$TTL 60\n$INCLUDE nope.inc\n").unwrap();
    let e = parse_file(&d.join("missing.zone"), &origin()).unwrap_err();
    assert_eq!(
        (e.file, e.line),
        (d.join("missing.zone").display().to_string(), 2)
    );
    assert!(e.message.contains("cannot read $INCLUDE file"));

    std::fs::write(d.join("dir.zone"), "$INCLUDE .\n").unwrap();
    let e = parse_file(&d.join("dir.zone"), &origin()).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn include_loops_are_detected() {
    let d = scratch("include-loop");
    std::fs::write(d.join("a.zone"), "$TTL 60\n$INCLUDE b.zone\n").unwrap();
    std::fs::write(d.join("b.zone"), "x A 192.0.2.1\n\n$INCLUDE ./a.zone\n").unwrap();
    let e = parse_file(&d.join("a.zone"), &origin()).unwrap_err();
    assert_eq!(
        (e.file.clone(), e.line),
        (d.join("b.zone").display().to_string(), 3)
    );
    assert!(e.message.contains("$INCLUDE loop"), "{e}");
    std::fs::write(d.join("self.zone"), "$INCLUDE self.zone\n").unwrap();
    let label = d.join("self.zone").display().to_string();
    let e = parse_str("$INCLUDE self.zone\n", &origin(), &label).unwrap_err();
    assert!(e.message.contains("$INCLUDE loop"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn parse_file_reports_unreadable_file() {
    let e = parse_file(std::path::Path::new("/nonexistent/zone"), &origin()).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("/nonexistent/zone", 0));
}
