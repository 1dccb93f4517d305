//! A secondary zone `tld.` seeded from a zone file (serial 7, EXPIRE 86400), whose primary
//! never answers (127.0.0.1 port 5399 in the server's namespace, where nothing listens), on
//! the daemon's test clock: for tests of what the daemon reports about a secondary zone —
//! refresh failures, expiry, serving stale or not — without a real primary.

use std::path::PathBuf;

use anyhow::Result;

use crate::TestNet;

/// The seeded zone's setting, and the test clock file it runs on.
pub struct Seeded {
    pub clock: PathBuf,
    /// The `serve` arguments: the seed file, the primary, the policy, storage.
    pub args: Vec<String>,
    /// The clock's time at start.
    pub t0: u64,
}

impl Seeded {
    /// Writes the seed zone and the clock file (at `t0`) under the test's directory.
    pub fn new(net: &TestNet, t0: u64, policy: &str) -> Result<Seeded> {
        let clock = net.dir.join("clock");
        std::fs::write(&clock, t0.to_string())?;
        let seed = net.dir.join("tld.zone");
        std::fs::write(
            &seed,
            "$TTL 300\n@ SOA ns hostmaster 7 3600 600 86400 300\n@ NS ns\nns A 198.18.0.1\n",
        )?;
        let storage = net.dir.join("storage").display().to_string();
        #[rustfmt::skip]
        let args = [
            "--zone", &format!("tld.={}", seed.display()), "--primary", "tld.=127.0.0.1@5399",
            "--expire-policy", policy, "--storage", &storage,
        ]
        .map(String::from)
        .to_vec();
        Ok(Seeded { clock, args, t0 })
    }

    /// Starts the server with the example zone, the seeded zone and `extra`.
    pub fn start(&self, net: &mut TestNet, extra: &[&str]) -> Result<()> {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra);
        let clock = self.clock.display().to_string();
        net.start_server_with(
            &[&crate::example_zone()],
            &args,
            &[("XDPDNS_TEST_CLOCK_FILE", &clock)],
        )
    }

    /// Moves the daemon's clock to `t0 + secs`.
    pub fn advance_to(&self, secs: u64) -> Result<()> {
        Ok(std::fs::write(&self.clock, (self.t0 + secs).to_string())?)
    }
}
