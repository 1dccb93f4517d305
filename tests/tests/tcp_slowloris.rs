//! Slow-loris (issue 13): 1,100 idle TCP connections, more than the default limit of 1,024,
//! from 20 source addresses (55 each, under the per-source cap of 64, so that cap is not what
//! saves the server), half of them with a query begun but never finished, and an idle
//! timeout of two minutes (neither is that). Legitimate clients — this crate's client and
//! kdig — connecting afterwards are all answered at once (the first keeping their connections
//! open, so that each needs a slot): at the limit each newcomer closes
//! the connection idle longest (`tcp.evicted_idle`); nobody is refused.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use xdpdns_tests::client::{self, Q};
use xdpdns_tests::{ip, TestNet, SERVER_V4};

const SOURCES: u8 = 20;
const PER_SOURCE: usize = 55;
const IDLE: usize = SOURCES as usize * PER_SOURCE;
const LIMIT: usize = 1024;
/// Legitimate queries from the client's own address, one connection each; and by kdig.
const LEGIT: usize = 50;
const KDIG: usize = 10;

fn attacker(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 100 + i)
}

/// A connection from `from` to the server's port 53.
fn connect_from(from: Ipv4Addr) -> TcpStream {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    socket::bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .expect("bind");
    let to = SockaddrIn::from(SocketAddrV4::new(SERVER_V4, 53));
    socket::connect(fd.as_raw_fd(), &to).expect("connect");
    TcpStream::from(fd)
}

/// Asks www.example. A on a new connection and checks the answer, within 3 s; returns the
/// time taken and the connection (kept open by the caller).
fn ask_once() -> std::io::Result<(Duration, TcpStream)> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::new(IpAddr::V4(SERVER_V4), 53),
        Duration::from_secs(3),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let q = Q::new("www.example.", 1).wire();
    let r = client::tcp_on(&mut s, &[q]).map_err(std::io::Error::other)?;
    let m = client::parse(&r[0]).expect("a DNS message");
    assert_eq!(m.answers.len(), 2, "{m:?}");
    Ok((t.elapsed(), s))
}

/// Whether the server has closed `s` (end of stream or reset), without waiting.
fn is_closed(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("{n} unexpected octets on an idle connection"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("reading: {e}"),
    }
}

fn wait_for(net: &TestNet, name: &str, value: u64, within: Duration) {
    net.wait_for_counter(name, value, within).unwrap();
}

#[test]
fn legitimate_tcp_clients_are_served_while_1100_idle_connections_hold_the_limit() {
    let mut net = TestNet::new().expect("test namespaces");
    for i in 0..SOURCES {
        let a = format!("{}/24", attacker(i));
        ip(&[
            "-n",
            &net.client_ns,
            "addr",
            "add",
            &a,
            "dev",
            &net.client_if,
        ])
        .unwrap();
    }
    // Userspace only; the idle timeout is not what frees the slots.
    #[rustfmt::skip]
    let args = [
        "--listen", "[::]:53", "--xdp-mode", "off", "--udp-workers", "1",
        "--tcp-idle-timeout", "120",
    ];
    net.start_server(&[&xdpdns_tests::example_zone()], &args)
        .expect("server starts");
    let start = Instant::now();
    // Round robin over the sources; every other connection sends one octet of a length.
    let mut idle: Vec<TcpStream> = net
        .in_client(|| {
            (0..IDLE)
                .map(|i| {
                    let mut s = connect_from(attacker((i % SOURCES as usize) as u8));
                    if i % 2 == 1 {
                        s.write_all(&[0]).expect("one octet");
                    }
                    s
                })
                .collect()
        })
        .unwrap();
    wait_for(
        &net,
        "tcp.connections",
        IDLE as u64,
        Duration::from_secs(20),
    );
    let evicted = (IDLE - LIMIT) as u64;
    wait_for(&net, "tcp.evicted_idle", evicted, Duration::from_secs(5));
    wait_for(
        &net,
        "tcp.open_connections",
        LIMIT as u64,
        Duration::from_secs(5),
    );
    println!("{IDLE} idle connections opened in {:?}", start.elapsed());

    // Each legitimate client keeps its connection, so each takes a slot from an idle one.
    let answered = net
        .in_client(|| (0..LEGIT).map(|_| ask_once()).collect::<Vec<_>>())
        .unwrap();
    let (mut times, kept): (Vec<Duration>, Vec<TcpStream>) = answered
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|e| panic!("legitimate query {i}: {e}")))
        .unzip();
    times.sort();
    println!(
        "{LEGIT} legitimate TCP queries: median {:?}, max {:?}",
        times[LEGIT / 2],
        times[LEGIT - 1]
    );
    let evicted = evicted + LEGIT as u64;
    assert_eq!(net.counter("tcp.evicted_idle").unwrap(), evicted);
    // kdig closes its connection after the answer, giving the slot back (or not yet, when
    // the next one comes: then it takes an idle one's).
    for i in 0..KDIG {
        let out = net
            .client_cmd("kdig")
            .args([
                "@198.18.0.1",
                "+tcp",
                "+retry=0",
                "+timeout=3",
                "www.example.",
                "A",
            ])
            .output()
            .expect("kdig");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("NOERROR") && text.contains("198.18.0.80"),
            "kdig {i}: {text}"
        );
    }
    let total = net.counter("tcp.evicted_idle").unwrap();
    assert!(
        (evicted..=evicted + KDIG as u64).contains(&total),
        "{total} evicted"
    );
    assert_eq!(net.counter("tcp.refused_connections").unwrap(), 0);
    assert_eq!(net.counter("tcp.refused_per_source").unwrap(), 0);
    assert_eq!(net.counter("tcp.queries").unwrap(), (LEGIT + KDIG) as u64);
    // The connections closed are the ones that waited longest: the first opened.
    let closed: Vec<bool> = idle.iter_mut().map(is_closed).collect();
    let n_closed = closed.iter().filter(|&&c| c).count() as u64;
    assert_eq!(n_closed, total, "closed idle connections");
    assert!(closed[..100].iter().all(|&c| c), "the oldest were closed");
    assert!(!closed[IDLE - 500..].iter().any(|&c| c), "the newest stay");
    drop((idle, kept));
    wait_for(&net, "tcp.open_connections", 0, Duration::from_secs(10));
}
