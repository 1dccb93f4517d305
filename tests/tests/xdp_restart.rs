//! Restarts that never stop the XDP path (`serve --xdp-pin NAME`): the daemon is killed with
//! SIGKILL under a bounded query load of names XDP answers, and every one of those queries is
//! answered — by the program its pinned link keeps attached while the daemon is down, then by
//! the same program and maps, adopted by the new daemon without refilling them — while a
//! name only userspace answers goes unanswered until the daemon is back. A zone changed while
//! the daemon was down is republished into the adopted maps, and no old answer comes after a
//! new one on either path, and so is a setting changed while it was down; a pin whose record
//! names another eBPF object is replaced, its counters carried. Maps grown by a reload are
//! pinned in place and answer (tail calls included) after a kill; with `--user` the record is
//! kept after the drop; `--xdp-mode off` detaches a pinned program. A clean stop detaches and
//! unpins everything; with `--keep-xdp` all stays for the next start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RData;
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::ctl::{kdig, server_xdp_prog, xdpdns};
use xdpdns_tests::load::{Expect, Load};
use xdpdns_tests::{example_zone, TestNet, SERVER_V4, SERVER_V6};

/// Whether userspace answers the wildcard name (XDP passes it).
fn userspace_answers(net: &TestNet) -> bool {
    let out = net
        .client_cmd("kdig")
        .args([
            "@198.18.0.1",
            "+timeout=1",
            "+retry=0",
            "x.wild.example.",
            "A",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("198.18.0.99")
}

struct Pinned {
    net: TestNet,
    args: Vec<String>,
    link: PathBuf,
    /// The record of what the pinned maps hold.
    record: PathBuf,
    zone: String,
}

impl Pinned {
    fn new() -> Pinned {
        let net = TestNet::new().expect("test namespaces");
        let name = format!("test-{}", net.server_if);
        let link = PathBuf::from(format!("/sys/fs/bpf/xdpdns/{name}/link"));
        let storage = net.dir.join("storage");
        let record = storage.join("xdp-pin").join(format!("{name}.json"));
        let args = [
            "--listen",
            "[::]:53",
            "--xdp-pin",
            &name,
            "--storage",
            storage.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        Pinned {
            net,
            args,
            link,
            record,
            zone: example_zone(),
        }
    }

    fn start(&mut self, extra: &[&str]) {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra);
        self.net
            .start_server(&[&self.zone], &args)
            .expect("server starts");
    }

    /// `xdpdns map check` finds every entry equal to the engine's.
    fn map_check_ok(&self) {
        let out = xdpdns(&self.net, &["map", "check"]).expect("map check passes");
        assert!(
            out.contains(" 0 missing, 0 unexpected, 0 different")
                && out.contains(" 0 of other generations"),
            "{out}"
        );
    }

    fn status(&self) -> String {
        self.net.ctl("status").expect("status")
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Never leave a pin behind, whatever failed.
        let dir = self.link.parent().unwrap().to_owned();
        let _ = std::fs::remove_file(&self.link);
        for f in ["prog", "jump"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        if let Ok(maps) = std::fs::read_dir(dir.join("maps")) {
            for m in maps.flatten() {
                let _ = std::fs::remove_file(m.path());
            }
        }
        let _ = std::fs::remove_dir(dir.join("maps"));
        let _ = std::fs::remove_dir(dir);
    }
}

#[test]
fn a_killed_daemon_leaves_xdp_answering_and_the_next_start_takes_over_atomically() {
    let mut p = Pinned::new();
    p.start(&[]);
    assert!(p.link.exists(), "pinned at {}", p.link.display());
    let first = server_xdp_prog(&p.net).expect("attached");
    assert!(userspace_answers(&p.net));

    let q = |n: &str, t, rc| Expect::new(n, t, rc);
    let load = Load {
        targets: vec![
            SocketAddr::new(IpAddr::V4(SERVER_V4), 53),
            SocketAddr::new(IpAddr::V6(SERVER_V6), 53),
        ],
        queries: vec![
            q("www.example.", 1, 0),
            q("example.", 6, 0),
            q("ns1.nic.example.", 28, 0),
            q("nothere.example.", 1, 3),
        ],
        rate: 400,
        duration: Duration::from_secs(30),
        timeout: Duration::from_millis(500),
        tcp_every: 0,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let running = load.spawn(&p.net.client_ns, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    p.net.kill_server().unwrap();
    // Down: the program stays attached, the misses it passes go unanswered.
    assert_eq!(
        server_xdp_prog(&p.net),
        Some(first),
        "still attached after SIGKILL"
    );
    assert!(!userspace_answers(&p.net));
    std::thread::sleep(Duration::from_millis(500));
    p.start(&[]);
    let second = server_xdp_prog(&p.net).expect("attached");
    assert_eq!(first, second, "the same binary adopts the pinned program");
    assert!(userspace_answers(&p.net), "misses resume with the daemon");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let t = running.join().unwrap().unwrap().unwrap();
    println!("load across the SIGKILL and restart: {t:?}");
    assert!(t.sent > 400, "{t:?}");
    assert_eq!((t.unanswered, t.wrong, t.servfail), (0, 0, 0), "{t:?}");
    assert_eq!(t.answered, t.sent, "{t:?}");
    let log = p.net.server_log();
    // Adopted with its maps, not refilled: one fill in the whole log, the first start's.
    assert!(
        log.contains("adopted the XDP program and maps pinned at")
            && log.contains("generation 1 kept, the maps hold the zones' answers"),
        "{log}"
    );
    assert_eq!(log.matches("XDP generation 1:").count(), 1, "{log}");
    let status = p.status();
    assert!(status.contains("xdp start: adopted"), "{status}");
    p.map_check_ok();
    // The restarted server read which template each slot of the pinned cache holds: every
    // stored template is cached, none is taken for cold.
    let stats = p.net.stats().unwrap();
    assert!(stats.value("xdp.templates") > 0);
    assert_eq!(
        stats.value("xdp.templates_cached"),
        stats.value("xdp.templates")
    );
    assert!(kdig(&p.net, "www.example.", "A", &[]).contains("198.18.0.80"));
    assert!(kdig(&p.net, "www.example.", "A", &["+tcp"]).contains("198.18.0.80"));

    // A clean stop detaches and unpins everything.
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None);
    assert!(!p.link.exists());
    assert!(
        !p.link.parent().unwrap().exists(),
        "maps and program unpinned"
    );
}

#[test]
fn keep_xdp_leaves_the_program_attached_for_the_next_start() {
    let mut p = Pinned::new();
    p.start(&["--keep-xdp"]);
    let first = server_xdp_prog(&p.net).expect("attached");
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), Some(first), "kept attached");
    assert!(p.link.exists());
    p.start(&[]);
    let second = server_xdp_prog(&p.net).expect("attached");
    assert_eq!(first, second, "adopted");
    assert!(p.status().contains("generation 1 kept"));
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None);
    assert!(!p.link.exists());
}

/// The version of the example zone an answer for www.example. A belongs to (1: 198.18.0.80,
/// 2: 198.18.0.82).
fn www_version(resp: &[u8]) -> Option<u8> {
    let m = client::parse(resp).ok()?;
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) if a.0 == Ipv4Addr::new(198, 18, 0, 80) => Some(1),
        RData::A(a) if a.0 == Ipv4Addr::new(198, 18, 0, 82) => Some(2),
        _ => None,
    })
}

#[test]
fn a_zone_changed_while_the_daemon_was_down_is_never_answered_old_after_new() {
    let mut p = Pinned::new();
    let v1 = std::fs::read_to_string(example_zone()).unwrap();
    let zone = p.net.dir.join("example.zone");
    std::fs::write(&zone, &v1).unwrap();
    p.zone = zone.to_str().unwrap().to_owned();
    p.start(&[]);
    let first = server_xdp_prog(&p.net).expect("attached");

    // A sequential client: www over UDP (XDP), then over TCP (userspace), noting the version
    // of every answer in the order they come.
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let poller = p.net.spawn_in_client(move || {
        let server = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
        let msg = Q::new("www.example.", 1).wire();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s2.load(Ordering::Relaxed) && Instant::now() < deadline {
            if let Some(v) = client::udp(server, &msg).ok().and_then(|r| www_version(&r)) {
                seen.push(("udp", v));
            }
            let tcp = client::tcp(server, std::slice::from_ref(&msg));
            if let Some(v) = tcp.ok().and_then(|r| www_version(r.first()?)) {
                seen.push(("tcp", v));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(300));
    p.net.kill_server().unwrap();
    let v2 = v1
        .replace("2026112701 ; serial", "2026112702 ; serial")
        .replace("198.18.0.80", "198.18.0.82");
    std::fs::write(&zone, v2).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().unwrap().unwrap();
    let new_at = seen
        .iter()
        .position(|(_, v)| *v == 2)
        .expect("version 2 served");
    let old_after: Vec<_> = seen[new_at..].iter().filter(|(_, v)| *v == 1).collect();
    assert!(
        old_after.is_empty(),
        "old answers after a new one: {seen:?}"
    );
    assert!(seen[..new_at].iter().any(|(p, _)| *p == "udp"), "{seen:?}");
    assert!(seen[new_at..].iter().any(|(p, _)| *p == "udp"), "{seen:?}");
    assert!(seen[new_at..].iter().any(|(p, _)| *p == "tcp"), "{seen:?}");

    let log = p.net.server_log();
    assert!(
        log.contains("passes everything until the new generation serves (zones changed"),
        "{log}"
    );
    assert!(log.contains("republished as generation 2"), "{log}");
    assert_eq!(
        server_xdp_prog(&p.net),
        Some(first),
        "same program, adopted"
    );
    p.map_check_ok();
    let udp = kdig(&p.net, "example.", "SOA", &[]);
    let tcp = kdig(&p.net, "example.", "SOA", &["+tcp"]);
    assert!(
        udp.contains("2026112702") && tcp.contains("2026112702"),
        "{udp}\n{tcp}"
    );
    let stats = p.net.stats().unwrap();
    assert!(stats.get("xdp.answered").unwrap() > 0);

    // Restarted once more with nothing changed: kept as republished.
    p.net.kill_server().unwrap();
    p.start(&[]);
    assert!(p.status().contains("generation 2 kept"), "{}", p.status());
    p.map_check_ok();
    assert!(p.net.stop_server().unwrap());
    assert!(!p.link.exists());
}

#[test]
fn a_pin_of_another_ebpf_object_is_replaced_and_its_counters_carried() {
    let mut p = Pinned::new();
    p.start(&[]);
    let first = server_xdp_prog(&p.net).expect("attached");
    for _ in 0..5 {
        assert!(kdig(&p.net, "www.example.", "A", &[]).contains("198.18.0.80"));
    }
    let answered = p.net.counter("xdp.answered").unwrap();
    assert!(answered >= 5);
    p.net.kill_server().unwrap();
    // As if another binary had pinned it.
    let record = std::fs::read_to_string(&p.record).expect("a record beside the storage");
    let mut v: serde_json::Value = serde_json::from_str(&record).unwrap();
    v["fingerprint"] = serde_json::Value::String("0".repeat(64));
    std::fs::write(&p.record, v.to_string()).unwrap();
    p.start(&[]);
    let second = server_xdp_prog(&p.net).expect("attached");
    assert_ne!(first, second, "replaced by this binary's program");
    let log = p.net.server_log();
    assert!(
        log.contains("is not adopted (it was built from another eBPF object"),
        "{log}"
    );
    assert!(p.status().contains("xdp start: loaded this binary's"));
    assert!(
        p.net.counter("xdp.answered").unwrap() >= answered,
        "carried"
    );
    p.map_check_ok();
    assert!(kdig(&p.net, "www.example.", "A", &[]).contains("198.18.0.80"));
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None);
    assert!(!p.link.exists());
}

#[test]
fn with_user_the_record_is_kept_after_the_drop_and_the_next_start_adopts() {
    let mut p = Pinned::new();
    p.start(&["--user", "nobody"]);
    let first = server_xdp_prog(&p.net).expect("attached");
    // A publication after the drop writes the record as the user.
    let out = p.net.ctl("reload").expect("reload as nobody");
    assert!(out.contains("xdp generation 2"), "{out}");
    let record = std::fs::read_to_string(&p.record).unwrap();
    let v: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(
        (v["generation"].as_u64(), v["clean"].as_bool()),
        (Some(2), Some(true))
    );
    p.net.kill_server().unwrap();
    p.start(&["--user", "nobody"]);
    assert_eq!(server_xdp_prog(&p.net), Some(first));
    assert!(p.status().contains("generation 2 kept"), "{}", p.status());
    p.map_check_ok();
    assert!(kdig(&p.net, "www.example.", "A", &[]).contains("198.18.0.80"));
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None, "{}", p.net.server_log());
    assert!(!p.link.exists());
}

#[test]
fn a_setting_changed_while_the_daemon_was_down_is_republished_before_userspace_answers() {
    let mut p = Pinned::new();
    p.start(&["--identity", "one"]);
    let id = |p: &Pinned, extra: &[&str]| {
        let mut e = vec!["-c", "CH"];
        e.extend(extra);
        kdig(&p.net, "id.server.", "TXT", &e)
    };
    assert!(id(&p, &[]).contains("\"one\""));
    p.net.kill_server().unwrap();
    p.start(&["--identity", "two"]);
    let log = p.net.server_log();
    assert!(
        log.contains(
            "passes everything until the new generation serves (the answers' settings changed"
        ),
        "{log}"
    );
    assert!(
        p.status().contains("republished as generation 2"),
        "{}",
        p.status()
    );
    let before = p.net.stats().unwrap();
    assert!(id(&p, &[]).contains("\"two\""));
    let after = p.net.stats().unwrap();
    assert_eq!(
        xdpdns_tests::stats::delta(&before, &after, "xdp.answered"),
        1,
        "by XDP"
    );
    assert!(id(&p, &["+tcp"]).contains("\"two\""));
    p.map_check_ok();
    assert!(p.net.stop_server().unwrap());
}

#[test]
fn a_start_with_xdp_off_detaches_the_pinned_program() {
    let mut p = Pinned::new();
    p.start(&[]);
    assert!(server_xdp_prog(&p.net).is_some());
    p.net.kill_server().unwrap();
    p.start(&["--xdp-mode", "off"]);
    assert_eq!(server_xdp_prog(&p.net), None, "{}", p.net.server_log());
    assert!(!p.link.exists());
    assert!(p
        .net
        .server_log()
        .contains("XDP is off: the program pinned at"));
    let before = p.net.stats().unwrap();
    assert!(kdig(&p.net, "www.example.", "A", &[]).contains("198.18.0.80"));
    let after = p.net.stats().unwrap();
    assert_eq!(
        xdpdns_tests::stats::delta(&before, &after, "udp.queries"),
        1
    );
    assert!(p.net.stop_server().unwrap());
}

#[test]
fn maps_grown_by_a_reload_are_pinned_in_place_and_adopted_after_a_kill() {
    let mut p = Pinned::new();
    let file = p.net.dir.join("tld.zone");
    std::fs::write(&file, xdpdns_tests::tld::zone_text("tld.", 4)).unwrap();
    p.zone = format!("tld.={}", file.display());
    p.start(&[]);
    let small = server_xdp_prog(&p.net).expect("attached");
    let grown =
        xdpdns_tests::tld::zone_text("tld.", 20_000).replace(" 2026112701 ", " 2026112702 ");
    std::fs::write(&file, grown).unwrap();
    let out = xdpdns(&p.net, &["zone", "reload", "tld."]).expect("reloaded");
    assert!(out.contains("serial 2026112702"), "{out}");
    assert!(p.net.server_log().contains("loading the program again"));
    let large = server_xdp_prog(&p.net).expect("attached");
    assert_ne!(small, large, "grown");
    p.net.kill_server().unwrap();
    // Down: the grown program answers, its tail calls through the JUMP pinned in place.
    let r = kdig(&p.net, "x.d19998.tld.", "A", &[]);
    assert!(
        r.contains("NOERROR") && r.contains("ns1.d19998.tld."),
        "{r}"
    );
    p.start(&[]);
    assert_eq!(server_xdp_prog(&p.net), Some(large));
    assert!(p.status().contains("kept"), "{}", p.status());
    p.map_check_ok();
    let before = p.net.stats().unwrap();
    let r = kdig(&p.net, "x.d19998.tld.", "A", &[]);
    assert!(r.contains("ns1.d19998.tld."), "{r}");
    let after = p.net.stats().unwrap();
    assert_eq!(
        xdpdns_tests::stats::delta(&before, &after, "xdp.answered"),
        1
    );
    assert!(p.net.stop_server().unwrap());
    assert!(!p.link.exists());
}
