//! Tests of `rdata::check`: every record the zone-file parser makes passes, in the zone files of
//! the repository and for every type written in presentation form; malformed RDATA of each
//! checked type is refused with the reason.

use super::name::Name;
use super::rdata::{check, soa_timers};
use super::record::rtype;
use crate::zone::load::ZoneSpec;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .unwrap()
}

/// The reason `check` gives for `hex` as type `t`.
fn reason(t: u16, hex: &str) -> String {
    match check(t, &unhex(hex)) {
        Ok(()) => panic!("{} {hex} passed", rtype::to_string(t)),
        Err(e) => e.to_string(),
    }
}

fn ok(t: u16, hex: &str) {
    if let Err(e) = check(t, &unhex(hex)) {
        panic!("{hex}: {e}");
    }
}

/// Every `*.zone` file of the repository's zone folders, each served as its file name says.
#[test]
fn every_record_of_the_repository_zones_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut files, mut records) = (0, 0);
    for dir in ["zones", "zones/signed", "tests/zones"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "zone") {
                continue;
            }
            let spec: ZoneSpec = path.to_str().unwrap().parse().unwrap();
            let z = crate::zonefile::parse_file(&spec.file, &spec.origin).unwrap();
            for r in &z.records {
                check(r.rtype, &r.rdata)
                    .unwrap_or_else(|e| panic!("{}: {} {e}", path.display(), r.owner));
                records += 1;
            }
            files += 1;
        }
    }
    assert!(
        files >= 6 && records > 350,
        "{files} files, {records} records"
    );
}

#[test]
fn every_type_in_presentation_form_passes() {
    let text = r#"$TTL 60
a A 198.18.0.1
a AAAA fd00::1
a NS ns
a CNAME x
a DNAME x
a PTR x
@ SOA ns host 1 2 3 4 5
a MX 10 .
a TXT "" "x"
a SPF "v=spf1 -all"
a HINFO cpu os
a SRV 1 2 3 x
a NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:x@example!" .
a CAA 128 tbs "Unknown"
a SSHFP 4 2 00
a TLSA 3 1 1 00
a DS 1 13 2 00
a CDS 0 0 0 00
a DNSKEY 256 3 13 AA==
a CDNSKEY 0 3 0 AA==
a RRSIG A 13 2 60 20360101000000 20260101000000 1 . AA==
a NSEC . A NS SOA TYPE1234 TYPE65535
a NSEC x
a NSEC3 1 1 150 aabb CPNMUOJ1E8 A RRSIG
a NSEC3 1 0 0 - CPNMUOJ1E8
a NSEC3PARAM 1 0 150 -
a ZONEMD 1 1 1 000102030405060708090a0b
a SVCB 0 x
a SVCB 1 . mandatory=alpn,port alpn=h2,h3 no-default-alpn port=53 ipv4hint=198.18.0.1,198.18.0.2 ech=AA== ipv6hint=fd00::1 dohpath=/q{?dns} ohttp key65000=x
a HTTPS 1 . alpn=h3
"#;
    let origin = Name::parse("example.", None).unwrap();
    let z = crate::zonefile::parse_str(text, &origin, "t.zone").unwrap();
    assert_eq!(z.records.len(), 30);
    for r in &z.records {
        check(r.rtype, &r.rdata).unwrap_or_else(|e| panic!("{}: {e}", rtype::to_string(r.rtype)));
    }
}

#[test]
fn names_must_be_complete_uncompressed_and_short_enough() {
    assert!(reason(rtype::NS, "").contains("ends inside the target name"));
    assert!(reason(rtype::NS, "03 616263").contains("ends inside the target name"));
    assert!(reason(rtype::CNAME, "c00c").contains("target name is compressed"));
    assert!(reason(rtype::PTR, "01 61 c00c").contains("compressed"));
    assert!(reason(rtype::DNAME, "41 61 00").contains("label of unknown type 0x41"));
    // 127 one-octet labels and the root: 255 octets, the most a name may have.
    ok(rtype::NS, &("01 61 ".repeat(127) + "00"));
    let long = "01 61 ".repeat(128) + "00";
    assert!(reason(rtype::NS, &long).contains("longer than 255"));
    let long = ("3f".to_owned() + &"61".repeat(63)).repeat(5);
    assert!(reason(rtype::NS, &long).contains("longer than 255"));
    assert!(reason(rtype::NS, "00 00").contains("1 octet follows the last field"));
    assert!(reason(rtype::MX, "000a").contains("MX RDATA: ends inside the target name"));
    assert!(reason(rtype::MX, "0a").contains("ends inside the preference"));
    assert!(reason(rtype::SRV, "0001 0002 0003 c000").contains("compressed"));
    assert!(reason(17, "00").contains("second name"));
    assert!(reason(18, "0001 03777777").contains("TYPE18 RDATA: ends inside"));
    assert!(reason(26, "0001 00").contains("MAPX400"));
    ok(36, "000a 00");
}

#[test]
fn fixed_fields_must_be_present_and_nothing_after_them() {
    assert_eq!(
        reason(rtype::SOA, ""),
        "SOA RDATA: ends inside the MNAME (0 of 1 octets)"
    );
    let timers = "00000001 00000002 00000003 00000004 00000005";
    assert!(
        reason(rtype::SOA, &format!("00 00 {}", &timers[..36])).contains("ends inside the SERIAL")
    );
    assert!(reason(rtype::SOA, &format!("00 00 {timers} 00")).contains("1 octet follows"));
    ok(rtype::SOA, &format!("00 00 {timers}"));
    assert_eq!(
        soa_timers(&unhex(&format!("01 61 00 00 {timers}"))),
        Some([1, 2, 3, 4, 5])
    );
    assert_eq!(soa_timers(&unhex("00 00 00")), None);
    assert!(reason(rtype::A, "c0000201 00").contains("5 octets, not the 4 of an IPv4"));
    assert!(reason(rtype::A, "c00002").contains("3 octets, not the 4"));
    assert!(reason(rtype::AAAA, &"00".repeat(17)).contains("17 octets, not the 16"));
    assert!(reason(rtype::RRSIG, &"00".repeat(17)).contains("fixed fields"));
    assert!(reason(rtype::RRSIG, &("00".repeat(18) + "00")).contains("signature is missing"));
    ok(rtype::RRSIG, &("00".repeat(18) + "00 01"));
    assert!(reason(rtype::DS, "0001 0d 02").contains("digest is missing"));
    assert!(reason(rtype::DNSKEY, "0100 03").contains("ends inside the flags"));
    assert!(reason(rtype::SSHFP, "01 01").contains("fingerprint is missing"));
    assert!(reason(rtype::TLSA, "03 01").contains("ends inside the usage"));
    assert!(reason(rtype::ZONEMD, &("00".repeat(6) + &"00".repeat(11))).contains("shorter than 12"));
    // LOC version 0 has 16 octets; other versions are opaque.
    assert!(reason(29, &"00".repeat(15)).contains("ends inside"));
    ok(29, "01 02");
    ok(65280, "");
    ok(65280, "c00c");
    assert!(check(65280, &vec![0; 65535]).is_ok());
    let e = check(65280, &vec![0; 65536]).unwrap_err().to_string();
    assert!(e.contains("65536 octets are more than RDLENGTH"), "{e}");
}

#[test]
fn character_strings_must_fill_the_rdata() {
    assert!(reason(rtype::TXT, "").contains("ends inside the character-string"));
    assert!(reason(rtype::TXT, "03 6162").contains("ends inside the character-string"));
    ok(rtype::TXT, "00");
    ok(rtype::TXT, "01 61 00 02 6263");
    assert!(reason(rtype::HINFO, "01 61").contains("ends inside the OS"));
    assert!(reason(rtype::HINFO, "01 61 01 62 00").contains("1 octet follows"));
    let naptr = |flags: &str| format!("0064 000a {flags} 00 00 00");
    ok(rtype::NAPTR, &naptr("01 53"));
    ok(rtype::NAPTR, &naptr("00"));
    assert!(reason(rtype::NAPTR, &naptr("02 533b")).contains("flags are not letters"));
    assert!(reason(rtype::NAPTR, "0064 000a 00 00 00").contains("replacement name"));
    assert!(reason(rtype::CAA, "00 00").contains("tag is not"));
    assert!(reason(rtype::CAA, "00 02 692d").contains("tag is not"));
    ok(rtype::CAA, "80 05 6973737565");
    ok(rtype::CAA, &format!("00 0f {}", "61".repeat(15)));
    assert!(reason(rtype::CAA, &format!("00 10 {}", "61".repeat(16))).contains("1 to 15"));
}

#[test]
fn type_bitmaps_must_be_canonical() {
    // NSEC with next name "." and a bitmap.
    let nsec = |bitmap: &str| format!("00 {bitmap}");
    ok(rtype::NSEC, &nsec(""));
    ok(rtype::NSEC, &nsec("00 01 40 01 01 80"));
    assert!(
        reason(rtype::NSEC, &nsec("01 01 40 00 01 40")).contains("window 0 comes after window 1")
    );
    assert!(reason(rtype::NSEC, &nsec("00 01 40 00 01 40")).contains("after window 0"));
    assert!(reason(rtype::NSEC, &nsec("00 00")).contains("0 octets long"));
    assert!(
        reason(rtype::NSEC, &nsec(&format!("00 21 {}", "ff".repeat(33)))).contains("33 octets")
    );
    assert!(reason(rtype::NSEC, &nsec("00 02 40 00")).contains("ends with a zero octet"));
    assert!(reason(rtype::NSEC, &nsec("00 02 40")).contains("ends inside the type bitmap"));
    assert!(reason(rtype::NSEC, &nsec("00")).contains("ends inside the type bitmap window length"));
    // NSEC3: algorithm, flags, iterations, salt, hash, bitmap.
    ok(rtype::NSEC3, "01 00 0096 00 01 aa 00 01 40");
    assert!(reason(rtype::NSEC3, "01 00 0097 00 01 aa").contains("151 iterations"));
    assert!(reason(rtype::NSEC3, "01 00 0000 00 00").contains("hashed owner name is empty"));
    assert!(reason(rtype::NSEC3, "01 00 0000 02 aa").contains("ends inside the salt"));
    assert!(reason(rtype::NSEC3PARAM, "01 00 0000 00 00").contains("1 octet follows"));
    assert!(reason(rtype::NSEC3PARAM, "01 00 ffff 00").contains("65535 iterations"));
    assert!(reason(62, "00000001 0003 00 02 40 00").contains("zero octet"));
}

#[test]
fn svc_params_must_be_in_order_and_well_formed() {
    // Priority 1, target ".", then the params.
    let svcb = |params: &str| format!("0001 00 {params}");
    ok(rtype::SVCB, &svcb(""));
    ok(rtype::HTTPS, &svcb("0001 0003 026832 0003 0002 0035"));
    assert!(
        reason(rtype::SVCB, &svcb("0003 0002 0035 0001 0003 026832"))
            .contains("SvcParam alpn comes after port")
    );
    assert!(reason(rtype::SVCB, &svcb("0003 0002 0035 0003 0002 0035")).contains("comes after"));
    assert!(reason(rtype::SVCB, &svcb("0001 0004 026832"))
        .contains("ends inside the value of SvcParam alpn"));
    assert!(reason(rtype::SVCB, &svcb("0001")).contains("ends inside the length of SvcParam alpn"));
    assert!(reason(rtype::SVCB, &svcb("0001 0003 036832")).contains("alpn"));
    assert!(reason(rtype::SVCB, &svcb("0001 0001 00")).contains("alpn-id is empty"));
    assert!(reason(rtype::SVCB, &svcb("0001 0000")).contains("alpn"));
    assert!(reason(rtype::SVCB, &svcb("0002 0001 00")).contains("no-default-alpn: takes no value"));
    assert!(reason(rtype::SVCB, &svcb("0003 0003 000035")).contains("port: 3 octets, not 2"));
    assert!(reason(rtype::SVCB, &svcb("0004 0005 c000020100")).contains("ipv4hint: 5 octets"));
    assert!(reason(rtype::SVCB, &svcb("0004 0000")).contains("ipv4hint: 0 octets"));
    assert!(
        reason(rtype::SVCB, &svcb(&format!("0006 0004 {}", "00".repeat(4)))).contains("ipv6hint")
    );
    assert!(reason(rtype::SVCB, &svcb("0005 0000")).contains("ECHConfigList is empty"));
    assert!(reason(rtype::SVCB, &svcb("0007 0001 ff")).contains("dohpath: not a UTF-8"));
    assert!(reason(rtype::SVCB, &svcb("0008 0001 00")).contains("ohttp: takes no value"));
    // mandatory: keys in increasing order, not itself, and present.
    assert!(reason(rtype::SVCB, &svcb("0000 0002 0003")).contains("port is mandatory but missing"));
    assert!(reason(
        rtype::SVCB,
        &svcb("0000 0004 0003 0001 0001 0003 026832 0003 0002 0035")
    )
    .contains("keys must increase"));
    assert!(reason(rtype::SVCB, &svcb("0000 0002 0000")).contains("not include mandatory"));
    assert!(
        reason(rtype::SVCB, &svcb("0000 0001 00")).contains("1 octets are not one or more keys")
    );
    ok(
        rtype::SVCB,
        &svcb("0000 0002 0003 0003 0002 0035 fde8 0000"),
    );
    assert!(reason(rtype::SVCB, "0001 c00c").contains("TargetName is compressed"));
}
