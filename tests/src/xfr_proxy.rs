//! A TCP proxy between the secondary and a real primary that spoils what passes through, for
//! the failure paths of zone transfers: it answers IXFR itself with NOTIMP (a primary without
//! IXFR), or relays the primary's response with the TSIG removed, one bit flipped, or cut
//! short. It runs in the client namespace on 127.0.0.1, serves a bounded number of
//! connections within a bounded time, and stops on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use xdpdns::wire::record::rtype;
use xdpdns::xfr::message;

use crate::TestNet;

/// How the proxy spoils a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spoil {
    /// IXFR queries get NOTIMP (unsigned); everything else is relayed unchanged.
    RefuseIxfr,
    /// Responses are relayed without their TSIG records.
    StripTsig,
    /// The last octet before the TSIG record of the first response message is flipped.
    FlipBit,
    /// Only the first response message is relayed, then the connection is closed.
    Cut,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

const LIFETIME: Duration = Duration::from_secs(60);
const MAX_CONNECTIONS: usize = 32;

/// Reads one length-framed message.
pub fn read_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).ok()?;
    Some(m)
}

/// Writes one length-framed message; whether it went.
pub fn write_msg(s: &mut TcpStream, m: &[u8]) -> bool {
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(m);
    s.write_all(&f).is_ok()
}

/// `m` without its TSIG record, or unchanged when it has none.
fn strip_tsig(m: &[u8]) -> Vec<u8> {
    match message::parse(m).ok().and_then(|p| p.tsig.map(|t| t.1)) {
        Some(at) => {
            let mut out = m[..at].to_vec();
            let ar = u16::from_be_bytes([out[10], out[11]]) - 1;
            out[10..12].copy_from_slice(&ar.to_be_bytes());
            out
        }
        None => m.to_vec(),
    }
}

fn serve(mut client: TcpStream, upstream: SocketAddr, spoil: Spoil) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(query) = read_msg(&mut client) else {
        return;
    };
    let qtype = message::parse(&query)
        .ok()
        .and_then(|q| q.questions.first().map(|q| q.qtype));
    if spoil == Spoil::RefuseIxfr && qtype == Some(rtype::IXFR) {
        let mut r = query.clone();
        r[2] |= 0x80;
        r[3] = (r[3] & 0xf0) | message::rcode::NOTIMP as u8;
        let r = strip_tsig(&r);
        write_msg(&mut client, &r);
        return;
    }
    let Ok(mut up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return;
    };
    // The primary keeps the connection open after its response: an idle second ends it.
    let _ = up.set_read_timeout(Some(Duration::from_secs(1)));
    if !write_msg(&mut up, &query) {
        return;
    }
    for n in 0..100_000usize {
        let Some(mut m) = read_msg(&mut up) else {
            return;
        };
        match spoil {
            Spoil::StripTsig => m = strip_tsig(&m),
            Spoil::FlipBit if n == 0 => {
                let at = message::parse(&m)
                    .ok()
                    .and_then(|p| p.tsig.map(|t| t.1))
                    .unwrap_or(m.len());
                m[at - 1] ^= 1;
            }
            Spoil::Cut if n == 1 => return,
            _ => {}
        }
        if !write_msg(&mut client, &m) {
            return;
        }
    }
}

impl Proxy {
    /// Starts a proxy in the client namespace of `net` relaying to `upstream`.
    pub fn start(net: &TestNet, upstream: SocketAddr, spoil: Spoil) -> Result<Proxy> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let stop2 = stop.clone();
        let thread = net.spawn_in_client(move || {
            let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(listener.local_addr());
            let deadline = Instant::now() + LIFETIME;
            let mut served = 0;
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((c, _)) if served < MAX_CONNECTIONS => {
                        served += 1;
                        let _ = c.set_nonblocking(false);
                        serve(c, upstream, spoil);
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let addr: SocketAddr = rx
            .recv_timeout(Duration::from_secs(10))
            .context("proxy did not start")??;
        Ok(Proxy {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
