//! The `[rrl]` section of the configuration file (in the manner of Knot's `mod-rrl` and BIND's
//! `rate-limit`). Without it nothing is limited.
//!
//! ```toml
//! [rrl]
//! rate-limit = 20        # responses a second per source prefix and response class (required)
//! window = 15            # seconds of burst a quiet prefix may send (rate-limit × window)
//! slip = 2               # every 2nd limited response is truncated (TC=1); 0: drop them all
//! ipv4-prefix = 24       # source prefix lengths of a bucket
//! ipv6-prefix = 56
//! exempt = ["198.18.0.0/15", "fd00::/8"]  # never limited
//! dry-run = false        # count what would be limited, limit nothing
//! ```

use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use super::{Limiter, Settings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RrlSection {
    pub rate_limit: u32,
    pub window: Option<u32>,
    pub slip: Option<u32>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    #[serde(default)]
    pub exempt: Vec<String>,
    #[serde(default)]
    pub dry_run: bool,
}

impl RrlSection {
    /// The settings, checked.
    pub fn settings(&self) -> Result<Settings> {
        let d = Settings::new(self.rate_limit);
        let exempt = self
            .exempt
            .iter()
            .map(|p| p.parse().with_context(|| format!("rrl exempt {p:?}")))
            .collect::<Result<_>>()?;
        let s = Settings {
            window: self.window.unwrap_or(d.window),
            slip: self.slip.unwrap_or(d.slip),
            ipv4_prefix: self.ipv4_prefix.unwrap_or(d.ipv4_prefix),
            ipv6_prefix: self.ipv6_prefix.unwrap_or(d.ipv6_prefix),
            exempt,
            dry_run: self.dry_run,
            ..d
        };
        s.check()?;
        Ok(s)
    }

    /// The limiter of these settings.
    pub fn limiter(&self) -> Result<Arc<Limiter>> {
        Ok(Arc::new(Limiter::new(self.settings()?)?))
    }
}
