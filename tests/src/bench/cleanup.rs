//! Everything the benchmark leaves behind if it stops early: child processes, network
//! namespaces and work directories, kept in one global registry so that the Ctrl-C handler can
//! remove them while the main thread is busy. Normal code paths deregister what they tear down
//! themselves; `emergency()` is the last resort.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

#[derive(Default)]
struct Registry {
    pids: Vec<i32>,
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pids: Vec::new(),
    netns: Vec::new(),
    dirs: Vec::new(),
});

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut g)
}

/// Spawns `cmd` and registers the child for emergency cleanup.
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as i32;
    with(|r| r.pids.push(pid));
    Ok(child)
}

/// Forgets a child that has been waited for.
pub fn forget_pid(pid: u32) {
    with(|r| r.pids.retain(|p| *p != pid as i32));
}

pub fn add_netns(name: &str) {
    with(|r| r.netns.push(name.to_owned()));
}

pub fn forget_netns(name: &str) {
    with(|r| r.netns.retain(|n| n != name));
}

pub fn add_dir(dir: PathBuf) {
    with(|r| r.dirs.push(dir));
}

pub fn forget_dir(dir: &std::path::Path) {
    with(|r| r.dirs.retain(|d| d != dir));
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL; reaps the child and deregisters it.
/// Returns whether it exited by itself with success.
pub fn terminate(child: &mut Child, grace: Duration) -> bool {
    let pid = child.id();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    forget_pid(pid);
    ok
}

/// Kills every registered child, deletes the namespaces and directories. Used by the Ctrl-C
/// handler (and safe to call more than once).
pub fn emergency() {
    let (pids, netns, dirs) = with(|r| {
        (
            std::mem::take(&mut r.pids),
            std::mem::take(&mut r.netns),
            std::mem::take(&mut r.dirs),
        )
    });
    for p in &pids {
        // SAFETY: kill(2) on children we started.
        unsafe { libc::kill(*p, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in &pids {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child, non-blocking.
            let r = unsafe { libc::waitpid(*p, &mut status, libc::WNOHANG) };
            if r != 0 {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe { libc::kill(*p, libc::SIGKILL) };
                unsafe { libc::waitpid(*p, &mut status, 0) };
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for ns in &netns {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
