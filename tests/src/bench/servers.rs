//! The servers under test, each started in the server namespace, pinned to the server core,
//! with RRL off: xdpdns with XDP (native) and without (`--xdp-mode off`), Knot in UDP mode and
//! in XDP mode, NSD — and the `xdp_reflect` program, the trivial "server" that gives the load
//! generator's own ceiling. Stopping a server also removes any XDP program it left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::net::{self, BenchNet, SERVER_CPU};
use super::{bpf, cleanup, zone};
use crate::stats::Counters;
use crate::{sh, SERVER_V4};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Reflector,
    XdpdnsXdp,
    XdpdnsUser,
    KnotUdp,
    KnotXdp,
    Nsd,
}

impl Kind {
    /// The servers compared (the reflector is measured separately).
    pub const SERVERS: [Kind; 5] = [
        Kind::XdpdnsXdp,
        Kind::XdpdnsUser,
        Kind::KnotUdp,
        Kind::KnotXdp,
        Kind::Nsd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Reflector => "reflector",
            Kind::XdpdnsXdp => "xdpdns-xdp",
            Kind::XdpdnsUser => "xdpdns-user",
            Kind::KnotUdp => "knot-udp",
            Kind::KnotXdp => "knot-xdp",
            Kind::Nsd => "nsd",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::SERVERS
            .into_iter()
            .chain([Kind::Reflector])
            .find(|k| k.name() == s)
            .with_context(|| {
                format!(
                    "unknown server {s:?} (known: {})",
                    Kind::SERVERS.map(|k| k.name()).join(", ")
                )
            })
    }

    /// xdpdns, which has a control socket with counters.
    pub fn is_xdpdns(self) -> bool {
        matches!(self, Kind::XdpdnsXdp | Kind::XdpdnsUser)
    }
}

/// A running server.
pub struct Server {
    pub kind: Kind,
    child: Option<Child>,
    xdp: Option<(bpf::Prog, bpf::Link)>,
    pub control: PathBuf,
    pub log: PathBuf,
    /// From spawn to the first NOERROR answer (for xdpdns userspace's: `start` returns once
    /// its XDP maps are filled too).
    pub startup: Duration,
}

fn knot_conf(dir: &Path, zone: &Path, xdp_iface: Option<&str>) -> String {
    let d = dir.display();
    let xdp = match xdp_iface {
        Some(i) => format!("xdp:\n    listen: {i}@53\n    udp: on\n    tcp: off\n"),
        None => String::new(),
    };
    format!(
        "server:\n    rundir: {d}\n    listen: {SERVER_V4}@53\n    udp-workers: 1\n    \
         tcp-workers: 1\n    background-workers: 1\n{xdp}\
         database:\n    storage: {d}\n    journal-db-max-size: 64M\n    \
         kasp-db-max-size: 64M\n    timer-db-max-size: 64M\n    catalog-db-max-size: 64M\n\
         log:\n  - target: stderr\n    any: info\n\
         template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    \
         zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n\
         zone:\n  - domain: {}\n    file: {}\n",
        zone::ORIGIN,
        zone.display()
    )
}

fn nsd_conf(dir: &Path, zone: &Path) -> String {
    let d = dir.display();
    format!(
        "server:\n  ip-address: {SERVER_V4}\n  port: 53\n  server-count: 1\n  verbosity: 1\n  \
         database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
         pidfile: \"{d}/nsd.pid\"\n  username: \"\"\n  chroot: \"\"\n  logfile: \"{d}/nsd.log\"\n  \
         rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n  reuseport: no\n\
         remote-control:\n  control-enable: no\n\
         zone:\n  name: {}\n  zonefile: \"{}\"\n",
        zone::ORIGIN,
        zone.display()
    )
}

impl Server {
    /// Starts `kind` on `zone` with its files in `dir`, and waits until it answers.
    pub fn start(kind: Kind, net: &mut BenchNet, zone: &Path, dir: &Path) -> Result<Server> {
        Server::start_pinned(kind, net, zone, dir, true)
    }

    /// As `start`, free to use every core (for the start-up figures), not pinned afterwards.
    pub fn start_on_all_cores(
        kind: Kind,
        net: &mut BenchNet,
        zone: &Path,
        dir: &Path,
    ) -> Result<Server> {
        Server::start_pinned(kind, net, zone, dir, false)
    }

    fn start_pinned(
        kind: Kind,
        net: &mut BenchNet,
        zone: &Path,
        dir: &Path,
        pinned: bool,
    ) -> Result<Server> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join("server.log");
        let control = dir.join("control.sock");
        let mut server = Server {
            kind,
            child: None,
            xdp: None,
            control: control.clone(),
            log: log.clone(),
            startup: Duration::ZERO,
        };
        // Readiness is checked with a kernel-socket query, which needs XDP on the client end.
        net.client_pass(true)?;
        let t = Instant::now();
        let program = match kind {
            Kind::Reflector => None,
            Kind::XdpdnsXdp | Kind::XdpdnsUser => Some(crate::xdpdns_bin().display().to_string()),
            Kind::KnotUdp | Kind::KnotXdp => Some("knotd".to_owned()),
            Kind::Nsd => Some("nsd".to_owned()),
        };
        if let Some(program) = program {
            let ns = net.server_ns.clone();
            let mut cmd = net.cmd_on(&ns, pinned.then_some(SERVER_CPU), &program);
            match kind {
                Kind::XdpdnsXdp | Kind::XdpdnsUser => {
                    cmd.arg("serve")
                        .arg("--zone")
                        .arg(zone)
                        .args(["--iface", &net.server_if, "--listen", "198.18.0.1:53"])
                        .args([
                            "--xdp-mode",
                            if kind == Kind::XdpdnsXdp {
                                "native"
                            } else {
                                "off"
                            },
                        ])
                        .arg("--control")
                        .arg(&control)
                        .args(["--nsid", "bench-node"])
                        .env("RUST_LOG", "info");
                }
                Kind::KnotUdp | Kind::KnotXdp => {
                    let iface = (kind == Kind::KnotXdp).then_some(net.server_if.as_str());
                    let conf = dir.join("knot.conf");
                    std::fs::write(&conf, knot_conf(dir, zone, iface))?;
                    cmd.arg("-c").arg(&conf);
                }
                Kind::Nsd => {
                    let conf = dir.join("nsd.conf");
                    std::fs::write(&conf, nsd_conf(dir, zone))?;
                    cmd.args(["-d", "-c"]).arg(&conf);
                }
                Kind::Reflector => {}
            }
            let out = std::fs::File::create(&log)?;
            cmd.stdout(out.try_clone()?)
                .stderr(out)
                .stdin(Stdio::null());
            server.child = Some(net.spawn(&mut cmd)?);
        } else {
            server.xdp = Some(bpf::attach_in_ns(
                &net.server_ns,
                &net.server_if,
                "xdp_reflect",
            )?);
        }
        let ready = if kind == Kind::Reflector {
            Ok(())
        } else {
            server.wait_ready(net)
        };
        // From spawn to the first answer (userspace's, for xdpdns).
        server.startup = t.elapsed();
        let ready = ready.and_then(|_| server.wait_xdp_filled());
        if let Err(e) = ready {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(e.context(format!(
                "{} did not start:\n{}",
                kind.name(),
                tail.join("\n")
            )));
        }
        if let (Some(c), true) = (&server.child, pinned) {
            net::pin_tree(c.id(), SERVER_CPU, net.nice)?;
        }
        net.pin_napi()?;
        Ok(server)
    }

    fn wait_ready(&mut self, net: &BenchNet) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .map(|c| c.try_wait())
                .transpose()?
                .flatten()
            {
                bail!("exited at start ({status})");
            }
            if net
                .wait_answering(zone::ORIGIN, Duration::from_millis(500))
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("not answering after 180 s");
            }
        }
    }

    /// For xdpdns: waits until its XDP maps are filled (it answers from userspace before),
    /// so that what is measured next is the path under test.
    fn wait_xdp_filled(&self) -> Result<()> {
        if !self.kind.is_xdpdns() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let status = sh(std::process::Command::new(crate::xdpdns_bin())
                .arg("status")
                .arg("--control")
                .arg(&self.control))?;
            if !status.contains("xdp filling") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("XDP maps still filling after 600 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Process ids of the server (main process and its children).
    pub fn pids(&self) -> Vec<i32> {
        self.child
            .as_ref()
            .map(|c| net::process_tree(c.id()))
            .unwrap_or_default()
    }

    pub fn main_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `xdpdns stats` as name → value (xdpdns only).
    pub fn stats(&self) -> Result<Counters> {
        if !self.kind.is_xdpdns() {
            return Ok(Counters::default());
        }
        let text = sh(std::process::Command::new(crate::xdpdns_bin())
            .arg("stats")
            .arg("--control")
            .arg(&self.control))?;
        Counters::parse(&text)
    }

    /// Stops the server and removes whatever XDP program it left on the server's veth.
    pub fn stop(mut self, net: &BenchNet) -> Result<()> {
        self.xdp = None;
        let clean = match self.child.take() {
            Some(mut c) => cleanup::terminate(&mut c, Duration::from_secs(15)),
            None => true,
        };
        net.xdp_off(&net.server_ns, &net.server_if);
        if !clean {
            bail!("{} did not exit cleanly on SIGTERM", self.kind.name());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            cleanup::terminate(&mut c, Duration::from_secs(5));
        }
    }
}
