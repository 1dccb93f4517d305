//! `--perf`: where a server's CPU per answer goes over veth. One kxdpgun run at the common CPU
//! rate under `perf record -e cpu-clock -g -C SERVER_CPU` (the server's core only), every
//! sample put in one class by its task and call chain, in nanoseconds per answer:
//!
//! - `program`: a `bpf_prog_*` frame anywhere in the chain (the XDP programs), split into the
//!   programs' own instructions (leaf in the program) and the helpers and kernel code they
//!   call (leaf elsewhere: map lookups, `adjust_tail`, `csum_diff`, ...);
//! - `skb`: the server veth's NAPI thread on the skbs kxdpgun sends (AF_XDP in copy mode over
//!   veth): each copied into a page before XDP and freed after, completing kxdpgun's TX
//!   descriptor; the generator's cost on the server core, which a NIC would not have;
//! - `napi`: the rest of the NAPI thread (veth receive, XDP_TX bulk and flush to the peer,
//!   waking the peer's NAPI thread, sleeping and waking);
//! - `server`: the server's own processes (userspace, syscalls, AF_XDP rings for Knot);
//! - `ksoftirqd`: softirq work deferred to the core's ksoftirqd;
//! - `irq`: interrupts, IPIs and timers taken while the core was idle;
//! - `other`: other tasks on the core (kworkers, other engineers' builds): not the server's and
//!   not in its CPU figure, but they compete with it for the core;
//! - `idle`.
//!
//! The first six are what `server_cpu_s` counts. The top leaf symbols are listed with their
//! class so that the driver's own cost can be told from the program's.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::cleanup;
use super::json::{obj, Json};
use super::measure::{self, Run};
use super::net::{self, BenchNet, SERVER_CPU};
use super::servers::Server;

/// Sampling frequency (Hz) of `perf record`.
const FREQ: u64 = 4999;
/// Leaf symbols listed.
const TOP: usize = 14;

/// The sample classes, in report order.
pub const CLASSES: [&str; 9] = [
    "program",
    "helpers",
    "napi",
    "skb",
    "server",
    "ksoftirqd",
    "irq",
    "other",
    "idle",
];
/// The classes the server's CPU figure counts: the first `COUNTED` of `CLASSES`.
const COUNTED: usize = 6;

/// A profile of one run.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub run: Run,
    pub samples: u64,
    /// Samples per class (indexes of `CLASSES`).
    pub by_class: [u64; 9],
    /// (class, leaf symbol, samples) of the counted classes, most samples first.
    pub top: Vec<(&'static str, String, u64)>,
    /// (command, samples) of the other tasks on the core, most samples first.
    pub other: Vec<(String, u64)>,
}

impl Profile {
    /// Nanoseconds of the server core per answer for `samples` samples.
    fn ns(&self, samples: u64) -> f64 {
        if self.run.replies == 0 {
            return 0.0;
        }
        samples as f64 / FREQ as f64 * 1e9 / self.run.replies as f64
    }

    /// ns per answer of one class.
    pub fn class_ns(&self, class: &str) -> f64 {
        let i = CLASSES.iter().position(|c| *c == class).unwrap_or(0);
        self.ns(self.by_class[i])
    }

    /// ns per answer of what the server's CPU figure counts (program, helpers, napi, skb,
    /// server, ksoftirqd).
    pub fn counted_ns(&self) -> f64 {
        self.ns(self.by_class[..COUNTED].iter().sum())
    }

    /// As `counted_ns`, without the generator's skbs (what a NIC would not cost).
    pub fn counted_without_skb_ns(&self) -> f64 {
        self.counted_ns() - self.class_ns("skb")
    }

    pub fn text(&self, who: &str) -> String {
        let mut s = format!(
            "{who}: perf on the server core at {:.0} q/s ({} answers, {} samples): \
             ns per answer: counted {:.0} =",
            self.run.sent_pps,
            self.run.replies,
            self.samples,
            self.counted_ns()
        );
        for (i, c) in CLASSES.iter().enumerate() {
            if *c == "irq" {
                s.push_str(&format!(
                    " (without skb {:.0}); not counted:",
                    self.counted_without_skb_ns()
                ));
            }
            if *c != "idle" {
                s.push_str(&format!(" {c} {:.0}", self.ns(self.by_class[i])));
            }
        }
        let idle = self.by_class[8] as f64 / self.samples.max(1) as f64 * 100.0;
        let ticks = self.run.server_cpu_s * 1e9 / self.run.replies.max(1) as f64;
        s.push_str(&format!(
            ", idle {idle:.0}%; the server's CPU time in this run: {ticks:.0} ns per answer\n"
        ));
        for (class, sym, n) in &self.top {
            s.push_str(&format!("    {:>6.0} ns  {class:<9} {sym}\n", self.ns(*n)));
        }
        if !self.other.is_empty() {
            let other: Vec<String> = self
                .other
                .iter()
                .map(|(comm, n)| format!("{comm} {:.0}", self.ns(*n)))
                .collect();
            s.push_str(&format!("    other tasks, ns: {}\n", other.join(", ")));
        }
        s
    }

    pub fn json(&self) -> Json {
        let classes = CLASSES
            .iter()
            .zip(self.by_class)
            .map(|(c, n)| (c.to_string(), self.ns(n).into()))
            .collect();
        let top = self
            .top
            .iter()
            .map(|(c, sym, n)| {
                obj([
                    ("class", (*c).into()),
                    ("symbol", sym.as_str().into()),
                    ("ns_per_answer", self.ns(*n).into()),
                ])
            })
            .collect();
        obj([
            ("rate_qps", self.run.requested.into()),
            ("replies", self.run.replies.into()),
            ("samples", self.samples.into()),
            ("counted_ns_per_answer", self.counted_ns().into()),
            (
                "counted_without_skb_ns_per_answer",
                self.counted_without_skb_ns().into(),
            ),
            (
                "cpu_ns_per_answer",
                (self.run.server_cpu_s * 1e9 / self.run.replies.max(1) as f64).into(),
            ),
            ("ns_per_answer", Json::Obj(classes)),
            ("top", Json::Arr(top)),
        ])
    }
}

/// One kxdpgun run at `rate` with the server core sampled; `dir` holds perf's files. A run
/// whose samples perf cannot read back is made once more: `perf script` fails on the BPF
/// program events of programs that other work on the machine loaded and unloaded meanwhile.
pub fn run(
    net: &BenchNet,
    server: &Server,
    qfile: &Path,
    rate: u64,
    secs: u32,
    dir: &Path,
) -> Result<Profile> {
    let data = dir.join(format!("perf-{}.data", server.kind.name()));
    let mut failed = None;
    let (run, script) = loop {
        let run = record(&data, || measure::kxdpgun(net, server, qfile, rate, secs))?;
        let script = Command::new("perf")
            .args(["script", "-F", "comm,tid,ip,sym", "-i"])
            .arg(&data)
            .output()
            .context("perf script")?;
        let _ = std::fs::remove_file(&data);
        if script.status.success() {
            break (run, script);
        }
        let error = String::from_utf8_lossy(&script.stderr).trim().to_owned();
        if let Some(first) = failed {
            bail!("perf script, twice: {first}; {error}");
        }
        failed = Some(error);
    };
    let tasks = Tasks {
        napi: net.server_napi().unwrap_or_default(),
        server: server.pids().into_iter().flat_map(net::tasks).collect(),
        ksoftirqd: net::threads_named(&format!("ksoftirqd/{SERVER_CPU}")).unwrap_or_default(),
    };
    let mut p = classify(&String::from_utf8_lossy(&script.stdout), &tasks);
    if p.samples == 0 {
        bail!("perf recorded no samples on CPU {SERVER_CPU}");
    }
    p.run = run;
    Ok(p)
}

/// Runs `load` under `perf record` on the server core, samples written to `data`.
fn record(data: &Path, load: impl FnOnce() -> Result<Run>) -> Result<Run> {
    let mut perf = Command::new("perf");
    perf.args(["record", "-q", "-g", "-e", "cpu-clock", "-F"])
        .arg(FREQ.to_string())
        .args(["-C", &SERVER_CPU.to_string(), "-o"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cleanup::spawn(&mut perf).context("perf record")?;
    std::thread::sleep(Duration::from_millis(300));
    let result = load();
    // perf writes its file on SIGINT.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let waited = (0..250).find_map(|_| match child.try_wait() {
        Ok(Some(s)) => Some(s),
        _ => {
            std::thread::sleep(Duration::from_millis(20));
            None
        }
    });
    if waited.is_none() {
        cleanup::terminate(&mut child, Duration::from_secs(1));
    }
    cleanup::forget_pid(child.id());
    result
}

/// Thread ids by owner.
pub struct Tasks {
    pub napi: Vec<i32>,
    pub server: Vec<i32>,
    pub ksoftirqd: Vec<i32>,
}

/// A JITed program's symbol: `bpf_prog_<16 hex digits of its tag>_<name>` (not the kernel's
/// `bpf_prog_load` and the like).
fn is_program(frame: &str) -> bool {
    frame.strip_prefix("bpf_prog_").is_some_and(|rest| {
        rest.len() > 17
            && rest.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit)
            && rest.as_bytes()[16] == b'_'
    })
}

/// A frame of veth's work on the skbs kxdpgun's AF_XDP copy-mode TX hands it: copied into a
/// page-pool page before XDP (`skb_pp_cow_data`), then freed, which completes kxdpgun's TX
/// descriptor (`xsk_destruct_skb`, `sock_wfree`, `consume_skb`). A NIC would DMA the frame
/// into a page instead.
fn generator_skb(frame: &str) -> bool {
    [
        "skb_pp_cow_data",
        "xsk_destruct_skb",
        "sock_wfree",
        "consume_skb",
    ]
    .iter()
    .any(|f| {
        frame
            .strip_prefix(f)
            .is_some_and(|r| r.is_empty() || r.starts_with('+'))
    })
}

/// Kernel functions a halted core samples in.
fn idle_symbol(sym: &str) -> bool {
    [
        "pv_native_safe_halt",
        "native_safe_halt",
        "default_idle",
        "cpu_idle_poll",
        "acpi_idle",
        "intel_idle",
        "mwait_idle",
        "poll_idle",
        "do_idle",
        "cpuidle_enter",
    ]
    .iter()
    .any(|s| sym.starts_with(s))
}

/// Classifies the samples of `perf script -F comm,tid,ip,sym` output (with call chains).
pub fn classify(script: &str, tasks: &Tasks) -> Profile {
    let mut p = Profile::default();
    let mut top: HashMap<(&'static str, String), u64> = HashMap::new();
    let mut other: HashMap<String, u64> = HashMap::new();
    for sample in script.split("\n\n") {
        let mut lines = sample.lines().filter(|l| !l.trim().is_empty());
        let Some(head) = lines.next() else { continue };
        let mut words = head.split_whitespace().rev();
        let Some(tid) = words.next().and_then(|t| t.parse::<i32>().ok()) else {
            continue;
        };
        let comm: Vec<&str> = words.collect();
        let comm = comm.into_iter().rev().collect::<Vec<_>>().join(" ");
        // Frames, leaf first: "ADDRESS SYMBOL".
        let frames: Vec<&str> = lines
            .map(|l| {
                let l = l.trim();
                l.split_once(' ').map_or("[unknown]", |(_, s)| s.trim())
            })
            .collect();
        let leaf = frames.first().copied().unwrap_or("[unknown]");
        let leaf = leaf.split("+0x").next().unwrap_or(leaf);
        let in_prog = frames.iter().position(|f| is_program(f));
        let idle_task = tid == 0 || comm.starts_with("swapper");
        let task_class = if tasks.napi.contains(&tid) && frames.iter().any(|f| generator_skb(f)) {
            "skb"
        } else if tasks.napi.contains(&tid) {
            "napi"
        } else if tasks.server.contains(&tid) {
            "server"
        } else if tasks.ksoftirqd.contains(&tid) {
            "ksoftirqd"
        } else if idle_task && idle_symbol(leaf) {
            "idle"
        } else if idle_task {
            "irq"
        } else {
            // Other tasks' programs (TEST_RUN of other work on the machine) are theirs.
            "other"
        };
        let class = match in_prog {
            Some(at) if !matches!(task_class, "other" | "idle") => {
                if at == 0 {
                    "program"
                } else {
                    "helpers"
                }
            }
            _ => task_class,
        };
        let i = CLASSES.iter().position(|c| *c == class).unwrap_or(7);
        p.by_class[i] += 1;
        p.samples += 1;
        match class {
            "idle" => {}
            "other" => {
                // Thread names of builds differ per thread ("opt cgu.05"): their first word.
                let name = comm.split([' ', ':']).next().unwrap_or("?").to_owned();
                *other.entry(name).or_default() += 1;
            }
            _ => {
                // The programs' own samples under one name (their tags differ per load).
                let sym = if class == "program" {
                    "bpf_prog_* (XDP programs)".to_owned()
                } else {
                    leaf.to_owned()
                };
                *top.entry((class, sym)).or_default() += 1;
            }
        }
    }
    let mut other: Vec<_> = other.into_iter().collect();
    other.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    other.truncate(4);
    p.other = other;
    let mut top: Vec<_> = top.into_iter().map(|((c, s), n)| (c, s, n)).collect();
    top.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    top.truncate(TOP);
    p.top = top;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_classed_by_task_and_chain() {
        let script = "napi/bs1-9  100 \n\t ffff1 bpf_xdp_adjust_tail+0x10\n\t ffff2 bpf_prog_0123456789abcdef_xdp_dns+0x40\n\t ffff3 veth_xdp_rcv+0x1\n\n\
                      napi/bs1-9  100 \n\t ffff4 bpf_prog_0123456789abcdef_xdp_dns+0x44\n\n\
                      cargo  300 \n\t ffff4 bpf_prog_0123456789abcdef_xdp_dns+0x44\n\n\
                      xdpdns  200 \n\t ffff9 states_equal+0x4\n\t ffffa bpf_prog_load+0x4\n\n\
                      napi/bs1-9  100 \n\t ffff5 veth_xdp_rcv_skb+0x4\n\n\
                      napi/bs1-9  100 \n\t ffffb __pi_memcpy+0x4\n\t ffffc skb_copy_bits+0x8\n\t ffffd skb_pp_cow_data+0x10\n\n\
                      swapper     0 \n\t ffff6 pv_native_safe_halt+0x2\n\n\
                      swapper     0 \n\t ffff7 __sysvec_call_function_single+0x2\n\n\
                      opt cgu.05  3445 \n\t 8bff113 llvm::Pass\n\n\
                      xdpdns  200 \n\t ffff8 __x64_sys_epoll_wait+0x2\n";
        let tasks = Tasks {
            napi: vec![100],
            server: vec![200],
            ksoftirqd: vec![],
        };
        let p = classify(script, &tasks);
        assert_eq!(p.samples, 10);
        // Another task's program is "other"; the verifier is not a program.
        assert_eq!(p.by_class, [1, 1, 1, 1, 2, 0, 1, 2, 1]);
        assert!(p.other.contains(&("opt".to_owned(), 1)));
        assert!(p.top.iter().all(|(c, _, _)| *c != "other"));
        assert!(p
            .top
            .iter()
            .any(|(c, s, _)| *c == "helpers" && s == "bpf_xdp_adjust_tail"));
    }
}
