//! A secondary zone's refresh, retry and expire timers (RFC 1034 §4.3.5, RFC 1996, RFC 7314).
//!
//! - Every successful contact with the primary (an SOA check showing our serial current, or a
//!   transfer) schedules the next check after REFRESH and restarts the expire timer: with the
//!   SOA's EXPIRE, or with an EDNS EXPIRE value when the primary sent one (RFC 7314 §4; when
//!   several upstreams answer, the later of the two expiry times is kept).
//! - A failed attempt schedules the next one after RETRY; the expire timer keeps running.
//! - A NOTIFY makes a check due at once (unless it names a serial that is not newer).
//! - Once expired, the zone is not served under `honour` (RFC 1035 §3.3.13: the zone is "no
//!   longer authoritative") and stays served under `serve-stale`; checks go on at RETRY.
//!
//! Time comes from a [`Clock`] (seconds since the epoch), so tests move it by hand. The state is
//! serialisable, to be stored with the zone and restored at start.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::soa::{serial_newer, Soa};

/// A source of the current time in seconds since the epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        super::client::unix_now()
    }
}

/// A clock moved by hand (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now: u64) -> ManualClock {
        ManualClock(AtomicU64::new(now))
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What to do with a zone whose expire timer has run out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpirePolicy {
    /// Stop serving it (answer SERVFAIL, as BIND, Knot and NSD do).
    #[default]
    #[serde(alias = "honor")]
    Honour,
    /// Keep serving the last version.
    ServeStale,
}

/// The timers of one zone, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerState {
    /// Serial of the version held, if any.
    pub serial: Option<u32>,
    /// The SOA's REFRESH, RETRY and EXPIRE of that version.
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Last successful contact with a primary.
    pub last_success: Option<u64>,
    /// When the next check is due.
    pub next_check: u64,
    /// When the version held expires (`None` without one).
    pub expires_at: Option<u64>,
    /// Failed attempts since the last success.
    pub failures: u32,
}

/// Where a zone stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No version received yet.
    Empty,
    /// Refreshed within REFRESH.
    Fresh,
    /// The refresh is overdue (checks failing), not yet expired.
    Refreshing,
    /// The expire timer has run out.
    Expired,
}

/// Bounds on the SOA timers, so that a zone with absurd values is still checked sanely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min_refresh: u32,
    pub max_refresh: u32,
    pub min_retry: u32,
    pub max_retry: u32,
    /// Retry interval before the first version (no SOA yet).
    pub bootstrap_retry: u32,
}

impl Default for Bounds {
    /// Knot's defaults for refresh (2 s to 1 week) and retry (1 s to 1 day), with retries of
    /// 10 s before the first version.
    fn default() -> Bounds {
        Bounds {
            min_refresh: 2,
            max_refresh: 7 * 86400,
            min_retry: 1,
            max_retry: 86400,
            bootstrap_retry: 10,
        }
    }
}

/// The timer state machine of one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timers {
    state: TimerState,
    pub policy: ExpirePolicy,
    pub bounds: Bounds,
}

impl Timers {
    /// A zone without a version: a check is due at once.
    pub fn new(policy: ExpirePolicy, now: u64) -> Timers {
        Timers {
            state: TimerState {
                next_check: now,
                ..TimerState::default()
            },
            policy,
            bounds: Bounds::default(),
        }
    }

    /// From a stored state (a check already overdue stays due).
    pub fn restore(state: TimerState, policy: ExpirePolicy) -> Timers {
        Timers {
            state,
            policy,
            bounds: Bounds::default(),
        }
    }

    pub fn state(&self) -> &TimerState {
        &self.state
    }

    fn refresh_interval(&self) -> u64 {
        let b = &self.bounds;
        u64::from(self.state.refresh.clamp(b.min_refresh, b.max_refresh))
    }

    fn retry_interval(&self) -> u64 {
        let b = &self.bounds;
        if self.state.serial.is_none() {
            return u64::from(b.bootstrap_retry);
        }
        u64::from(self.state.retry.clamp(b.min_retry, b.max_retry))
    }

    /// Whether a check (SOA query, then a transfer if newer) is due.
    pub fn due(&self, now: u64) -> bool {
        now >= self.state.next_check
    }

    /// The next time something changes after `now`: a check falls due or the zone expires
    /// (a check already due: its time, in the past).
    pub fn next_event(&self, now: u64) -> u64 {
        let expiry = self.state.expires_at.filter(|&e| e > now);
        expiry.map_or(self.state.next_check, |e| e.min(self.state.next_check))
    }

    /// After a successful check or transfer: `soa` is the version now held; `expire_option` the
    /// EDNS EXPIRE the primary sent, if any.
    pub fn succeeded(&mut self, now: u64, soa: &Soa, expire_option: Option<u32>) {
        let s = &mut self.state;
        s.serial = Some(soa.serial);
        s.refresh = soa.refresh;
        s.retry = soa.retry;
        s.expire = soa.expire;
        s.last_success = Some(now);
        s.failures = 0;
        let by_soa = now + u64::from(soa.expire);
        s.expires_at = Some(match expire_option {
            // RFC 7314 §4: the option's value in place of the SOA's, never shortening the
            // time already granted (another upstream may have granted more).
            Some(v) => (now + u64::from(v)).max(s.expires_at.unwrap_or(0)),
            None => by_soa,
        });
        self.state.next_check = now + self.refresh_interval();
    }

    /// After a failed attempt.
    pub fn failed(&mut self, now: u64) {
        self.state.failures = self.state.failures.saturating_add(1);
        self.state.next_check = now + self.retry_interval();
    }

    /// A NOTIFY arrived (RFC 1996 §3.7): a check is due now, unless the NOTIFY names a serial
    /// that is not newer than ours. Returns whether a check was scheduled.
    pub fn notified(&mut self, now: u64, serial: Option<u32>) -> bool {
        if let (Some(theirs), Some(ours)) = (serial, self.state.serial) {
            if !serial_newer(theirs, ours) {
                return false;
            }
        }
        self.state.next_check = self.state.next_check.min(now);
        true
    }

    pub fn status(&self, now: u64) -> Status {
        match self.state.expires_at {
            None => Status::Empty,
            Some(e) if now >= e => Status::Expired,
            _ if self.state.failures > 0 || self.due(now) => Status::Refreshing,
            _ => Status::Fresh,
        }
    }

    /// Whether the version held may be answered from.
    pub fn serves(&self, now: u64) -> bool {
        match self.status(now) {
            Status::Empty => false,
            Status::Expired => self.policy == ExpirePolicy::ServeStale,
            Status::Fresh | Status::Refreshing => true,
        }
    }
}

#[cfg(test)]
#[path = "timers_tests.rs"]
mod tests;
