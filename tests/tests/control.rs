//! The control socket under misbehaving clients: one that connects and sends nothing must not
//! hold up `xdpdns stats` from another (and is itself answered with an error after the read
//! timeout), and an over-long request is rejected.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let r = send(&net, format!("{:<1023}\n", "stats").as_bytes());
    assert!(r.starts_with("ok\n") && r.contains("udp.queries "), "{r}");
    let r = send(&net, b"no-such-command\n");
    assert!(r.starts_with("error\nunknown command"), "{r}");
}
