//! Incremental publication of a change to one zone (a secondary's IXFR, say): the names the
//! change reaches (`affected`) are compiled with the engine last published and with the new
//! one; the entries that differ are written within the current generation (`update`), and the
//! dependency index of the zone follows (`deps`).
//!
//! A name's exact and NODATA entries are rewritten as a set, under the next epoch, whenever
//! any of them changes; its suffix entries switch to that epoch. Before writing, every entry
//! to be replaced or removed is read back from the maps and must hold what the last
//! publication wrote, and every entry to be inserted must be absent: should the maps and this
//! bookkeeping ever disagree, the change is published in full instead. So are changes that
//! reach too many names, or zone-wide data (see `affected`).
//!
//! The maps are written before the caller switches its userspace engine, as a reload does: a
//! failed update is undone and the old engine stays in use with the old maps, and during the
//! moment between the two switches each path gives answers of one version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use dns_common::{AnswerRef, EPOCH_NONE};

use super::affected::affected;
use super::change::ZoneChange;
use super::compile::{compile_name, index_memory, Entries};
use super::deps::ZoneDeps;
use super::epoch;
use super::nsec3::{prepare, ZoneNsec3};
use super::templates::Body;
use super::update::{self, Touched, Write};
use super::xdp::XdpServer;
use super::{FastPath, Flip, Published, Update};
use crate::engine::{Engine, EngineConfig};
use crate::wire::name::Name;
use crate::zone::Zone;

/// Whether two engines serve zones with the same apexes.
pub(super) fn same_apexes(a: &Engine, b: &Engine) -> bool {
    a.catalog.zones().count() == b.catalog.zones().count()
        && a.catalog.zones().all(|z| b.catalog.get(z.apex()).is_some())
}

fn same_config(a: &EngineConfig, b: &EngineConfig) -> bool {
    a.server_payload == b.server_payload
        && a.nsid == b.nsid
        && a.identity == b.identity
        && a.version == b.version
}

/// The entries of one name before and after.
struct Compiled {
    name: Name,
    old: Entries,
    new: Entries,
}

/// The two versions of the changed zone, and the engines serving them.
struct Versions<'a> {
    old_engine: &'a Engine,
    old: &'a Zone,
    new_engine: &'a Engine,
    new: &'a Zone,
    /// The zone's NSEC3 data in the generation (the same before and after).
    nsec3: Option<&'a ZoneNsec3>,
}

/// Compiles `names` before and after, on the threads the process may use.
fn compile_names(
    v: &Versions<'_>,
    deps: &ZoneDeps,
    child_delta: &HashMap<Name, i64>,
    names: &[Name],
    generation: u16,
) -> Vec<Compiled> {
    let one = |name: &Name| Compiled {
        name: name.clone(),
        old: compile_name(
            v.old_engine,
            v.old,
            name,
            deps.has_children(name, 0),
            generation,
            v.nsec3,
        ),
        new: compile_name(
            v.new_engine,
            v.new,
            name,
            deps.has_children(name, child_delta.get(name).copied().unwrap_or(0)),
            generation,
            v.nsec3,
        ),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = names.len().div_ceil(threads).max(256);
    if names.len() <= chunk {
        return names.iter().map(one).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("compiler thread"))
            .collect()
    })
}

fn suffix_body<'a>(e: &'a Entries, key: &super::SuffixKey) -> Option<&'a Body> {
    e.suffix.iter().find(|(k, _)| k == key).map(|(_, b)| b)
}

fn with_epoch(mut r: AnswerRef, e: u16) -> AnswerRef {
    r.kind = epoch::with_epoch(r.kind, e);
    r
}

/// The writes that take the maps from the old entries of names to the new ones, with the new
/// templates acquired; `Err` names an entry whose template the store does not hold.
struct Plan {
    writes: Vec<Write>,
    /// New template ids, to cache before anything refers to them.
    fresh: Vec<u32>,
    /// Epochs of the names after the update.
    epochs: Vec<(Name, u16)>,
}

impl FastPath {
    /// Publishes `engine`, which differs from the engine last published only by `change` to
    /// the zone `change.apex`, by rewriting just the entries the change reaches; falls back to
    /// a full publication (see `Update::Full`'s reason) when that cannot be bounded or is
    /// not cheaper. On success the caller switches its userspace engine to `engine`; on an
    /// error the maps are as they were, and the caller keeps its engine.
    pub fn publish_change(&mut self, engine: &Engine, change: &ZoneChange) -> Result<Published> {
        self.publish_change_switching(engine, change, &mut |_| {})
    }

    /// `publish_change`, calling `switched` around the XDP path's switch to `engine`
    /// (`Flip::Before` before the first index write, `Flip::After` after the last, before the
    /// bookkeeping), for the caller to switch its userspace engine then. `After` is not called
    /// when it fails.
    pub fn publish_change_switching(
        &mut self,
        engine: &Engine,
        change: &ZoneChange,
        switched: &mut dyn FnMut(Flip),
    ) -> Result<Published> {
        self.publish_change_inner(engine, change, &mut |_| Ok(()), switched)
    }

    /// `publish_change`, calling `observe` after every index write of an incremental update
    /// (tests run queries against every intermediate state of the maps); an error it returns
    /// fails the update as a failed write would.
    pub fn publish_change_observed(
        &mut self,
        engine: &Engine,
        change: &ZoneChange,
        observe: &mut dyn FnMut(&mut XdpServer) -> Result<()>,
    ) -> Result<Published> {
        self.publish_change_inner(engine, change, observe, &mut |_| {})
    }

    fn publish_change_inner(
        &mut self,
        engine: &Engine,
        change: &ZoneChange,
        observe: &mut dyn FnMut(&mut XdpServer) -> Result<()>,
        switched: &mut dyn FnMut(Flip),
    ) -> Result<Published> {
        let t = Instant::now();
        // The pinned maps' record: not clean while they change (`pin_state`).
        self.pin_dirty()?;
        let reason = match self.try_incremental(engine, change, t, observe, switched)? {
            Ok(p) => {
                self.pin_clean(engine, None);
                return Ok(p);
            }
            Err(reason) => reason,
        };
        log::info!("zone {}: publishing XDP in full: {reason}", change.apex);
        let mut p = self.publish_switching(engine, switched)?;
        p.update = Update::Full {
            reason: Some(reason),
        };
        Ok(p)
    }

    /// `Ok(Err(reason))`: the change needs a full publication.
    fn try_incremental(
        &mut self,
        engine: &Engine,
        change: &ZoneChange,
        t: Instant,
        observe: &mut dyn FnMut(&mut XdpServer) -> Result<()>,
        switched: &mut dyn FnMut(Flip),
    ) -> Result<Result<Published, String>> {
        let last = self.last.clone();
        if self.generation == 0 || !same_config(&last.config, &engine.config) {
            return Ok(Err("the engine settings changed".into()));
        }
        if !same_apexes(&last, engine) {
            return Ok(Err("the set of zones changed".into()));
        }
        let others_changed = engine.catalog.zones().any(|z| {
            z.apex() != &change.apex
                && !last
                    .catalog
                    .get(z.apex())
                    .is_some_and(|o| Arc::ptr_eq(o, z))
        });
        if others_changed {
            return Ok(Err("zones other than the changed one differ".into()));
        }
        let (Some(old), Some(new)) = (
            last.catalog.get(&change.apex),
            engine.catalog.get(&change.apex),
        ) else {
            return Ok(Err(format!("zone {} is not served", change.apex)));
        };
        // The NSEC3 arrays are written per generation: a changed NSEC3 or NSEC chain (`nsec`),
        // or changed apex answers assembled from parts (`parts`), take a new one.
        let nsec3 = self.nsec3.get(&change.apex);
        let now = prepare(engine, new, nsec3.map_or(0, |z| z.slot));
        if nsec3.cloned() != now {
            return Ok(Err(
                "the NSEC3 or NSEC chain or the apex's long answers changed".into(),
            ));
        }
        let Some(deps) = self.deps.get(&change.apex) else {
            return Ok(Err("no dependency index for the zone".into()));
        };
        let aff = match affected(old, new, &change.names, deps) {
            Ok(a) => a,
            Err(reason) => return Ok(Err(reason)),
        };
        let mut names: Vec<Name> = aff.names.iter().cloned().collect();
        names.sort();
        let v = Versions {
            old_engine: &last,
            old,
            new_engine: engine,
            new,
            nsec3,
        };
        let compiled = compile_names(&v, deps, &aff.child_delta, &names, self.generation);
        self.server.begin_update();
        let mut plan = match self.plan(&compiled) {
            Ok(p) => p,
            Err(reason) => return Ok(Err(reason)),
        };
        let mut touched = Touched::default();
        switched(Flip::Before);
        if let Err(e) = self.write(&mut plan, &mut touched, observe) {
            self.abandon(&plan.writes);
            return Err(e).with_context(|| {
                format!("incremental XDP update of zone {} (undone)", change.apex)
            });
        }
        switched(Flip::After);
        for w in &plan.writes {
            match w {
                Write::Exact { key, new, .. } => match new {
                    Some(_) => self.exact_keys.insert(**key),
                    None => self.exact_keys.remove(**key),
                },
                Write::Suffix { key, old, new, .. } => match (old, new) {
                    (None, Some(_)) => self.suffix_keys.insert(key.clone()),
                    (Some(_), None) => self.suffix_keys.remove(key.clone()),
                    _ => {}
                },
            }
        }
        for (name, e) in plan.epochs {
            if e == 0 || e == EPOCH_NONE {
                self.epochs.remove(&name);
            } else {
                self.epochs.insert(name, e);
            }
        }
        self.entries = self.exact_keys.len() + self.suffix_keys.len();
        if let Some(d) = self.deps.get_mut(&change.apex) {
            d.update(engine, old, new, &aff.changed, &aff.names, &aff.child_delta);
        }
        self.last = engine.clone();
        let p = Published {
            generation: self.generation,
            entries: self.entries,
            templates: self.server.template_counts().0,
            new_templates: plan.fresh.len(),
            cached: touched.templates_added,
            memory: index_memory(self.exact_keys.len(), self.suffix_keys.len()),
            seconds: t.elapsed().as_secs_f64(),
            update: Update::Incremental {
                names: names.len(),
                touched,
            },
        };
        log::info!(
            "zone {}: XDP generation {} updated in place: {} names compiled again, {} index writes, {} templates added, {} retired, in {:.3}s",
            change.apex,
            p.generation,
            names.len(),
            touched.index_writes(),
            touched.templates_added,
            touched.templates_retired,
            p.seconds
        );
        Ok(Ok(p))
    }

    /// The writes for the compiled names, checked against what the maps hold.
    fn plan(&mut self, compiled: &[Compiled]) -> Result<Plan, String> {
        let mut plan = Plan {
            writes: Vec::new(),
            fresh: Vec::new(),
            epochs: Vec::new(),
        };
        let mut trouble = None;
        for c in compiled {
            if let Err(what) = self.plan_name(c, &mut plan) {
                trouble = Some(format!("{what} at {}", c.name));
                break;
            }
        }
        if trouble.is_none() {
            for w in &plan.writes {
                match update::current(&self.server, w) {
                    Ok(now) if now.as_ref() == w.before() => {}
                    Ok(now) => {
                        trouble = Some(format!(
                            "the maps hold {now:?} where the last publication wrote {:?}",
                            w.before()
                        ));
                        break;
                    }
                    Err(e) => {
                        trouble = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
        }
        match trouble {
            None => Ok(plan),
            Some(t) => {
                log::warn!("incremental XDP update not possible: {t}");
                self.abandon(&plan.writes);
                Err(t)
            }
        }
    }

    fn plan_name(&mut self, c: &Compiled, plan: &mut Plan) -> Result<(), &'static str> {
        // A name without exact or NODATA entries has EPOCH_NONE (see `epoch`); one that gains
        // them starts at 0, where none of its keys can be.
        let old_e = match c.old.exact.is_empty() {
            true => EPOCH_NONE,
            false => self.epochs.get(&c.name).copied().unwrap_or(0),
        };
        let exact_same = c.old.exact == c.new.exact;
        let new_e = if c.new.exact.is_empty() {
            EPOCH_NONE
        } else if c.old.exact.is_empty() {
            0
        } else if exact_same {
            old_e
        } else {
            epoch::next(old_e)
        };
        plan.epochs.push((c.name.clone(), new_e));
        let current = |s: &Self, b: &Body| s.server.current_ref(b).ok_or("a template is missing");
        if !(exact_same && old_e == new_e) {
            for (k, b) in &c.old.exact {
                let key = dns_common::AnswerKey { epoch: old_e, ..*k };
                let old = Some(current(self, b)?);
                plan.writes.push(Write::Exact {
                    key: Box::new(key),
                    old,
                    new: None,
                });
            }
            for (k, b) in &c.new.exact {
                let key = dns_common::AnswerKey { epoch: new_e, ..*k };
                let (r, fresh) = self.server.acquire(b);
                if fresh {
                    plan.fresh.push(r.template);
                }
                plan.writes.push(Write::Exact {
                    key: Box::new(key),
                    old: None,
                    new: Some(r),
                });
            }
        }
        let mut keys: Vec<&super::SuffixKey> = c.old.suffix.iter().map(|(k, _)| k).collect();
        for (k, _) in &c.new.suffix {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for key in keys {
            let (o, n) = (suffix_body(&c.old, key), suffix_body(&c.new, key));
            if o == n && old_e == new_e {
                continue;
            }
            let old = match o {
                Some(b) => Some(with_epoch(current(self, b)?, old_e)),
                None => None,
            };
            let new = n.map(|b| {
                let (r, fresh) = self.server.acquire(b);
                if fresh {
                    plan.fresh.push(r.template);
                }
                with_epoch(r, new_e)
            });
            plan.writes.push(Write::Suffix {
                key: key.clone(),
                depth: c.name.label_count(),
                old,
                new,
            });
        }
        Ok(())
    }

    /// Caches the new templates, then writes the index in order.
    fn write(
        &mut self,
        plan: &mut Plan,
        touched: &mut Touched,
        observe: &mut dyn FnMut(&mut XdpServer) -> Result<()>,
    ) -> Result<()> {
        for id in &plan.fresh {
            if self.server.cache_template(*id)? {
                touched.templates_added += 1;
            }
        }
        update::order(&mut plan.writes);
        update::apply(&mut self.server, &plan.writes, touched, observe)?;
        for w in &plan.writes {
            if let Some(o) = w.before() {
                self.server.release(o);
            }
        }
        touched.templates_retired = self.server.retire_released();
        Ok(())
    }

    /// Gives back the template references a plan took (its new templates go again).
    fn abandon(&mut self, writes: &[Write]) {
        for w in writes {
            if let Some(n) = w.after() {
                self.server.release(n);
            }
        }
        self.server.retire_released();
    }
}
