//! Panic containment end to end. The test build of the engine panics on a query whose first
//! label is `xdpdns-test-panic` (`engine::fault`, feature `test-support`), and the control
//! socket has a `test-panic` command that panics. Each such query must get SERVFAIL while the
//! UDP worker, the TCP connection and the control task go on serving; a reload whose compiler
//! meets such a name must change nothing; the panics are counted (`userspace.panics`) and
//! logged at most once per interval. The wrapper itself is unit-tested in
//! dns-userspace/src/net/contain.rs.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, ResponseCode};
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::{TestNet, SERVER_V4, SERVER_V6};

/// The zone `bad.`, with `extra` records.
fn zone(extra: &str) -> String {
    format!(
        "$ORIGIN bad.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n\
         ns1 A 198.18.0.53\nwww A 198.18.0.80\n{extra}"
    )
}

/// A name the test build of the engine panics on.
fn panicking(under: &str) -> String {
    format!("xdpdns-test-panic.{under}")
}

/// A server on `bad.` with `extra` options.
fn started(extra: &[&str]) -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let file = net.dir.join("bad.zone");
    std::fs::write(&file, zone("")).unwrap();
    let spec = format!("bad.={}", file.display());
    let mut args = vec!["--listen", "[::]:53"];
    args.extend(extra);
    net.start_server(&[&spec], &args).unwrap();
    net
}

fn udp(net: &TestNet, server: IpAddr, name: &str) -> Message {
    let q = Q::new(name, 1).wire();
    let to = SocketAddr::new(server, 53);
    let r = net
        .in_client(move || client::udp(to, &q))
        .unwrap()
        .unwrap_or_else(|e| panic!("no UDP answer for {name}: {e:#}"));
    client::parse(&r).unwrap()
}

/// Sends one command over the control socket as it is (the CLI knows no `test-panic`) and
/// returns the whole reply.
fn raw_control(net: &TestNet, command: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(net.control()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let protocol = xdpdns::daemon::control::PROTOCOL;
    s.write_all(format!("{protocol} {command}\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn assert_answered(m: &Message) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(m.answers.len(), 1, "{m:?}");
}

fn assert_servfail(m: &Message, name: &str) {
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    assert_eq!(m.queries[0].name().to_string(), name);
}

#[test]
fn a_query_that_panics_the_engine_gets_servfail_and_serving_goes_on() {
    // Userspace only, one UDP worker: if it died, nothing would answer UDP.
    let mut net = started(&["--xdp-mode", "off", "--udp-workers", "1"]);
    let v4 = IpAddr::V4(SERVER_V4);
    // UDP: the one worker answers SERVFAIL, then the next query as usual, several times over.
    for i in 0..5 {
        let name = panicking(&format!("n{i}.bad."));
        assert_servfail(&udp(&net, v4, &name), &name);
        assert_answered(&udp(&net, v4, "www.bad."));
    }
    assert_eq!(net.counter("userspace.panics").unwrap(), 5);
    // TCP: on one connection, SERVFAIL for the panicking query and the answer after it.
    let msgs = vec![
        Q::new(&panicking("bad."), 1).wire(),
        Q::new("www.bad.", 1).wire(),
    ];
    let to = SocketAddr::new(IpAddr::V6(SERVER_V6), 53);
    let replies = net
        .in_client(move || client::tcp(to, &msgs))
        .unwrap()
        .expect("both pipelined answers on the connection");
    assert_servfail(&client::parse(&replies[0]).unwrap(), &panicking("bad."));
    assert_answered(&client::parse(&replies[1]).unwrap());
    assert_eq!(net.counter("userspace.panics").unwrap(), 6);
    // Control: the command panics; the client gets an error and the server goes on.
    let reply = raw_control(&net, "test-panic");
    assert!(
        reply.starts_with("error\n") && reply.contains("internal error"),
        "{reply}"
    );
    assert!(net.server_running().unwrap(), "{}", net.server_log());
    assert_eq!(net.counter("userspace.panics").unwrap(), 7);
    assert_answered(&udp(&net, IpAddr::V6(SERVER_V6), "www.bad."));
    // Logged, but not once per panic: one line per interval (10 s), and the default hook
    // printed none of them.
    let log = net.server_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("panicked at")).collect();
    assert!(!lines.is_empty() && lines.len() <= 2, "{log}");
    assert!(
        lines[0].contains("panic answering a query") && lines[0].contains("engine/fault.rs"),
        "{log}"
    );
}

#[test]
fn a_reload_that_panics_while_compiling_changes_nothing_and_the_server_goes_on() {
    // With XDP: the good zone is compiled into the maps; the reload's compiler asks the engine
    // for the panicking name while it holds the fast path's lock.
    let mut net = started(&[]);
    let record = format!("{} A 198.18.0.9\n", panicking("bad."));
    std::fs::write(net.dir.join("bad.zone"), zone(&record)).unwrap();
    let err = net.ctl("reload").unwrap_err().to_string();
    assert!(err.contains("internal error running \"reload\""), "{err}");
    assert!(net.server_running().unwrap(), "{}", net.server_log());
    // The old zone still serves from both paths, and `stats` still reads the XDP counters.
    let before = net.stats().unwrap();
    let m = udp(&net, IpAddr::V4(SERVER_V4), "nope.bad.");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    let after = net.stats().unwrap();
    let d = |k: &str| xdpdns_tests::counter_delta(&before, &after, k).unwrap();
    assert_eq!(d("xdp.answered_negative"), 1);
    assert_eq!(
        xdpdns_tests::counter(&after, "userspace.panics").unwrap(),
        1
    );
    let msgs = vec![Q::new("nope.bad.", 1).wire()];
    let to = SocketAddr::new(IpAddr::V6(SERVER_V6), 53);
    let replies = net
        .in_client(move || client::tcp(to, &msgs))
        .unwrap()
        .unwrap();
    let m = client::parse(&replies[0]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
}
