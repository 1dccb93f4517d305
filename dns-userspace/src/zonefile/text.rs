//! Field-level decoding shared by the record and directive parsers: the token cursor
//! [`Fields`], names (with `@` and origin completion), `\X`/`\DDD` escapes, character-strings,
//! integers, TTLs with units, RRSIG timestamps, and hex/base64 fields split over several tokens.

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};

use super::lexer::Token;
use crate::wire::name::{Name, NAME_MAX};

/// An error tied to a line of the current file.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub line: usize,
    pub message: String,
}

pub(crate) type FResult<T> = Result<T, FieldError>;

/// Decodes one escape after a backslash: `\DDD` (three digits, ≤ 255) or `\X`. Returns the
/// byte and how many input bytes (after the backslash) it used.
fn escape(rest: &[u8]) -> Result<(u8, usize), String> {
    match rest {
        [] => Err("backslash at the end of a field".into()),
        [a, ..] if a.is_ascii_digit() => {
            let d = rest.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
            let d = d.ok_or("\\DDD escape needs exactly three digits")?;
            let v = d.iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
            u8::try_from(v)
                .map(|b| (b, 3))
                .map_err(|_| format!("escape \\{v} is above 255"))
        }
        [x, ..] => Ok((*x, 1)),
    }
}

/// Decodes `\X` and `\DDD` escapes (RFC 1035 §5.1).
pub(crate) fn unescape(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c == b'\\' {
            let (b, n) = escape(&raw[i + 1..])?;
            out.push(b);
            i += 1 + n;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Appends the wire form of a presentation name. `@` is the origin; a name without a trailing
/// dot is relative to it. Letter case is kept.
pub(crate) fn push_name(out: &mut Vec<u8>, raw: &[u8], origin: &Name) -> Result<(), String> {
    match raw {
        b"@" => {
            out.extend_from_slice(origin.wire());
            return Ok(());
        }
        b"." => {
            out.push(0);
            return Ok(());
        }
        b"" => return Err("empty name".into()),
        _ => {}
    }
    let start = out.len();
    let mut label = out.len();
    out.push(0);
    let mut absolute = false;
    let mut i = 0;
    let close = |out: &mut Vec<u8>, label: usize| -> Result<(), String> {
        match out.len() - label - 1 {
            0 => Err("empty label".into()),
            n if n > 63 => Err("label longer than 63 octets".into()),
            n => {
                out[label] = n as u8;
                Ok(())
            }
        }
    };
    while let Some(&c) = raw.get(i) {
        match c {
            b'\\' => {
                let (b, n) = escape(&raw[i + 1..])?;
                out.push(b);
                i += 1 + n;
            }
            b'.' => {
                close(out, label)?;
                if i + 1 == raw.len() {
                    absolute = true;
                } else {
                    label = out.len();
                    out.push(0);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
        if out.len() - start > NAME_MAX + 64 {
            return Err("name longer than 255 octets".into());
        }
    }
    if absolute {
        out.push(0);
    } else {
        close(out, label)?;
        out.extend_from_slice(origin.wire());
    }
    if out.len() - start > NAME_MAX {
        return Err("name longer than 255 octets".into());
    }
    Ok(())
}

/// A presentation name as a [`Name`]; see [`push_name`].
pub(crate) fn parse_name(raw: &[u8], origin: &Name) -> Result<Name, String> {
    parse_name_in(&mut Vec::new(), raw, origin)
}

/// As [`parse_name`], building the wire form in `buf` (cleared first) to save an allocation.
pub(crate) fn parse_name_in(buf: &mut Vec<u8>, raw: &[u8], origin: &Name) -> Result<Name, String> {
    buf.clear();
    push_name(buf, raw, origin)?;
    Name::from_wire(buf).map_err(|e| e.to_string())
}

/// An unsigned decimal number no larger than `max` (digits only, no sign).
pub(crate) fn parse_uint(raw: &[u8], max: u64) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = raw.iter().try_fold(0u64, |v, &c| {
        v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })?;
    (v <= max).then_some(v)
}

/// A TTL: plain seconds or number-unit pairs such as `1h30m`, `2w`, `1D` (units w, d, h, m, s
/// in any case; a trailing bare number counts as seconds).
pub(crate) fn parse_ttl(raw: &[u8]) -> Option<u32> {
    if let Some(v) = parse_uint(raw, u64::from(u32::MAX)) {
        return Some(v as u32);
    }
    if raw.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut i = 0;
    while i < raw.len() {
        let start = i;
        while raw.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = parse_uint(&raw[start..i], u64::from(u32::MAX))?;
        let unit: u64 = match raw.get(i).map(u8::to_ascii_lowercase) {
            None => 1,
            Some(b's') => 1,
            Some(b'm') => 60,
            Some(b'h') => 3600,
            Some(b'd') => 86400,
            Some(b'w') => 604800,
            Some(_) => return None,
        };
        i += 1;
        total = total.checked_add(n * unit)?;
        if total > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(total).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// An RRSIG time (RFC 4034 §3.2): `YYYYMMDDHHmmSS` (UTC, stored modulo 2^32) or plain seconds.
pub(crate) fn parse_time(raw: &[u8]) -> Option<u32> {
    if raw.len() != 14 {
        return parse_uint(raw, u64::from(u32::MAX)).map(|v| v as u32);
    }
    let num = |a: usize, b: usize| parse_uint(&raw[a..b], 9999).map(|v| v as i64);
    let (y, mo, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, mi, s) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    Some(secs.rem_euclid(1 << 32) as u32)
}

/// Cursor over the RDATA tokens of one entry.
pub(crate) struct Fields<'t, 'a> {
    toks: &'t [Token<'a>],
    pos: usize,
    pub origin: &'t Name,
    /// Line for "missing field" errors: the last line of the entry.
    pub end_line: usize,
}

impl<'t, 'a> Fields<'t, 'a> {
    pub fn new(toks: &'t [Token<'a>], origin: &'t Name, end_line: usize) -> Self {
        Fields {
            toks,
            pos: 0,
            origin,
            end_line,
        }
    }

    pub fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn missing(&self, what: &str) -> FieldError {
        FieldError {
            line: self.end_line,
            message: format!("missing {what}"),
        }
    }

    pub fn next(&mut self, what: &str) -> FResult<Token<'a>> {
        let t = *self.toks.get(self.pos).ok_or_else(|| self.missing(what))?;
        self.pos += 1;
        Ok(t)
    }

    /// The remaining tokens, consumed.
    pub fn rest(&mut self) -> &'t [Token<'a>] {
        let r = self.toks.get(self.pos..).unwrap_or(&[]);
        self.pos = self.toks.len();
        r
    }

    /// Fails if any token is left.
    pub fn finish(&self) -> FResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(bad(t, "field", "no more fields")),
        }
    }

    pub fn push_name(&mut self, out: &mut Vec<u8>, what: &str) -> FResult<()> {
        let t = self.next(what)?;
        push_name(out, t.text, self.origin)
            .map_err(|e| at(&t, format!("bad {what} '{}': {e}", t.show())))
    }

    pub fn uint(&mut self, what: &str, max: u64) -> FResult<u64> {
        let t = self.next(what)?;
        parse_uint(t.text, max).ok_or_else(|| bad(&t, what, &format!("a number 0-{max}")))
    }

    pub fn u8(&mut self, what: &str) -> FResult<u8> {
        self.uint(what, 255).map(|v| v as u8)
    }

    pub fn u16(&mut self, what: &str) -> FResult<u16> {
        self.uint(what, 65535).map(|v| v as u16)
    }

    pub fn u32(&mut self, what: &str) -> FResult<u32> {
        self.uint(what, u64::from(u32::MAX)).map(|v| v as u32)
    }

    /// A 32-bit duration with optional units (SOA timers).
    pub fn ttl(&mut self, what: &str) -> FResult<u32> {
        let t = self.next(what)?;
        parse_ttl(t.text).ok_or_else(|| bad(&t, what, "seconds or a duration such as 1h30m"))
    }

    /// Hex from all remaining tokens joined (whitespace inside is allowed).
    pub fn hex_rest(&mut self, what: &str) -> FResult<Vec<u8>> {
        self.decode_rest(what, &HEXLOWER_PERMISSIVE, "hexadecimal digits")
    }

    /// Base64 from all remaining tokens joined (whitespace inside is allowed).
    pub fn base64_rest(&mut self, what: &str) -> FResult<Vec<u8>> {
        self.decode_rest(what, &BASE64, "base64")
    }

    /// All remaining tokens joined and decoded with `encoding`.
    fn decode_rest(
        &mut self,
        what: &str,
        encoding: &data_encoding::Encoding,
        expected: &str,
    ) -> FResult<Vec<u8>> {
        let line = self.peek().map_or(self.end_line, |t| t.line);
        let joined: Vec<u8> = self
            .rest()
            .iter()
            .flat_map(|t| t.text.iter().copied())
            .collect();
        if joined.is_empty() {
            return Err(self.missing(what));
        }
        encoding.decode(&joined).map_err(|e| FieldError {
            line,
            message: format!("bad {what}: expected {expected} ({e})"),
        })
    }
}

/// A character-string from one token: escapes decoded, at most 255 octets.
pub(crate) fn charstr(t: &Token<'_>, what: &str) -> FResult<Vec<u8>> {
    let v = unescape(t.text).map_err(|e| at(t, format!("bad {what} '{}': {e}", t.show())))?;
    if v.len() > 255 {
        return Err(at(
            t,
            format!("{what} longer than 255 octets ({})", v.len()),
        ));
    }
    Ok(v)
}

/// An error at token `t`.
pub(crate) fn at(t: &Token<'_>, message: String) -> FieldError {
    FieldError {
        line: t.line,
        message,
    }
}

/// "bad WHAT 'TOKEN': expected EXPECT" at token `t`.
pub(crate) fn bad(t: &Token<'_>, what: &str, expect: &str) -> FieldError {
    let mut shown = t.show();
    if shown.len() > 80 {
        let mut cut = 77;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("...");
    }
    at(t, format!("bad {what} '{shown}': expected {expect}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let o = Name::parse("Example.", None).unwrap();
        let p = |s: &str| parse_name(s.as_bytes(), &o).map(|n| n.to_string());
        assert_eq!(p("@").unwrap(), "Example.");
        assert_eq!(p("WWW").unwrap(), "WWW.Example.");
        assert_eq!(p("a.b.").unwrap(), "a.b.");
        assert_eq!(p(".").unwrap(), ".");
        assert_eq!(p("a\\.b").unwrap(), "a\\.b.Example.");
        assert_eq!(p("\\065\\ x.").unwrap(), "A\\032x.");
        assert!(p("a..b").is_err());
        assert!(p("\\25").is_err());
        assert!(p("\\256").is_err());
        assert!(p(&"a".repeat(64)).is_err());
        assert!(p(&"a.".repeat(128)).is_err());
        assert!(p(&"abcdefgh.".repeat(28)).is_ok());
        assert!(p(&"abcdefgh.".repeat(29)).is_err());
        assert!(p("x\\").is_err());
    }

    #[test]
    fn ttls() {
        let t = |s: &str| parse_ttl(s.as_bytes());
        assert_eq!(t("3600"), Some(3600));
        assert_eq!(t("1h30m"), Some(5400));
        assert_eq!(t("2W"), Some(1209600));
        assert_eq!(t("1d"), Some(86400));
        assert_eq!(t("60s"), Some(60));
        assert_eq!(t("1H1M1S"), Some(3661));
        assert_eq!(t("1h30"), Some(3630));
        assert_eq!(t("4294967295"), Some(u32::MAX));
        assert_eq!(t("4294967296"), None);
        assert_eq!(t("7101w"), Some(7101 * 604800));
        assert_eq!(t("7102w"), None);
        assert_eq!(t("h"), None);
        assert_eq!(t("1x"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("-1"), None);
    }

    #[test]
    fn times() {
        let t = |s: &str| parse_time(s.as_bytes());
        assert_eq!(t("19700101000000"), Some(0));
        assert_eq!(t("20260101000000"), Some(1767225600));
        assert_eq!(t("20000229120000"), Some(951825600));
        assert_eq!(t("21060207062816"), Some(0)); // 2^32 wraps
        assert_eq!(t("1767225600"), Some(1767225600));
        assert_eq!(t("20010229000000"), None);
        assert_eq!(t("20261301000000"), None);
        assert_eq!(t("20260101240000"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(b"a\\\"b\\\\c\\059\\032").unwrap(), b"a\"b\\c; ");
        assert!(unescape(b"\\2x").is_err());
        assert!(unescape(b"\\").is_err());
    }
}
