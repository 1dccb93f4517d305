//! Control entries (RFC 1035 §5.1, RFC 2308 §4): `$ORIGIN`, `$TTL`, `$INCLUDE` (path resolution,
//! loop detection, the included file's own origin) and the rejection of `$GENERATE` and unknown
//! directives.

use std::path::{Path, PathBuf};

use super::lexer::{Entry, Token};
use super::parser::{FileState, Loader};
use super::text::{at, bad, parse_name, parse_ttl, unescape, FResult, FieldError};
use super::ZoneFileError;
use crate::wire::name::Name;

/// Deepest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 32;

/// Checks the argument count of a directive.
fn args<'t, 'a>(
    toks: &'t [Token<'a>],
    e: Entry,
    min: usize,
    max: usize,
    usage: &str,
) -> FResult<&'t [Token<'a>]> {
    let a = &toks[1..];
    if a.len() < min {
        return Err(FieldError {
            line: e.last_line,
            message: format!("missing argument: expected {usage}"),
        });
    }
    if a.len() > max {
        return Err(at(&a[max], format!("too many arguments: expected {usage}")));
    }
    Ok(a)
}

impl Loader<'_> {
    /// `$ORIGIN`, `$TTL`; everything else but `$INCLUDE` is an error.
    pub(crate) fn directive(
        &mut self,
        st: &mut FileState<'_>,
        toks: &[Token<'_>],
        e: Entry,
    ) -> FResult<()> {
        let d = &toks[0];
        if d.is_word("$ORIGIN") {
            let a = args(toks, e, 1, 1, "$ORIGIN domain-name")?;
            st.origin = parse_name(a[0].text, &st.origin)
                .map_err(|err| at(&a[0], format!("bad $ORIGIN '{}': {err}", a[0].show())))?;
        } else if d.is_word("$TTL") {
            let a = args(toks, e, 1, 1, "$TTL ttl")?;
            let v = parse_ttl(a[0].text)
                .ok_or_else(|| bad(&a[0], "$TTL", "seconds or a duration such as 1h30m"))?;
            let v = self.limit_ttl(st, a[0].line, v);
            self.default_ttl = Some(v);
        } else if d.is_word("$GENERATE") {
            return Err(at(
                d,
                "$GENERATE is not supported: expand the records first".into(),
            ));
        } else {
            return Err(at(d, format!("unknown directive '{}'", d.show())));
        }
        Ok(())
    }

    /// The file and origin of `$INCLUDE file [origin]`.
    pub(crate) fn include_args(
        &self,
        st: &FileState<'_>,
        toks: &[Token<'_>],
        e: Entry,
    ) -> FResult<(PathBuf, Name)> {
        let a = args(toks, e, 1, 2, "$INCLUDE file-name [domain-name]")?;
        let file = unescape(a[0].text)
            .ok()
            .and_then(|f| String::from_utf8(f).ok())
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(&a[0], "$INCLUDE file name", "a UTF-8 path"))?;
        let origin = match a.get(1) {
            None => st.origin.clone(),
            Some(t) => parse_name(t.text, &st.origin)
                .map_err(|err| at(t, format!("bad $INCLUDE origin '{}': {err}", t.show())))?,
        };
        let file = Path::new(&file);
        let path = if file.is_absolute() {
            file.to_path_buf()
        } else {
            st.dir.join(file)
        };
        Ok((path, origin))
    }

    /// Reads an included file with its own origin; the includer's origin and owner are kept.
    pub(crate) fn include(
        &mut self,
        st: &FileState<'_>,
        line: usize,
        path: &Path,
        origin: Name,
    ) -> Result<(), ZoneFileError> {
        let fail = |message: String| ZoneFileError {
            file: st.label.to_owned(),
            line,
            message,
        };
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read $INCLUDE file '{shown}': {e}")))?;
        if !meta.is_file() {
            return Err(fail(format!("$INCLUDE '{shown}' is not a regular file")));
        }
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| fail(format!("cannot read $INCLUDE file '{shown}': {e}")))?;
        if self.stack.contains(&canonical) {
            return Err(fail(format!(
                "$INCLUDE loop: '{shown}' is already being read"
            )));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(fail(format!(
                "$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files"
            )));
        }
        let text = std::fs::read(path)
            .map_err(|e| fail(format!("cannot read $INCLUDE file '{shown}': {e}")))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        self.stack.push(canonical);
        let r = self.load_at(&text, &shown, dir, origin, st.owner.clone(), (0, 1));
        self.stack.pop();
        r
    }
}
