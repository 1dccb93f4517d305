//! The registry's primary for the transfer section: knotd in the upstream namespace, pinned to
//! the generator's core, serving the generated TLD with a TSIG key (hmac-sha256) required for
//! transfers, an IXFR journal of the changes made with `knotc zone-begin/zone-set/zone-commit`,
//! and NOTIFY (signed) to the edge's upstream address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::super::net::{BenchNet, GENERATOR_CPU};
use super::super::{cleanup, zone};
use super::probe::{Prober, POLL};
use crate::knot::KnotServer;
use crate::primary::TsigKey;
use crate::upstream::Upstream;

/// How long knotd may take to load the zone.
const LOAD_MAX: Duration = Duration::from_secs(600);

/// A running knotd primary.
pub struct Primary {
    child: Option<Child>,
    conf: PathBuf,
    pub addr: SocketAddr,
    /// From spawn until it answered the zone's SOA.
    pub load_s: f64,
}

/// knotd's `key` section with `key`, and a `remote` section with `id` at `addr` using it.
pub fn key_and_remote(key: &TsigKey, id: &str, addr: SocketAddr) -> String {
    format!(
        "key:\n  - id: {name}\n    algorithm: {}\n    secret: {}\n\
         remote:\n  - id: {id}\n    address: {}@{}\n    key: {name}\n",
        key.algorithm,
        key.secret,
        addr.ip(),
        addr.port(),
        name = key.name
    )
}

fn config(
    dir: &Path,
    listen: SocketAddr,
    notify: SocketAddr,
    key: &TsigKey,
    zone: &Path,
) -> String {
    let d = dir.display();
    let mut c = KnotServer::server_section_on(dir, &[listen], "info");
    c.push_str(&key_and_remote(key, "edge", notify));
    c.push_str(&format!(
        "acl:
  - id: xfr
    key: {name}
    action: transfer
template:
  - id: default
    storage: \"{d}/zones\"
    semantic-checks: off
    # The journal keeps knotc's changes for IXFR; the zone file is never rewritten.
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    acl: xfr
zone:
  - domain: {origin}
    file: \"{}\"
    notify: edge
",
        zone.display(),
        name = key.name,
        origin = zone::ORIGIN,
    ));
    c
}

impl Primary {
    /// Starts knotd in `up`'s namespace on its address, NOTIFYing `notify`, and waits until it
    /// answers the zone's SOA (asked from the server namespace).
    pub fn start(
        net: &BenchNet,
        up: &Upstream,
        key: &TsigKey,
        zone: &Path,
        notify: SocketAddr,
        dir: &Path,
    ) -> Result<Primary> {
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let addr = up.site(53).listen[0];
        let conf = dir.join("knot.conf");
        std::fs::write(&conf, config(dir, addr, notify, key, zone))?;
        let log = std::fs::File::create(dir.join("knotd.log"))?;
        let mut cmd = net.cmd(&up.ns, GENERATOR_CPU, "knotd");
        cmd.arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let t = Instant::now();
        let mut p = Primary {
            child: Some(net.spawn(&mut cmd)?),
            conf,
            addr,
            load_s: 0.0,
        };
        let mut probe = Prober::new(&net.server_ns, addr)?;
        loop {
            if let Some(status) = p.child.as_mut().expect("child").try_wait()? {
                bail!("knotd (primary) exited ({status}):\n{}", p.log_tail(dir));
            }
            if probe.serial(zone::ORIGIN)?.is_some() {
                break;
            }
            if t.elapsed() > LOAD_MAX {
                bail!(
                    "knotd (primary) not answering after {LOAD_MAX:?}:\n{}",
                    p.log_tail(dir)
                );
            }
            std::thread::sleep(POLL * 10);
        }
        p.load_s = t.elapsed().as_secs_f64();
        Ok(p)
    }

    fn log_tail(&self, dir: &Path) -> String {
        let log = std::fs::read_to_string(dir.join("knotd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// `knotc` with these arguments against this knotd.
    pub fn knotc(&self) -> Command {
        let mut c = Command::new("knotc");
        c.arg("-c").arg(&self.conf).args(["-t", "60"]);
        c
    }

    /// Runs one `knotc` command.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        crate::sh(self.knotc().args(args)).with_context(|| format!("knotc {}", args.join(" ")))
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            cleanup::terminate(&mut c, Duration::from_secs(10));
        }
    }
}
