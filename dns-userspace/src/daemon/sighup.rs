//! SIGHUP: reloads the zone files as the control command `reload` does (the unit's
//! `ExecReload=/bin/kill -HUP $MAINPID`), off the runtime's worker threads, telling systemd
//! `RELOADING=1` and `READY=1` around it and logging the outcome. A reload that fails changes
//! nothing and the server goes on.

use std::sync::Arc;

use super::sd_notify::{self, Notifier};
use super::State;

/// Starts a reload for a SIGHUP; returns at once.
pub(super) fn reload(state: Arc<State>, notifier: Option<Arc<Notifier>>) {
    log::info!("SIGHUP: reloading the zone files");
    tokio::task::spawn_blocking(move || {
        sd_notify::tell(notifier.as_deref(), &sd_notify::reloading());
        // A reload logs what it did itself.
        if let Err(e) = super::reload(&state) {
            log::error!("SIGHUP reload failed, nothing changed: {e:#}");
        }
        sd_notify::tell(notifier.as_deref(), "READY=1");
    });
}
