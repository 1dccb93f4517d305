//! `cargo xtask package`: the Debian package, with dpkg-deb. The binary is built with
//! `cargo build --release -p dns-userspace` — alone, so without the test crate's
//! `test-support` feature, which the package refuses to carry — for the host triple
//! (`--target`), so that it never replaces the test-support binaries the suite and the
//! benchmark run from target/{debug,release}. The package holds the stripped binary as
//! /usr/sbin/xdpdns, the systemd unit, a default configuration with an example zone (conffiles
//! under /etc/xdpdns), a man page made from every command's --help, the README and the Grafana
//! dashboard under /usr/share/doc/xdpdns, and maintainer scripts that reload systemd (and stop
//! the service on removal). `--debug` builds the dev profile, for the suite's quicker test.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// Present only in binaries built with `test-support` (the test clock's variable).
const TEST_SUPPORT_MARK: &[u8] = b"XDPDNS_TEST_CLOCK_FILE";
const MAINTAINER: &str = "xdpdns developers <xdpdns@invalid>";

/// Builds the package into `out`; returns its path.
pub fn package(debug: bool, out: &Path) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let triple = host_triple()?;
    let mut build = crate::cargo();
    build.args([
        "build",
        "-p",
        "dns-userspace",
        "--bin",
        "xdpdns",
        "--target",
        &triple,
    ]);
    if !debug {
        build.arg("--release");
    }
    crate::run(
        "build dns-userspace (no test-support)",
        build.current_dir(&root),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let bin = target
        .join(&triple)
        .join(if debug { "debug" } else { "release" })
        .join("xdpdns");
    let bytes = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
    if bytes
        .windows(TEST_SUPPORT_MARK.len())
        .any(|w| w == TEST_SUPPORT_MARK)
    {
        bail!(
            "{} was built with test-support: not packaged",
            bin.display()
        );
    }
    let version = version(&bin)?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let stage = out.join(format!("xdpdns_{version}_{arch}"));
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let sbin = put(&stage, "usr/sbin/xdpdns", &bytes, 0o755)?;
    crate::run(
        "strip the binary",
        Command::new("strip").arg("--strip-debug").arg(&sbin),
    )?;
    let dist = root.join("dist");
    let copy = |from: &Path, to: &str, mode: u32| -> Result<()> {
        let data = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        put(&stage, to, &data, mode).map(drop)
    };
    copy(
        &dist.join("xdpdns.service"),
        "lib/systemd/system/xdpdns.service",
        0o644,
    )?;
    copy(&dist.join("xdpdns.toml"), "etc/xdpdns/xdpdns.toml", 0o644)?;
    copy(
        &dist.join("zones/example.zone"),
        "etc/xdpdns/zones/example.zone",
        0o644,
    )?;
    copy(
        &root.join("README.md"),
        "usr/share/doc/xdpdns/README.md",
        0o644,
    )?;
    copy(
        &dist.join("grafana/xdpdns.json"),
        "usr/share/doc/xdpdns/grafana/xdpdns.json",
        0o644,
    )?;
    let help = help_texts(&sbin)?;
    let mut all_help = String::new();
    for (cmd, text) in &help {
        writeln!(all_help, "$ xdpdns {cmd}--help\n{text}")?;
    }
    put(
        &stage,
        "usr/share/doc/xdpdns/help.txt",
        all_help.as_bytes(),
        0o644,
    )?;
    put(
        &stage,
        "usr/share/doc/xdpdns/copyright",
        copyright().as_bytes(),
        0o644,
    )?;
    let man = put(
        &stage,
        "usr/share/man/man8/xdpdns.8",
        man_page(&version, &help).as_bytes(),
        0o644,
    )?;
    crate::run(
        "gzip the man page",
        Command::new("gzip").args(["-9", "-n", "-f"]).arg(&man),
    )?;
    let size_kib = dir_size(&stage)?.div_ceil(1024);
    let control = format!(
        "Package: xdpdns\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n\
         Installed-Size: {size_kib}\nDepends: libc6 (>= {}), libgcc-s1, adduser\n\
         Recommends: iproute2\nSuggests: bird2, prometheus, bpftool\nSection: net\n\
         Priority: optional\n\
         Description: authoritative DNS server with an XDP fast path\n \
         xdpdns answers hot queries from an eBPF program attached with XDP in the NIC\n \
         driver and everything else from a userspace server with full RFC semantics,\n \
         both from one engine. For anycast copies of a TLD: secondary zones (AXFR/IXFR,\n \
         TSIG, NOTIFY, expire policies), Prometheus metrics, systemd notify/watchdog and\n \
         a health check for the routing daemon.\n",
        glibc_needed(&bytes)?
    );
    put(&stage, "DEBIAN/control", control.as_bytes(), 0o644)?;
    put(
        &stage,
        "DEBIAN/conffiles",
        b"/etc/xdpdns/xdpdns.toml\n/etc/xdpdns/zones/example.zone\n",
        0o644,
    )?;
    for (name, text) in SCRIPTS {
        put(&stage, &format!("DEBIAN/{name}"), text.as_bytes(), 0o755)?;
    }
    let deb = out.join(format!("xdpdns_{version}_{arch}.deb"));
    // The dev build is for the suite: quick compression.
    let z: &[&str] = if debug { &["-Zgzip", "-z1"] } else { &["-Zxz"] };
    crate::run(
        "dpkg-deb --build",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .args(z)
            .arg(&stage)
            .arg(&deb),
    )?;
    std::fs::remove_dir_all(&stage)?;
    println!("[xtask] package: {}", deb.display());
    Ok(deb)
}

const SCRIPTS: [(&str, &str); 3] = [
    (
        "postinst",
        "#!/bin/sh\nset -e\n# The user the daemon runs as once started (xdpdns serve --user xdpdns,\n\
         # in the unit), and its storage.\nif ! getent passwd xdpdns >/dev/null; then\n    \
         adduser --system --group --home /var/lib/xdpdns --no-create-home --quiet xdpdns\n\
         fi\ninstall -d -o xdpdns -g xdpdns -m 0750 /var/lib/xdpdns\n\
         # Not started or enabled here: configure /etc/xdpdns/xdpdns.toml, then\n\
         # systemctl enable --now xdpdns\nif [ -d /run/systemd/system ]; then\n    \
         systemctl daemon-reload >/dev/null || true\nfi\nexit 0\n",
    ),
    (
        "prerm",
        "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then\n    \
         systemctl stop xdpdns.service >/dev/null || true\nfi\nexit 0\n",
    ),
    (
        "postrm",
        "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then\n    rm -rf /var/lib/xdpdns\nfi\n\
         if [ -d /run/systemd/system ]; then\n    systemctl daemon-reload >/dev/null || true\nfi\n\
         exit 0\n",
    ),
];

/// Writes `data` at `rel` under `stage` with `mode`; returns the path.
fn put(stage: &Path, rel: &str, data: &[u8], mode: u32) -> Result<PathBuf> {
    let path = stage.join(rel);
    let dir = path.parent().context("a file in a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok(path)
}

fn output(cmd: &mut Command) -> Result<String> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8(o.stdout)?.trim().to_owned())
}

fn host_triple() -> Result<String> {
    let v = output(Command::new("rustc").arg("-vV"))?;
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// The version `xdpdns --version` reports.
fn version(bin: &Path) -> Result<String> {
    let v = output(Command::new(bin).arg("--version"))?;
    v.strip_prefix("xdpdns ")
        .map(str::to_owned)
        .with_context(|| format!("unexpected --version output {v:?}"))
}

/// The newest GLIBC_2.N symbol version the binary needs.
fn glibc_needed(bin: &[u8]) -> Result<String> {
    let mark = b"GLIBC_2.";
    let mut best: Option<(u32, u32)> = None;
    for (i, _) in bin
        .windows(mark.len())
        .enumerate()
        .filter(|(_, w)| w == mark)
    {
        let tail = &bin[i + mark.len()..];
        let digits: String = tail
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|&b| b as char)
            .collect();
        let mut parts = digits.split('.').filter_map(|p| p.parse::<u32>().ok());
        if let Some(minor) = parts.next() {
            let v = (minor, parts.next().unwrap_or(0));
            best = best.max(Some(v));
        }
    }
    match best {
        Some((minor, 0)) => Ok(format!("2.{minor}")),
        Some((minor, patch)) => Ok(format!("2.{minor}.{patch}")),
        None => bail!("the binary names no GLIBC symbol version"),
    }
}

/// `--help` of the command and of each subcommand: (prefix, text).
fn help_texts(bin: &Path) -> Result<Vec<(String, String)>> {
    let mut out = vec![(String::new(), output(Command::new(bin).arg("--help"))?)];
    for cmd in ["serve", "stats", "status", "reload", "health", "check"] {
        out.push((
            format!("{cmd} "),
            output(Command::new(bin).args([cmd, "--help"]))?,
        ));
    }
    Ok(out)
}

/// A man page (section 8) holding every command's help.
fn man_page(version: &str, help: &[(String, String)]) -> String {
    let mut m = format!(
        ".TH XDPDNS 8 \"\" \"xdpdns {version}\" \"System Administration\"\n.SH NAME\n\
         xdpdns \\- authoritative DNS server with an XDP fast path\n.SH SYNOPSIS\n\
         .B xdpdns\n.I command\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n"
    );
    for (cmd, text) in help {
        if !cmd.is_empty() {
            writeln!(m, ".SH xdpdns {}", cmd.trim_end()).ok();
        }
        m.push_str(".nf\n");
        for line in text.lines() {
            let line = line.replace('\\', "\\e");
            if line.starts_with('.') || line.starts_with('\'') {
                m.push_str("\\&");
            }
            m.push_str(&line);
            m.push('\n');
        }
        m.push_str(".fi\n");
    }
    m.push_str(
        ".SH FILES\n/etc/xdpdns/xdpdns.toml, /lib/systemd/system/xdpdns.service, \
         /var/lib/xdpdns, /run/xdpdns/xdpdns.sock\n.SH SEE ALSO\n\
         /usr/share/doc/xdpdns/README.md, systemd.service(5), bird(8)\n",
    );
    m
}

fn copyright() -> String {
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
     Upstream-Name: xdpdns\n\nFiles: *\nCopyright: the xdpdns developers\n\
     License: MIT or Apache-2.0\n"
        .to_owned()
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        total += if meta.is_dir() {
            dir_size(&e.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
