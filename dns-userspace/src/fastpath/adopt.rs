//! Adopting the XDP program and maps an earlier daemon pinned (`serve --xdp-pin`), instead of
//! loading and filling new ones. They are adopted when the record (`pin_state`) says they
//! come from this binary's eBPF object (its fingerprint), its ids name exactly the pinned
//! program and maps, and every map opens with the key and value sizes and type this binary
//! expects. Then:
//! - when the record is clean, names the zones' serials and its digest equals that of the
//!   entries the engine compiles for the generation served, the maps hold exactly the
//!   engine's answers: nothing is written but the settings (addresses, port, EDNS, RRL), and
//!   the template ids are read back from the index, each checked against the entry's kind
//!   and anchor (`kept`);
//! - otherwise the engine is published into the pinned maps as a reload does (a new
//!   generation filled beside the served one, then switched to, the old entries removed):
//!   the served generation's keys and template ids are read from the maps first, so that
//!   none of its templates is overwritten before the switch.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use aya::maps::{Map, MapData};
use aya::programs::xdp::XdpLink;
use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;
use dns_common::{maps, AnswerKey};

use super::answer_index::AnswerIndex;
use super::epoch::{self, ExactNames};
use super::keyset::KeySet;
use super::nsec3_maps::Nsec3Maps;
use super::nsec_maps::NsecLabels;
use super::pin_state::{fingerprint, PinState};
use super::suffix_index::SuffixIndex;
use super::template_cache::TemplateCache;
use super::templates::TemplateStore;
use super::xdp::XdpServer;
use super::{compile_all, nsec3, FastPath};
use crate::engine::Engine;

/// Map `name` pinned in `dir`, as type `T` (which checks its type and sizes), and its size.
fn open<T>(dir: &Path, name: &str) -> Result<(T, u32)>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let at = dir.join("maps").join(name);
    let data = MapData::from_pin(&at).with_context(|| format!("opening {}", at.display()))?;
    let size = data.info()?.max_entries();
    let map = Map::from_map_data(data)?;
    let typed = T::try_from(map).with_context(|| format!("map {name} has another layout"))?;
    Ok((typed, size))
}

impl XdpServer {
    /// Opens the program and maps pinned in `dir` when `state` vouches for them (see the
    /// module doc), and takes over the link pinned there when it runs that program.
    pub(super) fn open_pinned(
        dir: &Path,
        state: Option<&PinState>,
        runs_on_iface: &dyn Fn(u32) -> bool,
        iface: &str,
    ) -> Result<XdpServer> {
        let Some(state) = state else {
            bail!("no record of what its maps hold");
        };
        if state.fingerprint != fingerprint() {
            bail!("it was built from another eBPF object (the binary changed)");
        }
        for (name, id) in &state.maps {
            let at = dir.join("maps").join(name);
            let pinned = MapData::from_pin(&at)
                .with_context(|| format!("opening {}", at.display()))?
                .info()?
                .id();
            if pinned != *id {
                bail!("its map {name} is not the one recorded");
            }
        }
        let mut prog = Xdp::from_pin(dir.join("prog"), XdpAttachType::Interface)
            .context("opening the pinned program")?;
        if prog.info()?.id() != state.program {
            bail!("its program is not the one recorded");
        }
        let link = aya::programs::links::FdLink::from(
            aya::programs::links::PinnedLink::from_pin(dir.join("link"))
                .context("opening the pinned link")?,
        );
        let running = link.info().context("reading the pinned link")?.program_id();
        if running != state.program || !runs_on_iface(running) {
            bail!("its link runs program {running}, not the recorded one on {iface}");
        }
        let (answers, answers_size) = open(dir, maps::ANSWERS)?;
        let (suffixes, suffixes_size) = open(dir, maps::SUFFIXES)?;
        // The seed the pinned program hashes with: set, so kept.
        let mut suffixes = SuffixIndex::new(
            suffixes,
            open(dir, maps::SUFFIX_DIR)?.0,
            open(dir, maps::SUFFIX_SEED)?.0,
            0,
        )?;
        let seed = suffixes.seed();
        let (seed_map, adopted) = suffixes.seed_map();
        let answers = AnswerIndex::new(
            answers,
            open(dir, maps::ANSWER_DIR)?.0,
            seed_map,
            seed,
            adopted,
        )?;
        let (templates, template_capacity) = open(dir, maps::TEMPLATES)?;
        // Which template each slot holds: the cache goes on from there.
        let templates = TemplateCache::open(templates, template_capacity)?;
        let (hashes, nsec3_size) = open(dir, maps::NSEC3_HASHES)?;
        let nsec3 = Nsec3Maps::new(
            open(dir, maps::NSEC3_ZONES)?.0,
            hashes,
            open(dir, maps::NSEC3_RECORDS)?.0,
            nsec3_size,
        );
        let jump_data = MapData::from_pin(dir.join("jump")).context("opening the pinned JUMP")?;
        let jump_id = jump_data.info()?.id();
        let mut carried = state.carried.clone();
        carried.resize(dns_common::counter::COUNT as usize, 0);
        let mut server = XdpServer {
            ebpf: None,
            map_ids: state.maps.iter().map(|(n, id)| (n.clone(), *id)).collect(),
            answers,
            suffixes,
            templates,
            cold: Some(open(dir, maps::COLD)?.0),
            nsec3,
            nsec_labels: {
                let (labels, size) = open(dir, maps::NSEC_LABELS)?;
                NsecLabels::new(labels, size)
            },
            _jump: aya::maps::ProgramArray::try_from(Map::from_map_data(jump_data)?)?,
            jump_id,
            store: TemplateStore::with_slots(template_capacity),
            retired: Vec::new(),
            template_capacity,
            index_capacity: (answers_size, suffixes_size),
            config: open(dir, maps::CONFIG)?.0,
            edns: open(dir, maps::EDNS)?.0,
            rrl: open(dir, maps::RRL)?.0,
            rrl_exempt: open(dir, maps::RRL_EXEMPT)?.0,
            service_addrs: open(dir, maps::SERVICE_ADDRS)?.0,
            counters: open(dir, maps::COUNTERS)?.0,
            carried,
            _logger: None,
            attached: None,
            adopted: None,
        };
        // The same program into the link: the kernel leaves it as it is, and the link is ours.
        let link = XdpLink::try_from(link).map_err(|e| anyhow::anyhow!("not an XDP link: {e}"))?;
        let id = prog
            .attach_to_link(link)
            .context("taking the pinned link")?;
        server.adopted = Some(prog);
        server.attached = Some((iface.to_owned(), id));
        Ok(server)
    }
}

/// What an adoption did, for the log and `status`.
pub enum Adopted {
    /// The maps held the engine's answers: generation kept.
    Kept { generation: u16, seconds: f64 },
    /// Published into the pinned maps as a new generation, and why.
    Republished {
        generation: u16,
        seconds: f64,
        reason: String,
    },
}

impl FastPath {
    /// The fast path of a program adopted with its maps (`XdpServer::open_pinned`), brought to
    /// `engine`'s answers (see the module doc).
    pub(super) fn adopt(
        engine: &Engine,
        server: XdpServer,
        pin: super::pin::Pinned,
        addrs: &[IpAddr],
        port: u16,
        templates: Option<u32>,
    ) -> Result<(FastPath, Adopted)> {
        let t = Instant::now();
        let state = pin.state.clone();
        let state = &state;
        let mut fp = FastPath::with_server(server, addrs, port, templates);
        fp.pin = Some(pin);
        fp.server.set_service_addrs(addrs)?;
        fp.generation = state.generation;
        fp.nsec3_half = state.nsec3_half;
        // `prepare` clears `clean` of a record whose serials differ: those first.
        let reason = if state.zones != super::pin_state::serials(engine) {
            "zones changed while the daemon was down".to_owned()
        } else if state.settings != super::pin_state::settings(engine) {
            "the answers' settings changed while the daemon was down".to_owned()
        } else if !state.clean {
            "a publication was under way when the daemon stopped".to_owned()
        } else if state.digest.is_none() {
            "the maps were last changed incrementally".to_owned()
        } else {
            match fp.keep(engine, state) {
                Ok(true) => {
                    return Ok((
                        fp,
                        Adopted::Kept {
                            generation: state.generation,
                            seconds: t.elapsed().as_secs_f64(),
                        },
                    ))
                }
                Ok(false) => "the zones' answers differ from the maps'".to_owned(),
                Err(e) => format!("{e:#}"),
            }
        };
        fp.take_served()?;
        let p = fp.publish(engine)?;
        let stale = fp.server.store.take_reserved();
        fp.server.retired.extend(stale);
        Ok((
            fp,
            Adopted::Republished {
                generation: p.generation,
                seconds: t.elapsed().as_secs_f64(),
                reason,
            },
        ))
    }

    /// Takes the maps as holding `engine`'s answers for the generation served when they do
    /// (false: they do not; nothing was written but the settings).
    fn keep(&mut self, engine: &Engine, state: &PinState) -> Result<bool> {
        let generation = state.generation;
        let t = Instant::now();
        let entries = compile_all(engine, generation, state.nsec3_half * nsec3::HALF_SLOTS);
        let compiled = t.elapsed().as_secs_f64();
        if Some(state.digest(&entries)) != state.digest {
            return Ok(false);
        }
        let digested = t.elapsed().as_secs_f64();
        let mut store = TemplateStore::with_slots(self.server.template_capacity);
        let names = ExactNames::of(&entries.exact);
        let mut take = |r: Option<dns_common::AnswerRef>, body: &super::templates::Body, e| {
            let Some(r) = r else { return false };
            if r.kind != epoch::with_epoch(body.kind(), e) || r.anchor_len != body.anchor_len() {
                return false;
            }
            match body.kind() & 0xff == dns_common::AnswerKind::Pass as u16 {
                true => r.template == 0,
                false => store.adopt(body, r.template),
            }
        };
        for (k, b) in &entries.exact {
            if !take(self.server.answers.get(k).ok().flatten(), b, 0) {
                return Ok(false);
            }
        }
        for (k, b) in &entries.suffix {
            if !take(
                self.server.suffixes.get(k).ok().flatten(),
                b,
                names.epoch(k),
            ) {
                return Ok(false);
            }
        }
        log::info!(
            "XDP maps adopted as they are: compiled in {compiled:.2}s, digest equal after \
             {digested:.2}s, {} template ids read back by {:.2}s",
            store.len(),
            t.elapsed().as_secs_f64()
        );
        self.server.store = store;
        self.write_settings(engine, generation)?;
        self.exact_keys = KeySet::new(entries.exact.iter().map(|(k, _)| *k).collect());
        self.suffix_keys = KeySet::new(entries.suffix.iter().map(|(k, _)| k.clone()).collect());
        self.served(engine, &entries);
        Ok(true)
    }

    /// Reads the served generation's keys and template ids from the maps, for the next
    /// publication to remove them and not to reuse the ids before the switch.
    fn take_served(&mut self) -> Result<()> {
        let mut ids = HashSet::new();
        let mut exact: Vec<AnswerKey> = Vec::new();
        for kv in self.server.answers.iter() {
            let (k, v) = kv.context("reading the pinned answer map")?;
            ids.insert(v.template);
            exact.push(k);
        }
        let mut suffix = Vec::new();
        for kv in self.server.suffixes.iter() {
            let (k, v) = kv.context("reading the pinned suffix map")?;
            ids.insert(v.template);
            suffix.push(k);
        }
        self.server.store.reserve(ids);
        self.exact_keys = KeySet::new(exact);
        self.suffix_keys = KeySet::new(suffix);
        Ok(())
    }
}
