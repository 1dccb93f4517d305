//! The sections measured per zone size — the start-up figures (`load`) and the update
//! figures (`update`) — in the full run and alone (`--load-only`, `--update-only`).

use anyhow::Result;

use super::json::{obj, Json};
use super::net::BenchNet;
use super::{load, update, write_reports, Bench};

/// The update figures for every size: progress lines, and the JSON array.
pub(super) fn updates(b: &Bench) -> (Json, String) {
    let o = &b.opts;
    per_size(b, &o.update_sizes, "update", |n| {
        b.progress(&format!(
            "update: {n} delegations, diffs of {} records",
            o.update_changes
        ));
        update::measure(&b.work, n, o.update_changes, o.seed).map(|f| (f.line(), f.json()))
    })
}

/// The start-up figures for every size in `net`: progress lines, the JSON array and the text.
pub(super) fn loads(b: &Bench, net: &mut BenchNet) -> (Json, String) {
    let o = &b.opts;
    per_size(b, &o.load_sizes, "start-up", |n| {
        b.progress(&format!(
            "start-up: xdpdns serve, knotd and nsd with {n} delegations"
        ));
        load::run(net, &b.work, n, o.signed, o.seed).map(|f| (f.line(), f.json()))
    })
}

/// Runs `measure` for each zone size: the lines it gives (printed and as text) and the JSON
/// array, with an error entry for a size that failed.
fn per_size(
    b: &Bench,
    sizes: &[usize],
    what: &str,
    mut measure: impl FnMut(usize) -> Result<(String, Json)>,
) -> (Json, String) {
    let mut out = Vec::new();
    let mut text = String::new();
    for &n in sizes {
        match measure(n) {
            Ok((line, json)) => {
                b.progress(&line);
                text.push_str(&format!("  {line}\n"));
                out.push(json);
            }
            Err(e) => {
                b.progress(&format!("{what} {n}: FAILED: {e:#}"));
                text.push_str(&format!("  {what} {n}: failed: {e:#}\n"));
                out.push(obj([
                    ("delegations", n.into()),
                    ("error", format!("{e:#}").into()),
                ]));
            }
        }
    }
    (Json::Arr(out), text)
}

/// The start-up figures alone (`--load-only`), in their own namespaces.
pub(super) fn load_only(b: &Bench) -> Result<Json> {
    let o = &b.opts;
    let mut net = BenchNet::new(o.nice)?;
    let (json, text) = loads(b, &mut net);
    drop(net);
    println!("\nstart-up:\n{text}");
    let doc = obj([("mode", "load-only".into()), ("load", json)]);
    write_reports(o, &[("bench.json", doc.pretty()), ("load.txt", text)])?;
    Ok(doc)
}

/// The update figures alone (`--update-only`).
pub(super) fn run_updates(b: &Bench) -> Result<Json> {
    let o = &b.opts;
    let (json, text) = updates(b);
    let doc = obj([
        ("mode", "update-only".into()),
        ("update_changes", o.update_changes.into()),
        ("update", json),
    ]);
    write_reports(o, &[("bench.json", doc.pretty()), ("update.txt", text)])?;
    Ok(doc)
}
