//! SIGHUP: reads the configuration file again and serves the zone files it names now — zones
//! added, removed or changed take effect (`commands::reconfigure`; without `--config`, the
//! zone files are reloaded as `reload` does) — the unit's `ExecReload=/bin/kill -HUP
//! $MAINPID`, off the runtime's worker threads, telling systemd `RELOADING=1` and `READY=1`
//! around it and logging the outcome. A configuration or zone that fails changes nothing, and
//! `status` shows why until the next reload; the server goes on.
//!
//! The `[server]` settings of the answers change with the zones, on both paths at once
//! (`settings`): `nsid`, `identity`, `version`, `server-payload`, `cookie-secret` and
//! `cookie-secret-previous` (a random secret, when none is configured, stays), `require-cookie`
//! and `[rrl]` (its buckets start afresh). The others — addresses, interface, XDP mode and pin,
//! TCP limits, workers, metrics, user, storage, control socket, template cache, promotion,
//! keys — are named in the log and the reply as taking effect at the next restart.

use std::sync::Arc;

use super::sd_notify::{self, Notifier};
use super::{ServeOptions, State};
use crate::engine::EngineConfig;

/// What a configuration read again changes in the `[server]` settings.
pub(super) struct Settings {
    /// The engine settings to serve with, when any changed.
    pub engine: Option<EngineConfig>,
    /// The settings that change now, and those that wait for a restart.
    pub applied: Vec<&'static str>,
    pub restart: Vec<&'static str>,
}

/// Compares `new` with what is served (see the module doc).
pub(super) fn settings(state: &State, new: &ServeOptions) -> Settings {
    let cur = state.served.config();
    let mut next = cur.clone();
    let mut applied = Vec::new();
    let n = &new.engine;
    if n.nsid != cur.nsid {
        next.nsid = n.nsid.clone();
        applied.push("nsid");
    }
    if n.identity != cur.identity {
        next.identity = n.identity.clone();
        applied.push("identity");
    }
    if n.version != cur.version {
        next.version = n.version.clone();
        applied.push("version");
    }
    if n.server_payload != cur.server_payload {
        next.server_payload = n.server_payload;
        applied.push("server-payload");
    }
    if let (Some(c), Some(nc), Some(to)) = (&cur.cookies, &n.cookies, next.cookies.as_mut()) {
        if !new.cookie_secret_random && nc.secret != c.secret {
            to.secret = nc.secret;
            applied.push("cookie-secret");
        }
        if nc.previous != c.previous {
            to.previous = nc.previous;
            applied.push("cookie-secret-previous");
        }
        if nc.require != c.require {
            to.require = nc.require;
            applied.push("require-cookie");
        }
    }
    let same_rrl = match (&n.rrl, &cur.rrl) {
        (None, None) => true,
        (Some(a), Some(b)) => a.settings == b.settings,
        _ => false,
    };
    if !same_rrl {
        next.rrl = n.rrl.clone();
        applied.push("rrl");
    }
    let o = &state.opts;
    let mut restart = Vec::new();
    let mut differs = |changed: bool, name: &'static str| {
        if changed {
            restart.push(name);
        }
    };
    differs(new.listen != o.listen, "listen");
    differs(new.iface != o.iface, "iface");
    differs(new.xdp_mode != o.xdp_mode, "xdp-mode");
    differs(new.service_addrs != o.service_addrs, "service-addrs");
    differs(new.control != o.control, "control");
    differs(new.tcp != o.tcp, "tcp limits");
    differs(new.xdp_capacity != o.xdp_capacity, "xdp-capacity");
    differs(
        new.promote.threshold != o.promote.threshold,
        "xdp-promote-after",
    );
    differs(new.udp_workers != o.udp_workers, "udp-workers");
    differs(new.metrics != o.metrics, "metrics");
    differs(new.user != o.user, "user");
    differs(new.xdp_pin != o.xdp_pin, "xdp-pin");
    differs(new.storage != o.storage, "storage");
    let same_keys = new.keys.len() == o.keys.len() && new.keys.iter().all(|k| o.keys.contains(k));
    differs(!same_keys, "keys");
    Settings {
        engine: (!applied.is_empty()).then_some(next),
        applied,
        restart,
    }
}

/// Starts a reload for a SIGHUP; returns at once.
pub(super) fn reload(state: Arc<State>, notifier: Option<Arc<Notifier>>) {
    log::info!("SIGHUP: reading the configuration and reloading the zone files");
    tokio::task::spawn_blocking(move || {
        sd_notify::tell(notifier.as_deref(), &sd_notify::reloading());
        // A reload logs what it did itself.
        if let Err(e) = super::commands::reconfigure(&state) {
            log::error!("SIGHUP reload failed, nothing changed: {e:#}");
        }
        sd_notify::tell(notifier.as_deref(), "READY=1");
    });
}
