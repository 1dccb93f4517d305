//! Keeping the XDP path answering across restarts (`serve --xdp-pin NAME`): under
//! `/sys/fs/bpf/xdpdns/NAME/` the program's BPF link (`link`), the program (`prog`), its tail
//! call array (`jump`) and every map of the object (`maps/NAME`) are pinned, so that the
//! program stays attached and answering from its maps when the daemon dies, even by SIGKILL;
//! the queries it passes go unanswered until userspace is back. A record beside the storage
//! (`pin_state`) says what the maps hold.
//!
//! At start (`start`), when the pinned program comes from this binary and the record vouches
//! for the pins, the program and its maps are adopted (`adopt`): kept as they are when they
//! hold the engine's answers, else published into as a reload does. Otherwise this binary's
//! program is loaded and filled, then takes the old one's place in the pinned link atomically
//! (`bpf_link_update`, `Xdp::attach_to_link`); a pinned link that cannot be used (its
//! interface is gone) is unpinned and the program attached anew.
//!
//! The rule against stale answers (`prepare`, before userspace answers anything): the pinned
//! program may go on answering only when the record is clean and names exactly the serials
//! of the zones the new daemon serves and the settings its answers depend on (NSID, CHAOS
//! answers, payload size, require-cookie, RRL). Otherwise (a zone changed, was added or
//! removed while the daemon was down, a setting changed, or a publication was cut short)
//! the pinned program is made to pass
//! everything — its configuration switched to generation 0, which no entry has, when it is
//! this binary's, else its link unpinned, which detaches it — so userspace answers until the
//! new generation serves on both paths.
//!
//! A clean stop detaches and unpins everything (`unpin`), unless `--keep-xdp` (`keep`): then
//! all stays pinned and attached for the next start to adopt.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;

use super::adopt::Adopted;
use super::pin_state::{self, PinState};
use super::xdp::{AttachMode, XdpServer};
use super::FastPath;
use crate::engine::Engine;

/// Where the instances' pins live.
pub const ROOT: &str = "/sys/fs/bpf/xdpdns";

/// The pinned link of instance `name`.
pub fn link_path(name: &str) -> Result<PathBuf> {
    Ok(instance_dir(name)?.join("link"))
}

/// The directory of instance `name`'s pins.
pub fn instance_dir(name: &str) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || name.starts_with('.')
    {
        bail!("XDP pin name {name:?}: letters, digits, '-', '_' and '.' only");
    }
    Ok(Path::new(ROOT).join(name))
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

/// The tag of the loaded program `id` (a digest of its instructions), if it is still loaded.
fn tag_of(id: u32) -> Option<u64> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .map(|p| p.tag())
}

/// Removes the file at `at`, if there is one.
fn remove(at: &Path) -> Result<()> {
    match std::fs::remove_file(at) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("unpinning {}", at.display()))
        }
        _ => Ok(()),
    }
}

/// Where an instance is pinned and the record of what its maps hold.
pub struct Pinned {
    /// The instance directory: once `hold` opened it, through the descriptor
    /// (`/proc/self/fd/N`), which reaches it without searching `/sys/fs/bpf` (root's, 0700)
    /// after `--user` dropped root.
    pub dir: PathBuf,
    /// The record's file (`pin_state::path`).
    pub record: PathBuf,
    pub state: PinState,
    held: Option<std::os::fd::OwnedFd>,
}

impl Pinned {
    fn new(dir: PathBuf, record: PathBuf, state: PinState) -> Pinned {
        Pinned {
            dir,
            record,
            state,
            held: None,
        }
    }

    /// Opens the instance directory and refers to it through its descriptor from now on.
    fn hold(&mut self) -> Result<()> {
        let f = std::fs::File::open(&self.dir)
            .with_context(|| format!("opening {}", self.dir.display()))?;
        let fd = std::os::fd::OwnedFd::from(f);
        self.dir = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ));
        self.held = Some(fd);
        Ok(())
    }
}

impl FastPath {
    /// Removes every pin of the instance (`detach`, a clean stop): the link's pin was the
    /// last reference but ours.
    pub fn unpin(&mut self) {
        if let Some(p) = &self.pin {
            self.server.unpin(&p.dir.join("link"));
        }
    }
}

impl FastPath {
    /// Marks the pinned maps' record not clean before a publication changes them; returns the
    /// record as it was (`pin_restore`). A record that cannot be written fails the
    /// publication: it would vouch for maps that changed.
    pub(super) fn pin_dirty(&mut self) -> Result<Option<PinState>> {
        let Some(p) = self.pin.as_mut() else {
            return Ok(None);
        };
        let before = p.state.clone();
        p.state.clean = false;
        p.state.write(&p.record)?;
        Ok(Some(before))
    }

    /// Writes the record back as it was before a publication that changed nothing.
    pub(super) fn pin_restore(&mut self, before: Option<PinState>) {
        if let (Some(p), Some(before)) = (self.pin.as_mut(), before) {
            p.state = before;
            if let Err(e) = p.state.write(&p.record) {
                log::warn!("{e:#}");
            }
        }
    }

    /// Records the maps as holding `engine`'s answers (with the digest of a full
    /// publication's entries). Not written: the record stays not clean, which is safe.
    pub(super) fn pin_clean(&mut self, engine: &Engine, digest: Option<String>) {
        let (generation, half) = (self.generation, self.nsec3_half);
        let server = &mut self.server;
        let Some(p) = self.pin.as_mut() else { return };
        let program = server.program().and_then(|x| Ok(x.info()?.id()));
        let Ok(program) = program else {
            log::warn!("the XDP program's id is unknown: its pin record stays not clean");
            return;
        };
        p.state.program = program;
        p.state.maps = server.map_ids.iter().cloned().collect();
        p.state.generation = generation;
        p.state.nsec3_half = half;
        p.state.zones = pin_state::serials(engine);
        p.state.settings = pin_state::settings(engine);
        p.state.digest = digest;
        p.state.carried = server.carried.clone();
        p.state.clean = true;
        if let Err(e) = p.state.write(&p.record) {
            log::warn!("{e:#}");
        }
    }
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
            match self.replace_in_link(iface, path, runs_on_iface) {
                Ok(what) => return Ok(what),
                Err(e) => {
                    log::warn!(
                        "the XDP link pinned at {} is not adopted ({e:#}): unpinned, attaching anew",
                        path.display()
                    );
                    remove(path)?;
                }
            }
        }
        self.attach(iface, mode)?;
        self.pin_link(path)?;
        Ok(format!("XDP link pinned at {}", path.display()))
    }

    /// Takes the place of the program of the link pinned at `path`.
    fn replace_in_link(
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

    /// Pins the program, `JUMP` and every map in `dir` (replacing the previous program's):
    /// the pinned program's tail calls keep working when the daemon dies, and the next start
    /// can adopt them.
    pub(super) fn pin_all(&mut self, dir: &Path) -> Result<()> {
        let maps_dir = dir.join("maps");
        std::fs::create_dir_all(&maps_dir)
            .with_context(|| format!("creating {}", maps_dir.display()))?;
        let prog = dir.join("prog");
        remove(&prog)?;
        self.program()?
            .pin(&prog)
            .with_context(|| format!("pinning the XDP program at {}", prog.display()))?;
        let mut pins = vec![(dir.join("jump"), self.jump_id)];
        for (name, id) in &self.map_ids {
            pins.push((maps_dir.join(name), *id));
        }
        for (at, id) in pins {
            remove(&at)?;
            aya::maps::MapData::from_id(id)
                .context("opening a map of the XDP program")?
                .pin(&at)
                .with_context(|| format!("pinning {}", at.display()))?;
        }
        Ok(())
    }

    /// Removes every pin of the instance whose link is pinned at `link` (a `detach` then
    /// detaches: no other reference is left).
    pub fn unpin(&mut self, link: &Path) {
        let Some(dir) = link.parent() else { return };
        if let Ok(names) = std::fs::read_dir(dir.join("maps")) {
            for n in names.flatten() {
                let _ = std::fs::remove_file(n.path());
            }
        }
        let _ = std::fs::remove_dir(dir.join("maps"));
        for f in ["jump", "prog", "link"] {
            if let Err(e) = remove(&dir.join(f)) {
                log::error!("{e:#}");
            }
        }
        let _ = std::fs::remove_dir(dir);
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

/// Before userspace answers: makes a pinned program that may answer stale data pass
/// everything (the rule of the module doc).
pub fn prepare(engine: &Engine, name: &str, storage: &Path) -> Result<()> {
    let dir = instance_dir(name)?;
    if !dir.join("link").exists() {
        return Ok(());
    }
    let record = pin_state::path(storage, name);
    // A record vouches only for the program it names, running in the pinned link.
    let running = PinnedLink::from_pin(dir.join("link"))
        .ok()
        .and_then(|l| FdLink::from(l).info().ok())
        .map(|i| i.program_id());
    let state = PinState::read(&record).filter(|s| Some(s.program) == running);
    if state.as_ref().is_some_and(|s| s.fresh_for(engine)) {
        log::info!(
            "the XDP program pinned at {} answers for the zones' serials: it goes on answering",
            dir.display()
        );
        return Ok(());
    }
    let why = match &state {
        Some(s) if !s.clean => "a publication was cut short",
        Some(s) if s.zones != pin_state::serials(engine) => {
            "zones changed while the daemon was down"
        }
        Some(_) => "the answers' settings changed while the daemon was down",
        None => "no record of what it holds",
    };
    let ours = state
        .as_ref()
        .filter(|s| s.fingerprint == pin_state::fingerprint());
    if let Some(mut s) = ours.cloned() {
        let cfg = dir.join("maps").join(dns_common::maps::CONFIG);
        let passing = (|| -> Result<()> {
            let data = aya::maps::MapData::from_pin(&cfg)?;
            if Some(&data.info()?.id()) != s.maps.get(dns_common::maps::CONFIG) {
                bail!("its configuration map is not the one recorded");
            }
            let mut map: aya::maps::Array<_, dns_common::Config> =
                aya::maps::Array::try_from(aya::maps::Map::from_map_data(data)?)?;
            s.clean = false;
            s.write(&record)?;
            let mut c = map.get(&0, 0)?;
            c.generation = 0;
            map.set(0, c, 0)?;
            Ok(())
        })();
        match passing {
            Ok(()) => {
                log::info!(
                    "the XDP program pinned at {} passes everything until the new generation \
                     serves ({why})",
                    dir.display()
                );
                return Ok(());
            }
            Err(e) => log::warn!("{}: {e:#}", cfg.display()),
        }
    }
    // Not ours to write to: detached, by dropping its link's last reference.
    remove(&dir.join("link"))?;
    log::info!(
        "the XDP program pinned at {} is detached until this start attaches its own ({why})",
        dir.display()
    );
    Ok(())
}

/// Gives instance `name`'s pins and record to `account` (`serve --user`), for publications
/// after the drop to write the record and pin grown maps.
pub fn own(name: &str, storage: &Path, account: &crate::daemon::privilege::Account) -> Result<()> {
    let record = pin_state::path(storage, name);
    let dirs = [
        instance_dir(name)?,
        record.parent().context("no directory")?.to_owned(),
    ];
    for d in dirs {
        crate::daemon::privilege::own_storage(&d, account)?;
    }
    Ok(())
}

/// With XDP off (`--xdp-mode off`): a program pinned as `name` would go on answering from
/// maps nothing updates; it is detached and unpinned.
pub fn release(name: &str) -> Result<()> {
    let dir = instance_dir(name)?;
    if dir.join("link").exists() {
        // No program of ours to detach with: dropping every pin drops the link.
        let mut removed = 0;
        for f in ["link", "jump", "prog"] {
            removed += remove(&dir.join(f)).is_ok() as usize;
        }
        if let Ok(maps) = std::fs::read_dir(dir.join("maps")) {
            for m in maps.flatten() {
                let _ = std::fs::remove_file(m.path());
            }
        }
        let _ = std::fs::remove_dir(dir.join("maps"));
        let _ = std::fs::remove_dir(&dir);
        log::info!(
            "XDP is off: the program pinned at {} is detached and unpinned ({removed} pins)",
            dir.display()
        );
    }
    Ok(())
}

/// The counts of the pinned program in `dir` when its counters are laid out as ours.
fn pinned_counts(dir: &Path, state: Option<&PinState>) -> Vec<u64> {
    let n = dns_common::counter::COUNT as usize;
    let mut out = vec![0; n];
    let at = dir.join("maps").join(dns_common::maps::COUNTERS);
    let read = (|| -> Result<Vec<u64>> {
        let data = aya::maps::MapData::from_pin(&at)?;
        if data.info()?.max_entries() as usize != n {
            bail!("other counters");
        }
        let map: aya::maps::PerCpuArray<_, u64> =
            aya::maps::PerCpuArray::try_from(aya::maps::Map::from_map_data(data)?)?;
        (0..n as u32)
            .map(|i| Ok(map.get(&i, 0)?.iter().sum()))
            .collect()
    })();
    match read {
        Ok(v) => out = v,
        Err(e) if dir.join("link").exists() => log::info!("XDP counters not carried over: {e:#}"),
        Err(_) => {}
    }
    if let Some(s) = state.filter(|s| s.carried.len() == n) {
        for (o, c) in out.iter_mut().zip(&s.carried) {
            *o += c;
        }
    }
    out
}

/// `FastPath::start` pinned under `name` (see the module doc), its record under `storage`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    engine: &Engine,
    iface: &str,
    mode: AttachMode,
    addrs: &[std::net::IpAddr],
    port: u16,
    templates: Option<u32>,
    name: &str,
    storage: &Path,
) -> Result<FastPath> {
    let dir = instance_dir(name)?;
    let link = dir.join("link");
    ensure_bpffs()?;
    if addrs.is_empty() {
        bail!("interface {iface} has no addresses for the XDP path to answer on");
    }
    let record = pin_state::path(storage, name);
    let state = PinState::read(&record);
    let runs_on_iface = |id: u32| {
        crate::daemon::xdp_probe::attached_prog_ids(iface).is_ok_and(|ids| ids.contains(&id))
    };
    if link.exists() {
        match XdpServer::open_pinned(&dir, state.as_ref(), &runs_on_iface, iface) {
            Ok(server) => {
                let state = state.expect("checked by open_pinned");
                let shown = dir.display().to_string();
                let mut pin = Pinned::new(dir, record, state);
                pin.hold()?;
                let (mut fp, how) = FastPath::adopt(engine, server, pin, addrs, port, templates)?;
                let note = match how {
                    Adopted::Kept {
                        generation,
                        seconds,
                    } => format!(
                        "adopted the XDP program and maps pinned at {shown}: generation \
                         {generation} kept, the maps hold the zones' answers (checked in \
                         {seconds:.2}s)"
                    ),
                    Adopted::Republished {
                        generation,
                        seconds,
                        reason,
                    } => format!(
                        "adopted the XDP program and maps pinned at {shown}: republished as \
                         generation {generation} in {seconds:.2}s ({reason})"
                    ),
                };
                log::info!("{note}; XDP answering on {iface} port {port}");
                fp.start_note = Some(note);
                return Ok(fp);
            }
            Err(e) => log::info!(
                "the XDP program pinned at {} is not adopted ({e:#}): loading this binary's",
                dir.display()
            ),
        }
    }
    let carried = pinned_counts(&dir, state.as_ref());
    let fresh = PinState {
        key: state.as_ref().map_or(PinState::new().key, |s| s.key),
        ..PinState::new()
    };
    let pin = Pinned::new(dir.clone(), record, fresh);
    let mut fp = FastPath::load_pinned(engine, addrs, port, templates, pin)?;
    let what = fp
        .server
        .attach_pinned(iface, mode, &link, &runs_on_iface)?;
    for (c, o) in fp.server.carried.iter_mut().zip(carried) {
        *c += o;
    }
    fp.server.pin_all(&dir)?;
    if let Some(p) = fp.pin.as_mut() {
        p.hold()?;
    }
    let digest = fp.pin.as_ref().and_then(|p| p.state.digest.clone());
    fp.pin_clean(engine, digest);
    let note = format!("loaded this binary's XDP program and maps: {what}");
    log::info!("{note}; XDP answering on {iface} port {port}");
    fp.start_note = Some(note);
    Ok(fp)
}

/// At a clean stop: detaches (and unpins), or with `keep` leaves the pinned program attached.
pub fn stop(fp: &mut FastPath, name: Option<&str>, keep: bool) -> Result<String> {
    let path = name.map(link_path).transpose()?;
    let server = &mut fp.server;
    match (path, keep) {
        (Some(p), true) => {
            server.keep()?;
            Ok(format!(
                "XDP left attached (--keep-xdp), its program, maps and link pinned in {}",
                p.parent().unwrap_or(&p).display()
            ))
        }
        (Some(p), false) => {
            match fp.pin.as_ref().map(|p| p.dir.join("link")) {
                Some(held) => server.unpin(&held),
                None => server.unpin(&p),
            }
            // Empty now; as another user than root it stays (its parent is root's).
            let _ = p.parent().map(std::fs::remove_dir);
            server.detach()?;
            if let Some(pin) = &fp.pin {
                let _ = std::fs::remove_file(&pin.record);
            }
            Ok(format!(
                "XDP detached and {} unpinned",
                p.parent().unwrap_or(&p).display()
            ))
        }
        (None, _) => {
            server.detach()?;
            Ok("XDP detached".to_owned())
        }
    }
}
