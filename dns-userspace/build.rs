//! Builds the XDP program (`dns-ebpf`) for the BPF target with nightly and embeds it.
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
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "dns-ebpf",
            root_dir: &root_dir,
            ..Default::default()
        }],
        Toolchain::default(),
    )?;
    // With AYA_BUILD_SKIP (used for clippy, which only checks the host code), aya-build makes
    // no object; an empty one lets include_bytes! compile. Loading it would fail loudly.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("dns-ebpf");
    if !out.exists() {
        std::fs::write(&out, b"")?;
    }
    Ok(())
}
