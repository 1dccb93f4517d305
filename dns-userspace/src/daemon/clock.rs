//! The clock of the secondary zones' timers (refresh, retry, expire), and how often their tasks
//! look at it. Normally the system clock. Builds with the `test-support` feature (the test
//! crate's; never production) also take `XDPDNS_TEST_CLOCK_FILE=/path`: the file holds the
//! current time in seconds since the epoch, read at every look, so a test moves the daemon days
//! ahead by rewriting it — also across a kill -9 and restart. TSIG always uses the real time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::xfr::timers::{Clock, SystemClock};

/// The daemon's clock and the longest a zone task sleeps between looks at its timers.
#[derive(Clone)]
pub struct DaemonClock {
    pub clock: Arc<dyn Clock>,
    /// With the system clock a task sleeps until its next event, but at most this long (the
    /// clock may be stepped); with a test clock, which jumps, it looks often.
    pub nap: Duration,
}

impl std::fmt::Debug for DaemonClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DaemonClock(now {}, nap {:?})",
            self.clock.now(),
            self.nap
        )
    }
}

impl DaemonClock {
    pub fn system() -> DaemonClock {
        DaemonClock {
            clock: Arc::new(SystemClock),
            nap: Duration::from_secs(30),
        }
    }

    /// The system clock, or with `test-support` the test clock file when
    /// `XDPDNS_TEST_CLOCK_FILE` names one.
    pub fn from_env() -> Result<DaemonClock> {
        #[cfg(feature = "test-support")]
        if let Some(path) = std::env::var_os(test_clock::ENV) {
            let c = test_clock::FileClock::open(path.into())?;
            log::warn!(
                "test clock: the zone timers' time comes from {} (now {})",
                c.path.display(),
                c.now()
            );
            return Ok(DaemonClock {
                clock: Arc::new(c),
                nap: Duration::from_millis(100),
            });
        }
        Ok(DaemonClock::system())
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

#[cfg(feature = "test-support")]
pub mod test_clock {
    //! The clock file of the tests.

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use anyhow::{anyhow, Context as _, Result};

    use crate::net::backoff::{LogThrottle, LOG_INTERVAL};
    use crate::xfr::timers::Clock;

    /// The variable naming the clock file.
    pub const ENV: &str = "XDPDNS_TEST_CLOCK_FILE";

    /// Time read from a file at every call; when the file cannot be read, the last time read.
    pub struct FileClock {
        pub path: PathBuf,
        last: AtomicU64,
        errors: LogThrottle,
    }

    fn read(path: &PathBuf) -> Result<u64> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the test clock {}", path.display()))?;
        text.trim().parse().map_err(|_| {
            anyhow!(
                "the test clock {} holds {:?}, not seconds since the epoch",
                path.display(),
                text.trim()
            )
        })
    }

    impl FileClock {
        /// The file must hold a time now.
        pub fn open(path: PathBuf) -> Result<FileClock> {
            let now = read(&path)?;
            Ok(FileClock {
                path,
                last: AtomicU64::new(now),
                errors: LogThrottle::new(LOG_INTERVAL),
            })
        }
    }

    impl Clock for FileClock {
        fn now(&self) -> u64 {
            match read(&self.path) {
                Ok(t) => {
                    self.last.store(t, Ordering::Relaxed);
                    t
                }
                Err(e) => {
                    // Mid-rewrite, or removed: keep the time last read.
                    self.errors.warn(format_args!("{e:#}"));
                    self.last.load(Ordering::Relaxed)
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_the_file_each_time_and_keeps_the_last_good_time() {
            let path = std::env::temp_dir().join(format!("xdpdns-clock-{}", std::process::id()));
            std::fs::write(&path, "1000\n").unwrap();
            let c = FileClock::open(path.clone()).unwrap();
            assert_eq!(c.now(), 1000);
            std::fs::write(&path, "90000").unwrap();
            assert_eq!(c.now(), 90000);
            std::fs::write(&path, "soon").unwrap();
            assert_eq!(c.now(), 90000);
            std::fs::remove_file(&path).unwrap();
            assert_eq!(c.now(), 90000);
            let e = FileClock::open(path).err().unwrap();
            assert!(format!("{e:#}").contains("reading the test clock"), "{e:#}");
        }
    }
}
