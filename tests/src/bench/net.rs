//! The benchmark's network: a server namespace and a client namespace joined by one veth with
//! one RX and one TX queue on each end (so kxdpgun and Knot's XDP mode use one thread each),
//! static neighbours, and each side's packet work on its own core: threaded NAPI pinned to the
//! core for XDP (programs run in veth's NAPI poll) and RPS for the plain stack path.
//!
//! Why not threaded NAPI for everything: measured here, a userspace socket server woken from
//! the NAPI thread (rather than from softirq) answered with a median latency of ~2 ms instead of
//! ~0.1 ms, an artifact of the rig; RPS keeps such servers' receive work on their core
//! without it.
//!
//! Unlike `TestNet` it attaches nothing on the client side by itself: kxdpgun brings its own
//! XDP program, and `client_pass()` attaches `xdp_pass` when kernel-socket clients need the
//! server's `XDP_TX` replies. Removed on drop, or by `cleanup::emergency()` on Ctrl-C.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

use super::bpf;
use super::cleanup;
use crate::{ip, sh, veth_pair, VethEnd, SERVER_V4};

const SERVER_MAC: &str = "02:00:00:00:b0:01";
const CLIENT_MAC: &str = "02:00:00:00:b0:02";

/// The cores: the server (and its NAPI thread) on one, the generator on the other.
pub const SERVER_CPU: usize = 1;
pub const GENERATOR_CPU: usize = 0;

/// Runs `f` on a thread that has joined network namespace `ns` (sockets, interface indexes
/// and XDP attachments made there belong to it).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<T> {
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).context("setns")?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow!("namespace thread panicked"))?
}

pub struct BenchNet {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    /// Nice value of everything the benchmark runs (server, NAPI threads, generator).
    pub nice: i32,
    client_pass: Option<(bpf::Prog, bpf::Link)>,
}

impl BenchNet {
    pub fn new(nice: i32) -> Result<BenchNet> {
        let tag = std::process::id() % 1000;
        // Short interface names: NAPI threads are named "napi/<if>-<id>" in 15 characters.
        let net = BenchNet {
            server_ns: format!("xdpbench-s{tag}"),
            client_ns: format!("xdpbench-c{tag}"),
            server_if: format!("bs{tag}"),
            client_if: format!("bc{tag}"),
            nice,
            client_pass: None,
        };
        for ns in [&net.server_ns, &net.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns])?;
            cleanup::add_netns(ns);
        }
        net.setup().context("setting up the benchmark namespaces")?;
        Ok(net)
    }

    fn setup(&self) -> Result<()> {
        let (s, c) = (&self.server_ns, &self.client_ns);
        veth_pair(
            &VethEnd {
                ns: s,
                ifname: &self.server_if,
                mac: SERVER_MAC,
            },
            &VethEnd {
                ns: c,
                ifname: &self.client_if,
                mac: CLIENT_MAC,
            },
            Some(1),
        )?;
        for (ns, ifname) in [(s, &self.server_if), (c, &self.client_if)] {
            // GRO gives veth a NAPI context, made threaded so that it can be pinned. Packets
            // meet it when the receiving end runs XDP (veth then turns TSO off on the sender);
            // plain skbs are received by the sender's `netif_rx`, and RPS steers their stack
            // processing to the receiving side's core.
            sh(Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", ifname, "gro", "on"]))?;
            let cpu = if ns == s { SERVER_CPU } else { GENERATOR_CPU };
            for (file, value) in [
                ("threaded", "1".to_owned()),
                ("queues/rx-0/rps_cpus", format!("{:x}", 1u64 << cpu)),
            ] {
                // `ip netns exec` remounts /sys for the namespace, so this is the veth's own file.
                sh(Command::new("ip").args([
                    "netns",
                    "exec",
                    ns,
                    "sh",
                    "-c",
                    &format!("echo {value} > /sys/class/net/{ifname}/{file}"),
                ]))
                .with_context(|| format!("setting {file} of {ifname}"))?;
            }
        }
        self.pin_napi()?;
        Ok(())
    }

    /// A command that runs in `ns`, pinned to `cpu`, at the benchmark's nice value (nsenter
    /// keeps /sys/fs/bpf visible), in a session of its own: with autogroup scheduling, nice
    /// values only order tasks within one session, so `spawn` gives the new session's group
    /// the nice value too.
    pub fn cmd(&self, ns: &str, cpu: usize, program: &str) -> Command {
        self.cmd_on(ns, Some(cpu), program)
    }

    /// As `cmd`, pinned to `cpu` or (`None`) free to run on every core.
    pub fn cmd_on(&self, ns: &str, cpu: Option<usize>, program: &str) -> Command {
        let mut c = Command::new("nice");
        c.args(["-n", &self.nice.to_string()]);
        if let Some(cpu) = cpu {
            c.args(["taskset", "-c", &cpu.to_string()]);
        }
        c.arg("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .arg(program);
        // SAFETY: setsid(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        c
    }

    /// Spawns a command made by `cmd` (registered for cleanup) and sets its autogroup's nice.
    pub fn spawn(&self, cmd: &mut Command) -> Result<std::process::Child> {
        let child = cleanup::spawn(cmd)?;
        let _ = std::fs::write(
            format!("/proc/{}/autogroup", child.id()),
            self.nice.to_string(),
        );
        Ok(child)
    }

    /// Pins the NAPI threads of each veth end to its side's core with SCHED_FIFO (the threads
    /// are created and re-created by the kernel, so this is called again after every attach).
    ///
    /// SCHED_FIFO, like softirq work on a real NIC, runs before any task. Measured here on the
    /// generator side: without it kxdpgun's own core dropped replies from the 256-entry veth
    /// ring at a few ten thousand queries/s. On the server side, a process woken from the NAPI
    /// thread (Knot's XDP workers) waited ~2 ms (median) with the thread at nice -20 and
    /// ~0.1 ms with SCHED_FIFO. Only XDP work runs in these threads (plain skbs take RPS), so
    /// they cannot starve a userspace server of its receive path.
    pub fn pin_napi(&self) -> Result<()> {
        for (ifname, cpu) in [
            (&self.server_if, SERVER_CPU),
            (&self.client_if, GENERATOR_CPU),
        ] {
            for pid in threads_named(&format!("napi/{ifname}-"))? {
                let _ = set_affinity(pid, cpu);
                realtime(pid);
            }
        }
        Ok(())
    }

    /// NAPI threads of the server's veth end.
    pub fn server_napi(&self) -> Result<Vec<i32>> {
        threads_named(&format!("napi/{}-", self.server_if))
    }

    /// Removes any XDP program from an interface (knotd and kxdpgun leave theirs attached).
    pub fn xdp_off(&self, ns: &str, ifname: &str) {
        let _ = Command::new("ip")
            .args(["-n", ns, "link", "set", "dev", ifname, "xdp", "off"])
            .output();
    }

    /// Attaches `xdp_pass` on the client end (kernel-socket clients need it to receive the
    /// server's XDP_TX replies on veth), or detaches it.
    pub fn client_pass(&mut self, on: bool) -> Result<()> {
        if on && self.client_pass.is_none() {
            self.xdp_off(&self.client_ns, &self.client_if);
            self.client_pass = Some(bpf::attach_in_ns(
                &self.client_ns,
                &self.client_if,
                "xdp_pass",
            )?);
            self.pin_napi()?;
        } else if !on {
            self.client_pass = None;
            self.xdp_off(&self.client_ns, &self.client_if);
        }
        Ok(())
    }

    /// Drop and error counters of both veth ends (`ethtool -S` and the interface's
    /// rx/tx dropped), as "side.counter" → value.
    pub fn drop_counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (side, ns, ifname) in [
            ("server", &self.server_ns, &self.server_if),
            ("client", &self.client_ns, &self.client_if),
        ] {
            let eth = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-S", ifname])
                .output();
            let text = eth
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for l in text.lines() {
                if let Some((k, v)) = l.trim().split_once(": ") {
                    if k.contains("drop") || k.contains("err") {
                        if let Ok(v) = v.trim().parse() {
                            out.push((format!("{side}.{k}"), v));
                        }
                    }
                }
            }
            let link = Command::new("ip")
                .args(["-n", ns, "-s", "link", "show", "dev", ifname])
                .output();
            let text = link
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (dir, head) in [("rx", "RX:"), ("tx", "TX:")] {
                // "RX:  bytes packets errors dropped ..." then the values on the next line.
                if let Some(i) = lines.iter().position(|l| l.starts_with(head)) {
                    let names: Vec<&str> = lines[i].split_whitespace().skip(1).collect();
                    let values: Vec<&str> = lines
                        .get(i + 1)
                        .map_or(vec![], |l| l.split_whitespace().collect());
                    for (n, v) in names.iter().zip(values) {
                        if matches!(*n, "errors" | "dropped") {
                            out.push((format!("{side}.{dir}_{n}"), v.parse().unwrap_or(0)));
                        }
                    }
                }
            }
        }
        out
    }

    /// Waits until a UDP query for `qname` SOA gets a NOERROR reply from the server.
    pub fn wait_answering(&self, qname: &str, timeout: Duration) -> Result<()> {
        let q = crate::client::Q::new(qname, 6).wire();
        let ns = self.client_ns.clone();
        let deadline = Instant::now() + timeout;
        loop {
            let q = q.clone();
            let ok = in_netns(&ns, move || -> Result<bool> {
                let s = UdpSocket::bind("0.0.0.0:0")?;
                s.set_read_timeout(Some(Duration::from_millis(300)))?;
                s.send_to(&q, SocketAddr::new(SERVER_V4.into(), 53))?;
                let mut buf = [0u8; 4096];
                // Any reply with RCODE NOERROR: the zone is loaded.
                Ok(matches!(s.recv_from(&mut buf),
                    Ok((n, _)) if n >= 12 && buf[..2] == q[..2] && buf[3] & 0x0f == 0))
            })??;
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no answer from {SERVER_V4} within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for BenchNet {
    fn drop(&mut self) {
        self.client_pass = None;
        for ns in [self.server_ns.clone(), self.client_ns.clone()] {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            cleanup::forget_netns(&ns);
        }
    }
}

/// Thread ids (all processes) whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(e) = e else { continue };
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// Pins one thread to one CPU.
pub fn set_affinity(tid: i32, cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid), &set)
        .with_context(|| format!("pinning thread {tid} to CPU {cpu}"))
}

/// Gives one thread SCHED_FIFO priority 10.
pub fn realtime(tid: i32) {
    let p = libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler(2) on a thread id with a valid parameter.
    unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &p) };
}

/// Sets the nice value of one thread.
pub fn renice(tid: i32, nice: i32) {
    // SAFETY: setpriority(2) on a thread id; failure is harmless.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
}

/// Pins every thread of `pid` and of its descendants to `cpu` at nice value `nice` (knotd
/// re-pins its own workers at start, so this runs after the server is up).
pub fn pin_tree(pid: u32, cpu: usize, nice: i32) -> Result<()> {
    for p in process_tree(pid) {
        for t in tasks(p) {
            let _ = set_affinity(t, cpu);
            renice(t, nice);
        }
    }
    Ok(())
}

/// `pid` and all its descendants.
pub fn process_tree(pid: u32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
                if let Some(f) = stat_fields(&stat) {
                    if let Some(ppid) = f.get(1).and_then(|v| v.parse().ok()) {
                        parents.push((p, ppid));
                    }
                }
            }
        }
    }
    let mut out = vec![pid as i32];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// Thread ids of a process.
pub fn tasks(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Fields of /proc/*/stat after the command name (index 0 = state, 11 = utime, 12 = stime).
pub fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

/// CPU time (user + system, clock ticks) of a process (all its threads) or kernel thread; 0
/// when it is gone.
pub fn ticks(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f = stat_fields(&s)?;
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}
