//! The hand-written PostgreSQL lexer: splits SQL text into tokens (spans into
//! the source) following the rules of PostgreSQL's `scan.l` closely enough
//! for normalization, fingerprinting and quick classification.
//!
//! It never fails and never panics: an unterminated string, quoted
//! identifier or comment simply runs to the end of the input, and a byte
//! that starts no token becomes a one-character [`TokenKind::Other`].
//! `standard_conforming_strings = on` is assumed (the default since 9.1), so
//! a backslash escapes a quote only inside `E'...'` strings.
//!
//! # Performance
//! One forward pass over bytes, no allocation per token (a [`Token`] is two
//! offsets and a kind); see `benches/analyze.rs`.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An unquoted identifier or keyword (`select`, `orders`, `now`).
    Word,
    /// A double-quoted identifier, `"a""b"` or `U&"..."`.
    QuotedIdent,
    /// A string constant of any form: `'...'`, `E'...'`, `U&'...'`,
    /// `B'...'`, `X'...'`, `N'...'` or dollar-quoted `$tag$...$tag$`.
    String,
    /// A numeric constant: `42`, `1.5`, `.5`, `1e-5`, `0x1F`, `1_000`.
    Number,
    /// A positional parameter `$n`.
    Param,
    /// An operator, possibly several characters (`<>`, `->>`, `@>`).
    Operator,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `[`.
    LBracket,
    /// `]`.
    RBracket,
    /// `,`.
    Comma,
    /// `;`.
    Semicolon,
    /// `.`.
    Dot,
    /// `::` (a type cast).
    Cast,
    /// `:` alone (array slices).
    Colon,
    /// Any other character (for example a stray `$` or `\`).
    Other,
}

/// One token: its kind and its byte span in the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// The token's text in `src` (the string it was lexed from).
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }

    /// Whether the token is a constant that normalization replaces.
    pub fn is_constant(&self) -> bool {
        matches!(self.kind, TokenKind::String | TokenKind::Number)
    }
}

/// An iterator over the tokens of a SQL text; comments and whitespace are
/// skipped.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// Tokenizes the whole text into a vector.
pub fn tokenize(src: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(src.len() / 4 + 4);
    out.extend(Lexer::new(src));
    out
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            bytes: src.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self, off: usize) -> u8 {
        self.bytes.get(self.pos + off).copied().unwrap_or(0)
    }

    /// Skips whitespace and comments; returns whether a newline was seen in
    /// plain whitespace (used for string continuation).
    fn skip_trivia(&mut self) {
        loop {
            let b = self.peek(0);
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'-' && self.peek(1) == b'-' {
                self.skip_line_comment();
            } else if b == b'/' && self.peek(1) == b'*' {
                self.skip_block_comment();
            } else {
                return;
            }
        }
    }

    fn skip_line_comment(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    /// Block comments nest in PostgreSQL: `/* /* */ */` is one comment.
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            if self.peek(0) == b'/' && self.peek(1) == b'*' {
                depth += 1;
                self.pos += 2;
            } else if self.peek(0) == b'*' && self.peek(1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
    }

    /// Scans a quoted body starting at the opening quote `q`; a doubled quote
    /// is an escaped quote, and with `backslash` a `\` escapes any byte.
    fn scan_quoted(&mut self, q: u8, backslash: bool) {
        self.pos += 1;
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            if backslash && b == b'\\' {
                self.pos += 2;
            } else if b == q {
                if self.peek(1) == q {
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = self.bytes.len();
    }

    /// A string, then any continuation: `'a'<whitespace with newline>'b'` is
    /// one constant in PostgreSQL.
    fn scan_string(&mut self, backslash: bool) {
        self.scan_quoted(b'\'', backslash);
        loop {
            let mut p = self.pos;
            let mut newline = false;
            while p < self.bytes.len() && self.bytes[p].is_ascii_whitespace() {
                newline |= self.bytes[p] == b'\n' || self.bytes[p] == b'\r';
                p += 1;
            }
            if newline && self.bytes.get(p) == Some(&b'\'') {
                self.pos = p;
                self.scan_quoted(b'\'', backslash);
            } else {
                return;
            }
        }
    }

    /// `U&'...'` may be followed by `UESCAPE 'c'`, part of the same literal.
    fn scan_uescape(&mut self) {
        let save = self.pos;
        self.skip_trivia();
        let rest = &self.bytes[self.pos..];
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"uescape") {
            self.pos += 7;
            self.skip_trivia();
            if self.peek(0) == b'\'' {
                self.scan_quoted(b'\'', false);
                return;
            }
        }
        self.pos = save;
    }

    /// Length of a dollar-quote delimiter (`$$` or `$tag$`) at `self.pos`.
    fn dollar_tag_len(&self) -> Option<usize> {
        let rest = &self.bytes[self.pos..];
        let mut i = 1;
        if rest.get(1).is_some_and(|b| b.is_ascii_digit()) {
            return None;
        }
        while i < rest.len() && rest[i] != b'$' {
            if !is_ident_cont(rest[i]) || rest[i] == b'$' {
                return None;
            }
            i += 1;
        }
        (i < rest.len()).then_some(i + 1)
    }

    fn scan_dollar_string(&mut self, tag_len: usize) {
        let tag = &self.bytes[self.pos..self.pos + tag_len];
        self.pos += tag_len;
        while self.pos < self.bytes.len() {
            if self.bytes[self.pos] == b'$' && self.bytes[self.pos..].starts_with(tag) {
                self.pos += tag_len;
                return;
            }
            self.pos += 1;
        }
    }

    fn scan_digits(&mut self, ok: fn(u8) -> bool) {
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            if ok(b) || (b == b'_' && self.peek(1) != 0 && ok(self.peek(1))) {
                self.pos += 1;
            } else {
                return;
            }
        }
    }

    fn scan_number(&mut self) {
        let radix = (self.peek(0) == b'0').then(|| self.peek(1).to_ascii_lowercase());
        let digit: Option<fn(u8) -> bool> = match radix {
            Some(b'x') => Some(|b: u8| b.is_ascii_hexdigit()),
            Some(b'o') => Some(|b: u8| (b'0'..=b'7').contains(&b)),
            Some(b'b') => Some(|b: u8| b == b'0' || b == b'1'),
            _ => None,
        };
        if let Some(ok) = digit
            && ok(self.peek(2))
        {
            self.pos += 2;
            self.scan_digits(ok);
            return;
        }
        self.scan_digits(|b| b.is_ascii_digit());
        // `1..5` is not a decimal (PostgreSQL lexes `1` then `..`).
        if self.peek(0) == b'.' && self.peek(1) != b'.' {
            self.pos += 1;
            self.scan_digits(|b| b.is_ascii_digit());
        }
        let e = self.peek(0);
        if e == b'e' || e == b'E' {
            let sign = matches!(self.peek(1), b'+' | b'-') as usize;
            if self.peek(1 + sign).is_ascii_digit() {
                self.pos += 1 + sign;
                self.scan_digits(|b| b.is_ascii_digit());
            }
        }
    }

    /// PostgreSQL operator rules: the longest run of operator characters,
    /// cut before any `--` or `/*`; a multi-character operator may not end
    /// in `+` or `-` unless it contains one of `~ ! @ # % ^ & | \` ?`.
    fn scan_operator(&mut self) {
        let start = self.pos;
        let mut end = start;
        while end < self.bytes.len() && is_op_char(self.bytes[end]) {
            let next = self.bytes.get(end + 1).copied().unwrap_or(0);
            if end > start
                && ((self.bytes[end] == b'-' && next == b'-')
                    || (self.bytes[end] == b'/' && next == b'*'))
            {
                break;
            }
            end += 1;
        }
        let op = &self.bytes[start..end];
        if op.len() > 1 && !op.iter().any(|b| b"~!@#%^&|`?".contains(b)) {
            while end > start + 1 && matches!(self.bytes[end - 1], b'+' | b'-') {
                end -= 1;
            }
        }
        self.pos = end.max(start + 1);
    }

    fn scan_word_or_prefixed(&mut self) -> TokenKind {
        let b0 = self.peek(0).to_ascii_lowercase();
        let b1 = self.peek(1);
        if b1 == b'\'' {
            match b0 {
                b'e' => {
                    self.pos += 1;
                    self.scan_string(true);
                    return TokenKind::String;
                }
                b'b' | b'x' | b'n' => {
                    self.pos += 1;
                    self.scan_string(false);
                    return TokenKind::String;
                }
                _ => {}
            }
        }
        if b0 == b'u' && b1 == b'&' {
            match self.peek(2) {
                b'\'' => {
                    self.pos += 2;
                    self.scan_string(false);
                    self.scan_uescape();
                    return TokenKind::String;
                }
                b'"' => {
                    self.pos += 2;
                    self.scan_quoted(b'"', false);
                    self.scan_uescape();
                    return TokenKind::QuotedIdent;
                }
                _ => {}
            }
        }
        while self.pos < self.bytes.len() && is_ident_cont(self.bytes[self.pos]) {
            self.pos += 1;
        }
        TokenKind::Word
    }

    fn scan_token(&mut self, b: u8) -> TokenKind {
        use TokenKind as K;
        let single = |l: &mut Self, k| {
            l.pos += 1;
            k
        };
        match b {
            b'\'' => {
                self.scan_string(false);
                K::String
            }
            b'"' => {
                self.scan_quoted(b'"', false);
                K::QuotedIdent
            }
            b'0'..=b'9' => {
                self.scan_number();
                K::Number
            }
            b'.' if self.peek(1).is_ascii_digit() => {
                self.scan_number();
                K::Number
            }
            b'$' if self.peek(1).is_ascii_digit() => {
                self.pos += 1;
                self.scan_digits(|b| b.is_ascii_digit());
                K::Param
            }
            b'$' => match self.dollar_tag_len() {
                Some(n) => {
                    self.scan_dollar_string(n);
                    K::String
                }
                None => single(self, K::Other),
            },
            b'(' => single(self, K::LParen),
            b')' => single(self, K::RParen),
            b'[' => single(self, K::LBracket),
            b']' => single(self, K::RBracket),
            b',' => single(self, K::Comma),
            b';' => single(self, K::Semicolon),
            b'.' => single(self, K::Dot),
            b':' if self.peek(1) == b':' => {
                self.pos += 2;
                K::Cast
            }
            b':' => single(self, K::Colon),
            b if is_op_char(b) => {
                self.scan_operator();
                K::Operator
            }
            b if is_ident_start(b) => self.scan_word_or_prefixed(),
            _ => single(self, K::Other),
        }
    }

    /// Moves `pos` forward to a char boundary so spans always slice cleanly
    /// (a token may stop in the middle of a multi-byte character only in
    /// malformed input, for example a lone `\` before a UTF-8 sequence).
    fn align(&mut self) {
        self.pos = self.pos.min(self.bytes.len());
        while !self.src.is_char_boundary(self.pos) {
            self.pos += 1;
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        self.skip_trivia();
        self.align();
        let b = *self.bytes.get(self.pos)?;
        let start = self.pos;
        let kind = self.scan_token(b);
        self.align();
        Some(Token {
            kind,
            start,
            end: self.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind as K;

    fn lex(src: &str) -> Vec<(K, &str)> {
        Lexer::new(src).map(|t| (t.kind, t.text(src))).collect()
    }

    #[test]
    fn standard_string_with_doubled_quote() {
        assert_eq!(
            lex("'it''s' x"),
            vec![(K::String, "'it''s'"), (K::Word, "x")]
        );
    }

    #[test]
    fn escape_string_with_backslash_quote() {
        assert_eq!(lex(r"E'\'' x"), vec![(K::String, r"E'\''"), (K::Word, "x")]);
        assert_eq!(
            lex(r"e'a\\' b"),
            vec![(K::String, r"e'a\\'"), (K::Word, "b")]
        );
        // Without E, a backslash is an ordinary character.
        assert_eq!(lex(r"'a\' b"), vec![(K::String, r"'a\'"), (K::Word, "b")]);
    }

    #[test]
    fn dollar_quoted_strings() {
        assert_eq!(
            lex("$$ ' $$ x"),
            vec![(K::String, "$$ ' $$"), (K::Word, "x")]
        );
        assert_eq!(
            lex("$a$ $b$ $a$ y"),
            vec![(K::String, "$a$ $b$ $a$"), (K::Word, "y")]
        );
        assert_eq!(lex("$1 $2"), vec![(K::Param, "$1"), (K::Param, "$2")]);
        assert_eq!(lex("$ x"), vec![(K::Other, "$"), (K::Word, "x")]);
    }

    #[test]
    fn comments_nest_and_may_end_input() {
        assert_eq!(
            lex("a /* /* nested */ */ b"),
            vec![(K::Word, "a"), (K::Word, "b")]
        );
        assert_eq!(lex("a -- trailing"), vec![(K::Word, "a")]);
        assert_eq!(lex("a --"), vec![(K::Word, "a")]);
        assert_eq!(lex("a /* unterminated /* x */"), vec![(K::Word, "a")]);
    }

    #[test]
    fn quoted_identifiers_and_unicode_strings() {
        assert_eq!(
            lex(r#""quoted""ident""#),
            vec![(K::QuotedIdent, r#""quoted""ident""#)]
        );
        assert_eq!(
            lex(r"U&'d\0061t\+000061'"),
            vec![(K::String, r"U&'d\0061t\+000061'")]
        );
        assert_eq!(
            lex(r"U&'d!0061t' UESCAPE '!' x"),
            vec![(K::String, r"U&'d!0061t' UESCAPE '!'"), (K::Word, "x")]
        );
        assert_eq!(lex("B'101' X'1F' N'n'").len(), 3);
        assert!(lex("B'101' X'1F' N'n'").iter().all(|t| t.0 == K::String));
    }

    #[test]
    fn numbers() {
        for n in [
            "1e-5", ".5", "1.5", "42", "0x1F", "1_000", "1.5E+10", "0b101", "0o17", "5.",
        ] {
            assert_eq!(lex(n), vec![(K::Number, n)], "{n}");
        }
        assert_eq!(lex("1..5").first(), Some(&(K::Number, "1")));
        assert_eq!(
            lex("t.a"),
            vec![(K::Word, "t"), (K::Dot, "."), (K::Word, "a")]
        );
    }

    #[test]
    fn casts_params_and_operators() {
        assert_eq!(
            lex("x::int"),
            vec![(K::Word, "x"), (K::Cast, "::"), (K::Word, "int")]
        );
        for op in ["<>", "!=", "->>", "@>", "<=", "||", "#>>", "~*"] {
            assert_eq!(
                lex(&format!("a{op}b")),
                vec![(K::Word, "a"), (K::Operator, op), (K::Word, "b")]
            );
        }
        // A multi-char operator cannot end in - unless it has a special char.
        assert_eq!(
            lex("a=-5"),
            vec![
                (K::Word, "a"),
                (K::Operator, "="),
                (K::Operator, "-"),
                (K::Number, "5")
            ]
        );
        assert_eq!(lex("a@-5").get(1), Some(&(K::Operator, "@-")));
        // `--` inside an operator run starts a comment.
        assert_eq!(
            lex("a<--c\n b"),
            vec![(K::Word, "a"), (K::Operator, "<"), (K::Word, "b")]
        );
    }

    #[test]
    fn string_continuation_needs_a_newline() {
        assert_eq!(lex("'a'\n 'b'"), vec![(K::String, "'a'\n 'b'")]);
        assert_eq!(lex("'a' 'b'").len(), 2);
    }

    #[test]
    fn unterminated_and_odd_input_does_not_panic() {
        for s in [
            "'abc",
            "E'\\",
            "\"abc",
            "$a$ abc",
            "U&",
            "\\é",
            "é'",
            "0x",
            "1e",
            "$é$x$é$",
        ] {
            let toks = lex(s);
            assert!(!toks.is_empty(), "{s}");
        }
    }
}
