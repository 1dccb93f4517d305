//! SIGHUP applies the `[server]` settings of the answers live, on both paths at once: NSID
//! and the CH TXT identity change for XDP (UDP) and userspace (TCP) alike, with the zones
//! reloaded; settings that need a restart (here the TCP idle timeout) are named in the log and
//! change nothing; a random cookie secret (none configured) stays the same across SIGHUPs.

use std::path::Path;

use xdpdns_tests::ctl::kdig;
use xdpdns_tests::stats::delta;
use xdpdns_tests::{example_zone, TestNet};

fn config(path: &Path, storage: &Path, nsid: &str, identity: &str, idle: u32) {
    let text = format!(
        "[server]\nlisten = [\"[::]:53\"]\nstorage = \"{}\"\nnsid = \"{nsid}\"\n\
         identity = \"{identity}\"\ntcp-idle-timeout = {idle}\n\n[[zone]]\n\
         domain = \"example.\"\nfile = \"{}\"\n",
        storage.display(),
        example_zone()
    );
    std::fs::write(path, text).unwrap();
}

fn hup(net: &TestNet) {
    let pid = net.server_pid().expect("server running") as i32;
    // SAFETY: kill(2) on the test's own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

/// The NSID kdig prints (`; NSID: ... "TEXT"`), over UDP or TCP.
fn nsid(net: &TestNet, tcp: bool) -> String {
    let mut extra = vec!["+nsid"];
    if tcp {
        extra.push("+tcp");
    }
    let out = kdig(net, "example.", "SOA", &extra);
    out.lines()
        .find(|l| l.contains("NSID"))
        .unwrap_or_else(|| panic!("no NSID in {out}"))
        .to_owned()
}

fn identity(net: &TestNet, tcp: bool) -> String {
    let mut extra = vec!["-c", "CH"];
    if tcp {
        extra.push("+tcp");
    }
    kdig(net, "id.server.", "TXT", &extra)
}

#[test]
fn sighup_applies_nsid_and_identity_on_both_paths_and_names_what_waits_for_a_restart() {
    let mut net = TestNet::new().expect("test namespaces");
    let (conf, storage) = (net.dir.join("xdpdns.toml"), net.dir.join("storage"));
    config(&conf, &storage, "node-a", "one", 10);
    net.start_server(&[], &["--config", conf.to_str().unwrap()])
        .expect("server starts");
    let before = net.stats().unwrap();
    assert!(nsid(&net, false).contains("node-a"));
    let after = net.stats().unwrap();
    assert_eq!(
        delta(&before, &after, "xdp.answered"),
        1,
        "NSID answered by XDP"
    );
    assert!(nsid(&net, true).contains("node-a"));
    assert!(identity(&net, false).contains("\"one\""));
    assert!(identity(&net, true).contains("\"one\""));

    config(&conf, &storage, "node-b", "two", 20);
    hup(&net);
    net.wait_for_status("settings applied", |s| s.contains("last reload ok"))
        .unwrap();
    let before = net.stats().unwrap();
    assert!(nsid(&net, false).contains("node-b"));
    let after = net.stats().unwrap();
    assert_eq!(
        delta(&before, &after, "xdp.answered"),
        1,
        "NSID answered by XDP"
    );
    assert!(nsid(&net, true).contains("node-b"));
    assert!(identity(&net, false).contains("\"two\""));
    assert!(identity(&net, true).contains("\"two\""));
    let log = net.server_log();
    // Exactly these: the random cookie secret made in reading the file again is not applied.
    let applied = log
        .lines()
        .find(|l| l.contains("SIGHUP: settings applied: "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        applied.ends_with("settings applied: nsid, identity"),
        "{applied}"
    );
    assert!(
        log.contains("SIGHUP: tcp limits changed: takes effect at the next restart"),
        "{log}"
    );
    assert!(net.stop_server().unwrap());
}
