//! Builds the XDP program (`dns-ebpf`) for the BPF target with the dated nightly named in
//! `dns-ebpf/rust-toolchain.toml`, and embeds it.
use anyhow::{anyhow, Context as _};
use aya_build::Toolchain;

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
