//! The journal of live record changes to zones served from files, as Knot keeps one beside a
//! zone file: `record add|del` appends each change (synced) before it is served, and every load
//! of the zone file — at start and on each reload — replays the journal over it, so that a
//! restart or a reload keeps the changes.
//!
//! The journal of zone `Z` is `STORAGE/file-zones/Z.journal` (`Z` as the secondary zones'
//! directories name it), text: a header line `xdpdns-journal 1 ZONE`, then per change a line
//! `change FROM TO` (the serials) and the record line (`add OWNER TTL TYPE RDATA`).
//!
//! The zone file wins when its serial is not the one the journal starts from (the operator
//! edited the file and changed its serial, or put the changes in it): the journal is then moved
//! aside (`.journal.dropped`, nothing is deleted) with a log line, and the file is served as it
//! is. A change whose last line was torn by a crash (it was never acknowledged nor served) is
//! left out with a warning. Any other fault in a journal stops the zone's load with an error
//! naming the journal: nothing is served that the operator did not ask for.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};

use super::record::{self, Applied, Op, RecordChange};
use super::secondary::zone_dir;
use crate::engine::Catalog;
use crate::wire::name::Name;
use crate::zone::load::{load_zone, ZoneSpec};
use crate::zone::Zone;

/// First word of a journal's header, and its format version.
const MAGIC: &str = "xdpdns-journal 1";

/// The journal of file zone `apex` under `storage`.
pub fn journal_path(storage: &Path, apex: &Name) -> PathBuf {
    let dir = zone_dir(&storage.join("file-zones"), apex);
    PathBuf::from(format!("{}.journal", dir.display()))
}

/// Appends `change` (from serial `applied.from` to `applied.to`) to the journal at `path`, and
/// syncs it; returns the journal's length before, for `truncate`.
pub fn append(path: &Path, apex: &Name, change: &RecordChange, applied: &Applied) -> Result<u64> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening journal {}", path.display()))?;
    let before = f.metadata()?.len();
    let mut text = String::new();
    if before == 0 {
        text.push_str(&format!("{MAGIC} {apex}\n"));
    }
    text.push_str(&format!(
        "change {} {}\n{change}\n",
        applied.from, applied.to
    ));
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .with_context(|| format!("writing journal {}", path.display()))?;
    Ok(before)
}

/// Cuts the journal at `path` back to `len` bytes (a change that could not be served).
pub fn truncate(path: &Path, len: u64) {
    let cut = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|_| f.sync_data()));
    if let Err(e) = cut {
        log::error!(
            "journal {}: cannot take back a change that was not served: {e}",
            path.display()
        );
    }
}

/// One journal entry.
struct Entry {
    from: u32,
    to: u32,
    change: RecordChange,
}

/// What a journal holds: its complete entries, and where they end when a torn change follows
/// them (its length to cut the file back to).
struct Parsed {
    entries: Vec<Entry>,
    torn_at: Option<u64>,
}

/// The entries of the journal text `text` of zone `apex`.
fn parse(text: &str, apex: &Name, label: &str) -> Result<Parsed> {
    // Complete lines, with the offset after each.
    let mut lines = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        at += l.len();
        match l.strip_suffix('\n') {
            Some(l) => lines.push((l, at as u64)),
            None => break,
        }
    }
    let complete = lines.last().map_or(0, |l| l.1) == text.len() as u64;
    let mut lines = lines.into_iter().enumerate();
    let mut end = match lines.next() {
        Some((_, (h, end))) if h == format!("{MAGIC} {apex}") => end,
        Some((_, (h, _))) => bail!("{label}:1: not a journal of zone {apex} (header {h:?})"),
        None => {
            let torn_at = (!text.is_empty()).then_some(0);
            return Ok(Parsed {
                entries: Vec::new(),
                torn_at,
            });
        }
    };
    let mut entries = Vec::new();
    let mut torn = !complete;
    while let Some((i, (head, _))) = lines.next() {
        let serials = head
            .strip_prefix("change ")
            .and_then(|s| s.split_once(' '))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        let Some((from, to)) = serials else {
            bail!("{label}:{}: expected `change FROM TO`, got {head:?}", i + 1);
        };
        let Some((j, (line, line_end))) = lines.next() else {
            // The header of a change whose record line was torn.
            torn = true;
            break;
        };
        let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
        let change = Op::parse(op)
            .and_then(|op| RecordChange::parse(op, apex, rest))
            .with_context(|| format!("{label}:{}", j + 1))?;
        entries.push(Entry { from, to, change });
        end = line_end;
    }
    Ok(Parsed {
        entries,
        torn_at: torn.then_some(end),
    })
}

/// `zone` (just read from its file) with its journal under `storage` replayed over it; the
/// notes to log. See the module doc for when the file wins.
pub fn replay(zone: Zone, storage: &Path) -> Result<(Zone, Vec<String>)> {
    let path = journal_path(storage, zone.apex());
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8(b).map_err(|_| anyhow!("{} is not UTF-8", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((zone, Vec::new())),
        Err(e) => return Err(e).with_context(|| format!("reading journal {}", path.display())),
    };
    let label = path.display().to_string();
    let apex = zone.apex().clone();
    let Parsed { entries, torn_at } = parse(&text, &apex, &label)?;
    let mut notes = Vec::new();
    if let Some(len) = torn_at {
        // Never acknowledged nor served: cut off, so that the next change follows the last
        // complete one.
        truncate(&path, len);
        notes.push(format!(
            "{label}: the last change was cut short (a crash while writing it) and is left out"
        ));
    }
    let file_serial = record::serial(&zone)?;
    let Some(first) = entries.first() else {
        return Ok((zone, notes));
    };
    if first.from != file_serial {
        let aside = PathBuf::from(format!("{label}.dropped"));
        std::fs::rename(&path, &aside).with_context(|| format!("moving journal {label} aside"))?;
        notes.push(format!(
            "zone {apex}: the zone file's serial {file_serial} is not the journal's base {}: \
             the file wins, {} changes in the journal dropped (moved to {})",
            first.from,
            entries.len(),
            aside.display()
        ));
        return Ok((zone, notes));
    }
    if let Some(why) = record::refusal(&zone) {
        bail!("{label}: {why}");
    }
    let mut records = record::records(&zone);
    for (n, e) in entries.iter().enumerate() {
        let applied = record::apply(&mut records, &apex, &e.change)
            .with_context(|| format!("{label}: change {} ({})", n + 1, e.change))?;
        if (applied.from, applied.to) != (e.from, e.to) {
            bail!(
                "{label}: change {} is from serial {} to {}, the zone is at {} (to {})",
                n + 1,
                e.from,
                e.to,
                applied.from,
                applied.to
            );
        }
    }
    let (next, warnings) = record::next_version(&apex, records, &zone.source)
        .with_context(|| format!("replaying journal {label}"))?;
    notes.extend(warnings);
    notes.push(format!(
        "zone {apex}: {} changes replayed from {label}, serial {file_serial} -> {}",
        entries.len(),
        record::serial(&next)?
    ));
    Ok((next, notes))
}

/// Loads the zone files of `specs`, each with its journal replayed; the first error stops the
/// load (nothing is replaced). Returns the warnings and notes to log.
pub fn load_files(specs: &[ZoneSpec], storage: &Path) -> Result<(Catalog, Vec<String>)> {
    let mut catalog = Catalog::new();
    let mut notes = Vec::new();
    for spec in specs {
        let (zone, w) = load_zone(spec).with_context(|| format!("zone {}", spec.origin))?;
        notes.extend(w);
        let (zone, n) = replay(zone, storage).with_context(|| format!("zone {}", spec.origin))?;
        notes.extend(n);
        if catalog.get(zone.apex()).is_some() {
            bail!("zone {} is configured twice", spec.origin);
        }
        catalog.insert(Arc::new(zone));
    }
    Ok((catalog, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::daemon::record::{test_zone as zone, TEST_ZONE as ZONE};

    fn add(storage: &Path, z: &Zone, text: &str) -> Zone {
        let c = RecordChange::parse(Op::Add, z.apex(), text).unwrap();
        let (next, applied, _) = record::changed(z, &c).unwrap();
        append(&journal_path(storage, z.apex()), z.apex(), &c, &applied).unwrap();
        next
    }

    fn a_count(z: &Zone, name: &str) -> usize {
        let n = Name::parse(name, None).unwrap();
        z.node(&n)
            .and_then(|(_, n)| n.get(crate::wire::record::rtype::A))
            .map_or(0, |s| s.rdatas.len())
    }

    #[test]
    fn changes_are_replayed_over_the_file_and_the_file_wins_once_its_serial_moved() {
        let dir = std::env::temp_dir().join(format!("xdpdns-changes-{}", std::process::id()));
        let z = add(&dir, &zone(ZONE), "www 60 A 192.0.2.20");
        let z = add(&dir, &z, "www 60 A 192.0.2.21");
        assert_eq!(record::serial(&z).unwrap(), 12);
        let (again, notes) = replay(zone(ZONE), &dir).unwrap();
        assert_eq!(record::serial(&again).unwrap(), 12, "{notes:?}");
        assert_eq!(a_count(&again, "www.example."), 3);
        // A torn last change is left out, the others kept.
        let path = journal_path(&dir, z.apex());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"change 12 13\nadd www.example. 60 A 192.0.2")
            .unwrap();
        let (again, notes) = replay(zone(ZONE), &dir).unwrap();
        assert_eq!(record::serial(&again).unwrap(), 12);
        assert!(notes.iter().any(|n| n.contains("cut short")), "{notes:?}");
        // The operator's file with a new serial wins; the journal is moved aside.
        let edited = ZONE.replace(" 10 3600", " 20 3600");
        let (file, notes) = replay(zone(&edited), &dir).unwrap();
        assert_eq!(record::serial(&file).unwrap(), 20);
        assert_eq!(a_count(&file, "www.example."), 1);
        assert!(
            notes.iter().any(|n| n.contains("the file wins")),
            "{notes:?}"
        );
        assert!(!path.exists());
        assert!(PathBuf::from(format!("{}.dropped", path.display())).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_journal_stops_the_load_naming_it() {
        let dir = std::env::temp_dir().join(format!("xdpdns-changes-bad-{}", std::process::id()));
        let apex = Name::parse("example.", None).unwrap();
        let path = journal_path(&dir, &apex);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            format!("{MAGIC} example.\nchange 10 11\nadd www 60 A x\n"),
        )
        .unwrap();
        let e = format!("{:#}", replay(zone(ZONE), &dir).err().unwrap());
        assert!(e.contains(&path.display().to_string()), "{e}");
        std::fs::write(&path, format!("{MAGIC} example.\nbogus\n")).unwrap();
        assert!(replay(zone(ZONE), &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
