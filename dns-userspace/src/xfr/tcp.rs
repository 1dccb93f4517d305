//! DNS messages over TCP (RFC 1035 §4.2.2, RFC 7766 §8): a two-octet length before each
//! message. Connecting, every read and every write have a deadline: an idle bound per read and
//! one for the whole exchange, so a stalled or trickling peer is dropped in bounded time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::error::Kind;

/// Time bounds on an exchange with a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest wait for the next octets from the peer.
    pub idle: Duration,
    /// Longest an exchange (a whole transfer) may take.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(3600),
        }
    }
}

/// A connection to a peer with its deadlines.
pub struct Connection {
    stream: TcpStream,
    idle: Duration,
    deadline: Instant,
    total: Duration,
}

fn timeout(what: &'static str, d: Duration) -> Kind {
    Kind::Timeout {
        what,
        secs: d.as_secs().max(1),
    }
}

impl Connection {
    pub fn open(addr: SocketAddr, t: &Timeouts) -> Result<Connection, Kind> {
        let stream = TcpStream::connect_timeout(&addr, t.connect).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                timeout("connection", t.connect)
            } else {
                Kind::Connect(e)
            }
        })?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            idle: t.idle,
            deadline: Instant::now() + t.total,
            total: t.total,
        })
    }

    /// The time left for the next operation, or the timeout error.
    fn budget(&self, what: &'static str) -> Result<Duration, Kind> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout(what, self.total));
        }
        Ok(left.min(self.idle))
    }

    fn io(what: &'static str, e: std::io::Error, wait: Duration) -> Kind {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => timeout(what, wait),
            _ => Kind::Io { what, source: e },
        }
    }

    pub fn send(&mut self, msg: &[u8]) -> Result<(), Kind> {
        let len = u16::try_from(msg.len())
            .map_err(|_| Kind::Protocol(format!("message of {} octets", msg.len())))?;
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(msg);
        let wait = self.budget("write")?;
        self.stream
            .set_write_timeout(Some(wait))
            .map_err(|e| Self::io("write", e, wait))?;
        self.stream
            .write_all(&framed)
            .map_err(|e| Self::io("write", e, wait))
    }

    /// Fills `buf`, waiting at most the idle time for each piece and never past the deadline.
    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), Kind> {
        let mut got = 0;
        while got < buf.len() {
            let wait = self.budget(what)?;
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| Self::io(what, e, wait))?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(Kind::Protocol(format!(
                        "the peer closed the connection in the middle of a {what}"
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Self::io(what, e, wait)),
            }
        }
        Ok(())
    }

    /// The next message; `None` when the peer closed the connection between messages.
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>, Kind> {
        let mut len = [0u8; 2];
        let wait = self.budget("response")?;
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(|e| Self::io("response", e, wait))?;
        match self.stream.read(&mut len[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(Self::io("response", e, wait)),
        }
        self.fill(&mut len[1..], "message length")?;
        let n = u16::from_be_bytes(len) as usize;
        if n < 12 {
            return Err(Kind::Protocol(format!(
                "a TCP message of {n} octets, shorter than a header"
            )));
        }
        let mut msg = vec![0u8; n];
        self.fill(&mut msg, "message")?;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn timeouts(idle: u64, total: u64) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            idle: Duration::from_millis(idle),
            total: Duration::from_millis(total),
        }
    }

    /// A peer on loopback that reads the query and then sends `reply` one octet every
    /// `gap_ms`.
    fn peer(reply: Vec<u8>, gap_ms: u64) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut q = [0u8; 64];
            let _ = c.read(&mut q);
            for b in reply {
                std::thread::sleep(Duration::from_millis(gap_ms));
                if c.write_all(&[b]).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        });
        addr
    }

    #[test]
    fn a_silent_peer_times_out() {
        let addr = peer(Vec::new(), 0);
        let mut c = Connection::open(addr, &timeouts(200, 5000)).unwrap();
        c.send(b"query").unwrap();
        let t = Instant::now();
        assert!(matches!(c.recv(), Err(Kind::Timeout { .. })));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_trickling_peer_meets_the_deadline() {
        // 14 octets, each within the idle time, all together past the deadline.
        let mut msg = vec![0, 12];
        msg.extend_from_slice(&[0; 12]);
        let addr = peer(msg, 100);
        let mut c = Connection::open(addr, &timeouts(300, 600)).unwrap();
        c.send(b"query").unwrap();
        let t = Instant::now();
        let e = c.recv().unwrap_err();
        assert!(matches!(e, Kind::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_millis(1200));
    }

    #[test]
    fn frames_short_messages_and_closed_connections() {
        let addr = peer(vec![0, 3, 1, 2, 3], 0);
        let mut c = Connection::open(addr, &timeouts(1000, 5000)).unwrap();
        c.send(b"q").unwrap();
        assert!(c
            .recv()
            .unwrap_err()
            .to_string()
            .contains("shorter than a header"));
        let addr = peer(vec![0, 20, 1], 0);
        let mut c = Connection::open(addr, &timeouts(2000, 5000)).unwrap();
        c.send(b"q").unwrap();
        assert!(c
            .recv()
            .unwrap_err()
            .to_string()
            .contains("closed the connection"));
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            Connection::open(closed, &timeouts(100, 100)),
            Err(Kind::Connect(_))
        ));
    }
}
