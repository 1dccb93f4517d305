//! A small DNS client for the tests: builds query messages byte by byte (so tests control every
//! bit), sends them over UDP or TCP with timeouts, and parses answers with hickory-proto.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use hickory_proto::op::Message;

/// Query options.
#[derive(Clone, Debug)]
pub struct Q {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub rd: bool,
    pub cd: bool,
    /// EDNS payload; `None` = no OPT record.
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
    /// EDNS options (code, data), in order; only with `edns`.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Q {
    pub fn new(name: &str, qtype: u16) -> Q {
        Q {
            id: 0x1234,
            name: name.to_owned(),
            qtype,
            rd: false,
            cd: false,
            edns: Some(1232),
            dnssec_ok: false,
            options: Vec::new(),
        }
    }

    /// The query message.
    pub fn wire(&self) -> Vec<u8> {
        let mut flags = 0u16;
        if self.rd {
            flags |= 0x0100;
        }
        if self.cd {
            flags |= 0x0010;
        }
        let mut m = Vec::new();
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, self.edns.is_some() as u8]);
        for label in self
            .name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&self.qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        if let Some(p) = self.edns {
            m.extend_from_slice(&[0, 0, 41]);
            m.extend_from_slice(&p.to_be_bytes());
            m.extend_from_slice(&[0, 0, if self.dnssec_ok { 0x80 } else { 0 }, 0]);
            let rdlen: usize = self.options.iter().map(|(_, d)| 4 + d.len()).sum();
            m.extend_from_slice(&(rdlen as u16).to_be_bytes());
            for (code, data) in &self.options {
                m.extend_from_slice(&code.to_be_bytes());
                m.extend_from_slice(&(data.len() as u16).to_be_bytes());
                m.extend_from_slice(data);
            }
        }
        m
    }
}

/// Sends `msg` over UDP and waits for the reply with the same ID.
pub fn udp(server: SocketAddr, msg: &[u8]) -> Result<Vec<u8>> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.send_to(msg, server)?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..4 {
        let (n, from) = s.recv_from(&mut buf).context("no UDP reply")?;
        if from == server && n >= 2 && buf[..2] == msg[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
    bail!("no matching UDP reply from {server}")
}

/// Sends the messages over one TCP connection (pipelined) and reads as many replies.
pub fn tcp(server: SocketAddr, msgs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    tcp_on(&mut s, msgs)
}

/// Sends the messages on an open connection (pipelined) and reads as many replies.
pub fn tcp_on(s: &mut TcpStream, msgs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    s.write_all(&out)?;
    let mut replies = Vec::new();
    for _ in msgs {
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r)?;
        replies.push(r);
    }
    Ok(replies)
}

/// Parses a response.
pub fn parse(resp: &[u8]) -> Result<Message> {
    Message::from_vec(resp).context("parsing response")
}
