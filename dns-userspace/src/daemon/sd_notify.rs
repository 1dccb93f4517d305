//! systemd's service notifications (sd_notify(3)), for `Type=notify` units: `READY=1` once the
//! zones are served on every path, `RELOADING=1`/`READY=1` around a SIGHUP reload,
//! `STOPPING=1` at SIGTERM, and `WATCHDOG=1` at half the unit's `WatchdogSec=` from a task of
//! the server's runtime, so that a runtime that no longer runs its tasks gets the service
//! restarted. The protocol is one datagram per message to the unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace); without it every call does
//! nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// Where systemd listens, and the watchdog interval it asked for.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier of `NOTIFY_SOCKET`, if set, with the watchdog of `WATCHDOG_USEC` when
    /// `WATCHDOG_PID` is unset or this process.
    pub fn from_env() -> Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None if path.starts_with('/') => SocketAddr::from_pathname(&path),
            None => bail!("NOTIFY_SOCKET={path:?} is neither a path nor @abstract"),
        }
        .with_context(|| format!("NOTIFY_SOCKET={path:?}"))?;
        let ours = std::env::var("WATCHDOG_PID")
            .map_or(true, |p| p.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && ours)
            .map(Duration::from_micros);
        let socket = UnixDatagram::unbound().context("creating the notification socket")?;
        Ok(Some(Notifier {
            socket,
            addr,
            watchdog,
        }))
    }

    /// Sends `state` (`READY=1`, `STATUS=...`, newline-separated assignments).
    pub fn notify(&self, state: &str) -> Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .with_context(|| format!("sending {state:?} to NOTIFY_SOCKET"))?;
        Ok(())
    }

    /// How often to ping: half of `WatchdogSec=`, when systemd asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }
}

/// Sends `state` when there is a notifier; a failure is logged, never fatal.
pub fn tell(notifier: Option<&Notifier>, state: &str) {
    if let Some(n) = notifier {
        if let Err(e) = n.notify(state) {
            log::warn!("{e:#}");
        }
    }
}

/// `RELOADING=1` with the monotonic time systemd wants beside it.
pub fn reloading() -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// Pings the watchdog every `every` until the task is cancelled.
pub async fn watchdog(notifier: Arc<Notifier>, every: Duration) -> Result<()> {
    log::info!("systemd watchdog: pinging every {every:?}");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        tell(Some(&notifier), "WATCHDOG=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_as_datagrams_on_the_socket() {
        let dir = std::env::temp_dir().join(format!("xdpdns-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr: SocketAddr::from_pathname(&path).unwrap(),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.notify("READY=1").unwrap();
        tell(Some(&n), &reloading());
        let mut buf = [0u8; 256];
        let got = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"READY=1");
        let got = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..got]).into_owned();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        let _ = std::fs::remove_dir_all(dir);
    }
}
