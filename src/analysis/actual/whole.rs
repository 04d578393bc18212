//! The actual cost of a response that is all here (an answer read whole): the same rules as the
//! streaming meter, in one loop over the bytes with an explicit stack. The resumable scanner pays
//! for being able to stop anywhere with a state machine around every token; a body in one slice
//! does not need that, and most answers are read whole.
//!
//! # Why both walks agree
//! This walk answers only for a body it measured completely and found simple: anything else — a
//! syntax error, an escaped or unnameable key where keys are looked up, nesting past
//! [`MAX_NESTING`] — is `None`, and the streaming meter then measures the same bytes and reports
//! what it finds. Where it answers, it has checked at least what the scanner checks (the whole
//! grammar where the rules look; strings, escapes and brackets inside what they skip), so the
//! scanner would accept the same body with the same structure, and both count it with [`Rules`].
//! The differential tests hold them to it.

use super::super::cost::{Entry, ResponseShape};
use super::super::ir::NONE;
use super::{MAX_NESTING, Rules};
use crate::json_scan::{KEY_CAP, Number, plain_string_end};

/// An open container and what its values are.
#[derive(Clone, Copy)]
enum Open {
    /// The top-level object: only `data` is followed.
    Response,
    /// An object whose keys map through `shape`.
    Object { shape: u32 },
    /// The elements of a list field.
    List { entry: Entry },
}

/// What a value is, from its key or its list.
#[derive(Clone, Copy)]
enum Value {
    Data,
    Field { entry: Entry, occurrence: bool },
    Skip,
}

/// The cost of `body`, a whole response; `None` when this walk does not answer (see the module).
pub(super) fn measure(rules: &Rules<'_>, body: &[u8]) -> Option<u64> {
    let mut walk = Walk {
        body,
        at: 0,
        cost: 0,
        stack: Vec::with_capacity(16),
        skipping: Vec::new(),
    };
    walk.whitespace();
    walk.expect(b'{')?;
    walk.stack.push(Open::Response);
    // Just inside an object or list: its first member, or its end.
    let mut first = true;
    while let Some(&open) = walk.stack.last() {
        walk.whitespace();
        let closing = match open {
            Open::List { .. } => b']',
            _ => b'}',
        };
        if walk.peek() == Some(closing) && first {
            walk.at += 1;
            walk.stack.pop();
            first = false;
            continue;
        }
        if !first {
            // After a member: a comma, or the end of the container.
            match walk.next()? {
                b',' => walk.whitespace(),
                byte if byte == closing => {
                    walk.stack.pop();
                    continue;
                }
                _ => return None,
            }
        }
        let value = match open {
            Open::List { entry } => Value::Field {
                entry,
                occurrence: false,
            },
            Open::Response => {
                let key = walk.key()?;
                if key == b"data" {
                    Value::Data
                } else {
                    Value::Skip
                }
            }
            Open::Object { shape } => {
                let key = walk.key()?;
                if key.len() > KEY_CAP || !key.is_ascii() {
                    // The scanner cannot name it; it decides what that means.
                    return None;
                }
                match rules.lookup(shape, key) {
                    Some(entry) => Value::Field {
                        entry,
                        occurrence: true,
                    },
                    None => Value::Skip,
                }
            }
        };
        walk.whitespace();
        first = walk.value(rules, value)?;
    }
    walk.whitespace();
    (walk.at == body.len()).then_some(walk.cost)
}

struct Walk<'b> {
    body: &'b [u8],
    at: usize,
    cost: u64,
    stack: Vec<Open>,
    /// The closing brackets expected inside the container being skipped (reused).
    skipping: Vec<u8>,
}

impl<'b> Walk<'b> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn add(&mut self, weight: u64) {
        self.cost = self.cost.saturating_add(weight);
    }

    /// A key and its colon; `None` for one with escapes (rare in a response's keys: the scanner
    /// reads those).
    fn key(&mut self) -> Option<&'b [u8]> {
        self.expect(b'"')?;
        let end = plain_string_end(self.body, self.at)?;
        let key = self.body.get(self.at..end)?;
        self.at = end + 1;
        self.whitespace();
        self.expect(b':')?;
        Some(key)
    }

    /// Reads a value, counting it as `value` says. `Some(true)` when it opened a container
    /// (whose members come next), `Some(false)` when it was read whole.
    fn value(&mut self, rules: &Rules<'_>, value: Value) -> Option<bool> {
        let byte = self.peek()?;
        if let Value::Field {
            entry,
            occurrence: true,
        } = value
        {
            self.add(rules.arguments_cost(&entry));
        }
        let open = match (byte, value) {
            (b'{', Value::Data) => Open::Object {
                shape: ResponseShape::ROOT,
            },
            (b'{', Value::Field { entry, .. }) if entry.child != NONE => {
                self.add(entry.object);
                Open::Object { shape: entry.child }
            }
            (b'{', Value::Field { entry, .. }) => {
                self.add(entry.object);
                return self.skip().map(|()| false);
            }
            (b'[', Value::Field { entry, .. }) => Open::List { entry },
            (b'{' | b'[', Value::Data | Value::Skip) => return self.skip().map(|()| false),
            (_, value) => {
                self.scalar()?;
                if let Value::Field { entry, .. } = value {
                    self.add(entry.leaf);
                }
                return Some(false);
            }
        };
        if self.stack.len() >= MAX_NESTING {
            return None;
        }
        self.at += 1;
        self.stack.push(open);
        Some(true)
    }

    /// A string, number or literal.
    fn scalar(&mut self) -> Option<()> {
        match self.next()? {
            b'"' => self.string(),
            b't' => self.literal(b"rue"),
            b'f' => self.literal(b"alse"),
            b'n' => self.literal(b"ull"),
            byte => self.number(byte),
        }
    }

    /// The rest of a string whose opening quote was read; escapes are checked as the scanner
    /// checks them.
    fn string(&mut self) -> Option<()> {
        if let Some(end) = plain_string_end(self.body, self.at) {
            self.at = end + 1;
            return Some(());
        }
        loop {
            let rest = self.body.get(self.at..)?;
            let stop = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += stop + 1;
            if rest.get(stop) == Some(&b'"') {
                return Some(());
            }
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let digits = self.body.get(self.at..self.at + 4)?;
                    if !digits.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 4;
                }
                _ => return None,
            }
        }
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.body.get(self.at..end)? == rest).then(|| self.at = end)
    }

    /// A number whose first byte was read: the scanner's grammar.
    fn number(&mut self, first: u8) -> Option<()> {
        let mut state = Number::start(first)?;
        while let Some(next) = self.peek().and_then(|byte| state.next(byte)) {
            state = next;
            self.at += 1;
        }
        state.is_complete().then_some(())
    }

    /// The rest of a container whose first byte is next, as the scanner skims one: strings
    /// (with their escapes) and brackets, matched.
    fn skip(&mut self) -> Option<()> {
        let depth = self.stack.len();
        self.skipping.clear();
        loop {
            let rest = self.body.get(self.at..)?;
            let found = rest
                .iter()
                .position(|b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))?;
            let byte = *rest.get(found)?;
            self.at += found + 1;
            match byte {
                b'"' => self.string()?,
                b'{' | b'[' => {
                    if depth + self.skipping.len() >= MAX_NESTING {
                        return None;
                    }
                    self.skipping.push(if byte == b'{' { b'}' } else { b']' });
                }
                close => {
                    if self.skipping.pop()? != close {
                        return None;
                    }
                    if self.skipping.is_empty() {
                        return Some(());
                    }
                }
            }
        }
    }
}
