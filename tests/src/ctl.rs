//! Helpers of the operator control tests (tests/tests/control*.rs): the `xdpdns` CLI against
//! the test server's control socket, and kdig from the client namespace.

use std::process::Command;

use crate::{sh, TestNet};

/// `xdpdns ARGS --control ...`: (exit success, stdout, stderr).
pub fn cli(net: &TestNet, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(crate::xdpdns_bin())
        .args(args)
        .arg("--control")
        .arg(net.control())
        .output()
        .expect("running xdpdns");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// `xdpdns ARGS --control ...`: its stdout, or its stderr as the error.
pub fn xdpdns(net: &TestNet, args: &[&str]) -> Result<String, String> {
    match cli(net, args) {
        (true, out, _) => Ok(out),
        (false, _, err) => Err(err),
    }
}

/// `xdpdns` with the words of `line` as arguments (for commands without blanks in them).
pub fn run(net: &TestNet, line: &str) -> Result<String, String> {
    xdpdns(net, &line.split_whitespace().collect::<Vec<_>>())
}

/// The id of the XDP program the kernel runs on the server's interface, if any.
pub fn server_xdp_prog(net: &TestNet) -> Option<u64> {
    let out = crate::ip(&[
        "-n",
        &net.server_ns,
        "-j",
        "-d",
        "link",
        "show",
        "dev",
        &net.server_if,
    ])
    .expect("ip link show");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
    v[0]["xdp"]["prog"]["id"].as_u64()
}

/// kdig's answer for NAME TYPE to the server's IPv4 address, from the client namespace
/// (`+tcp` in `extra` for TCP).
pub fn kdig(net: &TestNet, name: &str, rtype: &str, extra: &[&str]) -> String {
    sh(net
        .client_cmd("kdig")
        .args([
            "@198.18.0.1",
            "+norec",
            "+timeout=2",
            "+retry=0",
            name,
            rtype,
        ])
        .args(extra))
    .expect("kdig runs")
}
