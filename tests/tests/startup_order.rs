//! Start-up order (issue 11, item 4): `xdpdns serve` answers from userspace, and its control
//! socket says the XDP maps are filling, before the XDP path answers anything; once the fill
//! is done XDP answers the same query with the same bytes. The fill is held by the test hook
//! `XDPDNS_TEST_FILL_GATE` (the fill waits until the file the test creates exists), so only
//! the order is checked, never a time. A SIGHUP during the fill is handled after it.

use std::net::SocketAddr;

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::ctl::{cli, server_xdp_prog};
use xdpdns_tests::stats::try_delta;
use xdpdns_tests::{TestNet, SERVER_V4};

fn query(net: &TestNet) -> Vec<u8> {
    let q = Q::new("WWW.example.", 1).wire();
    net.in_client(move || client::udp(SocketAddr::new(SERVER_V4.into(), 53), &q).unwrap())
        .unwrap()
}

#[test]
fn userspace_answers_while_the_xdp_maps_fill_and_xdp_answers_after() {
    let mut net = TestNet::new().expect("test namespaces");
    let gate = net.dir.join("fill-gate");
    let gate_env = gate.display().to_string();
    net.spawn_server(
        &[&xdpdns_tests::example_zone()],
        &["--listen", "[::]:53"],
        &[("XDPDNS_TEST_FILL_GATE", &gate_env)],
    )
    .expect("server starts");

    // The control socket answers (spawn_server waited for it), the fill is held.
    let status = net.ctl("status").unwrap();
    assert!(status.contains("xdp filling"), "{status}");
    assert_eq!(
        server_xdp_prog(&net),
        None,
        "nothing attached while filling"
    );
    let (healthy, out, _) = cli(&net, &["health"]);
    assert!(
        !healthy && out.contains("XDP is not started"),
        "not announced while XDP fills: {out}"
    );
    let before = net.stats().unwrap();
    assert!(
        before.get("xdp.answered").is_err(),
        "no XDP counters before the fast path runs"
    );
    let from_userspace = query(&net);
    let after = net.stats().unwrap();
    assert_eq!(try_delta(&before, &after, "udp.queries").unwrap(), 1);
    let m = client::parse(&from_userspace).unwrap();
    assert_eq!(m.answers.len(), 2, "{m:?}");
    let log = net.server_log();
    let user = log.find("userspace answering on").expect("logged");
    let filling = log.find("XDP maps filling").expect("logged");
    assert!(user <= filling, "{log}");
    assert!(!log.contains("XDP attached"), "{log}");

    // A SIGHUP (systemd's reload) while the maps fill waits for the fill, not ends the server.
    let pid = net.server_pid().unwrap().to_string();
    xdpdns_tests::sh(std::process::Command::new("kill").args(["-HUP", &pid])).unwrap();

    // The fill goes on; the XDP path answers once its maps hold everything.
    std::fs::write(&gate, b"").unwrap();
    let status = net
        .wait_for_status("xdp attached and the SIGHUP reload", |s| {
            s.contains("xdp attached") && s.contains("last reload ok")
        })
        .unwrap();
    assert!(net.server_running().unwrap());
    assert!(!status.contains("xdp filling"), "{status}");
    assert!(server_xdp_prog(&net).is_some());
    let before = net.stats().unwrap();
    let from_xdp = query(&net);
    let after = net.stats().unwrap();
    assert_eq!(try_delta(&before, &after, "xdp.answered").unwrap(), 1);
    assert_eq!(try_delta(&before, &after, "udp.queries").unwrap(), 0);
    // The same answer on both paths (the message ID is the query's on both).
    assert_eq!(from_xdp, from_userspace);
    let log = net.server_log();
    assert!(
        log.find("XDP attached").unwrap() > log.find("userspace answering on").unwrap(),
        "{log}"
    );
}
