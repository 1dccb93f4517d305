//! SIGHUP: reads the configuration file again and serves the zone files it names now — zones
//! added, removed or changed take effect (`commands::reconfigure`; without `--config`, the
//! zone files are reloaded as `reload` does) — the unit's `ExecReload=/bin/kill -HUP
//! $MAINPID`, off the runtime's worker threads, telling systemd `RELOADING=1` and `READY=1`
//! around it and logging the outcome. A configuration or zone that fails changes nothing, and
//! `status` shows why until the next reload; the server goes on.

use std::sync::Arc;

use super::sd_notify::{self, Notifier};
use super::State;

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
