//! `xdpdns health`, the anycast check (issue 14), end to end: its exit code and one line for a
//! healthy server with XDP; XDP detached behind the daemon's back (`bpftool link detach` of the
//! daemon's XDP link: aya attaches with a BPF link, which `ip link set dev IF xdp off` cannot
//! remove); the daemon stopped; a secondary zone expired under `honour` (the test clock moved
//! past EXPIRE, its primary unreachable); a secondary zone with no copy at all.

use std::process::Command;
use std::time::{Duration, Instant};

use xdpdns_tests::seeded::Seeded;
use xdpdns_tests::{example_zone, ip, sh, xdpdns_bin, TestNet};

/// `xdpdns health` against the test server: exit code and output.
fn health(net: &TestNet) -> (i32, String) {
    let out = Command::new(xdpdns_bin())
        .args(["health", "--timeout", "3", "--control"])
        .arg(net.control())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    (
        out.status.code().expect("exited"),
        text.trim_end().to_owned(),
    )
}

/// Polls `health` until it exits with `code` (at most 15 s); its line.
fn wait_for_health(net: &TestNet, code: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (c, line) = health(net);
        if c == code {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "health still {c} ({line}), waiting for {code}:\n{}",
            net.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The id of the XDP program on `ifname` in `ns`, from `ip -j -d link`.
fn xdp_prog_on(ns: &str, ifname: &str) -> Option<u64> {
    let out = ip(&["-n", ns, "-j", "-d", "link", "show", "dev", ifname]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["xdp"]["prog"]["id"].as_u64()
}

#[test]
fn healthy_then_unhealthy_when_xdp_is_detached_then_unreachable_when_stopped() {
    let mut net = TestNet::new().unwrap();
    net.start_server(&[&example_zone()], &["--listen", "[::]:53"])
        .unwrap();
    let prog = xdp_prog_on(&net.server_ns, &net.server_if).expect("XDP attached");
    let (code, line) = health(&net);
    assert_eq!(code, 0, "{line}");
    let want = format!(
        "ok 1 zones served, xdp attached {} (prog {prog})",
        net.server_if
    );
    assert_eq!(line, want);

    // Behind the daemon's back: the BPF link holding our program on the interface detached.
    let links: serde_json::Value =
        serde_json::from_str(&sh(Command::new("bpftool").args(["-j", "link", "show"])).unwrap())
            .unwrap();
    let link = links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["prog_id"].as_u64() == Some(prog))
        .and_then(|l| l["id"].as_u64())
        .expect("the XDP link of the daemon's program");
    sh(Command::new("bpftool").args(["link", "detach", "id", &link.to_string()])).unwrap();
    assert_eq!(xdp_prog_on(&net.server_ns, &net.server_if), None);
    let (code, line) = health(&net);
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        format!(
            "unhealthy: XDP detached from {}: no program attached",
            net.server_if
        )
    );

    assert!(net.stop_server().unwrap(), "the server stops cleanly");
    let (code, line) = health(&net);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("unreachable: connecting to the server's control socket"),
        "{line}"
    );
}

#[test]
fn a_zone_expired_under_honour_or_without_a_copy_is_unhealthy() {
    let mut net = TestNet::new().unwrap();
    let seeded = Seeded::new(&net, 1_900_000_000, "honour").unwrap();
    seeded.start(&mut net, &["--listen", "[::]:53"]).unwrap();
    let line = wait_for_health(&net, 0);
    assert!(
        line.starts_with("ok 2 zones served, xdp attached"),
        "{line}"
    );
    seeded.advance_to(86400 + 60).unwrap();
    let line = wait_for_health(&net, 1);
    assert_eq!(
        line,
        "unhealthy: zone tld. expired 60 s ago (expire-policy honour: SERVFAIL)"
    );
    assert!(net.stop_server().unwrap());

    // A secondary zone that never had a copy: nothing to announce.
    #[rustfmt::skip]
    let args = [
        "--listen", "[::]:53", "--xdp-mode", "off", "--primary", "none.=127.0.0.1@5399",
        "--storage", &net.dir.join("storage2").display().to_string(),
    ];
    net.start_server(&[], &args).unwrap();
    let (code, line) = health(&net);
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        "unhealthy: zone none. has no copy yet (SERVFAIL until its first transfer)"
    );
}
