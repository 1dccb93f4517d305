//! `xdpdns record add|del` end to end: a change is answered at once on both paths (kdig over
//! UDP, answered by XDP as its counters show, and over TCP by userspace), the SOA serial
//! increments, a refused change changes nothing and says why, the journal keeps the changes
//! across a restart, and a zone file whose serial moved past the journal wins. Signed zones and
//! secondary zones refuse changes.

use std::path::Path;

use xdpdns_tests::ctl::{kdig, run, xdpdns};
use xdpdns_tests::stats::delta;
use xdpdns_tests::{zone_file, TestNet};

fn serial(net: &TestNet) -> u32 {
    let out = kdig(net, "example.", "SOA", &["+short"]);
    out.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial in {out:?}"))
}

/// The zone copied where the test may change it, and the server's arguments.
fn setup(net: &TestNet) -> (std::path::PathBuf, Vec<String>) {
    let zone = net.dir.join("example.zone");
    std::fs::copy(zone_file("example.zone"), &zone).unwrap();
    let storage = net.dir.join("storage");
    let args = [
        "--listen",
        "[::]:53",
        "--storage",
        storage.to_str().unwrap(),
    ];
    (zone, args.iter().map(|s| s.to_string()).collect())
}

fn start(net: &mut TestNet, zone: &Path, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    net.start_server(&[zone.to_str().unwrap()], &args)
        .expect("server starts");
}

#[test]
fn a_record_change_is_served_on_both_paths_journaled_and_kept_across_a_restart() {
    let mut net = TestNet::new().expect("test namespaces");
    let (zone, args) = setup(&net);
    start(&mut net, &zone, &args);
    assert!(kdig(&net, "new.example.", "A", &[]).contains("NXDOMAIN"));
    assert_eq!(serial(&net), 2026112701);

    let out = run(&net, "record add example. new 300 A 198.18.0.77").unwrap();
    assert!(out.contains("serial 2026112701 -> 2026112702"), "{out}");
    let before = net.stats().unwrap();
    let udp = kdig(&net, "new.example.", "A", &[]);
    let after = net.stats().unwrap();
    assert!(
        udp.contains("198.18.0.77") && udp.contains("NOERROR"),
        "{udp}"
    );
    assert_eq!(
        delta(&before, &after, "xdp.answered_exact"),
        1,
        "answered by XDP"
    );
    assert_eq!(delta(&before, &after, "udp.queries"), 0, "not by userspace");
    let tcp = kdig(&net, "new.example.", "A", &["+tcp"]);
    assert!(tcp.contains("198.18.0.77"), "{tcp}");
    assert_eq!(serial(&net), 2026112702);
    // A TXT with blanks, and the JSON reply.
    let out = xdpdns(
        &net,
        &[
            "record",
            "add",
            "--json",
            "example.",
            "txt",
            "60",
            "TXT",
            "\"hello world\"",
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serial_to"], 2026112703, "{out}");
    let txt = kdig(&net, "txt.example.", "TXT", &["+short"]);
    assert_eq!(txt.trim(), "\"hello world\"");

    // Refused changes say why and change nothing.
    let refused = [
        (
            &["add", "example.", "web", "300", "A", "198.18.0.1"][..],
            "CNAME",
        ),
        (
            &["del", "example.", "nothere", "300", "A", "198.18.0.1"],
            "not in the zone",
        ),
        (
            &["add", "example.", "x.other.", "300", "A", "198.18.0.1"],
            "not in the zone",
        ),
        (
            &["add", "example.", "bad", "300", "A", "198.18.0.300"],
            "parsing",
        ),
        (
            &["add", "example.", "@", "300", "SOA", "a. b. 1 2 3 4 5"],
            "SOA",
        ),
        (
            &["add", "nosuch.", "a", "300", "A", "198.18.0.1"],
            "no zone nosuch.",
        ),
    ];
    for (args, why) in refused {
        let mut all = vec!["record"];
        all.extend_from_slice(args);
        let err = xdpdns(&net, &all).unwrap_err();
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(serial(&net), 2026112703, "nothing changed");
    assert!(kdig(&net, "web.example.", "A", &[]).contains("CNAME"));

    // A restart replays the journal over the zone file.
    assert!(net.stop_server().unwrap());
    start(&mut net, &zone, &args);
    assert_eq!(serial(&net), 2026112703);
    assert!(kdig(&net, "new.example.", "A", &[]).contains("198.18.0.77"));
    // Deleting takes the record out of both paths.
    let out = run(&net, "record del example. new 300 A 198.18.0.77").unwrap();
    assert!(out.contains("-> 2026112704"), "{out}");
    assert!(kdig(&net, "new.example.", "A", &[]).contains("NXDOMAIN"));
    assert!(kdig(&net, "new.example.", "A", &["+tcp"]).contains("NXDOMAIN"));

    // The operator edits the file and moves its serial: the file wins, the journal is set
    // aside, and the reply says so.
    let text = std::fs::read_to_string(&zone).unwrap();
    let text = text.replace("2026112701 ; serial", "2026120100 ; serial");
    std::fs::write(&zone, format!("{text}edited IN A 198.18.0.78\n")).unwrap();
    let out = xdpdns(&net, &["zone", "reload", "example."]).unwrap();
    assert!(out.contains("the file wins"), "{out}");
    assert_eq!(serial(&net), 2026120100);
    assert!(kdig(&net, "txt.example.", "TXT", &[]).contains("NXDOMAIN"));
    assert!(kdig(&net, "edited.example.", "A", &[]).contains("198.18.0.78"));
    let journal = net.dir.join("storage/file-zones/example.journal");
    assert!(!journal.exists());
    assert!(net
        .dir
        .join("storage/file-zones/example.journal.dropped")
        .exists());
}

#[test]
fn signed_and_secondary_zones_refuse_record_changes() {
    let mut net = TestNet::new().expect("test namespaces");
    let storage = net.dir.join("storage");
    let signed = format!("nsec.example.={}", zone_file("signed/nsec.example.zone"));
    net.start_server(
        &[&signed],
        &[
            "--listen",
            "[::]:53",
            "--xdp-mode",
            "off",
            "--storage",
            storage.to_str().unwrap(),
            // No primary answers there: the zone is configured, not served.
            "--primary",
            "tld.=198.18.0.9",
        ],
    )
    .expect("server starts");
    let err = xdpdns(
        &net,
        &[
            "record",
            "add",
            "nsec.example.",
            "n",
            "60",
            "A",
            "198.18.0.1",
        ],
    )
    .unwrap_err();
    assert!(err.contains("is signed") && err.contains("online"), "{err}");
    let err = xdpdns(
        &net,
        &["record", "add", "tld.", "n", "60", "A", "198.18.0.1"],
    )
    .unwrap_err();
    assert!(err.contains("secondary zone"), "{err}");
    assert!(!storage.join("file-zones").exists(), "no journal written");
}
