//! Keeping a secondary zone on disk: every received version is written before it is served, as
//! a zone file sealed with its length and SHA-256, and the timer state beside it, sealed the
//! same way. Writes are atomic: a temporary file, fsync, rename, fsync of the directory.
//!
//! A zone's directory holds `vSEQ-sSERIAL.zone` files (the newest `keep` are kept) and
//! `timers`. Each file starts with one fixed-width line,
//! `; xdpdns-sealed v1 length=… sha256=…`, then exactly `length` octets: so a version file is
//! still a zone file other servers read. Loading takes the newest version whose seal holds and
//! whose records build a zone; a truncated, altered or unreadable file is reported, renamed
//! `….corrupt`, and never served, and the version before it is used.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use data_encoding::HEXLOWER;
use sha2::{Digest, Sha256};

use super::soa::Soa;
use super::timers::TimerState;
use crate::wire::name::Name;
use crate::wire::record::{rtype, Record};
use crate::zone::{Zone, ZoneSource};
use crate::zonefile::present::rdata_to_text;

const MAGIC: &str = "; xdpdns-sealed v1";
/// `MAGIC length=%020u sha256=%064x\n`.
const HEADER_LEN: usize = MAGIC.len() + 8 + 20 + 8 + 64 + 1;
const TIMERS: &str = "timers";

fn header(len: u64, sha: &[u8]) -> String {
    format!("{MAGIC} length={len:020} sha256={}\n", HEXLOWER.encode(sha))
}

/// Writes through a SHA-256 and counts.
struct Sealer<W: Write> {
    inner: W,
    sha: Sha256,
    len: u64,
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `path` atomically with a seal over what `body` writes.
pub(crate) fn write_sealed(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path.parent().expect("file in a directory");
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&[b' '; HEADER_LEN])?;
        let (sha, len) = {
            // Buffered before the seal: the hash and the file take 1 MiB at a time, not every
            // fragment a record is formatted in.
            let sealer = Sealer {
                inner: &mut f,
                sha: Sha256::new(),
                len: 0,
            };
            let mut s = BufWriter::with_capacity(1 << 20, sealer);
            body(&mut s)?;
            let Sealer { sha, len, .. } = s.into_inner().map_err(|e| e.into_error())?;
            (sha.finalize(), len)
        };
        f.seek(SeekFrom::Start(0))?;
        f.write_all(header(len, &sha).as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow!("writing {}: {e}", path.display())
    })
}

/// One record as a zone file line.
fn write_record(
    w: &mut dyn Write,
    owner: &Name,
    ttl: u32,
    t: u16,
    rdata: &[u8],
) -> std::io::Result<()> {
    writeln!(
        w,
        "{owner} {ttl} IN {} {}",
        rtype::to_string(t),
        rdata_to_text(t, rdata)
    )
}

/// The content of a sealed file, when its seal holds.
pub(crate) fn read_sealed(path: &Path) -> Result<Vec<u8>> {
    let mut data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if data.len() < HEADER_LEN || !data.starts_with(MAGIC.as_bytes()) {
        bail!("no seal header (not written by xdpdns, or cut short)");
    }
    let head = std::str::from_utf8(&data[..HEADER_LEN - 1]).map_err(|_| anyhow!("bad header"))?;
    let field = |k: &str| {
        head.split(' ')
            .find_map(|f| f.strip_prefix(k))
            .ok_or_else(|| anyhow!("header without {k}"))
    };
    let len: u64 = field("length=")?
        .parse()
        .map_err(|_| anyhow!("bad length"))?;
    let want = field("sha256=")?.to_owned();
    let body = data.split_off(HEADER_LEN);
    if body.len() as u64 != len {
        bail!(
            "truncated or extended: {} octets after the header, the seal says {len}",
            body.len()
        );
    }
    let got = HEXLOWER.encode(&Sha256::digest(&body));
    if got != want {
        bail!(
            "checksum mismatch: the content is not what was written (sha256 {got}, sealed {want})"
        );
    }
    Ok(body)
}

/// A version of the zone read back from disk.
#[derive(Debug)]
pub struct Version {
    pub path: PathBuf,
    pub serial: u32,
    pub zone: Zone,
}

/// What was found on disk at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The newest good version.
    pub version: Option<Version>,
    pub timers: Option<TimerState>,
    /// Every file that could not be used, and why.
    pub problems: Vec<String>,
}

/// The directory of one secondary zone.
#[derive(Clone, Debug)]
pub struct Store {
    pub dir: PathBuf,
    pub zone: Name,
    /// Versions kept on disk (at least 2: the newest and the one before).
    pub keep: usize,
}

impl Store {
    /// The store of `zone` in `dir` (created if missing).
    pub fn open(dir: &Path, zone: &Name) -> Result<Store> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            zone: zone.clone(),
            keep: 2,
        })
    }

    /// Version files, newest first: (sequence number, path); set-aside `….corrupt` ones only
    /// with `corrupt` (they still take their sequence numbers).
    fn versions(&self, corrupt: bool) -> Result<Vec<(u64, PathBuf)>> {
        let mut v = Vec::new();
        for e in
            fs::read_dir(&self.dir).with_context(|| format!("listing {}", self.dir.display()))?
        {
            let path = e?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let name = match name.strip_suffix(".corrupt") {
                Some(n) if corrupt => n,
                Some(_) => continue,
                None => name,
            };
            let seq = name
                .strip_prefix('v')
                .and_then(|n| n.strip_suffix(".zone"))
                .and_then(|n| n.split_once("-s"))
                .and_then(|(seq, _)| seq.parse::<u64>().ok());
            if let Some(seq) = seq {
                v.push((seq, path));
            }
        }
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(v)
    }

    /// Writes a new version (before it is served); older versions beyond `keep` are removed.
    pub fn save_version(&self, records: &[Record]) -> Result<PathBuf> {
        let soa = records
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.owner == self.zone)
            .and_then(Soa::from_record)
            .ok_or_else(|| anyhow!("zone {}: no SOA to store", self.zone))?;
        self.write_version(soa.serial, |w| {
            for r in records {
                write_record(w, &r.owner, r.ttl, r.rtype, &r.rdata)?;
            }
            Ok(())
        })
    }

    /// `save_version` of a zone in memory, written from its nodes (a snapshot).
    pub fn save_zone(&self, zone: &Zone) -> Result<PathBuf> {
        let serial = Soa::from_rdata(&zone.soa().rdatas[0])
            .ok_or_else(|| anyhow!("zone {}: no SOA to store", self.zone))?
            .serial;
        self.write_version(serial, |w| {
            let mut res = Ok(());
            zone.visit_records(|owner, t, ttl, rdata| {
                if res.is_ok() {
                    res = write_record(w, owner, ttl, t, rdata);
                }
            });
            res
        })
    }

    fn write_version(
        &self,
        serial: u32,
        records: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        let seq = self.versions(true)?.first().map_or(1, |v| v.0 + 1);
        let versions = self.versions(false)?;
        let path = self.dir.join(format!("v{seq:010}-s{serial}.zone"));
        write_sealed(&path, |w| {
            writeln!(w, "$ORIGIN {}", self.zone)?;
            records(w)
        })?;
        for (_, old) in versions.iter().skip(self.keep.max(2) - 1) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    }

    /// Writes the timer state.
    pub fn save_timers(&self, state: &TimerState) -> Result<()> {
        let text = toml::to_string(state).context("serialising the timers")?;
        write_sealed(&self.dir.join(TIMERS), |w| w.write_all(text.as_bytes()))
    }

    fn read_version(&self, path: &Path) -> Result<Version> {
        let body = read_sealed(path)?;
        let label = path.display().to_string();
        let parsed = crate::zonefile::parse_bytes(&body, &self.zone, &label)?;
        let src = ZoneSource {
            name: &label,
            locations: None,
        };
        let (zone, _) = Zone::build(self.zone.clone(), parsed.records, &src)?;
        let serial = Soa::from_rdata(&zone.soa().rdatas[0]).map_or(0, |s| s.serial);
        Ok(Version {
            path: path.to_path_buf(),
            serial,
            zone,
        })
    }

    /// Reads back the newest good version and the timers. Files that fail are renamed
    /// `….corrupt` and listed in `problems`; leftover temporary files are removed.
    pub fn load(&self) -> Result<Loaded> {
        let mut out = Loaded::default();
        for e in fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.starts_with("tmp"))
            {
                let _ = fs::remove_file(&p);
            }
        }
        for (_, path) in self.versions(false)? {
            match self.read_version(&path) {
                Ok(v) => {
                    out.version = Some(v);
                    break;
                }
                Err(e) => {
                    out.problems
                        .push(format!("{}: {e:#}; not served", path.display()));
                    let _ = fs::rename(&path, path.with_extension("zone.corrupt"));
                }
            }
        }
        let timers = self.dir.join(TIMERS);
        if timers.exists() {
            let state = read_sealed(&timers).and_then(|b| {
                let text = String::from_utf8(b).map_err(|_| anyhow!("not UTF-8"))?;
                toml::from_str::<TimerState>(&text).map_err(|e| anyhow!("{e}"))
            });
            match state {
                Ok(s) => out.timers = Some(s),
                Err(e) => out
                    .problems
                    .push(format!("{}: {e:#}; timers reset", timers.display())),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
