//! Least privilege: after the XDP program is attached and every socket bound (DNS, control,
//! metrics), `serve --user NAME` gives up root. Every thread of the process becomes the user
//! and group (supplementary groups cleared), keeps only the capabilities the running server
//! still uses (`KEPT`), and sets `no_new_privs`; the control socket stays root's (mode 0600)
//! and its clients are checked by their credentials (`peer_allowed`).
//!
//! Credentials and capabilities are per thread in Linux; glibc's `setresuid` changes every
//! thread, but nothing does that for `capset`, `PR_SET_KEEPCAPS` or `PR_SET_NO_NEW_PRIVS`. So,
//! as libcap's psx does, each thread is signalled and makes the whole change itself with raw
//! system calls (async-signal-safe), and the process's threads are then read back from
//! `/proc/self/task` until every one has the new credentials; any failure stops the daemon,
//! which never runs half dropped. `libc` is used for this rather than the `caps` crate, whose
//! calls change only the calling thread.
//!
//! What the capabilities are for, found by testing on kernel 6.18 (`tests/privilege.rs`, and
//! the same test run with each of them left out): serving, reloads and secondary zones'
//! publications into the maps (updates through the maps' descriptors), reading the promotion
//! ring buffer and detaching at stop need none of them. Loading the program again when the
//! zones outgrow its maps (`fastpath::FastPath::publish`) needs all three: `CAP_BPF` to create
//! maps and load, `CAP_PERFMON` for the verifier to take the program's pointer arithmetic
//! (EACCES without it), and `CAP_NET_ADMIN` because XDP is a networking program type (EPERM
//! at load without it). Without them that publication would fail — logged, the old version
//! still served on both paths — so they are kept.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The capabilities kept after the drop.
pub const KEPT: &[(u32, &str)] = &[
    (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    (CAP_PERFMON, "CAP_PERFMON"),
    (CAP_BPF, "CAP_BPF"),
];

/// The mask of `KEPT`, as /proc/PID/status shows CapEff and CapPrm.
pub fn kept_mask() -> u64 {
    KEPT.iter().fold(0, |m, (c, _)| m | 1 << c)
}

/// The user to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Looks `name` up in the user database (its primary group is the group used).
    pub fn lookup(name: &str) -> Result<Account> {
        let user = nix::unistd::User::from_name(name)
            .with_context(|| format!("looking up user {name}"))?
            .ok_or_else(|| anyhow!("no user {name} (the Debian package creates xdpdns)"))?;
        if user.uid.is_root() {
            bail!("--user {name} is root: nothing would be dropped");
        }
        Ok(Account {
            name: name.to_owned(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }
}

/// The control socket: root's, mode 0600 (called once it is bound, before the drop).
pub fn restrict_control_socket(path: &Path) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of control socket {}", path.display()))
}

/// Whether the peer of a control connection may use it: root, or the daemon's own user
/// (SO_PEERCRED). Refused when its credentials cannot be read; refusals are logged at most
/// once per 10 s (a local user could otherwise fill the log).
pub fn peer_allowed(stream: &impl AsRawFd) -> bool {
    static LOGGED: AtomicU64 = AtomicU64::new(0);
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let why = match nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) if c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw() => return true,
        Ok(c) => format!("uid {} (pid {}) may not use it", c.uid(), c.pid()),
        Err(e) => format!("the peer's credentials cannot be read: {e}"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now >= LOGGED.load(Ordering::Relaxed) + 10 {
        LOGGED.store(now, Ordering::Relaxed);
        log::warn!("control socket: connection refused: {why}");
    }
    false
}

/// The storage directory and what is in it become the user's (it is the daemon's own state:
/// the secondary zones' versions, journals and timers), before the drop.
pub fn own_storage(storage: &Path, account: &Account) -> Result<()> {
    fn walk(p: &Path, uid: u32, gid: u32) -> Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))
            .with_context(|| format!("giving {} to uid {uid}", p.display()))?;
        if p.symlink_metadata()?.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    std::fs::create_dir_all(storage)
        .with_context(|| format!("creating storage {}", storage.display()))?;
    walk(storage, account.uid, account.gid)
}

// What every thread applies, set before the signals go out.
static UID: AtomicU32 = AtomicU32::new(0);
static GID: AtomicU32 = AtomicU32::new(0);
static CAPS: AtomicU64 = AtomicU64::new(0);
/// The first errno a thread met (0: none).
static FAILED: AtomicI32 = AtomicI32::new(0);

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// The change of one thread, in raw system calls only (it runs in a signal handler).
fn apply_here() {
    let (uid, gid, caps) = (
        UID.load(Ordering::SeqCst),
        GID.load(Ordering::SeqCst),
        CAPS.load(Ordering::SeqCst),
    );
    let fail = |what: i32| {
        let _ = FAILED.compare_exchange(0, what, Ordering::SeqCst, Ordering::SeqCst);
    };
    unsafe {
        // A thread made by one that changed already has changed too.
        if libc::syscall(libc::SYS_getuid) as u32 == uid {
            return;
        }
        let data = [
            CapData {
                effective: caps as u32,
                permitted: caps as u32,
                inheritable: 0,
            },
            CapData {
                effective: (caps >> 32) as u32,
                permitted: (caps >> 32) as u32,
                inheritable: 0,
            },
        ];
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let steps: [&dyn Fn() -> libc::c_long; 7] = [
            &|| libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0).into(),
            &|| libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
            &|| libc::syscall(libc::SYS_setresgid, gid, gid, gid),
            &|| libc::syscall(libc::SYS_setresuid, uid, uid, uid),
            &|| libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0).into(),
            &|| libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()),
            &|| libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into(),
        ];
        for step in steps {
            if step() != 0 {
                fail(errno());
                return;
            }
        }
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    let saved = errno();
    apply_here();
    // Restore errno for the code the signal interrupted.
    unsafe { *libc::__errno_location() = saved };
}

/// One thread's credentials as /proc shows them: (Uid line, CapEff, CapPrm, NoNewPrivs).
fn thread_state(tid: &str) -> Option<(Vec<u32>, u64, u64, bool)> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .map(str::to_owned)
    };
    let uids = field("Uid:")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let hex = |k: &str| field(k).and_then(|v| u64::from_str_radix(&v, 16).ok());
    Some((
        uids,
        hex("CapEff:")?,
        hex("CapPrm:")?,
        field("NoNewPrivs:")? == "1",
    ))
}

/// Threads not yet changed (or whose change did not take).
fn pending(account: &Account, caps: u64) -> Result<Vec<libc::pid_t>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").context("listing the threads")? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some((uids, eff, prm, nnp)) = thread_state(&name) else {
            continue; // ended meanwhile
        };
        if uids != [account.uid; 4] || eff != caps || prm != caps || !nnp {
            out.push(name.parse().context("thread id")?);
        }
    }
    Ok(out)
}

/// Becomes `account` with only `KEPT`, in every thread (see the module's documentation).
pub fn drop_to(account: &Account) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("--user {} needs the server started as root", account.name);
    }
    let caps = kept_mask();
    UID.store(account.uid, Ordering::SeqCst);
    GID.store(account.gid, Ordering::SeqCst);
    CAPS.store(caps, Ordering::SeqCst);
    FAILED.store(0, Ordering::SeqCst);
    let sig = libc::SIGRTMIN() + 6;
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error()).context("installing the signal handler");
        }
    }
    let pid = std::process::id() as libc::pid_t;
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
    apply_here();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let failed = FAILED.load(Ordering::SeqCst);
        if failed != 0 {
            bail!(
                "dropping to user {}: {}",
                account.name,
                std::io::Error::from_raw_os_error(failed)
            );
        }
        let left = pending(account, caps)?;
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "dropping to user {}: threads {left:?} did not change",
                account.name
            );
        }
        for tid in left.into_iter().filter(|&t| t != me) {
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let kept: Vec<&str> = KEPT.iter().map(|(_, n)| *n).collect();
    log::info!(
        "running as user {} (uid {}, gid {}) with {}; no_new_privs",
        account.name,
        account.uid,
        account.gid,
        kept.join(", ")
    );
    Ok(())
}

/// After the drop: what the server must still write (storage) and read (zone files) is
/// writable and readable, or the start fails with the fix named.
pub fn check_access(storage: Option<&Path>, zone_files: &[&Path], account: &Account) -> Result<()> {
    let probe = |p: &Path, mode: i32| {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL");
        unsafe { libc::access(c.as_ptr(), mode) == 0 }
    };
    if let Some(storage) = storage.filter(|s| !probe(s, libc::W_OK | libc::X_OK)) {
        bail!(
            "storage {} is not writable by user {} (chown -R {}: {})",
            storage.display(),
            account.name,
            account.name,
            storage.display()
        );
    }
    for f in zone_files {
        if !probe(f, libc::R_OK) {
            bail!(
                "zone file {} is not readable by user {}: a reload would fail",
                f.display(),
                account.name
            );
        }
    }
    Ok(())
}
