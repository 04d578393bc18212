//! Lexer: document bytes → tokens (kind + byte span), counting every token against the budget.
//!
//! # Threats
//! A client controls every byte of the document. The lexer never allocates per token, never
//! recurses, validates strings to the GraphQL draft spec (escapes, `\u{…}`, surrogate pairs,
//! block strings with `\"""`) and counts comments as tokens, so a body made of comments costs
//! the same budget as one made of fields. The token limit is checked on every token: a 1 MB
//! hostile body costs no more than scanning up to the limit.
//!
//! Input is `&str`, so invalid UTF-8 cannot reach this module: the HTTP layer rejects it while
//! decoding the body (JSON strings are UTF-8 by definition). The lexer still works on bytes,
//! because every byte that matters to the grammar is ASCII.

use super::AnalysisError;

/// Kinds of significant tokens (ignored tokens never leave the lexer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Bang,
    Dollar,
    Amp,
    ParenL,
    ParenR,
    Spread,
    Colon,
    Equals,
    At,
    BracketL,
    BracketR,
    BraceL,
    BraceR,
    Pipe,
    Name,
    Int,
    Float,
    String,
    BlockString,
    Eof,
}

/// A token: its kind and its byte range in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// Streaming lexer with a token budget.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    tokens: u32,
    max_tokens: Option<u32>,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl<'a> Lexer<'a> {
    /// The caller guarantees `src.len() <= u32::MAX` (checked in `analyse`).
    pub(crate) fn new(src: &'a str, max_tokens: Option<u32>) -> Self {
        Self {
            src: src.as_bytes(),
            pos: 0,
            tokens: 0,
            max_tokens,
        }
    }

    /// Tokens scanned so far, comments included.
    pub(crate) fn tokens(&self) -> u32 {
        self.tokens
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.get(at).copied()
    }

    fn count_token(&mut self) -> Result<(), AnalysisError> {
        self.tokens = self.tokens.saturating_add(1);
        match self.max_tokens {
            Some(limit) if self.tokens > limit => Err(AnalysisError::TokenLimit {
                limit,
                at_least: self.tokens,
            }),
            _ => Ok(()),
        }
    }

    fn error(&self, message: &'static str, at: usize) -> AnalysisError {
        syntax_error(self.src, message, at)
    }

    /// The next significant token; `Eof` at the end (repeatedly).
    pub(crate) fn next_token(&mut self) -> Result<Token, AnalysisError> {
        loop {
            let start = self.pos;
            let Some(b) = self.byte(start) else {
                return Ok(Token {
                    kind: TokenKind::Eof,
                    start: to_u32(start),
                    end: to_u32(start),
                });
            };
            let kind = match b {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    self.pos += 1;
                    continue;
                }
                0xEF if self.src.get(start..start + 3) == Some(&BOM[..]) => {
                    self.pos += 3;
                    continue;
                }
                b'#' => {
                    self.count_token()?;
                    self.skip_comment();
                    continue;
                }
                b'!' => self.punct(TokenKind::Bang),
                b'$' => self.punct(TokenKind::Dollar),
                b'&' => self.punct(TokenKind::Amp),
                b'(' => self.punct(TokenKind::ParenL),
                b')' => self.punct(TokenKind::ParenR),
                b':' => self.punct(TokenKind::Colon),
                b'=' => self.punct(TokenKind::Equals),
                b'@' => self.punct(TokenKind::At),
                b'[' => self.punct(TokenKind::BracketL),
                b']' => self.punct(TokenKind::BracketR),
                b'{' => self.punct(TokenKind::BraceL),
                b'}' => self.punct(TokenKind::BraceR),
                b'|' => self.punct(TokenKind::Pipe),
                b'.' => {
                    if self.byte(start + 1) == Some(b'.') && self.byte(start + 2) == Some(b'.') {
                        self.pos += 3;
                        TokenKind::Spread
                    } else {
                        return Err(self.error("unexpected `.`, expected `...`", start));
                    }
                }
                b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                    self.pos += 1;
                    while matches!(self.byte(self.pos), Some(c) if is_name_continue(c)) {
                        self.pos += 1;
                    }
                    TokenKind::Name
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b'"' => {
                    if self.byte(start + 1) == Some(b'"') && self.byte(start + 2) == Some(b'"') {
                        self.block_string()?
                    } else {
                        self.string()?
                    }
                }
                _ => return Err(self.error("unexpected character", start)),
            };
            self.count_token()?;
            return Ok(Token {
                kind,
                start: to_u32(start),
                end: to_u32(self.pos),
            });
        }
    }

    fn punct(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.byte(self.pos) {
            if c == b'\n' || c == b'\r' {
                break;
            }
            self.pos += 1;
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.byte(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }

    /// IntValue / FloatValue with the spec's lookahead restrictions: no `.`, NameStart (or digit
    /// after a leading zero) may follow a number.
    fn number(&mut self) -> Result<TokenKind, AnalysisError> {
        let start = self.pos;
        if self.byte(self.pos) == Some(b'-') {
            self.pos += 1;
        }
        match self.byte(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.byte(self.pos), Some(b'0'..=b'9')) {
                    return Err(self.error("leading zero in a number", start));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit", self.pos)),
        }
        let mut kind = TokenKind::Int;
        if self.byte(self.pos) == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`", self.pos));
            }
            kind = TokenKind::Float;
        }
        if matches!(self.byte(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.byte(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent", self.pos));
            }
            kind = TokenKind::Float;
        }
        match self.byte(self.pos) {
            Some(c) if c == b'.' || c == b'_' || c.is_ascii_alphabetic() => {
                Err(self.error("invalid character after a number", self.pos))
            }
            _ => Ok(kind),
        }
    }

    fn string(&mut self) -> Result<TokenKind, AnalysisError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.byte(self.pos) {
                None | Some(b'\n' | b'\r') => {
                    return Err(self.error("unterminated string", start));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(TokenKind::String);
                }
                Some(b'\\') => self.escape()?,
                Some(_) => self.pos += 1,
            }
        }
    }

    /// One escape sequence at `self.pos` (which points at the backslash).
    fn escape(&mut self) -> Result<(), AnalysisError> {
        let at = self.pos;
        match self.byte(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 2;
                let code = self.unicode_escape(at)?;
                if (0xD800..=0xDBFF).contains(&code) {
                    // A leading surrogate is valid only as the first half of a fixed-width pair.
                    if self.byte(self.pos) == Some(b'\\') && self.byte(self.pos + 1) == Some(b'u') {
                        let second = self.pos;
                        self.pos += 2;
                        let low = self.unicode_escape(second)?;
                        if (0xDC00..=0xDFFF).contains(&low) {
                            return Ok(());
                        }
                    }
                    return Err(self.error("unpaired surrogate in a string escape", at));
                }
                if (0xDC00..=0xDFFF).contains(&code) || code > 0x10_FFFF {
                    return Err(self.error("invalid Unicode scalar value in an escape", at));
                }
                Ok(())
            }
            _ => Err(self.error("invalid escape sequence", at)),
        }
    }

    /// The code point of `XXXX` or `{X…}` after `\u`; `at` is the backslash (for errors).
    fn unicode_escape(&mut self, at: usize) -> Result<u32, AnalysisError> {
        let mut code: u32 = 0;
        if self.byte(self.pos) == Some(b'{') {
            self.pos += 1;
            let mut count = 0usize;
            loop {
                match self.byte(self.pos) {
                    Some(b'}') if count > 0 => {
                        self.pos += 1;
                        return Ok(code);
                    }
                    Some(c) if c.is_ascii_hexdigit() => {
                        // Saturates far above 0x10FFFF, so any long escape is rejected.
                        code = code.saturating_mul(16).saturating_add(hex_value(c));
                        count += 1;
                        self.pos += 1;
                    }
                    _ => return Err(self.error("invalid `\\u{…}` escape", at)),
                }
            }
        }
        for _ in 0..4 {
            match self.byte(self.pos) {
                Some(c) if c.is_ascii_hexdigit() => {
                    code = code * 16 + hex_value(c);
                    self.pos += 1;
                }
                _ => return Err(self.error("invalid `\\u` escape", at)),
            }
        }
        Ok(code)
    }

    fn block_string(&mut self) -> Result<TokenKind, AnalysisError> {
        let start = self.pos;
        self.pos += 3;
        loop {
            match self.byte(self.pos) {
                None => return Err(self.error("unterminated block string", start)),
                Some(b'"')
                    if self.byte(self.pos + 1) == Some(b'"')
                        && self.byte(self.pos + 2) == Some(b'"') =>
                {
                    self.pos += 3;
                    return Ok(TokenKind::BlockString);
                }
                Some(b'\\')
                    if self.byte(self.pos + 1) == Some(b'"')
                        && self.byte(self.pos + 2) == Some(b'"')
                        && self.byte(self.pos + 3) == Some(b'"') =>
                {
                    self.pos += 4;
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

fn is_name_continue(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

fn hex_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'a'..=b'f' => u32::from(c - b'a') + 10,
        b'A'..=b'F' => u32::from(c - b'A') + 10,
        _ => 0,
    }
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A syntax error with a 1-based line and column (in characters) computed from the byte offset.
/// Only runs once, on the error path.
pub(crate) fn syntax_error(src: &[u8], message: &'static str, at: usize) -> AnalysisError {
    let (line, column) = line_column(src, at);
    AnalysisError::Syntax {
        message,
        line,
        column,
    }
}

pub(crate) fn line_column(src: &[u8], at: usize) -> (u32, u32) {
    let prefix = src.get(..at).unwrap_or(src);
    let mut line: u32 = 1;
    let mut line_start = 0;
    let mut previous = 0u8;
    for (i, &c) in prefix.iter().enumerate() {
        // CRLF is one line terminator.
        if c == b'\n' && previous != b'\r' || c == b'\r' {
            line = line.saturating_add(1);
        }
        if c == b'\n' || c == b'\r' {
            line_start = i + 1;
        }
        previous = c;
    }
    let rest = prefix.get(line_start..).unwrap_or_default();
    // Count characters, not bytes: UTF-8 continuation bytes do not start a character.
    let chars = rest.iter().filter(|&&c| c & 0xC0 != 0x80).count();
    (line, to_u32(chars).saturating_add(1))
}

#[cfg(test)]
mod tests;
