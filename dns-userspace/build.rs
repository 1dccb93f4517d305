//! Builds the XDP program (`dns-ebpf`) for the BPF target with the dated nightly named in
//! `dns-ebpf/rust-toolchain.toml`, for the BPF CPU [`BPF_CPU`], and embeds it.
use anyhow::{anyhow, bail, Context as _};
use aya_build::Toolchain;

/// The BPF CPU (LLVM's `-mcpu`) the XDP programs are built for; the one place that chooses it.
/// `v3` has 32-bit subregisters (ALU32) and 32-bit jumps (JMP32), which the kernel's verifier
/// has accepted since Linux 5.1. Measured against `generic` (README, *The BPF CPU*): SHA-1 11–15%
/// faster, the NSEC3 and NSEC denials 3–9%, no path slower beyond the noise; `v2` gained
/// nothing and `v4` is rejected by the verifier. `XDPDNS_BPF_CPU` overrides it for a
/// measurement (e.g. `XDPDNS_BPF_CPU=generic`).
const BPF_CPU: &str = "v3";

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "dns-ebpf")
        .ok_or_else(|| anyhow!("dns-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("dns-ebpf manifest has no parent"))?
        .as_str()
        .to_owned();
    // The shared map layouts are part of the program too.
    println!("cargo:rerun-if-changed=../dns-common/src");
    let toolchain_file = format!("{root_dir}/rust-toolchain.toml");
    println!("cargo:rerun-if-changed={toolchain_file}");
    let channel = toolchain_channel(&toolchain_file)?;
    // The test programs (xdp_pass, xdp_reflect) go into the object only for the test crate.
    let features: &[&str] = if std::env::var_os("CARGO_FEATURE_TEST_SUPPORT").is_some() {
        &["test-programs"]
    } else {
        &[]
    };
    select_bpf_cpu()?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "dns-ebpf",
            root_dir: &root_dir,
            features,
            ..Default::default()
        }],
        Toolchain::Custom(&channel),
    )?;
    // With AYA_BUILD_SKIP (used for clippy, which only checks the host code), aya-build makes
    // no object; an empty one lets include_bytes! compile. Loading it would fail loudly.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("dns-ebpf");
    if !out.exists() {
        std::fs::write(&out, b"")?;
    }
    Ok(())
}

/// Makes the inner cargo that aya-build runs compile the programs with `-C target-cpu`, which
/// rustc also hands to bpf-linker as `--cpu` (the linker does the code generation).
///
/// aya-build =0.2.0 sets `CARGO_ENCODED_RUSTFLAGS` for that cargo itself, so neither
/// `RUSTFLAGS` nor `target.bpfel-unknown-none.rustflags` reaches it. Profile rustflags do:
/// they are added to whatever the other sources give, and the inner cargo is the pinned
/// nightly (it builds with `-Z build-std`), where `CARGO_UNSTABLE_PROFILE_RUSTFLAGS` enables
/// them. aya-build builds with `--release` and spawns cargo with this process's environment.
/// The build-override entry keeps the flag off the host build scripts and proc macros of that
/// build (an x86-64 rustc rejects a BPF CPU name).
fn select_bpf_cpu() -> anyhow::Result<()> {
    const OVERRIDE: &str = "XDPDNS_BPF_CPU";
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    let cpu = match std::env::var(OVERRIDE) {
        Ok(cpu) if !cpu.is_empty() => cpu,
        Ok(_) | Err(std::env::VarError::NotPresent) => BPF_CPU.to_owned(),
        Err(e) => bail!("{OVERRIDE}: {e}"),
    };
    // bpf-linker's --cpu values (`bpf-linker --help`) but `probe`, which would make the object
    // depend on the build machine's kernel; anything else would fail deep in LLVM.
    if !["generic", "v1", "v2", "v3", "v4"].contains(&cpu.as_str()) {
        bail!("{OVERRIDE}={cpu}: not a BPF CPU (generic, v1, v2, v3 or v4)");
    }
    std::env::set_var("CARGO_UNSTABLE_PROFILE_RUSTFLAGS", "true");
    std::env::set_var(
        "CARGO_PROFILE_RELEASE_RUSTFLAGS",
        format!("-Ctarget-cpu={cpu}"),
    );
    std::env::set_var("CARGO_PROFILE_RELEASE_BUILD_OVERRIDE_RUSTFLAGS", "");
    Ok(())
}

/// The `channel = "..."` of a rust-toolchain.toml.
fn toolchain_channel(path: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .ok_or_else(|| anyhow!("{path} names no channel"))
}
