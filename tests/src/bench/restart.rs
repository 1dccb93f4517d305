//! The restart gap (`--restart-only`): `xdpdns serve --xdp-pin` with a zone of
//! `--delegations` delegations is killed with SIGKILL under two bounded query loads — the apex
//! SOA over UDP, which XDP answers, and over TCP, which only userspace answers — and started
//! again, twice: with the zone unchanged (the pinned program and maps are adopted and kept)
//! and with its serial moved while the daemon was down (adopted and republished; the pinned
//! program passes everything until then). Figures per restart: the longest time without an
//! answer on each path (`Tally::gap`), the time from the new start to its XDP path serving
//! (its `status` reporting how the XDP start went) and to userspace answering, and the log's
//! account of the adoption.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::json::{obj, Json};
use super::{cleanup, zone, Options};
use crate::load::{Expect, Load, Tally};
use crate::{sh, xdpdns_bin, TestNet, SERVER_V4};

/// Query rate of each load.
const RATE: u32 = 200;
/// Longest a start may take.
const START_LIMIT: Duration = Duration::from_secs(300);

struct Daemon {
    child: Option<Child>,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl Daemon {
    fn spawn(&mut self, net: &TestNet) -> Result<Instant> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = net.in_ns_cmd(&net.server_ns, &xdpdns_bin());
        cmd.args(&self.args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .env("RUST_LOG", "info");
        let t = Instant::now();
        self.child = Some(cmd.spawn().context("starting xdpdns serve")?);
        Ok(t)
    }

    /// Waits until `status` shows the XDP start done; returns it.
    fn wait_xdp(&mut self, net: &TestNet) -> Result<String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("xdpdns serve exited ({s}): see {}", self.log.display());
            }
            if let Ok(st) = net.ctl("status") {
                if st.contains("xdp start:") {
                    return Ok(st);
                }
            }
            if Instant::now() > deadline {
                bail!("xdpdns serve did not start: see {}", self.log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = sh(std::process::Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string()));
            let _ = crate::terminate_within(&mut c, Duration::from_secs(20));
        }
    }
}

/// One restart's figures.
struct Restart {
    what: &'static str,
    xdp: Tally,
    userspace: Tally,
    /// From the new start to its XDP start done, and to userspace's first answer.
    xdp_ready: Duration,
    userspace_ready: Option<Duration>,
    how: String,
}

impl Restart {
    fn json(&self) -> Json {
        let tally = |t: &Tally| {
            obj([
                ("sent", t.sent.into()),
                ("answered", t.answered.into()),
                ("unanswered", t.unanswered.into()),
                ("wrong", t.wrong.into()),
                ("longest_gap_ms", (t.gap.as_secs_f64() * 1e3).into()),
                (
                    "serials",
                    Json::Arr(t.serials.iter().map(|s| (*s).into()).collect()),
                ),
            ])
        };
        obj([
            ("restart", self.what.into()),
            ("xdp", tally(&self.xdp)),
            ("userspace", tally(&self.userspace)),
            ("xdp_ready_s", self.xdp_ready.as_secs_f64().into()),
            (
                "userspace_ready_s",
                self.userspace_ready
                    .map_or(Json::Null, |d| d.as_secs_f64().into()),
            ),
            ("xdp_start", self.how.clone().into()),
        ])
    }

    fn line(&self) -> String {
        format!(
            "| {} | {:.0} ms ({} of {} answered) | {:.0} ms ({} of {} answered) | {:.2} s | {} |",
            self.what,
            self.xdp.gap.as_secs_f64() * 1e3,
            self.xdp.answered,
            self.xdp.sent,
            self.userspace.gap.as_secs_f64() * 1e3,
            self.userspace.answered,
            self.userspace.sent,
            self.xdp_ready.as_secs_f64(),
            self.userspace_ready
                .map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        )
    }
}

fn loads(tcp: bool) -> Load {
    Load {
        targets: vec![SocketAddr::new(IpAddr::V4(SERVER_V4), 53)],
        queries: vec![Expect::new(zone::ORIGIN, 6, 0)],
        rate: RATE,
        duration: START_LIMIT * 2,
        timeout: Duration::from_millis(250),
        tcp_every: usize::from(tcp),
    }
}

/// Kills the daemon under the loads, runs `while_down`, starts it again and measures.
fn restart(
    net: &TestNet,
    d: &mut Daemon,
    what: &'static str,
    while_down: impl FnOnce() -> Result<()>,
) -> Result<Restart> {
    let stop = Arc::new(AtomicBool::new(false));
    let xdp = loads(false).spawn(&net.client_ns, stop.clone());
    let userspace = loads(true).spawn(&net.client_ns, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    d.kill()?;
    while_down()?;
    std::thread::sleep(Duration::from_millis(500));
    let t = d.spawn(net)?;
    // Userspace's first TCP answer, watched from its own thread: the control socket does not
    // answer before the XDP start is done.
    let up = Arc::new(AtomicBool::new(false));
    let (up2, stop2) = (up.clone(), stop.clone());
    let userspace_watch = crate::spawn_in_netns(&net.client_ns, move || {
        while !stop2.load(Ordering::Relaxed) && t.elapsed() < START_LIMIT {
            if probe_tcp() {
                up2.store(true, Ordering::Relaxed);
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    });
    let status = loop {
        match net.ctl("status") {
            Ok(st) if st.contains("xdp start:") => break st,
            _ if t.elapsed() > START_LIMIT => bail!("no XDP start within {START_LIMIT:?}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let xdp_ready = t.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let userspace_ready = userspace_watch
        .join()
        .map_err(|_| anyhow::anyhow!("probe thread panicked"))??;
    let _ = up;
    let how = status
        .lines()
        .find_map(|l| l.strip_prefix("xdp start: "))
        .unwrap_or_default()
        .to_owned();
    let join = |h: std::thread::JoinHandle<Result<Result<Tally>>>| -> Result<Tally> {
        h.join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??
    };
    Ok(Restart {
        what,
        xdp: join(xdp)?,
        userspace: join(userspace)?,
        xdp_ready,
        userspace_ready,
        how,
    })
}

/// Whether userspace answers the apex SOA over TCP now (from the client namespace).
fn probe_tcp() -> bool {
    let msg = crate::client::Q::new(zone::ORIGIN, 6).wire();
    crate::client::tcp(SocketAddr::new(IpAddr::V4(SERVER_V4), 53), &[msg]).is_ok()
}

/// `--restart-only`.
pub fn only(o: &Options) -> Result<Json> {
    let work = std::env::temp_dir().join(format!("xdpdns-bench-restart-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    cleanup::add_dir(work.clone());
    let result = run(o, &work);
    let _ = std::fs::remove_dir_all(&work);
    cleanup::forget_dir(&work);
    result
}

fn run(o: &Options, work: &std::path::Path) -> Result<Json> {
    println!(
        "restart gap: {} delegations, kill -9 under load",
        o.delegations
    );
    let z = zone::generate(&work.join("zone"), o.delegations, false, o.seed)?;
    let net = TestNet::new()?;
    let name = format!("bench-{}", net.server_if);
    let storage = work.join("storage");
    let mut d = Daemon {
        child: None,
        args: [
            "serve",
            "--iface",
            &net.server_if,
            "--control",
            net.control().to_str().context("path")?,
            "--zone",
            &format!("{}={}", zone::ORIGIN, z.path.display()),
            "--listen",
            "[::]:53",
            "--xdp-pin",
            &name,
            "--storage",
            storage.to_str().context("path")?,
        ]
        .map(String::from)
        .to_vec(),
        log: work.join("server.log"),
    };
    let t = d.spawn(&net)?;
    d.wait_xdp(&net)?;
    println!(
        "first start: XDP serving after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let same = restart(&net, &mut d, "unchanged zone", || Ok(()))?;
    let path = z.path.clone();
    let changed = restart(&net, &mut d, "serial changed while down", move || {
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, text.replacen(" 2026112701 ", " 2026112702 ", 1))?;
        Ok(())
    })?;
    let _ = sh(std::process::Command::new("kill")
        .arg("-TERM")
        .arg(d.child.as_ref().map_or(0, |c| c.id()).to_string()));
    if let Some(mut c) = d.child.take() {
        crate::terminate_within(&mut c, Duration::from_secs(30))?;
    }
    println!(
        "| restart | XDP path (UDP SOA) longest gap | userspace (TCP SOA) longest gap | XDP start done | userspace answering |"
    );
    println!("|---|---|---|---|---|");
    for r in [&same, &changed] {
        println!("{}", r.line());
        println!("  xdp start: {}", r.how);
        println!(
            "  serials seen: XDP {:?}, userspace {:?}",
            r.xdp.serials, r.userspace.serials
        );
    }
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    for l in log.lines().filter(|l| {
        [
            "XDP maps adopted",
            "XDP generation",
            "passes everything",
            "serving on",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        println!("  log: {l}");
    }
    let j = Json::Arr(vec![same.json(), changed.json()]);
    std::fs::create_dir_all(&o.out_dir)?;
    std::fs::write(o.out_dir.join("restart-server.log"), &log)?;
    std::fs::write(o.out_dir.join("restart.json"), j.pretty())?;
    Ok(j)
}
