//! The TCP connections waiting for a query, in the order they began to wait, so that a server
//! at its connection limit closes the one that has been idle longest and serves the newcomer
//! (as NSD and Knot do) instead of refusing it: holding every slot with idle connections
//! (slow-loris) then costs an attacker a connection per newcomer, and legitimate clients,
//! which send their query at once, are never the longest idle.
//!
//! A connection is idle from the end of one answer (or from its accept) until a whole query
//! has been read, a query half sent included; while a query is answered or its answer
//! written it is not, so only the write timeout ends a slow reader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The idle connections, by the sequence number of their wait.
#[derive(Debug, Default)]
pub struct Idle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    waiting: BTreeMap<u64, Arc<Notify>>,
}

/// One connection's wait; leaves the set on drop.
#[derive(Debug)]
pub struct Waiting {
    idle: Arc<Idle>,
    seq: u64,
    evict: Arc<Notify>,
}

impl Idle {
    pub fn new() -> Arc<Idle> {
        Arc::new(Idle::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection begins to wait for a query.
    pub fn wait(self: &Arc<Self>) -> Waiting {
        let evict = Arc::new(Notify::new());
        let mut s = self.lock();
        let seq = s.next;
        s.next += 1;
        s.waiting.insert(seq, evict.clone());
        Waiting {
            idle: self.clone(),
            seq,
            evict,
        }
    }

    /// Tells the connection idle longest to close; false when none is idle.
    pub fn evict_oldest(&self) -> bool {
        let oldest = self.lock().waiting.pop_first();
        match oldest {
            Some((_, evict)) => {
                // Stored if the connection is not polling yet: it closes when it does.
                evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Connections idle now.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Waiting {
    /// Resolves when the server wants this connection closed to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.idle.lock().waiting.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_longest_idle_is_evicted_first_and_busy_ones_never() {
        let idle = Idle::new();
        let first = idle.wait();
        let second = idle.wait();
        let busy = idle.wait();
        drop(busy);
        assert_eq!(idle.len(), 2);
        assert!(idle.evict_oldest());
        let quick = Duration::from_millis(100);
        tokio::time::timeout(quick, first.evicted())
            .await
            .expect("the first is told to close");
        assert!(
            tokio::time::timeout(quick, second.evicted()).await.is_err(),
            "the second is not"
        );
        assert!(idle.evict_oldest());
        assert!(!idle.evict_oldest(), "none left idle");
        drop((first, second));
        assert!(idle.is_empty());
    }
}
