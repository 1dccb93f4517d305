//! The control socket under misbehaving clients: one that connects and sends nothing must not
//! hold up `xdpdns stats` from another (and is itself answered with an error after the read
//! timeout), and an over-long request is rejected. The protocol: a request of another version
//! (or none) is refused naming the versions, the socket is root's only (0600), every command
//! answers in JSON with `--json`, `stats --watch` prints rates, and a CLI that cannot reach the
//! daemon says so.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xdpdns::daemon::control::PROTOCOL;
use xdpdns_tests::ctl::cli;
use xdpdns_tests::TestNet;

fn started() -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    net.start_server(
        &[&xdpdns_tests::example_zone()],
        &["--listen", "[::]:53", "--xdp-mode", "off"],
    )
    .expect("server starts");
    net
}

/// Runs `xdpdns stats` against the server; its output, or an error if it takes over `within`.
fn stats_within(net: &TestNet, within: Duration) -> Result<String, String> {
    let mut child = Command::new(xdpdns_tests::xdpdns_bin())
        .args(["stats", "--control"])
        .arg(net.control())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`xdpdns stats` took over {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    Ok(String::from_utf8(out.stdout).unwrap())
}

/// Everything the server sends on `s` until it closes, within 10 s.
fn reply(mut s: UnixStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .expect("the server replies and closes");
    out
}

#[test]
fn a_silent_client_holds_up_no_one_and_is_dropped_after_the_read_timeout() {
    let net = started();
    let silent: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(net.control()).unwrap())
        .collect();
    let opened = Instant::now();
    // Several requests at once, while the silent ones are connected.
    let stats: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| stats_within(&net, Duration::from_secs(3))))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for s in stats {
        let s = s.unwrap();
        assert!(s.contains("udp.queries "), "{s}");
    }
    for s in silent {
        let r = reply(s);
        assert!(r.starts_with("error\nno command within"), "{r}");
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(4),
        "dropped only after the read timeout (5 s): {waited:?}"
    );
}

/// Sends `request` on a new control connection; returns the reply.
fn send(net: &TestNet, request: &[u8]) -> String {
    let mut s = UnixStream::connect(net.control()).unwrap();
    s.write_all(request).unwrap();
    reply(s)
}

#[test]
fn an_over_long_request_is_rejected() {
    let net = started();
    let r = send(&net, &[b's'; 10_000]);
    assert!(
        r.starts_with("error\ncommand longer than 1024 bytes"),
        "{r}"
    );
    // A command right at the limit (newline included) still works.
    let line = format!("{PROTOCOL} stats");
    let r = send(&net, format!("{line:<1023}\n").as_bytes());
    assert!(r.starts_with("ok\n") && r.contains("udp.queries "), "{r}");
    let r = send(&net, format!("{PROTOCOL} no-such-command\n").as_bytes());
    assert!(r.starts_with("error\nunknown command"), "{r}");
}

#[test]
fn requests_of_another_protocol_version_are_refused_and_the_socket_is_roots_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let net = started();
    let r = send(&net, b"xdpdns-control/9 stats\n");
    assert!(
        r.starts_with("error\ncontrol protocol mismatch") && r.contains(PROTOCOL),
        "{r}"
    );
    let r = send(&net, b"stats\n");
    assert!(r.starts_with("error\nnot a control request"), "{r}");
    let mode = std::fs::metadata(net.control())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn every_command_answers_in_json_and_stats_watch_prints_rates() {
    let net = started();
    let json = |args: &[&str]| -> serde_json::Value {
        let (ok, out, err) = cli(&net, args);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let stats = json(&["stats", "--json"]);
    assert!(stats["udp.queries"].is_u64(), "{stats}");
    let status = json(&["status", "--json"]);
    assert_eq!(status["zones"][0]["zone"], "example.", "{status}");
    assert_eq!(status["zones"][0]["serial"], 2026112701, "{status}");
    assert!(status["uptime_seconds"].is_u64(), "{status}");
    let reload = json(&["reload", "--json"]);
    assert_eq!(reload["zones_from_files"], 1, "{reload}");
    let health = json(&["health", "--json"]);
    assert_eq!(health["healthy"], true, "{health}");
    // A failing command: the error as JSON, exit 1.
    let (ok, out, _) = cli(&net, &["zone", "reload", "nosuch.", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        !ok && v["error"].as_str().unwrap().contains("nosuch."),
        "{out}"
    );
    // Three watch lines, bounded, with the userspace path's rate (queries sent meanwhile).
    let net = std::sync::Arc::new(net);
    let asker = {
        let n = net.clone();
        std::thread::spawn(move || {
            for _ in 0..10 {
                let _ = xdpdns_tests::sh(n.client_cmd("kdig").args([
                    "@198.18.0.1",
                    "+timeout=1",
                    "+retry=0",
                    "www.example.",
                    "A",
                ]));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (ok, out, err) = cli(
        &net,
        &["stats", "--watch", "--interval", "0.3", "--count", "3"],
    );
    asker.join().unwrap();
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("q/s: tcp ")), "{out}");
    assert!(out.contains("userspace by zone: example. "), "{out}");
    let (ok, out, _) = cli(
        &net,
        &[
            "stats",
            "--watch",
            "--json",
            "--interval",
            "0.2",
            "--count",
            "1",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(ok && v["rates"]["path"]["udp"].is_number(), "{out}");
}

#[test]
fn a_cli_that_cannot_reach_the_daemon_says_so() {
    let out = Command::new(xdpdns_tests::xdpdns_bin())
        .args(["status", "--control", "/nonexistent/xdpdns.sock"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("/nonexistent/xdpdns.sock") && err.contains("is `xdpdns serve` running?"),
        "{err}"
    );
}
