//! Downstream secondaries for the outbound transfer tests, each started inside the test's
//! server namespace and stopped on drop: knotd (`KnotSecondary`) and NSD
//! (`Nsd::start_secondary`),
//! each a secondary of one zone from our address with a TSIG key, accepting our NOTIFY signed
//! with it, and giving the zone by AXFR to anyone with the key (for the tests to compare).
//! Also: reading a server's SOA serial and waiting, bounded, for it to reach a value.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::rtype;
use xdpdns::xfr::message;
use xdpdns::xfr::soa::Soa;

use crate::knot::{KnotServer, KnotZone};
use crate::primary::{Nsd, TsigKey};
use crate::TestNet;

/// A running knotd secondary.
pub struct KnotSecondary {
    pub knot: KnotServer,
}

impl KnotSecondary {
    /// Starts knotd at `port` as a secondary of `zone` from `primary` with `key` (which also
    /// signs our NOTIFY and the transfers it gives), with a journal; with `wait`, waits until
    /// it serves the zone (its first transfer done).
    pub fn start(
        net: &TestNet,
        port: u16,
        zone: &str,
        primary: SocketAddr,
        key: &TsigKey,
        wait: bool,
    ) -> Result<KnotSecondary> {
        let dir = KnotServer::new_dir()?;
        let d = dir.display();
        let mut c =
            "# Written by xdpdns-tests (tests/src/downstream.rs): a downstream secondary.\n"
                .to_owned();
        c.push_str(&KnotServer::server_section(&dir, port, "info"));
        c.push_str(&format!(
            "key:
  - id: {name}
    algorithm: {alg}
    secret: {secret}
remote:
  - id: upstream
    address: {ip}@{p}
    key: {name}
acl:
  - id: from_upstream
    address: {ip}
    key: {name}
    action: notify
  - id: give
    key: {name}
    action: transfer
template:
  - id: default
    storage: \"{d}/zones\"
    semantic-checks: off
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: \"{zone}\"
    master: upstream
    acl: [from_upstream, give]
",
            name = key.name,
            alg = key.algorithm,
            secret = key.secret,
            ip = primary.ip(),
            p = primary.port(),
        ));
        let ready = [KnotZone {
            origin: zone.to_owned(),
            file: dir.join("zones").join(format!("{zone}zone")),
        }];
        let ready = if wait { &ready[..] } else { &[] };
        let knot = KnotServer::launch(net, &net.server_ns, dir, &c, ready, port)?;
        Ok(KnotSecondary { knot })
    }

    pub fn addr(&self) -> SocketAddr {
        self.knot.addrs()[0]
    }
}

impl Nsd {
    /// Starts NSD at `port` as a secondary of `zone` from `primary` with `key` (which also
    /// signs our NOTIFY and the transfers it gives), and waits until it serves the zone.
    pub fn start_secondary(
        net: &TestNet,
        port: u16,
        zone: &str,
        primary: SocketAddr,
        key: &TsigKey,
    ) -> Result<Nsd> {
        let dir = KnotServer::new_dir()?.with_extension("nsd-secondary");
        std::fs::create_dir_all(&dir)?;
        let mut conf =
            "# Written by xdpdns-tests (tests/src/downstream.rs): a downstream secondary.\n"
                .to_owned();
        conf.push_str(&Nsd::config_head(&dir, port, key));
        let (k, ip, p) = (&key.name, primary.ip(), primary.port());
        conf.push_str(&format!(
            "zone:
  name: \"{zone}\"
  zonefile: \"zone\"
  request-xfr: {ip}@{p} {k}
  allow-notify: {ip} {k}
  provide-xfr: 0.0.0.0/0 {k}
  provide-xfr: ::0/0 {k}
"
        ));
        Nsd::launch(net, dir, &conf, zone, port)
    }
}

/// The SOA serial `addr` answers for `zone` over UDP from the client namespace, if it does.
pub fn soa_serial(net: &TestNet, addr: SocketAddr, zone: &str) -> Option<u32> {
    let z = Name::parse(zone, None).ok()?;
    net.in_client(move || {
        let q = message::query(0x5e41, &z, rtype::SOA, None);
        let r = crate::client::udp(addr, &q).ok()?;
        let m = message::parse(&r).ok()?;
        m.answers
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.owner == z)
            .and_then(Soa::from_record)
            .map(|s| s.serial)
    })
    .ok()
    .flatten()
}

/// Waits up to `within` until `addr` answers serial `serial` for `zone`; `what` names the
/// server, `log` gives its log for the error.
pub fn wait_serial(
    net: &TestNet,
    addr: SocketAddr,
    zone: &str,
    serial: u32,
    within: Duration,
    what: &str,
    log: impl Fn() -> String,
) -> Result<()> {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        last = soa_serial(net, addr, zone);
        if last == Some(serial) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "{what} at {addr} answers serial {last:?} for {zone}, not {serial}, after {within:?}:\n{}",
        log()
    )
}
