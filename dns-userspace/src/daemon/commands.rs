//! The control commands (`daemon::control` carries them): what each does and its reply, as
//! text for people or, after `--json`, one JSON document for scripts.
//!
//! Commands that change what is served — `reload`/`zone reload`, `zone add|remove`,
//! `record add|del`, SIGHUP — run one at a time (`Control::zones`, the list of zones served
//! from files, is their lock) and change nothing when they fail, saying why. `zone add` and
//! `zone remove` last until the next restart or SIGHUP, which read the configuration file
//! again; record changes are kept in the zone's journal (`changes`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use super::record::{self, Op, RecordChange};
use super::served::FileEdit;
use super::{changes, health, held, report, ServeOptions, State};
use crate::engine::Catalog;
use crate::fastpath::change::ZoneChange;
use crate::fastpath::Published;
use crate::net::tally::Tally;
use crate::wire::name::Name;
use crate::zone::load::{load_zone, ZoneSpec};

/// Re-reads the configuration file and the command line over it (for SIGHUP).
#[derive(Clone)]
pub struct Reconfigure(pub Arc<dyn Fn() -> Result<ServeOptions> + Send + Sync>);

impl std::fmt::Debug for Reconfigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reconfigure")
    }
}

/// What the control commands keep between them.
#[derive(Default)]
pub struct Control {
    /// The zones served from files now; held by every command that changes what is served.
    pub zones: Mutex<Vec<ZoneSpec>>,
    /// The outcome of the last reload (`Err`: why it changed nothing), for `status`.
    pub last_reload: Mutex<Option<Result<String, String>>>,
    /// What userspace sees of the queries (per zone, `top`).
    pub tally: Arc<Tally>,
    /// Set by `detach`.
    pub detached: std::sync::atomic::AtomicBool,
}

impl Control {
    pub fn new(zones: Vec<ZoneSpec>) -> Control {
        Control {
            zones: Mutex::new(zones),
            ..Control::default()
        }
    }

    /// Notes that the XDP path runs (queries userspace gets are the ones it passed).
    pub fn xdp_started(&self) {
        self.tally
            .xdp
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A command's reply, both ways.
pub struct Reply {
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// A reply that is a message: the text, and `{"message": text}`.
    fn message(text: String) -> Reply {
        let json = json!({ "message": text.trim_end() });
        Reply { text, json }
    }
}

/// The commands, for the unknown-command error.
const KNOWN: &str =
    "stats, status, health, reload, zone reload|add|remove, record add|del, top [N], map check, detach";

/// Runs one command line (after the protocol version): `[--json] COMMAND [ARGS]`.
pub(super) fn command(state: &State, line: &str) -> Result<String> {
    let (json, line) = match line.split_once(' ').unwrap_or((line, "")) {
        ("--json", rest) => (true, rest.trim_start()),
        _ => (false, line),
    };
    let reply = dispatch(state, line)?;
    Ok(if json {
        format!("{}\n", reply.json)
    } else {
        reply.text
    })
}

fn dispatch(state: &State, line: &str) -> Result<Reply> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["stats"] => report::stats(state),
        ["status"] => Ok(report::status(state)),
        ["health"] => {
            let line = health::verdict(state)?;
            let healthy = line.starts_with("ok");
            Ok(Reply {
                json: json!({ "healthy": healthy, "verdict": line.trim_end() }),
                text: line,
            })
        }
        ["reload"] | ["zone", "reload"] => reload(state),
        ["top"] => Ok(top(state, 20)),
        ["top", n] => Ok(top(
            state,
            n.parse()
                .map_err(|_| anyhow!("top {n:?}: expected a number of names"))?,
        )),
        ["detach"] => detach(state),
        ["map", "check"] => map_check(state),
        ["zone", "reload", name] => reload_zone(state, &zone_name(name)?),
        ["zone", "add", name, file] => zone_add(state, &zone_name(name)?, file),
        ["zone", "remove", name] => zone_remove(state, &zone_name(name)?),
        ["record", op, zone, ..] => {
            let op = Op::parse(op)?;
            let apex = zone_name(zone)?;
            // NAME TTL TYPE RDATA: the rest of the line as written (RDATA may hold blanks).
            let rest = after_words(line, 3);
            record_change(state, op, &apex, rest)
        }
        // Fault injection for the tests (see engine::fault): the control task's panic is
        // contained like any other.
        #[cfg(feature = "test-support")]
        ["test-panic"] => panic!("fault injected for the tests: control command"),
        ["zone", ..] => bail!(
            "usage: zone reload [NAME] | zone add NAME FILE | zone remove NAME (got {line:?})"
        ),
        _ => bail!("unknown command {line:?} (known: {KNOWN})"),
    }
}

/// `s` after its first `n` words.
fn after_words(s: &str, n: usize) -> &str {
    let mut rest = s;
    for _ in 0..n {
        rest = rest.trim_start();
        rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
    }
    rest.trim_start()
}

fn zone_name(s: &str) -> Result<Name> {
    let absolute = if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    };
    Name::parse(&absolute, None).map_err(|e| anyhow!("zone name {s:?}: {e}"))
}

/// The XDP publication's line of a reply.
fn published_line(p: &Published) -> String {
    format!(
        "xdp generation {} with {} entries, {} templates ({} new, {} cached)",
        p.generation, p.entries, p.templates, p.new_templates, p.cached
    )
}

/// A change's reply text: the XDP publication's line, when there was one, then `what` (also
/// logged).
fn done(published: Option<&Published>, what: &str) -> String {
    log::info!("{what}");
    match published {
        Some(p) => format!("{}\n{what}\n", published_line(p)),
        None => format!("{what}\n"),
    }
}

/// Reloads every zone file (each with its journal); the secondary zones stay as they are. Any
/// error leaves everything as it was.
pub(super) fn reload(state: &State) -> Result<Reply> {
    let zones = held(&state.control.zones);
    let r = reload_files(state, &zones);
    note_reload(state, &r);
    r
}

/// Reloads the zone files `specs`, and serves them instead of the zones from files served now.
fn reload_files(state: &State, specs: &[ZoneSpec]) -> Result<Reply> {
    reload_files_configured(state, specs, None)
}

/// `reload_files`, serving with the engine settings `config` from now on when given.
fn reload_files_configured(
    state: &State,
    specs: &[ZoneSpec],
    config: Option<crate::engine::EngineConfig>,
) -> Result<Reply> {
    let (catalog, warnings) = changes::load_files(specs, &state.opts.storage)?;
    let mut out = String::new();
    for w in &warnings {
        log::warn!("{w}");
        writeln!(out, "warning: {w}")?;
    }
    let files = catalog.zones().count();
    let (published, zones) = state
        .served
        .change_configured(config, |s| s.files = catalog)?;
    if let Some(p) = &published {
        writeln!(out, "{}", published_line(p))?;
    }
    let secondaries = zones - files;
    let done = format!("reloaded {files} zones from files ({secondaries} secondary zones kept)");
    writeln!(out, "{done}")?;
    log::info!("{done}");
    let json = json!({
        "zones_from_files": files,
        "secondary_zones": secondaries,
        "warnings": warnings,
        "xdp_generation": published.map(|p| p.generation),
    });
    Ok(Reply { text: out, json })
}

/// Keeps the outcome of a reload for `status`.
fn note_reload(state: &State, r: &Result<Reply>) {
    let outcome = match r {
        Ok(reply) => Ok(reply.text.lines().last().unwrap_or("").to_owned()),
        Err(e) => Err(format!("{e:#}")),
    };
    *held(&state.control.last_reload) = Some(outcome);
}

/// SIGHUP: reads the configuration file again and serves the zone files it names (added,
/// removed or changed); a configuration that does not load changes nothing.
pub(super) fn reconfigure(state: &State) -> Result<String> {
    let mut zones = held(&state.control.zones);
    let r = (|| {
        let Some(again) = &state.opts.reconfigure else {
            return reload_files(state, &zones);
        };
        let opts = (again.0)().context("reading the configuration again")?;
        let now: Vec<&Name> = state.secondaries.iter().map(|s| &s.spec.zone).collect();
        let then: Vec<&Name> = opts.secondaries.iter().map(|s| &s.zone).collect();
        if now != then {
            log::warn!("SIGHUP: secondary zones added or removed take effect at the next restart");
        }
        for z in &opts.zones {
            if now.contains(&&z.origin) {
                bail!("zone {} is configured twice (file and secondary)", z.origin);
            }
        }
        let settings = super::sighup::settings(state, &opts);
        for r in &settings.restart {
            log::warn!("SIGHUP: {r} changed: takes effect at the next restart");
        }
        let mut reply = reload_files_configured(state, &opts.zones, settings.engine)?;
        if !settings.applied.is_empty() {
            let line = format!("settings applied: {}", settings.applied.join(", "));
            log::info!("SIGHUP: {line}");
            reply.text.push_str(&format!("{line}\n"));
        }
        if !settings.restart.is_empty() {
            let line = format!(
                "settings taking effect at the next restart: {}",
                settings.restart.join(", ")
            );
            reply.text.push_str(&format!("{line}\n"));
        }
        reply.json["settings_applied"] = json!(settings.applied);
        reply.json["settings_at_restart"] = json!(settings.restart);
        *zones = opts.zones;
        Ok(reply)
    })();
    note_reload(state, &r);
    r.map(|r| r.text)
}

/// `zone reload NAME`: the zone's file (and journal) again, on both paths at one instant.
fn reload_zone(state: &State, apex: &Name) -> Result<Reply> {
    let zones = held(&state.control.zones);
    let spec = zones
        .iter()
        .find(|z| z.origin == *apex)
        .ok_or_else(|| anyhow!("no zone {apex} is served from a file"))?;
    let r = (|| {
        let (zone, notes) = load_one(state, spec)?;
        let serial = record::serial(&zone)?;
        // A whole new generation, not an incremental update: XDP switches from the old
        // version to the new at one instant (an incremental update is atomic per name only),
        // and userspace with it.
        let zone = Arc::new(zone);
        let (published, _) = state.served.change(|s| s.files.insert(zone))?;
        let mut text = String::new();
        for n in &notes {
            writeln!(text, "warning: {n}")?;
        }
        if let Some(p) = &published {
            writeln!(text, "{}", published_line(p))?;
        }
        writeln!(text, "reloaded zone {apex} serial {serial}")?;
        log::info!(
            "reloaded zone {apex} from {} serial {serial}",
            spec.file.display()
        );
        let json = json!({ "zone": apex.to_string(), "serial": serial, "warnings": notes });
        Ok(Reply { text, json })
    })();
    note_reload(state, &r);
    r
}

/// One zone file with its journal replayed, its notes logged.
fn load_one(state: &State, spec: &ZoneSpec) -> Result<(crate::zone::Zone, Vec<String>)> {
    let (zone, mut notes) = load_zone(spec).with_context(|| format!("zone {}", spec.origin))?;
    let (zone, n) = changes::replay(zone, &state.opts.storage)
        .with_context(|| format!("zone {}", spec.origin))?;
    notes.extend(n);
    for n in &notes {
        log::warn!("{n}");
    }
    Ok((zone, notes))
}

/// `zone add NAME FILE`: serves a zone file (until the next restart or SIGHUP).
fn zone_add(state: &State, apex: &Name, file: &str) -> Result<Reply> {
    let mut zones = held(&state.control.zones);
    if zones.iter().any(|z| z.origin == *apex)
        || state.secondaries.iter().any(|s| s.spec.zone == *apex)
    {
        bail!("zone {apex} is served already");
    }
    let spec = ZoneSpec {
        origin: apex.clone(),
        file: PathBuf::from(file),
    };
    let (zone, _) = load_one(state, &spec)?;
    let serial = record::serial(&zone)?;
    let zone = Arc::new(zone);
    let (published, _) = state.served.change(|s| s.files.insert(zone))?;
    zones.push(spec);
    let what = format!("added zone {apex} serial {serial} from {file}");
    let text = done(published.as_ref(), &what);
    Ok(Reply {
        text,
        json: json!({ "zone": apex.to_string(), "serial": serial, "file": file }),
    })
}

/// `zone remove NAME`: stops serving a zone from a file (its names are REFUSED then).
fn zone_remove(state: &State, apex: &Name) -> Result<Reply> {
    let mut zones = held(&state.control.zones);
    let Some(at) = zones.iter().position(|z| z.origin == *apex) else {
        bail!("no zone {apex} is served from a file");
    };
    let (published, _) = state.served.change(|s| {
        let mut files = Catalog::new();
        for z in s.files.zones().filter(|z| z.apex() != apex) {
            files.insert(z.clone());
        }
        s.files = files;
    })?;
    zones.remove(at);
    Ok(Reply::message(done(
        published.as_ref(),
        &format!("removed zone {apex}"),
    )))
}

/// `record add|del ZONE NAME TTL TYPE RDATA`: the change, journaled, on both paths at once.
fn record_change(state: &State, op: Op, apex: &Name, text: &str) -> Result<Reply> {
    let _one_at_a_time = held(&state.control.zones);
    if state.secondaries.iter().any(|s| s.spec.zone == *apex) {
        bail!("zone {apex} is a secondary zone: its changes come from its primary");
    }
    let change = RecordChange::parse(op, apex, text)?;
    let journal = changes::journal_path(&state.opts.storage, apex);
    let mut made = None;
    let published = state.served.change_file_zone(apex, |old| {
        let (zone, applied, warnings) = record::changed(old, &change)?;
        let len = changes::append(&journal, apex, &change, &applied)?;
        let names = ZoneChange::from_records(apex.clone(), &applied.removed, &applied.added);
        let path = journal.clone();
        made = Some((applied, warnings));
        Ok(FileEdit {
            zone: Arc::new(zone),
            change: names,
            undo: Box::new(move || changes::truncate(&path, len)),
        })
    })?;
    let (applied, warnings) = made.expect("the edit ran");
    let mut text = String::new();
    for w in &warnings {
        log::warn!("{w}");
        let _ = writeln!(text, "warning: {w}");
    }
    let what = format!(
        "{} {}: zone {apex} serial {} -> {}",
        if op == Op::Add { "added" } else { "deleted" },
        record::present(&change.record),
        applied.from,
        applied.to
    );
    text.push_str(&done(published.as_ref(), &what));
    Ok(Reply {
        text,
        json: json!({
            "zone": apex.to_string(),
            "op": op.word(),
            "warnings": warnings,
            "record": record::present(&change.record),
            "serial_from": applied.from,
            "serial_to": applied.to,
            "journal": journal.display().to_string(),
        }),
    })
}

/// `top [N]`: the names userspace is asked most often, with the reason XDP passed them.
fn top(state: &State, n: usize) -> Reply {
    let heavy = state.control.tally.top(n);
    let mut text = format!(
        "{:>10} {:>8}  {:<6} {:<14} name (estimates: one query in {} sampled)\n",
        "queries",
        "±",
        "type",
        "reason",
        crate::net::tally::SAMPLE
    );
    let mut rows = Vec::new();
    for h in &heavy {
        let name = Name::from_wire(&h.key.qname).map_or_else(|_| "?".to_owned(), |n| n.to_string());
        let t = crate::wire::record::rtype::to_string(h.key.qtype);
        let _ = writeln!(
            text,
            "{:>10} {:>8}  {t:<6} {:<14} {name}",
            h.count, h.error, h.key.reason
        );
        rows.push(json!({ "name": name, "type": t, "reason": h.key.reason,
                          "queries": h.count, "error": h.error }));
    }
    Reply {
        text,
        json: json!({ "sample": crate::net::tally::SAMPLE, "top": rows }),
    }
}

/// `detach`: takes the XDP program off the interface; userspace answers everything from now
/// on (until a restart).
fn detach(state: &State) -> Result<Reply> {
    let Some(x) = state.served.xdp() else {
        bail!("XDP is off: nothing to detach");
    };
    {
        let mut fp = held(x);
        if state.opts.xdp_pin.is_some() {
            // The pin would keep the program attached.
            fp.unpin();
        }
        fp.server.detach()?;
    }
    state
        .control
        .tally
        .xdp
        .store(false, std::sync::atomic::Ordering::Relaxed);
    state
        .control
        .detached
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let iface = state.opts.iface.clone().unwrap_or_default();
    log::warn!("XDP detached from {iface} by the control command; userspace answers everything");
    Ok(Reply::message(format!(
        "XDP detached from {iface}: userspace answers every query until the next start\n"
    )))
}

/// `map check`: the XDP maps against the engine's answers; an error listing the differences
/// when there are any.
fn map_check(state: &State) -> Result<Reply> {
    let c = state
        .served
        .with_xdp(|engine, fp| fp.check(engine))
        .ok_or_else(|| anyhow!("XDP is off: no maps to check"))??;
    let text = c.text();
    if c.differences() > 0 {
        log::warn!("map check: {} differences", c.differences());
        bail!("{}", text.trim_end());
    }
    Ok(Reply {
        text,
        json: json!({
            "generation": c.generation, "expected": c.expected, "matching": c.matching,
            "missing": 0, "unexpected": 0, "different": 0, "cold": c.cold,
            "other_generations": c.other_generations,
        }),
    })
}
