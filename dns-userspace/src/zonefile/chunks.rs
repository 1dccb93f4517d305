//! Parallel parsing of one large zone file: the text is cut into chunks at entry boundaries
//! and each chunk is parsed on its own thread, starting from the state the entries before it
//! leave (origin and `$TTL`); the records, locations and warnings are joined in file order,
//! and the first error in file order is the one reported, so the result is exactly what the
//! sequential parser gives (`tests::chunked_parsing_equals_sequential` checks it).
//!
//! The cut points come from a first pass that only tokenizes (`Lexer`) and applies `$ORIGIN`
//! and `$TTL`. A point is taken only where the state is fully known: after a complete entry
//! (so not inside parentheses or quotes), before a line that starts with its owner (not a
//! blank-owner line, a blank or comment line, a directive), and once `$TTL` is set (a record without a TTL
//! then takes `$TTL`, not the previous record's TTL). Anything else keeps the file sequential:
//! an `$INCLUDE` before a cut (the included file may set `$TTL`), no `$TTL`, a lexical error
//! (the sequential parser then reports it), a small file.

use std::path::Path;

use super::lexer::{Lexer, Token};
use super::parser::{FileState, Loader};
use super::{ZoneFile, ZoneFileError};
use crate::wire::name::Name;

/// Files smaller than this are parsed on one thread.
pub(crate) const PARALLEL_MIN_BYTES: usize = 8 << 20;

/// Where a chunk starts and the state it starts in.
#[derive(Clone, Debug)]
struct Start {
    pos: usize,
    line: usize,
    origin: Name,
    default_ttl: Option<u32>,
}

/// The chunks' starts: the first at the beginning of the file, the others near `k·len/n`
/// where a cut is safe (see the module documentation). Fewer than `n` when the file does not
/// allow more cuts; `None` when it must be read sequentially.
fn plan(text: &[u8], origin: &Name, label: &str, dir: &Path, n: usize) -> Option<Vec<Start>> {
    let mut starts = vec![Start {
        pos: 0,
        line: 1,
        origin: origin.clone(),
        default_ttl: None,
    }];
    let mut scratch = Loader::new(origin);
    let mut st = FileState::new(label, dir, origin.clone());
    let mut lexer = Lexer::new(text);
    let mut toks: Vec<Token<'_>> = Vec::with_capacity(16);
    for k in 1..n {
        let target = text.len() / n * k;
        loop {
            let (pos, line) = lexer.position();
            if pos >= target && scratch.default_ttl.is_some() && safe_cut(text, pos) {
                starts.push(Start {
                    pos,
                    line,
                    origin: st.origin.clone(),
                    default_ttl: scratch.default_ttl,
                });
                break;
            }
            let entry = match lexer.next_entry(&mut toks) {
                Ok(Some(e)) => e,
                Ok(None) => return Some(starts),
                Err(_) => return None,
            };
            let first = toks[0];
            if !entry.blank_owner && !first.quoted && first.text.starts_with(b"$") {
                if first.is_word("$INCLUDE") {
                    return None;
                }
                scratch.directive(&mut st, &toks, entry).ok()?;
            }
        }
    }
    Some(starts)
}

/// How many chunks `plan` makes of `text` (tests).
#[cfg(test)]
pub(crate) fn plan_len(text: &[u8], origin: &Name, label: &str, n: usize) -> Option<usize> {
    plan(text, origin, label, Path::new(""), n).map(|s| s.len())
}

/// A cut before byte `pos` leaves nothing to the entries before it: the line there starts
/// with an owner name (not a directive: a blank-owner line after `$ORIGIN` or `$TTL` takes
/// the owner before it).
fn safe_cut(text: &[u8], pos: usize) -> bool {
    text.get(pos)
        .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'$'))
}

/// Parses `text` in up to `n` chunks on as many threads; `None` when the file must be read
/// sequentially (see `plan`). `stack` is the include stack the sequential parser starts with.
pub(crate) fn parse(
    text: &[u8],
    origin: &Name,
    label: &str,
    stack: &[std::path::PathBuf],
    n: usize,
) -> Option<Result<ZoneFile, ZoneFileError>> {
    let dir = Path::new(label).parent().unwrap_or(Path::new(""));
    let starts = plan(text, origin, label, dir, n)?;
    if starts.len() < 2 {
        return None;
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|s| s.pos)
        .chain([text.len()])
        .collect();
    let parts: Vec<Result<ZoneFile, ZoneFileError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = starts
            .iter()
            .zip(&ends)
            .map(|(s, &end)| {
                scope.spawn(move || {
                    let mut loader = Loader::new(origin);
                    // The first chunk's vectors take the other chunks' records afterwards.
                    let room = if s.pos == 0 { text.len() } else { end - s.pos };
                    loader.reserve_for(room);
                    loader.stack = stack.to_vec();
                    loader.default_ttl = s.default_ttl;
                    loader.load_at(
                        &text[..end],
                        label,
                        dir,
                        s.origin.clone(),
                        None,
                        (s.pos, s.line),
                    )?;
                    Ok(loader.finish())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = ZoneFile::default();
    let mut locations = super::Locations::default();
    for part in parts {
        let part = match part {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        if out.records.is_empty() {
            out.records = part.records;
        } else {
            out.records.extend(part.records);
        }
        out.warnings.extend(part.warnings);
        locations.append(part.locations.unwrap_or_default());
    }
    out.locations = Some(locations);
    Some(Ok(out))
}

#[cfg(any(test, feature = "fuzz-support"))]
/// How parsing `text` in `n` chunks differs from parsing it sequentially (records, their
/// locations, warnings, or the error), if it does: for the differential tests and the
/// `zonefile` fuzz target.
pub(crate) fn difference(text: &[u8], origin: &Name, label: &str, n: usize) -> Option<String> {
    let one = super::parse_in_chunks(text, origin, label, 1);
    let many = super::parse_in_chunks(text, origin, label, n);
    match (one, many) {
        (Ok(a), Ok(b)) => {
            if a.records != b.records {
                let i = a
                    .records
                    .iter()
                    .zip(&b.records)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.records.len().min(b.records.len()));
                return Some(format!(
                    "{n} chunks: records differ at {i} ({} and {} records): {:?} / {:?}",
                    a.records.len(),
                    b.records.len(),
                    a.records.get(i),
                    b.records.get(i)
                ));
            }
            if a.locations != b.locations {
                return Some(format!(
                    "{n} chunks: locations differ: {:?} / {:?}",
                    a.locations.map(|l| l.strings()),
                    b.locations.map(|l| l.strings())
                ));
            }
            (a.warnings != b.warnings).then(|| {
                format!(
                    "{n} chunks: warnings differ: {:?} / {:?}",
                    a.warnings, b.warnings
                )
            })
        }
        (Err(a), Err(b)) => (a.to_string() != b.to_string())
            .then(|| format!("{n} chunks: errors differ: {a} / {b}")),
        (a, b) => Some(format!(
            "{n} chunks: one parse failed: sequential {:?}, chunked {:?}",
            a.err().map(|e| e.to_string()),
            b.err().map(|e| e.to_string())
        )),
    }
}
