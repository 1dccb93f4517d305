//! The anycast health check: whether this instance may be announced. `xdpdns health` asks the
//! running server (the control command `health`) and exits 0 with `ok ...`, or non-zero with
//! the reason on one line, for a routing daemon's check script (see the README's BIRD example)
//! to withdraw the service prefix. The instance must not be announced when:
//! - it serves no zone, or a zone is not served (SERVFAIL: a secondary zone with no copy yet,
//!   or expired under `expire-policy = honour`);
//! - XDP is configured but the kernel no longer runs its program on the interface (detached
//!   behind the daemon's back, or replaced by another program);
//! - the server does not answer on its control socket (stopped, hung: exit 2).
//!
//! A zone serving a stale copy under `serve-stale` is healthy by policy, and said so.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::control;
use super::xdp_probe::{self, XdpState};
use super::State;
use crate::xfr::timers::{ExpirePolicy, Status, Timers};

/// The first word of a healthy verdict.
const OK: &str = "ok";
/// The first word of an unhealthy one.
const UNHEALTHY: &str = "unhealthy:";

/// The control command: `ok ...` or `unhealthy: reason; reason`, on one line.
pub(super) fn verdict(state: &State) -> Result<String> {
    let mut bad: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let engine = state.served.engine.read().expect("engine lock").clone();
    let now = state.clock.now();
    let mut served = 0;
    let mut zones: Vec<_> = engine.catalog.zones().map(|z| z.apex().clone()).collect();
    zones.sort();
    for apex in &zones {
        let handle = state.secondaries.iter().find(|h| h.spec.zone == *apex);
        let status = handle.map(|h| {
            let v = h.view();
            let st = Timers::restore(v.timers.clone(), h.spec.policy).status(now);
            (st, v.timers.expires_at, h.spec.policy)
        });
        if engine.catalog.is_available(apex) {
            served += 1;
            if let Some((Status::Expired, Some(e), ExpirePolicy::ServeStale)) = status {
                notes.push(format!(
                    "{apex} stale for {} s (serve-stale)",
                    now.saturating_sub(e)
                ));
            }
            continue;
        }
        bad.push(match status {
            Some((Status::Empty, ..)) | Some((_, None, _)) => {
                format!("zone {apex} has no copy yet (SERVFAIL until its first transfer)")
            }
            Some((Status::Expired, Some(e), _)) => format!(
                "zone {apex} expired {} s ago (expire-policy honour: SERVFAIL)",
                now.saturating_sub(e)
            ),
            _ => format!("zone {apex} is not served (SERVFAIL)"),
        });
    }
    if zones.is_empty() {
        bad.push("no zones loaded".to_owned());
    }
    let xdp = match (&state.opts.iface, state.opts.xdp_mode) {
        (Some(iface), Some(_)) => match (state.served.xdp(), xdp_probe::check(iface)) {
            (None, _) => {
                bad.push(format!("XDP is not started on {iface} yet"));
                String::new()
            }
            (Some(_), Ok(XdpState::Attached { prog })) => {
                format!(", xdp attached {iface} (prog {prog})")
            }
            (Some(_), Ok(XdpState::Detached)) => {
                bad.push(format!("XDP detached from {iface}: no program attached"));
                String::new()
            }
            (Some(_), Ok(XdpState::Replaced { prog })) => {
                bad.push(format!(
                    "XDP on {iface} is program {prog}, not this server's"
                ));
                String::new()
            }
            (Some(_), Err(e)) => {
                bad.push(format!("XDP on {iface}: {e:#}"));
                String::new()
            }
        },
        _ => ", xdp off".to_owned(),
    };
    if !bad.is_empty() {
        return Ok(format!("{UNHEALTHY} {}\n", bad.join("; ")));
    }
    let mut out = format!("{OK} {served} zones served{xdp}");
    if !notes.is_empty() {
        write!(out, "; {}", notes.join("; "))?;
    }
    out.push('\n');
    Ok(out)
}

/// What `xdpdns health` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Healthy(String),
    Unhealthy(String),
    /// No answer from the server.
    Unreachable(String),
}

impl Verdict {
    /// The exit status: 0 healthy, 1 unhealthy, 2 unreachable.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Healthy(_) => 0,
            Verdict::Unhealthy(_) => 1,
            Verdict::Unreachable(_) => 2,
        }
    }

    /// The one line to print.
    pub fn line(&self) -> &str {
        match self {
            Verdict::Healthy(l) | Verdict::Unhealthy(l) | Verdict::Unreachable(l) => l,
        }
    }
}

/// Asks the server at `control`, waiting at most `timeout`.
pub async fn ask(control: &Path, timeout: Duration) -> Verdict {
    let reply = tokio::time::timeout(timeout, control::request(control, "health")).await;
    match reply {
        Err(_) => Verdict::Unreachable(format!(
            "unreachable: no answer on {} within {} s",
            control.display(),
            timeout.as_secs_f64()
        )),
        Ok(Ok(body)) => {
            let line = body.lines().next().unwrap_or_default().to_owned();
            if line.split_whitespace().next() == Some(OK) {
                Verdict::Healthy(line)
            } else {
                Verdict::Unhealthy(line)
            }
        }
        // Connecting, writing or reading failed: no server there (an I/O error at the root);
        // else the server answered with an error.
        Ok(Err(e)) if e.root_cause().downcast_ref::<std::io::Error>().is_some() => {
            Verdict::Unreachable(format!("unreachable: {}", one_line(&format!("{e:#}"))))
        }
        Ok(Err(e)) => Verdict::Unhealthy(format!(
            "{UNHEALTHY} the health check failed: {}",
            one_line(&format!("{e:#}"))
        )),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_server_on_the_socket_is_unreachable_with_exit_code_2() {
        let path = std::env::temp_dir().join(format!("xdpdns-health-{}.sock", std::process::id()));
        let v = ask(&path, Duration::from_secs(2)).await;
        assert_eq!(v.exit_code(), 2, "{v:?}");
        assert!(v.line().starts_with("unreachable: connecting to"), "{v:?}");
        assert!(!v.line().contains('\n'));
    }

    #[tokio::test]
    async fn a_server_that_accepts_and_never_answers_is_unreachable_after_the_timeout() {
        let path =
            std::env::temp_dir().join(format!("xdpdns-health-h-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let held = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let v = ask(&path, Duration::from_millis(300)).await;
        assert_eq!(v.exit_code(), 2, "{v:?}");
        assert!(v.line().contains("no answer"), "{v:?}");
        held.abort();
        let _ = std::fs::remove_file(&path);
    }
}
