//! Streaming sanitiser for one GraphQL JSON response body: chunks go in, bytes come out, and only
//! the `errors` members are held back, rewritten by [`super::sanitise`] and then sent.
//!
//! # Threats
//! Sanitising that works on a whole body must stop somewhere: past its size cap, or on bytes it
//! cannot decode, it used to pass the body through, so a client who could make the backend answer
//! 9 MB received a full stack trace. Here the size of a response does not matter: memory is
//! O(largest `errors` member + nesting depth), never O(response), and what cannot be inspected is
//! masked or refused, never passed.
//!
//! # What is rewritten, and where
//! A *response* is the root object, each object of a root array (a batch), the object under a
//! response's `payload` (graphql-sse's single-connection mode, Apollo's multipart subscriptions)
//! and each object of a response's `incremental` or `completed` array (incremental delivery).
//! Every member of a response whose key decodes to `errors` (however often, however spelt:
//! `"\u0065rrors"` too) is buffered up to `errors_cap` bytes and rewritten with the same rules as
//! [`super::sanitise`], which stays their only home. Everything else (`data`, `extensions`,
//! `errors` keys inside `data`) passes through byte for byte as it arrives, and is never parsed
//! into values. Before the root value, whitespace and one UTF-8 byte-order mark pass.
//!
//! # Failing closed
//! - Malformed, truncated or too deeply nested input stops the stream with an error. Every byte
//!   emitted before it lies outside every `errors` member; the caller aborts (or, before the head
//!   is sent, answers 502) and appends nothing.
//! - An `errors` member over `errors_cap`, or one the rules cannot read (what serde_json rejects:
//!   control characters, lone surrogates), follows [`OnOverflow`]: `Refuse` stops with an error,
//!   `Mask` replaces the member with one generic error, like [`super::MaskMode::All`]'s message.
//! - Invalid UTF-8 inside an `errors` member is replaced (U+FFFD, as `String::from_utf8_lossy`)
//!   before the rules run, so it is sanitised instead of skipped; the replaced member is sent
//!   even when the rules change nothing else. Invalid UTF-8 elsewhere passes as the upstream sent
//!   it: a decoder that replaces bytes never changes where a JSON value ends.
//! - A body whose first significant byte is neither `{` nor `[` is reported as not JSON before
//!   any of it but leading whitespace is emitted; no GraphQL client reads errors from it.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use memchr::memmem;
use serde_json::value::RawValue;

use super::{MaskMode, Outcome, Settings, sanitise};
use crate::json_scan::{Container, Event, ScanError, Scanner};

/// What to do with an `errors` member that cannot be inspected: larger than the cap, or not
/// readable by the rules (`GRAPHQL_FIREWALL_SANITISE_OVERFLOW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnOverflow {
    /// Stop the stream with [`StreamError::ErrorsTooLarge`] or [`StreamError::ErrorsUnreadable`].
    Refuse,
    /// Replace the member with one generic error carrying the request id.
    #[default]
    Mask,
}

/// Bounds of one streamed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// The largest `errors` member that is buffered and inspected, in bytes.
    pub errors_cap: usize,
    /// The deepest nesting of objects and arrays accepted anywhere in the body.
    pub max_depth: usize,
    pub on_overflow: OnOverflow,
}

/// What happened to a body that was streamed to its end (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Streamed {
    /// The output is the input, byte for byte.
    Unchanged,
    /// At least one `errors` member was rewritten.
    Rewritten,
    /// At least one `errors` member could not be inspected and was replaced by a generic error.
    Masked,
}

impl Streamed {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Streamed::Unchanged => "unchanged",
            Streamed::Rewritten => "rewritten",
            Streamed::Masked => "masked",
        }
    }
}

/// Why a stream was stopped. After any of these the sanitiser emits nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The body does not start with a JSON object or array. Everything before `resume_at` in
    /// the chunk just pushed has been emitted (whitespace, a byte-order mark), nothing after.
    #[error("the body is not a JSON object or array")]
    NotJson { resume_at: usize },
    #[error("the body is not valid JSON (at byte {offset})")]
    Malformed { offset: u64 },
    #[error("the body ended inside its JSON value")]
    Truncated,
    #[error("the body nests deeper than {max_depth} levels")]
    TooDeep { max_depth: usize },
    #[error("an errors member is larger than {cap} bytes")]
    ErrorsTooLarge { cap: usize },
    #[error("an errors member cannot be read by the sanitiser")]
    ErrorsUnreadable,
}

/// The role of a container the sanitiser follows; every other container is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An object whose `errors` members are rewritten.
    Response,
    /// An array whose object elements are responses.
    Responses,
}

/// What the value after the key just read may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    Nothing,
    /// `payload`: a response when it is an object.
    Response,
    /// `incremental`, `completed`: a list of responses when it is an array.
    Responses,
}

/// Where the body is, before its root value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prelude {
    /// Bytes of the byte-order mark read so far (0 to 3).
    Start(usize),
    /// The root value has started.
    Body,
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// The `errors` member being read.
#[derive(Debug)]
struct Member {
    /// Bytes after the key: the colon, whitespace, and the value so far.
    bytes: Vec<u8>,
    /// Over the cap: the rest is read but not kept (mask mode).
    overflowed: bool,
}

/// Sanitises one JSON response body pushed in chunks; see the module documentation. It owns what
/// it needs, so that a response body wrapper can hold it between frames.
#[derive(Debug)]
pub struct StreamSanitiser {
    settings: Arc<Settings>,
    request_id: Arc<str>,
    limits: StreamLimits,
    /// False when the settings change nothing: `errors` then streams like everything else.
    active: bool,
    scanner: Scanner,
    prelude: Prelude,
    roles: Vec<Role>,
    announced: Announced,
    member: Option<Member>,
    /// Bytes pushed before the current chunk (for error offsets).
    offset: u64,
    outcome: Streamed,
    failed: Option<StreamError>,
    /// The most bytes held at once for a member (what the memory bound is about).
    peak_held: usize,
}

impl StreamSanitiser {
    pub fn new(settings: Arc<Settings>, request_id: Arc<str>, limits: StreamLimits) -> Self {
        let active = settings.block_suggestions || settings.mask != MaskMode::Off;
        Self {
            settings,
            request_id,
            limits,
            active,
            scanner: Scanner::new(limits.max_depth),
            prelude: Prelude::Start(0),
            roles: Vec::new(),
            announced: Announced::Nothing,
            member: None,
            offset: 0,
            outcome: Streamed::Unchanged,
            failed: None,
            peak_held: 0,
        }
    }

    /// Reads `chunk` and appends to `out` every byte that may be sent now. On an error, `out`
    /// holds only bytes outside every `errors` member, and the stream must end there.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.read(chunk, out);
        self.offset += chunk.len() as u64;
        if let Err(error) = result {
            self.failed = Some(error);
            self.member = None;
        }
        result
    }

    /// The end of the body: reports what was done, or that the body stopped short.
    pub fn finish(mut self) -> Result<Streamed, StreamError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.prelude != Prelude::Body {
            return Err(StreamError::NotJson { resume_at: 0 });
        }
        self.scanner
            .finish()
            .map_err(|error| self.scan_error(error, 0))?;
        Ok(self.outcome)
    }

    /// The most bytes of an `errors` member held at once so far.
    pub fn peak_held(&self) -> usize {
        self.peak_held
    }

    fn read(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        let mut pos = 0;
        if let Prelude::Start(seen) = self.prelude {
            pos = self.prelude(chunk, seen, out)?;
            if self.prelude != Prelude::Body {
                return Ok(());
            }
        }
        // Bytes from `emitted` (or from `held_from` while a member is read) are not yet copied.
        let mut emitted = pos;
        let mut held_from = self.member.as_ref().map(|_| pos);
        loop {
            let event = self
                .scanner
                .next(chunk, &mut pos)
                .map_err(|error| self.scan_error(error, pos))?;
            match event {
                Event::NeedMore => break,
                Event::Skipped => {
                    if let Some(from) = held_from.take() {
                        self.hold(chunk.get(from..pos).unwrap_or_default())?;
                        if let Some(member) = self.member.take() {
                            self.write_member(member, out)?;
                        }
                        emitted = pos;
                    }
                }
                Event::Open(container) => self.open(container),
                Event::Close(_) => {
                    self.roles.pop();
                }
                Event::Scalar => self.announced = Announced::Nothing,
                Event::Key => {
                    if self.key_is_errors() {
                        out.extend_from_slice(chunk.get(emitted..pos).unwrap_or_default());
                        held_from = Some(pos);
                        self.member = Some(Member {
                            bytes: Vec::new(),
                            overflowed: false,
                        });
                        self.scanner.skip_value();
                    } else {
                        self.announced = match self.scanner.key() {
                            Some(b"payload") => Announced::Response,
                            Some(b"incremental" | b"completed") => Announced::Responses,
                            _ => {
                                self.scanner.skip_value();
                                Announced::Nothing
                            }
                        };
                    }
                }
            }
        }
        match held_from {
            Some(from) => self.hold(chunk.get(from..).unwrap_or_default()),
            None => {
                out.extend_from_slice(chunk.get(emitted..).unwrap_or_default());
                Ok(())
            }
        }
    }

    /// Reads the byte-order mark and whitespace before the root value; the position of the root.
    fn prelude(
        &mut self,
        chunk: &[u8],
        seen: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, StreamError> {
        let mut seen = seen;
        for (at, &byte) in chunk.iter().enumerate() {
            let mark_continues = seen < BYTE_ORDER_MARK.len()
                && (seen > 0 || at == 0 && self.offset == 0)
                && BYTE_ORDER_MARK.get(seen) == Some(&byte);
            if mark_continues {
                seen += 1;
                continue;
            }
            let mark_broken = seen > 0 && seen < BYTE_ORDER_MARK.len();
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' if !mark_broken => seen = BYTE_ORDER_MARK.len(),
                b'{' | b'[' if !mark_broken => {
                    out.extend_from_slice(chunk.get(..at).unwrap_or_default());
                    self.prelude = Prelude::Body;
                    return Ok(at);
                }
                _ => {
                    out.extend_from_slice(chunk.get(..at).unwrap_or_default());
                    return Err(StreamError::NotJson { resume_at: at });
                }
            }
        }
        out.extend_from_slice(chunk);
        self.prelude = Prelude::Start(seen);
        Ok(chunk.len())
    }

    fn open(&mut self, container: Container) {
        let role = match (self.roles.last(), self.announced, container) {
            (None, _, Container::Object) => Some(Role::Response),
            (None, _, Container::Array) => Some(Role::Responses),
            (Some(Role::Responses), _, Container::Object)
            | (Some(Role::Response), Announced::Response, Container::Object) => {
                Some(Role::Response)
            }
            (Some(Role::Response), Announced::Responses, Container::Array) => Some(Role::Responses),
            _ => None,
        };
        self.announced = Announced::Nothing;
        match role {
            Some(role) => self.roles.push(role),
            None => self.scanner.skip_container(),
        }
    }

    fn key_is_errors(&self) -> bool {
        self.active
            && self.roles.last() == Some(&Role::Response)
            && self.scanner.key() == Some(b"errors")
    }

    /// Keeps more bytes of the member being read, up to the cap.
    fn hold(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let cap = self.limits.errors_cap;
        let Some(member) = self.member.as_mut() else {
            return Ok(());
        };
        if member.overflowed {
            return Ok(());
        }
        if member.bytes.len().saturating_add(bytes.len()) > cap {
            match self.limits.on_overflow {
                OnOverflow::Refuse => return Err(StreamError::ErrorsTooLarge { cap }),
                OnOverflow::Mask => {
                    member.overflowed = true;
                    member.bytes = Vec::new();
                }
            }
            return Ok(());
        }
        member.bytes.extend_from_slice(bytes);
        self.peak_held = self.peak_held.max(member.bytes.capacity());
        Ok(())
    }

    /// Sends a member that has been read: rewritten, as it was, or masked.
    fn write_member(&mut self, member: Member, out: &mut Vec<u8>) -> Result<(), StreamError> {
        if member.overflowed {
            return self.write_masked(out);
        }
        // The member's bytes start with the colon and whitespace that follow the key.
        let value_at = member
            .bytes
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))
            .unwrap_or(member.bytes.len());
        let (separator, value) = member.bytes.split_at(value_at);
        let lossy = String::from_utf8_lossy(value);
        let text = match repair_lone_surrogates(&lossy) {
            Cow::Borrowed(_) => lossy,
            Cow::Owned(repaired) => Cow::Owned(repaired),
        };
        let repaired = matches!(text, Cow::Owned(_));
        let mut wrapped = String::with_capacity(text.len() + 12);
        wrapped.push_str("{\"errors\":");
        wrapped.push_str(&text);
        wrapped.push('}');
        let rewritten = match sanitise(wrapped.as_bytes(), &self.settings, &self.request_id) {
            Outcome::Unchanged => None,
            Outcome::Rewritten(body) => Some(body),
            Outcome::NotJson => return self.unreadable(out),
        };
        out.extend_from_slice(separator);
        let changed = rewritten.is_some() || repaired;
        match rewritten {
            Some(body) => match serde_json::from_slice::<Wrapped<'_>>(&body) {
                Ok(new) => out.extend_from_slice(new.errors.get().as_bytes()),
                Err(_) => return self.unreadable(out),
            },
            None => out.extend_from_slice(text.as_bytes()),
        }
        if changed {
            self.outcome = self.outcome.max(Streamed::Rewritten);
        }
        Ok(())
    }

    fn unreadable(&mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        match self.limits.on_overflow {
            OnOverflow::Refuse => Err(StreamError::ErrorsUnreadable),
            OnOverflow::Mask => self.write_masked(out),
        }
    }

    fn write_masked(&mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        out.push(b':');
        out.extend_from_slice(generic_errors(&self.request_id).as_bytes());
        self.outcome = Streamed::Masked;
        Ok(())
    }

    fn scan_error(&self, error: ScanError, pos: usize) -> StreamError {
        match error {
            ScanError::Malformed => StreamError::Malformed {
                offset: self.offset + pos as u64,
            },
            ScanError::TooDeep { max_depth } => StreamError::TooDeep { max_depth },
            ScanError::Truncated => StreamError::Truncated,
        }
    }
}

/// False only when no member anywhere in `body` can be named `errors`: a key that decodes to
/// `errors` is either spelt plainly or escapes a letter as `\\u00XX`, so a body with neither
/// `errors` nor `\\u00` needs no scan at all (two SIMD passes). For bodies held whole (an event,
/// a part, a small response); a stream cannot use it, since where a member ends depends on what
/// came before.
pub fn may_hold_errors(body: &[u8]) -> bool {
    // The searchers are built once: their set-up would otherwise be paid on every body.
    static ERRORS: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"errors"));
    static ESCAPE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\\u00"));
    ERRORS.find(body).is_some() || ESCAPE.find(body).is_some()
}

/// The `errors` value that replaces one that cannot be inspected: one error with the message
/// that [`MaskMode::All`] gives internal errors (a test keeps the two the same).
pub fn generic_errors(request_id: &str) -> String {
    let message = format!("Internal server error (request id: {request_id})");
    serde_json::json!([{ "message": message }]).to_string()
}

/// Replaces each `\\u` escape of a surrogate that is not half of a pair with `\\ufffd`. serde_json
/// cannot decode such a string, so the rules would keep it untouched, while JavaScript's
/// `JSON.parse` reads it (suggestion and all); repaired, the rules see the rest of the text.
fn repair_lone_surrogates(json: &str) -> Cow<'_, str> {
    let bytes = json.as_bytes();
    let surrogate = |at: usize| -> Option<u32> {
        let digits = json.get(at + 2..at + 6)?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        (bytes.get(at..at + 2) == Some(b"\\u") && (0xD800..0xE000).contains(&value))
            .then_some(value)
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', bytes.get(at..).unwrap_or_default()) {
        at += found;
        let Some(high) = surrogate(at) else {
            // Any other escape: step over the backslash and the byte it escapes.
            at += 2;
            continue;
        };
        let paired = high < 0xDC00 && surrogate(at + 6).is_some_and(|low| low >= 0xDC00);
        if paired {
            at += 12;
            continue;
        }
        let text = out.get_or_insert_with(|| String::with_capacity(json.len()));
        text.push_str(json.get(copied..at).unwrap_or_default());
        text.push_str("\\ufffd");
        at += 6;
        copied = at;
    }
    match out {
        Some(mut text) => {
            text.push_str(json.get(copied..).unwrap_or_default());
            Cow::Owned(text)
        }
        None => Cow::Borrowed(json),
    }
}

/// The body the rules returned for one wrapped member.
#[derive(serde::Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    errors: &'a RawValue,
}

#[cfg(test)]
mod tests;
