//! Tokenizer for master files (RFC 1035 §5.1): splits the text into entries (one logical line
//! each, with parentheses joining physical lines), drops `;` comments, and yields words and
//! quoted strings with their line numbers. Escapes (`\X`, `\DDD`) are kept as written; the
//! field parsers decode them.

/// One field of an entry: raw bytes as written (escapes not decoded, quotes removed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub text: &'a [u8],
    /// 1-based physical line the token starts on.
    pub line: usize,
    /// True for a `"..."` string (the quotes are not part of `text`).
    pub quoted: bool,
}

impl Token<'_> {
    /// The raw text for messages (lossy for non-UTF-8 bytes).
    pub fn show(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }

    /// True when the token is the unquoted word `w`, ignoring ASCII case.
    pub fn is_word(&self, w: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(w.as_bytes())
    }
}

/// What the lexer knows about an entry besides its tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Line of the first token.
    pub line: usize,
    /// Line of the last token (where "missing field" errors point).
    pub last_line: usize,
    /// The entry began with blank space: the owner is the previous one.
    pub blank_owner: bool,
}

/// A syntax error found while tokenizing.
#[derive(Debug)]
pub(crate) struct LexError {
    pub line: usize,
    pub message: String,
}

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Lexer<'a> {
        // A UTF-8 byte order mark is not part of the zone.
        let pos = if src.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        Lexer { src, pos, line: 1 }
    }

    /// A lexer that starts at byte `pos` of `src`, an entry boundary found by an earlier
    /// lexer of the same text, on line `line` (`chunks`).
    pub fn at(src: &'a [u8], pos: usize, line: usize) -> Lexer<'a> {
        if pos == 0 {
            return Lexer::new(src);
        }
        Lexer { src, pos, line }
    }

    /// The byte offset of the next entry (or blank line) and its line.
    pub fn position(&self) -> (usize, usize) {
        (self.pos, self.line)
    }

    /// Reads the next non-empty entry into `out` (cleared first). `None` at the end of input.
    pub fn next_entry(&mut self, out: &mut Vec<Token<'a>>) -> Result<Option<Entry>, LexError> {
        loop {
            if self.pos >= self.src.len() {
                return Ok(None);
            }
            out.clear();
            let blank_owner = matches!(self.src[self.pos], b' ' | b'\t');
            let mut depth = 0usize;
            let mut open_line = 0;
            while let Some(&c) = self.src.get(self.pos) {
                match c {
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b';' => {
                        while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                            self.pos += 1;
                        }
                    }
                    b'(' => {
                        if depth == 0 {
                            open_line = self.line;
                        }
                        depth += 1;
                        self.pos += 1;
                    }
                    b')' => {
                        if depth == 0 {
                            return Err(self.err("unbalanced ')'"));
                        }
                        depth -= 1;
                        self.pos += 1;
                    }
                    b'"' => {
                        let line = self.line;
                        let start = self.pos + 1;
                        self.pos = start;
                        self.skip_quoted(line)?;
                        out.push(Token {
                            text: &self.src[start..self.pos - 1],
                            line,
                            quoted: true,
                        });
                    }
                    _ => {
                        let line = self.line;
                        let start = self.pos;
                        self.skip_word(line)?;
                        out.push(Token {
                            text: &self.src[start..self.pos],
                            line,
                            quoted: false,
                        });
                    }
                }
            }
            if depth > 0 {
                return Err(LexError {
                    line: open_line,
                    message: "unbalanced '(': not closed before the end of the file".into(),
                });
            }
            if let (Some(first), Some(last)) = (out.first(), out.last()) {
                return Ok(Some(Entry {
                    line: first.line,
                    last_line: last.line,
                    blank_owner,
                }));
            }
        }
    }

    fn err(&self, message: &str) -> LexError {
        LexError {
            line: self.line,
            message: message.into(),
        }
    }

    /// Advances past a quoted string whose opening quote is already consumed, including the
    /// closing quote. Escaped characters (also an escaped newline) are part of the string.
    fn skip_quoted(&mut self, open_line: usize) -> Result<(), LexError> {
        loop {
            match self.src.get(self.pos) {
                None | Some(b'\n') => {
                    return Err(LexError {
                        line: open_line,
                        message: "unterminated quoted string".into(),
                    })
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    if self.src.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos = (self.pos + 2).min(self.src.len());
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Advances past a word. A quote inside a word (as in `alpn="h2,h3"`) does not end it: the
    /// quoted part, blanks included, belongs to the word.
    fn skip_word(&mut self, line: usize) -> Result<(), LexError> {
        while let Some(&c) = self.src.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                b'\\' => {
                    if self.src.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos = (self.pos + 2).min(self.src.len());
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_quoted(line)?;
                }
                _ => self.pos += 1,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each entry with its tokens as (text, line, quoted).
    type Lexed = Vec<(Entry, Vec<(String, usize, bool)>)>;

    fn lex(s: &str) -> Lexed {
        let mut lx = Lexer::new(s.as_bytes());
        let mut v = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry(&mut out).unwrap() {
            v.push((
                e,
                out.iter().map(|t| (t.show(), t.line, t.quoted)).collect(),
            ));
        }
        v
    }

    #[test]
    fn entries_parens_comments_quotes() {
        let v = lex("a 1 IN A 1.2.3.4 ; c\n\n  ; only comment\n\tTXT \"x y\\\" z\" w\\ v\n@ SOA (\n a ; x\n b ) c\n");
        assert_eq!(v.len(), 3);
        assert!(!v[0].0.blank_owner);
        assert_eq!(v[0].1.len(), 5);
        assert!(v[1].0.blank_owner);
        assert_eq!(v[1].0.line, 4);
        assert_eq!(v[1].1[1], ("x y\\\" z".into(), 4, true));
        assert_eq!(v[1].1[2], ("w\\ v".into(), 4, false));
        assert_eq!(v[2].0.line, 5);
        assert_eq!(v[2].0.last_line, 7);
        let words: Vec<&str> = v[2].1.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(words, ["@", "SOA", "a", "b", "c"]);
        assert_eq!(v[2].1[3].1, 7);
    }

    #[test]
    fn word_with_embedded_quotes() {
        let v = lex("x SVCB 1 . alpn=\"h2,h 3\" port=53\n");
        assert_eq!(v[0].1[4].0, "alpn=\"h2,h 3\"");
        assert_eq!(v[0].1[5].0, "port=53");
    }

    #[test]
    fn lexical_errors_carry_lines() {
        let mut out = Vec::new();
        let mut lx = Lexer::new(b"a A 1\nb TXT \"open\n");
        lx.next_entry(&mut out).unwrap();
        assert_eq!(lx.next_entry(&mut out).unwrap_err().line, 2);
        let mut lx = Lexer::new(b"\n\nx SOA ( 1\n 2\n");
        assert_eq!(lx.next_entry(&mut out).unwrap_err().line, 3);
        let mut lx = Lexer::new(b"x A 1 )\n");
        assert_eq!(lx.next_entry(&mut out).unwrap_err().line, 1);
    }
}
