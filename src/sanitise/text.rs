//! Text rules of the sanitiser: where a suggestion sentence starts and ends, and what looks like a
//! stack trace or a server file path. Pure functions over `&str`, no allocation unless a rewrite is
//! needed.

use memchr::memmem;

const SUGGESTION_PHRASE: &[u8] = b"did you mean";

/// How far a closing quote is looked for. Suggested names are short (GraphQL names, at most five of
/// them); the bound keeps the scan linear when an upstream echoes client input full of quotes.
const MAX_QUOTED: usize = 256;

/// Removes every "did you mean …?" sentence; `None` (and no allocation) when there is none.
pub(super) fn strip_suggestions(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut hit = find_phrase(bytes, 0)?;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    loop {
        // Take the blanks before the sentence with it (`…"User". Did you mean` → `…"User".`).
        let mut start = hit;
        while start > copied && is_blank(bytes.get(start - 1)) {
            start -= 1;
        }
        let mut end = sentence_end(bytes, hit + SUGGESTION_PHRASE.len());
        // A sentence that opened the text or a line also takes the blanks after it.
        if start == 0 || bytes.get(start - 1) == Some(&b'\n') {
            while is_blank(bytes.get(end)) {
                end += 1;
            }
        }
        out.push_str(text.get(copied..start).unwrap_or(""));
        copied = end;
        match find_phrase(bytes, end) {
            Some(next) => hit = next,
            None => break,
        }
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Some(out)
}

fn is_blank(byte: Option<&u8>) -> bool {
    matches!(byte, Some(b' ' | b'\t'))
}

/// The index of the next "did you mean" (ASCII case ignored) at or after `from`.
fn find_phrase(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    memchr::memchr2_iter(b'd', b'D', rest)
        .map(|at| at + from)
        .find(|&at| {
            bytes
                .get(at..at + SUGGESTION_PHRASE.len())
                .is_some_and(|word| word.eq_ignore_ascii_case(SUGGESTION_PHRASE))
        })
}

/// The index just past the `?` that ends a suggestion sentence starting at `from`: quote-aware
/// (`"a?b"` is a name), stops before a newline, or runs to the end of the text.
fn sentence_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'?' => return i + 1,
            b'\n' | b'\r' => return i,
            b'"' | b'\'' | b'`' => {
                if let Some(close) = closing_quote(bytes, i + 1, b) {
                    i = close + 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the quote that closes one opened before `from`, on the same line and within
/// [`MAX_QUOTED`] bytes; backslash escapes the next byte. `None` means the opening quote was a
/// plain character (an apostrophe).
fn closing_quote(bytes: &[u8], from: usize, quote: u8) -> Option<usize> {
    let limit = from.saturating_add(MAX_QUOTED);
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if i >= limit || b == b'\n' {
            return None;
        }
        if b == quote {
            return Some(i);
        }
        i += if b == b'\\' { 2 } else { 1 };
    }
    None
}

/// A multi-line text with at least one line after the first that is a stack frame.
pub(super) fn has_stack_trace(text: &str) -> bool {
    text.lines().skip(1).any(is_frame_line) || text.contains("Traceback (most recent call last)")
}

/// One line of a stack trace in the common runtimes: JS/Java/.NET `at f (…)`, Python
/// `File "…", line N`, Rust/Go/JS `file.ext:LINE`, and .NET `in C:\…:line N`.
fn is_frame_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    (trimmed.starts_with("at ") && (trimmed.contains('(') || has_source_position(trimmed)))
        || (trimmed.starts_with("File \"") && trimmed.contains("\", line "))
        || trimmed.starts_with("Traceback (most recent call last)")
        || has_source_position(trimmed)
}

/// Whether a string looks like a stack trace or names a file on the server.
pub(super) fn looks_internal(text: &str) -> bool {
    has_stack_trace(text) || text.lines().any(is_frame_line) || has_server_path(text)
}

/// `name.ext:123` for the source extensions of common server languages, or `.cs:line 12`.
fn has_source_position(text: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        ".rs:", ".java:", ".kt:", ".scala:", ".go:", ".js:", ".mjs:", ".cjs:", ".ts:", ".py:",
        ".rb:", ".php:", ".cs:", ".ex:", ".exs:",
    ];
    let bytes = text.as_bytes();
    EXTENSIONS.iter().any(|ext| {
        memmem::find_iter(bytes, ext.as_bytes()).any(|at| {
            let after = at + ext.len();
            bytes.get(after).is_some_and(u8::is_ascii_digit)
                || bytes
                    .get(after..)
                    .is_some_and(|rest| rest.starts_with(b"line "))
        })
    }) || text.contains(".py\", line ")
}

/// Absolute paths under the usual server roots, Windows drive paths, `file://` URLs.
fn has_server_path(text: &str) -> bool {
    const ROOTS: &[&str] = &[
        "/home/",
        "/usr/",
        "/app/",
        "/var/",
        "/opt/",
        "/srv/",
        "/root/",
        "/tmp/",
        "/etc/",
        "/src/",
        "/node_modules/",
        "/site-packages/",
        "/target/",
        "file://",
    ];
    if ROOTS.iter().any(|root| text.contains(root)) {
        return true;
    }
    // `C:\…` / `D:/…`: a drive letter that starts a word.
    let bytes = text.as_bytes();
    bytes.windows(3).enumerate().any(|(at, w)| {
        matches!(w, [letter, b':', b'\\' | b'/'] if letter.is_ascii_alphabetic())
            && (at == 0 || !bytes.get(at - 1).is_some_and(u8::is_ascii_alphanumeric))
            && bytes.get(at + 3).is_none_or(|b| *b != b'/')
    })
}
