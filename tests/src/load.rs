//! A bounded query load for the continuity tests: a fixed set of queries sent round-robin to
//! the server's addresses at a fixed rate, for at most a given time (or until told to stop),
//! one at a time with a short timeout, every `tcp_every`-th over TCP. Each answer is sorted:
//! the expected RCODE with AA set counts as answered; SERVFAIL, anything else, and silence
//! are counted apart. The longest stretch without an answered query — from the start to the
//! first, between two, and from the last to the end — is the gap a restart leaves.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{self, Q};

/// One query of the set and the RCODE it must get.
#[derive(Clone, Debug)]
pub struct Expect {
    pub name: String,
    pub qtype: u16,
    pub rcode: u8,
}

impl Expect {
    pub fn new(name: &str, qtype: u16, rcode: u8) -> Expect {
        Expect {
            name: name.to_owned(),
            qtype,
            rcode,
        }
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub struct Load {
    pub targets: Vec<SocketAddr>,
    pub queries: Vec<Expect>,
    /// Queries per second (at most: one waits for its answer or its timeout first).
    pub rate: u32,
    /// The longest the load runs.
    pub duration: Duration,
    pub timeout: Duration,
    /// Every n-th query goes over TCP (0: none).
    pub tcp_every: usize,
}

/// What came back.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub answered: u64,
    pub servfail: u64,
    /// Answers with another RCODE than expected (or without AA).
    pub wrong: u64,
    pub unanswered: u64,
    pub tcp_sent: u64,
    pub tcp_answered: u64,
    /// The longest time without an answered query.
    pub gap: Duration,
    /// Serials seen in SOA answers.
    pub serials: Vec<u32>,
    pub elapsed: Duration,
}

/// The answer to `msg` on the connected `sock` within `timeout` (answers with another ID, late
/// ones to earlier queries, are skipped).
pub fn udp_exchange(sock: &UdpSocket, msg: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let _ = sock.send(msg).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        // ECONNREFUSED (nothing listening: ICMP port unreachable) and timeouts end it.
        let n = sock.recv(&mut buf).ok()?;
        if n >= 12 && buf[..2] == msg[..2] {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

fn tcp_exchange(to: SocketAddr, msg: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&to, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut r).ok()?;
    (r.len() >= 12 && r[..2] == msg[..2]).then_some(r)
}

impl Load {
    /// Runs the load on this thread (which must be in the client's namespace) until
    /// `duration` has passed or `stop` is set.
    pub fn run(&self, stop: &AtomicBool) -> Result<Tally> {
        if self.targets.is_empty() || self.queries.is_empty() || self.rate == 0 {
            bail!("a load needs targets, queries and a rate");
        }
        let socks: Vec<UdpSocket> = self
            .targets
            .iter()
            .map(|t| {
                let any = if t.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(any)?;
                s.connect(t)?;
                Ok(s)
            })
            .collect::<Result<_>>()?;
        let interval = Duration::from_secs(1) / self.rate;
        let start = Instant::now();
        let mut t = Tally::default();
        let mut last_answer = start;
        let mut i = 0usize;
        while start.elapsed() < self.duration && !stop.load(Ordering::Relaxed) {
            let at = start + interval * i as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let e = &self.queries[i % self.queries.len()];
            let target = i % self.targets.len();
            let mut q = Q::new(&e.name, e.qtype);
            q.id = (i as u16).wrapping_mul(7919).wrapping_add(1);
            let msg = q.wire();
            let tcp = self.tcp_every > 0 && i % self.tcp_every == self.tcp_every - 1;
            i += 1;
            t.sent += 1;
            let reply = if tcp {
                t.tcp_sent += 1;
                tcp_exchange(self.targets[target], &msg, self.timeout)
            } else {
                udp_exchange(&socks[target], &msg, self.timeout)
            };
            let Some(r) = reply else {
                t.unanswered += 1;
                continue;
            };
            let (rcode, aa) = (r[3] & 0x0f, r[2] & 0x04 != 0);
            if rcode == 2 {
                t.servfail += 1;
            } else if rcode == e.rcode && aa {
                t.answered += 1;
                t.tcp_answered += u64::from(tcp);
                let now = Instant::now();
                t.gap = t.gap.max(now - last_answer);
                last_answer = now;
                if e.qtype == 6 && rcode == 0 {
                    if let Some(s) = soa_serial(&r) {
                        if t.serials.last() != Some(&s) {
                            t.serials.push(s);
                        }
                    }
                }
            } else {
                t.wrong += 1;
            }
        }
        t.elapsed = start.elapsed();
        t.gap = t.gap.max(Instant::now() - last_answer);
        Ok(t)
    }

    /// Runs the load on a thread in namespace `ns`; `stop` ends it early.
    pub fn spawn(
        &self,
        ns: &str,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<Result<Result<Tally>>> {
        let load = self.clone();
        crate::spawn_in_netns(ns, move || load.run(&stop))
    }
}

/// The serial of the SOA in an answer.
pub fn soa_serial(r: &[u8]) -> Option<u32> {
    let m = client::parse(r).ok()?;
    m.answers.iter().find_map(|a| match &a.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}
