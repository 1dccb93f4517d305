//! TCP resource limits of the userspace server, end to end from the client namespace: the idle
//! timeout, the global cap (the longest idle connection closed for a newcomer, refusal when
//! none is idle) and the per-source cap, the write timeout for a client that
//! never reads, and accept errors when the server is out of descriptors (EMFILE), which must
//! be waited out without spinning, for TCP and the control socket alike.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::{sh, TestNet, SERVER_V4, SERVER_V6};

/// A userspace-only server with `extra` options.
fn server(extra: &[&str]) -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let mut args = vec![
        "--listen",
        "[::]:53",
        "--xdp-mode",
        "off",
        "--udp-workers",
        "1",
    ];
    args.extend(extra);
    net.start_server(&[&xdpdns_tests::example_zone()], &args)
        .expect("server starts");
    net
}

fn v4() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), 53)
}

fn v6() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(SERVER_V6), 53)
}

/// `n` TCP connections from the client namespace to `to`.
fn connect(net: &TestNet, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    net.in_client(move || {
        (0..n)
            .map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("connect"))
            .collect()
    })
    .unwrap()
}

fn one(net: &TestNet, to: SocketAddr) -> TcpStream {
    connect(net, to, 1).pop().expect("one connection")
}

/// A query for www.example. A with its 2-byte length.
fn framed_query() -> Vec<u8> {
    let q = Q::new("www.example.", 1).wire();
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    out
}

/// Asks www.example. A on `s` and checks the answer (within 3 s).
fn ask(s: &mut TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(&framed_query())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut r)?;
    let m = client::parse(&r).expect("a DNS message");
    assert_eq!(m.answers.len(), 2, "{m:?}");
    Ok(())
}

/// Whether the server closed `s` (end of stream or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("reading: {e}"),
    }
}

/// Waits (at most `within`) until the server's counter `name` is `value`.
fn wait_for(net: &TestNet, name: &str, value: u64, within: Duration) {
    net.wait_for_counter(name, value, within).unwrap();
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let net = server(&["--tcp-idle-timeout", "1"]);
    let opened = Instant::now();
    let mut silent = one(&net, v4());
    let mut asked = one(&net, v6());
    ask(&mut asked).unwrap();
    let answered = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    // After an answer, the connection is kept for another idle timeout, then closed too.
    assert!(closed_within(&mut asked, Duration::from_secs(5)));
    assert!(answered.elapsed() >= Duration::from_millis(900));
    wait_for(&net, "tcp.open_connections", 0, Duration::from_secs(2));
}

/// Opens `n` connections over IPv4 and has each answered; checks that one more is closed at
/// once. Returns the `n`.
fn fill_from_v4(net: &TestNet, n: usize) -> Vec<TcpStream> {
    let mut held = connect(net, v4(), n);
    for c in &mut held {
        ask(c).unwrap();
    }
    let mut one_more = one(net, v4());
    assert!(
        closed_within(&mut one_more, Duration::from_secs(3)),
        "connection {} is closed at once",
        n + 1
    );
    held
}

#[test]
fn at_the_connection_limit_a_newcomer_closes_the_longest_idle_and_a_closed_slot_is_reused() {
    let net = server(&["--tcp-max-connections", "2", "--tcp-idle-timeout", "30"]);
    let mut held = connect(&net, v4(), 2);
    for c in &mut held {
        ask(c).unwrap();
        // Apart in time, so that which waited longest does not depend on the scheduler.
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both wait for their next query; the first has waited longest and makes room.
    let mut newcomer = one(&net, v6());
    ask(&mut newcomer).unwrap();
    let c0 = closed_within(&mut held[0], Duration::from_secs(3));
    let c1 = closed_within(&mut held[1], Duration::from_millis(100));
    assert!(c0 && !c1, "closed: first {c0}, second {c1}");
    assert_eq!(net.counter("tcp.evicted_idle").unwrap(), 1);
    assert_eq!(net.counter("tcp.refused_connections").unwrap(), 0);
    assert_eq!(net.counter("tcp.open_connections").unwrap(), 2);
    ask(&mut held[1]).unwrap();
    // One closes: a new one is served without closing another.
    drop(newcomer);
    wait_for(&net, "tcp.open_connections", 1, Duration::from_secs(5));
    ask(&mut one(&net, v6())).unwrap();
    assert_eq!(net.counter("tcp.evicted_idle").unwrap(), 1);
    ask(&mut held[1]).unwrap();
}

#[test]
fn one_source_cannot_take_more_than_its_share_of_connections() {
    let net = server(&["--tcp-max-per-source", "2", "--tcp-idle-timeout", "30"]);
    let mut from_v4 = fill_from_v4(&net, 2);
    assert_eq!(net.counter("tcp.refused_per_source").unwrap(), 1);
    assert_eq!(net.counter("tcp.refused_connections").unwrap(), 0);
    // Another source (the client's IPv6 address) is still served.
    ask(&mut one(&net, v6())).unwrap();
    for c in &mut from_v4 {
        ask(c).unwrap();
    }
}

/// A connection from the client namespace with a tiny receive buffer, so that the server's
/// answers back up quickly when the client does not read them.
fn small_window_connection(net: &TestNet) -> TcpStream {
    net.in_client(|| {
        use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        socket::setsockopt(&fd, sockopt::RcvBuf, &2048).unwrap();
        let to = match v4() {
            SocketAddr::V4(a) => SockaddrIn::from(a),
            SocketAddr::V6(_) => unreachable!(),
        };
        socket::connect(fd.as_raw_fd(), &to).unwrap();
        TcpStream::from(fd)
    })
    .unwrap()
}

#[test]
fn a_client_that_never_reads_its_answers_loses_its_connection_after_the_write_timeout() {
    let net = server(&[
        "--tcp-max-connections",
        "1",
        "--tcp-write-timeout",
        "3",
        "--tcp-idle-timeout",
        "30",
    ]);
    let mut stuck = small_window_connection(&net);
    stuck.set_nonblocking(true).unwrap();
    // Pipeline queries without reading until the server stops taking them (its answers fill
    // the window and its send buffer, so it stops reading): no progress for half a second.
    // Bounded: 64 MiB or 20 s.
    let batch = framed_query().repeat(100);
    let (mut sent, mut at, mut stalls) = (0usize, 0usize, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stalls < 10 {
        match stuck.write(&batch[at..]) {
            Ok(n) => {
                (sent, at, stalls) = (sent + n, (at + n) % batch.len(), 0);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("writing queries: {e} after {sent} bytes"),
        }
        assert!(sent < 64 << 20, "the server kept reading 64 MiB");
        assert!(Instant::now() < deadline, "still writing after 20 s");
    }
    let stalled = Instant::now();
    println!("server stopped reading after {sent} bytes of queries");
    // Its slot is held while the answer waits; UDP and the control socket go on.
    // Its slot is not idle (an answer is being written), so a newcomer is refused.
    let mut refused = one(&net, v6());
    assert!(closed_within(&mut refused, Duration::from_secs(3)));
    assert_eq!(net.counter("tcp.refused_connections").unwrap(), 1);
    assert_eq!(net.counter("tcp.evicted_idle").unwrap(), 0);
    let q = Q::new("www.example.", 1).wire();
    net.in_client(move || client::udp(v4(), &q))
        .unwrap()
        .expect("UDP answered meanwhile");
    // After the write timeout the connection goes, and with it its slot.
    wait_for(&net, "tcp.write_timeouts", 1, Duration::from_secs(10));
    assert!(
        stalled.elapsed() >= Duration::from_secs(1),
        "not long before the 3 s timeout: {:?}",
        stalled.elapsed()
    );
    wait_for(&net, "tcp.open_connections", 0, Duration::from_secs(2));
    ask(&mut one(&net, v6())).unwrap();
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): state is the 1st, utime the
    // 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_descriptors_the_server_waits_instead_of_spinning_and_serves_again_after() {
    let mut net = server(&["--tcp-idle-timeout", "30"]);
    let pid = net.server_pid().unwrap();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = format!("--nofile={}:{}", open + 3, open + 3);
    sh(std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), &limit])).unwrap();
    // 3 connections take the last descriptors; the others wait in the backlog, and every
    // accept fails with EMFILE. A control client waits for its accept as well.
    let clients = connect(&net, v4(), 40);
    let mut ctl = std::process::Command::new(xdpdns_tests::xdpdns_bin())
        .args(["stats", "--control"])
        .arg(net.control())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    // A spinning accept loop burns a whole core (about 300 ticks in 3 s); waiting costs ~0.
    println!("{used} ticks of CPU in 3 s while out of descriptors");
    assert!(
        used < 30,
        "{used} ticks of CPU in 3 s while out of descriptors"
    );
    let _ = ctl.kill();
    let _ = ctl.wait();
    assert!(net.server_running().unwrap(), "{}", net.server_log());
    // When the connections close, the server accepts (and closes) the waiting ones and
    // serves new ones again.
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(&mut one(&net, v6())).is_err() {
        assert!(
            Instant::now() < deadline,
            "no TCP answer 10 s after closing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = net.stats().unwrap();
    let errors = |k: &str| xdpdns_tests::counter(&stats, k).unwrap();
    assert!(errors("tcp.accept_errors") > 0, "{stats:?}");
    assert!(errors("control.accept_errors") > 0, "{stats:?}");
    wait_for(&net, "tcp.open_connections", 0, Duration::from_secs(5));
}
