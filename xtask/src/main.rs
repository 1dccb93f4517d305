//! `cargo xtask`: the project's task runner — bootstrap the machine, run the whole test suite,
//! run the demo, run the benchmark, build the Debian package, fuzz.

mod bootstrap;
mod fuzz;
mod package;

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (idempotent).
    Bootstrap,
    /// Bootstrap, then run the whole test suite (root, namespaces and XDP included), plus
    /// rustfmt and clippy checks.
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Bootstrap, build, and show XDP and userspace answers in a throwaway pair of namespaces.
    Demo,
    /// Long runs of the XDP correctness contract (TEST_RUN): the differential corpus and the
    /// fuzz test, with more packets than the suite uses.
    XdpCheck {
        /// Differential corpus size.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// Random and mutated packets.
        #[arg(long, default_value_t = 20_000_000)]
        fuzz: u64,
        /// Generated queries per server payload size (512, 1232, 1400, 4096, ...).
        #[arg(long, default_value_t = 100_000)]
        payload_packets: u64,
    },
    /// Bootstrap, build, and run the comparative benchmark (xdpdns with and without XDP, Knot
    /// UDP and XDP, NSD) in a throwaway pair of namespaces; results under target/bench/.
    /// Arguments go to the bench binary (`cargo xtask bench --help` lists them).
    #[command(disable_help_flag = true)]
    Bench {
        /// e.g. --delegations N, --signed, --mix NAME, --duration S, --servers LIST, --smoke.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// libFuzzer runs of the fuzz targets in fuzz/ (cargo-fuzz on the dated nightly), from
    /// their seed corpus in fuzz/corpus/; a crash fails and is kept in fuzz/artifacts/.
    Fuzz {
        /// One target (zonefile, wire, engine, message, axfr, ixfr, tsig, notify); all by
        /// default.
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        time: u64,
    },
    /// Build the Debian package (release binary without test-support, the systemd unit, the
    /// default configuration, man page and docs) into --out.
    Package {
        /// Build the dev profile instead of release (quicker; for the test suite).
        #[arg(long)]
        debug: bool,
        /// Directory for the .deb.
        #[arg(long, default_value = "target/package")]
        out: std::path::PathBuf,
    },
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<()> {
    let t = Instant::now();
    println!("[xtask] {what}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    println!("[xtask] {what}: ok ({:.1}s)", t.elapsed().as_secs_f64());
    Ok(())
}

/// Bootstraps, builds the release binaries, and runs one of the tests package's binaries.
fn release_bin(name: &str, args: &[String]) -> Result<()> {
    bootstrap::bootstrap()?;
    run("build", cargo().args(["build", "--release", "--bins"]))?;
    run(
        name,
        cargo()
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "xdpdns-tests",
                "--bin",
                name,
                "--",
            ])
            .args(args),
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let t = Instant::now();
    match cli.command {
        Cmd::Bootstrap => bootstrap::bootstrap()?,
        Cmd::Test { args } => {
            bootstrap::bootstrap()?;
            run(
                "cargo fmt --check",
                cargo().args(["fmt", "--all", "--", "--check"]),
            )?;
            run(
                "cargo clippy -D warnings",
                cargo()
                    .args(["clippy", "--all-targets", "--", "-D", "warnings"])
                    // Clippy checks host code only; skip building the BPF object again.
                    .env("AYA_BUILD_SKIP", "1"),
            )?;
            run("build", cargo().args(["build", "--bins", "--tests"]))?;
            run("cargo test", cargo().args(["test"]).arg("--").args(&args))?;
        }
        Cmd::XdpCheck {
            packets,
            fuzz,
            payload_packets,
        } => {
            bootstrap::bootstrap()?;
            run(
                "XDP differential and fuzz (long)",
                cargo()
                    .args([
                        "test",
                        "--release",
                        "-p",
                        "xdpdns-tests",
                        "--test",
                        "xdp_differential",
                        "--test",
                        "xdp_edns",
                    ])
                    .args(["--", "--nocapture", "--test-threads", "1"])
                    .env("XDPDNS_DIFF_PACKETS", packets.to_string())
                    .env("XDPDNS_EDNS_PACKETS", packets.to_string())
                    .env("XDPDNS_FUZZ_PACKETS", fuzz.to_string())
                    .env("XDPDNS_EDNS_FUZZ_PACKETS", fuzz.to_string())
                    .env("XDPDNS_PAYLOAD_PACKETS", payload_packets.to_string()),
            )?;
        }
        Cmd::Demo => release_bin("demo", &[])?,
        Cmd::Bench { args } => release_bin("bench", &args)?,
        Cmd::Fuzz { target, time } => fuzz::fuzz(target, time)?,
        Cmd::Package { debug, out } => drop(package::package(debug, &out)?),
    }
    println!("[xtask] done in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}
