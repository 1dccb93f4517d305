//! Test harness: a throwaway pair of network namespaces joined by a veth, the server running in
//! one and clients in the other, all removed on drop (also when a test panics).
//!
//! Addresses come from 198.18.0.0/15 and fd00::/8 only. The client-side veth gets an XDP_PASS
//! program, without which XDP_TX replies from the server side are not delivered on veth.

pub mod bench;
pub mod client;
pub mod compare;
pub mod corpus;
pub mod ctl;
pub mod denial;
pub mod downstream;
pub mod feeder;
pub mod frame;
pub mod incremental;
pub mod knot;
pub mod load;
pub mod ops;
pub mod oracle;
pub mod primary;
pub mod scrape;
pub mod seeded;
pub mod stats;
pub mod testrun;
pub mod tld;
pub mod upstream;
pub mod xfr_proxy;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const SERVER_MAC: &str = "02:00:00:00:00:01";
const CLIENT_MAC: &str = "02:00:00:00:00:02";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs a command; fails with its stderr when it fails.
pub fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip` with these arguments.
pub fn ip(args: &[&str]) -> Result<String> {
    sh(Command::new("ip").args(args))
}

/// One end of a veth pair: its namespace, interface name and MAC address.
pub struct VethEnd<'a> {
    pub ns: &'a str,
    pub ifname: &'a str,
    pub mac: &'a str,
}

/// Creates a veth pair between the server's and the client's namespaces (with `queues` RX and
/// TX queues on each end when given), with the test addresses, links up, and static neighbour
/// entries so that no run waits on ARP or ND.
pub fn veth_pair(server: &VethEnd, client: &VethEnd, queues: Option<u32>) -> Result<()> {
    let addrs = [(SERVER_V4, SERVER_V6), (CLIENT_V4, CLIENT_V6)];
    veth_pair_with(server, client, queues, addrs)
}

/// Like `veth_pair`, with `addrs` for the two ends (IPv4 in a /24, IPv6 in a /64).
pub fn veth_pair_with(
    server: &VethEnd,
    client: &VethEnd,
    queues: Option<u32>,
    addrs: [(Ipv4Addr, Ipv6Addr); 2],
) -> Result<()> {
    let q = queues.map(|n| n.to_string());
    let queue_args: Vec<&str> = match &q {
        Some(n) => vec!["numrxqueues", n, "numtxqueues", n],
        None => vec![],
    };
    let mut args = vec![
        "link",
        "add",
        server.ifname,
        "netns",
        server.ns,
        "address",
        server.mac,
    ];
    args.extend(&queue_args);
    args.extend([
        "type",
        "veth",
        "peer",
        "name",
        client.ifname,
        "netns",
        client.ns,
    ]);
    args.extend(["address", client.mac]);
    args.extend(&queue_args);
    ip(&args)?;
    let [(server4, server6), (client4, client6)] = addrs;
    let sides = [
        (server, server4, server6, client, client4, client6),
        (client, client4, client6, server, server4, server6),
    ];
    for (end, v4, v6, peer, peer4, peer6) in sides {
        let (ns, ifname) = (end.ns, end.ifname);
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname])?;
        #[rustfmt::skip]
        ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"])?;
        ip(&["-n", ns, "link", "set", ifname, "up"])?;
        for addr in [peer4.to_string(), peer6.to_string()] {
            #[rustfmt::skip]
            ip(&["-n", ns, "neigh", "replace", &addr, "lladdr", peer.mac, "dev", ifname,
                 "nud", "permanent"])?;
        }
    }
    Ok(())
}

/// Workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Path of a zone file under the workspace's `zones/` (`example.zone`, `signed/...`).
pub fn zone_file(rel: &str) -> String {
    format!("{}/zones/{rel}", workspace_root().display())
}

/// The example zone file (zones/example.zone).
pub fn example_zone() -> String {
    zone_file("example.zone")
}

/// The `xdpdns` binary built next to the running test or demo binary.
pub fn xdpdns_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XDPDNS_BIN") {
        return p.into();
    }
    target_bin("xdpdns")
}

/// A binary of the workspace, beside the running test or tool (target/{debug,release}).
pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A namespace pair joined by a veth.
pub struct TestNet {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub dir: PathBuf,
    pass: Option<Child>,
    server: Option<Child>,
}

impl TestNet {
    /// Creates the namespaces, the veth, addresses and neighbour entries, and attaches XDP_PASS
    /// on the client side.
    pub fn new() -> Result<TestNet> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let dir = std::env::temp_dir().join(format!("xdpdns-test-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let mut net = TestNet {
            server_ns: format!("xdts{tag}"),
            client_ns: format!("xdtc{tag}"),
            server_if: format!("xs{tag}"),
            client_if: format!("xc{tag}"),
            dir,
            pass: None,
            server: None,
        };
        net.setup().context("setting up the test namespaces")?;
        Ok(net)
    }

    fn setup(&mut self) -> Result<()> {
        let (s, c) = (self.server_ns.clone(), self.client_ns.clone());
        ip(&["netns", "add", &s])?;
        ip(&["netns", "add", &c])?;
        veth_pair(
            &VethEnd {
                ns: &s,
                ifname: &self.server_if,
                mac: SERVER_MAC,
            },
            &VethEnd {
                ns: &c,
                ifname: &self.client_if,
                mac: CLIENT_MAC,
            },
            None,
        )?;
        let mut pass = self
            .in_ns_cmd(&c, &target_bin("xdp-pass"))
            .args(["--iface", &self.client_if])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting xdpdns xdp-pass")?;
        // Wait for "attached".
        let mut out = pass.stdout.take().expect("piped");
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut out, &mut buf)?;
        self.pass = Some(pass);
        if !String::from_utf8_lossy(&buf[..n]).contains("attached") {
            bail!("xdp-pass did not attach on {}", self.client_if);
        }
        Ok(())
    }

    /// A command that runs inside `ns` (nsenter keeps /sys/fs/bpf visible, `ip netns exec`
    /// does not).
    pub fn in_ns_cmd(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{ns}")).arg(program);
        c
    }

    /// A command in the client namespace.
    pub fn client_cmd(&self, program: &str) -> Command {
        self.in_ns_cmd(&self.client_ns, Path::new(program))
    }

    /// Runs `f` on a thread inside the client namespace (sockets made there belong to it).
    pub fn in_client<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        in_netns(&self.client_ns, f)
    }

    /// Like `in_client`, without waiting for `f` to finish.
    pub fn spawn_in_client<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T>> {
        spawn_in_netns(&self.client_ns, f)
    }

    /// Path of the server's control socket.
    pub fn control(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Starts `xdpdns serve` in the server namespace with XDP on the veth, and waits until it
    /// answers on its control socket. `extra` is appended to the command line.
    pub fn start_server(&mut self, zones: &[&str], extra: &[&str]) -> Result<()> {
        self.start_server_with(zones, extra, &[])
    }

    /// Like `start_server`, with more environment variables for the server. Its log is
    /// appended to what earlier runs wrote. Returns once the XDP path (when on) is started
    /// too: its maps fill after the control socket answers.
    pub fn start_server_with(
        &mut self,
        zones: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        self.spawn_server(zones, extra, env)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ctl("status")?.contains("xdp filling") {
            if Instant::now() > deadline {
                bail!("the XDP maps still fill after 60 s:\n{}", self.server_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Like `start_server_with`, returning as soon as the control socket answers (the XDP
    /// maps may still be filling).
    pub fn spawn_server(
        &mut self,
        zones: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let mut cmd = self.in_ns_cmd(&self.server_ns.clone(), &xdpdns_bin());
        cmd.arg("serve").arg("--iface").arg(&self.server_if);
        cmd.arg("--control").arg(self.control());
        for z in zones {
            cmd.arg("--zone").arg(z);
        }
        cmd.args(extra);
        cmd.envs(env.iter().copied());
        cmd.stdout(log.try_clone()?)
            .stderr(log)
            .env("RUST_LOG", "info");
        self.server = Some(cmd.spawn().context("starting xdpdns serve")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.server.as_mut().expect("server").try_wait()? {
                bail!("xdpdns serve exited ({status}):\n{}", self.server_log());
            }
            if self.ctl("stats").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("xdpdns serve did not become ready:\n{}", self.server_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs `xdpdns <cmd> --control ...` against the server.
    pub fn ctl(&self, cmd: &str) -> Result<String> {
        sh(Command::new(xdpdns_bin())
            .arg(cmd)
            .arg("--control")
            .arg(self.control()))
    }

    /// Polls `xdpdns status` until `ok` holds for it (at most 15 s); returns it, or an error
    /// with the last status and the server's log.
    pub fn wait_for_status(&self, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.ctl("status")?;
            if ok(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "waiting for {what}; status:\n{s}\nserver log:\n{}",
                    self.server_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's counters (`xdpdns stats`).
    /// Waits (at most `within`) until the server's counter `name` is `value`.
    pub fn wait_for_counter(&self, name: &str, value: u64, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.counter(name)?;
            if now == value {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{name} is {now}, not {value}, after {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stats(&self) -> Result<stats::Counters> {
        stats::Counters::parse(&self.ctl("stats")?)
    }

    /// One counter of the server; an error if the server has no counter of that name.
    pub fn counter(&self, name: &str) -> Result<u64> {
        counter(&self.stats()?, name)
    }

    /// Process id of the running server (nsenter execs it, so it is the child's).
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no cleanup: it cannot detach XDP or close anything) and
    /// reaps it.
    pub fn kill_server(&mut self) -> Result<()> {
        if let Some(mut child) = self.server.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Whether the server process is still running.
    pub fn server_running(&mut self) -> Result<bool> {
        match self.server.as_mut() {
            Some(c) => Ok(c.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit status success.
    pub fn stop_server(&mut self) -> Result<bool> {
        let Some(mut child) = self.server.take() else {
            return Ok(true);
        };
        terminate(&mut child)
    }

    pub fn server_addrs(&self) -> [IpAddr; 2] {
        [IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)]
    }

    /// XDP program id attached to an interface in a namespace, if any.
    pub fn xdp_attached(&self, ns: &str, ifname: &str) -> Result<bool> {
        let out = ip(&["-n", ns, "-d", "link", "show", "dev", ifname])?;
        Ok(out.contains("prog/xdp"))
    }
}

/// Runs `f` on a thread inside namespace `ns` (sockets made there belong to it).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    spawn_in_netns(ns, f)
        .join()
        .map_err(|_| anyhow::anyhow!("thread in namespace panicked"))?
}

/// Like `in_netns`, without waiting for `f` to finish.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<Result<T>> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<T> {
        let ns = File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).context("setns")?;
        Ok(f())
    })
}

/// The counter `name` of `xdpdns stats` output; an error (never 0) if there is none.
pub fn counter(stats: &stats::Counters, name: &str) -> Result<u64> {
    stats.get(name)
}

/// How much counter `name` grew from `before` to `after`; an error if either lacks it.
pub fn counter_delta(before: &stats::Counters, after: &stats::Counters, name: &str) -> Result<u64> {
    stats::try_delta(before, after, name)
}

/// Stops a child with SIGTERM, then SIGKILL after `grace`; returns whether it exited cleanly.
pub fn terminate_within(child: &mut Child, grace: Duration) -> Result<bool> {
    // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(child: &mut Child) -> Result<bool> {
    terminate_within(child, Duration::from_secs(10))
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = terminate(&mut c);
        }
        if let Some(mut c) = self.pass.take() {
            let _ = terminate(&mut c);
        }
        let _ = ip(&["netns", "del", &self.server_ns]);
        let _ = ip(&["netns", "del", &self.client_ns]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
