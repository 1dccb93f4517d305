//! Primaries for the zone-transfer tests, each started inside the test's server namespace and
//! stopped on drop: knotd with TSIG keys, an IXFR journal (or none), NOTIFY targets and
//! secondary zones (`KnotPrimary`), and NSD with a TSIG key (`NsdPrimary`, an `Nsd`).

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::knot::{wait_answering, KnotServer, KnotZone, Site};
use crate::{TestNet, SERVER_V4, SERVER_V6};

/// A TSIG key as the servers' configurations name it.
#[derive(Clone, Debug)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    /// Base64.
    pub secret: String,
}

impl TsigKey {
    pub fn new(name: &str, algorithm: &str, secret: &[u8]) -> TsigKey {
        TsigKey {
            name: name.to_owned(),
            algorithm: algorithm.to_owned(),
            secret: data_encoding::BASE64.encode(secret),
        }
    }

    /// The same key for xdpdns.
    pub fn key(&self) -> xdpdns::xfr::tsig::Key {
        xdpdns::xfr::tsig::Key::from_config(&xdpdns::xfr::tsig::KeyConfig {
            name: self.name.clone(),
            algorithm: self.algorithm.clone(),
            secret: self.secret.clone(),
        })
        .expect("valid test key")
    }
}

/// What a knotd primary is set up with.
#[derive(Clone, Debug, Default)]
pub struct KnotOptions {
    /// Keys known to knotd; transfers and NOTIFY are allowed with the first.
    pub keys: Vec<TsigKey>,
    /// Keep an IXFR journal, with diffs computed from the zone file on reload.
    pub journal: bool,
    /// Send NOTIFY for the primary zones to this address, signed with the first key.
    pub notify: Option<SocketAddr>,
    /// Zones knotd is a secondary for (transferring from `SocketAddr`), accepting NOTIFY
    /// signed with the first key.
    pub secondary: Vec<(String, SocketAddr)>,
    /// Where knotd runs; by default in the server namespace on the server addresses.
    pub site: Option<Site>,
    /// Sign the zone (knotd's automatic DNSSEC signing, default policy), as a registry's
    /// signing primary does; every change is re-signed.
    pub dnssec: bool,
}

/// A running knotd primary.
pub struct KnotPrimary {
    pub knot: KnotServer,
    origin: String,
}

impl KnotPrimary {
    /// Starts knotd serving `origin` from `zone_text` on the server addresses at `port`.
    pub fn start(
        net: &TestNet,
        port: u16,
        origin: &str,
        zone_text: &str,
        opts: &KnotOptions,
    ) -> Result<KnotPrimary> {
        let dir = KnotServer::new_dir()?;
        let file = dir.join("zones").join(format!("{origin}zone"));
        std::fs::write(&file, zone_text)?;
        let d = dir.display();
        let site = opts.site.clone().unwrap_or_else(|| Site::server(net, port));
        let mut c =
            "# Written by xdpdns-tests (tests/src/primary.rs): a primary for the transfer tests.\n"
                .to_owned();
        c.push_str(&KnotServer::server_section_on(&dir, &site.listen, "debug"));
        if !opts.keys.is_empty() {
            c.push_str("key:\n");
            for k in &opts.keys {
                c.push_str(&format!(
                    "  - id: {}\n    algorithm: {}\n    secret: {}\n",
                    k.name, k.algorithm, k.secret
                ));
            }
        }
        let key = opts.keys.first().map(|k| k.name.clone());
        let key_line = key
            .as_ref()
            .map(|k| format!("    key: {k}\n"))
            .unwrap_or_default();
        c.push_str(&format!(
            "acl:\n  - id: xfr\n{key_line}    action: [transfer, notify]\n"
        ));
        let mut remotes = Vec::new();
        if let Some(a) = opts.notify {
            remotes.push(("downstream".to_owned(), a));
        }
        for (i, (_, a)) in opts.secondary.iter().enumerate() {
            remotes.push((format!("upstream{i}"), *a));
        }
        if !remotes.is_empty() {
            c.push_str("remote:\n");
            for (id, a) in &remotes {
                c.push_str(&format!(
                    "  - id: {id}\n    address: {}@{}\n{key_line}",
                    a.ip(),
                    a.port()
                ));
            }
        }
        let (load, journal) = if opts.journal {
            ("difference", "changes")
        } else {
            ("whole", "none")
        };
        c.push_str(&format!(
            "template:
  - id: default
    storage: \"{d}/zones\"
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: {load}
    journal-content: {journal}
    acl: xfr
zone:
  - domain: \"{origin}\"
    file: \"{}\"
",
            file.display()
        ));
        if opts.notify.is_some() {
            c.push_str("    notify: downstream\n");
        }
        if opts.dnssec {
            c.push_str("    dnssec-signing: on\n");
        }
        for (i, (zone, _)) in opts.secondary.iter().enumerate() {
            c.push_str(&format!(
                "  - domain: \"{zone}\"\n    master: upstream{i}\n    file: \"{d}/zones/sec{i}.zone\"\n"
            ));
        }
        let ready = [KnotZone {
            origin: origin.to_owned(),
            file,
        }];
        let knot = KnotServer::launch_at(net, &site, dir, &c, &ready)?;
        Ok(KnotPrimary {
            knot,
            origin: origin.to_owned(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.knot.addrs()[0]
    }

    pub fn addr_v6(&self) -> SocketAddr {
        self.knot.addrs()[1]
    }

    /// Replaces the zone file and has knotd reload it, waiting until it has (with a journal:
    /// the diff is kept).
    pub fn update(&self, zone_text: &str) -> Result<()> {
        let file = self
            .knot
            .dir
            .join("zones")
            .join(format!("{}zone", self.origin));
        std::fs::write(&file, zone_text)?;
        self.knot
            .knotc(&["-b", "zone-reload", &self.origin])
            .with_context(|| format!("reloading {}:\n{}", self.origin, self.knot.log()))?;
        Ok(())
    }
}

/// A running NSD, a primary (`start`) or a secondary (`downstream::Nsd::start_secondary`);
/// stopped on drop.
pub struct Nsd {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
}

/// The NSD primary of the transfer tests.
pub type NsdPrimary = Nsd;

impl Nsd {
    /// Starts NSD serving `origin` from `zone_text` at `port`, transfers allowed with `key`.
    pub fn start(
        net: &TestNet,
        port: u16,
        origin: &str,
        zone_text: &str,
        key: &TsigKey,
    ) -> Result<Nsd> {
        let dir = KnotServer::new_dir()?.with_extension("nsd");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("zone"), zone_text)?;
        let mut conf =
            "# Written by xdpdns-tests (tests/src/primary.rs): a primary for the transfer tests.\n"
                .to_owned();
        conf.push_str(&Nsd::config_head(&dir, port, key));
        conf.push_str(&format!(
            "zone:
  name: \"{origin}\"
  zonefile: \"zone\"
  provide-xfr: 0.0.0.0/0 {k}
  provide-xfr: ::0/0 {k}
",
            k = key.name
        ));
        Nsd::launch(net, dir, &conf, origin, port)
    }

    /// The `server`, `remote-control` and `key` sections: listening on the server addresses at
    /// `port`, everything under `dir`, logging transfers.
    pub fn config_head(dir: &Path, port: u16, key: &TsigKey) -> String {
        let d = dir.display();
        format!(
            "server:
  ip-address: {SERVER_V4}@{port}
  ip-address: {SERVER_V6}@{port}
  zonesdir: \"{d}\"
  database: \"\"
  pidfile: \"{d}/nsd.pid\"
  xfrdfile: \"{d}/xfrd.state\"
  zonelistfile: \"{d}/zone.list\"
  username: \"\"
  chroot: \"\"
  server-count: 1
  verbosity: 2
remote-control:
  control-enable: no
key:
  name: \"{}\"
  algorithm: {}
  secret: \"{}\"
",
            key.name, key.algorithm, key.secret
        )
    }

    /// Starts NSD with configuration `conf` (written into `dir`) in the server namespace and
    /// waits until it answers the SOA of `origin`.
    pub fn launch(net: &TestNet, dir: PathBuf, conf: &str, origin: &str, port: u16) -> Result<Nsd> {
        std::fs::write(dir.join("nsd.conf"), conf)?;
        let log = File::create(dir.join("nsd.log"))?;
        let child = net
            .in_ns_cmd(&net.server_ns, Path::new("nsd"))
            .arg("-d")
            .arg("-c")
            .arg(dir.join("nsd.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting nsd (is NSD installed?)")?;
        let mut nsd = Nsd {
            child: Some(child),
            dir,
            port,
        };
        nsd.wait_ready(net, origin)?;
        Ok(nsd)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(SERVER_V4), self.port)
    }

    fn wait_ready(&mut self, net: &TestNet, origin: &str) -> Result<()> {
        let addrs = [self.addr()];
        let log = self.dir.join("nsd.log");
        let child = self.child.as_mut().expect("child");
        let ns = &net.client_ns;
        wait_answering(ns, child, "nsd", &addrs, &[origin.to_owned()], &log)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nsd.log")).unwrap_or_default()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = crate::terminate_within(&mut c, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!("nsd files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
