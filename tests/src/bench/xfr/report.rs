//! The transfer section's figures: what was measured for each secondary, its lines in
//! `bench.txt` and its object in `bench.json`, with xdpdns' times as ratios to knotd's from the
//! same run.

use std::fmt::Write as _;

use super::change::{ADDED, CHANGED, REMOVED};
use super::edge::Axfr;
use super::notify::Notified;
use crate::bench::json::{obj, Json};

/// One secondary's figures.
#[derive(Default)]
pub struct Phase {
    pub axfr: Option<Axfr>,
    /// Seconds it took to go quiet after the first transfer.
    pub settle_s: Option<f64>,
    pub notify: Option<Notified>,
    /// The server's own timing of its refresh steps (xdpdns' debug log), in order.
    pub breakdown: Vec<String>,
    pub error: Option<String>,
}

/// Everything the section measured.
#[derive(Default)]
pub struct XfrResult {
    pub delegations: usize,
    pub zone_bytes: u64,
    /// The primary's serial before the changes.
    pub serial: Option<u32>,
    pub primary_load_s: Option<f64>,
    /// xdpdns' transfer client alone: (seconds, records), or why not.
    pub client_axfr: Option<Result<(f64, usize), String>>,
    pub xdpdns: Phase,
    pub knot: Phase,
    /// What stopped the section before (or between) the secondaries.
    pub error: Option<String>,
}

fn mark(marks: &[(&'static str, f64, String)], name: &str) -> Option<f64> {
    marks.iter().find(|m| m.0 == name).map(|m| m.1)
}

fn mark_line<'a>(marks: &'a [(&'static str, f64, String)], name: &str) -> Option<&'a str> {
    marks.iter().find(|m| m.0 == name).map(|m| m.2.as_str())
}

/// knotd's own duration of a transfer, from its "..., finished, 1.23 seconds, ..." line.
fn knot_seconds(line: &str) -> Option<f64> {
    let rest = line.split("finished, ").nth(1)?;
    rest.split(" seconds").next()?.trim().parse().ok()
}

fn span(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn s(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3} s"))
}

fn x(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

impl Phase {
    fn answered(&self) -> Option<f64> {
        self.axfr.as_ref().map(|a| a.answered_s)
    }

    fn marks(&self) -> &[(&'static str, f64, String)] {
        self.axfr.as_ref().map_or(&[], |a| a.marks.as_slice())
    }

    fn notify_marks(&self) -> &[(&'static str, f64, String)] {
        self.notify.as_ref().map_or(&[], |n| n.marks.as_slice())
    }

    fn serial_s(&self) -> Option<f64> {
        self.notify.as_ref()?.serial_s
    }

    /// The referral time compared: by XDP for xdpdns, by knotd for knotd.
    fn referral_s(&self, xdp: bool) -> Option<f64> {
        let n = self.notify.as_ref()?;
        if xdp {
            n.referral_xdp_s
        } else {
            n.referral_s
        }
    }

    fn axfr_json(&self, xdpdns: bool) -> Json {
        let m = self.marks();
        let mut f = vec![("answered_s".to_owned(), self.answered().into())];
        let mut put = |k: &str, v: Option<f64>| f.push((k.to_owned(), v.into()));
        if xdpdns {
            put("ready_s", mark(m, "ready"));
            put("transferred_s", mark(m, "transferred"));
            put("published_s", mark(m, "published"));
            put(
                "transfer_build_store_s",
                span(mark(m, "ready"), mark(m, "transferred")),
            );
            put(
                "publish_s",
                span(mark(m, "transferred"), mark(m, "published")),
            );
        } else {
            put("transfer_started_s", mark(m, "transfer_started"));
            put("transferred_s", mark(m, "transferred"));
            put("loaded_s", mark(m, "loaded"));
            put(
                "transfer_s_knot_log",
                mark_line(m, "transferred").and_then(knot_seconds),
            );
        }
        f.push((
            "peak_rss_kib".into(),
            self.axfr.as_ref().map(|a| a.peak_rss_kib).into(),
        ));
        f.push(("settle_s".into(), self.settle_s.into()));
        f.push((
            "breakdown".into(),
            Json::Arr(self.breakdown.iter().map(|l| l.as_str().into()).collect()),
        ));
        Json::Obj(f)
    }

    fn notify_json(&self, xdpdns: bool) -> Json {
        let Some(n) = &self.notify else {
            return Json::Null;
        };
        let m = &n.marks;
        let mut f = vec![
            ("commit_s", n.commit_s.into()),
            ("serial", n.serial.map(u64::from).into()),
            ("serial_s", n.serial_s.into()),
            ("referral_s", n.referral_s.into()),
            ("notify_received_s", mark(m, "notify").into()),
            ("transferred_s", mark(m, "transferred").into()),
        ];
        if xdpdns {
            f.extend([
                ("referral_xdp_s", n.referral_xdp_s.into()),
                ("first_referral_path", n.first_path.clone().into()),
                ("published_s", mark(m, "published").into()),
                ("method", n.method.clone().into()),
                ("xdp_update", n.xdp_update().into()),
                ("last_refresh", n.last_refresh.clone().into()),
                (
                    "xfr_counters",
                    Json::Obj(
                        n.xfr
                            .iter()
                            .map(|(k, v)| (k.clone(), (*v).into()))
                            .collect(),
                    ),
                ),
                ("check_xdp_answered_referral", n.confirm.map(|c| c.0).into()),
                ("check_udp_queries", n.confirm.map(|c| c.1).into()),
            ]);
        } else {
            f.push(("loaded_s", mark(m, "loaded").into()));
        }
        Json::Obj(f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

impl XfrResult {
    /// xdpdns' transfer client alone: (seconds, records), when it worked.
    fn client(&self) -> Option<(f64, usize)> {
        self.client_axfr.as_ref()?.as_ref().ok().copied()
    }

    fn axfr_ratio(&self) -> Option<f64> {
        ratio(self.xdpdns.answered(), self.knot.answered())
    }

    fn serial_ratio(&self) -> Option<f64> {
        ratio(self.xdpdns.serial_s(), self.knot.serial_s())
    }

    fn referral_ratio(&self) -> Option<f64> {
        ratio(self.xdpdns.referral_s(true), self.knot.referral_s(false))
    }

    /// The section's lines in `bench.txt`.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Zone transfers: {} delegations ({} MiB zone file, serial {}), knotd primary upstream \
             (TSIG hmac-sha256, loaded in {})",
            self.delegations,
            self.zone_bytes >> 20,
            self.serial.map_or("?".into(), |s| s.to_string()),
            s(self.primary_load_s)
        );
        if let Some(e) = &self.error {
            let _ = writeln!(t, "  FAILED: {}", e.lines().next().unwrap_or(""));
        }
        let _ = writeln!(
            t,
            "  AXFR, from the secondary's start to its serial answered:"
        );
        for (name, p, xdpdns) in [("xdpdns", &self.xdpdns, true), ("knotd", &self.knot, false)] {
            if let Some(e) = &p.error {
                let _ = writeln!(
                    t,
                    "    {name:<7} FAILED: {}",
                    e.lines().next().unwrap_or("")
                );
            }
            let Some(a) = &p.axfr else { continue };
            let m = &a.marks;
            let detail = if xdpdns {
                format!(
                    "ready {}; transfer, build and store {}; publish (engine, XDP) {}",
                    s(mark(m, "ready")),
                    s(span(mark(m, "ready"), mark(m, "transferred"))),
                    s(span(mark(m, "transferred"), mark(m, "published")))
                )
            } else {
                format!(
                    "AXFR {} by knotd's log",
                    s(mark_line(m, "transferred").and_then(knot_seconds))
                )
            };
            let _ = writeln!(
                t,
                "    {name:<7} {:>10}  ({detail}); peak RSS {} MiB",
                s(Some(a.answered_s)),
                a.peak_rss_kib >> 10
            );
        }
        let _ = writeln!(t, "    xdpdns/knotd {}", x(self.axfr_ratio()));
        match &self.client_axfr {
            Some(Ok((secs, records))) => {
                let _ = writeln!(
                    t,
                    "    xdpdns' transfer client alone (AXFR into memory, server core): {}, \
                     {records} records",
                    s(Some(*secs))
                );
            }
            Some(Err(e)) => {
                let _ = writeln!(t, "    xdpdns' transfer client alone: FAILED: {e}");
            }
            None => {}
        }
        let _ = writeln!(
            t,
            "  NOTIFY after {} changed delegations ({CHANGED} new NS, {ADDED} added, {REMOVED} \
             removed), from knotc zone-commit:",
            CHANGED + ADDED + REMOVED
        );
        for (name, p, xdpdns) in [("xdpdns", &self.xdpdns, true), ("knotd", &self.knot, false)] {
            let Some(n) = &p.notify else { continue };
            let m = p.notify_marks();
            let answered = if xdpdns {
                format!(
                    "referral by XDP {} (first seen {}, by {})",
                    s(n.referral_xdp_s),
                    s(n.referral_s),
                    n.first_path.as_deref().unwrap_or("?")
                )
            } else {
                format!("referral {}", s(n.referral_s))
            };
            let mut line = format!(
                "    {name:<7} commit {}; serial {}, {answered}; NOTIFY in {}, transferred {}",
                s(Some(n.commit_s)),
                s(n.serial_s),
                s(mark(m, "notify")),
                s(mark(m, "transferred"))
            );
            if xdpdns {
                let _ = write!(
                    line,
                    ", served (logged) {}; method {}, XDP {} ({}); check: \
                     xdp.answered_referral +{}, udp.queries +{}",
                    s(mark(m, "published")),
                    n.method.as_deref().unwrap_or("?"),
                    n.xdp_update().unwrap_or("?"),
                    n.last_refresh.as_deref().unwrap_or("?"),
                    n.confirm.map_or("?".into(), |c| c.0.to_string()),
                    n.confirm.map_or("?".into(), |c| c.1.to_string()),
                );
            } else {
                let _ = write!(line, ", loaded {}", s(mark(m, "loaded")));
            }
            let _ = writeln!(t, "{line}");
        }
        let _ = writeln!(
            t,
            "    xdpdns/knotd: serial {}, referral {}",
            x(self.serial_ratio()),
            x(self.referral_ratio())
        );
        if !self.xdpdns.breakdown.is_empty() {
            let _ = writeln!(t, "  xdpdns' own timing of its refreshes (debug log):");
            for l in &self.xdpdns.breakdown {
                let _ = writeln!(t, "    {l}");
            }
        }
        t
    }

    /// The section's object in `bench.json`.
    pub fn json(&self) -> Json {
        let phase = |p: &Phase, xdpdns: bool| {
            obj([
                ("ok", p.error.is_none().into()),
                ("error", p.error.clone().into()),
                ("axfr", p.axfr_json(xdpdns)),
                ("notify", p.notify_json(xdpdns)),
            ])
        };
        obj([
            (
                "ok",
                (self.error.is_none() && self.xdpdns.error.is_none() && self.knot.error.is_none())
                    .into(),
            ),
            ("error", self.error.clone().into()),
            ("delegations", self.delegations.into()),
            ("zone_bytes", self.zone_bytes.into()),
            ("serial", self.serial.map(u64::from).into()),
            ("tsig_algorithm", "hmac-sha256".into()),
            ("primary_load_s", self.primary_load_s.into()),
            ("client_axfr_s", self.client().map(|c| c.0).into()),
            ("client_axfr_records", self.client().map(|c| c.1).into()),
            (
                "client_axfr_error",
                self.client_axfr
                    .as_ref()
                    .and_then(|r| r.as_ref().err())
                    .cloned()
                    .into(),
            ),
            (
                "changes",
                obj([
                    ("changed", CHANGED.into()),
                    ("added", ADDED.into()),
                    ("removed", REMOVED.into()),
                ]),
            ),
            ("xdpdns", phase(&self.xdpdns, true)),
            ("knotd", phase(&self.knot, false)),
            (
                "ratios",
                obj([
                    ("axfr_answered_vs_knotd", self.axfr_ratio().into()),
                    ("notify_serial_vs_knotd", self.serial_ratio().into()),
                    ("notify_referral_xdp_vs_knotd", self.referral_ratio().into()),
                ]),
            ),
        ])
    }
}
