//! Tokens: trivia, punctuation, identifiers, strings, numbers, and located errors.

use super::*;

impl<'a> Parser<'a> {
    // ---- positions and errors ----

    pub(super) fn loc_at(&self, pos: usize) -> Location {
        let pos = pos.min(self.src.len());
        let line = self.line_starts.partition_point(|&start| start <= pos);
        let line_start = self.line_starts[line - 1];
        let col = self.text.get(line_start..pos).map_or(pos - line_start, |s| s.chars().count()) as u32 + 1;
        Location::FileLineCol { file: self.file.clone(), line: line as u32, col }
    }

    pub(super) fn err<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(Diagnostic::error(self.loc_at(pos), msg))
    }

    // ---- characters ----

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    pub(super) fn skip_trivia(&mut self) {
        loop {
            while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                self.pos += 1;
            }
            if self.src[self.pos..].starts_with(b"//") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            } else {
                return;
            }
        }
    }

    /// Consumes `s` (after trivia) if it is next.
    pub(super) fn eat(&mut self, s: &str) -> bool {
        self.skip_trivia();
        if self.src[self.pos..].starts_with(s.as_bytes()) {
            // A keyword must not run into an identifier character.
            let ident_like = s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
            let next = self.src.get(self.pos + s.len()).copied();
            if ident_like && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
                return false;
            }
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, s: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            let found = self.describe_next();
            self.err(self.pos, format!("expected '{s}', found {found}"))
        }
    }

    pub(super) fn describe_next(&self) -> String {
        match self.text.get(self.pos..).and_then(|r| r.split_whitespace().next()) {
            None => "end of file".to_string(),
            Some(tok) => format!("'{}'", tok.chars().take(20).collect::<String>()),
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_$.]*`
    pub(super) fn bare_id(&mut self) -> Option<&'a str> {
        self.skip_trivia();
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
            return None;
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.') {
            self.pos += 1;
        }
        let text: &'a str = self.text;
        text.get(start..self.pos)
    }

    pub(super) fn string_literal(&mut self) -> PResult<String> {
        self.skip_trivia();
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return self.err(start, format!("expected a string, found {}", self.describe_next()));
        }
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return self.err(start, "unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let esc = self.src.get(self.pos + 1..self.pos + 3);
                    match esc {
                        Some([b'"', ..]) | Some([b'\\', ..]) => {
                            bytes.push(esc.unwrap()[0]);
                            self.pos += 2;
                        }
                        Some([b'n', ..]) => {
                            bytes.push(b'\n');
                            self.pos += 2;
                        }
                        Some([b't', ..]) => {
                            bytes.push(b'\t');
                            self.pos += 2;
                        }
                        Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                            let hex = std::str::from_utf8(&[*h, *l]).unwrap().to_string();
                            bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                            self.pos += 3;
                        }
                        _ => return self.err(self.pos, "invalid escape in string"),
                    }
                }
                Some(c) => {
                    bytes.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(bytes).or_else(|_| self.err(start, "string is not valid UTF-8"))
    }

    /// `@name` or `@"name"`.
    pub(super) fn symbol(&mut self) -> PResult<String> {
        self.expect("@")?;
        if self.peek() == Some(b'"') {
            return self.string_literal();
        }
        let start = self.pos;
        match self.bare_id() {
            Some(id) if self.pos == start + id.len() => Ok(id.to_string()),
            _ => self.err(start, "expected a symbol name after '@'"),
        }
    }

    /// A numeric literal's text: `-12`, `0.5`, `1.0e-05`, `0x7F800000`.
    pub(super) fn number_text(&mut self) -> Option<(usize, &'a str)> {
        self.skip_trivia();
        let start = self.pos;
        let mut p = self.pos;
        if matches!(self.src.get(p), Some(b'-') | Some(b'+')) {
            p += 1;
        }
        if self.src[p..].starts_with(b"0x") {
            p += 2;
            while self.src.get(p).is_some_and(|c| c.is_ascii_hexdigit()) {
                p += 1;
            }
        } else {
            let digits = p;
            while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                p += 1;
            }
            if p == digits {
                return None;
            }
            if self.src.get(p) == Some(&b'.') {
                p += 1;
                while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                    p += 1;
                }
                if matches!(self.src.get(p), Some(b'e') | Some(b'E')) {
                    let mut q = p + 1;
                    if matches!(self.src.get(q), Some(b'-') | Some(b'+')) {
                        q += 1;
                    }
                    if self.src.get(q).is_some_and(|c| c.is_ascii_digit()) {
                        p = q;
                        while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                            p += 1;
                        }
                    }
                }
            }
        }
        self.pos = p;
        let text: &'a str = self.text;
        Some((start, &text[start..p]))
    }

    pub(super) fn integer(&mut self) -> PResult<i64> {
        let pos = self.pos;
        match self.number_text() {
            Some((start, t)) => match parse_int(t) {
                Some(v) => Ok(v),
                None => self.err(start, format!("expected an integer, found '{t}'")),
            },
            None => self.err(pos, format!("expected an integer, found {}", self.describe_next())),
        }
    }

    // ---- types ----
}
