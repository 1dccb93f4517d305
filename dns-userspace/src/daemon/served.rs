//! What the server answers from, and the one way to change it. The zones come from two
//! sources — zone files (replaced by `reload`) and secondary zones (replaced by their refresh
//! tasks, or marked unavailable: before the first transfer, or expired under `honour`) — and
//! every change builds one engine from both, publishes it to the XDP fast path and swaps it in
//! for userspace at the moment the fast path switches to it (`publish_switching`), under one
//! lock: XDP and userspace never serve different zones, and a
//! change that fails (the XDP maps full, say) leaves everything as it was. At start userspace
//! serves first, the fast path joins once its program is loaded and its maps filled. A new
//! version of a secondary zone reaches the fast path as a change to that zone only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLockWriteGuard};

use anyhow::{anyhow, Result};

use super::held;
use crate::engine::{Catalog, Engine, EngineConfig};
use crate::fastpath::change::ZoneChange;
use crate::fastpath::{FastPath, Flip, Published};
use crate::net::SharedEngine;
use crate::wire::name::Name;
use crate::xfr::ixfr::Diff;
use crate::zone::Zone;

/// The zones, by where they come from.
#[derive(Clone, Default)]
pub struct Sources {
    pub files: Catalog,
    /// Each secondary zone's served version; `None`: not answerable now (SERVFAIL).
    pub secondaries: BTreeMap<Name, Option<Arc<Zone>>>,
}

impl Sources {
    /// The engine answering from these zones.
    pub fn engine(&self, config: &EngineConfig) -> Engine {
        let mut catalog = self.files.clone();
        for (apex, zone) in &self.secondaries {
            match zone {
                Some(z) => catalog.insert(z.clone()),
                None => catalog.insert_unavailable(apex.clone()),
            }
        }
        Engine::new(catalog, config.clone())
    }
}

/// A new version of a zone served from a file (`Served::change_file_zone`).
pub struct FileEdit {
    pub zone: Arc<Zone>,
    /// The names it changes.
    pub change: ZoneChange,
    /// Run when the version cannot be served (the journal entry taken back, say).
    pub undo: Box<dyn FnOnce()>,
}

/// The engine being served, the fast path, and the sources both were built from.
pub struct Served {
    pub engine: SharedEngine,
    /// Set once it is started, after userspace serves.
    xdp: OnceLock<Mutex<FastPath>>,
    /// True while `start_xdp` compiles and fills the maps (userspace answers meanwhile).
    filling: AtomicBool,
    sources: Mutex<Sources>,
    /// The settings engines are built with (SIGHUP may change some, `change_configured`).
    config: Mutex<EngineConfig>,
}

impl Served {
    /// Serves `engine` (built from `sources`) from userspace; `start_xdp` adds the fast path.
    pub fn new(sources: Sources, engine: Engine, config: EngineConfig) -> Served {
        Served {
            engine: Arc::new(std::sync::RwLock::new(Arc::new(engine))),
            xdp: OnceLock::new(),
            filling: AtomicBool::new(false),
            sources: Mutex::new(sources),
            config: Mutex::new(config),
        }
    }

    /// Starts the fast path with `start` on the engine being served; nothing changes what is
    /// served meanwhile (changes wait), and `filling` says so. The program answers nothing
    /// until `start` attaches it, after its maps hold the whole first generation.
    pub fn start_xdp(&self, start: impl FnOnce(&Engine) -> Result<FastPath>) -> Result<()> {
        let _no_change = held(&self.sources);
        self.filling.store(true, Ordering::Relaxed);
        let engine = self.engine.read().expect("engine lock").clone();
        test_fill_gate();
        let fp = start(&engine);
        self.filling.store(false, Ordering::Relaxed);
        self.xdp
            .set(Mutex::new(fp?))
            .map_err(|_| anyhow!("the XDP fast path is started already"))
    }

    /// Whether the fast path is being started (its maps filled) now.
    pub fn xdp_filling(&self) -> bool {
        self.filling.load(Ordering::Relaxed)
    }

    /// The fast path, once started.
    pub fn xdp(&self) -> Option<&Mutex<FastPath>> {
        self.xdp.get()
    }

    /// The version of secondary zone `apex` being served (`Some(None)`: marked unavailable).
    pub fn secondary(&self, apex: &Name) -> Option<Option<Arc<Zone>>> {
        held(&self.sources).secondaries.get(apex).cloned()
    }

    /// Applies `edit` to the sources and serves the result on both paths; on error nothing
    /// changes. Returns the XDP publication, when there is a fast path. Blocks while it
    /// compiles: call it off the runtime's worker threads.
    pub fn change(&self, edit: impl FnOnce(&mut Sources)) -> Result<(Option<Published>, usize)> {
        self.change_configured(None, edit)
    }

    /// `change`, with the engine settings `config` from now on when given (SIGHUP): both
    /// take effect together, or neither.
    pub fn change_configured(
        &self,
        config: Option<EngineConfig>,
        edit: impl FnOnce(&mut Sources),
    ) -> Result<(Option<Published>, usize)> {
        let mut sources = held(&self.sources);
        let mut next = sources.clone();
        edit(&mut next);
        let config = config.unwrap_or_else(|| self.config());
        let engine = Arc::new(next.engine(&config));
        let published = self.publish(&engine)?;
        let zones = engine.catalog.zones().count();
        self.serve(engine);
        *sources = next;
        *held(&self.config) = config;
        Ok((published, zones))
    }

    /// The engine settings now.
    pub fn config(&self) -> EngineConfig {
        held(&self.config).clone()
    }

    /// Serves `zone` (or none: SERVFAIL) as the version of secondary zone `apex`, on both
    /// paths; on error nothing changes. When a version replaces another, the fast path takes
    /// only the change (`FastPath::publish_change`, which falls back to a whole publication
    /// when the change cannot be bounded): the names of `diffs` when given (the journal's diffs
    /// from the old serial to the new), else the names that differ between the two zones.
    pub fn change_secondary(
        &self,
        apex: &Name,
        zone: Option<Arc<Zone>>,
        diffs: Option<&[Arc<Diff>]>,
    ) -> Result<(Option<Published>, usize)> {
        let mut sources = held(&self.sources);
        let old = sources.secondaries.get(apex).cloned().flatten();
        let mut next = sources.clone();
        next.secondaries.insert(apex.clone(), zone.clone());
        let engine = Arc::new(next.engine(&self.config()));
        let published = match (self.xdp.get(), old, &zone) {
            (Some(x), Some(old), Some(new)) => {
                let change = match diffs {
                    Some(d) => {
                        let d: Vec<Diff> = d.iter().map(|d| (**d).clone()).collect();
                        ZoneChange::from_diffs(apex.clone(), &d)
                    }
                    None => ZoneChange::between(&old, new),
                };
                let switched = &mut self.switcher(&engine);
                Some(held(x).publish_change_switching(&engine, &change, switched)?)
            }
            _ => self.publish(&engine)?,
        };
        let zones = engine.catalog.zones().count();
        self.serve(engine);
        *sources = next;
        Ok((published, zones))
    }

    /// Replaces zone `apex`, served from a file, by what `edit` makes of it (the new zone, the
    /// names it changes, and what to undo when it cannot be served), on both paths: the fast
    /// path takes only the change (`FastPath::publish_change`). `edit` runs under the lock, so
    /// that changes to a zone follow each other; on any error nothing changes (and `undo` has
    /// run when `edit` succeeded).
    pub fn change_file_zone(
        &self,
        apex: &Name,
        edit: impl FnOnce(&Arc<Zone>) -> Result<FileEdit>,
    ) -> Result<Option<Published>> {
        let mut sources = held(&self.sources);
        let old = sources
            .files
            .get(apex)
            .cloned()
            .ok_or_else(|| anyhow!("no zone {apex} is served from a file"))?;
        let FileEdit { zone, change, undo } = edit(&old)?;
        let mut next = sources.clone();
        next.files.insert(zone);
        let engine = Arc::new(next.engine(&self.config()));
        let published = match self.xdp.get() {
            Some(x) => held(x)
                .publish_change_switching(&engine, &change, &mut self.switcher(&engine))
                .map(Some),
            None => Ok(None),
        };
        let published = match published {
            Ok(p) => p,
            Err(e) => {
                undo();
                return Err(e);
            }
        };
        self.serve(engine);
        *sources = next;
        Ok(published)
    }

    /// Runs `f` on the engine being served and the fast path, with no change in progress.
    pub fn with_xdp<T>(&self, f: impl FnOnce(&Engine, &FastPath) -> T) -> Option<T> {
        let _no_change = held(&self.sources);
        let x = self.xdp.get()?;
        let engine = self.engine.read().expect("engine lock").clone();
        Some(f(&engine, &held(x)))
    }

    /// The zone served from a file at `apex`, if any.
    pub fn file_zone(&self, apex: &Name) -> Option<Arc<Zone>> {
        held(&self.sources).files.get(apex).cloned()
    }

    /// Publishes `engine` to the fast path, the whole of it as a new generation, and serves
    /// it from userspace at the moment XDP switches to it.
    fn publish(&self, engine: &Arc<Engine>) -> Result<Option<Published>> {
        match self.xdp.get() {
            Some(x) => Ok(Some(
                held(x).publish_switching(engine, &mut self.switcher(engine))?,
            )),
            None => Ok(None),
        }
    }

    /// The fast path's callback around its switch to `engine` (`Flip`): at `Before` it takes
    /// the userspace engine's lock for writing (queries in progress finish first, new ones
    /// wait), at `After` it serves `engine` and lets them go on. Dropped without `After` (the
    /// publication failed), it releases the lock with the old engine still served.
    fn switcher<'a>(&'a self, engine: &'a Arc<Engine>) -> impl FnMut(Flip) + 'a {
        let mut locked: Option<RwLockWriteGuard<'a, Arc<Engine>>> = None;
        move |flip| match flip {
            Flip::Before => {
                if locked.is_none() {
                    locked = Some(self.engine.write().expect("engine lock"));
                }
            }
            Flip::After => {
                let mut served = locked
                    .take()
                    .unwrap_or_else(|| self.engine.write().expect("engine lock"));
                *served = engine.clone();
            }
        }
    }

    /// Serves `engine` from userspace (again, when the fast path's switch did already).
    fn serve(&self, engine: Arc<Engine>) {
        let mut served = self.engine.write().expect("engine lock");
        if !Arc::ptr_eq(&served, &engine) {
            *served = engine;
        }
    }
}

/// The test hook of the start-up order (`tests/startup_order.rs`), in builds with the
/// `test-support` feature only (the test crate's; never production): with
/// `XDPDNS_TEST_FILL_GATE=PATH` the fast path's start waits, at most 120 s, until PATH
/// exists, so that a test sees userspace answering while XDP is still filling.
#[cfg(not(feature = "test-support"))]
fn test_fill_gate() {}

#[cfg(feature = "test-support")]
fn test_fill_gate() {
    let Some(gate) = std::env::var_os("XDPDNS_TEST_FILL_GATE") else {
        return;
    };
    let gate = std::path::PathBuf::from(gate);
    log::warn!(
        "XDPDNS_TEST_FILL_GATE: the XDP fill waits for {}",
        gate.display()
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastpath::compile::{self, Entries};

    #[test]
    fn an_unavailable_secondary_compiles_to_a_pass_marker_only() {
        // The XDP path must pass every name of a zone that is not served (for userspace to
        // answer SERVFAIL), not answer it, nor let the REFUSED entry at the root catch it.
        let apex = Name::parse("tld.", None).unwrap();
        let mut sources = Sources::default();
        sources.secondaries.insert(apex.clone(), None);
        let engine = sources.engine(&EngineConfig::default());
        let zone = engine.catalog.get(&apex).unwrap();
        let mut entries = Entries::default();
        let st = compile::compile_zone(&engine, zone, 1, &mut entries);
        assert_eq!(
            (st.exact, st.nodata, st.referral, st.negative),
            (0, 0, 0, 0)
        );
        assert_eq!(st.pass, 1, "{st:?}");
        assert!(entries.exact.is_empty());
        assert_eq!(entries.suffix.len(), 1);
        assert_eq!(entries.suffix[0].0, compile::suffix_key(&apex, false, 1));
    }
}
