//! Least privilege (issue 13): `serve --user nobody` started as root, with XDP on the veth, a
//! zone file and a secondary zone from a knotd primary (tests/src/upstream.rs). Once started,
//! every thread of the daemon is uid/gid 65534 with no supplementary groups, only CAP_BPF,
//! CAP_PERFMON and CAP_NET_ADMIN effective and permitted, nothing inheritable or ambient, and
//! no_new_privs. It still answers over XDP and userspace; a reload (maps republished), a
//! secondary zone's IXFR that outgrows the maps (the program loaded again and swapped in on
//! the interface) and the storage written by the user all work after the drop; the control
//! socket is root's (0600), and a client of another uid is refused by its credentials even
//! when the file would let it in; SIGTERM still detaches the program.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Command;
use std::time::Duration;

use xdpdns::daemon::privilege::kept_mask;
use xdpdns::wire::name::Name;
use xdpdns::xfr::notify;
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::upstream::{Upstream, EDGE_V4, UPSTREAM_V4};
use xdpdns_tests::{example_zone, in_netns, xdpdns_bin, TestNet, SERVER_V4};

const NOBODY: u32 = 65534;

fn key() -> TsigKey {
    TsigKey::new(
        "privilege-test.example.",
        "hmac-sha256",
        b"least privilege test key",
    )
}

/// tld. at `serial`, with `delegations` delegations.
fn zone(serial: u32, delegations: usize) -> String {
    let mut z = format!(
        "$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\n\
         ns A 198.18.0.1\nwww A 198.18.0.80\n"
    );
    for i in 0..delegations {
        z.push_str(&format!("d{i} NS ns{}.hosting.test.\n", i % 50));
    }
    z
}

/// The fields of a /proc status file.
fn status(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(s: &'a [(String, String)], k: &str) -> &'a str {
    &s.iter()
        .find(|(n, _)| n == k)
        .unwrap_or_else(|| panic!("no {k}"))
        .1
}

/// Answers to `name` `qtype` over UDP from the client: (RCODE, answer count).
fn udp(net: &TestNet, name: &str, qtype: u16) -> (u8, usize) {
    let q = Q::new(name, qtype).wire();
    let to = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
    let r = net.in_client(move || client::udp(to, &q)).unwrap().unwrap();
    (r[3] & 0x0f, client::parse(&r).unwrap().answers.len())
}

fn xdp_answered(net: &TestNet) -> u64 {
    net.counter("xdp.answered").unwrap()
}

/// `xdpdns stats` run as `uid`; its exit status and output.
fn stats_as(uid: u32, control: &std::path::Path) -> (bool, String) {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ])
        .arg(xdpdns_bin())
        .args(["stats", "--control"])
        .arg(control)
        .output()
        .expect("setpriv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn serve_user_drops_root_and_keeps_serving_reloading_and_transferring() {
    let mut net = TestNet::new().unwrap();
    let up = Upstream::new(&net).unwrap();
    let k = key();
    let opts = KnotOptions {
        keys: vec![k.clone()],
        journal: true,
        site: Some(up.site(53)),
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 53, "tld.", &zone(1, 0), &opts).unwrap();
    let storage = net.dir.join("storage");
    let args = [
        "--listen".to_owned(),
        "[::]:53".to_owned(),
        "--storage".to_owned(),
        storage.display().to_string(),
        "--key".to_owned(),
        format!("{}:{}:{}", k.name, k.algorithm, k.secret),
        "--primary".to_owned(),
        format!("tld.={UPSTREAM_V4}@53,key={}", k.name),
        "--zone".to_owned(),
        format!("example.={}", example_zone()),
        "--user".to_owned(),
        "nobody".to_owned(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    net.start_server(&[], &a).unwrap();
    net.wait_for_status("the first transfer", |s| {
        s.contains("secondary tld. serial 1 ")
    })
    .unwrap();
    let log = net.server_log();
    assert!(log.contains("running as user nobody (uid 65534"), "{log}");

    // Every thread: the user, the kept capabilities only, no_new_privs.
    let pid = net.server_pid().unwrap();
    let kept = format!("{:016x}", kept_mask());
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(tasks.len() > 2, "threads {tasks:?}");
    for t in &tasks {
        let s = status(&format!("/proc/{pid}/task/{t}/status"));
        let all = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
        assert_eq!(field(&s, "Uid"), all, "thread {t}");
        assert_eq!(field(&s, "Gid"), all, "thread {t}");
        assert_eq!(field(&s, "Groups"), "", "thread {t}");
        assert_eq!(field(&s, "CapEff"), kept, "thread {t}");
        assert_eq!(field(&s, "CapPrm"), kept, "thread {t}");
        assert_eq!(field(&s, "CapInh"), "0000000000000000", "thread {t}");
        assert_eq!(field(&s, "CapAmb"), "0000000000000000", "thread {t}");
        assert_eq!(field(&s, "NoNewPrivs"), "1", "thread {t}");
    }

    // Answers over XDP (UDP) and from userspace (TCP).
    let before = xdp_answered(&net);
    assert_eq!(udp(&net, "example.", 6), (0, 1));
    assert_eq!(udp(&net, "www.tld.", 1), (0, 1));
    assert_eq!(xdp_answered(&net) - before, 2, "both answered in XDP");
    let q = Q::new("www.example.", 1).wire();
    let to = SocketAddr::new(IpAddr::V4(SERVER_V4), 53);
    let r = net
        .in_client(move || client::tcp(to, &[q]))
        .unwrap()
        .unwrap();
    assert_eq!(client::parse(&r[0]).unwrap().answers.len(), 2, "TCP");

    // A reload republishes the maps.
    let out = net.ctl("reload").unwrap();
    assert!(out.contains("xdp generation"), "{out}");
    assert_eq!(udp(&net, "example.", 6), (0, 1));

    // A secondary zone change that outgrows the maps: the program is loaded again.
    knot.update(&zone(2, 20_000)).unwrap();
    let z = Name::parse("tld.", None).unwrap();
    let signer = k.key();
    in_netns(&up.ns, move || {
        let to = SocketAddr::new(IpAddr::V4(EDGE_V4), 53);
        notify::send(to, &z, None, Some(&signer), Duration::from_secs(2), 3)
    })
    .unwrap()
    .expect("NOTIFY accepted");
    net.wait_for_status("the change", |s| s.contains("secondary tld. serial 2 "))
        .unwrap();
    let log = net.server_log();
    assert!(log.contains("loading the program again"), "{log}");
    let before = xdp_answered(&net);
    let log = net.server_log();
    assert_eq!(udp(&net, "d19999.tld.", 2).0, 0, "a referral: {log}");
    assert_eq!(udp(&net, "x.d1234.tld.", 1).0, 0, "a referral: {log}");
    assert_eq!(xdp_answered(&net) - before, 2, "the new version in XDP");
    let mut written = 0;
    for e in std::fs::read_dir(storage.join("tld")).unwrap() {
        let m = e.unwrap().metadata().unwrap();
        assert_eq!(m.uid(), NOBODY, "storage is the user's");
        written += 1;
    }
    assert!(written > 0, "the versions are stored");

    // The control socket: root's, 0600; another uid is refused even when the file lets it in.
    let control = net.control();
    let m = std::fs::metadata(&control).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
    let (ok, text) = stats_as(4242, &control);
    assert!(!ok && text.contains("ermission denied"), "{text}");
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, text) = stats_as(4242, &control);
    assert!(!ok, "uid 4242 got: {text}");
    assert!(!text.contains("udp.queries"), "{text}");
    let log = net.server_log();
    assert!(
        log.contains("uid 4242") && log.contains("may not use it"),
        "{log}"
    );
    assert!(
        net.ctl("stats").unwrap().contains("udp.queries"),
        "root still may"
    );

    // SIGTERM: the program is detached.
    assert!(net.stop_server().unwrap(), "{}", net.server_log());
    assert!(net.server_log().contains("XDP detached"));
    assert!(!net.xdp_attached(&net.server_ns, &net.server_if).unwrap());
}
