//! The store: real zones (the signed fixtures) survive a write and read back record for
//! record; truncated, bit-flipped and foreign files are detected, set aside and never served,
//! the version before them taking their place; timers round-trip and bad ones are reported.

use super::*;
use crate::xfr::timers::{ExpirePolicy, Timers};

const ZONES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zones/");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpdns-store-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn records(file: &str, apex: &str) -> Vec<Record> {
    crate::zonefile::parse_file(Path::new(&format!("{ZONES}{file}")), &name(apex))
        .unwrap()
        .records
}

fn zone_text(serial: u32) -> Vec<Record> {
    let text = format!(
        "$TTL 60\n@ SOA ns h {serial} 3600 600 86400 60\n@ NS ns\nns A 198.18.0.1\n\
         t TXT \"a \\\"quoted\\\" \\255 string\"\n"
    );
    crate::zonefile::parse_str(&text, &name("example."), "t")
        .unwrap()
        .records
}

/// The records of a version's file.
fn written(v: &Version, apex: &str) -> Vec<Record> {
    let body = read_sealed(&v.path).unwrap();
    crate::zonefile::parse_bytes(&body, &name(apex), "t")
        .unwrap()
        .records
}

#[test]
fn real_zones_round_trip() {
    for (file, apex) in [
        ("example.zone", "example."),
        ("signed/nsec.example.zone", "nsec.example."),
        ("signed/nsec3.example.zone", "nsec3.example."),
        ("signed/knot.example.zone", "knot.example."),
    ] {
        let dir = tmpdir(apex);
        let store = Store::open(&dir, &name(apex)).unwrap();
        let recs = records(file, apex);
        store.save_version(&recs).unwrap();
        let loaded = store.load().unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let v = loaded.version.unwrap();
        assert_eq!(written(&v, apex), recs, "{file}");
        assert_eq!(v.zone.len(), {
            let src = ZoneSource {
                name: file,
                locations: None,
            };
            Zone::build(name(apex), recs.clone(), &src).unwrap().0.len()
        });
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Saves versions 1 and 2, spoils the file of 2 with `spoil`, and checks that 1 is loaded and
/// the problem named.
fn spoiled(tag: &str, spoil: impl FnOnce(&Path), want: &str) {
    let dir = tmpdir(tag);
    let store = Store::open(&dir, &name("example.")).unwrap();
    store.save_version(&zone_text(1)).unwrap();
    let second = store.save_version(&zone_text(2)).unwrap();
    assert_eq!(store.load().unwrap().version.unwrap().serial, 2);
    spoil(&second);
    let loaded = store.load().unwrap();
    let v = loaded.version.expect("the version before is served");
    assert_eq!(v.serial, 1, "{tag}");
    assert_eq!(written(&v, "example."), zone_text(1));
    assert_eq!(loaded.problems.len(), 1, "{tag}: {:?}", loaded.problems);
    assert!(
        loaded.problems[0].contains(want),
        "{tag}: {:?}",
        loaded.problems
    );
    assert!(!second.exists());
    assert!(second.with_extension("zone.corrupt").exists());
    // The next version goes after the spoiled one and is served again.
    let third = store.save_version(&zone_text(3)).unwrap();
    assert!(third
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("v0000000003-s3"));
    assert_eq!(store.load().unwrap().version.unwrap().serial, 3);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_files_are_not_served() {
    spoiled(
        "truncated",
        |p| {
            let len = fs::metadata(p).unwrap().len();
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len - 7)
                .unwrap();
        },
        "truncated",
    );
    spoiled(
        "header-only",
        |p| fs::write(p, &fs::read(p).unwrap()[..HEADER_LEN - 3]).unwrap(),
        "no seal",
    );
    spoiled("empty", |p| fs::write(p, b"").unwrap(), "no seal");
}

#[test]
fn flipped_bits_are_detected() {
    for at in [HEADER_LEN + 3, HEADER_LEN + 60] {
        spoiled(
            "flip",
            |p| {
                let mut d = fs::read(p).unwrap();
                let i = at.min(d.len() - 1);
                d[i] ^= 0x04;
                fs::write(p, d).unwrap();
            },
            "checksum mismatch",
        );
    }
    // A flip in the header's length.
    spoiled(
        "flip-len",
        |p| {
            let mut d = fs::read(p).unwrap();
            d[MAGIC.len() + 8 + 19] ^= 0x01;
            fs::write(p, d).unwrap();
        },
        "truncated or extended",
    );
}

#[test]
fn a_sealed_file_with_a_bad_zone_is_not_served() {
    let dir = tmpdir("badzone");
    let store = Store::open(&dir, &name("example.")).unwrap();
    store.save_version(&zone_text(1)).unwrap();
    // Well sealed, but without NS records: the zone checks refuse it.
    let no_ns: Vec<Record> = zone_text(2)
        .into_iter()
        .filter(|r| r.rtype != rtype::NS)
        .collect();
    store.save_version(&no_ns).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.version.unwrap().serial, 1);
    assert!(
        loaded.problems[0].contains("no NS records"),
        "{:?}",
        loaded.problems
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn old_versions_are_pruned_and_temporary_files_removed() {
    let dir = tmpdir("prune");
    let store = Store::open(&dir, &name("example.")).unwrap();
    for s in 1..=5 {
        store.save_version(&zone_text(s)).unwrap();
    }
    fs::write(dir.join("v0000000009-s9.tmp123"), b"half written").unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.version.unwrap().serial, 5);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["v0000000004-s4.zone", "v0000000005-s5.zone"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn timers_round_trip_and_bad_ones_are_reported() {
    let dir = tmpdir("timers");
    let store = Store::open(&dir, &name("example.")).unwrap();
    assert!(store.load().unwrap().timers.is_none());
    let mut t = Timers::new(ExpirePolicy::Honour, 1000);
    let soa = Soa::from_record(&zone_text(4)[0]).unwrap();
    t.succeeded(1000, &soa, Some(5000));
    t.failed(5000);
    store.save_timers(t.state()).unwrap();
    assert_eq!(store.load().unwrap().timers.as_ref(), Some(t.state()));
    let path = dir.join(TIMERS);
    let mut d = fs::read(&path).unwrap();
    let last = d.len() - 2;
    d[last] ^= 1;
    fs::write(&path, d).unwrap();
    let loaded = store.load().unwrap();
    assert!(loaded.timers.is_none());
    assert!(
        loaded.problems[0].contains("timers reset"),
        "{:?}",
        loaded.problems
    );
    fs::remove_dir_all(&dir).unwrap();
}
