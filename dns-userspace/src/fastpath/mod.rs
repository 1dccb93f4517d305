//! The XDP fast path of a running server: the loaded program and what its maps hold, one
//! generation at a time. Publishing an engine compiles its zones into a new generation, fills
//! it in beside the old one, switches the program over in one write, then removes the old
//! entries — so a query sees the old zones or the new ones, never a mix. Templates are shared
//! between generations by content, so a reload only adds the answers that changed.

pub mod compile;
pub mod promote;
pub mod render;
pub mod templates;
pub mod xdp;

use std::net::IpAddr;
use std::time::Instant;

use anyhow::{bail, Result};
use dns_common::{AnswerKey, Config};

use crate::engine::Engine;
use compile::{Entries, SuffixKey};
use xdp::{AttachMode, Capacity, XdpServer};

/// Generations cycle through 1..=127 (the suffix keys keep 7 bits).
fn next_generation(g: u16) -> u16 {
    g % 127 + 1
}

pub struct FastPath {
    pub server: XdpServer,
    generation: u16,
    port: u16,
    exact_keys: Vec<AnswerKey>,
    suffix_keys: Vec<SuffixKey>,
    pub entries: usize,
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
}

/// Default size of the template cache for `templates` distinct templates: room for every
/// template of two generations, so that a reload that changes every answer (a re-signed zone)
/// is served from XDP at once.
pub fn default_template_capacity(templates: usize) -> u32 {
    (templates * 2 + 1024).min(u32::MAX as usize) as u32
}

fn compile_all(engine: &Engine, generation: u16) -> Entries {
    let mut entries = Entries::default();
    compile::compile_chaos(engine, generation, &mut entries);
    compile::compile_refused(engine, generation, &mut entries);
    for zone in engine.catalog.zones() {
        let s = compile::compile_zone(engine, zone, generation, &mut entries);
        log::info!(
            "zone {}: {} XDP entries ({} exact, {} NODATA, {} referral, {} NXDOMAIN, {} pass markers), {} answers left to userspace",
            zone.apex(),
            s.entries(),
            s.exact,
            s.nodata,
            s.referral,
            s.negative,
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
        let generation = 1;
        let entries = compile_all(engine, generation);
        // Room for two generations (a reload fills the new one before the old one goes).
        let templates = templates.unwrap_or_else(|| {
            let bodies = entries.exact.iter().map(|(_, v)| v);
            let bodies = bodies.chain(entries.suffix.iter().map(|(_, v)| v));
            default_template_capacity(templates::distinct(bodies))
        });
        if templates == 0 {
            bail!("the XDP template cache needs room for at least one template");
        }
        // Two generations, plus room for single-entry updates.
        let room = |n: usize| (n * 2 + 4096).min(u32::MAX as usize) as u32;
        let mut server = XdpServer::load_with_capacity(Capacity {
            answers: room(entries.exact.len()),
            suffixes: room(entries.suffix.len()),
            templates,
        })?;
        log::info!(
            "XDP template cache: {templates} templates, about {} MiB preallocated",
            compile::template_cache_memory(templates) >> 20
        );
        for a in addrs {
            server.add_service_addr(*a)?;
        }
        let mut fp = FastPath {
            server,
            generation: 0,
            port,
            exact_keys: Vec::new(),
            suffix_keys: Vec::new(),
            entries: 0,
        };
        fp.install(engine, entries, generation)?;
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

    /// Replaces what the maps hold with `engine`'s answers.
    pub fn publish(&mut self, engine: &Engine) -> Result<Published> {
        let generation = next_generation(self.generation);
        let entries = compile_all(engine, generation);
        self.install(engine, entries, generation)
    }

    fn install(&mut self, engine: &Engine, entries: Entries, generation: u16) -> Result<Published> {
        let t = Instant::now();
        let inserted = match self.server.insert(&entries) {
            Ok(i) => i,
            Err(e) => {
                // Roll back what was inserted of the new generation; the old one still serves.
                self.remove(
                    &entries.exact.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                    &entries
                        .suffix
                        .iter()
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<_>>(),
                );
                self.server.discard_new_templates();
                return Err(e);
            }
        };
        self.server.set_config(Config {
            port: self.port,
            server_payload: engine.config.server_payload,
            generation,
            flags: if engine.catalog.zones().any(|z| z.is_signed()) {
                0
            } else {
                dns_common::CONFIG_NO_DNSSEC
            },
        })?;
        let old_exact = std::mem::replace(
            &mut self.exact_keys,
            entries.exact.iter().map(|(k, _)| *k).collect(),
        );
        let old_suffix = std::mem::replace(
            &mut self.suffix_keys,
            entries.suffix.iter().map(|(k, _)| k.clone()).collect(),
        );
        self.remove(&old_exact, &old_suffix);
        self.server.retire_templates();
        self.generation = generation;
        self.entries = entries.len();
        let p = Published {
            generation,
            entries: entries.len(),
            templates: self.server.template_counts().0,
            new_templates: inserted.new_templates,
            cached: inserted.cached,
            memory: entries.memory(),
            seconds: t.elapsed().as_secs_f64(),
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

    fn remove(&mut self, exact: &[AnswerKey], suffix: &[SuffixKey]) {
        for k in exact {
            let _ = self.server.answers.remove(k);
        }
        for k in suffix {
            let _ = self
                .server
                .suffixes
                .remove(&aya::maps::lpm_trie::Key::new(k.bits, k.data()));
        }
    }
}
