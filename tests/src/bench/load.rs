//! The start-up figures (`--load-sizes`): for each zone size, `xdpdns serve` (XDP native) on a
//! fresh zone of N delegations — time from spawn to the first userspace answer, to the first
//! answer the XDP path sends, parse and build times from its log, the maps' memory and the
//! peak RSS — and, on the same zone file in the same run, knotd and NSD: time to their first
//! answer and their peak RSS. Every server may use every core (knotd pins its own threads
//! anyway); the probe is a kernel-socket SOA query from the client namespace every 10 ms.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::json::{obj, Json};
use super::micro::{computed_bytes, count_before, maps_memlock, LoadFigures};
use super::net::{in_netns, BenchNet};
use super::servers::{Kind, Server};
use super::{cleanup, zone};
use crate::stats::Counters;
use crate::SERVER_V4;

/// The longest any server may take to answer (every wait here is bounded).
const DEADLINE: Duration = Duration::from_secs(600);

/// A reference server's start on the same zone.
#[derive(Clone, Debug)]
pub struct PeerStart {
    pub kind: Kind,
    /// Spawn to the first NOERROR answer, seconds.
    pub first_answer_s: f64,
    /// VmHWM of the server's processes (the largest), KiB.
    pub peak_rss_kib: u64,
}

impl PeerStart {
    fn json(&self) -> Json {
        obj([
            ("server", self.kind.name().into()),
            ("first_answer_s", self.first_answer_s.into()),
            ("peak_rss_kib", self.peak_rss_kib.into()),
        ])
    }
}

/// One zone size: xdpdns and the reference servers.
pub struct Startup {
    pub xdpdns: LoadFigures,
    pub peers: Vec<std::result::Result<PeerStart, String>>,
}

impl Startup {
    /// The progress/report line.
    pub fn line(&self) -> String {
        let f = &self.xdpdns;
        let mut s = format!(
            "load {} delegations ({} MiB): xdpdns first userspace answer {:.2}s (parsed {}, built {}), \
             first XDP answer {:.2}s, peak RSS {} MiB; {} XDP entries, {} templates, maps {} MiB \
             (answers {} MiB, suffixes {} MiB, template cache {} MiB; keys+values {} MiB)",
            f.delegations,
            f.zone_bytes >> 20,
            f.first_user_s,
            f.parse_log.as_deref().unwrap_or("?"),
            f.build_log.as_deref().unwrap_or("?"),
            f.first_xdp_s,
            f.hwm_kib >> 10,
            f.entries.map_or("?".into(), |e| e.to_string()),
            f.templates.map_or("?".into(), |e| e.to_string()),
            f.maps_memlock >> 20,
            f.answers_memlock >> 20,
            f.suffixes_memlock >> 20,
            f.templates_memlock >> 20,
            f.map_bytes_computed >> 20,
        );
        for p in &self.peers {
            match p {
                Ok(p) => s.push_str(&format!(
                    "; {} {:.2}s, peak RSS {} MiB (xdpdns userspace {:.2}x, XDP {:.2}x, RSS {:.2}x)",
                    p.kind.name(),
                    p.first_answer_s,
                    p.peak_rss_kib >> 10,
                    f.first_user_s / p.first_answer_s,
                    f.first_xdp_s / p.first_answer_s,
                    f.hwm_kib as f64 / p.peak_rss_kib.max(1) as f64
                )),
                Err(e) => s.push_str(&format!("; FAILED: {e}")),
            }
        }
        s
    }

    pub fn json(&self) -> Json {
        let Json::Obj(mut fields) = self.xdpdns.json() else {
            unreachable!("LoadFigures::json is an object")
        };
        let peers = self.peers.iter().map(|p| match p {
            Ok(p) => {
                let f = &self.xdpdns;
                let Json::Obj(mut o) = p.json() else {
                    unreachable!()
                };
                o.push((
                    "xdpdns_user_ratio".into(),
                    (f.first_user_s / p.first_answer_s).into(),
                ));
                o.push((
                    "xdpdns_xdp_ratio".into(),
                    (f.first_xdp_s / p.first_answer_s).into(),
                ));
                o.push((
                    "xdpdns_rss_ratio".into(),
                    (f.hwm_kib as f64 / p.peak_rss_kib.max(1) as f64).into(),
                ));
                Json::Obj(o)
            }
            Err(e) => obj([("error", e.as_str().into())]),
        });
        fields.push(("peers".into(), Json::Arr(peers.collect())));
        Json::Obj(fields)
    }
}

/// The start-up figures for `n` delegations: xdpdns, then knotd and NSD on the same file.
pub fn run(net: &mut BenchNet, dir: &Path, n: usize, signed: bool, seed: u64) -> Result<Startup> {
    let zdir = dir.join(format!("load-{n}"));
    let z = zone::generate(&zdir, n, signed, seed)?;
    let result = (|| -> Result<Startup> {
        let xdpdns = xdpdns(net, &zdir, &z)?;
        let mut peers = Vec::new();
        for kind in [Kind::KnotUdp, Kind::Nsd] {
            peers.push(
                peer(net, kind, &z.path, &zdir.join(kind.name())).map_err(|e| format!("{e:#}")),
            );
        }
        Ok(Startup { xdpdns, peers })
    })();
    let _ = std::fs::remove_dir_all(&zdir);
    result
}

/// Starts a reference server on `zone` and takes its figures.
fn peer(net: &mut BenchNet, kind: Kind, zone: &Path, dir: &Path) -> Result<PeerStart> {
    let server = Server::start_on_all_cores(kind, net, zone, dir)?;
    let peak_rss_kib = server
        .pids()
        .into_iter()
        .map(|p| status_kib(p as u32, "VmHWM:"))
        .max()
        .unwrap_or(0);
    let fig = PeerStart {
        kind,
        first_answer_s: server.startup.as_secs_f64(),
        peak_rss_kib,
    };
    server.stop(net)?;
    if peak_rss_kib == 0 {
        bail!("no VmHWM for {}", kind.name());
    }
    Ok(fig)
}

/// A `/proc/PID/status` field in KiB (0 when absent).
fn status_kib(pid: u32, key: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// One SOA query from the client namespace's socket: true on a NOERROR reply.
fn answers(sock: &UdpSocket, id: u16) -> bool {
    let mut q = crate::client::Q::new(zone::ORIGIN, 6);
    q.id = id;
    let q = q.wire();
    if sock
        .send_to(&q, SocketAddr::new(SERVER_V4.into(), 53))
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_millis(30);
    while Instant::now() < until {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n >= 12 && buf[..2] == q[..2] => return buf[3] & 0x0f == 0,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// The value after `what` up to the next comma or parenthesis in a log line, if any.
fn log_field(text: &str, what: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains(what))?;
    let rest = &line[line.find(what)? + what.len()..];
    let value = rest.split([',', ')', ';']).next()?;
    Some(value.split(" (").next()?.trim().to_owned())
}

/// Starts `xdpdns serve` on zone `z` and times it.
fn xdpdns(net: &mut BenchNet, zdir: &Path, z: &zone::Zone) -> Result<LoadFigures> {
    let mut fig = LoadFigures {
        delegations: z.labels.len(),
        zone_bytes: std::fs::metadata(&z.path)?.len(),
        ..Default::default()
    };
    net.client_pass(true)?;
    let sock = in_netns(&net.client_ns, || -> Result<UdpSocket> {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_read_timeout(Some(Duration::from_millis(10)))?;
        Ok(s)
    })??;
    let log = zdir.join("server.log");
    let control = zdir.join("control.sock");
    let out = std::fs::File::create(&log)?;
    let bin = crate::xdpdns_bin().display().to_string();
    let mut cmd = net.cmd_on(&net.server_ns, None, &bin);
    cmd.arg("serve")
        .arg("--zone")
        .arg(&z.path)
        .args([
            "--iface",
            &net.server_if,
            "--listen",
            "198.18.0.1:53",
            "--xdp-mode",
            "native",
        ])
        .arg("--control")
        .arg(&control)
        .env("RUST_LOG", "info")
        .stdout(out.try_clone()?)
        .stderr(out);
    let t = Instant::now();
    let mut child = net.spawn(&mut cmd)?;
    let stats = || -> Option<Counters> {
        let out = std::process::Command::new(crate::xdpdns_bin())
            .arg("stats")
            .arg("--control")
            .arg(&control)
            .output()
            .ok()?;
        Counters::parse(&String::from_utf8_lossy(&out.stdout)).ok()
    };
    let result = (|| -> Result<()> {
        let deadline = t + DEADLINE;
        let mut id = 0u16;
        loop {
            id = id.wrapping_add(1);
            let up = answers(&sock, id);
            let now = t.elapsed().as_secs_f64();
            if up && fig.first_user_s == 0.0 {
                fig.first_user_s = now;
            }
            if up && fig.first_user_s > 0.0 {
                // The answer just received came from the driver when xdp.answered moved.
                if stats().is_some_and(|s| s.get("xdp.answered").is_ok_and(|v| v > 0)) {
                    fig.first_xdp_s = now;
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("xdpdns serve exited ({status}): {text}");
            }
            if Instant::now() > deadline {
                bail!("xdpdns serve: no XDP answer after {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        fig.parse_s = fig.first_user_s;
        fig.ready_s = fig.first_xdp_s;
        fig.parse_log = log_field(&text, "parsed in");
        fig.build_log = log_field(&text, "built in");
        fig.compile_log = text
            .lines()
            .find(|l| l.contains("XDP entries"))
            .map(|l| l.split("] ").last().unwrap_or(l).to_owned())
            .unwrap_or_default();
        let status = crate::sh(
            std::process::Command::new(crate::xdpdns_bin())
                .arg("status")
                .arg("--control")
                .arg(&control),
        )?;
        // "xdp attached IF (N entries, T templates, cache C)"
        let xdp_line = status
            .lines()
            .find(|l| l.starts_with("xdp attached"))
            .unwrap_or("");
        let count = |what: &str| count_before(xdp_line, what);
        fig.entries = count(" entries");
        fig.templates = count(" templates");
        fig.template_cache = xdp_line
            .split("cache ")
            .nth(1)
            .and_then(|r| r.trim_end_matches(')').parse().ok());
        fig.map_bytes_computed = computed_bytes(
            &fig.compile_log,
            fig.entries.unwrap_or(0),
            fig.template_cache.unwrap_or(0),
        );
        let pid = child.id();
        let m = maps_memlock(pid);
        fig.answers_memlock = m.answers;
        fig.suffixes_memlock = m.suffixes;
        fig.templates_memlock = m.templates;
        fig.maps_memlock = m.all;
        fig.rss_kib = status_kib(pid, "VmRSS:");
        fig.hwm_kib = status_kib(pid, "VmHWM:");
        Ok(())
    })();
    cleanup::terminate(&mut child, Duration::from_secs(20));
    net.xdp_off(&net.server_ns, &net.server_if);
    result.map(|_| fig).context("xdpdns serve start-up figures")
}
