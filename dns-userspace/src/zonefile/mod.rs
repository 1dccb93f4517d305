//! Master-file (zone file) parser, RFC 1035 §5: turns zone text into [`Record`]s whose RDATA is
//! in uncompressed wire form. It reads zones signed by BIND's dnssec-signzone, ldns-signzone and
//! Knot DNS unchanged.
//!
//! # Syntax
//! - Entries: one per line; `(` … `)` join lines; `;` starts a comment; `"…"` quotes; `\X` and
//!   `\DDD` escapes everywhere. A line starting with a blank repeats the previous owner.
//! - Owner: `@` (the current origin), relative names (completed with the origin), absolute names,
//!   or omitted. Letter case is kept as written, in owners and in RDATA names.
//! - TTL and class in either order, both optional. TTLs are seconds or unit sums such as `1h30m`,
//!   `2w`, `1D` (w, d, h, m, s in any case). TTLs above 2^31−1 become 0 with a warning (RFC 2181
//!   §8, as BIND does).
//! - Class: IN only (the default). Any other class is an error.
//! - Directives: `$ORIGIN name`, `$TTL ttl`, `$INCLUDE file [origin]`. The file is relative to the
//!   directory of the including file; the origin argument (and any `$ORIGIN` inside) applies only
//!   within the included file; `$TTL` set inside stays in force afterwards (as in BIND); include
//!   loops are errors. `$GENERATE` is rejected with an error.
//! - Types: those of `rdata.rs`, `rdata_dnssec.rs` and `rdata_svcb.rs`, written as mnemonics or
//!   `TYPEnnn`; every type also accepts the RFC 3597 form `\# length hex`. Meta types (OPT, ANY,
//!   AXFR, …) are errors.
//!
//! # Default TTL (what BIND does)
//! A record without a TTL takes `$TTL` if one was given. Without `$TTL` it takes the TTL of the
//! previous record (RFC 1035 semantics, with one warning). If there is no TTL at all yet, an SOA
//! record takes its MINIMUM field, with a warning, and that value then serves as the default for
//! the records after it; any other record is an error ("no TTL specified").
//!
//! # Zone checks
//! The `origin` argument is the zone apex. Records owned by names outside the zone are errors
//! (BIND only warns and drops them), and so is an SOA anywhere but at the apex. The other zone
//! checks (a single SOA, CNAME exclusivity, glue) are in `zone::build`.

pub(crate) mod chunks;
mod directive;
mod lexer;
mod parser;
pub mod present;
mod rdata;
mod rdata_dnssec;
mod rdata_svcb;
mod text;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_chunks;
#[cfg(test)]
mod tests_fixtures;
#[cfg(test)]
mod tests_rdata;

use std::path::Path;

use crate::wire::name::Name;
use crate::wire::record::Record;

/// The records of a zone file, in file order, and the warnings met while reading it.
#[derive(Clone, Debug, Default)]
pub struct ZoneFile {
    pub records: Vec<Record>,
    /// Each formatted `file:line: text`.
    pub warnings: Vec<String>,
    /// `file:line` where each record was written, parallel to `records` (always `Some` from
    /// the parser; `None` for record lists made otherwise).
    pub locations: Option<Locations>,
}

/// Where each record of a zone file was written: a file index and a line per record (8 bytes
/// a record, not a string: a 1M-delegation zone has 4M records), formatted on demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locations {
    /// The files read, by first appearance.
    files: Vec<String>,
    /// Per record: index into `files`, 1-based line.
    at: Vec<(u32, u32)>,
}

impl Locations {
    /// `file:line` of record `i`.
    pub fn get(&self, i: usize) -> Option<String> {
        let &(f, line) = self.at.get(i)?;
        Some(format!("{}:{line}", self.files.get(f as usize)?))
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Adds `other`'s records after these (a later chunk of the same file, `chunks`).
    pub(crate) fn append(&mut self, other: Locations) {
        let map: Vec<u32> = other
            .files
            .into_iter()
            .map(|f| match self.files.iter().position(|g| *g == f) {
                Some(i) => i as u32,
                None => {
                    self.files.push(f);
                    (self.files.len() - 1) as u32
                }
            })
            .collect();
        if self.at.is_empty() && map.iter().enumerate().all(|(i, &m)| i as u32 == m) {
            self.at = other.at;
            return;
        }
        self.at.extend(
            other
                .at
                .into_iter()
                .map(|(f, line)| (map[f as usize], line)),
        );
    }

    /// Every record's `file:line`, in order.
    pub fn strings(&self) -> Vec<String> {
        (0..self.len()).filter_map(|i| self.get(i)).collect()
    }
}

/// Why a zone file was rejected, with the file (the included one, for errors in an
/// `$INCLUDE`d file) and the 1-based line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ZoneFileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Reads and parses the zone file at `path`; `origin` is the zone apex and the initial origin.
pub fn parse_file(path: &Path, origin: &Name) -> Result<ZoneFile, ZoneFileError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ZoneFileError {
        file: label.clone(),
        line: 0,
        message: format!("cannot read zone file: {e}"),
    })?;
    parse_bytes(&bytes, origin, &label)
}

/// Parses zone text. `file_label` names it in errors and warnings; `$INCLUDE` paths are relative
/// to its directory.
pub fn parse_str(text: &str, origin: &Name, file_label: &str) -> Result<ZoneFile, ZoneFileError> {
    parse_bytes(text.as_bytes(), origin, file_label)
}

/// As [`parse_str`], for text that need not be UTF-8 (TXT data may hold any octets).
pub(crate) fn parse_bytes(
    text: &[u8],
    origin: &Name,
    file_label: &str,
) -> Result<ZoneFile, ZoneFileError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks = if text.len() >= chunks::PARALLEL_MIN_BYTES {
        threads.min(8)
    } else {
        1
    };
    parse_in_chunks(text, origin, file_label, chunks)
}

/// As [`parse_bytes`], cut into up to `chunks` chunks parsed in parallel (`chunks`) where the
/// file allows it; 1: sequentially. The result is the same either way.
pub(crate) fn parse_in_chunks(
    text: &[u8],
    origin: &Name,
    file_label: &str,
    chunks: usize,
) -> Result<ZoneFile, ZoneFileError> {
    let path = Path::new(file_label);
    let stack: Vec<_> = std::fs::canonicalize(path).into_iter().collect();
    if chunks > 1 {
        if let Some(parsed) = chunks::parse(text, origin, file_label, &stack, chunks) {
            return parsed;
        }
    }
    let mut loader = parser::Loader::new(origin);
    if text.len() >= chunks::PARALLEL_MIN_BYTES {
        loader.reserve_for(text.len());
    }
    loader.stack = stack;
    let dir = path.parent().unwrap_or(Path::new(""));
    loader.load_at(text, file_label, dir, origin.clone(), None, (0, 1))?;
    Ok(loader.finish())
}
