//! The entry loop: reads the entries of one file (and, through `directive`, of the files it
//! includes), resolves owner, TTL, class and type of each record, applies the default-TTL rules
//! and the zone checks, and collects records and warnings.

use std::path::{Path, PathBuf};

use super::lexer::{Entry, Lexer, Token};
use super::rdata::parse_rdata;
use super::text::{at, bad, parse_name_in, parse_ttl, FResult, FieldError, Fields};
use super::types::{type_from_str, type_name};
use super::ZoneFileError;
use crate::wire::name::{Name, NAME_MAX};
use crate::wire::record::{class, rtype, Record};

/// Largest TTL kept as written (RFC 2181 §8).
const MAX_TTL: u32 = 0x7fff_ffff;

/// State that lives across files.
pub(crate) struct Loader<'z> {
    pub apex: &'z Name,
    /// `$TTL`, or the SOA MINIMUM when there was no TTL at all.
    pub default_ttl: Option<u32>,
    /// TTL of the previous record.
    pub last_ttl: Option<u32>,
    warned_1035: bool,
    /// Reused buffer for owner names.
    name_buf: Vec<u8>,
    pub records: Vec<Record>,
    /// Per record: index into `files` and line.
    pub locations: Vec<(u32, u32)>,
    /// Labels of the files read, by first appearance.
    pub files: Vec<String>,
    pub warnings: Vec<String>,
    /// Canonical paths of the files being read, outermost first (include loop detection).
    pub stack: Vec<PathBuf>,
}

/// State local to one file: restored when an included file ends.
pub(crate) struct FileState<'l> {
    pub label: &'l str,
    /// Index of `label` in `Loader::files`.
    file: u32,
    pub dir: &'l Path,
    pub origin: Name,
    pub owner: Option<Name>,
}

impl<'l> FileState<'l> {
    /// The state at the start of a file of the zone: no owner yet.
    pub fn new(label: &'l str, dir: &'l Path, origin: Name) -> FileState<'l> {
        FileState {
            label,
            file: 0,
            dir,
            origin,
            owner: None,
        }
    }
}

impl<'z> Loader<'z> {
    pub fn new(apex: &'z Name) -> Self {
        Loader {
            apex,
            default_ttl: None,
            last_ttl: None,
            warned_1035: false,
            name_buf: Vec::with_capacity(NAME_MAX + 64),
            records: Vec::new(),
            locations: Vec::new(),
            files: Vec::new(),
            warnings: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Reads one file's text from byte `start.0` (an entry boundary: 0, or where a chunk read
    /// in parallel starts, `chunks`) on line `start.1`. `dir` resolves relative `$INCLUDE`
    /// paths.
    pub fn load_at(
        &mut self,
        text: &[u8],
        label: &str,
        dir: &Path,
        origin: Name,
        owner: Option<Name>,
        start: (usize, usize),
    ) -> Result<(), ZoneFileError> {
        self.files.push(label.to_owned());
        let mut st = FileState {
            label,
            file: (self.files.len() - 1) as u32,
            dir,
            origin,
            owner,
        };
        let fail = |e: FieldError| ZoneFileError {
            file: label.to_owned(),
            line: e.line,
            message: e.message,
        };
        let mut lexer = Lexer::at(text, start.0, start.1);
        let mut toks: Vec<Token<'_>> = Vec::with_capacity(16);
        loop {
            let entry = match lexer.next_entry(&mut toks) {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(ZoneFileError {
                        file: label.to_owned(),
                        line: e.line,
                        message: e.message,
                    })
                }
            };
            let first = toks[0];
            if !entry.blank_owner && !first.quoted && first.text.starts_with(b"$") {
                if first.is_word("$INCLUDE") {
                    let (path, origin) = self.include_args(&st, &toks, entry).map_err(fail)?;
                    self.include(&st, first.line, &path, origin)?;
                } else {
                    self.directive(&mut st, &toks, entry).map_err(fail)?;
                }
            } else {
                self.record(&mut st, &toks, entry).map_err(fail)?;
            }
        }
    }

    /// Room for the records of `bytes` of zone text (at most one per `RECORD_BYTES`):
    /// without it the record vector of a large zone is copied every time it grows.
    /// Capacity not written to costs no memory.
    pub fn reserve_for(&mut self, bytes: usize) {
        const RECORD_BYTES: usize = 24;
        self.records.reserve(bytes / RECORD_BYTES);
        self.locations.reserve(bytes / RECORD_BYTES);
    }

    /// The records, warnings and locations read.
    pub fn finish(self) -> super::ZoneFile {
        super::ZoneFile {
            records: self.records,
            warnings: self.warnings,
            locations: Some(super::Locations {
                files: self.files,
                at: self.locations,
            }),
        }
    }

    pub fn warn(&mut self, label: &str, line: usize, text: &str) {
        self.warnings.push(format!("{label}:{line}: {text}"));
    }

    /// A TTL as written, or 0 with a warning when it exceeds 2^31−1.
    pub fn limit_ttl(&mut self, st: &FileState<'_>, line: usize, ttl: u32) -> u32 {
        if ttl > MAX_TTL {
            let msg = format!("TTL {ttl} > {MAX_TTL}, using 0 (RFC 2181 §8)");
            self.warn(st.label, line, &msg);
            return 0;
        }
        ttl
    }

    fn record(&mut self, st: &mut FileState<'_>, toks: &[Token<'_>], e: Entry) -> FResult<()> {
        let mut i = 0;
        let owner = if e.blank_owner {
            st.owner.clone().ok_or(FieldError {
                line: e.line,
                message: "no owner name: the line starts with a blank but no record precedes it"
                    .into(),
            })?
        } else {
            let t = &toks[0];
            i = 1;
            let n = parse_name_in(&mut self.name_buf, t.text, &st.origin)
                .map_err(|err| at(t, format!("bad owner name '{}': {err}", t.show())))?;
            st.owner = Some(n.clone());
            n
        };

        let mut ttl = None;
        let mut class_tok = None;
        while let Some(t) = toks.get(i).filter(|t| !t.quoted) {
            if t.text.first().is_some_and(u8::is_ascii_digit) {
                if ttl.is_some() {
                    return Err(at(t, format!("second TTL '{}'", t.show())));
                }
                let v = parse_ttl(t.text)
                    .ok_or_else(|| bad(t, "TTL", "seconds or a duration such as 1h30m"))?;
                ttl = Some((v, t.line));
            } else if let Some(c) = class_of(t.text).filter(|_| class_tok.is_none()) {
                // As in BIND, once a class is seen a class mnemonic is read as a type (ANY).
                class_tok = Some((c, t));
            } else {
                break;
            }
            i += 1;
        }
        if let Some((c, t)) = class_tok.filter(|(c, _)| *c != class::IN) {
            let msg = format!("class '{}' ({c}) is not supported: only IN", t.show());
            return Err(at(t, msg));
        }

        let t = toks.get(i).ok_or(FieldError {
            line: e.last_line,
            message: "missing type".into(),
        })?;
        let rt = type_from_str(t.text)
            .filter(|_| !t.quoted)
            .ok_or_else(|| at(t, format!("unknown type '{}'", t.show())))?;
        if rtype::is_meta(rt) {
            let msg = format!(
                "type {} is a meta type: not allowed in a zone",
                type_name(rt)
            );
            return Err(at(t, msg));
        }
        let mut fields = Fields::new(&toks[i + 1..], &st.origin, e.last_line);
        let rdata = parse_rdata(rt, &mut fields)?;

        let ttl = match ttl {
            Some((v, line)) => {
                let v = self.limit_ttl(st, line, v);
                self.last_ttl = Some(v);
                v
            }
            None => self.implicit_ttl(st, e.line, rt, &rdata)?,
        };

        if rt == rtype::SOA && owner != *self.apex {
            let msg = format!(
                "SOA record owned by {owner}, not by the zone apex {}",
                self.apex
            );
            return Err(FieldError {
                line: e.line,
                message: msg,
            });
        }
        if !owner.is_subdomain_of(self.apex) {
            // named-checkzone only warns; a zone that holds data for other zones is more likely
            // a mistake (a wrong $ORIGIN) than intended, so it is not served.
            return Err(FieldError {
                line: e.line,
                message: format!("out-of-zone data: {owner} is not in the zone {}", self.apex),
            });
        }
        self.locations
            .push((st.file, u32::try_from(e.line).unwrap_or(u32::MAX)));
        self.records.push(Record {
            owner,
            rtype: rt,
            class: class::IN,
            ttl,
            rdata,
        });
        Ok(())
    }

    /// TTL of a record written without one (see the module documentation).
    fn implicit_ttl(
        &mut self,
        st: &FileState<'_>,
        line: usize,
        rt: u16,
        rdata: &[u8],
    ) -> FResult<u32> {
        if let Some(d) = self.default_ttl {
            return Ok(d);
        }
        if let Some(last) = self.last_ttl {
            if !self.warned_1035 {
                self.warned_1035 = true;
                self.warn(
                    st.label,
                    line,
                    "no $TTL: using the previous record's TTL (RFC 1035)",
                );
            }
            return Ok(last);
        }
        if rt == rtype::SOA && rdata.len() >= 4 {
            let m = &rdata[rdata.len() - 4..];
            let min = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
            let min = self.limit_ttl(st, line, min);
            self.warn(
                st.label,
                line,
                "no TTL specified: using the SOA MINIMUM instead",
            );
            self.default_ttl = Some(min);
            self.last_ttl = Some(min);
            return Ok(min);
        }
        Err(FieldError {
            line,
            message: "no TTL specified: give the record a TTL or put $TTL before it".into(),
        })
    }
}

/// Class number if the token is a class mnemonic (IN, CH, HS, NONE, ANY) or `CLASSnnn`.
fn class_of(text: &[u8]) -> Option<u16> {
    if text.eq_ignore_ascii_case(b"IN") {
        return Some(class::IN);
    }
    if text.len() > 5 && text[..5].eq_ignore_ascii_case(b"CLASS") {
        let n = super::text::parse_uint(&text[5..], 65535)?;
        return Some(n as u16);
    }
    class::from_str(std::str::from_utf8(text).ok()?)
}
