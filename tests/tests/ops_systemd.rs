//! The systemd unit (dist/xdpdns.service) and what the daemon does for it (issue 14):
//! - `systemd-analyze verify` passes on it without a word (its ExecStart pointed at the built
//!   binary), and the same check catches a misspelt directive;
//! - started with NOTIFY_SOCKET and WATCHDOG_USEC, the daemon sends READY=1, then WATCHDOG=1 at
//!   half the interval; SIGHUP (the unit's ExecReload) reloads a changed zone file between
//!   RELOADING=1 and READY=1, a broken one changes nothing; SIGTERM says STOPPING=1;
//! - with exactly the unit's CapabilityBoundingSet and `--user` the daemon loads and attaches
//!   XDP, drops to the user with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN and answers from
//!   XDP, and without CAP_PERFMON the verifier refuses the program.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::ops::{verify_unit, Daemon};
use xdpdns_tests::{example_zone, sh, workspace_root, xdpdns_bin, TestNet, SERVER_V4};

fn unit_text() -> String {
    std::fs::read_to_string(workspace_root().join("dist/xdpdns.service")).unwrap()
}

fn verify(dir: &Path, unit: &str) -> Result<(), String> {
    verify_unit(dir, unit, &xdpdns_bin())
}

#[test]
fn the_unit_verifies_with_systemd_analyze_and_a_misspelt_directive_does_not() {
    let dir = std::env::temp_dir().join(format!("xdpdns-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = unit_text();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    assert!(unit.lines().any(|l| l.starts_with("WatchdogSec=")));
    verify(&dir, &unit).unwrap();
    let bad = unit.replace("ProtectHome=yes", "ProtectHomee=yes");
    let said = verify(&dir, &bad).unwrap_err();
    assert!(said.contains("ProtectHomee"), "{said}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The next notification other than WATCHDOG=1, within 10 s.
fn next_state(sock: &UnixDatagram) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no notification within 10 s");
        let Ok(n) = sock.recv(&mut buf) else { continue };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg != "WATCHDOG=1" {
            return msg;
        }
    }
}

fn soa_serial(net: &TestNet) -> u32 {
    let q = Q::new("example.", 6).wire();
    let r = net
        .in_client(move || client::udp(SocketAddr::new(IpAddr::V4(SERVER_V4), 53), &q).unwrap())
        .unwrap();
    match &client::parse(&r).unwrap().answers[0].data {
        hickory_proto::rr::RData::SOA(s) => s.serial,
        other => panic!("not a SOA: {other:?}"),
    }
}

#[test]
fn ready_watchdog_pings_and_sighup_reloads_a_changed_zone_file() {
    let mut net = TestNet::new().unwrap();
    let zone = net.dir.join("example.zone");
    let text = std::fs::read_to_string(example_zone()).unwrap();
    assert!(text.contains("2026112701 ; serial"));
    std::fs::write(&zone, &text).unwrap();
    let path = net.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let notify = path.display().to_string();
    let env = [
        ("NOTIFY_SOCKET", notify.as_str()),
        ("WATCHDOG_USEC", "400000"),
    ];
    let spec = format!("example.={}", zone.display());
    net.start_server_with(&[&spec], &["--listen", "[::]:53"], &env)
        .unwrap();
    assert_eq!(next_state(&sock), "READY=1");
    assert_eq!(soa_serial(&net), 2026112701);
    // Pings every 200 ms: at least 4 in the next 1.2 s, at most 8.
    let start = Instant::now();
    let mut pings = 0;
    let mut buf = [0u8; 64];
    while start.elapsed() < Duration::from_millis(1200) {
        if let Ok(n) = sock.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1");
            pings += 1;
        }
    }
    assert!((4..=8).contains(&pings), "{pings} watchdog pings in 1.2 s");

    let pid = net.server_pid().unwrap().to_string();
    std::fs::write(
        &zone,
        text.replace("2026112701 ; serial", "2026112702 ; serial"),
    )
    .unwrap();
    sh(Command::new("kill").args(["-HUP", &pid])).unwrap();
    assert!(next_state(&sock).starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert_eq!(next_state(&sock), "READY=1");
    assert_eq!(soa_serial(&net), 2026112702, "the changed zone is served");

    // A zone file that no longer loads changes nothing, and the server goes on.
    std::fs::write(&zone, "this is not a zone\n").unwrap();
    sh(Command::new("kill").args(["-HUP", &pid])).unwrap();
    assert!(next_state(&sock).starts_with("RELOADING=1"));
    assert_eq!(next_state(&sock), "READY=1");
    assert_eq!(soa_serial(&net), 2026112702);
    assert!(net.server_running().unwrap());
    assert!(
        net.server_log()
            .contains("SIGHUP reload failed, nothing changed"),
        "{}",
        net.server_log()
    );
    assert!(net.stop_server().unwrap());
    assert_eq!(next_state(&sock), "STOPPING=1");
}

/// The unit's CapabilityBoundingSet as a setpriv bounding set (`-all,+bpf,...`).
fn unit_capabilities() -> String {
    let unit = unit_text();
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit bounds the capabilities");
    let mut set = "-all".to_owned();
    for c in caps.split_whitespace() {
        set.push_str(&format!(
            ",+{}",
            c.trim_start_matches("CAP_").to_lowercase()
        ));
    }
    set
}

/// Starts `xdpdns serve` in the server's namespace under `setpriv --bounding-set=caps`.
fn serve_with_caps(net: &TestNet, caps: &str, log: &Path) -> Daemon {
    let bin = xdpdns_bin().display().to_string();
    let control = net.control().display().to_string();
    let bounding = format!("--bounding-set={caps}");
    #[rustfmt::skip]
    let args = [
        &bounding, "--inh-caps=-all", &bin, "serve", "--listen", "[::]:53",
        "--iface", &net.server_if, "--control", &control, "--zone", &example_zone(),
        "--user", "nobody",
    ];
    Daemon::spawn(net, Path::new("setpriv"), &args, log).unwrap()
}

#[test]
fn the_units_capabilities_suffice_to_attach_xdp_and_cap_perfmon_is_needed() {
    let net = TestNet::new().unwrap();
    let caps = unit_capabilities();
    assert_eq!(
        caps,
        "-all,+bpf,+perfmon,+net_admin,+net_bind_service,+setuid,+setgid,+chown,+dac_override"
    );
    assert!(
        unit_text().contains("serve --config /etc/xdpdns/xdpdns.toml --user xdpdns"),
        "the unit drops to xdpdns"
    );
    let log = net.dir.join("caps.log");
    let mut daemon = serve_with_caps(&net, &caps, &log);
    daemon.wait_ready(&net, &log).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.0.id())).unwrap();
    // After the drop to the user (nobody here; the package's xdpdns in the unit): CAP_NET_ADMIN
    // 12, CAP_PERFMON 38, CAP_BPF 39 only, and no_new_privs.
    assert!(status.contains("CapEff:\t000000c000001000"), "{status}");
    assert!(status.contains("CapPrm:\t000000c000001000"), "{status}");
    assert!(
        status.contains("Uid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let before = net.stats().unwrap();
    let q = Q::new("www.example.", 1).wire();
    net.in_client(move || client::udp(SocketAddr::new(IpAddr::V4(SERVER_V4), 53), &q).unwrap())
        .unwrap();
    let after = net.stats().unwrap();
    assert_eq!(
        xdpdns_tests::counter_delta(&before, &after, "xdp.answered_exact").unwrap(),
        1,
        "answered in XDP"
    );
    drop(daemon);

    // Without CAP_PERFMON the verifier refuses the program's pointer arithmetic.
    let without = caps.replace(",+perfmon", "");
    let mut daemon = serve_with_caps(&net, &without, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let exited = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running without CAP_PERFMON"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!exited.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("the kernel rejected the XDP program: Permission denied"),
        "{text}"
    );
}
