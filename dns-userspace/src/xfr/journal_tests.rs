//! The journal: diffs computed between real versions (the signed fixtures, changed) apply back
//! to the new version; diffs survive a restart; the bounds drop the oldest; a truncated,
//! bit-flipped or foreign file is set aside with the diffs before it; a diff that breaks the
//! chain starts a new one.

use super::*;
use crate::xfr::ixfr::apply;

const ZONES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zones/");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpdns-journal-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by(|a, b| {
        (&a.owner, a.rtype, &a.rdata, a.ttl).cmp(&(&b.owner, b.rtype, &b.rdata, b.ttl))
    });
    v
}

fn parse(text: &str) -> Vec<Record> {
    crate::zonefile::parse_str(text, &name("example."), "t")
        .unwrap()
        .records
}

fn version(serial: u32, extra: &str) -> Vec<Record> {
    parse(&format!(
        "$TTL 60\n@ SOA ns h {serial} 3600 600 86400 60\n@ NS ns\nns A 198.18.0.1\n{extra}"
    ))
}

fn soa_serial(records: &[Record]) -> u32 {
    serial(apex_soa(&name("example."), records, "t").unwrap())
}

#[test]
fn diffs_of_real_zones_apply_back() {
    for (file, apex) in [
        ("signed/nsec.example.zone", "nsec.example."),
        ("signed/knot.example.zone", "knot.example."),
    ] {
        let apex = name(apex);
        let path = format!("{ZONES}{file}");
        let old = crate::zonefile::parse_file(Path::new(&path), &apex)
            .unwrap()
            .records;
        // The new version: serial + 1, one record gone, the TTL of another changed, one added.
        let mut new = old.clone();
        let soa_at = new.iter().position(|r| is_apex_soa(r, &apex)).unwrap();
        let s = serial(&new[soa_at]);
        let n = new[soa_at].rdata.len();
        new[soa_at].rdata[n - 20..n - 16].copy_from_slice(&(s + 1).to_be_bytes());
        let gone = new.remove(new.len() - 1);
        let ttl_at = new.iter().position(|r| !is_apex_soa(r, &apex)).unwrap();
        new[ttl_at].ttl += 1;
        let mut added = new[ttl_at].clone();
        added.owner = apex.prepend(b"added").unwrap();
        new.push(added.clone());

        let d = diff(&apex, &old, &new).unwrap();
        assert_eq!((serial(&d.from), serial(&d.to)), (s, s + 1));
        assert_eq!(
            d.removed.len(),
            2,
            "{file}: the record gone and the old TTL"
        );
        assert!(d.removed.contains(&gone));
        assert_eq!(d.added.len(), 2, "{file}: the new TTL and the new record");
        assert!(d.added.contains(&added));
        let applied = apply(&old, std::slice::from_ref(&d)).unwrap();
        assert_eq!(sorted(applied), sorted(new.clone()), "{file}");
        // Nothing changed but the serial: an empty diff.
        let same = diff(&apex, &new, &new).unwrap();
        assert!(same.removed.is_empty() && same.added.is_empty());
    }
    let e = diff(&name("example."), &[], &version(1, "")).unwrap_err();
    assert!(e.to_string().contains("old version has no SOA"), "{e}");
}

/// Three versions in a row, recorded in `j`.
fn fill(j: &mut Journal) -> Vec<Vec<Record>> {
    let v = vec![
        version(1, "a A 198.18.0.2\n"),
        version(2, "a A 198.18.0.3\n"),
        version(3, "a A 198.18.0.3\nb TXT \"b\"\n"),
        version(4, "b TXT \"b\"\n"),
    ];
    for w in v.windows(2) {
        assert_eq!(j.record_versions(&w[0], &w[1]).unwrap(), None);
    }
    v
}

#[test]
fn diffs_survive_a_restart_and_chain() {
    let dir = tmpdir("restart");
    let zone = name("example.");
    let (mut j, problems) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
    assert!(problems.is_empty() && j.is_empty());
    let v = fill(&mut j);
    assert_eq!(j.span(), Some((1, 4)));
    let before = j.diffs();
    drop(j);
    let (j, problems) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(j.diffs(), before);
    assert!(j.usage() > 0);
    // From each serial, the chain leads to the newest version.
    for (i, old) in v.iter().enumerate().take(3) {
        let chain = j.chain_from(soa_serial(old)).unwrap();
        assert_eq!(chain.len(), 3 - i);
        let diffs: Vec<Diff> = chain.iter().map(|d| (**d).clone()).collect();
        assert_eq!(sorted(apply(old, &diffs).unwrap()), sorted(v[3].clone()));
    }
    assert!(j.chain_from(4).is_none() && j.chain_from(0).is_none());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bounds_drop_the_oldest() {
    let dir = tmpdir("bounds");
    let zone = name("example.");
    let depth = JournalLimits {
        max_depth: 2,
        ..JournalLimits::default()
    };
    let (mut j, _) = Journal::open(&dir, &zone, depth).unwrap();
    fill(&mut j);
    assert_eq!(j.span(), Some((2, 4)));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "the file went too");
    let one = j.diffs()[1].clone();
    let size = j.entries[1].size;
    drop(j);
    // Reopened with less room: only the newest fits.
    let room = JournalLimits {
        max_usage: size,
        max_depth: 20,
    };
    let (mut j, _) = Journal::open(&dir, &zone, room).unwrap();
    assert_eq!(j.diffs(), vec![one]);
    // A diff larger than the whole journal is not kept, and says so.
    let big: String = (0..50).map(|i| format!("n{i} TXT \"{i}\"\n")).collect();
    let note = j
        .record_versions(&version(4, "b TXT \"b\"\n"), &version(5, &big))
        .unwrap()
        .unwrap();
    assert!(note.contains("larger than the journal"), "{note}");
    assert!(j.is_empty());
    let _ = fs::remove_dir_all(&dir);
}

/// The diff files in `dir`, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "diff"))
        .collect();
    v.sort();
    v
}

#[test]
fn damaged_files_are_set_aside_with_older_diffs() {
    let zone = name("example.");
    type Damage = fn(&Path);
    let damages: [(&str, Damage, &str); 3] = [
        (
            "flip",
            |p| {
                let mut b = fs::read(p).unwrap();
                let n = b.len();
                b[n - 3] ^= 0x10;
                fs::write(p, b).unwrap();
            },
            "checksum mismatch",
        ),
        (
            "cut",
            |p| {
                let b = fs::read(p).unwrap();
                fs::write(p, &b[..b.len() - 5]).unwrap();
            },
            "truncated",
        ),
        (
            "foreign",
            |p| {
                let odir = tmpdir("foreign-other");
                let (mut o, _) = Journal::open(&odir, &name("other."), Default::default()).unwrap();
                let mk = |s: u32| {
                    crate::zonefile::parse_str(
                        &format!("$TTL 60\n@ SOA ns h {s} 3600 600 86400 60\n@ NS ns\n"),
                        &name("other."),
                        "t",
                    )
                    .unwrap()
                    .records
                };
                o.record_versions(&mk(2), &mk(3)).unwrap();
                fs::copy(files(&odir).remove(0), p).unwrap();
                let _ = fs::remove_dir_all(&odir);
            },
            "not example.",
        ),
    ];
    for (tag, damage, why) in damages {
        let dir = tmpdir(tag);
        let (mut j, _) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
        fill(&mut j);
        drop(j);
        // The middle diff (2 to 3) is damaged: 1 to 2 goes with it, 3 to 4 stays.
        let f = files(&dir);
        damage(&f[1]);
        let (j, problems) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
        assert_eq!(j.span(), Some((3, 4)), "{tag}: {problems:?}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(why) && problems[0].contains("set aside"),
            "{tag}: {problems:?}"
        );
        assert!(f[1].with_extension("diff.corrupt").exists());
        assert!(!f[0].exists(), "{tag}: the diff before the gap is removed");
        // New diffs continue after the set-aside file's sequence number.
        drop(j);
        let (mut j, _) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
        j.record_versions(&version(4, "b TXT \"b\"\n"), &version(5, ""))
            .unwrap();
        assert_eq!(j.span(), Some((3, 5)));
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn breaks_in_the_chain_start_it_again() {
    let dir = tmpdir("chain");
    let zone = name("example.");
    let (mut j, _) = Journal::open(&dir, &zone, JournalLimits::default()).unwrap();
    fill(&mut j);
    // A version that does not follow serial 4 (a transfer after a gap).
    let note = j
        .record_versions(&version(7, ""), &version(8, "c A 198.18.0.9\n"))
        .unwrap()
        .unwrap();
    assert!(note.contains("does not continue"), "{note}");
    assert_eq!(j.span(), Some((7, 8)));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    // Not newer: no diff can say it; the journal is cleared.
    let note = j
        .record_versions(&version(8, ""), &version(8, "d A 198.18.0.9\n"))
        .unwrap()
        .unwrap();
    assert!(note.contains("not newer"), "{note}");
    assert!(j.is_empty());
    let bad = Diff {
        from: version(9, "")[0].clone(),
        to: version(9, "")[0].clone(),
        removed: vec![],
        added: vec![],
    };
    assert!(j.append(bad).unwrap_err().to_string().contains("newer"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn decoding_checks_every_length() {
    let zone = name("example.");
    let d = diff(&zone, &version(1, "a A 198.18.0.2\n"), &version(2, "")).unwrap();
    let body = encode(&zone, &d);
    assert_eq!(decode(&zone, &body).unwrap(), d);
    for cut in 0..body.len() {
        assert!(decode(&zone, &body[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = body.clone();
    long.push(0);
    assert!(decode(&zone, &long)
        .unwrap_err()
        .to_string()
        .contains("after"));
    // A huge record count is caught before anything is allocated for it.
    // The body ends with the count of added records (none).
    let at = body.len() - 4;
    let mut lie = body.clone();
    lie[at..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(decode(&zone, &lie)
        .unwrap_err()
        .to_string()
        .contains("more than"));
}
