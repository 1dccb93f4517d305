//! What a serving loop does after an error it cannot fix itself: wait a little longer each time
//! (exponential backoff) instead of spinning on it, and log it at most once per interval.
//! Used by the UDP workers (recvmmsg), the TCP accept loop and the control socket.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// First and longest wait of a `Backoff`.
const FIRST: Duration = Duration::from_millis(1);
pub const LONGEST: Duration = Duration::from_millis(200);

/// How often a `LogThrottle` lets a message through.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Waits that double from 1 ms to 200 ms while an error repeats.
#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// How long to wait after one more error in a row.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next.unwrap_or(FIRST);
        self.next = Some((wait * 2).min(LONGEST));
        wait
    }

    /// After a success: the next error waits the shortest time again.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

/// Lets one log message through per interval, and says how many were held back meanwhile.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogThrottle {
    pub const fn new(interval: Duration) -> LogThrottle {
        LogThrottle {
            interval,
            last: Mutex::new(None),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(messages held back since the last one)` when this one may be logged.
    pub fn ready(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held.swap(0, Ordering::Relaxed))
    }

    /// Logs `message` as a warning if the interval allows.
    pub fn warn(&self, message: std::fmt::Arguments<'_>) {
        if let Some(held) = self.ready() {
            if held > 0 {
                log::warn!("{message} ({held} more like it not logged)");
            } else {
                log::warn!("{message}");
            }
        }
    }
}

/// Whether an accept(2) error lasts until something else frees resources (descriptors,
/// memory), so that retrying at once would only spin. Other accept errors concern one
/// connection that is already gone.
pub fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// An accept loop's bookkeeping for failed accepts: counts and logs them and, for resource
/// errors, waits (backing off) before the loop accepts again.
#[derive(Debug)]
pub struct AcceptErrors {
    what: &'static str,
    backoff: Backoff,
    log: LogThrottle,
}

impl AcceptErrors {
    pub fn new(what: &'static str) -> AcceptErrors {
        AcceptErrors {
            what,
            backoff: Backoff::default(),
            log: LogThrottle::new(LOG_INTERVAL),
        }
    }

    /// After a successful accept.
    pub fn accepted(&mut self) {
        self.backoff.reset();
    }

    /// After a failed one.
    pub async fn failed(&mut self, e: &io::Error, count: &AtomicU64) {
        count.fetch_add(1, Ordering::Relaxed);
        self.log.warn(format_args!("{} accept: {e}", self.what));
        if is_resource_error(e) {
            tokio::time::sleep(self.backoff.next_wait()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_longest_wait_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..10).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 200, 200]);
        b.reset();
        assert_eq!(b.next_wait(), FIRST);
    }

    #[test]
    fn throttle_lets_one_message_through_per_interval_and_counts_the_rest() {
        let t = LogThrottle::new(Duration::from_millis(300));
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(t.ready(), Some(2));
        assert_eq!(t.ready(), None);
    }

    #[test]
    fn descriptor_and_memory_shortages_are_resource_errors() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_error(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::ECONNABORTED, libc::EPERM, libc::EINTR] {
            assert!(!is_resource_error(&io::Error::from_raw_os_error(errno)));
        }
    }
}
