//! The replies of `xdpdns stats` (every counter, `name value`; a counter is always printed, 0
//! or not, so that a missing one is a bug the tests catch; with `--json` one object of them)
//! and `xdpdns status` (text, or the same as a JSON object).

use std::fmt::Write as _;

use anyhow::Result;
use dns_common::counter;
use serde_json::{json, Map, Value};

use super::commands::Reply;
use super::secondary::ZoneHandle;
use super::{held, State};
use crate::xfr::soa::Soa;
use crate::xfr::timers::{ExpirePolicy, Status, Timers};

/// `xdpdns stats`: every counter, `name value` a line; in JSON an object of them.
pub(super) fn stats(state: &State) -> Result<Reply> {
    let text = stats_text(state)?;
    let mut map = Map::new();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once(' ') {
            let v: u64 = value.parse()?;
            map.insert(name.to_owned(), Value::from(v));
        }
    }
    Ok(Reply {
        text,
        json: Value::Object(map),
    })
}

fn stats_text(state: &State) -> Result<String> {
    let mut out = String::new();
    if let Some(x) = state.served.xdp() {
        let c = held(x).server.counters()?;
        let answered: u64 = (0..counter::COUNT)
            .filter(|&i| counter::is_answered(i))
            .map(|i| c[i as usize])
            .sum();
        let passed: u64 = (counter::PASS_NOT_DNS..counter::COUNT)
            .filter(|&i| counter::is_pass(i))
            .map(|i| c[i as usize])
            .sum();
        writeln!(out, "xdp.answered {answered}")?;
        writeln!(out, "xdp.passed {passed}")?;
        for (name, v) in counter::NAMES.iter().zip(&c) {
            writeln!(out, "xdp.{name} {v}")?;
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    if let Some(x) = state.served.xdp() {
        let guard = held(x);
        let server = &guard.server;
        let (stored, cache) = server.template_counts();
        writeln!(out, "xdp.templates {stored}")?;
        writeln!(out, "xdp.template_cache {cache}")?;
        writeln!(out, "xdp.templates_cached {}", server.templates_cached())?;
        let p = &state.promote;
        writeln!(out, "xdp.cold_seen {}", p.cold_seen.load(Relaxed))?;
        writeln!(out, "xdp.promoted {}", p.promoted.load(Relaxed))?;
        writeln!(out, "xdp.promote_deferred {}", p.deferred.load(Relaxed))?;
    }
    let s = &state.stats;
    writeln!(out, "udp.queries {}", s.udp_queries.load(Relaxed))?;
    writeln!(out, "udp.responses {}", s.udp_responses.load(Relaxed))?;
    writeln!(out, "tcp.connections {}", s.tcp_connections.load(Relaxed))?;
    writeln!(out, "tcp.queries {}", s.tcp_queries.load(Relaxed))?;
    let counters = [
        ("tcp.open_connections", &s.tcp_open),
        ("tcp.refused_connections", &s.tcp_refused_connections),
        ("tcp.refused_per_source", &s.tcp_refused_per_source),
        ("tcp.evicted_idle", &s.tcp_evicted_idle),
        ("tcp.accept_errors", &s.tcp_accept_errors),
        ("tcp.write_timeouts", &s.tcp_write_timeouts),
        ("udp.recv_errors", &s.udp_recv_errors),
        ("control.accept_errors", &s.control_accept_errors),
        ("userspace.panics", &s.panics),
        ("userspace.rrl_limited", &s.rrl_limited),
        ("userspace.rrl_slipped", &s.rrl_slipped),
        ("userspace.rrl_dropped", &s.rrl_dropped),
    ];
    for (name, value) in counters {
        writeln!(out, "{name} {}", value.load(Relaxed))?;
    }
    for (name, value) in state.xfr.lines() {
        writeln!(out, "{name} {value}")?;
    }
    // Userspace queries per zone served (with XDP on: the ones it passed).
    let engine = state.served.engine.read().expect("engine lock").clone();
    let mut zones: Vec<_> = engine.catalog.zones().map(|z| z.apex().clone()).collect();
    zones.sort();
    for apex in zones {
        let n = state.control.tally.zone_queries(&apex);
        writeln!(out, "zone.{apex}.queries {n}")?;
    }
    Ok(out)
}

/// `xdpdns status`: uptime, the fast path, the last reload, the zones served, and each
/// secondary zone.
pub(super) fn status(state: &State) -> Reply {
    let mut out = String::new();
    let mut json = Map::new();
    let engine = state.served.engine.read().expect("engine lock").clone();
    let uptime = state.started.elapsed().as_secs();
    let _ = writeln!(out, "uptime {uptime}s");
    json.insert("uptime_seconds".into(), uptime.into());
    let detached = state
        .control
        .detached
        .load(std::sync::atomic::Ordering::Relaxed);
    match (&state.opts.iface, state.served.xdp().is_some()) {
        (Some(i), true) if detached => {
            let _ = writeln!(out, "xdp detached from {i} by `xdpdns detach`");
            json.insert("xdp".into(), json!({ "iface": i, "detached": true }));
        }
        (Some(i), true) => {
            let (entries, (templates, cache), start) =
                state.served.xdp().map_or((0, (0, 0), None), |x| {
                    let x = held(x);
                    (x.entries, x.server.template_counts(), x.start_note.clone())
                });
            let mode = state
                .opts
                .xdp_mode
                .map_or("off".to_owned(), |m| format!("{m:?}").to_lowercase());
            let pin = state.opts.xdp_pin.as_deref();
            let _ = writeln!(
                out,
                "xdp attached {i} ({entries} entries, {templates} templates, cache {cache}) \
                 mode {mode}{}",
                pin.map_or(String::new(), |p| format!(" pinned as {p}"))
            );
            if let Some(start) = &start {
                let _ = writeln!(out, "xdp start: {start}");
            }
            json.insert(
                "xdp".into(),
                json!({ "iface": i, "entries": entries, "templates": templates,
                        "template_cache": cache, "mode": mode, "pin": pin, "start": start }),
            );
        }
        // Also before the fill has begun (its thread is spawned once the control socket
        // answers): the XDP path is asked for and not started, so it is on its way.
        (Some(i), false) if state.served.xdp_filling() || state.opts.xdp_mode.is_some() => {
            let _ = writeln!(out, "xdp filling {i} (userspace answers meanwhile)");
            json.insert("xdp".into(), json!({ "iface": i, "filling": true }));
        }
        _ => {
            let _ = writeln!(out, "xdp off");
            json.insert("xdp".into(), Value::Null);
        }
    }
    match &*held(&state.control.last_reload) {
        Some(Ok(what)) => {
            let _ = writeln!(out, "last reload ok: {what}");
            json.insert("last_reload".into(), json!({ "ok": true, "message": what }));
        }
        Some(Err(why)) => {
            let _ = writeln!(out, "last reload failed, nothing changed: {why}");
            json.insert("last_reload".into(), json!({ "ok": false, "error": why }));
        }
        None => {}
    }
    let mut zones: Vec<_> = engine.catalog.zones().collect();
    zones.sort_by(|a, b| a.apex().cmp(b.apex()));
    let mut zones_json = Vec::new();
    for z in zones {
        if !engine.catalog.is_available(z.apex()) {
            let _ = writeln!(out, "zone {} not served (SERVFAIL)", z.apex());
            zones_json.push(json!({ "zone": z.apex().to_string(), "served": false }));
            continue;
        }
        let serial = Soa::from_rdata(&z.soa().rdatas[0]).map_or(0, |s| s.serial);
        let secondary = state.secondaries.iter().any(|s| s.spec.zone == *z.apex());
        let from = if secondary {
            "secondary (below)".to_owned()
        } else {
            format!("file {}", z.source)
        };
        let _ = writeln!(
            out,
            "zone {} serial {serial} names {} signed {} {from}",
            z.apex(),
            z.len(),
            z.is_signed(),
        );
        zones_json.push(json!({
            "zone": z.apex().to_string(), "served": true, "serial": serial, "names": z.len(),
            "signed": z.is_signed(),
            "source": if secondary { "secondary".to_owned() } else { z.source.clone() },
        }));
    }
    json.insert("zones".into(), Value::Array(zones_json));
    let now = state.clock.now();
    let mut secondaries = Vec::new();
    for z in &state.secondaries {
        let text = secondary(z, now);
        out.push_str(&text);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        secondaries.push(
            json!({ "zone": z.spec.zone.to_string(), "serial": z.view().serial,
                                  "lines": lines }),
        );
    }
    json.insert("secondaries".into(), Value::Array(secondaries));
    Reply {
        text: out,
        json: Value::Object(json),
    }
}

/// A secondary zone's lines in `xdpdns status`.
fn secondary(z: &ZoneHandle, now: u64) -> String {
    let v = z.view();
    let s = &z.spec;
    let policy = match s.policy {
        ExpirePolicy::Honour => "honour",
        ExpirePolicy::ServeStale => "serve-stale",
    };
    let ago = |t: u64| match now.checked_sub(t) {
        Some(d) => format!("{d} s ago"),
        None => format!("in {} s", t - now),
    };
    let serial = v.serial.map_or("none".to_owned(), |n| n.to_string());
    let primaries: Vec<String> = s.primaries.iter().map(|r| r.describe()).collect();
    let mut out = format!(
        "secondary {} serial {serial} policy {policy} storage {}\n  primary {}\n",
        s.zone,
        z.dir.display(),
        primaries.join(", ")
    );
    match &v.last {
        Some((t, what)) => out.push_str(&format!("  last refresh {}: {what}\n", ago(*t))),
        None => out.push_str("  last refresh: none since start\n"),
    }
    if let Some(t) = v.timers.last_success {
        out.push_str(&format!("  last success {}\n", ago(t)));
    }
    let next = v.timers.next_check;
    let due = if next <= now {
        "now".to_owned()
    } else {
        format!("in {} s", next - now)
    };
    out.push_str(&format!(
        "  next refresh {due} ({} failures in a row)\n",
        v.timers.failures
    ));
    // As of now (the task notes its zone's state at its next look).
    let status = Timers::restore(v.timers.clone(), s.policy).status(now);
    let expiry = match (status, v.timers.expires_at) {
        (Status::Empty, _) | (_, None) => {
            "no copy yet: SERVFAIL until the first transfer".to_owned()
        }
        (Status::Expired, Some(e)) => match s.policy {
            ExpirePolicy::ServeStale => {
                format!("expired {} s ago, serving stale by policy", now - e)
            }
            ExpirePolicy::Honour => {
                format!("expired {} s ago, not served by policy (SERVFAIL)", now - e)
            }
        },
        (_, Some(e)) => format!("expires in {} s", e.saturating_sub(now)),
    };
    out.push_str(&format!("  {expiry}\n"));
    out
}
