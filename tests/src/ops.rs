//! Helpers of the operations tests (tests/tests/ops_*.rs): `systemd-analyze verify` of a unit
//! with its ExecStart pointed at a given binary, and a daemon the test starts itself — another
//! binary, or under a wrapper such as setpriv — in the server's namespace, stopped on drop.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::TestNet;

/// `systemd-analyze verify` of `unit` (written to `dir` with `/usr/sbin/xdpdns` replaced by
/// `bin`): Ok, or what it said. It exits 0 on unknown or unparsable directives too, so any
/// message at all is a failure.
pub fn verify_unit(dir: &Path, unit: &str, bin: &Path) -> Result<(), String> {
    let path = dir.join("xdpdns.service");
    let text = unit.replace("/usr/sbin/xdpdns", &bin.display().to_string());
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    // --man=no: the man page is not installed where the test runs.
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .map_err(|e| format!("systemd-analyze (bootstrap installs systemd): {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// A daemon started by the test in the server's namespace, stopped (SIGTERM) on drop.
pub struct Daemon(pub Child);

impl Daemon {
    /// Runs `program args` in the server's namespace, stderr to `log`.
    pub fn spawn(net: &TestNet, program: &Path, args: &[&str], log: &Path) -> Result<Daemon> {
        let log = std::fs::File::create(log)?;
        let child = net
            .in_ns_cmd(&net.server_ns, program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Daemon(child))
    }

    /// Waits until the server answers on the test's control socket and its XDP maps (when
    /// XDP is on) are filled (at most 30 s).
    pub fn wait_ready(&mut self, net: &TestNet, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while net
            .ctl("status")
            .map_or(true, |s| s.contains("xdp filling"))
        {
            let exited = self.0.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                bail!(
                    "not serving ({exited:?}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = crate::terminate_within(&mut self.0, Duration::from_secs(10));
    }
}
