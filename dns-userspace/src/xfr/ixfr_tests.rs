//! IXFR responses of every shape RFC 1995 §4 allows, and diffs applied to a zone.

use super::*;
use crate::xfr::axfr::tests::{rec, soa};

fn reader(ours: u32) -> IxfrReader {
    IxfrReader::new(
        Name::parse("example.", None).unwrap(),
        ours,
        Limits::default(),
    )
}

fn zone() -> Vec<Record> {
    vec![
        soa(1),
        rec("@ NS ns"),
        rec("ns A 198.18.0.1"),
        rec("www A 198.18.0.2"),
    ]
}

#[test]
fn single_soa_is_up_to_date_or_no_diff() {
    for theirs in [5, 4] {
        let mut r = reader(5);
        assert!(r.push(vec![soa(theirs)]).unwrap());
        assert_eq!(r.finish().unwrap(), Ixfr::UpToDate(soa(theirs)));
    }
    let e = reader(5).push(vec![soa(6)]).unwrap_err();
    assert!(matches!(e, Kind::NoDiff { ours: 5, theirs: 6 }), "{e}");
}

#[test]
fn axfr_style_reply() {
    let mut r = reader(1);
    assert!(!r.push(vec![soa(3), rec("@ NS ns")]).unwrap());
    assert!(r.push(vec![rec("ns A 198.18.0.1"), soa(3)]).unwrap());
    let Ixfr::Full(recs) = r.finish().unwrap() else {
        panic!("not full")
    };
    assert_eq!(recs, vec![soa(3), rec("@ NS ns"), rec("ns A 198.18.0.1")]);
}

#[test]
fn diff_sequences_over_several_messages() {
    let mut r = reader(1);
    // 1 → 2: www changes address; 2 → 3: mail added.
    assert!(!r
        .push(vec![soa(3), soa(1), rec("www A 198.18.0.2")])
        .unwrap());
    assert!(!r
        .push(vec![soa(2), rec("www A 198.18.0.3"), soa(2)])
        .unwrap());
    assert!(r
        .push(vec![soa(3), rec("mail A 198.18.0.4"), soa(3)])
        .unwrap());
    let Ixfr::Diffs(diffs) = r.finish().unwrap() else {
        panic!("not diffs")
    };
    assert_eq!(diffs.len(), 2);
    assert_eq!((&diffs[0].from, &diffs[0].to), (&soa(1), &soa(2)));
    assert_eq!(diffs[1].added, vec![rec("mail A 198.18.0.4")]);
    let z = apply(&zone(), &diffs).unwrap();
    assert_eq!(
        z,
        vec![
            soa(3),
            rec("@ NS ns"),
            rec("ns A 198.18.0.1"),
            rec("mail A 198.18.0.4"),
            rec("www A 198.18.0.3"),
        ]
    );
}

#[test]
fn broken_chains_and_endings_are_errors() {
    // The first diff must start at our serial.
    let e = reader(1).push(vec![soa(3), soa(2)]).unwrap_err();
    assert!(
        e.to_string().contains("starts at serial 2, expected 1"),
        "{e}"
    );
    // Each diff must start where the last ended.
    let e = reader(1)
        .push(vec![soa(3), soa(1), soa(2), soa(1)])
        .unwrap_err();
    assert!(matches!(e, Kind::Diff(_)), "{e}");
    // A closing SOA that differs from the opening one.
    let mut other = soa(3);
    *other.rdata.last_mut().unwrap() ^= 1;
    let e = reader(1)
        .push(vec![soa(3), soa(1), soa(3), other])
        .unwrap_err();
    assert!(e.to_string().contains("closing SOA differs"), "{e}");
    // Records after the closing SOA.
    let e = reader(1)
        .push(vec![soa(2), soa(1), soa(2), soa(2), rec("@ NS ns")])
        .unwrap_err();
    assert!(e.to_string().contains("after the closing SOA"), "{e}");
    // Cut short.
    let mut r = reader(1);
    r.push(vec![soa(2), soa(1), rec("www A 198.18.0.2")])
        .unwrap();
    let e = r.finish().unwrap_err().to_string();
    assert!(e.contains("inside diff 1"), "{e}");
    let e = reader(1)
        .push(vec![rec("@ NS ns")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the SOA"), "{e}");
}

fn diff(from: u32, to: u32, removed: &[&str], added: &[&str]) -> Diff {
    Diff {
        from: soa(from),
        to: soa(to),
        removed: removed.iter().map(|t| rec(t)).collect(),
        added: added.iter().map(|t| rec(t)).collect(),
    }
}

#[test]
fn apply_checks_removals_and_replaces_ttls() {
    // A removal we do not have.
    let e = apply(&zone(), &[diff(1, 2, &["ftp A 198.18.0.9"], &[])]).unwrap_err();
    assert!(e.to_string().contains("ftp.example. A"), "{e}");
    // A diff from another serial than ours.
    let e = apply(&zone(), &[diff(7, 8, &[], &[])]).unwrap_err();
    assert!(e.to_string().contains("example. SOA"), "{e}");
    // Added in one diff, removed in the next; a TTL change as remove + add.
    let z = apply(
        &zone(),
        &[
            diff(1, 2, &[], &["tmp TXT x"]),
            diff(
                2,
                3,
                &["tmp TXT x", "www A 198.18.0.2"],
                &["www 300 A 198.18.0.2"],
            ),
        ],
    )
    .unwrap();
    assert_eq!(z[0], soa(3));
    assert_eq!(z.len(), 4);
    assert_eq!(z[3].ttl, 300);
    assert!(!z.iter().any(|r| r.rtype == rtype::TXT));
    // Adding a record already there replaces it.
    let z = apply(&zone(), &[diff(1, 2, &[], &["www 90 A 198.18.0.2"])]).unwrap();
    assert_eq!(z.iter().filter(|r| r.rtype == rtype::A).count(), 2);
    assert!(z.iter().any(|r| r.ttl == 90));
}
