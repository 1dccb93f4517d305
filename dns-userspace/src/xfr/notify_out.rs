//! NOTIFY to the downstream secondaries of a zone after a new version (RFC 1996 §3.7, §4.7):
//! every downstream at once (at most `PARALLEL` at a time), each over UDP with
//! `notify::send`'s retransmissions, signed when the downstream has a key, our new SOA in the
//! answer section. Each downstream's outcome comes back, and is logged, so that one that does
//! not answer is seen and delays no other.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::XfrError;
use super::notify;
use super::tsig::Key;
use crate::wire::name::Name;
use crate::wire::record::Record;

/// Downstreams notified at the same time.
pub const PARALLEL: usize = 16;

/// A secondary we notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downstream {
    pub addr: SocketAddr,
    /// Signs the NOTIFY, and the answer must be signed with it.
    pub key: Option<Key>,
}

/// How long to wait for each answer, and how many times to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retries {
    pub wait: Duration,
    pub attempts: u32,
}

impl Default for Retries {
    /// Five sends two seconds apart: a downstream gets ten seconds to answer.
    fn default() -> Retries {
        Retries {
            wait: Duration::from_secs(2),
            attempts: 5,
        }
    }
}

/// What one downstream made of our NOTIFY.
#[derive(Debug)]
pub struct Notified {
    pub to: SocketAddr,
    pub result: Result<(), XfrError>,
}

/// Notifies every downstream of `zone`'s new version `soa`; returns their outcomes in the
/// order of `downstreams`. Takes at most about `retries.wait × retries.attempts` for each
/// group of `PARALLEL`.
pub fn notify_downstreams(
    zone: &Name,
    soa: &Record,
    downstreams: &[Downstream],
    retries: Retries,
) -> Vec<Notified> {
    let mut out = Vec::with_capacity(downstreams.len());
    for group in downstreams.chunks(PARALLEL) {
        std::thread::scope(|s| {
            let running: Vec<_> = group
                .iter()
                .map(|d| {
                    let send = move || {
                        let key = d.key.as_ref();
                        notify::send(d.addr, zone, Some(soa), key, retries.wait, retries.attempts)
                    };
                    (d.addr, s.spawn(send))
                })
                .collect();
            for (to, handle) in running {
                let result = handle.join().unwrap_or_else(|_| {
                    // `send` does not panic; should it, the others still report.
                    Err(XfrError {
                        exchange: super::error::Exchange::Notify,
                        zone: zone.clone(),
                        peer: to,
                        kind: super::error::Kind::Protocol("the NOTIFY thread panicked".into()),
                    })
                });
                match &result {
                    Ok(()) => log::info!("NOTIFY of {zone} to {to}: answered"),
                    Err(e) => log::warn!("{e}"),
                }
                out.push(Notified { to, result });
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xfr::message::rcode;
    use crate::xfr::tsig::Algorithm;
    use std::net::UdpSocket;
    use std::time::Instant;

    /// A downstream on loopback that answers each NOTIFY it receives with `rc`, checking its
    /// TSIG with `keys`, until `n` have come.
    fn downstream(keys: Vec<Key>, rc: u16, n: usize) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            for _ in 0..n {
                let Ok((len, from)) = s.recv_from(&mut buf) else {
                    return;
                };
                let now = crate::xfr::client::unix_now();
                let answer = match notify::receive(&buf[..len], &keys, now) {
                    Ok(inc) => notify::respond(&inc, rc, now),
                    Err(r) => r.response.unwrap(),
                };
                let _ = s.send_to(&answer, from);
            }
        });
        addr
    }

    #[test]
    fn every_downstream_reports_and_a_dead_one_delays_no_other() {
        let zone = Name::parse("example.", None).unwrap();
        let soa = crate::xfr::axfr::tests::soa(7);
        let k = Key::new(
            Name::parse("k.example.", None).unwrap(),
            Algorithm::HmacSha256,
            b"s".to_vec(),
        );
        let wrong = Key::new(k.name.clone(), k.algorithm, b"other".to_vec());
        // A silent downstream: bound, never answering.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let downstreams = vec![
            Downstream {
                addr: downstream(vec![k.clone()], rcode::NOERROR, 1),
                key: Some(k.clone()),
            },
            Downstream {
                addr: downstream(vec![], rcode::NOERROR, 1),
                key: None,
            },
            Downstream {
                addr: downstream(vec![wrong], rcode::NOERROR, 1),
                key: Some(k.clone()),
            },
            Downstream {
                addr: downstream(vec![], rcode::NOTAUTH, 1),
                key: None,
            },
            Downstream {
                addr: silent.local_addr().unwrap(),
                key: None,
            },
        ];
        let retries = Retries {
            wait: Duration::from_millis(300),
            attempts: 2,
        };
        let t = Instant::now();
        let got = notify_downstreams(&zone, &soa, &downstreams, retries);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let text: Vec<String> = got
            .iter()
            .map(|n| match &n.result {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(got.len(), 5);
        assert!(got.iter().zip(&downstreams).all(|(n, d)| n.to == d.addr));
        assert_eq!(&text[..2], ["ok", "ok"], "{text:?}");
        assert!(text[2].contains("BADSIG"), "{text:?}");
        assert!(text[3].contains("NOTAUTH"), "{text:?}");
        assert!(text[4].contains("no answer to NOTIFY"), "{text:?}");
    }
}
