//! A resumable JSON scanner for bytes that arrive in chunks: it checks the grammar (RFC 8259),
//! keeps nesting on an explicit stack with a depth cap, and reports only the structure its caller
//! follows; a value the caller does not follow is skipped in a tight loop that reports nothing.
//!
//! # Why our own scanner
//! A response passes through it whole, so it must cost little more than a byte scan and hold no
//! more than its stack. `actson` (2.x, push-based, has `parsed_bytes()`) was the candidate crate,
//! but it copies every string and number into its own buffer before reporting it (memory grows
//! with the longest string in `data`, which an upstream controls), feeds bytes one at a time
//! through a queue, and has `assert!`/`unwrap` on its input path. This scanner copies nothing:
//! strings are crossed with one `memchr2` call per string, and the caller keeps byte offsets into
//! its own chunks, so pass-through is exact.
//!
//! # What is checked
//! At the levels the caller follows, the whole grammar: tokens, commas, colons, matching
//! brackets, escapes (`\u` with four hex digits), numbers and literals. Inside a skipped
//! container only what decides where it ends: strings, escapes, matching brackets and the depth
//! cap (checking every number and comma there cost four times as much, measured). A valid JSON
//! text has the same structure under both; an invalid one is rejected by a strict client, so
//! what is not checked cannot make a client read a member the caller did not see. Never checked:
//! control characters and UTF-8 inside strings (the rewrite rules re-parse what they change with
//! serde_json, which rejects them).
//!
//! # Other uses
//! The caller decides per value whether to descend (`next` again) or skip (`skip_value`,
//! `skip_container`); a cost measurement of `data` (counting objects and list items per level)
//! descends everywhere and counts `Open`/`Scalar` events without another parser.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

/// The longest key name that is decoded for the caller; longer keys are reported as unnamed.
/// GraphQL names (the keys of a response's `data`) are ASCII, and rarely longer than this.
pub const KEY_CAP: usize = 128;

/// An object or an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Object,
    Array,
}

/// What the scanner reports; after each, the caller's position is just past the last byte read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `{` or `[` was read; the container is now the innermost one.
    Open(Container),
    /// The innermost container was closed.
    Close(Container),
    /// An object key was read (its name: [`Scanner::key`]); its value follows.
    Key,
    /// A string, number or literal value was read.
    Scalar,
    /// The value being skipped has ended.
    Skipped,
    /// The chunk is used up; call again with the next one.
    NeedMore,
}

/// Why the bytes are not the JSON the scanner expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("not valid JSON")]
    Malformed,
    #[error("nested deeper than {max_depth}")]
    TooDeep { max_depth: usize },
    #[error("the JSON text ended before its value did")]
    Truncated,
}

/// What may come next, outside a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The root value.
    Root,
    /// A value (after `:` or after `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key (after `,` in an object).
    Key,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    Colon,
    CommaOrClose,
    /// The root value is complete: only whitespace may follow.
    Done,
}

/// A token that is being read and may continue in the next chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    None,
    /// A string; `key` when it is an object key, `decode` when its name is wanted.
    String {
        key: bool,
        decode: bool,
        escape: Escape,
    },
    Number(Number),
    /// A literal, with the bytes still expected.
    Literal(&'static [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// `\u` and the digits read so far, with their value.
    Unicode {
        digits: u8,
        value: u32,
    },
}

/// The first `"` or `\\` in `bytes`. Most strings in GraphQL data are a few bytes long, where
/// starting a vector search costs more than the string (measured: the search's set-up was half
/// the time of a skim): the first 32 bytes are looked at eight at a time in a `u64`, the rest
/// with `memchr2`.
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut at = 0;
    while at < SHORT
        && let Some(word) = bytes
            .get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let word = u64::from_le_bytes(word);
        let found = byte_mask(word, b'"') | byte_mask(word, b'\\');
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let found = if at < SHORT {
        rest.iter().position(|b| matches!(b, b'"' | b'\\'))
    } else {
        memchr::memchr2(b'"', b'\\', rest)
    };
    found.map(|found| at + found)
}

/// The high bit of each byte of `word` equal to `byte`, exact up to and including the lowest one
/// (a borrow may set bits above it, which callers never read).
fn byte_mask(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zeroed = word ^ (u64::from(byte) * ONES);
    zeroed.wrapping_sub(ONES) & !zeroed & HIGHS
}

/// Where the string starting at `input[start]` ends (its closing quote), when it ends in this
/// chunk without an escape: the common string, crossed in one search.
pub(crate) fn plain_string_end(input: &[u8], start: usize) -> Option<usize> {
    let rest = input.get(start..)?;
    let end = string_stop(rest)?;
    (rest.get(end) == Some(&b'"')).then_some(start + end)
}

/// The states of the number grammar `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Number {
    Minus,
    Zero,
    Integer,
    Dot,
    Fraction,
    E,
    ESign,
    Exponent,
}

impl Number {
    /// The state after a number's first byte, `None` when no number starts with it.
    pub(crate) fn start(byte: u8) -> Option<Number> {
        match byte {
            b'-' => Some(Number::Minus),
            b'0' => Some(Number::Zero),
            b'1'..=b'9' => Some(Number::Integer),
            _ => None,
        }
    }

    /// The next state after `byte`, `None` when the byte does not continue the number.
    pub(crate) fn next(self, byte: u8) -> Option<Number> {
        use Number::*;
        match (self, byte) {
            (Minus, b'0') => Some(Zero),
            (Minus, b'1'..=b'9') => Some(Integer),
            (Integer, b'0'..=b'9') => Some(Integer),
            (Zero | Integer, b'.') => Some(Dot),
            (Dot | Fraction, b'0'..=b'9') => Some(Fraction),
            (Zero | Integer | Fraction, b'e' | b'E') => Some(E),
            (E, b'+' | b'-') => Some(ESign),
            (E | ESign | Exponent, b'0'..=b'9') => Some(Exponent),
            _ => None,
        }
    }

    /// Whether a number may end in this state.
    pub(crate) fn is_complete(self) -> bool {
        matches!(
            self,
            Number::Zero | Number::Integer | Number::Fraction | Number::Exponent
        )
    }
}

/// The decoded name of the last key, when it is short and ASCII.
#[derive(Debug, Clone, Copy)]
struct KeyName {
    bytes: [u8; KEY_CAP],
    len: usize,
    /// False once the name is too long or has a character outside ASCII.
    exact: bool,
}

impl KeyName {
    const EMPTY: KeyName = KeyName {
        bytes: [0; KEY_CAP],
        len: 0,
        exact: true,
    };

    fn clear(&mut self) {
        self.len = 0;
        self.exact = true;
    }

    /// The whole name at once (a key read in one chunk, without escapes).
    fn set(&mut self, name: &[u8]) {
        match self.bytes.get_mut(..name.len()) {
            Some(slots) if name.is_ascii() => {
                slots.copy_from_slice(name);
                self.len = name.len();
                self.exact = true;
            }
            _ => self.exact = false,
        }
    }

    fn push(&mut self, byte: u8) {
        if !self.exact {
            return;
        }
        match self.bytes.get_mut(self.len) {
            Some(slot) if byte.is_ascii() => {
                *slot = byte;
                self.len += 1;
            }
            _ => self.exact = false,
        }
    }
}

/// The scanner's whole state: a few words plus one byte per open container.
#[derive(Debug)]
pub struct Scanner {
    stack: Vec<Container>,
    max_depth: usize,
    expect: Expect,
    token: Token,
    /// While skipping: the depth at which the skipped value ends.
    skip_to: Option<usize>,
    key: KeyName,
}

impl Scanner {
    /// A scanner for one JSON text whose nesting may not exceed `max_depth` containers.
    pub fn new(max_depth: usize) -> Self {
        Self {
            stack: Vec::new(),
            max_depth,
            expect: Expect::Root,
            token: Token::None,
            skip_to: None,
            key: KeyName::EMPTY,
        }
    }

    /// The number of open containers.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// The name of the last key, `None` when it was longer than a few bytes or not ASCII (no name
    /// that callers look for is).
    pub fn key(&self) -> Option<&[u8]> {
        if self.key.exact {
            self.key.bytes.get(..self.key.len)
        } else {
            None
        }
    }

    /// Whether anything but whitespace has been read.
    pub fn has_started(&self) -> bool {
        self.expect != Expect::Root || self.token != Token::None
    }

    /// Skips the value of the key just reported by [`Event::Key`]; [`Event::Skipped`] follows
    /// once it has ended.
    pub fn skip_value(&mut self) {
        self.skip_to = Some(self.stack.len());
    }

    /// Skips the rest of the container just reported by [`Event::Open`], up to and including its
    /// closing bracket; [`Event::Skipped`] follows.
    pub fn skip_container(&mut self) {
        self.skip_to = Some(self.stack.len().saturating_sub(1));
    }

    /// The end of the input: completes a root number, or reports that the text was cut short.
    pub fn finish(&mut self) -> Result<(), ScanError> {
        if let Token::Number(state) = self.token
            && state.is_complete()
            && self.stack.is_empty()
        {
            self.token = Token::None;
            self.expect = Expect::Done;
        }
        if self.expect == Expect::Done && self.token == Token::None {
            Ok(())
        } else {
            Err(ScanError::Truncated)
        }
    }

    /// Reads `input` from `*pos` until something the caller follows happens, or the input ends.
    pub fn next(&mut self, input: &[u8], pos: &mut usize) -> Result<Event, ScanError> {
        let mut at = *pos;
        let result = self.run(input, &mut at);
        *pos = at;
        result
    }

    fn run(&mut self, input: &[u8], at: &mut usize) -> Result<Event, ScanError> {
        loop {
            let event = match self.token {
                Token::None => match self.skip_to {
                    Some(target) if self.stack.len() > target => self.skim(input, at, target)?,
                    _ => self.structural(input, at)?,
                },
                Token::String {
                    key,
                    decode,
                    escape,
                } => self.string(input, at, key, decode, escape)?,
                Token::Number(state) => self.number(input, at, state)?,
                Token::Literal(rest) => self.literal(input, at, rest)?,
            };
            let Some(event) = event else { continue };
            match (event, self.skip_to) {
                (Event::NeedMore, _) | (_, None) => return Ok(event),
                (Event::Scalar | Event::Close(_), Some(depth)) if self.stack.len() == depth => {
                    self.skip_to = None;
                    return Ok(Event::Skipped);
                }
                // Inside a skipped value nothing is reported.
                _ => {}
            }
        }
    }

    /// Inside a container that is being skipped: only strings, escapes and brackets are looked at
    /// (a few compares per byte, one `memchr2` per string), until the container at `target + 1`
    /// closes. `None`: a string needs the careful path (an escape, or the end of the chunk).
    fn skim(
        &mut self,
        input: &[u8],
        at: &mut usize,
        target: usize,
    ) -> Result<Option<Event>, ScanError> {
        loop {
            let rest = input.get(*at..).unwrap_or_default();
            let Some(found) = rest
                .iter()
                .position(|b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))
            else {
                *at = input.len();
                return Ok(Some(Event::NeedMore));
            };
            *at += found + 1;
            match rest.get(found) {
                Some(b'"') => {
                    match plain_string_end(input, *at) {
                        Some(end) => *at = end + 1,
                        None => {
                            // `string` takes over from here and comes back when it has ended.
                            self.token = Token::String {
                                key: false,
                                decode: false,
                                escape: Escape::None,
                            };
                            return Ok(None);
                        }
                    }
                }
                Some(&open @ (b'{' | b'[')) => {
                    if self.stack.len() >= self.max_depth {
                        return Err(ScanError::TooDeep {
                            max_depth: self.max_depth,
                        });
                    }
                    self.stack.push(if open == b'{' {
                        Container::Object
                    } else {
                        Container::Array
                    });
                }
                close => {
                    let expected = if close == Some(&b'}') {
                        Container::Object
                    } else {
                        Container::Array
                    };
                    if self.stack.last() != Some(&expected) {
                        // Errors point at the offending byte.
                        *at -= 1;
                        return Err(ScanError::Malformed);
                    }
                    let event = self.close();
                    if self.stack.len() == target {
                        return Ok(Some(event));
                    }
                }
            }
        }
    }

    /// Outside a token: crosses whitespace, colons and commas, up to the next event or token.
    /// `None`: a token has started.
    fn structural(&mut self, input: &[u8], at: &mut usize) -> Result<Option<Event>, ScanError> {
        loop {
            let Some(&byte) = input.get(*at) else {
                return Ok(Some(Event::NeedMore));
            };
            match (self.expect, byte) {
                (_, b' ' | b'\t' | b'\n' | b'\r') => *at += 1,
                (Expect::Colon, b':') => {
                    *at += 1;
                    self.expect = Expect::Value;
                }
                (Expect::CommaOrClose, b',') => {
                    *at += 1;
                    self.expect = match self.stack.last() {
                        Some(Container::Object) => Expect::Key,
                        _ => Expect::Value,
                    };
                }
                (Expect::Root | Expect::Value | Expect::ValueOrClose, _) if byte != b']' => {
                    *at += 1;
                    return self.value_start(byte, input, at);
                }
                (Expect::ValueOrClose | Expect::CommaOrClose, b']')
                    if self.stack.last() == Some(&Container::Array) =>
                {
                    *at += 1;
                    return Ok(Some(self.close()));
                }
                (Expect::KeyOrClose | Expect::CommaOrClose, b'}')
                    if self.stack.last() == Some(&Container::Object) =>
                {
                    *at += 1;
                    return Ok(Some(self.close()));
                }
                (Expect::Key | Expect::KeyOrClose, b'"') => {
                    *at += 1;
                    let decode = self.skip_to.is_none();
                    // The common key: whole in this chunk, without escapes.
                    if let Some(end) = plain_string_end(input, *at) {
                        if decode {
                            self.key.set(input.get(*at..end).unwrap_or_default());
                        } else {
                            self.key.clear();
                        }
                        *at = end + 1;
                        self.expect = Expect::Colon;
                        return Ok(Some(Event::Key));
                    }
                    self.key.clear();
                    self.token = Token::String {
                        key: true,
                        decode,
                        escape: Escape::None,
                    };
                    return Ok(None);
                }
                _ => return Err(ScanError::Malformed),
            }
        }
    }

    /// The first byte of a value (already consumed, `input[*at]` is the next); `None` when a
    /// token has started.
    fn value_start(
        &mut self,
        byte: u8,
        input: &[u8],
        at: &mut usize,
    ) -> Result<Option<Event>, ScanError> {
        let container = match byte {
            b'{' => Container::Object,
            b'[' => Container::Array,
            b'"' if let Some(end) = plain_string_end(input, *at) => {
                *at = end + 1;
                self.after_value();
                return Ok(Some(Event::Scalar));
            }
            _ => {
                self.token = match byte {
                    b'"' => Token::String {
                        key: false,
                        decode: false,
                        escape: Escape::None,
                    },
                    b't' => Token::Literal(b"rue"),
                    b'f' => Token::Literal(b"alse"),
                    b'n' => Token::Literal(b"ull"),
                    _ => Token::Number(Number::start(byte).ok_or(ScanError::Malformed)?),
                };
                return Ok(None);
            }
        };
        if self.stack.len() >= self.max_depth {
            return Err(ScanError::TooDeep {
                max_depth: self.max_depth,
            });
        }
        self.stack.push(container);
        self.expect = match container {
            Container::Object => Expect::KeyOrClose,
            Container::Array => Expect::ValueOrClose,
        };
        Ok(Some(Event::Open(container)))
    }

    fn close(&mut self) -> Event {
        let container = self.stack.pop().unwrap_or(Container::Object);
        self.after_value();
        Event::Close(container)
    }

    fn after_value(&mut self) {
        self.expect = if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrClose
        };
    }

    /// Inside a string: crosses plain bytes with one `memchr2`, decodes a key only when asked.
    fn string(
        &mut self,
        input: &[u8],
        at: &mut usize,
        key: bool,
        decode: bool,
        escape: Escape,
    ) -> Result<Option<Event>, ScanError> {
        let mut escape = escape;
        loop {
            match escape {
                Escape::None if !decode => {
                    let rest = input.get(*at..).unwrap_or_default();
                    let Some(found) = memchr::memchr2(b'"', b'\\', rest) else {
                        *at = input.len();
                        break;
                    };
                    *at += found + 1;
                    if rest.get(found) == Some(&b'"') {
                        return Ok(Some(self.string_end(key)));
                    }
                    escape = Escape::Backslash;
                }
                Escape::None => {
                    let Some(&byte) = input.get(*at) else { break };
                    *at += 1;
                    match byte {
                        b'"' => return Ok(Some(self.string_end(key))),
                        b'\\' => escape = Escape::Backslash,
                        _ => self.key.push(byte),
                    }
                }
                Escape::Backslash => {
                    let Some(&byte) = input.get(*at) else { break };
                    let decoded = match byte {
                        b'"' | b'\\' | b'/' => byte,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            *at += 1;
                            escape = Escape::Unicode {
                                digits: 0,
                                value: 0,
                            };
                            continue;
                        }
                        _ => return Err(ScanError::Malformed),
                    };
                    *at += 1;
                    if decode {
                        self.key.push(decoded);
                    }
                    escape = Escape::None;
                }
                Escape::Unicode { digits, value } => {
                    let Some(&byte) = input.get(*at) else { break };
                    let digit = char::from(byte).to_digit(16).ok_or(ScanError::Malformed)?;
                    *at += 1;
                    let value = value * 16 + digit;
                    if digits < 3 {
                        escape = Escape::Unicode {
                            digits: digits + 1,
                            value,
                        };
                    } else {
                        if decode {
                            // Only ASCII names are looked for; anything else just spoils the match.
                            self.key.push(u8::try_from(value).unwrap_or(0x80));
                        }
                        escape = Escape::None;
                    }
                }
            }
        }
        self.token = Token::String {
            key,
            decode,
            escape,
        };
        Ok(Some(Event::NeedMore))
    }

    fn string_end(&mut self, key: bool) -> Event {
        self.token = Token::None;
        if key {
            self.expect = Expect::Colon;
            Event::Key
        } else {
            self.after_value();
            Event::Scalar
        }
    }

    /// Inside a number; it ends at the first byte that cannot continue it (not consumed).
    fn number(
        &mut self,
        input: &[u8],
        at: &mut usize,
        state: Number,
    ) -> Result<Option<Event>, ScanError> {
        let mut state = state;
        while let Some(&byte) = input.get(*at) {
            match state.next(byte) {
                Some(next) => {
                    state = next;
                    *at += 1;
                }
                None if state.is_complete() => {
                    self.token = Token::None;
                    self.after_value();
                    return Ok(Some(Event::Scalar));
                }
                None => return Err(ScanError::Malformed),
            }
        }
        self.token = Token::Number(state);
        Ok(Some(Event::NeedMore))
    }

    fn literal(
        &mut self,
        input: &[u8],
        at: &mut usize,
        rest: &'static [u8],
    ) -> Result<Option<Event>, ScanError> {
        let mut rest = rest;
        while let Some((&expected, tail)) = rest.split_first() {
            let Some(&byte) = input.get(*at) else {
                self.token = Token::Literal(rest);
                return Ok(Some(Event::NeedMore));
            };
            if byte != expected {
                return Err(ScanError::Malformed);
            }
            *at += 1;
            rest = tail;
        }
        self.token = Token::None;
        self.after_value();
        Ok(Some(Event::Scalar))
    }
}
