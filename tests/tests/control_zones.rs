//! `xdpdns zone add|remove|reload`, SIGHUP re-reading the configuration file (zones added and
//! removed take effect; a bad configuration or zone changes nothing and `status` says why),
//! `xdpdns top` (the names userspace is asked most, with the reason) and `xdpdns detach`
//! (userspace answers on), end to end with kdig.

use std::path::Path;

use xdpdns_tests::ctl::{kdig, xdpdns};
use xdpdns_tests::stats::delta;
use xdpdns_tests::{example_zone, TestNet};

const OTHER: &str = "$TTL 300
@ IN SOA ns1 hostmaster 5 3600 600 86400 300
@ IN NS ns1
ns1 IN A 198.18.0.11
www IN A 198.18.0.90
";

fn config(path: &Path, storage: &Path, zones: &[(&str, &Path)]) {
    let mut text = format!(
        "[server]\nlisten = [\"[::]:53\"]\nstorage = \"{}\"\n",
        storage.display()
    );
    for (name, file) in zones {
        text.push_str(&format!(
            "\n[[zone]]\ndomain = \"{name}\"\nfile = \"{}\"\n",
            file.display()
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn hup(net: &TestNet) {
    let pid = net.server_pid().expect("server running") as i32;
    // SAFETY: kill(2) on the test's own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

#[test]
fn zones_are_added_and_removed_live_and_sighup_applies_the_configuration_or_nothing() {
    let mut net = TestNet::new().expect("test namespaces");
    let (conf, storage) = (net.dir.join("xdpdns.toml"), net.dir.join("storage"));
    let other = net.dir.join("other.zone");
    std::fs::write(&other, OTHER).unwrap();
    let example = std::path::PathBuf::from(example_zone());
    config(&conf, &storage, &[("example.", &example)]);
    net.start_server(&[], &["--config", conf.to_str().unwrap()])
        .expect("server starts");
    assert!(kdig(&net, "www.other.", "A", &[]).contains("REFUSED"));

    let out = xdpdns(&net, &["zone", "add", "other.", other.to_str().unwrap()]).unwrap();
    assert!(out.contains("added zone other. serial 5"), "{out}");
    let before = net.stats().unwrap();
    assert!(kdig(&net, "www.other.", "A", &[]).contains("198.18.0.90"));
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "xdp.answered_exact"), 1, "by XDP");
    let err = xdpdns(&net, &["zone", "add", "other.", other.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("served already"), "{err}");
    let out = xdpdns(&net, &["zone", "remove", "other."]).unwrap();
    assert!(out.contains("removed zone other."), "{out}");
    assert!(kdig(&net, "www.other.", "A", &[]).contains("REFUSED"));
    assert!(kdig(&net, "www.other.", "A", &["+tcp"]).contains("REFUSED"));
    let err = xdpdns(&net, &["zone", "remove", "other."]).unwrap_err();
    assert!(err.contains("no zone other."), "{err}");

    // SIGHUP: the zone added to the configuration file is served.
    config(
        &conf,
        &storage,
        &[("example.", &example), ("other.", &other)],
    );
    hup(&net);
    net.wait_for_status("other. served after SIGHUP", |s| {
        s.contains("zone other. serial 5") && s.contains("last reload ok")
    })
    .unwrap();
    assert!(kdig(&net, "www.other.", "A", &[]).contains("198.18.0.90"));

    // A configuration that does not parse, then one whose zone file does not load: nothing
    // changes, and status says why.
    std::fs::write(&conf, "[server\nlisten = ").unwrap();
    hup(&net);
    let s = net
        .wait_for_status("the failed reload", |s| s.contains("last reload failed"))
        .unwrap();
    assert!(s.contains("configuration"), "{s}");
    let broken = net.dir.join("broken.zone");
    std::fs::write(&broken, format!("{OTHER}bad IN A 198.18.0.300\n")).unwrap();
    config(
        &conf,
        &storage,
        &[("example.", &example), ("other.", &broken)],
    );
    hup(&net);
    let s = net
        .wait_for_status("the failed zone load", |s| s.contains("broken.zone:6"))
        .unwrap();
    assert!(s.contains("last reload failed, nothing changed"), "{s}");
    assert!(kdig(&net, "www.other.", "A", &[]).contains("198.18.0.90"));
    assert!(kdig(&net, "www.example.", "A", &[]).contains("198.18.0.80"));

    // The zone taken out of the configuration is no longer served.
    config(&conf, &storage, &[("example.", &example)]);
    hup(&net);
    net.wait_for_status("other. removed after SIGHUP", |s| {
        !s.contains("zone other.") && s.contains("last reload ok")
    })
    .unwrap();
    assert!(kdig(&net, "www.other.", "A", &[]).contains("REFUSED"));
}

#[test]
fn top_names_what_userspace_is_asked_most_and_detach_leaves_userspace_answering() {
    let mut net = TestNet::new().expect("test namespaces");
    net.start_server(&[&example_zone()], &["--listen", "[::]:53"])
        .expect("server starts");
    let before = net.stats().unwrap();
    // Wildcard answers are userspace's; TCP is always.
    for _ in 0..40 {
        assert!(kdig(&net, "foo.wild.example.", "A", &[]).contains("198.18.0.99"));
    }
    for _ in 0..12 {
        assert!(kdig(&net, "www.example.", "AAAA", &["+tcp"]).contains("fd00:53::80"));
    }
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "zone.example..queries"), 52);
    let out = xdpdns(&net, &["top", "5", "--json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let top = v["top"].as_array().unwrap();
    assert_eq!(top[0]["name"], "foo.wild.example.", "{out}");
    assert_eq!(top[0]["reason"], "no_xdp_answer", "{out}");
    assert_eq!(top[0]["type"], "A", "{out}");
    // Sampled one in 4, per thread: an estimate near 40.
    let n = top[0]["queries"].as_u64().unwrap();
    assert!((20..=60).contains(&n), "{out}");
    assert!(
        top.iter()
            .any(|t| t["name"] == "www.example." && t["reason"] == "tcp"),
        "{out}"
    );
    let text = xdpdns(&net, &["top"]).unwrap();
    assert!(text.contains("foo.wild.example."), "{text}");

    // Detach: the kernel runs no program on the interface; userspace answers what XDP did.
    assert!(net.xdp_attached(&net.server_ns, &net.server_if).unwrap());
    let out = xdpdns(&net, &["detach"]).unwrap();
    assert!(out.contains("XDP detached"), "{out}");
    assert!(!net.xdp_attached(&net.server_ns, &net.server_if).unwrap());
    let before = net.stats().unwrap();
    assert!(kdig(&net, "www.example.", "A", &[]).contains("198.18.0.80"));
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "udp.queries"), 1);
    assert_eq!(delta(&before, &after, "xdp.answered"), 0);
    assert!(net.ctl("status").unwrap().contains("xdp detached"));
    assert!(
        net.stop_server().unwrap(),
        "a detached server stops cleanly"
    );
}
