//! `cargo xtask bench`: the comparative benchmark. This module owns the options and the
//! sequence — zone and queries, the namespace pair, the generator's ceiling against
//! `xdp_reflect`, each server in turn (latency with dnsperf, then the kxdpgun rate search),
//! the TEST_RUN micro-benchmark, start-up figures against knotd and NSD, the zone update figures
//! (incremental against full XDP publication), zone transfers (`--xfr`), and the report files.
//!
//! Submodules: `zone` (data), `net` (namespaces, pinning), `servers`, `e2e` (one server under
//! load), `measure` (kxdpgun, dnsperf, CPU, the rate search), `profile` (perf on the server
//! core), `micro` (TEST_RUN), `load` (start-up times and memory against knotd and
//! NSD), `update` (publishing a zone change), `sizes` (the per-size sections, in the full run
//! and alone), `xfr` (AXFR and NOTIFY as a secondary, against knotd), `report` (table, SVG),
//! `json`, `bpf` (a minimal loader for the self-contained XDP programs), `cleanup` (Ctrl-C
//! safety).

pub mod bpf;
pub mod cleanup;
mod e2e;
pub mod json;
pub mod load;
pub mod measure;
pub mod micro;
pub mod net;
pub mod nsec3;
pub mod profile;
pub mod profiles;
pub mod report;
pub mod restart;
pub mod rrl;
pub mod servers;
mod sizes;
pub mod update;
pub mod xfr;
pub mod zone;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use json::{obj, Json};
use net::BenchNet;
use servers::Kind;
use sizes::{load_only, loads, run_updates, updates};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub delegations: usize,
    pub signed: bool,
    pub mix: zone::Mix,
    /// Percent of queries with DO=1.
    pub do_share: u32,
    /// Seconds per measurement run.
    pub duration: u32,
    pub servers: Vec<Kind>,
    pub smoke: bool,
    pub seed: u64,
    /// Queries in the query files.
    pub queries: usize,
    /// dnsperf rate for the latency figures.
    pub latency_rate: u64,
    /// Search runs (doubling, then bisection) after the full-speed run.
    pub steps: usize,
    /// One kxdpgun run per server at this rate instead of the search (smoke: 20k).
    pub fixed_rate: Option<u64>,
    /// Rate of the run CPU per answer is taken from, the same for every server (with
    /// `fixed_rate`, that run is the CPU run).
    pub cpu_rate: u64,
    /// Also a run at `cpu_rate` under `perf record` on the server core (`profile`).
    pub perf: bool,
    /// Zone sizes for the load/compile figures (empty: skipped).
    pub load_sizes: Vec<usize>,
    /// Zone sizes for the update figures (empty: skipped), and the records per diff.
    pub update_sizes: Vec<usize>,
    pub update_changes: usize,
    /// Only the update figures: no servers, no namespaces.
    pub update_only: bool,
    /// Only the start-up figures (`load_sizes`): xdpdns, knotd and NSD loading the zone.
    pub load_only: bool,
    /// Single TEST_RUN calls per probe.
    pub micro_runs: usize,
    /// Nice value for the server, its NAPI thread and the generator: the machine is shared,
    /// and at the default (-20) other work barely interrupts the measured path.
    pub nice: i32,
    pub out_dir: PathBuf,
    /// Run the zone-transfer section (default in smoke mode).
    pub xfr: bool,
    /// Run only the zone-transfer section.
    pub xfr_only: bool,
    /// Run only the rate limiting section (TEST_RUN: no servers, no namespaces).
    pub rrl_only: bool,
    /// Delegations of the zone the transfer section transfers.
    pub xfr_delegations: usize,
    /// Only the NSEC3 denial figures (`nsec3`), at these iteration counts.
    pub nsec3_only: bool,
    /// Only the TEST_RUN micro-benchmark on the bench zone (no servers, no namespaces).
    pub micro_only: bool,
    pub nsec3_iterations: Vec<u16>,
    /// Only the restart gap (`restart`).
    pub restart_only: bool,
    /// Only the reflector and the servers under load (no TEST_RUN, rate limiting or sender
    /// profile sections).
    pub e2e_only: bool,
}

impl Options {
    /// Defaults of the full run (`smoke` = false) or of the smoke run.
    pub fn defaults(smoke: bool) -> Options {
        let target = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.to_path_buf()))
            .unwrap_or_else(|| crate::workspace_root().join("target"));
        Options {
            delegations: if smoke { 1000 } else { 10_000 },
            signed: false,
            mix: zone::Mix::parse("tld").expect("built-in mix"),
            do_share: 50,
            duration: if smoke { 1 } else { 3 },
            servers: Kind::SERVERS.to_vec(),
            smoke,
            seed: 20261127,
            queries: if smoke { 10_000 } else { 100_000 },
            latency_rate: if smoke { 2_000 } else { 20_000 },
            steps: 10,
            fixed_rate: smoke.then_some(20_000),
            cpu_rate: 150_000,
            perf: false,
            load_sizes: if smoke {
                vec![]
            } else {
                vec![10_000, 100_000, 1_000_000]
            },
            update_sizes: if smoke {
                vec![2_000]
            } else {
                vec![100_000, 1_000_000]
            },
            update_changes: 100,
            update_only: false,
            load_only: false,
            micro_runs: if smoke { 2_000 } else { 20_000 },
            nice: -20,
            out_dir: target.join("bench").join(if smoke { "smoke" } else { "" }),
            xfr: smoke,
            xfr_only: false,
            rrl_only: false,
            xfr_delegations: if smoke { 2_000 } else { 1_000_000 },
            nsec3_only: false,
            micro_only: false,
            nsec3_iterations: vec![0, 1, 10, 50, 150],
            restart_only: false,
            e2e_only: false,
        }
    }
}

/// kxdpgun's rate for "as fast as it can".
const FULL_SPEED: u64 = 5_000_000;
/// Lowest first rate of the search.
const SEARCH_START: u64 = 25_000;
/// The search stops when its zero-loss and lossy rates are this close (fraction).
const SEARCH_RESOLUTION: f64 = 0.03;

struct Bench {
    opts: Options,
    t0: Instant,
    work: PathBuf,
}

impl Bench {
    fn progress(&self, msg: &str) {
        println!("[bench {:6.1}s] {msg}", self.t0.elapsed().as_secs_f64());
    }

    fn run_line(&self, who: &str, r: &measure::Run) {
        let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
        self.progress(&format!(
            "{who}: offered {:.0} q/s -> {:.0} replies/s, loss {:.3}%, server CPU {:.2}s (other work on its core {:.2}s), gen CPU {:.2}s{}",
            r.sent_pps,
            r.reply_pps,
            r.loss() * 100.0,
            r.server_cpu_s,
            r.foreign_s(),
            r.gen_cpu_s,
            if drops.is_empty() { String::new() } else { format!(" [drops: {}]", drops.join(", ")) }
        ));
    }
}

struct Files {
    kxdpgun: PathBuf,
    dnsperf_plain: PathBuf,
    dnsperf_do: PathBuf,
}

fn write_reports(o: &Options, files: &[(&str, String)]) -> Result<()> {
    std::fs::create_dir_all(&o.out_dir)
        .with_context(|| format!("creating {}", o.out_dir.display()))?;
    for (file, content) in files {
        let p = o.out_dir.join(file);
        std::fs::write(&p, content).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The NSEC3 denial figures alone (see `nsec3`), printed and written to `nsec3.json`.
fn run_nsec3(o: &Options) -> Result<Json> {
    let work = std::env::temp_dir().join(format!("xdpdns-bench-nsec3-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    cleanup::add_dir(work.clone());
    let figures = nsec3::run(&work, o.delegations, &o.nsec3_iterations, o.micro_runs);
    let _ = std::fs::remove_dir_all(&work);
    cleanup::forget_dir(&work);
    let figures = figures?;
    println!(
        "NSEC3 NXDOMAIN, DO=1, TEST_RUN ({} delegations, opt-out, no salt; median of {} single runs)",
        o.delegations, o.micro_runs
    );
    println!(
        "| zone | iterations | NSEC3 records (NSEC: child labels) | ns | xdp_pass ns | net ns | DO=0 net ns | answered in XDP |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in &figures {
        println!("{}", f.line());
    }
    let j = Json::Arr(figures.iter().map(|f| f.json()).collect());
    std::fs::create_dir_all(&o.out_dir)?;
    std::fs::write(o.out_dir.join("nsec3.json"), j.pretty())?;
    Ok(j)
}

/// Runs the benchmark; returns the JSON report (also written under `out_dir`).
pub fn run(opts: Options) -> Result<Json> {
    if opts.nsec3_only {
        return run_nsec3(&opts);
    }
    if opts.rrl_only {
        return rrl::only(&opts);
    }
    if opts.restart_only {
        return restart::only(&opts);
    }
    if opts.micro_only {
        return micro::only(&opts);
    }
    if opts.update_only {
        let work = std::env::temp_dir().join(format!("xdpdns-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        cleanup::add_dir(work.clone());
        let b = Bench {
            opts,
            t0: Instant::now(),
            work: work.clone(),
        };
        let result = run_updates(&b);
        let _ = std::fs::remove_dir_all(&work);
        cleanup::forget_dir(&work);
        return result;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("the benchmark needs two CPUs (server and generator on separate cores)");
    }
    for tool in [
        "kxdpgun", "knotd", "knotc", "nsd", "dnsperf", "nsenter", "taskset",
    ] {
        which(tool).with_context(|| format!("{tool} not found (run `cargo xtask bootstrap`)"))?;
    }
    let work = std::env::temp_dir().join(format!("xdpdns-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    cleanup::add_dir(work.clone());
    let b = Bench {
        opts: opts.clone(),
        t0: Instant::now(),
        work: work.clone(),
    };
    let result = run_in(&b);
    let _ = std::fs::remove_dir_all(&work);
    cleanup::forget_dir(&work);
    result
}

fn run_in(b: &Bench) -> Result<Json> {
    let o = &b.opts;
    if o.xfr_only {
        return xfr_only(b);
    }
    if o.load_only {
        return load_only(b);
    }
    b.progress(&format!(
        "zone: {} delegations{}, mix {} ({}% referral, {}% NXDOMAIN, {}% apex), {}% DO=1",
        o.delegations,
        if o.signed { ", NSEC3-signed" } else { "" },
        o.mix.name,
        o.mix.referral,
        o.mix.nxdomain,
        o.mix.apex,
        o.do_share
    ));
    let zone = zone::generate(&b.work.join("zone"), o.delegations, o.signed, o.seed)?;
    let qs = zone::queries(&zone, &o.mix, o.do_share, o.queries, o.seed);
    let kxdpgun = b.work.join("queries.txt");
    zone::write_kxdpgun(&kxdpgun, &qs)?;
    let (dnsperf_plain, dnsperf_do) = zone::write_dnsperf(&b.work, &qs)?;
    let files = Files {
        kxdpgun,
        dnsperf_plain,
        dnsperf_do,
    };
    let mut net = BenchNet::new(o.nice)?;
    b.progress(&format!(
        "namespaces {} / {}, veth {} <-> {}; server on CPU {}, generator on CPU {}",
        net.server_ns,
        net.client_ns,
        net.server_if,
        net.client_if,
        net::SERVER_CPU,
        net::GENERATOR_CPU
    ));
    let ceiling = b.measure(&mut net, Kind::Reflector, &zone, &files);
    let mut results = Vec::new();
    for kind in &o.servers {
        results.push(b.measure(&mut net, *kind, &zone, &files));
    }
    let table = report::table(&results, Some(&ceiling), o.fixed_rate.is_some());
    let targets = report::targets_text(&results, Some(&ceiling));
    let profiles_perf: String = std::iter::once(&ceiling)
        .chain(results.iter())
        .filter_map(|r| match &r.profile {
            Some(Ok(p)) => Some(p.text(r.kind.name())),
            Some(Err(e)) => Some(format!("{}: perf FAILED: {e}\n", r.kind.name())),
            None => None,
        })
        .collect();
    let legend = format!(
        "qps<=0.1%: answered/s at the fastest kxdpgun rate with <=0.1% loss ({} s runs; \
         reflector = the generator's ceiling); peak rep/s: fastest reply rate of any run;\n\
         p50/p99: dnsperf at {} q/s ({}% DO); CPU s/M: CPU-seconds per million answers of the \
         server (processes + NAPI thread + ksoftirqd of its core) in a run at {} q/s, the same \
         for every server;\n\
         XDP %: xdpdns answers sent by XDP / (answered + passed). xKnotUDP, xNSD: ratios to those \
         servers in this run.\n",
        o.duration,
        o.latency_rate,
        o.do_share,
        o.fixed_rate.unwrap_or(o.cpu_rate)
    );
    let e2e_text = format!("{table}{legend}\n{targets}{profiles_perf}");
    let e2e_doc = |rest: Vec<(&str, Json)>| -> Json {
        let find = |k: Kind| results.iter().find(|r| r.kind == k && r.error.is_none());
        let baselines = [
            ("knot_udp", find(Kind::KnotUdp)),
            ("nsd", find(Kind::Nsd)),
            ("knot_xdp", find(Kind::KnotXdp)),
            ("reflector", Some(&ceiling).filter(|c| c.error.is_none())),
        ];
        let targets = report::targets(&results, Some(&ceiling));
        let mut fields = vec![
            ("mode", if o.smoke { "smoke" } else { "full" }.into()),
            ("config", config_json(o)),
            ("generator_ceiling", ceiling.json(&[])),
            (
                "targets",
                Json::Obj(targets.into_iter().map(|(k, v)| (k, v.into())).collect()),
            ),
            (
                "servers",
                Json::Arr(results.iter().map(|r| r.json(&baselines)).collect()),
            ),
        ];
        fields.extend(rest);
        Json::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    };
    let title = format!(
        "xdpdns bench: {} delegations{}, mix {}, {}% DO",
        o.delegations,
        if o.signed { " (signed)" } else { "" },
        o.mix.name,
        o.do_share
    );
    let svg = report::svg(&results, Some(&ceiling), &title);
    if o.e2e_only {
        drop(net);
        return finish(b, e2e_doc(vec![]), svg, e2e_text);
    }
    b.progress(&format!(
        "TEST_RUN micro-benchmark ({} single runs per probe)",
        o.micro_runs
    ));
    let micro = micro::test_run(&zone, &qs, o.micro_runs);
    if let Err(e) = &micro {
        b.progress(&format!("TEST_RUN: FAILED: {e:#}"));
    }
    b.progress("response rate limiting in TEST_RUN: a spoofed flood, RRL off and on");
    let (rrl_json, rrl_text) =
        match rrl::section(&zone, &qs, o.micro_runs, if o.smoke { 1 } else { 2 }) {
            Ok(r) => r,
            Err(e) => (
                obj([("error", format!("{e:#}").into())]),
                format!("response rate limiting: FAILED: {e:#}\n"),
            ),
        };
    b.progress("sender profiles in TEST_RUN and over veth, unsigned, NSEC and NSEC3 zones");
    let (profiles_json, profiles_text) = profiles::section(&mut net, &b.work, o);
    let (loads, load_text) = loads(b, &mut net);
    let xfr = o.xfr.then(|| xfr_section(b, &mut net));
    drop(net);
    let (update_json, update_text) = updates(b);

    let micro_text = micro::text(&micro);
    let mut text = format!(
        "{e2e_text}\nTEST_RUN (ns per query, single runs):\n{micro_text}\n{rrl_text}\n{profiles_text}\nstart-up:\n{load_text}\nzone updates (XDP maps):\n{update_text}"
    );
    if let Some(x) = &xfr {
        text.push('\n');
        text.push_str(&x.text());
    }
    let doc = e2e_doc(vec![
        (
            "test_run",
            match &micro {
                Ok(m) => Json::Arr(m.iter().map(|p| p.json()).collect()),
                Err(e) => obj([("error", format!("{e:#}").into())]),
            },
        ),
        ("rrl", rrl_json),
        ("profiles", profiles_json),
        ("load", loads),
        ("update", update_json),
        ("xfr", xfr.as_ref().map_or(Json::Null, xfr::XfrResult::json)),
    ]);
    finish(b, doc, svg, text)
}

/// Prints the text report and writes it with the JSON document and the chart.
fn finish(b: &Bench, doc: Json, svg: String, text: String) -> Result<Json> {
    println!("\n{text}");
    write_reports(
        &b.opts,
        &[
            ("bench.json", doc.pretty()),
            ("bench.svg", svg),
            ("bench.txt", text),
        ],
    )?;
    b.progress(&format!(
        "wrote bench.json, bench.svg and bench.txt in {}",
        b.opts.out_dir.display()
    ));
    Ok(doc)
}

/// The run's configuration, for the JSON report.
fn config_json(o: &Options) -> Json {
    obj([
        ("delegations", o.delegations.into()),
        ("signed", o.signed.into()),
        ("mix", o.mix.name.as_str().into()),
        ("referral_pct", o.mix.referral.into()),
        ("nxdomain_pct", o.mix.nxdomain.into()),
        ("apex_pct", o.mix.apex.into()),
        ("do_pct", o.do_share.into()),
        ("run_seconds", o.duration.into()),
        ("fixed_rate_qps", o.fixed_rate.into()),
        ("cpu_rate_qps", o.fixed_rate.unwrap_or(o.cpu_rate).into()),
        ("search_steps", o.steps.into()),
        ("queries", o.queries.into()),
        ("seed", o.seed.into()),
        ("latency_rate_qps", o.latency_rate.into()),
        ("loss_limit", measure::LOSS_LIMIT.into()),
        ("server_cpu", net::SERVER_CPU.into()),
        ("generator_cpu", net::GENERATOR_CPU.into()),
        ("nice", (o.nice as f64).into()),
    ])
}

/// The zone-transfer section in `net`.
fn xfr_section(b: &Bench, net: &mut BenchNet) -> xfr::XfrResult {
    let o = &b.opts;
    let opts = xfr::XfrOptions {
        delegations: o.xfr_delegations,
        seed: o.seed,
    };
    xfr::run(net, &b.work, &opts, &|m| b.progress(m))
}

/// `--xfr-only`: the zone-transfer section alone, in its own namespaces.
fn xfr_only(b: &Bench) -> Result<Json> {
    let o = &b.opts;
    let mut net = BenchNet::new(o.nice)?;
    let x = xfr_section(b, &mut net);
    drop(net);
    let text = x.text();
    println!("\n{text}");
    let doc = obj([
        ("mode", if o.smoke { "smoke" } else { "full" }.into()),
        (
            "config",
            obj([
                ("seed", o.seed.into()),
                ("server_cpu", net::SERVER_CPU.into()),
                ("generator_cpu", net::GENERATOR_CPU.into()),
                ("nice", (o.nice as f64).into()),
            ]),
        ),
        ("xfr", x.json()),
    ]);
    write_reports(o, &[("bench.json", doc.pretty()), ("bench.txt", text)])?;
    b.progress(&format!(
        "wrote bench.json and bench.txt in {}",
        o.out_dir.display()
    ));
    Ok(doc)
}

fn which(tool: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("{tool} not in PATH"))
}
