//! Bootstrap: checks the host (root, Linux, BPF, BTF) and installs, idempotently and one line
//! per step, what building and testing need: the BPF toolchain named in
//! `dns-ebpf/rust-toolchain.toml` with rust-src, LLVM 22, a pinned bpf-linker, iproute2, ethtool
//! and the Debian DNS tools the tests and benchmarks use. It stops when rustc's and bpf-linker's
//! LLVM majors differ, which would otherwise fail deep in the build with "Invalid record".

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

/// bpf-linker release, built against LLVM [`LLVM_MAJOR`].
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The LLVM major of Debian's llvm-dev that bpf-linker links to; the BPF toolchain must match.
const LLVM_MAJOR: u32 = 22;
/// Where the BPF toolchain is named (the one place; build.rs reads it too).
const TOOLCHAIN_FILE: &str = "dns-ebpf/rust-toolchain.toml";

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
    // Issue 14: `systemd-analyze verify` of the unit, detaching XDP links in the health test,
    // building and unpacking the .deb, stripping its binary.
    ("systemd", "/usr/bin/systemd-analyze"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("dpkg-dev", "/usr/bin/dpkg-architecture"),
    ("binutils", "/usr/bin/strip"),
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

/// The dated nightly named in [`TOOLCHAIN_FILE`].
pub fn bpf_toolchain() -> Result<String> {
    toolchain_channel(TOOLCHAIN_FILE)
}

/// The dated nightly a `rust-toolchain.toml` (relative to the workspace root) names.
pub fn toolchain_channel(file: &str) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let channel = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .with_context(|| format!("{} names no channel", path.display()))?;
    if !channel.starts_with("nightly-") {
        bail!("{file} must name a dated nightly (nightly-YYYY-MM-DD), not '{channel}'");
    }
    Ok(channel)
}

/// The LLVM major version rustc of `toolchain` was built with (`rustc -vV`).
fn rustc_llvm_major(toolchain: &str) -> Result<u32> {
    let out = output(
        Command::new("rustc")
            .arg(format!("+{toolchain}"))
            .arg("-vV"),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next()?.trim().parse().ok())
        .with_context(|| format!("rustc +{toolchain} -vV reports no LLVM version:\n{out}"))
}

/// The version and LLVM major of an installed bpf-linker (from the libLLVM it links to).
fn bpf_linker_build(path: &Path) -> Result<(String, u32)> {
    let version = output(Command::new(path).arg("--version"))?;
    let version = version
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("{} --version printed nothing", path.display()))?
        .to_owned();
    let libs = output(Command::new("ldd").arg(path))?;
    let major = libs
        .split_whitespace()
        .find_map(|w| {
            let rest = w.strip_prefix("libLLVM")?;
            let rest = rest
                .trim_start_matches(['-', '.'])
                .trim_start_matches("so.");
            rest.split(['.', '-']).next()?.parse().ok()
        })
        .with_context(|| {
            format!(
                "{} is not linked to a shared libLLVM:\n{libs}",
                path.display()
            )
        })?;
    Ok((version, major))
}

/// Runs every step; quick when everything is already there.
pub fn bootstrap() -> Result<()> {
    step("host (root, Linux, BPF, BTF)", || {
        check_host()?;
        Ok("ok")
    })?;
    let toolchain = bpf_toolchain()?;
    step(&format!("{toolchain} + rust-src"), || {
        let installed = output(Command::new("rustup").args([
            "component",
            "list",
            "--toolchain",
            &toolchain,
            "--installed",
        ]))
        .unwrap_or_default();
        if installed.lines().any(|l| l.starts_with("rust-src")) {
            return Ok("present");
        }
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            &toolchain,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
        Ok("installed")
    })?;
    step(&format!("{toolchain} has LLVM {LLVM_MAJOR}"), || {
        let major = rustc_llvm_major(&toolchain)?;
        if major != LLVM_MAJOR {
            bail!(
                "{toolchain} is built with LLVM {major}, but bpf-linker uses LLVM {LLVM_MAJOR}; \
                 name a nightly with LLVM {LLVM_MAJOR} in {TOOLCHAIN_FILE} (check with `rustc +TOOLCHAIN -vV`)"
            );
        }
        Ok("ok")
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
    step(
        &format!("bpf-linker {BPF_LINKER_VERSION} (LLVM {LLVM_MAJOR})"),
        || {
            if let Some(p) = cargo_bin("bpf-linker") {
                if let Ok((version, major)) = bpf_linker_build(&p) {
                    if version == BPF_LINKER_VERSION && major == LLVM_MAJOR {
                        return Ok("present");
                    }
                    println!("[bootstrap] replacing bpf-linker {version} (LLVM {major})");
                }
            }
            run(Command::new("cargo")
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    BPF_LINKER_VERSION,
                    "--locked",
                    "--force",
                    "--no-default-features",
                    "--features",
                ])
                .arg(format!("llvm-{LLVM_MAJOR}"))
                .env("LLVM_PREFIX", format!("/usr/lib/llvm-{LLVM_MAJOR}")))?;
            let p = cargo_bin("bpf-linker")
                .context("cargo install put no bpf-linker in ~/.cargo/bin")?;
            let (version, major) = bpf_linker_build(&p)?;
            if major != LLVM_MAJOR {
                bail!("bpf-linker {version} was built against LLVM {major}, not {LLVM_MAJOR}");
            }
            Ok("installed")
        },
    )?;
    Ok(())
}
