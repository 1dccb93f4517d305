//! `cargo xtask bench --smoke` inside the test suite: runs the bench binary in smoke mode (small
//! zone, one short fixed-rate run per server, every server and the reflector, TEST_RUN probes,
//! the zone update figures on a small zone) and checks that the JSON report lists every server
//! with answers, has the update figures, the sender profiles and the rate limiting section (RRL
//! cuts the amplification below 1, legitimate queries answered), the run CPU per answer is
//! taken from and the `--perf` profile of the server core for every server, the end-to-end
//! ratios against the reflector and Knot XDP, and that the chart exists.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use xdpdns_tests::bench::json;

#[test]
fn bench_smoke_reports_every_server() {
    // Cargo builds the package's binaries for its integration tests and says where.
    let bin = env!("CARGO_BIN_EXE_bench");
    let out = std::env::temp_dir().join(format!("xdpdns-bench-smoke-{}", std::process::id()));
    let t = Instant::now();
    let status = Command::new(bin)
        .args(["--smoke", "--perf", "--out"])
        .arg(&out)
        .status()
        .expect("running the bench binary");
    eprintln!("bench --smoke took {:.1}s", t.elapsed().as_secs_f64());
    assert!(status.success(), "bench --smoke failed: {status}");

    let text = std::fs::read_to_string(out.join("bench.json")).expect("bench.json");
    let doc = json::parse(&text).expect("valid JSON");
    assert_eq!(doc.get("mode").and_then(|m| m.as_str()), Some("smoke"));
    let servers = doc
        .get("servers")
        .and_then(|s| s.as_array())
        .expect("servers");
    let mut seen = BTreeSet::new();
    for s in servers {
        let name = s.get("name").and_then(|n| n.as_str()).expect("name");
        let answers = s.get("answers").and_then(|a| a.as_f64()).unwrap_or(0.0);
        assert!(
            answers > 0.0,
            "{name} answered nothing: {}",
            s.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no error recorded")
        );
        assert_eq!(
            s.get("ok"),
            Some(&json::Json::Bool(true)),
            "{name} failed: {:?}",
            s.get("error")
        );
        check_cpu_run(name, s);
        seen.insert(name.to_owned());
    }
    let expected: BTreeSet<String> = ["xdpdns-xdp", "xdpdns-user", "knot-udp", "knot-xdp", "nsd"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, expected, "every server is in the report");
    let ceiling = doc.get("generator_ceiling").expect("generator_ceiling");
    assert!(
        ceiling
            .get("answers")
            .and_then(|a| a.as_f64())
            .unwrap_or(0.0)
            > 0.0
    );
    let probes = doc
        .get("test_run")
        .and_then(|p| p.as_array())
        .expect("test_run probes");
    assert!(!probes.is_empty());
    // The rate limiting section: the spoofed flood with RRL off and on, the cost probes.
    let rrl = doc.get("rrl").expect("rrl section");
    let flood = |k: &str, f: &str| {
        rrl.get(k)
            .and_then(|r| r.get(f))
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("rrl {k}.{f}: {rrl:?}"))
    };
    assert!(flood("on", "amplification") < 1.0 && flood("off", "amplification") > 1.0);
    assert!(flood("on", "legit_share") >= 0.99, "{rrl:?}");
    let costs = rrl
        .get("cost_ns")
        .and_then(|c| c.as_array())
        .expect("cost_ns");
    assert_eq!(costs.len(), 4);
    // The zone update figures: a diff published incrementally, and in full, both timed.
    let updates = doc
        .get("update")
        .and_then(|u| u.as_array())
        .expect("update figures");
    assert!(!updates.is_empty());
    for u in updates {
        let num = |k: &str| u.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
        assert!(
            num("full_s") > 0.0 && num("full_over_incremental") > 0.0,
            "update figures: {:?}",
            u.get("error")
        );
    }
    check_cpu_run("reflector", ceiling);
    check_targets(&doc, &out);
    check_xfr(doc.get("xfr").expect("xfr section"));
    check_profiles(doc.get("profiles").expect("profiles section"));
    let svg = std::fs::read_to_string(out.join("bench.svg")).expect("bench.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&out);
}

/// CPU per answer comes from the run at the common rate (in smoke mode, the fixed-rate run),
/// and `--perf` profiled the server core in a run at that rate: every server has its counted
/// time, the XDP servers spend theirs in the veth NAPI thread and, for xdpdns, in its programs.
fn check_cpu_run(name: &str, s: &json::Json) {
    let num = |v: Option<&json::Json>, what: &str| {
        v.and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{name}: {what} missing: {s:?}"))
    };
    let run = s
        .get("cpu_run")
        .unwrap_or_else(|| panic!("{name}: cpu_run"));
    assert_eq!(
        num(run.get("requested_qps"), "cpu_run.requested_qps"),
        20000.0
    );
    assert!(num(run.get("replies"), "cpu_run.replies") > 0.0, "{name}");
    assert!(num(s.get("cpu_s_per_million_answers"), "cpu per answer") > 0.0);
    assert!(
        s.get("first_lossy_qps").is_some(),
        "{name}: first_lossy_qps"
    );
    let p = s
        .get("profile")
        .unwrap_or_else(|| panic!("{name}: profile"));
    assert!(p.get("error").is_none(), "{name}: perf failed: {p:?}");
    assert!(
        num(p.get("counted_ns_per_answer"), "counted ns") > 0.0,
        "{p:?}"
    );
    assert!(num(p.get("cpu_ns_per_answer"), "cpu ns") > 0.0, "{p:?}");
    let class = |c: &str| num(p.get("ns_per_answer").and_then(|n| n.get(c)), c);
    assert!(
        num(p.get("counted_without_skb_ns_per_answer"), "without skb") > 0.0,
        "{p:?}"
    );
    if matches!(name, "reflector" | "xdpdns-xdp" | "knot-xdp") {
        assert!(
            class("napi") > 0.0,
            "{name}: no samples in the NAPI thread: {p:?}"
        );
        // XDP runs in the server veth's NAPI thread, scheduled in at least once per run.
        assert!(
            num(run.get("server_napi_runs"), "cpu_run.server_napi_runs") > 0.0,
            "{name}: {run:?}"
        );
    }
    if name == "reflector" {
        // kxdpgun's copy-mode skbs reach veth's XDP path on every query.
        assert!(
            class("skb") > 0.0,
            "{name}: no generator skb samples: {p:?}"
        );
    }
    if name == "xdpdns-xdp" {
        assert!(
            class("program") + class("helpers") > 0.0,
            "{name}: no samples in its XDP programs: {p:?}"
        );
    }
    let top = p.get("top").and_then(|t| t.as_array()).expect("top");
    assert!(!top.is_empty(), "{name}: {p:?}");
}

/// The end-to-end ratios of xdpdns XDP against the reflector and Knot XDP are in the JSON and
/// in the text.
fn check_targets(doc: &json::Json, out: &std::path::Path) {
    let t = doc.get("targets").expect("targets");
    for k in [
        "qps_vs_reflector",
        "qps_vs_knot_xdp",
        "cpu_vs_reflector",
        "cpu_vs_knot_xdp",
        "perf_cpu_vs_reflector",
        "perf_cpu_vs_reflector_without_skb",
    ] {
        let v = t.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
        assert!(v > 0.0, "targets.{k}: {t:?}");
    }
    let text = std::fs::read_to_string(out.join("bench.txt")).expect("bench.txt");
    assert!(
        text.contains("end to end, xdpdns XDP against the reflector and Knot XDP"),
        "{text}"
    );
    assert!(text.contains("perf on the server core"), "{text}");
}

/// The zone-transfer figures are there and positive (their values are the benchmark's, not the
/// test's): AXFR for both secondaries and the ratio, NOTIFY to the new serial and referral, for
/// xdpdns by XDP (referral counter +1, `udp.queries` +0 around a query) after an IXFR.
fn check_xfr(x: &json::Json) {
    let error = |v: &json::Json| format!("{:?}", v.get("error"));
    assert_eq!(
        x.get("ok"),
        Some(&json::Json::Bool(true)),
        "xfr: {}",
        error(x)
    );
    let positive = |v: &json::Json, path: &[&str]| {
        let got = path.iter().try_fold(v, |v, k| v.get(k));
        let n = got.and_then(|n| n.as_f64()).unwrap_or(0.0);
        assert!(n > 0.0, "xfr {path:?} = {got:?} ({})", error(v));
    };
    positive(x, &["client_axfr_s"]);
    positive(x, &["ratios", "axfr_answered_vs_knotd"]);
    positive(x, &["ratios", "notify_serial_vs_knotd"]);
    positive(x, &["ratios", "notify_referral_xdp_vs_knotd"]);
    for (who, keys) in [
        ("xdpdns", &["transfer_build_store_s", "publish_s"][..]),
        ("knotd", &["transferred_s"][..]),
    ] {
        let p = x.get(who).expect(who);
        positive(p, &["axfr", "answered_s"]);
        for k in keys {
            positive(p, &["axfr", k]);
        }
        positive(p, &["notify", "serial_s"]);
        positive(p, &["notify", "referral_s"]);
    }
    let n = x
        .get("xdpdns")
        .and_then(|p| p.get("notify"))
        .expect("notify");
    positive(n, &["referral_xdp_s"]);
    positive(n, &["check_xdp_answered_referral"]);
    assert_eq!(
        n.get("check_udp_queries").and_then(|v| v.as_f64()),
        Some(0.0)
    );
    assert_eq!(n.get("method").and_then(|v| v.as_str()), Some("IXFR"));
    assert!(
        n.get("xdp_update").and_then(|v| v.as_str()).is_some(),
        "{n:?}"
    );
    // xdpdns' own timing of its steps: the AXFR built, the IXFR applied in place.
    let steps: Vec<&str> = x
        .get("xdpdns")
        .and_then(|p| p.get("axfr"))
        .and_then(|a| a.get("breakdown"))
        .and_then(|b| b.as_array())
        .expect("breakdown")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    for want in [
        "built in",
        "applied in place in",
        "durable in",
        "publication in",
    ] {
        assert!(steps.iter().any(|l| l.contains(want)), "{want}: {steps:?}");
    }
}

/// The sender profiles are there for the three zone kinds (unsigned, NSEC, NSEC3), in TEST_RUN
/// and over the veth, each with queries counted; on the unsigned zone the driver answers every
/// profile in full.
fn check_profiles(p: &json::Json) {
    assert_eq!(p.get("errors").and_then(|e| e.as_str()), Some(""), "{p:?}");
    for path in ["test_run", "veth"] {
        let shares = p.get(path).and_then(|s| s.as_array()).expect(path);
        assert_eq!(shares.len(), 12, "{path}: 4 profiles × 3 zones");
        let mut zones: Vec<&str> = shares
            .iter()
            .filter_map(|s| s.get("zone").and_then(|z| z.as_str()))
            .collect();
        zones.sort();
        zones.dedup();
        assert_eq!(zones.len(), 3, "{path}: zone kinds {zones:?}");
        for s in shares {
            let num = |k: &str| s.get(k).and_then(|v| v.as_f64()).unwrap_or(-1.0);
            assert!(num("queries") > 0.0, "{path}: {s:?}");
            if s.get("zone").and_then(|z| z.as_str()) == Some("unsigned") {
                assert_eq!(num("answered_pct"), 100.0, "{path}: {s:?}");
            }
        }
    }
}
