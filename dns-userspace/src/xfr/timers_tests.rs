//! The timers driven by a hand-moved clock through refreshes, failures, NOTIFY, expiry under
//! both policies, and a restart from the stored state.

use super::*;
use crate::wire::name::Name;

const T0: u64 = 1_700_000_000;

fn soa(serial: u32, refresh: u32, retry: u32, expire: u32) -> Soa {
    Soa {
        mname: Name::parse("ns.example.", None).unwrap(),
        rname: Name::parse("h.example.", None).unwrap(),
        serial,
        refresh,
        retry,
        expire,
        minimum: 60,
    }
}

#[test]
fn refresh_retry_and_expire_follow_the_soa() {
    let clock = ManualClock::new(T0);
    let mut t = Timers::new(ExpirePolicy::Honour, clock.now());
    assert!(t.due(clock.now()));
    assert_eq!(t.status(clock.now()), Status::Empty);
    assert!(!t.serves(clock.now()));
    // Before the first version, retries come every bootstrap interval.
    t.failed(clock.now());
    assert_eq!(t.state().next_check, T0 + 10);

    t.succeeded(clock.now(), &soa(1, 3600, 600, 86400), None);
    assert_eq!(t.status(clock.now()), Status::Fresh);
    assert!(t.serves(clock.now()));
    assert_eq!(t.next_event(clock.now()), T0 + 3600);
    clock.advance(3599);
    assert!(!t.due(clock.now()));
    clock.advance(1);
    assert!(t.due(clock.now()));
    assert_eq!(t.status(clock.now()), Status::Refreshing);

    // The primary is unreachable: retries every RETRY, still served until EXPIRE.
    t.failed(clock.now());
    assert_eq!(t.state().next_check, clock.now() + 600);
    assert_eq!(t.state().failures, 1);
    clock.set(T0 + 86399);
    assert!(t.serves(clock.now()));
    assert_eq!(t.next_event(clock.now()), T0 + 4200, "the retry is overdue");
    t.failed(clock.now());
    assert_eq!(t.next_event(clock.now()), T0 + 86400);
    clock.set(T0 + 86400);
    assert_eq!(t.status(clock.now()), Status::Expired);
    assert!(!t.serves(clock.now()));

    // Back in contact: fresh again, expiry restarted.
    t.succeeded(clock.now(), &soa(2, 3600, 600, 86400), None);
    assert!(t.serves(clock.now()));
    assert_eq!(t.state().expires_at, Some(clock.now() + 86400));
}

#[test]
fn serve_stale_keeps_serving_after_expiry() {
    let mut t = Timers::new(ExpirePolicy::ServeStale, T0);
    t.succeeded(T0, &soa(1, 60, 30, 120), None);
    let later = T0 + 10 * 86400;
    assert_eq!(t.status(later), Status::Expired);
    assert!(t.serves(later));
    t.failed(later);
    assert_eq!(t.state().next_check, later + 30);
}

#[test]
fn edns_expire_replaces_the_soa_expire_without_shortening() {
    let mut t = Timers::new(ExpirePolicy::Honour, T0);
    t.succeeded(T0, &soa(1, 3600, 600, 86400), Some(500));
    assert_eq!(t.state().expires_at, Some(T0 + 500));
    // A later answer granting less does not take back what was granted.
    t.succeeded(T0 + 100, &soa(1, 3600, 600, 86400), Some(100));
    assert_eq!(t.state().expires_at, Some(T0 + 500));
    t.succeeded(T0 + 400, &soa(1, 3600, 600, 86400), Some(1000));
    assert_eq!(t.state().expires_at, Some(T0 + 1400));
}

#[test]
fn notify_makes_a_check_due_unless_its_serial_is_old() {
    let mut t = Timers::new(ExpirePolicy::Honour, T0);
    t.succeeded(T0, &soa(5, 3600, 600, 86400), None);
    assert!(!t.notified(T0 + 10, Some(5)));
    assert!(!t.notified(T0 + 10, Some(4)));
    assert!(!t.due(T0 + 10));
    assert!(t.notified(T0 + 10, Some(6)));
    assert!(t.due(T0 + 10));
    let mut t = Timers::new(ExpirePolicy::Honour, T0);
    t.succeeded(T0, &soa(5, 3600, 600, 86400), None);
    assert!(t.notified(T0 + 20, None));
    assert_eq!(t.next_event(T0 + 20), T0 + 20);
}

#[test]
fn absurd_soa_timers_are_bounded() {
    let mut t = Timers::new(ExpirePolicy::Honour, T0);
    t.succeeded(T0, &soa(1, 0, 0, 86400), None);
    assert_eq!(t.state().next_check, T0 + 2);
    t.failed(T0);
    assert_eq!(t.state().next_check, T0 + 1);
    t.succeeded(T0, &soa(1, u32::MAX, u32::MAX, u32::MAX), None);
    assert_eq!(t.state().next_check, T0 + 7 * 86400);
}

#[test]
fn state_survives_a_restart() {
    let mut t = Timers::new(ExpirePolicy::Honour, T0);
    t.succeeded(T0, &soa(9, 3600, 600, 7200), Some(7000));
    t.failed(T0 + 3600);
    let text = toml::to_string(t.state()).unwrap();
    let back: TimerState = toml::from_str(&text).unwrap();
    let r = Timers::restore(back, ExpirePolicy::Honour);
    assert_eq!(r.state(), t.state());
    // Restarted after the expiry time: expired, not served, a check due.
    assert!(!r.serves(T0 + 7000));
    assert!(r.due(T0 + 7000));
    assert!(r.serves(T0 + 6999));
}
