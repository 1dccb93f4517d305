//! The XDP fast path of a running server: the loaded program and what its maps hold, one
//! generation at a time. Publishing an engine compiles its zones into a new generation, fills
//! it in beside the old one, switches the program over in one write, then removes the old
//! entries — so a query sees the old zones or the new ones, never a mix. Templates are shared
//! between generations by content, so a reload only adds the answers that changed.
//!
//! A change to one zone (a secondary's IXFR) can instead be published incrementally, within
//! the generation: only the entries of the names the change reaches are compiled again and
//! rewritten (`incremental`, `affected`, `deps`), in an order that keeps every query on the
//! old answers or the new ones (`update`).

mod adopt;
pub mod affected;
pub mod answer_index;
pub mod change;
pub mod check;
pub mod compile;
pub mod deps;
pub mod directory;
pub mod edns;
pub mod epoch;
mod incremental;
pub mod keyset;
pub mod nsec;
pub mod nsec3;
mod nsec3_maps;
mod nsec_maps;
pub mod parts;
pub mod pin;
pub mod pin_state;
pub mod promote;
pub mod render;
mod service;
mod slots;
pub mod suffix_index;
pub mod template_cache;
pub mod templates;
#[cfg(feature = "test-support")]
mod test_run;
pub mod update;
pub mod xdp;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use anyhow::{bail, Result};
use dns_common::{AnswerKey, Config};

use crate::engine::Engine;
use crate::wire::name::Name;
use compile::{Entries, SuffixKey};
use deps::ZoneDeps;
use keyset::KeySet;
pub use update::Touched;
use xdp::{AttachMode, Capacity, XdpServer};

/// Generations cycle through 1..=127 (the suffix keys keep 7 bits).
fn next_generation(g: u16) -> u16 {
    g % 127 + 1
}

/// The two moments of a switch to a new version that a caller serving the same answers from
/// userspace must know of: `Before`, the last moment the XDP path answers the old version
/// (the caller stops answering, waiting for its queries in progress), and `After`, once XDP
/// answers the new one (the caller answers the new version). Between them no query is answered
/// from userspace, so a client never gets the new version from one path and then the old from
/// the other: the wait lasts one map write (a generation switch or a program swap), or the
/// writes of an incremental update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flip {
    Before,
    After,
}

pub struct FastPath {
    pub server: XdpServer,
    generation: u16,
    port: u16,
    exact_keys: KeySet<AnswerKey>,
    suffix_keys: KeySet<SuffixKey>,
    pub entries: usize,
    /// The engine the maps answer for.
    last: Engine,
    /// Per zone (by apex): what its answers depend on, for incremental publications.
    deps: HashMap<Name, ZoneDeps>,
    /// Names whose exact and NODATA entries are under an epoch other than 0 (a name without
    /// any has `EPOCH_NONE`, derived, not kept here).
    epochs: HashMap<Name, u16>,
    /// What it answers on, and the template cache size asked for (`None`: follow the zones),
    /// to load the program again when the zones outgrow its maps.
    addrs: Vec<IpAddr>,
    templates: Option<u32>,
    /// Per NSEC3 zone (by apex), its data in the generation serving; and the half of the
    /// NSEC3 maps that generation uses (the next full publication takes the other).
    nsec3: HashMap<Name, nsec3::ZoneNsec3>,
    nsec3_half: u32,
    /// Where the program and its maps are pinned, and the record of what they hold
    /// (`--xdp-pin`).
    pin: Option<pin::Pinned>,
    /// How this start got its program (adopted with its maps, or loaded), for `status`.
    pub start_note: Option<String>,
}

/// What one publication did.
#[derive(Debug)]
pub struct Published {
    pub generation: u16,
    pub entries: usize,
    /// Distinct templates the entries refer to.
    pub templates: usize,
    /// Templates new in this publication, and how many of them went into the cache.
    pub new_templates: usize,
    pub cached: usize,
    pub memory: usize,
    pub seconds: f64,
    pub update: Update,
}

/// How a publication brought the maps up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// A new generation with every entry; `reason` says why, when an incremental publication
    /// was asked for.
    Full { reason: Option<String> },
    /// Within the generation: the entries of `names` names compiled again, with these writes.
    Incremental { names: usize, touched: Touched },
}

/// Default size of the template cache for `templates` distinct templates: room for every
/// template of two generations, so that a reload that changes every answer (a re-signed zone)
/// is served from XDP at once.
pub fn default_template_capacity(templates: usize) -> u32 {
    (templates * 2 + 1024).min(u32::MAX as usize) as u32
}

/// Map sizes for `entries`: two generations of the index (a publication fills the new one
/// before the old one goes) plus room for single-entry updates, and the template cache asked
/// for or, by default, room for every template twice over.
pub fn capacity_for(entries: &Entries, templates: Option<u32>) -> Capacity {
    let templates =
        templates.unwrap_or_else(|| default_template_capacity(distinct_templates(entries)));
    let room = |n: usize| (n * 2 + 4096).min(u32::MAX as usize) as u32;
    Capacity {
        answers: room(entries.exact.len()),
        suffixes: room(entries.suffix.len()),
        templates,
        nsec3: nsec3_maps::capacity_for(nsec3_records(entries)),
        nsec_labels: nsec_maps::capacity_for(nsec_maps::labels(&entries.nsec3)),
        ..Capacity::default()
    }
}

/// NSEC3 records of the zones the entries serve denials for.
fn nsec3_records(entries: &Entries) -> usize {
    entries.nsec3.iter().map(|z| z.records.len()).sum()
}

/// Distinct templates the entries refer to.
fn distinct_templates(entries: &Entries) -> usize {
    let bodies = entries.exact.iter().map(|(_, v)| v);
    templates::distinct(bodies.chain(entries.suffix.iter().map(|(_, v)| v)))
}

/// Compiles every zone; NSEC3 zones take slots from `nsec3_first_slot` on.
fn compile_all(engine: &Engine, generation: u16, nsec3_first_slot: u32) -> Entries {
    let mut entries = Entries {
        nsec3_first_slot,
        ..Entries::default()
    };
    compile::compile_chaos(engine, generation, &mut entries);
    compile::compile_refused(engine, generation, &mut entries);
    for zone in engine.catalog.zones() {
        let s = compile::compile_zone(engine, zone, generation, &mut entries);
        log::info!(
            "zone {}: {} XDP entries ({} exact, {} NODATA, {} referral, {} NXDOMAIN of which {} NSEC3 and {} NSEC denials, {} pass markers), {} answers left to userspace",
            zone.apex(),
            s.entries(),
            s.exact,
            s.nodata,
            s.referral,
            s.negative,
            s.nsec3,
            s.nsec,
            s.pass,
            s.skipped
        );
    }
    entries
}

impl FastPath {
    /// Loads the program sized for `engine`, publishes it and attaches to `iface`.
    /// `templates`: size of the template cache (`None`: everything, twice over).
    pub fn start(
        engine: &Engine,
        iface: &str,
        mode: AttachMode,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
    ) -> Result<FastPath> {
        if addrs.is_empty() {
            bail!("interface {iface} has no addresses for the XDP path to answer on");
        }
        let mut fp = FastPath::load(engine, addrs, port, templates)?;
        fp.server.attach(iface, mode)?;
        log::info!(
            "XDP attached to {iface} ({mode:?}), answering on {} port {port}",
            addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(fp)
    }

    /// Loads the program sized for `engine` and publishes it, answering on `addrs` and
    /// `port`, without attaching it (see `start`; tests run it with BPF_PROG_TEST_RUN).
    pub fn load(
        engine: &Engine,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
    ) -> Result<FastPath> {
        let generation = 1;
        let entries = compile_all(engine, generation, 0);
        let mut fp = FastPath::sized(&entries, addrs, port, templates)?;
        fp.install(engine, entries, generation, None)?;
        Ok(fp)
    }

    /// `load` with the program and maps to be pinned as `pin` says (`pin::start`): the
    /// publication keeps the pin's record.
    fn load_pinned(
        engine: &Engine,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
        pin: pin::Pinned,
    ) -> Result<FastPath> {
        let generation = 1;
        let entries = compile_all(engine, generation, 0);
        let mut fp = FastPath::sized(&entries, addrs, port, templates)?;
        fp.pin = Some(pin);
        fp.install(engine, entries, generation, None)?;
        Ok(fp)
    }

    /// The program loaded with maps sized for two generations of `entries`, nothing published.
    fn sized(
        entries: &Entries,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
    ) -> Result<FastPath> {
        let cap = capacity_for(entries, templates);
        if cap.templates == 0 {
            bail!("the XDP template cache needs room for at least one template");
        }
        let mut server = XdpServer::load_with_capacity(cap)?;
        log::info!(
            "XDP template cache: {} templates, about {} MiB preallocated",
            cap.templates,
            compile::template_cache_memory(cap.templates) >> 20
        );
        for a in addrs {
            server.add_service_addr(*a)?;
        }
        Ok(FastPath::with_server(server, addrs, port, templates))
    }

    /// A fast path around `server`, nothing published.
    fn with_server(
        server: XdpServer,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
    ) -> FastPath {
        FastPath {
            server,
            generation: 0,
            port,
            exact_keys: KeySet::default(),
            suffix_keys: KeySet::default(),
            entries: 0,
            last: Engine::default(),
            deps: HashMap::new(),
            epochs: HashMap::new(),
            addrs: addrs.to_vec(),
            templates,
            nsec3: HashMap::new(),
            nsec3_half: 1,
            pin: None,
            start_note: None,
        }
    }

    /// The generation the program answers from.
    pub fn generation(&self) -> u16 {
        self.generation
    }

    /// The first `NSEC3_ZONES` slot of the generation serving (its half of the slots).
    pub fn nsec3_first_slot(&self) -> u32 {
        self.nsec3_half * nsec3::HALF_SLOTS
    }

    /// The dependency index of the zone `apex` (for tests).
    pub fn zone_deps(&self, apex: &Name) -> Option<&ZoneDeps> {
        self.deps.get(apex)
    }

    /// Replaces what the maps hold with `engine`'s answers. When they do not fit beside the
    /// old generation (a secondary zone's first transfer into a program sized while it had no
    /// copy, say), the program is loaded again sized for them, filled, and swapped in for the
    /// old one on the interface.
    pub fn publish(&mut self, engine: &Engine) -> Result<Published> {
        self.publish_switching(engine, &mut |_| {})
    }

    /// `publish`, calling `switched(Flip::Before)` just before the XDP path starts answering
    /// from the new generation and `switched(Flip::After)` just after (before the old one is
    /// cleaned up), for the caller to switch its userspace engine to `engine` then: both
    /// paths change together (see `Flip`). `After` is not called when it fails.
    pub fn publish_switching(
        &mut self,
        engine: &Engine,
        switched: &mut dyn FnMut(Flip),
    ) -> Result<Published> {
        let generation = next_generation(self.generation);
        let half = 1 - self.nsec3_half;
        let entries = compile_all(engine, generation, half * nsec3::HALF_SLOTS);
        let have = self.server.capacity();
        // A cache sized by default follows the zones once it cannot hold one generation.
        let templates = match self.templates {
            Some(_) => 0,
            None => distinct_templates(&entries),
        };
        let fits = self.exact_keys.len() + entries.exact.len() <= have.answers as usize
            && self.suffix_keys.len() + entries.suffix.len() <= have.suffixes as usize
            && templates <= have.templates as usize
            && nsec3_records(&entries) <= have.nsec3 as usize / 2
            && nsec_maps::labels(&entries.nsec3) <= have.nsec_labels as usize / 2;
        if fits {
            return self.install(engine, entries, generation, Some(switched));
        }
        log::info!(
            "XDP maps too small for the new generation ({} exact and {} suffix entries beside {} \
             and {}, {templates} templates; room for {}, {} and {}): loading the program again, \
             sized for it",
            entries.exact.len(),
            entries.suffix.len(),
            self.exact_keys.len(),
            self.suffix_keys.len(),
            have.answers,
            have.suffixes,
            have.templates,
        );
        let digest = self.pin.as_ref().map(|p| p.state.digest(&entries));
        self.pin_dirty()?;
        let mut next = FastPath::sized(&entries, &self.addrs, self.port, self.templates)?;
        let p = next.install(engine, entries, generation, None)?;
        switched(Flip::Before);
        next.server.take_over(&mut self.server)?;
        switched(Flip::After);
        next.pin = self.pin.take();
        next.start_note = self.start_note.take();
        *self = next;
        // The new program and maps take the old ones' pins. It serves already: a pin that
        // fails leaves the record not clean (the next start loads anew), not the reload failed.
        if let Some(dir) = self.pin.as_ref().map(|p| p.dir.clone()) {
            match self.server.pin_all(&dir) {
                Ok(()) => self.pin_clean(engine, digest),
                Err(e) => log::error!("pinning the grown XDP program and maps: {e:#}"),
            }
        }
        Ok(p)
    }

    /// Takes `entries` as what the maps serve: their NSEC3 zones, their count and the index
    /// of `engine`'s zones (after a switch, or an adoption that kept the maps).
    pub(super) fn served(&mut self, engine: &Engine, entries: &Entries) {
        self.nsec3 = entries
            .nsec3
            .iter()
            .map(|z| (z.apex.clone(), z.clone()))
            .collect();
        self.entries = entries.len();
        self.index(engine);
    }

    /// Fills the maps with `entries` as `generation` and switches the program to it
    /// (`switched` is called then).
    fn install(
        &mut self,
        engine: &Engine,
        entries: Entries,
        generation: u16,
        mut switched: Option<&mut dyn FnMut(Flip)>,
    ) -> Result<Published> {
        let t = Instant::now();
        let digest = self.pin.as_ref().map(|p| p.state.digest(&entries));
        let before = self.pin_dirty()?;
        let inserted = match self.server.insert(&entries) {
            Ok(i) => i,
            Err(e) => {
                self.pin_restore(before);
                // Roll back what was inserted of the new generation; the old one still serves.
                self.remove(
                    entries.exact.iter().map(|(k, _)| k),
                    entries.suffix.iter().map(|(k, _)| k),
                );
                self.server.discard_new_templates();
                return Err(e);
            }
        };
        if let Some(s) = &mut switched {
            s(Flip::Before);
        }
        self.write_settings(engine, generation)?;
        if let Some(s) = &mut switched {
            s(Flip::After);
        }
        let old_exact = std::mem::replace(
            &mut self.exact_keys,
            KeySet::new(entries.exact.iter().map(|(k, _)| *k).collect()),
        );
        let old_suffix = std::mem::replace(
            &mut self.suffix_keys,
            KeySet::new(entries.suffix.iter().map(|(k, _)| k.clone()).collect()),
        );
        self.remove(old_exact.iter(), old_suffix.iter());
        self.server.retire_templates();
        self.generation = generation;
        self.nsec3_half = entries.nsec3_first_slot / nsec3::HALF_SLOTS;
        self.served(engine, &entries);
        self.epochs.clear();
        self.pin_clean(engine, digest);
        let p = Published {
            generation,
            entries: entries.len(),
            templates: self.server.template_counts().0,
            new_templates: inserted.new_templates,
            cached: inserted.cached,
            memory: entries.memory(),
            seconds: t.elapsed().as_secs_f64(),
            update: Update::Full { reason: None },
        };
        log::info!(
            "XDP generation {}: {} index entries (about {} MiB), {} templates ({} new, {} of them cached), filled in {:.2}s",
            p.generation,
            p.entries,
            p.memory >> 20,
            p.templates,
            p.new_templates,
            p.cached,
            p.seconds
        );
        Ok(p)
    }

    /// Writes the settings (EDNS, RRL) and the configuration naming `generation` (the switch
    /// to it).
    fn write_settings(&mut self, engine: &Engine, generation: u16) -> Result<()> {
        self.server.set_edns(edns::config(&engine.config))?;
        match &engine.config.rrl {
            Some(l) => self
                .server
                .set_rrl(l.settings.xdp_config(), &l.settings.exempt_keys())?,
            None => self.server.set_rrl(Default::default(), &[])?,
        }
        self.server.set_config(Config {
            port: self.port,
            server_payload: engine.config.server_payload,
            generation,
            flags: if compile::all_signed(engine) {
                dns_common::CONFIG_ALL_SIGNED
            } else if engine.catalog.zones().any(|z| z.is_signed()) {
                0
            } else {
                dns_common::CONFIG_NO_DNSSEC
            },
            ..Default::default()
        })
    }

    /// Writes the program's EDNS settings again with the cookies' clock offset as it is now
    /// (the wall clock may have been stepped or slewed).
    pub fn refresh_clock(&mut self) -> Result<()> {
        self.server.set_edns(edns::config(&self.last.config))
    }

    /// Remembers `engine` as the one the maps answer for, and indexes its zones (those it
    /// shares with the last one keep their index).
    fn index(&mut self, engine: &Engine) {
        let mut deps = HashMap::new();
        // Roles depend on which zones are served (a name in a served child zone has none).
        let same_zones = incremental::same_apexes(&self.last, engine);
        for zone in engine.catalog.zones() {
            let apex = zone.apex();
            let kept = (self.last.catalog.get(apex))
                .filter(|z| same_zones && std::sync::Arc::ptr_eq(z, zone));
            let d = match (kept, self.deps.remove(apex)) {
                (Some(_), Some(d)) => d,
                _ => ZoneDeps::build(engine, zone),
            };
            deps.insert(apex.clone(), d);
        }
        self.deps = deps;
        self.last = engine.clone();
    }

    fn remove<'a>(
        &mut self,
        exact: impl Iterator<Item = &'a AnswerKey>,
        suffix: impl Iterator<Item = &'a SuffixKey>,
    ) {
        for k in exact {
            let _ = self.server.answers.remove(k);
        }
        for k in suffix {
            let _ = self.server.suffixes.remove(k);
        }
    }
}
