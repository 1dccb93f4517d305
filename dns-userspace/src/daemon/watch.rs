//! `xdpdns stats --watch`: the client asks the server for its counters every interval and
//! prints the rates per second — queries by path (XDP answered, userspace UDP and TCP), XDP
//! answers by kind, packets XDP passed by reason, and userspace queries per zone — one line
//! (or, with `--json`, one JSON object) per interval.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use super::control;

/// Counter values by name.
type Counters = BTreeMap<String, u64>;

/// The server's counters, from `--json stats`.
async fn counters(path: &Path) -> Result<Counters> {
    let body = control::request(path, "--json stats").await?;
    let v: Value = serde_json::from_str(&body).context("the server's stats are not JSON")?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("the server's stats are not a JSON object"))?;
    Ok(obj
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect())
}

/// Whether counter `name` counts events (a rate means something), and under which group.
fn group(name: &str) -> Option<&'static str> {
    if name == "xdp.answered" || name == "udp.queries" || name == "tcp.queries" {
        Some("path")
    } else if name.starts_with("xdp.answered_") {
        Some("answered")
    } else if name.starts_with("xdp.pass_") {
        Some("passed")
    } else if name.starts_with("zone.") && name.ends_with(".queries") {
        Some("zone")
    } else {
        None
    }
}

/// Rates per second of the event counters from `before` to `after`, `secs` apart, by group.
pub fn rates(
    before: &Counters,
    after: &Counters,
    secs: f64,
) -> BTreeMap<&'static str, BTreeMap<String, f64>> {
    let mut out: BTreeMap<&'static str, BTreeMap<String, f64>> = BTreeMap::new();
    for (name, &a) in after {
        let Some(g) = group(name) else { continue };
        let b = before.get(name).copied().unwrap_or(0);
        let rate = a.saturating_sub(b) as f64 / secs.max(1e-3);
        let short = match g {
            "answered" => name.trim_start_matches("xdp.answered_"),
            "passed" => name.trim_start_matches("xdp.pass_"),
            "zone" => name
                .trim_start_matches("zone.")
                .trim_end_matches(".queries"),
            _ => match name.as_str() {
                "xdp.answered" => "xdp",
                "udp.queries" => "udp",
                _ => "tcp",
            },
        };
        out.entry(g).or_default().insert(short.to_owned(), rate);
    }
    out
}

/// One line of rates: every path and answer kind, the passes and zones that moved.
pub fn line(rates: &BTreeMap<&'static str, BTreeMap<String, f64>>) -> String {
    let mut out = String::new();
    let groups = [
        ("path", "q/s", true),
        ("answered", "xdp answered", true),
        ("passed", "xdp passed", false),
        ("zone", "userspace by zone", false),
    ];
    for (g, title, all) in groups {
        let Some(m) = rates.get(g) else { continue };
        let parts: Vec<String> = m
            .iter()
            .filter(|(_, &r)| all || r > 0.0)
            .map(|(k, r)| format!("{k} {r:.0}"))
            .collect();
        if !out.is_empty() {
            out.push_str(" | ");
        }
        let _ = write!(
            out,
            "{title}: {}",
            if parts.is_empty() {
                "-".to_owned()
            } else {
                parts.join(" ")
            }
        );
    }
    out
}

/// Prints rates every `interval` seconds, `count` times (forever without).
pub fn run(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    as_json: bool,
    interval: f64,
    count: Option<u64>,
) -> Result<()> {
    if !(interval.is_finite() && interval >= 0.1) {
        bail!("--interval must be at least 0.1 s");
    }
    let every = Duration::from_secs_f64(interval);
    let mut before = rt.block_on(counters(path))?;
    let mut at = Instant::now();
    let mut printed = 0u64;
    while count.is_none_or(|c| printed < c) {
        std::thread::sleep(every.saturating_sub(at.elapsed()));
        let after = rt.block_on(counters(path))?;
        let now = Instant::now();
        let secs = now.duration_since(at).as_secs_f64();
        let r = rates(&before, &after, secs);
        if as_json {
            println!("{}", json!({ "interval_seconds": secs, "rates": r }));
        } else {
            println!("{}", line(&r));
        }
        (before, at) = (after, now);
        printed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_by_group_and_gauges_are_left_out() {
        let c = |v: &[(&str, u64)]| -> Counters {
            v.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let before = c(&[
            ("xdp.answered", 10),
            ("udp.queries", 0),
            ("xdp.pass_miss", 4),
            ("tcp.open_connections", 3),
            ("zone.example..queries", 0),
        ]);
        let after = c(&[
            ("xdp.answered", 30),
            ("udp.queries", 4),
            ("xdp.pass_miss", 4),
            ("tcp.open_connections", 9),
            ("zone.example..queries", 6),
        ]);
        let r = rates(&before, &after, 2.0);
        assert_eq!(r["path"]["xdp"], 10.0);
        assert_eq!(r["path"]["udp"], 2.0);
        assert_eq!(r["passed"]["miss"], 0.0);
        assert_eq!(r["zone"]["example."], 3.0);
        assert!(r.values().all(|m| !m.contains_key("tcp.open_connections")));
        let l = line(&r);
        assert!(
            l.contains("q/s: udp 2 xdp 10") && l.contains("xdp passed: -"),
            "{l}"
        );
        assert!(l.contains("userspace by zone: example. 3"), "{l}");
    }
}
