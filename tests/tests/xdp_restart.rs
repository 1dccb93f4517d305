//! Restarts that never stop the XDP path (`serve --xdp-pin NAME`): the daemon is killed with
//! SIGKILL under a bounded query load of names XDP answers, and every one of those queries is
//! answered — by the program its pinned link keeps attached while the daemon is down, then by
//! the new daemon's program, which takes the old one's place in the link atomically — while a
//! name only userspace answers goes unanswered until the daemon is back. A clean stop detaches
//! and unpins; with `--keep-xdp` the program stays attached for the next start to adopt.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use xdpdns_tests::ctl::server_xdp_prog;
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
}

impl Pinned {
    fn new() -> Pinned {
        let net = TestNet::new().expect("test namespaces");
        let name = format!("test-{}", net.server_if);
        let link = PathBuf::from(format!("/sys/fs/bpf/xdpdns/{name}/link"));
        let args = ["--listen", "[::]:53", "--xdp-pin", &name]
            .map(String::from)
            .to_vec();
        Pinned { net, args, link }
    }

    fn start(&mut self, extra: &[&str]) {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra);
        self.net
            .start_server(&[&example_zone()], &args)
            .expect("server starts");
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Never leave a pin behind, whatever failed.
        let _ = std::fs::remove_file(&self.link);
        let _ = self.link.parent().map(std::fs::remove_dir);
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
    assert_ne!(first, second, "the new program took the old one's place");
    assert!(userspace_answers(&p.net), "misses resume with the daemon");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let t = running.join().unwrap().unwrap().unwrap();
    println!("load across the SIGKILL and restart: {t:?}");
    assert!(t.sent > 400, "{t:?}");
    assert_eq!((t.unanswered, t.wrong, t.servfail), (0, 0, 0), "{t:?}");
    assert_eq!(t.answered, t.sent, "{t:?}");
    let log = p.net.server_log();
    assert!(log.contains("adopted the XDP link pinned at"), "{log}");

    // A clean stop detaches and unpins.
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None);
    assert!(!p.link.exists());
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
    assert_ne!(first, second);
    assert!(p.net.stop_server().unwrap());
    assert_eq!(server_xdp_prog(&p.net), None);
    assert!(!p.link.exists());
}
