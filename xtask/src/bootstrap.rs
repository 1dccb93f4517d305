//! Bootstrap: checks the host (root, Linux, BPF, BTF) and installs, idempotently and one line
//! per step, what building and testing need: nightly rust-src, LLVM 22, bpf-linker, iproute2,
//! ethtool and the Debian DNS tools the tests and benchmarks use.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

/// Debian packages the project uses, with the command that shows each is present.
const PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "/usr/lib/llvm-22/bin/llvm-config"),
    ("libpolly-22-dev", "/usr/lib/llvm-22/lib/libPolly.a"),
    ("clang-22", "/usr/bin/clang-22"),
    ("iproute2", "/usr/sbin/ip"),
    ("ethtool", "/usr/sbin/ethtool"),
    ("bind9-dnsutils", "/usr/bin/dig"),
    ("knot-dnsutils", "/usr/bin/kdig"),
    ("knot", "/usr/sbin/knotd"),
    ("nsd", "/usr/sbin/nsd"),
    ("ldnsutils", "/usr/bin/ldns-signzone"),
    ("bind9-utils", "/usr/bin/dnssec-signzone"),
    ("dnsperf", "/usr/bin/dnsperf"),
];

fn step(name: &str, f: impl FnOnce() -> Result<&'static str>) -> Result<()> {
    let t = Instant::now();
    let outcome = f().with_context(|| format!("bootstrap step '{name}' failed"))?;
    println!(
        "[bootstrap] {name:<28} {outcome} ({:.1}s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn quiet(cmd: &mut Command) -> Result<bool> {
    Ok(cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?
        .success())
}

fn output(cmd: &mut Command) -> Result<String> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn check_host() -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!(
            "this project needs Linux (XDP and eBPF); this is {}",
            std::env::consts::OS
        );
    }
    let uid = output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!(
            "run as root: loading XDP programs and creating network namespaces need it (uid is {})",
            uid.trim()
        );
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!("the kernel has no BTF (/sys/kernel/btf/vmlinux is missing); a kernel with CONFIG_DEBUG_INFO_BTF=y is needed");
    }
    if !Path::new("/sys/fs/bpf").exists() {
        bail!("the kernel has no BPF filesystem (/sys/fs/bpf is missing); a kernel with CONFIG_BPF_SYSCALL=y is needed");
    }
    Ok(())
}

fn cargo_bin(name: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let p = home.join("bin").join(name);
    p.exists().then_some(p)
}

/// Runs every step; quick when everything is already there.
pub fn bootstrap() -> Result<()> {
    step("host (root, Linux, BPF, BTF)", || {
        check_host()?;
        Ok("ok")
    })?;
    step("nightly toolchain + rust-src", || {
        let installed = output(Command::new("rustup").args([
            "component",
            "list",
            "--toolchain",
            "nightly",
            "--installed",
        ]))
        .unwrap_or_default();
        if installed.lines().any(|l| l.starts_with("rust-src")) {
            return Ok("present");
        }
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
        Ok("installed")
    })?;
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, probe)| !Path::new(probe).exists())
        .map(|(p, _)| *p)
        .collect();
    step("Debian packages", || {
        if missing.is_empty() {
            return Ok("present");
        }
        println!("[bootstrap] installing: {}", missing.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        // The packaged daemons are not wanted running; tests start their own.
        for svc in ["knot", "nsd", "named"] {
            let _ = quiet(Command::new("systemctl").args(["disable", "--now", svc]));
        }
        Ok("installed")
    })?;
    step("bpf-linker (LLVM 22)", || {
        if let Some(p) = cargo_bin("bpf-linker") {
            if quiet(Command::new(p).arg("--version"))? {
                return Ok("present");
            }
        }
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"))?;
        Ok("installed")
    })?;
    Ok(())
}
