//! Persistence of a secondary zone by snapshots and the journal of received diffs, without a
//! primary: versions after the newest snapshot come back by replaying the journal; a bad diff
//! in the middle ends the replay at the newest good state; a snapshot is written after
//! `snapshot_every` diffs (and not before); a bad snapshot falls back to the one before, the
//! journal replayed from it.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::xfr::timers::ManualClock;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpdns-secondary-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn apex() -> Name {
    Name::parse("example.", None).unwrap()
}

/// Version `serial`: hosts h1..h`serial`.
fn version(serial: u32) -> Vec<Record> {
    let mut text =
        format!("$TTL 60\n@ SOA ns h {serial} 3600 600 86400 60\n@ NS ns\nns A 198.18.0.1\n");
    for i in 1..=serial {
        text.push_str(&format!("h{i} A 198.18.1.{i}\n"));
    }
    crate::zonefile::parse_str(&text, &apex(), "t")
        .unwrap()
        .records
}

fn diff(from: u32, to: u32) -> Diff {
    crate::xfr::journal::diff(&apex(), &version(from), &version(to)).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n != "journal" && n != "timers")
        .collect();
    v.sort();
    v
}

fn open(dir: &Path, clock: &ManualClock) -> (Secondary, Vec<String>) {
    let (mut s, mut problems) =
        Secondary::open(apex(), vec![], dir, ExpirePolicy::Honour, clock).unwrap();
    problems.extend(s.keep_journal(JournalLimits::default()).unwrap());
    (s, problems)
}

/// A store with the snapshot of version `snap` and journal diffs from it to `to`.
fn stored(tag: &str, snap: u32, to: u32) -> PathBuf {
    let dir = tmpdir(tag);
    let store = Store::open(&dir, &apex()).unwrap();
    store.save_version(&version(snap)).unwrap();
    let (mut j, _) = Journal::open(&dir.join("journal"), &apex(), Default::default()).unwrap();
    for s in snap..to {
        j.append(diff(s, s + 1)).unwrap();
    }
    dir
}

/// A store with the snapshot of version 1 only.
fn first_snapshot(tag: &str) -> PathBuf {
    stored(tag, 1, 1)
}

/// Takes the IXFR from the version served to version `to`, as a refresh does.
fn ixfr(s: &mut Secondary, clock: &ManualClock, to: u32) -> Event {
    let d = diff(s.serial().unwrap(), to);
    let (next, _) = s.serving(clock).unwrap().apply(&[d.change()], "t").unwrap();
    s.install_diffs(clock, next, vec![d], vec![], None).unwrap()
}

fn host(s: &Secondary, clock: &ManualClock, i: u32) -> bool {
    let z = s.serving(clock).unwrap();
    let name = Name::parse(&format!("h{i}.example."), None).unwrap();
    z.node(&name).is_some()
}

#[test]
fn the_journal_is_replayed_after_the_newest_snapshot() {
    let dir = stored("replay", 1, 4);
    let clock = ManualClock::new(1_000_000);
    let (s, problems) = open(&dir, &clock);
    assert!(
        problems.iter().all(|p| p.contains("stored timers")),
        "{problems:?}"
    );
    assert_eq!(s.serial(), Some(4));
    assert_eq!(s.snapshot(), (Some(1), 3));
    assert!(host(&s, &clock, 4));
    // The journal still serves IXFR to downstreams, from every serial it holds.
    assert_eq!(s.chain_from(1).unwrap().len(), 3);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_diff_in_the_middle_ends_the_replay_at_the_newest_good_state() {
    let dir = stored("corrupt-diff", 1, 5);
    // Flip one octet of the second diff (2 to 3).
    let jdir = dir.join("journal");
    let mut diffs: Vec<PathBuf> = fs::read_dir(&jdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    diffs.sort();
    let mut data = fs::read(&diffs[1]).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0x40;
    fs::write(&diffs[1], data).unwrap();

    let clock = ManualClock::new(1_000_000);
    let (s, problems) = open(&dir, &clock);
    assert_eq!(s.serial(), Some(2), "{problems:?}");
    assert!(host(&s, &clock, 2) && !host(&s, &clock, 3));
    let p = problems.join("\n");
    assert!(
        p.contains("checksum mismatch") && p.contains("the 2 diffs after it dropped"),
        "{p}"
    );
    // Set aside, the later diffs gone, the journal ending at the version served.
    let left: Vec<String> = fs::read_dir(&jdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().any(|n| n.ends_with(".corrupt")), "{left:?}");
    assert_eq!(s.chain_from(1).unwrap().len(), 1);
    // A refresh is due (the state on disk is older than the timers' serial, if any).
    assert!(s.due(&clock));
    // Opening again finds the same state and no new problem.
    drop(s);
    let (s, problems) = open(&dir, &clock);
    assert_eq!(s.serial(), Some(2));
    assert!(
        problems.iter().all(|p| p.contains("stored timers")),
        "{problems:?}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_snapshot_is_written_after_n_diffs_and_not_before() {
    let dir = first_snapshot("snapshot-every");
    let clock = ManualClock::new(1_000_000);
    let (mut s, _) = open(&dir, &clock);
    s.set_snapshot_every(3);
    for to in 2..=4 {
        let ev = ixfr(&mut s, &clock, to);
        assert!(
            matches!(ev, Event::Updated { serial, .. } if serial == to),
            "{ev:?}"
        );
        if to < 4 {
            // Durable by the journal alone.
            assert_eq!(files(&dir), ["v0000000001-s1.zone"], "after serial {to}");
        }
    }
    s.finish_snapshot().unwrap();
    assert_eq!(s.snapshot(), (Some(4), 0));
    assert_eq!(files(&dir), ["v0000000001-s1.zone", "v0000000002-s4.zone"]);
    drop(s);
    let (s, problems) = open(&dir, &clock);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!((s.serial(), s.snapshot()), (Some(4), (Some(4), 0)));
    // The diffs before the snapshot stay in the journal for downstreams.
    assert_eq!(s.chain_from(1).unwrap().len(), 3);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_snapshot_falls_back_to_the_one_before_and_the_journal_replays_from_it() {
    let dir = stored("bad-snapshot", 1, 6);
    let store = Store::open(&dir, &apex()).unwrap();
    let newest = store.save_version(&version(4)).unwrap();
    // Cut the newest snapshot short.
    let data = fs::read(&newest).unwrap();
    fs::write(&newest, &data[..data.len() - 10]).unwrap();
    let clock = ManualClock::new(1_000_000);
    let (s, problems) = open(&dir, &clock);
    assert!(
        problems.iter().any(|p| p.contains("truncated")),
        "{problems:?}"
    );
    assert_eq!(s.serial(), Some(6));
    assert_eq!(s.snapshot(), (Some(1), 5));
    assert!(host(&s, &clock, 6));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn without_a_journal_every_version_is_a_snapshot_before_it_serves() {
    let dir = first_snapshot("no-journal");
    let _ = fs::remove_dir_all(dir.join("journal"));
    let clock = ManualClock::new(1_000_000);
    let (mut s, _) = Secondary::open(apex(), vec![], &dir, ExpirePolicy::Honour, &clock).unwrap();
    ixfr(&mut s, &clock, 2);
    assert_eq!(s.snapshot(), (Some(2), 0));
    assert_eq!(files(&dir), ["v0000000001-s1.zone", "v0000000002-s2.zone"]);
    assert!(!dir.join("journal").exists());
    let _ = fs::remove_dir_all(&dir);
}
