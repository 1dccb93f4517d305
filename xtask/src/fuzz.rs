//! `cargo xtask fuzz [TARGET] [--time SECS]`: libFuzzer runs of the fuzz targets in `fuzz/`
//! (cargo-fuzz, installed at a pinned version when missing), on the project's dated nightly
//! (`fuzz/rust-toolchain.toml` must name the one in `dns-ebpf/rust-toolchain.toml`).
//!
//! Each target starts from its seed corpus `fuzz/corpus/TARGET/` (read only) and keeps what
//! it finds in `fuzz/target/corpus/TARGET/`; a crash is written to `fuzz/artifacts/TARGET/`
//! and fails the command — add the input to the seed corpus with the fix, so that the test
//! suite (`tests/tests/fuzz_engine/targets.rs`) keeps checking it. Prints each target's runs
//! per second.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::bootstrap::{bpf_toolchain, toolchain_channel};

/// The cargo-fuzz release used (installed with `--locked`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every target (`fuzz/Cargo.toml`'s bins, `xdpdns::fuzz_support::TARGETS`).
pub const TARGETS: &[&str] = &[
    "zonefile", "wire", "engine", "message", "axfr", "ixfr", "tsig", "notify",
];

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    here.canonicalize().unwrap_or(here)
}

fn cargo_fuzz_version() -> Option<String> {
    let out = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let want = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    if cargo_fuzz_version().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    crate::run(
        &format!("install {want}"),
        Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
        ]),
    )
}

/// The runs and seconds of libFuzzer's closing line (`Done 123 runs in 60 second(s)`).
fn done_line(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let mut w = line.split_whitespace();
    let runs = w.nth(1)?.parse().ok()?;
    let secs = w.nth(2)?.parse().ok()?;
    Some((runs, secs))
}

/// Runs `targets` for `secs` seconds each; fails when one of them crashed.
pub fn fuzz(target: Option<String>, secs: u64) -> Result<()> {
    let targets: Vec<&str> = match &target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("no fuzz target {t}; the targets: {}", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let (ours, bpf) = (
        toolchain_channel("fuzz/rust-toolchain.toml")?,
        bpf_toolchain()?,
    );
    if ours != bpf {
        bail!("fuzz/rust-toolchain.toml names {ours}, dns-ebpf/rust-toolchain.toml {bpf}: make them one");
    }
    crate::bootstrap::bootstrap()?;
    ensure_cargo_fuzz()?;
    let dir = root().join("fuzz");
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for t in targets {
        let work = dir.join("target/corpus").join(t);
        let artifacts = dir.join("artifacts").join(t);
        std::fs::create_dir_all(&work)?;
        std::fs::create_dir_all(&artifacts)?;
        let log_path = dir.join("target").join(format!("{t}.log"));
        let log = std::fs::File::create(&log_path)?;
        println!(
            "[xtask] fuzz {t} for {secs} s (log: {})",
            log_path.display()
        );
        let status = Command::new("cargo")
            .current_dir(&dir)
            // The library's build script would build the XDP object, which no target uses.
            .env("AYA_BUILD_SKIP", "1")
            .env_remove("RUSTUP_TOOLCHAIN")
            .arg(format!("+{ours}"))
            .args(["fuzz", "run", "--release", "--debug-assertions", t])
            .arg(&work)
            .arg(dir.join("corpus").join(t))
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .stderr(log.try_clone()?)
            .stdout(log)
            .status()
            .with_context(|| format!("cargo fuzz run {t}"))?;
        let text = std::fs::read_to_string(&log_path)?;
        let line = match done_line(&text) {
            Some((runs, s)) => format!("{t}: {runs} runs in {s} s ({} runs/s)", runs / s.max(1)),
            None => format!("{t}: no final statistics"),
        };
        if status.success() {
            summary.push(format!("{line}, nothing found"));
        } else {
            summary.push(format!(
                "{line}, FAILED ({status}): see {}",
                log_path.display()
            ));
            failed.push(t);
        }
    }
    for l in &summary {
        println!("[xtask] {l}");
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (inputs in fuzz/artifacts/)",
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_libfuzzers_closing_line() {
        let log = "#1000 DONE cov: 12\nDone 73427 runs in 61 second(s)\nstat::x: 1\n";
        assert_eq!(super::done_line(log), Some((73427, 61)));
        assert_eq!(super::done_line("crashed"), None);
    }
}
