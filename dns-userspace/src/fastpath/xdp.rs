//! The embedded XDP program: loading it, attaching it to an interface, and access to its maps
//! (the answer index, the template cache, configuration, service addresses, per-CPU counters
//! and the ring of cold template ids).

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{
        lpm_trie::{Key as LpmKey, LpmTrie},
        Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf,
    },
    programs::{xdp::XdpLinkId, ProgramError, Xdp, XdpMode},
    Ebpf, EbpfLoader,
};
use dns_common::{
    counter, maps, rrl::RrlConfig, Answer, AnswerKind, AnswerRef, Config, EdnsConfig,
    ANSWERS_CAPACITY, NAME_BUF, SUFFIXES_CAPACITY, TEMPLATES_CAPACITY, TEMPLATES_MAX_SLOTS,
};

use super::answer_index::AnswerIndex;
use super::compile::Entries;
use super::epoch::{self, ExactNames};
use super::nsec3_maps::Nsec3Maps;
use super::nsec_maps::NsecLabels;
use super::suffix_index::SuffixIndex;
use super::template_cache::TemplateCache;
use super::templates::{Body, TemplateStore};

/// The compiled `dns-ebpf` object, built by build.rs.
pub static PROGRAM_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dns-ebpf"));

/// Name of the answering program in the object.
pub const PROGRAM: &str = "xdp_dns";
/// Name of the NSEC3 denial program it tail-calls.
pub const NSEC3_PROGRAM: &str = "xdp_dns_nsec3";
/// The program `PROGRAM` tail-calls to write every other answer it found.
pub const RESPOND_PROGRAM: &str = "xdp_dns_respond";
/// Name of the pass-everything program in the object (for the peer side of test veths).
#[cfg(feature = "test-support")]
pub const PASS_PROGRAM: &str = "xdp_pass";

/// How to attach: `native` (driver mode), `generic` (SKB mode) or `auto` (native, else generic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    Native,
    Generic,
    Auto,
}

/// Smallest index map size.
const MIN_INDEX: u32 = 4096;

/// Map sizes to load the program with.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    /// `ANSWERS` index entries (allocated on insert).
    pub answers: u32,
    /// `SUFFIXES` index entries (allocated on insert).
    pub suffixes: u32,
    /// `TEMPLATES` cache slots (preallocated; at most `TEMPLATES_MAX_SLOTS`).
    pub templates: u32,
    /// `NSEC3_HASHES` and `NSEC3_RECORDS` entries, two generations (preallocated).
    pub nsec3: u32,
    /// `NSEC_LABELS` entries, two generations (preallocated).
    pub nsec_labels: u32,
    /// `SUFFIX_DIR` buckets (a power of two, at least `DIR_PROBES`); 0: `dir_buckets` of
    /// `suffixes`. Tests crowd the directory with a small one.
    pub suffix_buckets: u32,
    /// The suffix hash's seed; 0: random. Tests fix it to place entries the same way each run.
    pub suffix_seed: u64,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            answers: ANSWERS_CAPACITY,
            suffixes: SUFFIXES_CAPACITY,
            templates: TEMPLATES_CAPACITY,
            nsec3: dns_common::NSEC3_CAPACITY,
            nsec_labels: dns_common::NSEC_LABELS_CAPACITY,
            suffix_buckets: 0,
            suffix_seed: 0,
        }
    }
}

/// What one `insert` did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inserted {
    /// Templates the entries refer to that were not stored before.
    pub new_templates: usize,
    /// Of those, how many went into the kernel cache (the rest wait for promotion).
    pub cached: usize,
}

/// A loaded XDP program with its maps: loaded from the object (`load_with_capacity`), or the
/// program and maps an earlier daemon pinned, opened again (`pin_open`).
pub struct XdpServer {
    /// The object it was loaded from (`None`: opened from its pins, see `adopted`).
    pub(super) ebpf: Option<Ebpf>,
    /// The program opened from its pin, when `ebpf` is `None`.
    pub(super) adopted: Option<Xdp>,
    /// Kernel ids of the object's maps, by name (for pinning them).
    pub(super) map_ids: Vec<(String, u32)>,
    pub answers: AnswerIndex,
    pub suffixes: SuffixIndex,
    pub templates: TemplateCache,
    pub(super) cold: Option<RingBuf<MapData>>,
    /// The NSEC3 zones of the generations published.
    pub nsec3: Nsec3Maps,
    /// The NSEC zones' labels of the generations published.
    pub nsec_labels: NsecLabels,
    /// Holds the tail call to the NSEC3 denial program (the kernel empties a program array
    /// when userspace closes it).
    pub(super) _jump: ProgramArray<MapData>,
    /// Kernel id of `JUMP`, for pinning it beside the link (`pin`): a program array loses its
    /// entries when no process or pin refers to it, and the tail calls would then fail.
    pub(super) jump_id: u32,
    pub(super) store: TemplateStore,
    /// Template ids no entry refers to since the last publication, still in the cache (see
    /// `flush_retired`).
    pub(super) retired: Vec<u32>,
    pub(super) template_capacity: u32,
    /// The index sizes it was loaded with.
    pub(super) index_capacity: (u32, u32),
    pub(super) config: Array<MapData, Config>,
    pub(super) edns: Array<MapData, EdnsConfig>,
    pub(super) rrl: Array<MapData, RrlConfig>,
    pub(super) rrl_exempt: LpmTrie<MapData, [u8; 16], u8>,
    pub(super) service_addrs: HashMap<MapData, [u8; 16], u8>,
    pub(super) counters: PerCpuArray<MapData, u64>,
    /// Counts of the programs it took over from (`take_over`), added to its own.
    pub(super) carried: Vec<u64>,
    // Kept alive: dropping it closes the log map (aya-log 0.3).
    pub(super) _logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// The interface and the link the program is attached with (`pin` may hold the link
    /// pinned too).
    pub(super) attached: Option<(String, XdpLinkId)>,
}

pub(super) fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("map {name} missing from the XDP object"))?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

/// The answer index over the object's `ANSWERS` and `ANSWER_DIR`, its mask beside the suffix
/// index's in `SUFFIX_SEED`.
fn answer_index(ebpf: &mut Ebpf, suffixes: &mut SuffixIndex) -> Result<AnswerIndex> {
    let seed = suffixes.seed();
    let (seed_map, adopted) = suffixes.seed_map();
    AnswerIndex::new(
        take(ebpf, maps::ANSWERS)?,
        take(ebpf, maps::ANSWER_DIR)?,
        seed_map,
        seed,
        adopted,
    )
}

impl XdpServer {
    /// Loads the program into the kernel (verifier included); does not attach it.
    pub fn load() -> Result<XdpServer> {
        XdpServer::load_with_capacity(Capacity::default())
    }

    /// Loads with room for this many index entries in each map (at least `MIN_INDEX`), and
    /// exactly `cap.templates` cached templates. The hash map's bucket array follows its size,
    /// so an index sized to the zones stays in the CPU caches.
    pub fn load_with_capacity(cap: Capacity) -> Result<XdpServer> {
        bump_memlock_rlimit();
        let templates = cap.templates.clamp(1, TEMPLATES_MAX_SLOTS);
        let index_capacity = (cap.answers.max(MIN_INDEX), cap.suffixes.max(MIN_INDEX));
        if index_capacity.0.max(index_capacity.1) > dns_common::DIR_SLOTS_MAX {
            bail!(
                "{} exact and {} suffix entries: more than a directory addresses ({})",
                index_capacity.0,
                index_capacity.1,
                dns_common::DIR_SLOTS_MAX
            );
        }
        let buckets = match cap.suffix_buckets {
            0 => dns_common::dir_buckets(index_capacity.1),
            n => n,
        };
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(maps::ANSWERS, index_capacity.0)
            .map_max_entries(maps::SUFFIXES, index_capacity.1)
            .map_max_entries(maps::SUFFIX_DIR, buckets)
            .map_max_entries(maps::ANSWER_DIR, dns_common::dir_buckets(index_capacity.0))
            .map_max_entries(maps::TEMPLATES, templates)
            .map_max_entries(maps::NSEC3_HASHES, cap.nsec3.max(2))
            .map_max_entries(maps::NSEC3_RECORDS, cap.nsec3.max(2))
            .map_max_entries(maps::NSEC_LABELS, cap.nsec_labels.max(2))
            .load(PROGRAM_OBJECT)
            .context("loading the XDP object")?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                log::debug!("eBPF logger not initialised: {e}");
                None
            }
        };
        load_program(&mut ebpf, PROGRAM)?;
        let respond_fd = load_program(&mut ebpf, RESPOND_PROGRAM)?
            .fd()?
            .try_clone()?;
        let denial_fd = load_program(&mut ebpf, NSEC3_PROGRAM)?.fd()?.try_clone()?;
        let jump_map = ebpf
            .take_map(maps::JUMP)
            .ok_or_else(|| anyhow!("map {} missing from the XDP object", maps::JUMP))?;
        let jump_id = match &jump_map {
            aya::maps::Map::ProgramArray(d) => d.info().context("reading JUMP's id")?.id(),
            _ => bail!("map {} has an unexpected type", maps::JUMP),
        };
        let mut jump = ProgramArray::try_from(jump_map)?;
        jump.set(0, &denial_fd, 0)
            .context("installing the NSEC3 denial program")?;
        jump.set(1, &respond_fd, 0)
            .context("installing the respond program")?;
        let mut map_ids = vec![(maps::JUMP.to_owned(), jump_id)];
        // Not the global data sections (`.rodata`, ...): the program holds them, and a bpffs
        // name cannot start with a dot.
        for (name, map) in ebpf.maps().filter(|(n, _)| !n.starts_with('.')) {
            if let Some(d) = map_data(map) {
                map_ids.push((
                    name.to_owned(),
                    d.info().context("reading a map's id")?.id(),
                ));
            }
        }
        let mut suffixes = SuffixIndex::new(
            take(&mut ebpf, maps::SUFFIXES)?,
            take(&mut ebpf, maps::SUFFIX_DIR)?,
            take(&mut ebpf, maps::SUFFIX_SEED)?,
            cap.suffix_seed,
        )?;
        let answers = answer_index(&mut ebpf, &mut suffixes)?;
        Ok(XdpServer {
            _jump: jump,
            jump_id,
            map_ids,
            adopted: None,
            answers,
            suffixes,
            templates: TemplateCache::new(take(&mut ebpf, maps::TEMPLATES)?, templates),
            cold: Some(take(&mut ebpf, maps::COLD)?),
            nsec3: Nsec3Maps::take(&mut ebpf, cap.nsec3.max(2))?,
            nsec_labels: NsecLabels::take(&mut ebpf, cap.nsec_labels.max(2))?,
            store: TemplateStore::with_slots(templates),
            retired: Vec::new(),
            template_capacity: templates,
            index_capacity,
            config: take(&mut ebpf, maps::CONFIG)?,
            edns: take(&mut ebpf, maps::EDNS)?,
            rrl: take(&mut ebpf, maps::RRL)?,
            rrl_exempt: take(&mut ebpf, maps::RRL_EXEMPT)?,
            service_addrs: take(&mut ebpf, maps::SERVICE_ADDRS)?,
            counters: take(&mut ebpf, maps::COUNTERS)?,
            carried: vec![0; counter::COUNT as usize],
            _logger: logger,
            ebpf: Some(ebpf),
            attached: None,
        })
    }

    pub(super) fn program(&mut self) -> Result<&mut Xdp> {
        if let Some(p) = self.adopted.as_mut() {
            return Ok(p);
        }
        Ok(self
            .ebpf
            .as_mut()
            .context("no XDP program")?
            .program_mut(PROGRAM)
            .ok_or_else(|| anyhow!("program {PROGRAM} missing"))?
            .try_into()?)
    }

    /// Attaches to `iface`.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<()> {
        let prog = self.program()?;
        let id = match mode {
            AttachMode::Native => prog.attach(iface, XdpMode::Driver),
            AttachMode::Generic => prog.attach(iface, XdpMode::Skb),
            AttachMode::Auto => prog
                .attach(iface, XdpMode::Driver)
                .or_else(|_| prog.attach(iface, XdpMode::Skb)),
        }
        .with_context(|| format!("attaching XDP to {iface} in {mode:?} mode"))?;
        self.attached = Some((iface.to_owned(), id));
        Ok(())
    }

    /// Detaches from the interface, if attached.
    pub fn detach(&mut self) -> Result<()> {
        if let Some((iface, id)) = self.attached.take() {
            self.program()?
                .detach(id)
                .with_context(|| format!("detaching XDP from {iface}"))?;
        }
        Ok(())
    }

    /// Takes the place of `old` on its interface, if it is attached (the kernel swaps the
    /// programs atomically), and carries its counters over. If the swap fails the old program
    /// may be detached (its link is consumed): userspace then answers everything.
    pub fn take_over(&mut self, old: &mut XdpServer) -> Result<()> {
        if let Some((iface, id)) = old.attached.take() {
            let link = old
                .program()?
                .take_link(id)
                .context("taking the XDP link")?;
            let id = self
                .program()?
                .attach_to_link(link)
                .with_context(|| format!("replacing the XDP program on {iface}"))?;
            self.attached = Some((iface, id));
        }
        // After the swap: the old program counts nothing more.
        self.carried = old.counters()?;
        Ok(())
    }

    /// The sizes it was loaded with: index entries (`ANSWERS`, `SUFFIXES`) and templates.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            answers: self.index_capacity.0,
            suffixes: self.index_capacity.1,
            templates: self.template_capacity,
            nsec3: self.nsec3.capacity(),
            nsec_labels: self.nsec_labels.capacity(),
            suffix_buckets: self.suffixes.buckets(),
            suffix_seed: 0,
        }
    }

    /// The index entry for `body`, interning the body; new ones are noted in `fresh` with the
    /// length of the name they answer for (shorter names are cached first).
    fn reference(
        &mut self,
        body: &Body,
        name_len: usize,
        fresh: &mut Vec<(usize, u32)>,
    ) -> AnswerRef {
        let template = if body.kind() & 0xff == AnswerKind::Pass as u16 {
            0
        } else {
            let (id, new) = self.store.intern(body);
            if new {
                fresh.push((name_len, id));
            }
            id
        };
        AnswerRef {
            kind: body.kind(),
            anchor_len: body.anchor_len(),
            template,
        }
    }

    /// Inserts compiled entries: every key into the index, and the templates that are new into
    /// the cache as far as it has room. Starts a new round of the template store (see
    /// `retire_templates` and `discard_new_templates`).
    pub fn insert(&mut self, entries: &Entries) -> Result<Inserted> {
        self.flush_retired();
        // Before any template that refers to them.
        let labels = self.nsec_labels.write(&entries.nsec3)?;
        self.nsec3.write(&entries.nsec3, &labels)?;
        self.store.begin();
        let mut fresh = Vec::new();
        for (k, v) in &entries.exact {
            let name_len = NAME_BUF - k.name.iter().take_while(|b| **b == 0).count();
            let r = self.reference(v, name_len, &mut fresh);
            self.answers
                .insert(k, r)
                .context("filling the XDP answer map")?;
        }
        // Before any suffix entry: the depths the new generation has no entries at.
        if let Some((k, _)) = entries.suffix.first() {
            let live = self.config()?.generation;
            let g = SuffixIndex::generation_of(k);
            self.suffixes
                .write_skip(g, entries.suffix.iter().map(|(k, _)| k), live)?;
        }
        let names = ExactNames::of(&entries.exact);
        for (k, v) in &entries.suffix {
            let mut r = self.reference(v, k.prefix.len(), &mut fresh);
            r.kind = epoch::with_epoch(r.kind, names.epoch(k));
            self.suffixes
                .insert(k, r)
                .context("filling the XDP suffix map")?;
        }
        // Into free slots of their groups, shorter names first; the rest wait for promotion.
        fresh.sort_unstable();
        let mut cached = 0;
        for (_, id) in &fresh {
            cached += self.cache_template(*id)? as usize;
        }
        Ok(Inserted {
            new_templates: fresh.len(),
            cached,
        })
    }

    /// Starts an incremental update of the template references (`acquire`, `release`).
    pub fn begin_update(&mut self) {
        self.flush_retired();
        self.store.begin_update();
    }

    /// Removes the templates retired by the last publication from the cache (their slots to
    /// none, see `template_cache`). Done at the start of the next one, not at once, so that a
    /// query that read an old generation's index entry just before the switch is still
    /// answered from XDP.
    fn flush_retired(&mut self) {
        for id in std::mem::take(&mut self.retired) {
            let _ = self.templates.remove(id);
        }
    }

    /// The index entry for `body`, with one more reference to its template (pass markers
    /// have none); and whether that template is new (to be cached before it is referred to).
    pub fn acquire(&mut self, body: &Body) -> (AnswerRef, bool) {
        let (template, new) = if body.kind() & 0xff == AnswerKind::Pass as u16 {
            (0, false)
        } else {
            self.store.acquire(body)
        };
        let r = AnswerRef {
            kind: body.kind(),
            anchor_len: body.anchor_len(),
            template,
        };
        (r, new)
    }

    /// The index entry `body` has now, without a new reference; `None` when its template is
    /// not stored.
    pub fn current_ref(&self, body: &Body) -> Option<AnswerRef> {
        let template = if body.kind() & 0xff == AnswerKind::Pass as u16 {
            0
        } else {
            self.store.id_of(body)?
        };
        Some(AnswerRef {
            kind: body.kind(),
            anchor_len: body.anchor_len(),
            template,
        })
    }

    /// One reference fewer to the template of `r`.
    pub fn release(&mut self, r: &AnswerRef) {
        if r.template != 0 {
            self.store.release(r.template);
        }
    }

    /// Retires the templates no entry refers to any more (after `release`): forgotten by the
    /// store now, removed from the cache at the next publication (see `flush_retired`);
    /// returns how many.
    pub fn retire_released(&mut self) -> usize {
        let gone = self.store.retire_released();
        let n = gone.len();
        self.retired.extend(gone);
        n
    }

    /// Puts a stored template into a free slot of the cache; false when it is not stored or
    /// its slots are all taken (it waits for promotion).
    pub fn cache_template(&mut self, id: u32) -> Result<bool> {
        let Some(body) = self.store.get(id) else {
            return Ok(false);
        };
        self.templates.insert(id, &body)
    }

    /// Puts these templates into the kernel cache, evicting others of their slot groups
    /// (`template_cache::TemplateCache::promote`); ids no longer stored are skipped. Returns
    /// how many went in.
    pub fn promote(&mut self, ids: &[u32]) -> Result<usize> {
        let items: Vec<(u32, Answer)> = ids
            .iter()
            .filter_map(|id| Some((*id, self.store.get(*id)?)))
            .collect();
        let store = &self.store;
        self.templates.promote(&items, |id| store.contains(id))
    }

    /// Retires the templates the last `insert` did not use (see `retire_released`).
    pub fn retire_templates(&mut self) {
        let gone = self.store.retire_unused();
        self.retired.extend(gone);
    }

    /// Removes the templates the last `insert` made (a failed publication).
    pub fn discard_new_templates(&mut self) {
        for id in self.store.discard_fresh() {
            let _ = self.templates.remove(id);
        }
    }

    /// Templates stored in userspace, and the size of the kernel cache.
    pub fn template_counts(&self) -> (usize, u32) {
        (self.store.len(), self.template_capacity)
    }

    /// Templates in the kernel cache.
    pub fn templates_cached(&self) -> usize {
        self.templates.len()
    }

    /// The ring of cold template ids (once: the promoter owns it).
    pub fn take_cold_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.cold.take()
    }

    /// Writes the EDNS settings (NSID, cookie secrets, the cookies' clock offset).
    pub fn set_edns(&mut self, cfg: EdnsConfig) -> Result<()> {
        self.edns
            .set(0, cfg, 0)
            .context("writing XDP EDNS settings")
    }

    /// Writes the rate limiting settings (`RRL`; all zero: off) and makes the exempt prefix
    /// trie hold exactly `exempt` ((bits, IPv6 or IPv4-mapped address) keys).
    pub fn set_rrl(&mut self, cfg: RrlConfig, exempt: &[(u32, [u8; 16])]) -> Result<()> {
        let trie = &mut self.rrl_exempt;
        let old: Vec<(u32, [u8; 16])> = trie
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| (k.prefix_len(), k.data()))
            .collect();
        for (bits, addr) in exempt {
            trie.insert(&LpmKey::new(*bits, *addr), 1, 0)
                .context("writing the RRL exempt prefixes")?;
        }
        for (bits, addr) in old.iter().filter(|k| !exempt.contains(k)) {
            trie.remove(&LpmKey::new(*bits, *addr))
                .context("removing an RRL exempt prefix")?;
        }
        self.rrl
            .set(0, cfg, 0)
            .context("writing the XDP RRL settings")
    }

    pub fn config(&self) -> Result<Config> {
        self.config.get(&0, 0).context("reading XDP config")
    }

    /// Counters summed over CPUs, in `counter::NAMES` order (with those of the programs it took
    /// over from).
    pub fn counters(&self) -> Result<Vec<u64>> {
        (0..counter::COUNT)
            .map(|i| {
                let v = self.counters.get(&i, 0).context("reading counters")?;
                Ok(v.iter().sum::<u64>() + self.carried[i as usize])
            })
            .collect()
    }
}

impl Drop for XdpServer {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            log::warn!("{e:#}");
        }
    }
}

/// The map data of `map`, for the map types the object has.
fn map_data(map: &aya::maps::Map) -> Option<&MapData> {
    use aya::maps::Map as M;
    match map {
        M::Array(d)
        | M::HashMap(d)
        | M::LruHashMap(d)
        | M::LpmTrie(d)
        | M::PerCpuArray(d)
        | M::PerCpuHashMap(d)
        | M::ProgramArray(d)
        | M::RingBuf(d)
        | M::PerfEventArray(d) => Some(d),
        _ => None,
    }
}

pub use super::service::service_key;

/// Loads the object's XDP program `name` into the kernel (the verifier runs here).
fn load_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing"))?
        .try_into()?;
    prog.load()
        .map_err(verifier_error)
        .with_context(|| format!("verifying {name}"))?;
    Ok(prog)
}

fn verifier_error(e: ProgramError) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // For developers: the whole log, which can be long.
            if let Some(path) = std::env::var_os("XDPDNS_VERIFIER_LOG") {
                let _ = std::fs::write(path, &log);
            }
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow!(
                "the kernel rejected the XDP program: {io_error}\nverifier log (tail):\n{}",
                tail.join("\n")
            )
        }
        e => anyhow!(e).context("loading the XDP program"),
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn bump_memlock_rlimit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        log::debug!("setrlimit(RLIMIT_MEMLOCK) failed");
    }
}

/// Loads only the pass-everything program and attaches it to `iface` (test helper for the
/// client side of a veth pair). The returned handle detaches on drop.
#[cfg(feature = "test-support")]
pub fn attach_pass(iface: &str) -> Result<Ebpf> {
    bump_memlock_rlimit();
    let mut ebpf = Ebpf::load(PROGRAM_OBJECT).context("loading the XDP object")?;
    let prog: &mut Xdp = ebpf
        .program_mut(PASS_PROGRAM)
        .ok_or_else(|| anyhow!("program {PASS_PROGRAM} missing"))?
        .try_into()?;
    prog.load()?;
    prog.attach(iface, XdpMode::Driver)
        .with_context(|| format!("attaching {PASS_PROGRAM} to {iface}"))?;
    Ok(ebpf)
}
