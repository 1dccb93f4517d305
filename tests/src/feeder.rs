//! A stand-in for the daemon's TCP and UDP paths in the outbound transfer tests, until the
//! `xfr::outbound` wiring is in the daemon: it listens in the client namespace on the client
//! addresses (IPv4 and IPv6) at one port, over UDP and TCP (two-octet length framing, several
//! requests per connection), and hands each request with the peer's address to a handler that
//! returns the messages to write. Bounded: a lifetime, a number of connections, read and
//! write timeouts, requests per connection; it stops on drop.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use xdpdns::engine::Transport;

use crate::xfr_proxy::{read_msg, write_msg};
use crate::{TestNet, CLIENT_V4, CLIENT_V6};

/// The messages answering one request.
pub type Messages = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// What answers a request: (request, peer, transport) to messages.
pub type Handler = Arc<dyn Fn(&[u8], SocketAddr, Transport) -> Messages + Send + Sync>;

const LIFETIME: Duration = Duration::from_secs(240);
const MAX_CONNECTIONS: usize = 256;
const MAX_REQUESTS: usize = 1000;
/// A connection idle this long is closed (RFC 7766 §6.2.3 lets a server do so).
const IDLE: Duration = Duration::from_secs(3);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running stand-in.
pub struct Feeder {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

fn connection(mut c: TcpStream, peer: SocketAddr, handler: Handler, stop: Arc<AtomicBool>) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(IDLE));
    let _ = c.set_write_timeout(Some(WRITE_TIMEOUT));
    for _ in 0..MAX_REQUESTS {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(req) = read_msg(&mut c) else {
            return;
        };
        for m in handler(&req, peer, Transport::Tcp) {
            if !write_msg(&mut c, &m) {
                return;
            }
        }
    }
}

impl Feeder {
    /// Starts listening at `port` of the client addresses of `net`.
    pub fn start(net: &TestNet, port: u16, handler: Handler) -> Result<Feeder> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let stop2 = stop.clone();
        let thread = net.spawn_in_client(move || {
            let addrs = [IpAddr::V4(CLIENT_V4), IpAddr::V6(CLIENT_V6)];
            let bind = || -> std::io::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
                let mut tcp = Vec::new();
                let mut udp = Vec::new();
                for a in addrs {
                    let t = TcpListener::bind((a, port))?;
                    t.set_nonblocking(true)?;
                    tcp.push(t);
                    let u = UdpSocket::bind((a, port))?;
                    u.set_nonblocking(true)?;
                    udp.push(u);
                }
                Ok((tcp, udp))
            };
            let (tcp, udp) = match bind() {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            let deadline = Instant::now() + LIFETIME;
            let mut connections = Vec::new();
            let mut buf = vec![0u8; 65535];
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                let mut idle = true;
                for l in &tcp {
                    if let Ok((c, peer)) = l.accept() {
                        idle = false;
                        if connections.len() < MAX_CONNECTIONS {
                            let (h, s) = (handler.clone(), stop2.clone());
                            connections.push(std::thread::spawn(move || connection(c, peer, h, s)));
                        }
                    }
                }
                for u in &udp {
                    if let Ok((n, peer)) = u.recv_from(&mut buf) {
                        idle = false;
                        for m in handler(&buf[..n], peer, Transport::Udp).take(1) {
                            let _ = u.send_to(&m, peer);
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            stop2.store(true, Ordering::SeqCst);
            for c in connections {
                let _ = c.join();
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .context("the feeder did not start")?
            .with_context(|| format!("binding port {port} of the client addresses"))?;
        Ok(Feeder {
            port,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(CLIENT_V4), self.port)
    }

    pub fn addr_v6(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(CLIENT_V6), self.port)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
