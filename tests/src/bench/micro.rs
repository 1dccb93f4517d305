//! Two measurements without load: the XDP program's cost per query through BPF_PROG_TEST_RUN,
//! per answer kind and for the pass path (alone, net of `xdp_pass`: `--micro-only`; the
//! start-up figures are in `load`, with the helpers here that read the maps' memory).
//!
//! TEST_RUN method: with `repeat` > 1 the kernel runs the program again on the packet the
//! previous run left behind, so a path that rewrites the query into a response is timed fully
//! once and then as a pass (the response has QR=1). Every figure here is therefore the median
//! (and mean, p99) of many single runs (`repeat` = 1, each on a fresh copy of the query), as
//! timed by the kernel. The same is done for `xdp_pass` (an empty program: the fixed cost of a
//! TEST_RUN call) and for `xdp_reflect` (the cheapest possible rewrite). For the pass path,
//! which leaves the packet unchanged, the `repeat` = 100k mean is given as a cross-check.

use std::net::IpAddr;
use std::time::Instant;

use crate::frame::{self, FrameSpec};
use anyhow::{Context as _, Result};
use dns_common::{counter, Answer, AnswerRef};
use xdpdns::engine::{Engine, EngineConfig};
use xdpdns::fastpath::xdp::XdpServer;
use xdpdns::zone::load::{load_catalog, ZoneSpec};

use super::json::{obj, Json};
use super::{bpf, cleanup, zone};
use crate::client::Q;

/// Timing of one probe.
#[derive(Clone, Debug)]
pub struct Probe {
    pub label: String,
    /// The counter the probe moved (`answered_*` or `pass_*`), or the program name.
    pub path: String,
    pub action: u32,
    pub runs: usize,
    pub median_ns: f64,
    pub mean_ns: f64,
    pub p99_ns: f64,
    pub repeat_mean_ns: Option<f64>,
}

impl Probe {
    pub fn json(&self) -> Json {
        obj([
            ("probe", self.label.as_str().into()),
            ("path", self.path.as_str().into()),
            ("action", action_name(self.action).into()),
            ("runs", self.runs.into()),
            ("median_ns", self.median_ns.into()),
            ("mean_ns", self.mean_ns.into()),
            ("p99_ns", self.p99_ns.into()),
            ("repeat_mean_ns", self.repeat_mean_ns.into()),
        ])
    }
}

/// Pseudo action of a probe whose runs ended in different actions.
const MIXED: u32 = 99;
/// Pseudo action of the userspace engine probe.
const ENGINE: u32 = 98;

pub fn action_name(a: u32) -> &'static str {
    match a {
        MIXED => "mixed",
        ENGINE => "engine",
        1 => "XDP_DROP",
        2 => "XDP_PASS",
        3 => "XDP_TX",
        4 => "XDP_REDIRECT",
        _ => "XDP_ABORTED",
    }
}

fn summarize(label: &str, path: &str, action: u32, mut ns: Vec<f64>) -> Probe {
    ns.sort_by(f64::total_cmp);
    let pct = |p: f64| ns[((ns.len() - 1) as f64 * p).round() as usize];
    Probe {
        label: label.to_owned(),
        path: path.to_owned(),
        action,
        runs: ns.len(),
        median_ns: pct(0.5),
        mean_ns: ns.iter().sum::<f64>() / ns.len() as f64,
        p99_ns: pct(0.99),
        repeat_mean_ns: None,
    }
}

fn query(name: &str, qtype: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut q = Q::new(name, qtype);
    q.dnssec_ok = dnssec_ok;
    q.wire()
}

pub(crate) fn qtype_code(t: &str) -> u16 {
    match t {
        "A" => 1,
        "NS" => 2,
        "SOA" => 6,
        "MX" => 15,
        "AAAA" => 28,
        "DNSKEY" => 48,
        _ => 255,
    }
}

/// The engine of the bench zone `z`, with an NSID and DNS Cookies (a random secret), as
/// `xdpdns serve` runs.
pub fn engine_for(z: &zone::Zone) -> Result<Engine> {
    let spec: ZoneSpec = z.path.display().to_string().parse()?;
    let (catalog, _) = load_catalog(&[spec]).context("loading the bench zone")?;
    let cookies = xdpdns::engine::cookie::Cookies {
        secret: xdpdns::engine::cookie::random_secret()?,
        previous: None,
        require: false,
        clock: std::sync::Arc::new(xdpdns::xfr::timers::SystemClock),
    };
    let config = EngineConfig {
        nsid: Some(b"bench-node".to_vec()),
        cookies: Some(cookies),
        ..Default::default()
    };
    Ok(Engine::new(catalog, config))
}

/// The XDP program loaded with `engine`'s answers and settings, as `xdpdns serve` fills it.
pub fn xdp_for(engine: &Engine) -> Result<XdpServer> {
    Ok(crate::testrun::load_sized(engine, 7)?.0)
}

/// A query with EDNS options.
fn with_options(name: &str, qtype: u16, options: Vec<(u16, Vec<u8>)>) -> Vec<u8> {
    let mut q = Q::new(name, qtype);
    q.options = options;
    q.wire()
}

/// The TEST_RUN timing of the frame `f`: the counter it moves, `runs` single runs, and for a
/// pass the `repeat` = 100k mean.
fn probe(xdp: &mut XdpServer, label: &str, f: &[u8], runs: usize) -> Result<Probe> {
    let before = xdp.counters()?;
    let (action, _) = xdp.test_run(f)?;
    let after = xdp.counters()?;
    let moved: Vec<usize> = (0..before.len())
        .filter(|&i| after[i] != before[i])
        .collect();
    let path = match moved.as_slice() {
        [i] => counter::NAMES[*i].to_owned(),
        other => format!("counters {other:?}"),
    };
    let mut ns = Vec::with_capacity(runs);
    for _ in 0..runs {
        ns.push(xdp.test_run_repeat(f, 1)?.as_nanos() as f64);
    }
    let mut p = summarize(label, &path, action, ns);
    if action == 2 {
        p.repeat_mean_ns = Some(xdp.test_run_repeat(f, 100_000)?.as_nanos() as f64);
    }
    Ok(p)
}

/// TEST_RUN timings on the generated zone `z`: one probe per answer kind, the benchmark's
/// query set cycled through (names that differ from run to run, as under load), and baselines.
pub fn test_run(z: &zone::Zone, qs: &[zone::Query], runs: usize) -> Result<Vec<Probe>> {
    let engine = engine_for(z)?;
    let mut xdp = xdp_for(&engine)?;
    let server: IpAddr = crate::SERVER_V4.into();
    let client: IpAddr = crate::CLIENT_V4.into();
    let glue = z.labels.first().cloned().unwrap_or_else(|| "none".into());
    let no_glue = z.labels.get(1).cloned().unwrap_or_else(|| "none".into());
    let probes: Vec<(&str, Vec<u8>)> = vec![
        ("exact: apex SOA", query("bench.", 6, false)),
        ("exact: apex NS, DO=1", query("bench.", 2, true)),
        (
            "referral, glue",
            query(&format!("www.{glue}.bench."), 1, false),
        ),
        (
            "referral at the cut (minimised NS)",
            query(&format!("{glue}.bench."), 2, false),
        ),
        (
            "referral, glue, COOKIE",
            with_options(
                &format!("www.{glue}.bench."),
                1,
                vec![(10, b"bindcook".to_vec())],
            ),
        ),
        (
            "referral, glue, NSID",
            with_options(&format!("www.{glue}.bench."), 1, vec![(3, vec![])]),
        ),
        (
            "FORMERR (malformed COOKIE)",
            with_options(&format!("www.{glue}.bench."), 1, vec![(10, vec![7; 9])]),
        ),
        (
            "referral, out-of-zone NS",
            query(&format!("www.{no_glue}.bench."), 1, false),
        ),
        (
            "referral, glue(+DS), DO=1",
            query(&format!("www.{glue}.bench."), 1, true),
        ),
        (
            "referral, no glue, DO=1",
            query(&format!("www.{no_glue}.bench."), 1, true),
        ),
        ("NXDOMAIN", query("no-such-name-0.bench.", 1, false)),
        ("NXDOMAIN, DO=1", query("no-such-name-0.bench.", 1, true)),
        ("NODATA: apex A", query("bench.", 1, false)),
        ("out of zone (REFUSED)", query("www.example.org.", 1, false)),
        (
            "pass: QTYPE ANY (userspace rules)",
            query("bench.", 255, false),
        ),
    ];
    let spec = FrameSpec::udp(client, server, 53);
    let mut out = Vec::new();
    // `XDPDNS_PROBES=TEXT`: only the probes whose label contains TEXT (for tools/bpf-profile);
    // the query set and the engine run only when TEXT is in their labels too.
    let only = std::env::var("XDPDNS_PROBES").ok();
    let wanted = |label: &str| only.as_deref().is_none_or(|o| label.contains(o));
    let probes = probes.into_iter().filter(|(label, _)| wanted(label));
    for (label, dns) in probes {
        out.push(probe(&mut xdp, label, &frame::build(&spec, &dns), runs)?);
    }
    // Under `require-cookie` (set in the EDNS settings for this probe alone), a client cookie
    // alone gets BADCOOKIE: what a spoofed flood gets.
    let label = "BADCOOKIE (require-cookie)";
    if wanted(label) {
        let mut e = xdpdns::fastpath::edns::config(&engine.config);
        e.flags |= dns_common::EDNS_REQUIRE_COOKIE;
        xdp.set_edns(e)?;
        let dns = with_options(
            &format!("www.{glue}.bench."),
            1,
            vec![(10, b"spoofed!".to_vec())],
        );
        out.push(probe(&mut xdp, label, &frame::build(&spec, &dns), runs)?);
        xdp.set_edns(xdpdns::fastpath::edns::config(&engine.config))?;
    }
    // The query set, each frame once per round: map lookups on varying names.
    let frames: Vec<Vec<u8>> = qs
        .iter()
        .take(if wanted("query set") { runs.max(1) } else { 0 })
        .map(|q| frame::build(&spec, &query(&q.name, qtype_code(q.qtype), q.dnssec_ok)))
        .collect();
    if !frames.is_empty() {
        let before = xdp.counters()?;
        let mut ns = Vec::with_capacity(runs);
        for i in 0..runs {
            ns.push(
                xdp.test_run_repeat(&frames[i % frames.len()], 1)?
                    .as_nanos() as f64,
            );
        }
        let after = xdp.counters()?;
        let answered: u64 = (0..after.len())
            .filter(|&i| counter::is_answered(i as u32))
            .map(|i| after[i] - before[i])
            .sum();
        let total: u64 = (0..after.len()).map(|i| after[i] - before[i]).sum();
        let path = format!(
            "{:.1}% answered",
            answered as f64 * 100.0 / total.max(1) as f64
        );
        let action = match answered {
            0 => 2,
            a if a == total => 3,
            _ => MIXED,
        };
        out.push(summarize(
            &format!("query set ({} names)", frames.len()),
            &path,
            action,
            ns,
        ));
    }
    // The userspace engine on the same query set (what a passed query costs before the socket
    // calls), timed in this process.
    let dns: Vec<Vec<u8>> = qs
        .iter()
        .take(if wanted("userspace engine, query set") {
            runs.max(1)
        } else {
            0
        })
        .map(|q| query(&q.name, qtype_code(q.qtype), q.dnssec_ok))
        .collect();
    if !dns.is_empty() {
        let mut ns = Vec::with_capacity(runs);
        for i in 0..runs {
            let t = Instant::now();
            let r = engine.answer(&dns[i % dns.len()], xdpdns::engine::Transport::Udp);
            ns.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(r);
        }
        out.push(summarize(
            &format!("userspace engine, query set ({} names)", dns.len()),
            "Engine::answer",
            ENGINE,
            ns,
        ));
    }
    // What first touches cost after the syscall: `xdp_touch` reads one word of each of N
    // template slots, a page apart or in one page (slots of 640 octets: 8 apart are in other
    // pages, 1 apart six to a page), timed the same way.
    if wanted("baseline: touch") {
        // "elsewhere": from a slot that changes with every run, over the first 8 000 slots
        // (5 MB, more than L2) or all the array holds past the strides' 64: lines not read in
        // the runs just before. A slot past the array's end would be read as nothing.
        let slots = xdp.template_counts().1;
        let all = slots.saturating_sub(64);
        let spread = all.min(8_000);
        anyhow::ensure!(
            spread > 0,
            "TEMPLATES has {slots} slots, too few for the touch baseline"
        );
        let touches = [
            (0u8, 1u8, false, "none"),
            (4, 8, false, "4 pages"),
            (8, 8, false, "8 pages"),
            (6, 1, false, "6 slots, 1 page"),
            (1, 1, true, "1 slot elsewhere"),
            (4, 8, true, "4 pages elsewhere"),
            (4, 8, true, "4 pages anywhere"),
        ];
        for (n, stride, moving, what) in touches {
            // "anywhere": over the whole array (at 10k delegations 13 MB, past the TLB's reach
            // of 4 KB pages), as the slots of varied names are.
            let spread = if what.ends_with("anywhere") {
                all
            } else {
                spread
            };
            let mut f = vec![0u8; 64];
            f[0] = n;
            f[1] = stride;
            let mut ns = Vec::with_capacity(runs);
            let mut action = 0;
            for run in 0..runs {
                if moving {
                    let base = (run as u32).wrapping_mul(7919) % spread;
                    f[2..5].copy_from_slice(&base.to_le_bytes()[..3]);
                }
                let (a, d) = xdp.test_run_other("xdp_touch", &f)?;
                action = a;
                ns.push(d.as_nanos() as f64);
            }
            out.push(summarize(
                &format!("baseline: touch, {what}"),
                "xdp_touch",
                action,
                ns,
            ));
        }
    }
    // Baselines: the empty program and the trivial rewrite, timed the same way.
    let f = frame::build(&spec, &query("bench.", 6, false));
    for name in ["xdp_pass", "xdp_reflect"] {
        let prog = bpf::Prog::load_xdp(name)?;
        let mut ns = Vec::with_capacity(runs);
        let mut action = 0;
        for _ in 0..runs {
            let (a, d) = prog.test_run(&f, 1)?;
            action = a;
            ns.push(d as f64);
        }
        out.push(summarize(&format!("baseline: {name}"), name, action, ns));
    }
    Ok(out)
}

/// The TEST_RUN probes as text lines, each net of the empty program of the same run.
pub fn text(micro: &Result<Vec<Probe>>) -> String {
    let m = match micro {
        Ok(m) => m,
        Err(e) => return format!("  failed: {e:#}\n"),
    };
    let pass = m
        .iter()
        .find(|p| p.path == "xdp_pass")
        .map_or(0.0, |p| p.median_ns);
    m.iter()
        .map(|p| {
            format!(
                "  {:<34} {:<18} {:<9} median {:>5.0} ns (net {:>5.0})  mean {:>5.0} ns  p99 {:>5.0} ns{}\n",
                p.label,
                p.path,
                action_name(p.action),
                p.median_ns,
                p.median_ns - pass,
                p.mean_ns,
                p.p99_ns,
                p.repeat_mean_ns
                    .map_or(String::new(), |r| format!("  (repeat=100k mean {r:.0} ns)"))
            )
        })
        .collect()
}

/// The TEST_RUN micro-benchmark alone (`--micro-only`), on the bench zone and query set.
pub fn only(o: &super::Options) -> Result<Json> {
    let work = std::env::temp_dir().join(format!("xdpdns-bench-micro-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    cleanup::add_dir(work.clone());
    let result = (|| {
        let zone = zone::generate(&work.join("zone"), o.delegations, o.signed, o.seed)?;
        let qs = zone::queries(&zone, &o.mix, o.do_share, o.queries, o.seed);
        test_run(&zone, &qs, o.micro_runs)
    })();
    let _ = std::fs::remove_dir_all(&work);
    cleanup::forget_dir(&work);
    println!(
        "TEST_RUN ({} delegations{}, median of {} single runs; net = minus xdp_pass):",
        o.delegations,
        if o.signed { ", NSEC3-signed" } else { "" },
        o.micro_runs
    );
    print!("{}", text(&result));
    let j = Json::Arr(result?.iter().map(|p| p.json()).collect());
    std::fs::create_dir_all(&o.out_dir)?;
    std::fs::write(o.out_dir.join("micro.json"), j.pretty())?;
    Ok(j)
}

/// Load, compile and install figures for one zone size.
#[derive(Clone, Debug, Default)]
pub struct LoadFigures {
    pub delegations: usize,
    pub zone_bytes: u64,
    /// Spawn to the first userspace answer (parse, build, engine, sockets).
    pub parse_s: f64,
    /// Spawn to the first XDP answer (compile + map fill + attach in the background).
    pub ready_s: f64,
    /// The same two, as measured by the probe (`load`).
    pub first_user_s: f64,
    pub first_xdp_s: f64,
    /// The server's own parse and build times (its log), as it wrote them.
    pub parse_log: Option<String>,
    pub build_log: Option<String>,
    pub entries: Option<u64>,
    /// The server's compile summary line.
    pub compile_log: String,
    /// Entries × (key + `AnswerRef`) from dns-common: `ANSWERS` (exact, NODATA) and
    /// `SUFFIXES` (referral, NXDOMAIN, pass markers), split as the compile line says; plus the
    /// template cache's capacity × (id + `Answer`).
    pub map_bytes_computed: u64,
    /// Distinct templates (after deduplication) and the cache's capacity, from `status`.
    pub templates: Option<u64>,
    pub template_cache: Option<u64>,
    /// The kernel's figures (`memlock` in the map fds' fdinfo).
    pub answers_memlock: u64,
    pub suffixes_memlock: u64,
    pub templates_memlock: u64,
    pub maps_memlock: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl LoadFigures {
    pub fn json(&self) -> Json {
        obj([
            ("delegations", self.delegations.into()),
            ("zone_bytes", self.zone_bytes.into()),
            ("parse_s", self.parse_s.into()),
            ("ready_s", self.ready_s.into()),
            ("first_userspace_answer_s", self.first_user_s.into()),
            ("first_xdp_answer_s", self.first_xdp_s.into()),
            ("xdpdns_parse", self.parse_log.as_deref().into()),
            ("xdpdns_build", self.build_log.as_deref().into()),
            ("compile_install_s", (self.ready_s - self.parse_s).into()),
            ("entries", self.entries.into()),
            ("compile_log", self.compile_log.as_str().into()),
            ("map_bytes_computed", self.map_bytes_computed.into()),
            ("templates", self.templates.into()),
            ("template_cache", self.template_cache.into()),
            ("answers_map_memlock", self.answers_memlock.into()),
            ("suffixes_map_memlock", self.suffixes_memlock.into()),
            ("templates_map_memlock", self.templates_memlock.into()),
            ("all_maps_memlock", self.maps_memlock.into()),
            ("rss_kib", self.rss_kib.into()),
            ("peak_rss_kib", self.hwm_kib.into()),
        ])
    }
}

/// The number before `what` in the compile summary ("… 123 referral, …").
pub(super) fn count_before(line: &str, what: &str) -> Option<u64> {
    let at = line.find(what)?;
    line[..at]
        .split(|c: char| !c.is_ascii_digit())
        .rev()
        .find(|w| !w.is_empty())?
        .parse()
        .ok()
}

/// Bytes of keys and values for the entries the compile line lists, and for the template
/// cache.
pub(super) fn computed_bytes(line: &str, total: u64, cache: u64) -> u64 {
    let value = std::mem::size_of::<AnswerRef>() as u64;
    // An array: a value per slot, no key stored.
    let templates = cache * std::mem::size_of::<Answer>() as u64;
    let exact_key = xdpdns::fastpath::compile::answer_slot_memory() as u64;
    let suffix_entry = xdpdns::fastpath::compile::suffix_slot_memory() as u64;
    let n = |w: &str| count_before(line, &format!(" {w}"));
    match (
        n("exact"),
        n("NODATA"),
        n("referral"),
        n("NXDOMAIN"),
        n("pass markers"),
    ) {
        (Some(e), Some(d), Some(r), Some(x), Some(p)) => {
            (e + d) * exact_key + (r + x + p) * suffix_entry + templates
        }
        _ => total * (exact_key + value) + templates,
    }
}

/// `memlock` bytes of a process's BPF maps, from their fds' fdinfo.
#[derive(Default)]
pub(super) struct Memlock {
    /// The array of exact and NODATA entries (`AnswerEntry` slots).
    pub answers: u64,
    /// The suffix array (`SuffixEntry` slots) and its bucket directory (`DirBucket`s).
    pub suffixes: u64,
    /// The array of `Answer` slots (`TEMPLATES`).
    pub templates: u64,
    pub all: u64,
}

pub(super) fn maps_memlock(pid: u32) -> Memlock {
    let index_value = std::mem::size_of::<dns_common::AnswerEntry>().to_string();
    let suffix_value = std::mem::size_of::<dns_common::SuffixEntry>().to_string();
    let bucket = std::mem::size_of::<dns_common::DirBucket>().to_string();
    let value = std::mem::size_of::<Answer>().to_string();
    let mut m = Memlock::default();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return m;
    };
    for e in rd.flatten() {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        let field = |k: &str| {
            info.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_owned()
        };
        let kind = field("map_type:");
        if kind.is_empty() {
            continue;
        }
        let mem: u64 = field("memlock:").parse().unwrap_or(0);
        m.all += mem;
        // Both bucket directories are counted with the suffix array.
        if kind == "2" && field("value_size:") == index_value {
            m.answers += mem;
        } else if kind == "2"
            && (field("value_size:") == suffix_value || field("value_size:") == bucket)
        {
            m.suffixes += mem;
        } else if kind == "2" && field("key_size:") == "4" && field("value_size:") == value {
            m.templates += mem;
        }
    }
    m
}
