//! What the transfer section watches a server with: DNS queries without EDNS from a UDP socket
//! made in the client namespace (a socket keeps the namespace it was made in, so the polling
//! loops run on the bench's own thread), marks in a server's log noted when they first appear,
//! `xdpdns stats` over the control socket, and waiting until a process has gone quiet.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use hickory_proto::rr::RData;

use super::super::net;
use crate::client::{self, Q};
use crate::stats::Counters;

/// How often the loops look.
pub const POLL: Duration = Duration::from_millis(5);
/// How long one query waits for its reply.
const QUERY_TIMEOUT: Duration = Duration::from_millis(200);

/// Queries to one server from a socket of another namespace.
pub struct Prober {
    sock: UdpSocket,
    server: SocketAddr,
    id: u16,
}

impl Prober {
    /// A socket made in namespace `ns`, asking `server`.
    pub fn new(ns: &str, server: SocketAddr) -> Result<Prober> {
        let sock = crate::in_netns(ns, || UdpSocket::bind("0.0.0.0:0"))?
            .with_context(|| format!("binding a UDP socket in {ns}"))?;
        sock.set_read_timeout(Some(QUERY_TIMEOUT))?;
        Ok(Prober {
            sock,
            server,
            id: 0x5800,
        })
    }

    /// The reply to `name`/`qtype` (no OPT record), or `None` when none came in time.
    fn ask(&mut self, name: &str, qtype: u16) -> Result<Option<Vec<u8>>> {
        self.id = self.id.wrapping_add(1);
        let mut q = Q::new(name, qtype);
        q.edns = None;
        q.id = self.id;
        let wire = q.wire();
        self.sock
            .send_to(&wire, self.server)
            .with_context(|| format!("sending to {}", self.server))?;
        let deadline = Instant::now() + QUERY_TIMEOUT;
        let mut buf = vec![0u8; 65535];
        // Late replies to earlier queries are skipped.
        while Instant::now() < deadline {
            let (n, from) = match self.sock.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if timed_out(&e) => break,
                Err(e) => return Err(e).context("receiving a reply"),
            };
            if from == self.server && n >= 12 && buf[..2] == wire[..2] {
                return Ok(Some(buf[..n].to_vec()));
            }
        }
        Ok(None)
    }

    /// The serial the server answers for `zone` SOA (NOERROR, authoritative), if it does.
    pub fn serial(&mut self, zone: &str) -> Result<Option<u32>> {
        let Some(r) = self.ask(zone, 6)? else {
            return Ok(None);
        };
        if r[3] & 0x0f != 0 || r[2] & 0x04 == 0 {
            return Ok(None);
        }
        Ok(crate::load::soa_serial(&r))
    }

    /// The NS targets (lower case, no final dot) of the referral the server answers for `name`
    /// A; `None` when there is no reply or it is not a NOERROR referral.
    pub fn referral(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(r) = self.ask(name, 1)? else {
            return Ok(None);
        };
        if r[3] & 0x0f != 0 || r[2] & 0x04 != 0 {
            return Ok(None);
        }
        let m = client::parse(&r)?;
        let ns: Vec<String> = m
            .authorities
            .iter()
            .filter_map(|a| match &a.data {
                RData::NS(n) => Some(bare(&n.0.to_ascii())),
                _ => None,
            })
            .collect();
        Ok((!ns.is_empty()).then_some(ns))
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut)
}

/// A domain name in lower case without the final dot.
pub fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A line to look for in a log: every one of `parts` in it.
#[derive(Clone, Debug)]
pub struct Mark {
    pub name: &'static str,
    parts: Vec<String>,
}

impl Mark {
    pub fn new(name: &'static str, parts: &[&str]) -> Mark {
        Mark {
            name,
            parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// When each mark first appeared in a growing log, from a start instant.
pub struct LogWatch {
    path: PathBuf,
    offset: u64,
    partial: String,
    marks: Vec<Mark>,
    /// (mark, seconds after the start, the line).
    pub seen: Vec<(&'static str, f64, String)>,
}

impl LogWatch {
    /// Watches `path` from its current end.
    pub fn from_end(path: &Path, marks: Vec<Mark>) -> LogWatch {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        LogWatch {
            path: path.to_owned(),
            offset,
            partial: String::new(),
            marks,
            seen: Vec::new(),
        }
    }

    /// Reads what was added since the last look; notes the marks that appear, at `t`.
    pub fn poll(&mut self, t: f64) -> Result<()> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .with_context(|| format!("reading {}", self.path.display()))?;
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            for m in &self.marks {
                let new = !self.seen.iter().any(|(n, _, _)| *n == m.name);
                if new && m.parts.iter().all(|p| line.contains(p.as_str())) {
                    self.seen.push((m.name, t, line.trim_end().to_owned()));
                }
            }
        }
        Ok(())
    }

    /// Goes on looking (at most `max`) until every mark has appeared: a server may log what it
    /// did just after its answers show it. Times come from `t`.
    pub fn finish(&mut self, t: impl Fn() -> f64, max: Duration) -> Result<()> {
        let deadline = Instant::now() + max;
        loop {
            self.poll(t())?;
            if self.seen.len() == self.marks.len() || Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A command on xdpdns' control socket at `path`, waiting at most `timeout` for the reply.
pub fn control(path: &Path, command: &str, timeout: Duration) -> Result<String> {
    let mut s = UnixStream::connect(path)
        .with_context(|| format!("connecting to the control socket {}", path.display()))?;
    s.set_read_timeout(Some(timeout))?;
    let protocol = xdpdns::daemon::control::PROTOCOL;
    s.write_all(format!("{protocol} {command}\n").as_bytes())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .with_context(|| format!("reading the reply to {command} from {}", path.display()))?;
    match reply.strip_prefix("ok\n") {
        Some(body) => Ok(body.to_owned()),
        None => bail!("{command} failed: {}", reply.trim_end()),
    }
}

/// `xdpdns stats` (the daemon answers it only once a publication in progress has finished).
pub fn stats(path: &Path, timeout: Duration) -> Result<Counters> {
    Counters::parse(&control(path, "stats", timeout)?)
}

/// Waits until `pid` and its children use less than 5% of a CPU over a second (the server has
/// finished the work after a transfer: flushing, dropping the old version); at most `max`.
/// Returns the seconds waited, or an error naming how busy it still was.
pub fn settle(pid: u32, max: Duration) -> Result<f64> {
    let t = Instant::now();
    let hz = 100.0; // USER_HZ
    let busy = || -> u64 { net::process_tree(pid).iter().map(|p| net::ticks(*p)).sum() };
    let mut last = busy();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = busy();
        let used = now.saturating_sub(last) as f64 / hz;
        if used < 0.05 {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > max {
            bail!("still busy ({used:.2} CPU-s per second) after {max:?}");
        }
        last = now;
    }
}
