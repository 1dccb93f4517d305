//! Knot DNS as a reference server for the differential test: `KnotServer::start` writes a knotd
//! configuration for the given zone files into a temporary directory, starts knotd inside the
//! test's server namespace (never on the host), waits until it answers the SOA of every zone
//! from the client namespace, and stops it on drop (also when the test panics).
//!
//! The configuration serves the zone files exactly as they are: no signing, no journal, no
//! zone-file flushing, no semantic checks beyond the mandatory ones, and the same UDP payload
//! limit as xdpdns (1232).

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::client::{self, Q};
use crate::{TestNet, SERVER_V4, SERVER_V6};

/// A zone for knotd: its name and file.
#[derive(Clone, Debug)]
pub struct KnotZone {
    /// Zone name, with or without the trailing dot.
    pub origin: String,
    pub file: PathBuf,
}

/// A running knotd; killed on drop.
pub struct KnotServer {
    child: Option<Child>,
    /// Temporary directory: configuration, run directory, database and log.
    pub dir: PathBuf,
    pub port: u16,
    zones: Vec<KnotZone>,
    /// Its IPv4 and IPv6 listen addresses.
    listen: [SocketAddr; 2],
    /// The namespace its readiness is checked from.
    probe_ns: String,
}

/// Where a knotd runs: its namespace, its two listen addresses, and a namespace that reaches
/// them (to check that it answers).
#[derive(Clone, Debug)]
pub struct Site {
    pub ns: String,
    pub listen: [SocketAddr; 2],
    pub probe_ns: String,
}

impl Site {
    /// The server namespace of `net` on the server addresses, probed from the client side.
    pub fn server(net: &TestNet, port: u16) -> Site {
        Site {
            ns: net.server_ns.clone(),
            listen: [
                SocketAddr::new(IpAddr::V4(SERVER_V4), port),
                SocketAddr::new(IpAddr::V6(SERVER_V6), port),
            ],
            probe_ns: net.client_ns.clone(),
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The UDP payload limit of both servers (xdpdns' default `--server-payload`).
pub const UDP_MAX_PAYLOAD: u16 = 1232;

impl KnotServer {
    /// The knotd configuration for `zones`, listening on the server addresses at `port`, with
    /// everything under `dir`.
    pub fn config(dir: &Path, zones: &[KnotZone], port: u16) -> String {
        let d = dir.display();
        let mut c = Self::server_section(dir, port, "info");
        c.insert_str(
            0,
            "# Written by xdpdns-tests (tests/src/knot.rs) for the differential test.\n",
        );
        c.push_str(&format!(
            "template:
  - id: default
    storage: \"{d}/zones\"
    semantic-checks: off
    # Serve the files as they are: never write them back, keep no journal.
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
"
        ));
        for z in zones {
            let origin = z.origin.trim_end_matches('.');
            c.push_str(&format!(
                "  - domain: \"{origin}.\"\n    file: \"{}\"\n",
                z.file.display()
            ));
        }
        c
    }

    /// The `server`, `database` and `log` sections: listening on the server addresses at
    /// `port`, run directory and database under `dir`, logging at `level` to stderr.
    pub fn server_section(dir: &Path, port: u16, level: &str) -> String {
        let listen = [
            SocketAddr::new(IpAddr::V4(SERVER_V4), port),
            SocketAddr::new(IpAddr::V6(SERVER_V6), port),
        ];
        Self::server_section_on(dir, &listen, level)
    }

    /// Like `server_section`, listening on `listen`.
    pub fn server_section_on(dir: &Path, listen: &[SocketAddr], level: &str) -> String {
        let d = dir.display();
        let listen: Vec<String> = listen
            .iter()
            .map(|a| format!("{}@{}", a.ip(), a.port()))
            .collect();
        let listen = listen.join(", ");
        format!(
            "server:
    rundir: \"{d}/run\"
    listen: [ {listen} ]
    udp-max-payload: {UDP_MAX_PAYLOAD}
    # The test talks to one address at a time; keep the footprint small.
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: \"{d}/db\"
log:
  - target: stderr
    any: {level}
"
        )
    }

    /// Starts knotd in the server namespace of `net` and waits until every zone answers its
    /// SOA over UDP on both addresses.
    pub fn start(net: &TestNet, zones: &[KnotZone], port: u16) -> Result<KnotServer> {
        Self::start_in(net, &net.server_ns, zones, port)
    }

    /// Like `start`, in the namespace `ns` of `net` (which must hold the server addresses;
    /// readiness is checked from the client namespace).
    pub fn start_in(net: &TestNet, ns: &str, zones: &[KnotZone], port: u16) -> Result<KnotServer> {
        let dir = Self::new_dir()?;
        let conf = Self::config(&dir, zones, port);
        Self::launch(net, ns, dir, &conf, zones, port)
    }

    /// A fresh temporary directory for a knotd, with `run`, `db` and `zones` below it.
    pub fn new_dir() -> Result<PathBuf> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("xdpdns-knot-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        Ok(dir)
    }

    /// Starts knotd with configuration `conf` in `dir` (from `new_dir`) inside namespace `ns`,
    /// and waits until every zone of `ready` answers its SOA.
    pub fn launch(
        net: &TestNet,
        ns: &str,
        dir: PathBuf,
        conf: &str,
        ready: &[KnotZone],
        port: u16,
    ) -> Result<KnotServer> {
        let mut site = Site::server(net, port);
        site.ns = ns.to_owned();
        Self::launch_at(net, &site, dir, conf, ready)
    }

    /// Like `launch`, at `site` (whose addresses `conf` must listen on).
    pub fn launch_at(
        net: &TestNet,
        site: &Site,
        dir: PathBuf,
        conf: &str,
        ready: &[KnotZone],
    ) -> Result<KnotServer> {
        let ns = site.ns.as_str();
        let conf_file = dir.join("knot.conf");
        std::fs::write(&conf_file, conf)?;
        let log = File::create(dir.join("knotd.log"))?;
        let child = net
            .in_ns_cmd(ns, Path::new("knotd"))
            .arg("-c")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting knotd (is Knot DNS installed?)")?;
        let mut knot = KnotServer {
            child: Some(child),
            dir,
            port: site.listen[0].port(),
            zones: ready.to_vec(),
            listen: site.listen,
            probe_ns: site.probe_ns.clone(),
        };
        knot.wait_ready(net)?;
        Ok(knot)
    }

    /// Runs `knotc` against this knotd (its control socket is in the run directory).
    pub fn knotc(&self, args: &[&str]) -> Result<String> {
        crate::sh(
            std::process::Command::new("knotc")
                .arg("-c")
                .arg(self.dir.join("knot.conf"))
                .arg("-t")
                .arg("10")
                .args(args),
        )
    }

    /// The addresses knotd listens on.
    pub fn addrs(&self) -> [SocketAddr; 2] {
        self.listen
    }

    fn wait_ready(&mut self, _net: &TestNet) -> Result<()> {
        let origins: Vec<String> = self.zones.iter().map(|z| z.origin.clone()).collect();
        let addrs = self.addrs();
        let log = self.dir.join("knotd.log");
        wait_answering(
            &self.probe_ns,
            self.child.as_mut().expect("child"),
            "knotd",
            &addrs,
            &origins,
            &log,
        )
    }

    /// knotd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default()
    }

    /// Stops knotd (SIGTERM, then SIGKILL after 5 s) and waits for it. Returns whether it
    /// exited cleanly.
    pub fn stop(&mut self) -> Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        crate::terminate_within(&mut child, Duration::from_secs(5))
    }
}

/// Waits until the server `child` (`what`) answers the SOA of every zone of `origins` over UDP
/// at every address of `addrs`, from namespace `probe_ns`; fails with the log at `log` when it
/// exits or takes more than 20 s.
pub fn wait_answering(
    probe_ns: &str,
    child: &mut Child,
    what: &str,
    addrs: &[SocketAddr],
    origins: &[String],
    log: &Path,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let probes: Vec<(SocketAddr, Vec<u8>)> = addrs
        .iter()
        .flat_map(|a| {
            origins.iter().map(move |o| {
                let mut q = Q::new(&format!("{}.", o.trim_end_matches('.')), 6);
                q.id = 0x4b4e;
                (*a, q.wire())
            })
        })
        .collect();
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}):\n{}", log());
        }
        let p = probes.clone();
        let ready = crate::in_netns(probe_ns, move || {
            p.iter().all(|(addr, q)| {
                let Ok(r) = client::udp(*addr, q) else {
                    return false;
                };
                // NOERROR, AA and one answer: the zone is loaded.
                r.len() > 12 && r[3] & 0x0f == 0 && r[2] & 0x04 != 0 && r[7] == 1
            })
        })?;
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not answer every zone in time:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            eprintln!("knotd files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
