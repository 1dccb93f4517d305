//! The cost of bringing the XDP maps up to date after a change to a zone, as a secondary gets
//! it by IXFR: a diff of about `changes` records (delegations added and removed, glue moved)
//! and a new SOA serial, applied to the bench zone of `n` delegations and published
//! incrementally (`FastPath::publish_change`), several times; and a diff of the same kind
//! published in full (`FastPath::publish`, a new generation of every entry, as a reload does).
//! Timed in the same run on the same loaded (not attached) program, with the ratio of the full
//! time to the median incremental one (the machine may be shared: the median of several runs). Also timed: finding the change by comparing the two versions of the zone
//! (`ZoneChange::between`), for a caller that has the new zone but not the diff's records.
//! Building the zones from records is not timed (a secondary does it in either case).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use xdpdns::engine::{Catalog, Engine, EngineConfig};
use xdpdns::fastpath::change::ZoneChange;
use xdpdns::fastpath::{FastPath, Update};
use xdpdns::wire::name::Name;
use xdpdns::wire::record::{name_len, rtype, Record};
use xdpdns::zone::{Zone, ZoneSource};

use super::json::{obj, Json};
use super::zone::{self, Rng, ORIGIN};

/// Incremental publications measured per zone size.
const INCREMENTAL_ROUNDS: usize = 5;

/// Figures for one zone size.
#[derive(Clone, Debug, Default)]
pub struct UpdateFigures {
    pub delegations: usize,
    /// Records removed and added by each diff (the SOA included).
    pub diff_records: usize,
    /// Entries of a full publication.
    pub entries: usize,
    /// The incremental publications: seconds, names compiled again, index writes.
    pub incremental_s: Vec<f64>,
    pub names: Vec<usize>,
    pub index_writes: Vec<usize>,
    pub full_s: f64,
    pub between_s: f64,
}

impl UpdateFigures {
    /// The median incremental publication time.
    pub fn incremental_median(&self) -> f64 {
        let mut v = self.incremental_s.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// Full publication time over the median incremental one.
    pub fn ratio(&self) -> f64 {
        self.full_s / self.incremental_median()
    }

    pub fn json(&self) -> Json {
        obj([
            ("delegations", self.delegations.into()),
            ("diff_records", self.diff_records.into()),
            ("entries", self.entries.into()),
            (
                "incremental_s",
                Json::Arr(self.incremental_s.iter().map(|s| (*s).into()).collect()),
            ),
            (
                "names_compiled",
                Json::Arr(self.names.iter().map(|s| (*s).into()).collect()),
            ),
            (
                "index_writes",
                Json::Arr(self.index_writes.iter().map(|s| (*s).into()).collect()),
            ),
            ("incremental_median_s", self.incremental_median().into()),
            ("full_s", self.full_s.into()),
            ("full_over_incremental", self.ratio().into()),
            ("between_s", self.between_s.into()),
        ])
    }

    pub fn line(&self) -> String {
        let list = |v: &[usize]| {
            let (lo, hi) = (v.iter().min(), v.iter().max());
            format!("{}-{}", lo.unwrap_or(&0), hi.unwrap_or(&0))
        };
        format!(
            "update {} delegations, {}-record diffs: incremental median {:.4}s of {} ({:.4}-{:.4}s; {} names, {} index writes), full {:.2}s ({} entries): full/incremental {:.0}x; comparing the zones {:.3}s",
            self.delegations,
            self.diff_records,
            self.incremental_median(),
            self.incremental_s.len(),
            self.incremental_s.iter().copied().fold(f64::INFINITY, f64::min),
            self.incremental_s.iter().copied().fold(0.0, f64::max),
            list(&self.names),
            list(&self.index_writes),
            self.full_s,
            self.entries,
            self.ratio(),
            self.between_s
        )
    }
}

/// The zone's records by owner, and its delegations.
struct Content {
    origin: Name,
    by_owner: HashMap<Name, Vec<Record>>,
    /// Live delegations: (label, has in-bailiwick glue).
    labels: Vec<(String, bool)>,
    next: usize,
}

fn rr(origin: &Name, line: &str) -> Result<Record> {
    let text = format!("$TTL 172800\n{line}\n");
    let parsed =
        xdpdns::zonefile::parse_str(&text, origin, "diff").map_err(|e| anyhow::anyhow!("{e}"))?;
    parsed.records.into_iter().next().context("a record")
}

impl Content {
    fn load(z: &zone::Zone) -> Result<Content> {
        let origin = Name::parse(ORIGIN, None).map_err(|e| anyhow::anyhow!("{e}"))?;
        let parsed =
            xdpdns::zonefile::parse_file(&z.path, &origin).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut by_owner: HashMap<Name, Vec<Record>> = HashMap::new();
        for r in parsed.records {
            by_owner.entry(r.owner.clone()).or_default().push(r);
        }
        let labels = (z.labels.iter().enumerate())
            .map(|(i, l)| (l.clone(), i % 2 == 0))
            .collect();
        Ok(Content {
            origin,
            by_owner,
            labels,
            next: 0,
        })
    }

    fn zone(&self) -> Result<Zone> {
        let records: Vec<Record> = self.by_owner.values().flatten().cloned().collect();
        let src = ZoneSource {
            name: "bench update",
            locations: None,
        };
        Ok(Zone::build(self.origin.clone(), records, &src)?.0)
    }

    fn name(&self, s: &str) -> Result<Name> {
        Name::parse(s, Some(&self.origin)).map_err(|e| anyhow::anyhow!("{s}: {e}"))
    }

    /// A diff of at least `changes` records plus the new SOA; applied to the content.
    fn diff(&mut self, rng: &mut Rng, changes: usize) -> Result<(Vec<Record>, Vec<Record>)> {
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        while removed.len() + added.len() < changes {
            match rng.below(10) {
                0..=3 => {
                    self.next += 1;
                    let l = format!("update{}", self.next);
                    added.push(rr(&self.origin, &format!("{l} NS ns1.{l}"))?);
                    added.push(rr(
                        &self.origin,
                        &format!(
                            "ns1.{l} A 198.18.{}.{}",
                            self.next / 250 % 250,
                            self.next % 250
                        ),
                    )?);
                    self.labels.push((l, true));
                }
                4..=6 => {
                    let i = rng.below(self.labels.len() as u64) as usize;
                    let (l, _) = self.labels.swap_remove(i);
                    for owner in [l.clone(), format!("ns1.{l}"), format!("ns2.{l}")] {
                        if let Some(rs) = self.by_owner.get(&self.name(&owner)?) {
                            removed.extend(rs.iter().cloned());
                        }
                    }
                }
                _ => {
                    let glued: Vec<&(String, bool)> = self.labels.iter().filter(|l| l.1).collect();
                    let (l, _) = glued[rng.below(glued.len() as u64) as usize];
                    let owner = self.name(&format!("ns1.{l}"))?;
                    let old = self.by_owner[&owner]
                        .iter()
                        .find(|r| r.rtype == rtype::A)
                        .context("glue A")?
                        .clone();
                    let a = 1 + rng.below(250);
                    added.push(rr(&self.origin, &format!("ns1.{l} A 198.19.250.{a}"))?);
                    removed.push(old);
                }
            }
        }
        let apex = self.origin.clone();
        let soa = self.by_owner[&apex]
            .iter()
            .find(|r| r.rtype == rtype::SOA)
            .context("SOA")?
            .clone();
        let mut next = soa.clone();
        let at = name_len(&soa.rdata).context("SOA MNAME")?;
        let at = at + name_len(&soa.rdata[at..]).context("SOA RNAME")?;
        let serial = u32::from_be_bytes(soa.rdata[at..at + 4].try_into()?);
        next.rdata[at..at + 4].copy_from_slice(&(serial + 1).to_be_bytes());
        removed.push(soa);
        added.push(next);
        for r in &removed {
            if let Some(v) = self.by_owner.get_mut(&r.owner) {
                v.retain(|x| x != r);
                if v.is_empty() {
                    self.by_owner.remove(&r.owner);
                }
            }
        }
        for r in &added {
            self.by_owner
                .entry(r.owner.clone())
                .or_default()
                .push(r.clone());
        }
        Ok((removed, added))
    }
}

fn engine_of(zone: Zone) -> Engine {
    let mut c = Catalog::new();
    c.insert(std::sync::Arc::new(zone));
    Engine::new(c, EngineConfig::default())
}

/// Measures one zone size (see the module doc).
pub fn measure(dir: &Path, n: usize, changes: usize, seed: u64) -> Result<UpdateFigures> {
    let z = zone::generate(&dir.join(format!("update-{n}")), n, false, seed)?;
    let mut content = Content::load(&z)?;
    let mut engine = engine_of(content.zone()?);
    let server = crate::SERVER_V4.into();
    let mut fp = FastPath::load(&engine, &[server], 53, None).context("loading XDP")?;
    let mut rng = Rng::new(seed ^ 0x1d1f);
    let mut fig = UpdateFigures {
        delegations: n,
        ..Default::default()
    };
    // Incremental rounds, the full one in the middle.
    for round in 0..INCREMENTAL_ROUNDS + 1 {
        let (removed, added) = content.diff(&mut rng, changes)?;
        fig.diff_records = removed.len() + added.len();
        let next = engine_of(content.zone()?);
        let apex = content.origin.clone();
        if round == INCREMENTAL_ROUNDS / 2 {
            let t = Instant::now();
            let p = fp.publish(&next)?;
            fig.full_s = t.elapsed().as_secs_f64();
            fig.entries = p.entries;
        } else {
            let (old, new) = (engine.catalog.get(&apex), next.catalog.get(&apex));
            if let (0, Some(old), Some(new)) = (round, old, new) {
                let t = Instant::now();
                let found = ZoneChange::between(old, new);
                fig.between_s = t.elapsed().as_secs_f64();
                std::hint::black_box(found);
            }
            let change = ZoneChange::from_records(apex, &removed, &added);
            let t = Instant::now();
            let p = fp.publish_change(&next, &change)?;
            fig.incremental_s.push(t.elapsed().as_secs_f64());
            match p.update {
                Update::Incremental { names, touched } => {
                    fig.names.push(names);
                    fig.index_writes.push(touched.index_writes());
                }
                other => bail!("the diff was not published incrementally: {other:?}"),
            }
        }
        engine = next;
    }
    Ok(fig)
}
