//! Keeping the XDP path answering across restarts (`serve --xdp-pin NAME`): the program's BPF
//! link is pinned at `/sys/fs/bpf/xdpdns/NAME/link`, so that it stays attached — the program
//! answering from its maps — when the daemon dies, even by SIGKILL; the queries it passes go
//! unanswered until userspace is back.
//!
//! At start the new program is loaded and its maps filled first; then, when a link is pinned
//! there and the kernel runs its program on our interface, our program takes its place in that
//! link atomically (`bpf_link_update`, `Xdp::attach_to_link`): queries are answered by the old
//! program until the instant the new one answers them. The programs' tags say whether the
//! binary changed (logged). A pinned link that cannot be adopted (its interface is gone, it
//! runs a program that is not on our interface) is unpinned and the program attached anew.
//! A clean stop detaches and unpins (`unpin`), unless `--keep-xdp` (`keep`): then the link
//! stays pinned and attached for the next start to adopt.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;

use super::xdp::{AttachMode, XdpServer};
use super::FastPath;
use crate::engine::Engine;

/// Where the instances' pins live.
pub const ROOT: &str = "/sys/fs/bpf/xdpdns";

/// The pinned link of instance `name`.
pub fn link_path(name: &str) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || name.starts_with('.')
    {
        bail!("XDP pin name {name:?}: letters, digits, '-', '_' and '.' only");
    }
    Ok(Path::new(ROOT).join(name).join("link"))
}

/// Mounts the BPF filesystem at `/sys/fs/bpf` when nothing is mounted there (as bpftool does
/// before it pins): systemd mounts it at boot, minimal systems may not.
fn ensure_bpffs() -> Result<()> {
    let root = Path::new("/sys/fs/bpf");
    let fs = nix::sys::statfs::statfs(root).with_context(|| format!("{}", root.display()))?;
    if fs.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpf"),
        root,
        Some("bpf"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .with_context(|| format!("mounting the BPF filesystem at {}", root.display()))?;
    log::info!(
        "mounted the BPF filesystem at {} to pin the XDP link",
        root.display()
    );
    Ok(())
}

/// The pin of `JUMP`, beside the link pinned at `link`.
fn jump_path(link: &Path) -> PathBuf {
    link.with_file_name("jump")
}

/// The tag of the loaded program `id` (a digest of its instructions), if it is still loaded.
fn tag_of(id: u32) -> Option<u64> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .map(|p| p.tag())
}

impl XdpServer {
    /// Attaches to `iface` with its link pinned at `path`: taking the place of the program in
    /// the link pinned there when `runs_on_iface` says the kernel runs that program on `iface`
    /// (see the module doc). Returns what it did, for the log.
    pub fn attach_pinned(
        &mut self,
        iface: &str,
        mode: AttachMode,
        path: &Path,
        runs_on_iface: &dyn Fn(u32) -> bool,
    ) -> Result<String> {
        if path.exists() {
            match self.adopt(iface, path, runs_on_iface) {
                Ok(what) => {
                    self.pin_jump(path)?;
                    return Ok(what);
                }
                Err(e) => {
                    log::warn!(
                        "the XDP link pinned at {} is not adopted ({e:#}): unpinned, attaching anew",
                        path.display()
                    );
                    std::fs::remove_file(path)
                        .with_context(|| format!("unpinning {}", path.display()))?;
                }
            }
        }
        self.attach(iface, mode)?;
        self.pin_link(path)?;
        self.pin_jump(path)?;
        Ok(format!("XDP link pinned at {}", path.display()))
    }

    /// Takes the place of the program of the link pinned at `path`.
    fn adopt(
        &mut self,
        iface: &str,
        path: &Path,
        runs_on_iface: &dyn Fn(u32) -> bool,
    ) -> Result<String> {
        let fd = FdLink::from(PinnedLink::from_pin(path).context("opening the pinned link")?);
        let old = fd.info().context("reading the pinned link")?.program_id();
        if !runs_on_iface(old) {
            bail!("its program {old} is not the one {iface} runs");
        }
        let link = XdpLink::try_from(fd).map_err(|e| anyhow!("not an XDP link: {e}"))?;
        let id = self
            .program()?
            .attach_to_link(link)
            .with_context(|| format!("replacing program {old} in the pinned link"))?;
        self.attached = Some((iface.to_owned(), id));
        let new = self.program()?.info()?;
        let changed = match tag_of(old) {
            Some(t) if t == new.tag() => "the same program",
            Some(_) => "the binary changed",
            None => "the old program's tag unknown",
        };
        Ok(format!(
            "adopted the XDP link pinned at {} on {iface}: program {old} replaced by {} ({changed})",
            path.display(),
            new.id()
        ))
    }

    /// Pins the link the program is attached with at `path` (it stays ours too).
    fn pin_link(&mut self, path: &Path) -> Result<()> {
        let (iface, id) = self.attached.take().context("not attached")?;
        let link = self.program()?.take_link(id)?;
        let fd = match FdLink::try_from(link) {
            Ok(fd) => fd,
            Err(e) => {
                // A netlink attachment (old kernels) has no link to pin; it was detached
                // with the link object: attach again, unpinned.
                log::warn!("XDP on {iface} is attached without a BPF link ({e}): not pinned");
                return self.attach(&iface, AttachMode::Auto);
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let pinned = fd
            .pin(path)
            .with_context(|| format!("pinning the XDP link at {}", path.display()))?;
        let link = XdpLink::try_from(FdLink::from(pinned))?;
        let id = self.program()?.attach_to_link(link)?;
        self.attached = Some((iface, id));
        Ok(())
    }

    /// Pins `JUMP` beside the link at `path` (replacing the previous program's): the tail
    /// calls of the pinned program keep working when the daemon dies.
    fn pin_jump(&mut self, path: &Path) -> Result<()> {
        let at = jump_path(path);
        match std::fs::remove_file(&at) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("unpinning {}", at.display()));
            }
            _ => {}
        }
        aya::maps::MapData::from_id(self.jump_id)
            .context("opening JUMP")?
            .pin(&at)
            .with_context(|| format!("pinning the XDP program array at {}", at.display()))
    }

    /// Removes the pin at `path` (a `detach` then detaches: no other reference is left).
    pub fn unpin(&mut self, path: &Path) {
        let _ = std::fs::remove_file(jump_path(path));
        match std::fs::remove_file(path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::error!("unpinning the XDP link {}: {e}", path.display()),
        }
    }

    /// Lets go of the link without detaching it: the pin keeps the program attached after
    /// the daemon exits.
    pub fn keep(&mut self) -> Result<()> {
        if let Some((_, id)) = self.attached.take() {
            // Dropping our handle closes our descriptor only; the pin holds the link.
            drop(self.program()?.take_link(id)?);
        }
        Ok(())
    }
}

/// `FastPath::start` with the link pinned under `name`: loads and fills the program, then
/// attaches it (adopting the pinned link, see the module doc).
pub fn start(
    engine: &Engine,
    iface: &str,
    mode: AttachMode,
    addrs: &[std::net::IpAddr],
    port: u16,
    templates: Option<u32>,
    name: &str,
) -> Result<FastPath> {
    let path = link_path(name)?;
    ensure_bpffs()?;
    if addrs.is_empty() {
        bail!("interface {iface} has no addresses for the XDP path to answer on");
    }
    let mut fp = FastPath::load(engine, addrs, port, templates)?;
    let runs_on_iface = |id: u32| {
        crate::daemon::xdp_probe::attached_prog_ids(iface).is_ok_and(|ids| ids.contains(&id))
    };
    let what = fp
        .server
        .attach_pinned(iface, mode, &path, &runs_on_iface)?;
    log::info!("{what}; XDP answering on {iface} port {port}");
    Ok(fp)
}

/// At a clean stop: detaches (and unpins), or with `keep` leaves the pinned program attached.
pub fn stop(server: &mut XdpServer, name: Option<&str>, keep: bool) -> Result<String> {
    let path = name.map(link_path).transpose()?;
    match (path, keep) {
        (Some(p), true) => {
            server.keep()?;
            Ok(format!(
                "XDP left attached (--keep-xdp), its link pinned at {}",
                p.display()
            ))
        }
        (Some(p), false) => {
            server.unpin(&p);
            server.detach()?;
            Ok(format!("XDP detached and {} unpinned", p.display()))
        }
        (None, _) => {
            server.detach()?;
            Ok("XDP detached".to_owned())
        }
    }
}
