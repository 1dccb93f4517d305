//! Response rate limiting end to end over a veth pair, `xdpdns serve` with an `[rrl]` section
//! (5 a second, window 2: a burst of 10, slip 2, IPv6 test prefix exempt): a bounded flood of
//! UDP queries from the client's /24 is answered up to the burst (and the refill), then every
//! 2nd limited answer arrives truncated (TC=1, header and question) and the others not at all,
//! counted `xdp.rrl_*`, while another /24 of the client is answered in full, and so is a query
//! from the flooded one with a valid server cookie; queries XDP leaves to userspace (ANY) are limited there the same way
//! (`userspace.rrl_*`); TCP is never limited; the exempt prefix never is.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use xdpdns_tests::client::Q;
use xdpdns_tests::stats::delta;
use xdpdns_tests::{sh, TestNet};

const SECRET: &str = "445536bcd2513298075a5d379663c962";

/// Queries of a flood (bounded).
const FLOOD: usize = 200;

fn started() -> TestNet {
    let mut net = TestNet::new().expect("test namespaces");
    let cfg = net.dir.join("rrl.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ncookie-secret = \"{SECRET}\"\n\
             [rrl]\nrate-limit = 5\nwindow = 2\nslip = 2\nexempt = [\"fd00::/8\"]\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    net.start_server(
        &[&xdpdns_tests::example_zone()],
        &["--listen", "[::]:53", "--config", &cfg],
    )
    .expect("server starts");
    net
}

/// What came back for a flood: full answers and truncated ones (TC=1 with no records).
#[derive(Debug, Default)]
struct Got {
    full: u64,
    truncated: u64,
}

/// Sends `n` copies of `q` from `src` in the client namespace to `server` one at a time;
/// returns how many got the full answer.
fn one_by_one(net: &TestNet, src: IpAddr, server: IpAddr, q: &Q, n: usize) -> usize {
    let q = q.wire();
    net.in_client(move || {
        let sock = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 4096];
        (0..n)
            .filter(|_| {
                sock.send_to(&q, SocketAddr::new(server, 53)).unwrap();
                sock.recv(&mut buf)
                    .is_ok_and(|n| n > 12 && buf[2] & 0x02 == 0)
            })
            .count()
    })
    .unwrap()
}

/// Sends `FLOOD` copies of `q` (IDs 0..FLOOD) from the client namespace to `server`, then
/// reads replies until none comes for 500 ms (at most `FLOOD` of them). A query over TCP
/// first resolves the neighbour, so that no datagram waits for it (or is lost).
fn flood(net: &TestNet, server: IpAddr, q: &Q) -> Got {
    let q = q.clone();
    net.in_client(move || {
        xdpdns_tests::client::tcp(SocketAddr::new(server, 53), &[q.wire()]).unwrap();
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(bind).unwrap();
        // Room for every reply of the flood (SO_RCVBUFFORCE: root, past rmem_max).
        let size: libc::c_int = 8 << 20;
        // SAFETY: a valid socket and a c_int option value.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_RCVBUFFORCE");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let to = SocketAddr::new(server, 53);
        for id in 0..FLOOD as u16 {
            let mut m = q.clone();
            m.id = id;
            sock.send_to(&m.wire(), to).unwrap();
            // Bursts of 10: no socket on the way overflows.
            if id % 10 == 9 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut got = Got::default();
        let mut buf = [0u8; 4096];
        for _ in 0..FLOOD {
            let Ok(n) = sock.recv(&mut buf) else { break };
            let r = &buf[..n];
            assert!(n >= 12 && r[2] & 0x80 != 0, "a response");
            let counts = &r[6..12];
            if r[2] & 0x02 != 0 {
                assert_eq!(&counts[..4], &[0, 0, 0, 0], "a slip has no records");
                got.truncated += 1;
            } else {
                got.full += 1;
            }
        }
        got
    })
    .unwrap()
}

/// The flood `got` of `total` queries that arrived, under the counters that moved on its path:
/// everything limited after the burst (10, and the refill at 5 a second), the limited half
/// slipped and half dropped, what arrived at the client what was sent.
fn check(got: &Got, total: u64, limited: u64, slipped: u64, dropped: u64, answered: u64) {
    assert!(
        total >= FLOOD as u64 * 9 / 10,
        "{total} of {FLOOD} queries arrived"
    );
    assert!(limited >= total - 20, "{limited} limited of {total}");
    assert_eq!(limited, slipped + dropped);
    assert!(
        slipped.abs_diff(dropped) <= 1,
        "{slipped} slipped, {dropped} dropped"
    );
    assert_eq!(answered + limited, total);
    assert_eq!((got.full, got.truncated), (answered, slipped), "{got:?}");
}

#[test]
fn a_flood_is_limited_in_xdp_and_userspace_and_tcp_and_exempt_prefixes_are_not() {
    let net = started();
    let v4: IpAddr = "198.18.0.1".parse().unwrap();
    // Answered in XDP: limited there.
    let before = net.stats().unwrap();
    let got = flood(&net, v4, &Q::new("www.example.", 1));
    let after = net.stats().unwrap();
    let d = |n: &str| delta(&before, &after, n);
    check(
        &got,
        FLOOD as u64,
        d("xdp.rrl_limited"),
        d("xdp.rrl_slipped"),
        d("xdp.rrl_dropped"),
        d("xdp.answered_exact"),
    );
    assert_eq!(d("udp.queries"), 0, "all in XDP");
    // Another /24 of the client is answered in full meanwhile; the flooded one is not.
    xdpdns_tests::ip(&[
        "-n",
        &net.client_ns,
        "addr",
        "add",
        "198.18.5.2/32",
        "dev",
        &net.client_if,
    ])
    .unwrap();
    let www = Q::new("www.example.", 1);
    assert_eq!(
        one_by_one(&net, "198.18.5.2".parse().unwrap(), v4, &www, 5),
        5
    );
    // More than a full burst (10), however long the flood is past: some are limited.
    assert!(one_by_one(&net, "198.18.0.2".parse().unwrap(), v4, &www, 15) < 15);
    // From the flooded prefix, a valid server cookie (as the server makes them for this
    // address, now) is exempt: all answered in full, in XDP.
    let client: IpAddr = "198.18.0.2".parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let secret = xdpdns::engine::cookie::parse_secret(SECRET).unwrap();
    let valid = xdpdns::engine::cookie::make(&secret, &[5; 8], client, now);
    let mut with_cookie = Q::new("www.example.", 1);
    with_cookie.options = vec![(10, valid.to_vec())];
    let before = net.stats().unwrap();
    assert_eq!(one_by_one(&net, client, v4, &with_cookie, 15), 15);
    let after = net.stats().unwrap();
    assert_eq!(delta(&before, &after, "xdp.answered_exact"), 15);
    assert_eq!(delta(&before, &after, "xdp.rrl_limited"), 0);

    // ANY goes to userspace: limited there, in its own bucket table.
    let before = net.stats().unwrap();
    let got = flood(&net, v4, &Q::new("www.example.", 255));
    let after = net.stats().unwrap();
    let d = |n: &str| delta(&before, &after, n);
    check(
        &got,
        d("udp.queries"),
        d("userspace.rrl_limited"),
        d("userspace.rrl_slipped"),
        d("userspace.rrl_dropped"),
        d("udp.responses") - d("userspace.rrl_slipped"),
    );

    // TCP is never limited, from the same (exhausted) prefix.
    for _ in 0..3 {
        let out = sh(net
            .client_cmd("kdig")
            .args(["+tcp", "+norec", "+time=2", "+retry=0", "@198.18.0.1"])
            .args(["www.example.", "A"]))
        .unwrap();
        assert!(
            out.contains("NOERROR") && out.contains("198.18.0.80"),
            "{out}"
        );
    }

    // The exempt prefix (fd00::/8) never is.
    let before = net.stats().unwrap();
    let got = flood(&net, "fd00::1".parse().unwrap(), &Q::new("www.example.", 1));
    let after = net.stats().unwrap();
    let d = |n: &str| delta(&before, &after, n);
    assert_eq!((got.full, got.truncated), (FLOOD as u64, 0));
    assert_eq!(d("xdp.answered_exact"), FLOOD as u64);
    assert_eq!(d("xdp.rrl_limited") + d("userspace.rrl_limited"), 0);
}
