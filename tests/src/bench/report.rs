//! The benchmark's output: per-server figures derived from the runs, the terminal table with
//! ratios against Knot (UDP) and NSD from the same run, the JSON document, and a hand-written
//! SVG chart (answered queries/s and CPU per answer, one bar per server).

use std::fmt::Write as _;

use super::json::{obj, Json};
use super::measure::{Latency, Run, Search};
use super::profile::Profile;
use super::servers::Kind;

/// Everything measured for one server.
#[derive(Clone, Debug)]
pub struct ServerResult {
    pub kind: Kind,
    pub error: Option<String>,
    pub startup_s: f64,
    pub search: Option<Search>,
    pub latency: Option<Latency>,
    /// xdpdns: deltas of the XDP counters over the kxdpgun runs (name, delta), nonzero only.
    pub xdp: Vec<(String, u64)>,
    /// xdpdns with XDP: (answered, passed) deltas of the XDP counters over the kxdpgun runs.
    pub xdp_split: Option<(u64, u64)>,
    pub udp_queries: Option<u64>,
    /// The run CPU per answer is taken from: the same rate and duration for every server
    /// (`--cpu-rate`), or the fixed-rate run.
    pub cpu_run: Option<Run>,
    /// `--perf`: where the server core's time went in a run at the CPU rate.
    pub profile: Option<std::result::Result<Profile, String>>,
}

impl ServerResult {
    pub fn new(kind: Kind) -> ServerResult {
        ServerResult {
            kind,
            error: None,
            startup_s: 0.0,
            search: None,
            latency: None,
            xdp: Vec::new(),
            xdp_split: None,
            udp_queries: None,
            cpu_run: None,
            profile: None,
        }
    }

    fn runs(&self) -> &[Run] {
        self.search.as_ref().map_or(&[], |s| s.runs.as_slice())
    }

    /// Replies counted over all load runs.
    pub fn answers(&self) -> u64 {
        self.runs().iter().map(|r| r.replies).sum::<u64>()
            + self.latency.as_ref().map_or(0, |l| l.completed)
    }

    /// Answered queries/s at ≤ 0.1% loss.
    pub fn answered_qps(&self) -> Option<f64> {
        Some(self.search.as_ref()?.best.as_ref()?.reply_pps)
    }

    /// Replies/s at the generator's full speed (overload).
    pub fn overload_replies(&self) -> Option<f64> {
        Some(self.search.as_ref()?.max.reply_pps)
    }

    /// The highest reply rate of any run, whatever its loss.
    pub fn peak_replies(&self) -> Option<f64> {
        self.runs().iter().map(|r| r.reply_pps).reduce(f64::max)
    }

    /// The run CPU is taken from: the run at the common CPU rate, else the best run within
    /// the loss limit, else the full-speed one.
    fn cpu_run(&self) -> Option<&Run> {
        if let Some(r) = &self.cpu_run {
            return Some(r);
        }
        let s = self.search.as_ref()?;
        s.best.as_ref().or(Some(&s.max))
    }

    /// The slowest rate that lost more than the limit, below the generator's full speed.
    pub fn first_lossy(&self) -> Option<u64> {
        self.search.as_ref()?.first_lossy
    }

    /// CPU-seconds per million answers (= CPU µs per answer) of the server.
    pub fn cpu_per_m(&self) -> Option<f64> {
        let r = self.cpu_run()?;
        (r.replies > 0).then(|| r.server_cpu_s / r.replies as f64 * 1e6)
    }

    fn core_per_m(&self) -> Option<f64> {
        let r = self.cpu_run()?;
        (r.replies > 0).then(|| r.core_busy_s / r.replies as f64 * 1e6)
    }

    /// XDP answers / (XDP answers + passes) over the load runs.
    pub fn xdp_hit_ratio(&self) -> Option<f64> {
        let (answered, passed) = self.xdp_split?;
        (answered + passed > 0).then(|| answered as f64 / (answered + passed) as f64)
    }

    pub fn json(&self, baselines: &[(&str, Option<&ServerResult>)]) -> Json {
        let ratio = |a: Option<f64>, b: Option<f64>| -> Json {
            match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => (a / b).into(),
                _ => Json::Null,
            }
        };
        let mut ratios = Vec::new();
        for (name, b) in baselines {
            ratios.push((
                format!("qps_vs_{name}"),
                ratio(self.answered_qps(), b.and_then(|b| b.answered_qps())),
            ));
            ratios.push((
                format!("cpu_vs_{name}"),
                ratio(self.cpu_per_m(), b.and_then(|b| b.cpu_per_m())),
            ));
        }
        let runs = self.runs().iter().map(run_json).collect();
        let profile = match &self.profile {
            None => Json::Null,
            Some(Ok(p)) => p.json(),
            Some(Err(e)) => obj([("error", e.as_str().into())]),
        };
        obj([
            ("name", self.kind.name().into()),
            ("ok", self.error.is_none().into()),
            ("error", self.error.clone().into()),
            ("startup_s", self.startup_s.into()),
            ("answers", self.answers().into()),
            ("answered_qps", self.answered_qps().into()),
            ("peak_replies_pps", self.peak_replies().into()),
            ("overload_replies_pps", self.overload_replies().into()),
            ("first_lossy_qps", self.first_lossy().into()),
            ("cpu_s_per_million_answers", self.cpu_per_m().into()),
            (
                "cpu_run",
                self.cpu_run.as_ref().map_or(Json::Null, run_json),
            ),
            ("profile", profile),
            ("core_busy_s_per_million_answers", self.core_per_m().into()),
            (
                "latency",
                self.latency.as_ref().map_or(Json::Null, latency_json),
            ),
            ("xdp_hit_ratio", self.xdp_hit_ratio().into()),
            (
                "xdp_counters",
                Json::Obj(
                    self.xdp
                        .iter()
                        .map(|(k, v)| (k.clone(), (*v).into()))
                        .collect(),
                ),
            ),
            ("udp_queries", self.udp_queries.into()),
            ("ratios", Json::Obj(ratios)),
            ("runs", Json::Arr(runs)),
        ])
    }
}

fn run_json(r: &Run) -> Json {
    obj([
        ("requested_qps", r.requested.into()),
        ("sent", r.sent.into()),
        ("replies", r.replies.into()),
        ("sent_pps", r.sent_pps.into()),
        ("reply_pps", r.reply_pps.into()),
        ("loss", r.loss().into()),
        ("server_cpu_s", r.server_cpu_s.into()),
        ("server_core_busy_s", r.core_busy_s.into()),
        ("all_cpus_busy_s", r.all_busy_s.into()),
        ("server_core_softirq_s", r.core_softirq_s.into()),
        ("server_core_other_s", r.foreign_s().into()),
        ("server_napi_runs", r.napi_runs.into()),
        ("generator_cpu_s", r.gen_cpu_s.into()),
        (
            "rcodes",
            Json::Obj(
                r.rcodes
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).into()))
                    .collect(),
            ),
        ),
        (
            "veth_drops",
            Json::Obj(
                r.drops
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).into()))
                    .collect(),
            ),
        ),
    ])
}

fn latency_json(l: &Latency) -> Json {
    obj([
        ("rate_qps", l.rate.into()),
        ("sent", l.sent.into()),
        ("completed", l.completed.into()),
        ("p50_us", l.p50_us.into()),
        ("p99_us", l.p99_us.into()),
        ("mean_us", l.mean_us.into()),
    ])
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.prec$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The terminal table.
pub fn table(results: &[ServerResult], ceiling: Option<&ServerResult>, fixed_rate: bool) -> String {
    let find = |k: Kind| results.iter().find(|r| r.kind == k && r.error.is_none());
    let (knot, nsd) = (find(Kind::KnotUdp), find(Kind::Nsd));
    let mut t = String::new();
    let qps_head = if fixed_rate {
        "qps (fixed)"
    } else {
        "qps<=0.1%"
    };
    let _ = writeln!(
        t,
        "{:<12} {:>10} {:>8} {:>8} {:>10} {:>7} {:>7} {:>9} {:>8} {:>8} {:>6}",
        "server",
        qps_head,
        "xKnotUDP",
        "xNSD",
        "peak rep/s",
        "p50 us",
        "p99 us",
        "CPU s/M",
        "xKnotUDP",
        "xNSD",
        "XDP %"
    );
    let all = ceiling.into_iter().chain(results.iter());
    for r in all {
        if let Some(e) = &r.error {
            let _ = writeln!(
                t,
                "{:<12} FAILED: {}",
                r.kind.name(),
                e.lines().next().unwrap_or("")
            );
            continue;
        }
        let qps = r.answered_qps();
        let cpu = r.cpu_per_m();
        let _ = writeln!(
            t,
            "{:<12} {:>10} {:>8} {:>8} {:>10} {:>7} {:>7} {:>9} {:>8} {:>8} {:>6}",
            r.kind.name(),
            fmt_opt(qps, 0),
            ratio(qps, knot.and_then(|k| k.answered_qps())),
            ratio(qps, nsd.and_then(|k| k.answered_qps())),
            fmt_opt(r.peak_replies(), 0),
            fmt_opt(r.latency.as_ref().map(|l| l.p50_us), 0),
            fmt_opt(r.latency.as_ref().map(|l| l.p99_us), 0),
            fmt_opt(cpu, 2),
            ratio(cpu, knot.and_then(|k| k.cpu_per_m())),
            ratio(cpu, nsd.and_then(|k| k.cpu_per_m())),
            fmt_opt(r.xdp_hit_ratio().map(|h| h * 100.0), 1),
        );
    }
    t
}

/// The issue 12 end-to-end figures: xdpdns XDP against the reflector (the generator's ceiling)
/// and Knot XDP, all from this run, as (name, value) pairs: the zero-loss rates, the CPU per
/// answer at the common rate, and the ratios with their targets.
pub fn targets(results: &[ServerResult], ceiling: Option<&ServerResult>) -> Vec<(String, f64)> {
    let find = |k: Kind| results.iter().find(|r| r.kind == k && r.error.is_none());
    let xdp = find(Kind::XdpdnsXdp);
    let knot = find(Kind::KnotXdp);
    let ceiling = ceiling.filter(|c| c.error.is_none());
    let mut out = Vec::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.push((k.to_owned(), v));
        }
    };
    let qps = |r: Option<&ServerResult>| r.and_then(|r| r.answered_qps());
    let cpu = |r: Option<&ServerResult>| r.and_then(|r| r.cpu_per_m());
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    put("xdpdns_xdp_qps", qps(xdp));
    put("reflector_qps", qps(ceiling));
    put("knot_xdp_qps", qps(knot));
    put("xdpdns_xdp_cpu_s_per_m", cpu(xdp));
    put("reflector_cpu_s_per_m", cpu(ceiling));
    put("knot_xdp_cpu_s_per_m", cpu(knot));
    put("qps_vs_reflector", div(qps(xdp), qps(ceiling)));
    put("qps_vs_knot_xdp", div(qps(xdp), qps(knot)));
    put("cpu_vs_reflector", div(cpu(xdp), cpu(ceiling)));
    put("cpu_vs_knot_xdp", div(cpu(xdp), cpu(knot)));
    // From the `--perf` samples: the same ratio, and without the generator's skbs.
    fn prof(r: Option<&ServerResult>) -> Option<&Profile> {
        r?.profile.as_ref()?.as_ref().ok()
    }
    let (px, pr) = (prof(xdp), prof(ceiling));
    put(
        "perf_cpu_vs_reflector",
        div(px.map(|p| p.counted_ns()), pr.map(|p| p.counted_ns())),
    );
    put(
        "perf_cpu_vs_reflector_without_skb",
        div(
            px.map(|p| p.counted_without_skb_ns()),
            pr.map(|p| p.counted_without_skb_ns()),
        ),
    );
    out
}

/// The text of `targets`: one line per figure with its target.
pub fn targets_text(results: &[ServerResult], ceiling: Option<&ServerResult>) -> String {
    let t = targets(results, ceiling);
    let get = |k: &str| t.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let bracket = |k: Kind| -> String {
        let r = if k == Kind::Reflector {
            ceiling
        } else {
            results.iter().find(|r| r.kind == k)
        };
        match r.and_then(|r| Some((r.answered_qps()?, r.first_lossy()))) {
            Some((q, Some(l))) => format!("{q:.0} (lossy at {l})"),
            Some((q, None)) => format!("{q:.0}"),
            None => "-".into(),
        }
    };
    let cpu_rate = ceiling
        .and_then(|c| c.cpu_run.as_ref())
        .map_or("the zero-loss rate".to_owned(), |r| {
            format!("{} q/s", r.requested)
        });
    format!(
        "end to end, xdpdns XDP against the reflector and Knot XDP (issue 12 targets):\n  \
         zero-loss qps: xdpdns-xdp {}, reflector {}, knot-xdp {}: {} the reflector's \
         (target >= 0.80x), {} Knot XDP's (target >= 2.00x)\n  \
         CPU s per M answers at {cpu_rate}: xdpdns-xdp {}, reflector {}, knot-xdp {}: {} the \
         reflector's (target <= 1.50x), {} Knot XDP's\n{}",
        bracket(Kind::XdpdnsXdp),
        bracket(Kind::Reflector),
        bracket(Kind::KnotXdp),
        fmt_ratio(get("qps_vs_reflector")),
        fmt_ratio(get("qps_vs_knot_xdp")),
        fmt_opt(get("xdpdns_xdp_cpu_s_per_m"), 2),
        fmt_opt(get("reflector_cpu_s_per_m"), 2),
        fmt_opt(get("knot_xdp_cpu_s_per_m"), 2),
        fmt_ratio(get("cpu_vs_reflector")),
        fmt_ratio(get("cpu_vs_knot_xdp")),
        match (
            get("perf_cpu_vs_reflector"),
            get("perf_cpu_vs_reflector_without_skb"),
        ) {
            (Some(a), Some(b)) => format!(
                "  perf samples of the server core: {a:.2}x the reflector's; without the \
                 generator's skbs (what a NIC would not cost) {b:.2}x\n"
            ),
            _ => String::new(),
        }
    )
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

/// The SVG chart: two horizontal bar charts (answered qps, CPU-seconds per million answers).
pub fn svg(results: &[ServerResult], ceiling: Option<&ServerResult>, title: &str) -> String {
    let ok: Vec<&ServerResult> = results.iter().filter(|r| r.error.is_none()).collect();
    let (label_w, bar_w, row_h, top) = (120.0, 560.0, 26.0, 60.0);
    let panel_h = 40.0 + row_h * ok.len().max(1) as f64;
    let width = label_w + bar_w + 140.0;
    let height = top + 2.0 * panel_h + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16" font-weight="bold">{}</text>"#,
        esc(title)
    );
    type Metric<'a> = (
        &'a str,
        &'a dyn Fn(&ServerResult) -> Option<f64>,
        &'a str,
        usize,
    );
    let panels: [Metric; 2] = [
        (
            "answered queries/s at <=0.1% loss",
            &|r| r.answered_qps(),
            "#3b7dd8",
            0,
        ),
        (
            "CPU-seconds per million answers (lower is better)",
            &|r| r.cpu_per_m(),
            "#d8843b",
            2,
        ),
    ];
    for (p, (name, metric, color, prec)) in panels.iter().enumerate() {
        let y0 = top + p as f64 * panel_h;
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}" font-weight="bold">{}</text>"#,
            y0 + 14.0,
            esc(name)
        );
        let mut max = ok.iter().filter_map(|r| metric(r)).fold(0.0f64, f64::max);
        let ceil = if p == 0 {
            ceiling.and_then(|c| c.answered_qps())
        } else {
            None
        };
        if let Some(c) = ceil {
            max = max.max(c);
        }
        let max = if max > 0.0 { max } else { 1.0 };
        for (i, r) in ok.iter().enumerate() {
            let y = y0 + 26.0 + i as f64 * row_h;
            let _ = writeln!(
                s,
                r#"<text x="10" y="{}">{}</text>"#,
                y + 14.0,
                esc(r.kind.name())
            );
            let v = metric(r);
            let w = v.map_or(0.0, |v| v / max * bar_w);
            let _ = writeln!(
                s,
                r#"<rect x="{label_w}" y="{y}" width="{w:.1}" height="{}" fill="{color}"/>"#,
                row_h - 6.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}">{}</text>"#,
                label_w + w + 6.0,
                y + 14.0,
                fmt_opt(v, *prec)
            );
        }
        if let Some(c) = ceil {
            let x = label_w + c / max * bar_w;
            let y1 = y0 + 22.0 + row_h * ok.len() as f64;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{y1}" stroke="#444" stroke-dasharray="4 3"/>"##,
                y0 + 20.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="end">generator ceiling {c:.0}</text>"#,
                x - 4.0,
                y0 + 14.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
