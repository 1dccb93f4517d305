//! The secondaries measured, one at a time, each in the server namespace on the server core,
//! answering clients on 198.18.0.1 and taking NOTIFY on the upstream address: xdpdns (XDP
//! native on the client veth, `--primary`, `--key`, fresh `--storage`) and knotd (a `master`
//! zone with Knot's defaults for a secondary: journal of changes, zone file flushed). `axfr`
//! times one from its start until it answers the zone's serial, with the log marks it passed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::super::net::{BenchNet, SERVER_CPU};
use super::super::{cleanup, zone};
use super::primary::key_and_remote;
use super::probe::{LogWatch, Mark, Prober, POLL};
use crate::knot::KnotServer;
use crate::primary::TsigKey;
use crate::upstream::EDGE_V4;
use crate::SERVER_V4;

/// How long the first transfer may take, from the start to the serial answered.
const AXFR_MAX: Duration = Duration::from_secs(900);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    Xdpdns,
    Knot,
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Xdpdns => "xdpdns",
            EdgeKind::Knot => "knotd",
        }
    }
}

/// Where the clients ask.
pub fn service() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), 53)
}

/// A running secondary.
pub struct Edge {
    pub kind: EdgeKind,
    child: Option<Child>,
    pub log: PathBuf,
    pub control: PathBuf,
    spawned: Instant,
}

/// The first transfer: seconds from the start until the serial was answered, and the log
/// marks on the way (name, seconds from the start, line).
pub struct Axfr {
    pub answered_s: f64,
    pub marks: Vec<(&'static str, f64, String)>,
    /// Peak resident memory of the process once it answered.
    pub peak_rss_kib: u64,
}

fn knot_config(dir: &Path, key: &TsigKey, primary: SocketAddr) -> String {
    let d = dir.display();
    let listen = [service(), SocketAddr::new(IpAddr::V4(EDGE_V4), 53)];
    let mut c = KnotServer::server_section_on(dir, &listen, "info");
    c.push_str(&key_and_remote(key, "primary", primary));
    c.push_str(&format!(
        "acl:
  - id: notify
    address: {ip}
    key: {name}
    action: notify
template:
  - id: default
    storage: \"{d}/zones\"
    semantic-checks: off
zone:
  - domain: {origin}
    master: primary
    acl: notify
",
        name = key.name,
        ip = primary.ip(),
        origin = zone::ORIGIN,
    ));
    c
}

impl Edge {
    /// Starts `kind` as a secondary of `primary` with its files in `dir` (which must not
    /// hold an earlier copy).
    pub fn start(
        kind: EdgeKind,
        net: &mut BenchNet,
        key: &TsigKey,
        primary: SocketAddr,
        dir: &Path,
    ) -> Result<Edge> {
        for sub in ["run", "db", "zones", "storage"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        // Kernel-socket clients need XDP on their end to get the server's XDP_TX replies.
        net.client_pass(true)?;
        let log = dir.join("server.log");
        let control = dir.join("control.sock");
        let ns = net.server_ns.clone();
        let mut cmd = match kind {
            EdgeKind::Xdpdns => {
                let bin = crate::xdpdns_bin().display().to_string();
                let mut c = net.cmd(&ns, SERVER_CPU, &bin);
                c.arg("serve")
                    .args(["--iface", &net.server_if, "--xdp-mode", "native"])
                    .args(["--listen", &service().to_string()])
                    .args(["--listen", &format!("{EDGE_V4}:53")])
                    .arg("--control")
                    .arg(&control)
                    .arg("--storage")
                    .arg(dir.join("storage"))
                    .arg("--key")
                    .arg(format!("{}:{}:{}", key.name, key.algorithm, key.secret))
                    .arg("--primary")
                    .arg(format!("{}={primary},key={}", zone::ORIGIN, key.name))
                    // Debug for the secondary's own timing of each step (`timing_lines`).
                    .env(
                        "RUST_LOG",
                        "info,xdpdns::xfr::secondary=debug,xdpdns::daemon::secondary=debug",
                    );
                c
            }
            EdgeKind::Knot => {
                let conf = dir.join("knot.conf");
                std::fs::write(&conf, knot_config(dir, key, primary))?;
                let mut c = net.cmd(&ns, SERVER_CPU, "knotd");
                c.arg("-c").arg(&conf);
                c
            }
        };
        let out = std::fs::File::create(&log)?;
        cmd.stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        let spawned = Instant::now();
        let child = net.spawn(&mut cmd)?;
        Ok(Edge {
            kind,
            child: Some(child),
            log,
            control,
            spawned,
        })
    }

    pub fn pid(&self) -> Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .context("the server has stopped")
    }

    /// xdpdns' own timing of each step of a refresh (its debug log lines: fetched, applied
    /// or built, made durable, published, snapshots written), from `zone` on.
    pub fn timing_lines(&self) -> Vec<String> {
        const MARKS: [&str; 5] = [
            "fetched in",
            "durable in",
            "stored in",
            "publication in",
            "snapshot of",
        ];
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| MARKS.iter().any(|m| l.contains(m)))
            .map(|l| l.find("zone ").map_or(l, |i| &l[i..]).to_owned())
            .collect()
    }

    /// The log's last lines.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn alive(&mut self) -> Result<()> {
        if let Some(status) = self
            .child
            .as_mut()
            .context("the server has stopped")?
            .try_wait()?
        {
            bail!(
                "{} exited ({status}):\n{}",
                self.kind.name(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits (bounded) until the zone's `serial` is answered to clients, from the start.
    pub fn axfr(&mut self, net: &BenchNet, serial: u32) -> Result<Axfr> {
        let marks = match self.kind {
            EdgeKind::Xdpdns => vec![
                Mark::new("ready", &["serving on"]),
                Mark::new(
                    "transferred",
                    &[&format!("updated to serial {serial} by AXFR")],
                ),
                Mark::new("published", &[&format!("serial {serial} served")]),
            ],
            EdgeKind::Knot => vec![
                Mark::new("transfer_started", &["AXFR, incoming", "started"]),
                Mark::new("transferred", &["AXFR, incoming", "finished"]),
                Mark::new("loaded", &["zone updated"]),
            ],
        };
        let mut watch = LogWatch::from_end(&self.log, marks);
        watch.poll(0.0)?;
        let mut probe = Prober::new(&net.client_ns, service())?;
        let answered = loop {
            self.alive()?;
            let t = self.spawned.elapsed();
            watch.poll(t.as_secs_f64())?;
            if probe.serial(zone::ORIGIN)? == Some(serial) {
                break self.spawned.elapsed().as_secs_f64();
            }
            if t > AXFR_MAX {
                bail!(
                    "{} did not answer serial {serial} within {AXFR_MAX:?}:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        };
        let t = || self.spawned.elapsed().as_secs_f64();
        watch.finish(t, Duration::from_secs(5))?;
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        // The XDP attachment re-created the NAPI threads.
        net.pin_napi()?;
        Ok(Axfr {
            answered_s: answered,
            marks: watch.seen,
            peak_rss_kib,
        })
    }

    /// Stops the server and removes any XDP program it left.
    pub fn stop(mut self, net: &BenchNet) -> Result<()> {
        let clean = match self.child.take() {
            Some(mut c) => cleanup::terminate(&mut c, Duration::from_secs(30)),
            None => true,
        };
        net.xdp_off(&net.server_ns, &net.server_if);
        if !clean {
            bail!("{} did not exit cleanly on SIGTERM", self.kind.name());
        }
        Ok(())
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            cleanup::terminate(&mut c, Duration::from_secs(10));
        }
    }
}
