//! Sanitising a `multipart/mixed` response part by part (incremental delivery of `@defer` and
//! `@stream`, Apollo's multipart subscriptions): each part's JSON body is run through
//! [`StreamSanitiser`], which also rewrites `payload.errors`, `incremental[].errors` and
//! `completed[].errors`; heartbeats (`{}`) and clean parts pass byte for byte.
//!
//! # Threats
//! Results delivered in parts carry `errors` like any response. A client's multipart parser and
//! the firewall's must agree on where parts begin, or an `errors` member the firewall took for
//! the inside of another part reaches the client unsanitised.
//!
//! # Framing, and why it is this strict
//! - A delimiter is `--boundary` at the start of the body or after any LF (RFC 2046 wants CRLF;
//!   the lenient choice can only cut more parts than a client does, never fewer). A valid JSON
//!   body cannot contain LF followed by `--` (an LF is never inside a JSON string, and `--` is not
//!   JSON), so this never cuts a valid part.
//! - Every part's body is a JSON object or array, or empty; anything else
//!   ([`MultipartError::PartNotJson`]), a part whose JSON ends before or continues after its
//!   value, or a header line that is a delimiter stops the stream. Whatever a client took for a
//!   part, its bytes were either sanitised here or never sent.
//! - A part is sent as soon as its JSON value is complete, not when the next delimiter arrives,
//!   so a subscription event is not held until the next heartbeat. A part is held whole until
//!   then, at most `part_cap` bytes ([`MultipartError::PartTooLarge`]).
//! - A rewritten part's `Content-Length` header (some servers send one) is set to the new length.
//! - The preamble is not sent; of the epilogue only leading whitespace is.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use memchr::memmem;

use std::sync::Arc;

use super::Settings;
use super::stream::{StreamError, StreamLimits, StreamSanitiser, Streamed, may_hold_errors};
use crate::json_scan::{Event, ScanError, Scanner};

/// Why a multipart stream was refused or stopped. After any of these nothing more is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the content type has no usable boundary parameter")]
    NoBoundary,
    #[error("a part is larger than {cap} bytes")]
    PartTooLarge { cap: usize },
    #[error("the multipart framing is broken")]
    Malformed,
    #[error("a part's body is not a JSON object or array")]
    PartNotJson,
    #[error("a part's JSON body is malformed, or continues after its value")]
    PartMalformed,
    #[error("a part's JSON body: {0}")]
    Payload(#[from] StreamError),
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// `segment` starts with a delimiter; its line and headers are being read.
    Head,
    /// The headers are read; the body starts at `body_at`.
    Body,
    /// The part was sent; only whitespace may come before the next delimiter.
    Tail,
    /// After the close delimiter; `clean` while only whitespace has come.
    Epilogue { clean: bool },
}

/// Sanitises one `multipart/mixed` body pushed in chunks.
#[derive(Debug)]
pub struct MultipartSanitiser {
    settings: Arc<Settings>,
    request_id: Arc<str>,
    limits: StreamLimits,
    part_cap: usize,
    /// `\n--boundary`.
    finder: memmem::Finder<'static>,
    state: State,
    /// Unsent bytes: the current part from its delimiter's line break on.
    segment: Vec<u8>,
    /// `segment` starts with an LF that is not in the input (so that a delimiter at the very
    /// start of the body is found like any other).
    virtual_lf: bool,
    /// `segment[..searched]` holds no delimiter other than the one it starts with.
    searched: usize,
    /// Where the header block starts, and where the body starts.
    headers_at: usize,
    body_at: usize,
    /// Validates the body to find where its value ends.
    scanner: Scanner,
    /// How far `scanner` has read in `segment`.
    scanned: usize,
    outcome: Streamed,
    failed: Option<MultipartError>,
}

impl MultipartSanitiser {
    /// A sanitiser for a body of `content_type` (which must carry a `boundary`).
    pub fn new(
        content_type: &str,
        settings: Arc<Settings>,
        request_id: Arc<str>,
        limits: StreamLimits,
        part_cap: usize,
    ) -> Result<Self, MultipartError> {
        let mime: mime::Mime = content_type
            .parse()
            .map_err(|_| MultipartError::NoBoundary)?;
        let boundary = mime
            .get_param(mime::BOUNDARY)
            .map(|b| b.as_str().to_owned())
            .filter(|b| (1..=70).contains(&b.len()))
            .ok_or(MultipartError::NoBoundary)?;
        let needle = format!("\n--{boundary}").into_bytes();
        Ok(Self {
            settings,
            request_id,
            limits,
            part_cap,
            finder: memmem::Finder::new(&needle).into_owned(),
            state: State::Preamble,
            segment: vec![b'\n'],
            virtual_lf: true,
            searched: 0,
            headers_at: 0,
            body_at: 0,
            scanner: Scanner::new(limits.max_depth),
            scanned: 0,
            outcome: Streamed::Unchanged,
            failed: None,
        })
    }

    /// Reads `chunk`; appends every part it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), MultipartError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        self.segment.extend_from_slice(chunk);
        let result = self.process(out, false);
        if let Err(error) = result {
            self.failed = Some(error);
            self.segment = Vec::new();
        }
        result
    }

    /// The end of the stream: a part whose JSON is complete is sent; anything cut short is an
    /// error.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Streamed, MultipartError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        self.process(out, true)?;
        match self.state {
            State::Preamble if self.unsent().iter().all(u8::is_ascii_whitespace) => {
                Ok(self.outcome)
            }
            State::Tail | State::Epilogue { .. } => Ok(self.outcome),
            State::Body if self.body_is_blank(self.segment.len()) => {
                out.extend_from_slice(self.unsent());
                Ok(self.outcome)
            }
            State::Body => Err(MultipartError::Payload(StreamError::Truncated)),
            State::Preamble | State::Head => Err(MultipartError::Malformed),
        }
    }

    fn needle_len(&self) -> usize {
        self.finder.needle().len()
    }

    /// The segment without the virtual LF.
    fn unsent(&self) -> &[u8] {
        self.segment
            .get(usize::from(self.virtual_lf)..)
            .unwrap_or_default()
    }

    /// The next delimiter at or after `from`: where its line break starts (a CR before the LF
    /// belongs to it) and where its `--boundary` ends.
    fn find_delimiter(&self, from: usize) -> Option<(usize, usize)> {
        let from = from.min(self.segment.len());
        let lf = from + self.finder.find(self.segment.get(from..)?)?;
        let start = if lf > from && self.segment.get(lf - 1) == Some(&b'\r') {
            lf - 1
        } else {
            lf
        };
        Some((start, lf + self.needle_len()))
    }

    /// Where the segment's end may hold the first bytes of a delimiter (with its CR): bytes from
    /// there are not read until more input decides. The segment's length when it cannot.
    fn undecided_from(&self) -> usize {
        let needle = self.finder.needle();
        let len = self.segment.len();
        let earliest = len.saturating_sub(needle.len() - 1);
        let partial = (earliest..len).find(|&at| {
            let tail = self.segment.get(at..).unwrap_or_default();
            needle.starts_with(tail)
        });
        match partial {
            Some(at) if at > 0 && self.segment.get(at - 1) == Some(&b'\r') => at - 1,
            Some(at) => at,
            None if self.segment.last() == Some(&b'\r') => len - 1,
            None => len,
        }
    }

    /// Drops `segment[..at]`, sent or not.
    fn consume(&mut self, at: usize) {
        self.segment.drain(..at.min(self.segment.len()));
        if at > 0 {
            self.virtual_lf = false;
        }
        self.searched = self.searched.saturating_sub(at);
    }

    fn process(&mut self, out: &mut Vec<u8>, at_end: bool) -> Result<(), MultipartError> {
        while self.step(out, at_end)? {}
        if self.segment.len() > self.part_cap.saturating_add(self.needle_len()) {
            return Err(MultipartError::PartTooLarge { cap: self.part_cap });
        }
        Ok(())
    }

    /// One step of the state machine; `false` when it needs more input.
    fn step(&mut self, out: &mut Vec<u8>, at_end: bool) -> Result<bool, MultipartError> {
        // A delimiter (and the CR before it) may have begun in the last bytes searched.
        let overlap = self.searched.saturating_sub(self.needle_len());
        match self.state {
            State::Preamble => match self.find_delimiter(overlap) {
                Some((start, _)) => {
                    // The preamble is not sent (clients ignore it).
                    self.consume(start);
                    self.searched = 0;
                    self.state = State::Head;
                    Ok(true)
                }
                None => {
                    let keep = self.segment.len().saturating_sub(self.needle_len());
                    self.consume(keep);
                    self.searched = self.segment.len();
                    Ok(false)
                }
            },
            State::Head => self.head(out),
            State::Body => self.body(out, at_end),
            State::Tail => {
                let found = self.find_delimiter(overlap);
                let end = match found {
                    Some((start, _)) => start,
                    None if at_end => self.segment.len(),
                    None => self.undecided_from(),
                };
                let tail = self.segment.get(..end).unwrap_or_default();
                if !tail.iter().all(u8::is_ascii_whitespace) {
                    return Err(MultipartError::PartMalformed);
                }
                out.extend_from_slice(tail);
                self.consume(end);
                self.searched = self.segment.len();
                if found.is_some() {
                    self.searched = 0;
                    self.state = State::Head;
                    return Ok(true);
                }
                Ok(false)
            }
            State::Epilogue { clean } => {
                let mut clean = clean;
                for &byte in self.unsent() {
                    clean &= byte.is_ascii_whitespace();
                    if clean {
                        out.push(byte);
                    }
                }
                self.segment.clear();
                self.virtual_lf = false;
                self.state = State::Epilogue { clean };
                Ok(false)
            }
        }
    }

    /// The delimiter line and the headers of a part (the segment starts with its delimiter).
    fn head(&mut self, out: &mut Vec<u8>) -> Result<bool, MultipartError> {
        let Some((_, after)) = self.find_delimiter(0) else {
            return Err(MultipartError::Malformed);
        };
        let Some(next_two) = self.segment.get(after..after + 2) else {
            return Ok(false);
        };
        if next_two == b"--" {
            out.extend_from_slice(
                self.unsent()
                    .get(..after + 2 - usize::from(self.virtual_lf))
                    .unwrap_or_default(),
            );
            self.consume(after + 2);
            self.state = State::Epilogue { clean: true };
            return Ok(true);
        }
        // The rest of the delimiter line is transport padding, then the header lines, then an
        // empty line.
        let mut line_start = after;
        let mut first = true;
        loop {
            let Some(lf) =
                memchr::memchr(b'\n', self.segment.get(line_start..).unwrap_or_default())
            else {
                return Ok(false);
            };
            let line_end = line_start + lf;
            let line = self.segment.get(line_start..line_end).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if first {
                if !line.iter().all(|b| matches!(b, b' ' | b'\t')) {
                    return Err(MultipartError::Malformed);
                }
                first = false;
                self.headers_at = line_end + 1;
            } else if line.is_empty() {
                self.body_at = line_end + 1;
                break;
            } else if line.starts_with(self.finder.needle().get(1..).unwrap_or_default()) {
                return Err(MultipartError::Malformed);
            }
            line_start = line_end + 1;
        }
        self.state = State::Body;
        self.scanner = Scanner::new(self.limits.max_depth);
        self.scanned = self.body_at;
        // An empty body puts the next delimiter's LF right at the end of the blank line.
        self.searched = self.body_at.saturating_sub(1) + self.needle_len();
        Ok(true)
    }

    fn body_is_blank(&self, end: usize) -> bool {
        self.segment
            .get(self.body_at..end)
            .unwrap_or_default()
            .iter()
            .all(u8::is_ascii_whitespace)
    }

    /// Reads the body until its JSON value ends, then sends the part.
    fn body(&mut self, out: &mut Vec<u8>, at_end: bool) -> Result<bool, MultipartError> {
        let from = self
            .searched
            .saturating_sub(self.needle_len())
            .max(self.body_at.saturating_sub(1));
        let found = self.find_delimiter(from);
        // Bytes that may still turn out to start a delimiter are not read yet.
        let limit = match found {
            Some((start, _)) => start,
            None if at_end => self.segment.len(),
            None => self.undecided_from().max(self.scanned),
        };
        self.searched = if found.is_some() {
            limit
        } else {
            self.segment.len()
        };
        if !self.scanner.has_started() {
            let body = self.segment.get(self.scanned..limit).unwrap_or_default();
            match body.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(at) if matches!(body.get(at), Some(b'{' | b'[')) => {}
                Some(_) => return Err(MultipartError::PartNotJson),
                None if found.is_some() => {
                    // An empty part: sent as it is.
                    out.extend_from_slice(
                        self.unsent()
                            .get(..limit - usize::from(self.virtual_lf))
                            .unwrap_or_default(),
                    );
                    self.consume(limit);
                    self.searched = 0;
                    self.state = State::Head;
                    return Ok(true);
                }
                None => return Ok(false),
            }
        }
        let input = self.segment.get(..limit).unwrap_or_default();
        let mut pos = self.scanned;
        let end = loop {
            match self.scanner.next(input, &mut pos) {
                Ok(Event::Open(_)) if self.scanner.depth() == 1 => self.scanner.skip_container(),
                Ok(Event::Skipped) => break Some(pos),
                Ok(Event::NeedMore) => break None,
                Ok(_) => {}
                Err(ScanError::TooDeep { max_depth }) => {
                    return Err(StreamError::TooDeep { max_depth }.into());
                }
                Err(ScanError::Malformed | ScanError::Truncated) => {
                    return Err(MultipartError::PartMalformed);
                }
            }
        };
        self.scanned = pos;
        let Some(end) = end else {
            if found.is_some() || at_end {
                return Err(MultipartError::Payload(StreamError::Truncated));
            }
            return Ok(false);
        };
        self.send_part(end, out)?;
        self.state = State::Tail;
        Ok(true)
    }

    /// Sends `segment[..end]`, a whole part whose body ends at `end`.
    fn send_part(&mut self, end: usize, out: &mut Vec<u8>) -> Result<(), MultipartError> {
        let skip = usize::from(self.virtual_lf);
        if end.saturating_sub(skip) > self.part_cap {
            return Err(MultipartError::PartTooLarge { cap: self.part_cap });
        }
        let body = self.segment.get(self.body_at..end).unwrap_or_default();
        // The body is a complete JSON value already; without an `errors` member anywhere (the
        // usual part) it is sent as is.
        if !may_hold_errors(body) {
            out.extend_from_slice(self.segment.get(skip..end).unwrap_or_default());
            self.consume(end);
            return Ok(());
        }
        let mut sanitiser =
            StreamSanitiser::new(self.settings.clone(), self.request_id.clone(), self.limits);
        let mut new_body = Vec::with_capacity(body.len());
        sanitiser.push(body, &mut new_body)?;
        let outcome = sanitiser.finish()?;
        if outcome == Streamed::Unchanged {
            out.extend_from_slice(self.segment.get(skip..end).unwrap_or_default());
        } else {
            self.outcome = self.outcome.max(outcome);
            out.extend_from_slice(self.segment.get(skip..self.headers_at).unwrap_or_default());
            let headers = self
                .segment
                .get(self.headers_at..self.body_at)
                .unwrap_or_default();
            for line in headers.split_inclusive(|b| *b == b'\n') {
                let name = line.split(|b| *b == b':').next().unwrap_or_default();
                if line.contains(&b':') && name.trim_ascii().eq_ignore_ascii_case(b"content-length")
                {
                    let ending: &[u8] = if line.ends_with(b"\r\n") {
                        b"\r\n"
                    } else {
                        b"\n"
                    };
                    out.extend_from_slice(format!("Content-Length: {}", new_body.len()).as_bytes());
                    out.extend_from_slice(ending);
                } else {
                    out.extend_from_slice(line);
                }
            }
            out.extend_from_slice(&new_body);
        }
        self.consume(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
