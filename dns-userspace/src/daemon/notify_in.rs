//! NOTIFY in (RFC 1996) for the secondary zones: the handler `net` hands every NOTIFY request
//! to. A NOTIFY is accepted only for a secondary zone of ours, from an address of one of the
//! zone's `notify-from` remotes, and signed with that remote's key when it has one (TSIG
//! checked against the real time, whatever the zone timers' clock says). Accepted: the zone's
//! task is woken and the answer is NOERROR, signed. Anything else is refused (NOTAUTH for a
//! zone that is not ours or a bad signature, REFUSED for a sender or key not allowed), logged
//! (throttled), counted in `xfr.notify_refused`, and changes nothing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::secondary::{XfrStats, ZoneHandle};
use crate::engine::Transport;
use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
use crate::net::Notifications;
use crate::wire::name::Name;
use crate::xfr::client::unix_now;
use crate::xfr::message::rcode;
use crate::xfr::notify::{self, Incoming};
use crate::xfr::tsig::Key;

/// The NOTIFY handler of the secondary zones.
pub struct NotifyIn {
    zones: HashMap<Name, Arc<ZoneHandle>>,
    /// Every `notify-from` remote's key (a NOTIFY's TSIG is verified against these).
    keys: Vec<Key>,
    stats: Arc<XfrStats>,
    refusals: LogThrottle,
}

impl NotifyIn {
    pub fn new(zones: &[Arc<ZoneHandle>], stats: Arc<XfrStats>) -> NotifyIn {
        let mut keys: Vec<Key> = Vec::new();
        for z in zones {
            for k in z.spec.notify_from.iter().filter_map(|r| r.key.as_ref()) {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        NotifyIn {
            zones: zones
                .iter()
                .map(|z| (z.spec.zone.clone(), z.clone()))
                .collect(),
            keys,
            stats,
            refusals: LogThrottle::new(LOG_INTERVAL),
        }
    }

    /// The zone a NOTIFY from `ip` may wake, or the RCODE and reason of its refusal.
    fn check(&self, inc: &Incoming<'_>, ip: IpAddr) -> Result<&ZoneHandle, (u16, String)> {
        let zone = &inc.notify.zone;
        let z = self.zones.get(zone).ok_or_else(|| {
            (
                rcode::NOTAUTH,
                format!("{zone} is not a secondary zone here"),
            )
        })?;
        let remote = z
            .spec
            .notify_from
            .iter()
            .find(|r| r.addrs.iter().any(|a| a.ip() == ip))
            .ok_or_else(|| {
                (
                    rcode::REFUSED,
                    format!("{ip} is not an address of a notify-from remote of {zone}"),
                )
            })?;
        match (&remote.key, &inc.signed) {
            (Some(want), Some(s)) if s.key == want => Ok(z),
            (Some(want), Some(s)) => Err((
                rcode::REFUSED,
                format!(
                    "signed with key {}, remote {} uses key {}",
                    s.key.name, remote.id, want.name
                ),
            )),
            (Some(want), None) => Err((
                rcode::REFUSED,
                format!("unsigned, remote {} uses key {}", remote.id, want.name),
            )),
            (None, _) => Ok(z),
        }
    }

    fn refused(&self, peer: SocketAddr, transport: Transport, why: &str) {
        self.stats.notify_refused.fetch_add(1, Relaxed);
        self.refusals.warn(format_args!(
            "NOTIFY from {peer} over {transport:?} refused: {why}"
        ));
    }
}

impl Notifications for NotifyIn {
    fn notify(&self, msg: &[u8], peer: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
        let now = unix_now();
        let inc = match notify::receive(msg, &self.keys, now) {
            Ok(inc) => inc,
            Err(r) => {
                self.refused(peer, transport, &r.reason);
                return r.response;
            }
        };
        match self.check(&inc, peer.ip()) {
            Ok(z) => {
                self.stats.notify_accepted.fetch_add(1, Relaxed);
                log::info!(
                    "NOTIFY for {} (serial {:?}) from {peer} over {transport:?}{}",
                    inc.notify.zone,
                    inc.notify.serial,
                    inc.signed
                        .as_ref()
                        .map(|s| format!(", signed with {}", s.key.name))
                        .unwrap_or_default()
                );
                z.notified(inc.notify.serial);
                Some(notify::respond(&inc, rcode::NOERROR, now))
            }
            Err((rc, why)) => {
                self.refused(
                    peer,
                    transport,
                    &format!("NOTIFY for {}: {why}", inc.notify.zone),
                );
                Some(notify::respond(&inc, rc, now))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::clock::DaemonClock;
    use crate::daemon::remote::{Remote, SecondarySpec};
    use crate::daemon::secondary;
    use crate::xfr::message;
    use crate::xfr::timers::ExpirePolicy;
    use crate::xfr::tsig::{self, Algorithm};

    fn key(secret: &[u8]) -> Key {
        let name = Name::parse("xfr.", None).unwrap();
        Key::new(name, Algorithm::HmacSha256, secret.to_vec())
    }

    #[test]
    fn only_signed_notify_from_the_zones_remotes_wakes_it() {
        let storage = std::env::temp_dir().join(format!("xdpdns-notify-in-{}", std::process::id()));
        // The zone of the fixtures' SOA.
        let zone = Name::parse("example.", None).unwrap();
        let remote = Remote {
            id: "p".into(),
            addrs: vec!["198.18.0.1:53".parse().unwrap()],
            key: Some(key(b"right")),
        };
        let spec = SecondarySpec {
            zone: zone.clone(),
            primaries: vec![remote.clone()],
            notify_from: vec![remote],
            policy: ExpirePolicy::Honour,
            file: None,
            acl: Default::default(),
            notify: Vec::new(),
        };
        let mut opened = secondary::open(&[spec], &storage, &DaemonClock::system()).unwrap();
        let stats = Arc::new(XfrStats::default());
        let h = NotifyIn::new(&[opened[0].handle.clone()], stats.clone());
        let primary: SocketAddr = "198.18.0.1:4000".parse().unwrap();
        let other: SocketAddr = "198.18.0.2:4000".parse().unwrap();
        let soa = crate::xfr::axfr::tests::soa(7);
        let request = |zone: &Name, k: Option<&Key>| {
            let mut m = notify::request(42, zone, Some(&soa));
            if let Some(k) = k {
                tsig::sign_request(&mut m, k, unix_now());
            }
            m
        };
        let rcode_of = |r: Option<Vec<u8>>| message::parse(&r.unwrap()).unwrap().rcode();
        let right = key(b"right");

        // Signed with the remote's key from its address: NOERROR, the task woken with 7.
        let r = h.notify(&request(&zone, Some(&right)), primary, Transport::Udp);
        assert_eq!(rcode_of(r), rcode::NOERROR);
        assert_eq!(opened[0].woken(), Some(Some(7)));
        assert_eq!(stats.notify_accepted.load(Relaxed), 1);

        // Refused, and nothing woken: unsigned, another secret, another address, another zone.
        let cases = [
            (request(&zone, None), primary, rcode::REFUSED),
            (
                request(&zone, Some(&key(b"wrong"))),
                primary,
                rcode::NOTAUTH,
            ),
            (request(&zone, Some(&right)), other, rcode::REFUSED),
            (
                request(&Name::parse("other.", None).unwrap(), Some(&right)),
                primary,
                rcode::NOTAUTH,
            ),
        ];
        for (i, (msg, from, want)) in cases.into_iter().enumerate() {
            let r = h.notify(&msg, from, Transport::Tcp);
            assert_eq!(rcode_of(r), want, "case {i}");
            assert_eq!(opened[0].woken(), None, "case {i}");
            assert_eq!(stats.notify_refused.load(Relaxed), i as u64 + 1);
        }
        assert_eq!(stats.notify_accepted.load(Relaxed), 1);
        let _ = std::fs::remove_dir_all(storage);
    }
}
