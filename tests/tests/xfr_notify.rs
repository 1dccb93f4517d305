//! NOTIFY (RFC 1996) with TSIG between the `xfr` library and knotd (issue 10):
//! - knotd, a primary with our address as its NOTIFY target, notifies us when it loads the
//!   zone and when the zone changes; we verify each TSIG, read the serial and answer; a NOTIFY
//!   checked with the wrong key is answered NOTAUTH/BADSIG, which knotd reports.
//! - We notify knotd, a secondary of a zone: knotd answers our signed NOTIFY, and refuses it
//!   with the wrong key, unsigned, or for a zone it does not have.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use xdpdns::wire::name::Name;
use xdpdns::xfr::client::unix_now;
use xdpdns::xfr::message::rcode;
use xdpdns::xfr::notify;
use xdpdns::xfr::tsig::Key;
use xdpdns_tests::primary::{KnotOptions, KnotPrimary, TsigKey};
use xdpdns_tests::{TestNet, CLIENT_V4};

const SECRET: &[u8] = b"xdpdns notify test key, 32 oct.";

fn key() -> TsigKey {
    TsigKey::new("notify-test.example.", "hmac-sha256", SECRET)
}

fn zone(serial: u32) -> String {
    format!("$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 300\n@ NS ns\nns A 198.18.0.1\n")
}

/// What one received NOTIFY came to: the zone, serial and signing key, or why it was refused.
type Received = Result<(String, Option<u32>, String), String>;

/// Sends the answer back the way the request came.
type Reply = Box<dyn FnMut(&[u8])>;

/// Listens on UDP and TCP `port` of the client address and handles one NOTIFY per entry of
/// `keyrings` (knotd sends NOTIFY over TCP, others over UDP), checking it with those keys and
/// answering. Returns once bound.
fn listen(
    net: &TestNet,
    port: u16,
    keyrings: Vec<Vec<Key>>,
) -> std::thread::JoinHandle<anyhow::Result<Vec<Received>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = net.spawn_in_client(move || {
        let udp = UdpSocket::bind((CLIENT_V4, port)).expect("bind UDP");
        let tcp = TcpListener::bind((CLIENT_V4, port)).expect("bind TCP");
        udp.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        for keys in keyrings {
            let deadline = Instant::now() + Duration::from_secs(20);
            // The request, and how to answer it.
            let (req, mut reply): (Vec<u8>, Reply) = loop {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let u = udp.try_clone().unwrap();
                    break (
                        buf[..n].to_vec(),
                        Box::new(move |r| drop(u.send_to(r, from))),
                    );
                }
                if let Ok((mut c, _)) = tcp.accept() {
                    c.set_nonblocking(false).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut len = [0u8; 2];
                    c.read_exact(&mut len).unwrap();
                    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
                    c.read_exact(&mut m).unwrap();
                    break (
                        m,
                        Box::new(move |r: &[u8]| {
                            let mut f = (r.len() as u16).to_be_bytes().to_vec();
                            f.extend_from_slice(r);
                            let _ = c.write_all(&f);
                        }),
                    );
                }
                if Instant::now() > deadline {
                    out.push(Err("no NOTIFY arrived within 20 s".to_owned()));
                    return out;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match notify::receive(&req, &keys, unix_now()) {
                Ok(inc) => {
                    reply(&notify::respond(&inc, rcode::NOERROR, unix_now()));
                    let k = inc.signed.map(|s| s.key.name.to_string());
                    out.push(Ok((
                        inc.notify.zone.to_string(),
                        inc.notify.serial,
                        k.unwrap_or_default(),
                    )));
                }
                Err(refused) => {
                    if let Some(r) = refused.response {
                        reply(&r);
                    }
                    out.push(Err(refused.reason));
                }
            }
        }
        out
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("listener bound");
    handle
}

fn wait_for_log(knot: &KnotPrimary, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if knot.knot.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn knot_notifies_us_signed() {
    let net = TestNet::new().unwrap();
    let port = 5390;
    let wrong = TsigKey::new("notify-test.example.", "hmac-sha256", b"wrong").key();
    let listener = listen(
        &net,
        port,
        vec![vec![key().key()], vec![key().key()], vec![wrong]],
    );
    let opts = KnotOptions {
        keys: vec![key()],
        notify: Some(SocketAddr::new(IpAddr::V4(CLIENT_V4), port)),
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5391, "example.", &zone(1), &opts).unwrap();
    // The load at start is announced; so is a change.
    assert!(
        wait_for_log(&knot, "notify, outgoing, remote 198.18.0.2@5390"),
        "{}",
        knot.knot.log()
    );
    knot.update(&zone(2)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    knot.knot.knotc(&["zone-notify", "example."]).unwrap();
    let got = listener.join().unwrap().unwrap();
    let who = "notify-test.example.".to_owned();
    assert_eq!(got[0], Ok(("example.".to_owned(), Some(1), who.clone())));
    assert_eq!(got[1], Ok(("example.".to_owned(), Some(2), who)));
    let refused = got[2].as_ref().unwrap_err();
    assert!(refused.contains("BADSIG"), "{refused}");
    assert!(
        wait_for_log(&knot, "BADSIG"),
        "knotd did not see our BADSIG:\n{}",
        knot.knot.log()
    );
}

#[test]
fn we_notify_a_knot_secondary() {
    let net = TestNet::new().unwrap();
    let opts = KnotOptions {
        keys: vec![key()],
        // knotd would transfer sec.example. from here; nothing answers, which is fine.
        secondary: vec![(
            "sec.example.".to_owned(),
            SocketAddr::new(IpAddr::V4(CLIENT_V4), 5393),
        )],
        ..KnotOptions::default()
    };
    let knot = KnotPrimary::start(&net, 5392, "example.", &zone(1), &opts).unwrap();
    let to = knot.addr();
    let send = move |zone: &str, key: Option<Key>| {
        let z = Name::parse(zone, None).unwrap();
        net.in_client(move || notify::send(to, &z, None, key.as_ref(), Duration::from_secs(2), 2))
            .unwrap()
    };
    send("sec.example.", Some(key().key())).unwrap();
    assert!(
        wait_for_log(&knot, "notify, incoming, remote 198.18.0.2"),
        "{}",
        knot.knot.log()
    );
    let wrong = TsigKey::new("notify-test.example.", "hmac-sha256", b"wrong").key();
    let e = send("sec.example.", Some(wrong)).unwrap_err().to_string();
    assert!(e.contains("BADSIG"), "{e}");
    let e = send("sec.example.", None).unwrap_err().to_string();
    assert!(e.contains("answered"), "{e}");
    let e = send("other.example.", Some(key().key()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("NOTAUTH"), "{e}");
    eprintln!("last refusal: {e}");
}
