//! Pure rewrite of upstream GraphQL response bodies: removes "Did you mean …?" suggestions and
//! masks internal error details (stack traces, exception objects, file paths).
//!
//! # Threats
//! With introspection blocked, an attacker can still rebuild the schema from the suggestions that
//! validation errors carry (`Cannot query field "nmae" on type "User". Did you mean "name"?`), and
//! learn the backend's language, framework, file layout and code paths from stack traces and
//! exception objects that servers put into `extensions` in debug builds.
//!
//! # What is rewritten, and what never is
//! Only members of the objects in a response's top-level `errors` array are touched; `data`,
//! top-level `extensions` and every other member are copied byte for byte (they stay
//! [`RawValue`]s and are never re-serialised). A body that needs no change is reported as
//! [`Outcome::Unchanged`] so that the caller sends the original bytes. A body in which the byte
//! string `"errors"` does not occur is answered without parsing at all (one SIMD pass; a key spelt
//! with `\u` escapes is not looked for, see `may_mention_errors`).
//!
//! # Suggestions (`Settings::block_suggestions`)
//! Every sentence that starts with "did you mean" (any case) is cut from the error's `message` and
//! from every string anywhere under its `extensions`, from the phrase to the `?` that ends it (a `?`
//! inside a quoted name does not count), or to the end of the line if there is no `?`. The blank
//! before the sentence goes with it; nothing else is replaced. The wording was checked in the
//! servers' sources (the `tests` module lists each one).
//!
//! # Masking (`Settings::mask`)
//! An error is a *request error* when it has neither `extensions.code` nor `path` (parse and
//! validation errors are raised before execution, so the GraphQL spec gives them no `path`). It is
//! *internal* when its code is one of [`INTERNAL_CODES`], or when it has no code but a `path` (a
//! resolver threw). It is *actionable* when it is a request error or its code is in
//! `Settings::keep_codes`: its message describes the client's own input.
//! - [`MaskMode::Off`]: nothing is masked.
//! - [`MaskMode::Details`] (default):
//!   - members named like [`DETAIL_KEYS`] (ASCII case ignored: `exception`, `stacktrace`,
//!     `stackTrace`, `debug`, `trace`, …) are removed at any depth under `extensions`, and also from
//!     the error object itself;
//!   - any string under `extensions` that looks like a stack trace or a server file path (frames
//!     of JS/Java/.NET/Python/Rust/Go traces, `file.ext:LINE`, absolute paths under `/app/`,
//!     `/home/`, `/usr/`, `/src/`, …, drive paths such as `C:\`) is removed with its member (or
//!     array element);
//!   - `locations` is removed from internal errors: there it only tells a prober which part of the
//!     query broke the server, while request errors keep it because clients need it to fix the
//!     query; `path` is always kept (clients match errors to `data` with it);
//!   - a `message` holding a stack trace is cut to its first line, and the message of an error that
//!     is not actionable and still names a file path or a stack frame is replaced by the generic
//!     message.
//! - [`MaskMode::All`]: every message becomes `Internal server error (request id: <id>)` unless the
//!   error is actionable; those keep their message (minus suggestions, always, and cut like in
//!   `Details`) and their `locations`.
//!   `extensions` is reduced to `{"code": …}` (or removed when there is no string code) and every
//!   other member except `message`, `locations` and `path` is removed.
//!
//! An `extensions` nested deeper than serde_json's recursion limit (128) cannot be inspected and is
//! removed whenever suggestions or masking are on.
//!
//! Malformed shapes are passed through, never "repaired": an `errors` that is not an array, an
//! element that is not an object, a `message` that is not a string (except in `All` mode, where it
//! is replaced).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use memchr::memmem;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use text::{has_stack_trace, looks_internal, strip_suggestions};

/// How much of an upstream error's detail reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskMode {
    /// Errors are passed through (suggestions are still governed by `block_suggestions`).
    Off,
    /// Stack traces, exception objects, file paths and internal `locations` are removed.
    #[default]
    Details,
    /// Every message is replaced by a generic one, except client-actionable errors.
    All,
}

/// What the sanitiser removes; built once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Remove "Did you mean …?" sentences (`GRAPHQL_FIREWALL_BLOCK_FIELD_SUGGESTIONS`).
    pub block_suggestions: bool,
    /// Error masking (`GRAPHQL_FIREWALL_MASK_ERRORS`).
    pub mask: MaskMode,
    /// `extensions.code` values whose message is kept in [`MaskMode::All`].
    pub keep_codes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            block_suggestions: true,
            mask: MaskMode::Details,
            // Codes of errors a client can act on; none of them carries internals.
            keep_codes: [
                "GRAPHQL_PARSE_FAILED",
                "GRAPHQL_VALIDATION_FAILED",
                "BAD_USER_INPUT",
                "UNAUTHENTICATED",
                "FORBIDDEN",
                "PERSISTED_QUERY_NOT_FOUND",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// The result of [`sanitise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to change: send the original bytes as they are.
    Unchanged,
    /// The rewritten body (same members and order; only `errors` re-serialised).
    Rewritten(Vec<u8>),
    /// Not a JSON object or array (decided from the first byte on every body, and by a full parse
    /// when the body mentions `errors` and sanitising is on): send as is, and count it.
    NotJson,
}

/// `extensions.code` values that mark an error as internal.
pub const INTERNAL_CODES: &[&str] = &[
    "INTERNAL_SERVER_ERROR",
    "INTERNAL_ERROR",
    "INTERNAL",
    "UNEXPECTED_ERROR",
    "UNKNOWN_ERROR",
];

/// Member names (ASCII case ignored) that carry debugging detail in the servers we know:
/// Apollo Server (`exception.stacktrace`), graphql-php (`debugMessage`, `trace`), Hot Chocolate
/// (`stackTrace`), express-graphql / Yoga in dev mode (`stack`, `originalError`).
pub const DETAIL_KEYS: &[&str] = &[
    "exception",
    "exceptions",
    "stacktrace",
    "stack",
    "debug",
    "debugmessage",
    "trace",
    "originalerror",
    "innerexception",
];

/// Rewrites `body` according to `settings`; `request_id` goes into masked messages.
pub fn sanitise(body: &[u8], settings: &Settings, request_id: &str) -> Outcome {
    let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Outcome::NotJson;
    };
    if *first != b'{' && *first != b'[' {
        return Outcome::NotJson;
    }
    if !may_mention_errors(body) {
        return Outcome::Unchanged;
    }
    if !settings.block_suggestions && settings.mask == MaskMode::Off {
        return Outcome::Unchanged;
    }
    let rewriter = Rewriter {
        settings,
        request_id,
    };
    let rewritten = if *first == b'{' {
        match serde_json::from_slice::<Members<'_>>(body) {
            Ok(members) => rewriter.response(&members),
            Err(_) => return Outcome::NotJson,
        }
    } else {
        match serde_json::from_slice::<Vec<&RawValue>>(body) {
            Ok(items) => rewriter.batch(&items),
            Err(_) => return Outcome::NotJson,
        }
    };
    match rewritten {
        Some(bytes) => Outcome::Rewritten(bytes),
        None => Outcome::Unchanged,
    }
}

/// False only when the key `"errors"` does not occur as the serialisers write it. One SIMD pass:
/// the whole cost of a clean response. A key spelt with `\u` escapes is not looked for: top-level
/// keys are written by the upstream's own serialiser (a client can only put keys inside `data`),
/// and no serialiser escapes ASCII letters.
fn may_mention_errors(body: &[u8]) -> bool {
    // The searcher is built once: its set-up would otherwise be paid on every response.
    static ERRORS_KEY: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"errors\""));
    ERRORS_KEY.find(body).is_some()
}

/// The members of one JSON object, in document order, values untouched.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4).min(16));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct Rewriter<'s> {
    settings: &'s Settings,
    request_id: &'s str,
}

impl Rewriter<'_> {
    /// A batch: each element that is an object is a response; anything else is kept.
    fn batch(&self, items: &[&RawValue]) -> Option<Vec<u8>> {
        let rewritten: Vec<Option<Vec<u8>>> = items
            .iter()
            .map(|item| {
                serde_json::from_str::<Members<'_>>(item.get())
                    .ok()
                    .and_then(|members| self.response(&members))
            })
            .collect();
        if rewritten.iter().all(Option::is_none) {
            return None;
        }
        let mut out =
            Vec::with_capacity(items.iter().map(|i| i.get().len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (index, (item, new)) in items.iter().zip(&rewritten).enumerate() {
            if index > 0 {
                out.push(b',');
            }
            match new {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.extend_from_slice(item.get().as_bytes()),
            }
        }
        out.push(b']');
        Some(out)
    }

    /// One response object: only members named `errors` holding an array are rewritten.
    fn response(&self, members: &Members<'_>) -> Option<Vec<u8>> {
        let new_errors: Vec<Option<String>> = members
            .0
            .iter()
            .map(|(key, raw)| {
                if key == "errors" {
                    self.errors(raw)
                } else {
                    None
                }
            })
            .collect();
        if new_errors.iter().all(Option::is_none) {
            return None;
        }
        let pairs = members.0.iter().zip(new_errors).map(|((key, raw), new)| {
            (
                key.as_str(),
                new.map_or(Cow::Borrowed(raw.get()), Cow::Owned),
            )
        });
        Some(write_object(pairs).into_bytes())
    }

    fn errors(&self, raw: &RawValue) -> Option<String> {
        let items = serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok()?;
        let rewritten: Vec<Option<String>> = items
            .iter()
            .map(|item| {
                serde_json::from_str::<Members<'_>>(item.get())
                    .ok()
                    .and_then(|members| self.error(&members))
            })
            .collect();
        if rewritten.iter().all(Option::is_none) {
            return None;
        }
        let mut out = String::from("[");
        for (index, (item, new)) in items.iter().zip(rewritten).enumerate() {
            if index > 0 {
                out.push(',');
            }
            match new {
                Some(text) => out.push_str(&text),
                None => out.push_str(item.get()),
            }
        }
        out.push(']');
        Some(out)
    }

    /// One error object; `None` when it stays as it was.
    fn error(&self, members: &Members<'_>) -> Option<String> {
        let settings = self.settings;
        let member = |name: &str| members.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let extensions: Option<Value> =
            member("extensions").and_then(|raw| serde_json::from_str(raw.get()).ok());
        let code = extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let has_path = member("path").is_some_and(|raw| raw.get() != "null");
        let internal = match &code {
            Some(code) => INTERNAL_CODES.contains(&code.as_str()),
            None => has_path,
        };
        let request_error = code.is_none() && !has_path;
        let actionable = request_error
            || code
                .as_ref()
                .is_some_and(|c| settings.keep_codes.iter().any(|k| k == c));
        let keep_message = actionable || settings.mask != MaskMode::All;
        // In `All` mode suggestions go even when `block_suggestions` is off: it is the strict mode.
        let strip = settings.block_suggestions || settings.mask == MaskMode::All;

        let mut changed = false;
        let mut out: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(members.0.len());
        for (key, raw) in &members.0 {
            let key = key.as_str();
            match key {
                "message" => {
                    let new = if keep_message {
                        serde_json::from_str::<String>(raw.get())
                            .ok()
                            .and_then(|text| self.message(&text, strip, actionable))
                    } else {
                        Some(self.generic_message())
                    };
                    match new {
                        Some(text) => {
                            changed = true;
                            out.push((key, Cow::Owned(json_string(&text))));
                        }
                        None => out.push((key, Cow::Borrowed(raw.get()))),
                    }
                }
                "locations" => {
                    let drop = match settings.mask {
                        MaskMode::Off => false,
                        MaskMode::Details => internal,
                        MaskMode::All => !keep_message,
                    };
                    if drop {
                        changed = true;
                    } else {
                        out.push((key, Cow::Borrowed(raw.get())));
                    }
                }
                "path" => out.push((key, Cow::Borrowed(raw.get()))),
                "extensions" => {
                    match self.extensions(raw, extensions.clone(), code.as_deref(), strip) {
                        Rewrite::Keep => out.push((key, Cow::Borrowed(raw.get()))),
                        Rewrite::Replace(text) => {
                            changed = true;
                            out.push((key, Cow::Owned(text)));
                        }
                        Rewrite::Drop => changed = true,
                    }
                }
                _ => {
                    let drop = match settings.mask {
                        MaskMode::Off => false,
                        MaskMode::Details => {
                            is_detail_key(key)
                                || serde_json::from_str::<String>(raw.get())
                                    .is_ok_and(|text| looks_internal(&text))
                        }
                        MaskMode::All => true,
                    };
                    if drop {
                        changed = true;
                    } else {
                        out.push((key, Cow::Borrowed(raw.get())));
                    }
                }
            }
        }
        changed.then(|| write_object(out))
    }

    /// The new message text, or `None` when it stays as it was. The message of an `actionable`
    /// error is about the client's own input, so a path in it is the client's, not the server's.
    fn message(&self, text: &str, strip: bool, actionable: bool) -> Option<String> {
        let stripped = if strip { strip_suggestions(text) } else { None };
        let current = stripped.as_deref().unwrap_or(text);
        if self.settings.mask == MaskMode::Off {
            return stripped;
        }
        let first_line = current.lines().next().unwrap_or("");
        let cut = if has_stack_trace(current) {
            Some(first_line.trim_end().to_owned())
        } else {
            None
        };
        let shown = cut.as_deref().unwrap_or(current);
        if !actionable && looks_internal(shown) {
            return Some(self.generic_message());
        }
        cut.or(stripped)
    }

    fn generic_message(&self) -> String {
        format!("Internal server error (request id: {})", self.request_id)
    }

    fn extensions(
        &self,
        raw: &RawValue,
        parsed: Option<Value>,
        code: Option<&str>,
        strip: bool,
    ) -> Rewrite {
        if self.settings.mask == MaskMode::All {
            return match code {
                Some(code) => {
                    let reduced = serde_json::json!({ "code": code }).to_string();
                    if reduced == raw.get() {
                        Rewrite::Keep
                    } else {
                        Rewrite::Replace(reduced)
                    }
                }
                None => Rewrite::Drop,
            };
        }
        let Some(mut value) = parsed else {
            // Only nesting beyond serde_json's recursion limit gets here: what cannot be inspected
            // cannot be shown.
            return if strip || self.settings.mask != MaskMode::Off {
                Rewrite::Drop
            } else {
                Rewrite::Keep
            };
        };
        let details = self.settings.mask == MaskMode::Details;
        if details && value.as_str().is_some_and(looks_internal) {
            return Rewrite::Drop;
        }
        if clean_value(&mut value, strip, details) {
            Rewrite::Replace(value.to_string())
        } else {
            Rewrite::Keep
        }
    }
}

enum Rewrite {
    Keep,
    Replace(String),
    Drop,
}

/// Strips suggestions from every string under `root` and, with `details`, removes detail members
/// and trace/path-like strings. Iterative, so nesting costs heap, not stack. Returns whether
/// anything changed.
fn clean_value(root: &mut Value, strip: bool, details: bool) -> bool {
    let mut changed = false;
    let mut stack: Vec<&mut Value> = vec![root];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if details {
                    let before = map.len();
                    map.retain(|key, v| {
                        !(is_detail_key(key) || v.as_str().is_some_and(looks_internal))
                    });
                    changed |= map.len() != before;
                }
                stack.extend(map.values_mut());
            }
            Value::Array(items) => {
                if details {
                    let before = items.len();
                    items.retain(|v| !v.as_str().is_some_and(looks_internal));
                    changed |= items.len() != before;
                }
                stack.extend(items.iter_mut());
            }
            Value::String(text) => {
                if strip && let Some(new) = strip_suggestions(text) {
                    *text = new;
                    changed = true;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    changed
}

fn is_detail_key(key: &str) -> bool {
    DETAIL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn write_object<'a>(pairs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>) -> String {
    let mut out = String::from("{");
    for (index, (key, value)) in pairs.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&json_string(key));
        out.push(':');
        out.push_str(&value);
    }
    out.push('}');
    out
}

fn json_string(text: &str) -> String {
    // Serialising a `str` cannot fail; the fallback keeps this path free of panics anyway.
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

pub mod multipart;
pub mod sse;
pub mod stream;
mod text;

#[cfg(test)]
mod tests;
