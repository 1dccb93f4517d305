//! Hot-template promotion: when the zones have more answers than the XDP template cache holds,
//! the XDP program passes queries whose template is not cached and writes the template's id to
//! the `COLD` ring. This task reads the ring, counts the ids within a time window, and puts the
//! ones seen often into the cache, where the kernel's LRU evicts the least recently used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::io::{unix::AsyncFd, Interest};

/// When to promote.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Cold misses of one template within `window` that promote it.
    pub threshold: u32,
    /// Length of a counting window; counts start over after it.
    pub window: Duration,
    /// Most templates promoted per window (bounds the work a flood of distinct names causes).
    pub max_per_window: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            threshold: 2,
            window: Duration::from_secs(1),
            max_per_window: 20_000,
        }
    }
}

/// Counters of the promoter, shown by `xdpdns stats`.
#[derive(Debug, Default)]
pub struct PromoteStats {
    /// Cold template ids read from the ring.
    pub cold_seen: AtomicU64,
    /// Templates put into the cache.
    pub promoted: AtomicU64,
    /// Templates that reached the threshold after the window's budget was spent.
    pub deferred: AtomicU64,
}

/// Counts ids over a window and says which to promote.
#[derive(Debug, Default)]
pub struct Counter {
    counts: HashMap<u32, u32>,
    promoted_in_window: usize,
}

impl Counter {
    /// Notes one cold miss of `id`; true when it should be promoted now.
    pub fn note(&mut self, id: u32, policy: &Policy, stats: &PromoteStats) -> bool {
        let c = self.counts.entry(id).or_insert(0);
        *c += 1;
        if *c != policy.threshold {
            return false;
        }
        if self.promoted_in_window >= policy.max_per_window {
            stats.deferred.fetch_add(1, Relaxed);
            return false;
        }
        self.promoted_in_window += 1;
        true
    }

    /// Starts a new window.
    pub fn reset(&mut self) {
        self.counts.clear();
        self.promoted_in_window = 0;
    }
}

fn register(ring: RingBuf<MapData>) -> Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: the ring owns its map fd, which stays open and the same until the AsyncFd drops
    // the ring.
    unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("polling the COLD ring: {e}"))
}

/// Runs until cancelled: drains the ring and promotes with `promote` (which gets the ids and
/// returns how many went in). At each window it asks `renew` for the ring of a program loaded
/// again meanwhile (the zones outgrew the maps), and reads that one from then on.
pub async fn run<F, R>(
    ring: RingBuf<MapData>,
    policy: Policy,
    stats: Arc<PromoteStats>,
    mut promote: F,
    mut renew: R,
) -> Result<()>
where
    F: FnMut(&[u32]) -> Result<usize> + Send,
    R: FnMut() -> Option<RingBuf<MapData>> + Send,
{
    let mut ring = register(ring)?;
    let mut counter = Counter::default();
    let mut window = tokio::time::interval(policy.window);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = window.tick() => {
                counter.reset();
                if let Some(r) = renew() {
                    ring = register(r)?;
                }
            }
            guard = ring.readable_mut() => {
                let mut guard = guard.context("polling the COLD ring")?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    let Ok(raw) = <[u8; 4]>::try_from(&item[..]) else {
                        continue;
                    };
                    stats.cold_seen.fetch_add(1, Relaxed);
                    let id = u32::from_ne_bytes(raw);
                    if counter.note(id, &policy, &stats) {
                        batch.push(id);
                    }
                }
                guard.clear_ready();
            }
        }
        if !batch.is_empty() {
            match promote(&batch) {
                Ok(n) => {
                    stats.promoted.fetch_add(n as u64, Relaxed);
                }
                Err(e) => log::warn!("promoting {} XDP templates: {e:#}", batch.len()),
            }
            batch.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotes_at_the_threshold_once_and_within_budget() {
        let policy = Policy {
            threshold: 3,
            window: Duration::from_secs(1),
            max_per_window: 2,
        };
        let stats = PromoteStats::default();
        let mut c = Counter::default();
        let hits: Vec<bool> = (0..5).map(|_| c.note(7, &policy, &stats)).collect();
        assert_eq!(hits, [false, false, true, false, false]);
        assert!(!c.note(8, &policy, &stats) && !c.note(8, &policy, &stats));
        assert!(c.note(8, &policy, &stats));
        // The budget is spent: a third id waits for the next window.
        for _ in 0..3 {
            assert!(!c.note(9, &policy, &stats));
        }
        assert_eq!(stats.deferred.load(Relaxed), 1);
        c.reset();
        let hits: Vec<bool> = (0..3).map(|_| c.note(9, &policy, &stats)).collect();
        assert_eq!(hits, [false, false, true]);
    }
}
