//! Reloads under load (issue 11, item 2): `RELOADS` consecutive `zone reload`s of a TLD with
//! `DELEGATIONS` delegations, each version with its own serial and a `probe` address that
//! encodes it, while one client asks in turn — over UDP (answered by XDP) and TCP (userspace) —
//! for the SOA, the probe and a delegation. Every answer must come (0 lost), be the right kind
//! (0 wrong), and belong to a version no older than the last answer seen on either path: a
//! query never sees half a reload, nor one path behind the other once it saw the new version.
//!
//! `XDPDNS_RELOAD_DELEGATIONS` and `XDPDNS_RELOADS` set the size (defaults 2 000 and 100: the
//! suite runs a debug build; the figure is 100 reloads of 100 000 delegations, run with
//! `XDPDNS_RELOAD_DELEGATIONS=100000` and a release `XDPDNS_BIN`).

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RData;
use xdpdns_tests::client::{self, Q};
use xdpdns_tests::ctl::xdpdns;
use xdpdns_tests::load::udp_exchange;
use xdpdns_tests::stats::delta;
use xdpdns_tests::{tld, TestNet, SERVER_V4};

const BASE: u32 = 2026112701;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Version `k` of the zone: serial BASE + k, `probe` at 198.18.200+k/250.k%250.
fn version(n: usize, k: u32) -> String {
    let text = tld::zone_text("tld.", n).replace(&BASE.to_string(), &(BASE + k).to_string());
    format!("{text}probe A 198.18.{}.{}\n", 200 + k / 250, k % 250)
}

/// What the client saw.
#[derive(Debug, Default)]
struct Seen {
    sent: u64,
    lost: u64,
    /// Of them over TCP.
    lost_tcp: u64,
    wrong: Vec<String>,
    /// Distinct serials in the order seen.
    serials: Vec<u32>,
}

/// The answer to `msg` over the client's TCP connection (one for the whole run, as a resolver
/// keeps one: a connection per query would run the client out of ports in TIME_WAIT), opened
/// again when the server closed it.
fn tcp_exchange(conn: &mut Option<TcpStream>, to: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let t = Duration::from_secs(2);
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    for fresh in [false, true] {
        if fresh || conn.is_none() {
            let s = TcpStream::connect_timeout(&to, t).ok()?;
            s.set_read_timeout(Some(t)).ok()?;
            *conn = Some(s);
        }
        let s = conn.as_mut()?;
        let mut len = [0u8; 2];
        let sent = s.write_all(&out).and_then(|_| s.read_exact(&mut len));
        if sent.is_err() {
            // Closed by the server since the last query (idle): once more on a new one.
            *conn = None;
            continue;
        }
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r).ok()?;
        return Some(r);
    }
    None
}

/// The version an answer belongs to (`None`: it names none), or why it is wrong.
fn serial_of(name: &str, r: &[u8]) -> Result<Option<u32>, String> {
    let m = client::parse(r).map_err(|e| format!("{name}: unparsable: {e}"))?;
    if m.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
        return Err(format!("{name}: {:?}", m.metadata.response_code));
    }
    for a in &m.answers {
        match &a.data {
            RData::SOA(s) => return Ok(Some(s.serial)),
            RData::A(a) if name == "probe.tld." => {
                let o = a.0.octets();
                return Ok(Some(BASE + (o[2] as u32 - 200) * 250 + o[3] as u32));
            }
            _ => {}
        }
    }
    if name.starts_with("x.d") && !m.authorities.is_empty() {
        return Ok(None);
    }
    Err(format!("{name}: no answer in {m:?}"))
}

fn ask(stop: &AtomicBool, delegations: usize) -> Seen {
    let to = SocketAddr::new(SERVER_V4.into(), 53);
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.connect(to).unwrap();
    let mut seen = Seen::default();
    let mut conn = None;
    let mut last = 0u32;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let d = format!("x.{}.tld.", tld::delegation(i * 7919 % delegations.max(1)));
        let (name, qtype, tcp) = match i % 4 {
            0 => ("tld.".to_owned(), 6, false),
            1 => ("probe.tld.".to_owned(), 1, false),
            2 => ("probe.tld.".to_owned(), 1, true),
            _ => (d, 1, false),
        };
        i += 1;
        let mut q = Q::new(&name, qtype);
        q.id = i as u16;
        let msg = q.wire();
        seen.sent += 1;
        let reply = if tcp {
            tcp_exchange(&mut conn, to, &msg)
        } else {
            udp_exchange(&sock, &msg, Duration::from_secs(2))
        };
        let Some(r) = reply.filter(|r| r.len() >= 12 && r[..2] == msg[..2]) else {
            seen.lost += 1;
            seen.lost_tcp += u64::from(tcp);
            continue;
        };
        match serial_of(&name, &r) {
            Err(why) => seen.wrong.push(why),
            Ok(None) => {}
            Ok(Some(s)) if s < last => seen.wrong.push(format!(
                "{name} over {}: serial {s} after {last}",
                if tcp { "TCP" } else { "UDP" }
            )),
            Ok(Some(s)) => {
                if s != last {
                    seen.serials.push(s);
                }
                last = s;
            }
        }
    }
    seen
}

#[test]
fn consecutive_reloads_under_load_lose_nothing_and_never_go_back() {
    let (n, reloads) = (
        env("XDPDNS_RELOAD_DELEGATIONS", 2000),
        env("XDPDNS_RELOADS", 100) as u32,
    );
    let mut net = TestNet::new().expect("test namespaces");
    let zone = net.dir.join("tld.zone");
    std::fs::write(&zone, version(n, 0)).unwrap();
    let spec = format!("tld.={}", zone.display());
    let storage = net.dir.join("storage").display().to_string();
    net.start_server(&[&spec], &["--listen", "[::]:53", "--storage", &storage])
        .expect("server starts");
    let before = net.stats().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        net.spawn_in_client(move || ask(&stop, n))
    };
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for k in 1..=reloads {
        let tmp = net.dir.join("tld.zone.new");
        std::fs::write(&tmp, version(n, k)).unwrap();
        std::fs::rename(&tmp, &zone).unwrap();
        let t = Instant::now();
        let out = xdpdns(&net, &["zone", "reload", "tld."]).unwrap();
        slowest = slowest.max(t.elapsed());
        assert!(out.contains(&format!("serial {}", BASE + k)), "{out}");
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = client.join().unwrap().unwrap();
    let after = net.stats().unwrap();
    println!(
        "{reloads} reloads of {n} delegations in {took:?} (slowest {slowest:?}): {} queries, {} \
         lost ({} over TCP), {} wrong, {} versions seen; XDP answered {}, userspace {}",
        seen.sent,
        seen.lost,
        seen.lost_tcp,
        seen.wrong.len(),
        seen.serials.len(),
        delta(&before, &after, "xdp.answered"),
        delta(&before, &after, "udp.queries") + delta(&before, &after, "tcp.queries"),
    );
    assert_eq!(seen.lost, 0, "{seen:?}");
    assert!(
        seen.wrong.is_empty(),
        "{:?}",
        &seen.wrong[..seen.wrong.len().min(10)]
    );
    assert_eq!(seen.serials.last(), Some(&(BASE + reloads)), "{seen:?}");
    assert!(seen.serials.len() > 1, "the load saw the reloads: {seen:?}");
    assert!(delta(&before, &after, "xdp.answered") > 0);
    assert!(delta(&before, &after, "tcp.queries") > 0);
}
