//! Feeding downstream secondaries from the secondary zones, so that one instance of a region
//! can feed the others: zone transfers out (AXFR, RFC 5936; IXFR from the zone's journal,
//! RFC 1995), TSIG-signed answers to their SOA checks (RFC 8945), and NOTIFY to them after
//! each new version (RFC 1996). Who may transfer a zone is its ACL (`acl`, `--allow-transfer`);
//! nobody may without a rule.
//!
//! Each zone's task leaves a snapshot here after every look (`Outbound::update`): the version
//! as transfers serve it (built once per version) and the timers, so that a transfer sees the
//! version served and the time left before EXPIRE (sent as EDNS EXPIRE, RFC 7314), and a zone
//! expired under `honour` is not transferred either.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use super::clock::DaemonClock;
use super::held;
use super::secondary::{XfrStats, ZoneHandle};
use crate::engine::Transport;
use crate::net::{TransferMessages, Transfers};
use crate::wire::name::Name;
use crate::wire::record::Record;
use crate::xfr::acl::Acl;
use crate::xfr::client::unix_now;
use crate::xfr::notify_out::{notify_downstreams, Downstream, Retries};
use crate::xfr::outbound::{self, Offer, Outcome};
use crate::xfr::secondary::Secondary;
use crate::xfr::signed_query;
use crate::xfr::timers::Timers;
use crate::xfr::tsig::Key;

/// A zone's state as transfers see it.
#[derive(Default)]
pub struct Outbound {
    snapshot: Mutex<Option<(outbound::Served, Timers)>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let serial = held(&self.snapshot).as_ref().map(|(s, _)| s.serial);
        f.debug_struct("Outbound").field("serial", &serial).finish()
    }
}

impl Outbound {
    /// Takes the zone's state after a look by its task. Returns the SOA of a version new since
    /// the last look (downstreams are to be notified of it).
    pub fn update(&self, sec: &Secondary, clock: &DaemonClock, acl: &Arc<Acl>) -> Option<Record> {
        let mut snap = held(&self.snapshot);
        let serial = sec.serial();
        if let Some((served, timers)) = snap.as_mut() {
            *timers = sec.timers().clone();
            if Some(served.serial) == serial {
                return None;
            }
        }
        let offer = sec.offer(&*clock.clock, acl.clone())?;
        let soa = offer.served.soa.clone();
        *snap = Some((offer.served, sec.timers().clone()));
        Some(soa)
    }

    /// What a transfer of the zone gets now: `None` before the first version, or once it
    /// expired under `honour`.
    fn offer(&self, now: u64, acl: Arc<Acl>) -> Option<Offer> {
        let snap = held(&self.snapshot);
        let (served, timers) = snap.as_ref()?;
        if !timers.serves(now) {
            return None;
        }
        let expire = timers
            .state()
            .expires_at
            .map(|e| u32::try_from(e.saturating_sub(now)).unwrap_or(u32::MAX));
        Some(Offer {
            served: served.clone(),
            acl,
            expire,
        })
    }
}

/// NOTIFY to the zone's downstreams of the version whose SOA is `soa`, on the blocking pool;
/// outcomes logged (by `notify_downstreams`) and counted.
pub fn notify(zone: &ZoneHandle, soa: Record, stats: &Arc<XfrStats>) {
    let downstreams: Vec<Downstream> = zone
        .spec
        .notify
        .iter()
        .flat_map(|r| {
            r.addrs.iter().map(|a| Downstream {
                addr: *a,
                key: r.key.clone(),
            })
        })
        .collect();
    if downstreams.is_empty() {
        return;
    }
    let (name, stats) = (zone.spec.zone.clone(), stats.clone());
    tokio::task::spawn_blocking(move || {
        for n in notify_downstreams(&name, &soa, &downstreams, Retries::default()) {
            match n.result {
                Ok(()) => stats.notify_sent.fetch_add(1, Relaxed),
                Err(_) => stats.notify_failed.fetch_add(1, Relaxed),
            };
        }
    });
}

/// The transfer handler of the secondary zones.
pub struct Outgoing {
    zones: HashMap<Name, Arc<ZoneHandle>>,
    keys: Vec<Key>,
    clock: DaemonClock,
    stats: Arc<XfrStats>,
}

impl Outgoing {
    pub fn new(
        zones: &[Arc<ZoneHandle>],
        keys: Vec<Key>,
        clock: DaemonClock,
        stats: Arc<XfrStats>,
    ) -> Outgoing {
        Outgoing {
            zones: zones
                .iter()
                .map(|z| (z.spec.zone.clone(), z.clone()))
                .collect(),
            keys,
            clock,
            stats,
        }
    }

    fn count(&self, outcome: &Outcome) {
        let s = &self.stats;
        let c = match outcome {
            Outcome::Axfr { .. } | Outcome::IxfrFull { .. } => &s.outbound_axfr,
            Outcome::Ixfr { .. } => &s.outbound_ixfr,
            Outcome::UpToDate { .. } | Outcome::UseTcp { .. } => &s.outbound_up_to_date,
            Outcome::Refused { .. } | Outcome::Dropped { .. } => &s.outbound_refused,
        };
        c.fetch_add(1, Relaxed);
    }
}

impl Transfers for Outgoing {
    fn transfer(&self, msg: &[u8], peer: SocketAddr, transport: Transport) -> TransferMessages {
        // TSIG against the real time; the zone timers against the daemon's clock.
        let now = self.clock.now();
        let reply = outbound::respond(msg, peer.ip(), transport, &self.keys, unix_now(), |z| {
            let zone = self.zones.get(z)?;
            zone.outbound.offer(now, zone.acl.clone())
        });
        self.count(&reply.outcome);
        Box::new(reply.messages)
    }

    fn expire_left(&self, apex: &Name) -> Option<u32> {
        let zone = self.zones.get(apex)?;
        zone.outbound
            .offer(self.clock.now(), zone.acl.clone())?
            .expire
    }

    fn signed(
        &self,
        msg: &[u8],
        _transport: Transport,
        engine: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let a = signed_query::answer(msg, &self.keys, unix_now(), engine);
        if a.rejected.is_some() {
            self.stats.signed_queries_refused.fetch_add(1, Relaxed);
        } else if a.key.is_some() {
            self.stats.signed_queries.fetch_add(1, Relaxed);
        }
        a.response
    }
}
