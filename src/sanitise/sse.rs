//! Sanitising a `text/event-stream` response event by event: each event whose data is a JSON
//! object or array is run through [`StreamSanitiser`] as one GraphQL response payload; comments,
//! heartbeats and events without JSON data pass unchanged, and each event is sent as soon as its
//! blank line arrives.
//!
//! # Threats
//! Subscriptions over SSE (graphql-sse's `next` events, in both its modes) carry execution results
//! with `errors`; a firewall that only sanitises `application/json` bodies would hand them through.
//!
//! # Framing (the WHATWG event-stream format)
//! Lines end with CRLF, LF or CR; an empty line ends an event; `data:` lines are joined with LF
//! (one space after the colon is not part of the value); lines starting with `:` are comments.
//! An event is held until its end, at most `event_cap` bytes ([`SseError::EventTooLarge`]). An
//! unchanged event is sent byte for byte. A rewritten one is sent as its other lines in order, with
//! its data as `data: ` lines in place of the first original one, every line ending with LF.
//! The bytes after the last blank line, which clients discard, are treated the same way at the end.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::sync::Arc;

use super::Settings;
use super::stream::{StreamError, StreamLimits, StreamSanitiser, Streamed, may_hold_errors};

/// Why an event stream was stopped. After any of these nothing more is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event is larger than {cap} bytes")]
    EventTooLarge { cap: usize },
    #[error("an event's JSON data: {0}")]
    Payload(#[from] StreamError),
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Sanitises one `text/event-stream` body pushed in chunks.
#[derive(Debug)]
pub struct SseSanitiser {
    settings: Arc<Settings>,
    request_id: Arc<str>,
    limits: StreamLimits,
    event_cap: usize,
    /// The raw bytes of the event being read, line ends included.
    event: Vec<u8>,
    /// Bytes of the current line so far.
    line_len: usize,
    /// The last byte read was a CR: an LF right after it ends the same line.
    after_cr: bool,
    /// The event just sent ended on a CR; its LF, if it comes, is sent only when the event was
    /// sent unchanged (a rewritten event already ended with LF).
    lf_pending: Option<bool>,
    first_event: bool,
    outcome: Streamed,
    failed: Option<SseError>,
}

impl SseSanitiser {
    pub fn new(
        settings: Arc<Settings>,
        request_id: Arc<str>,
        limits: StreamLimits,
        event_cap: usize,
    ) -> Self {
        Self {
            settings,
            request_id,
            limits,
            event_cap,
            event: Vec::new(),
            line_len: 0,
            after_cr: false,
            lf_pending: None,
            first_event: true,
            outcome: Streamed::Unchanged,
            failed: None,
        }
    }

    /// Reads `chunk`; appends every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.read(chunk, out);
        if let Err(error) = result {
            self.failed = Some(error);
            self.event = Vec::new();
        }
        result
    }

    /// The end of the stream: the bytes of an unfinished event are sanitised and sent as well.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Streamed, SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if !self.event.is_empty() {
            let event = std::mem::take(&mut self.event);
            self.dispatch(&event, false, out)?;
        }
        Ok(self.outcome)
    }

    fn read(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        let mut at = 0;
        while at < chunk.len() {
            if std::mem::take(&mut self.after_cr) && chunk.get(at) == Some(&b'\n') {
                match self.lf_pending.take() {
                    Some(true) => out.push(b'\n'),
                    Some(false) => {}
                    None => self.hold(b"\n")?,
                }
                at += 1;
                continue;
            }
            self.lf_pending = None;
            let rest = chunk.get(at..).unwrap_or_default();
            let Some(found) = memchr::memchr2(b'\r', b'\n', rest) else {
                self.hold(rest)?;
                self.line_len += rest.len();
                break;
            };
            self.hold(rest.get(..=found).unwrap_or_default())?;
            let blank = self.line_len + found == 0;
            self.line_len = 0;
            let cr = rest.get(found) == Some(&b'\r');
            self.after_cr = cr;
            at += found + 1;
            if blank {
                let event = std::mem::take(&mut self.event);
                let unchanged = self.dispatch(&event, true, out)?;
                if cr {
                    self.lf_pending = Some(unchanged);
                }
            }
        }
        Ok(())
    }

    fn hold(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.event.len().saturating_add(bytes.len()) > self.event_cap {
            return Err(SseError::EventTooLarge {
                cap: self.event_cap,
            });
        }
        self.event.extend_from_slice(bytes);
        Ok(())
    }

    /// Sends one event (`complete`: it ended with a blank line); whether it was sent unchanged.
    fn dispatch(
        &mut self,
        event: &[u8],
        complete: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, SseError> {
        let first = std::mem::replace(&mut self.first_event, false);
        let mark = if first && event.starts_with(BYTE_ORDER_MARK) {
            BYTE_ORDER_MARK.len()
        } else {
            0
        };
        let lines = lines(event.get(mark..).unwrap_or_default());
        let data = join_data(&lines);
        let Some(data) = data else {
            out.extend_from_slice(event);
            return Ok(true);
        };
        let first_significant = data.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n'));
        // Without an `errors` member anywhere (the usual `next` event) the event is sent as is.
        if !matches!(first_significant, Some(b'{' | b'[')) || !may_hold_errors(&data) {
            out.extend_from_slice(event);
            return Ok(true);
        }
        let mut sanitiser =
            StreamSanitiser::new(self.settings.clone(), self.request_id.clone(), self.limits);
        let mut rewritten = Vec::with_capacity(data.len());
        sanitiser.push(&data, &mut rewritten)?;
        let outcome = sanitiser.finish()?;
        if outcome == Streamed::Unchanged {
            out.extend_from_slice(event);
            return Ok(true);
        }
        self.outcome = self.outcome.max(outcome);
        out.extend_from_slice(event.get(..mark).unwrap_or_default());
        let mut data_written = false;
        for line in &lines {
            if data_value(line).is_none() {
                out.extend_from_slice(line);
                out.push(b'\n');
            } else if !std::mem::replace(&mut data_written, true) {
                for data_line in rewritten.split(|b| *b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(data_line);
                    out.push(b'\n');
                }
            }
        }
        if complete {
            out.push(b'\n');
        }
        Ok(false)
    }
}

/// The lines of an event, without their line ends (the blank line that ends it is not one).
fn lines(event: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = event;
    while !rest.is_empty() {
        let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        let mut tail = tail;
        if tail.starts_with(b"\r\n") {
            tail = tail.get(2..).unwrap_or_default();
        } else if !tail.is_empty() {
            tail = tail.get(1..).unwrap_or_default();
        }
        if !line.is_empty() {
            lines.push(line);
        }
        rest = tail;
    }
    lines
}

/// The value of a `data` field line (`data` alone has an empty value).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data")?;
    if value.is_empty() {
        return Some(value);
    }
    let value = value.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// The event's data: its `data` values joined with LF, `None` when it has none.
fn join_data(lines: &[&[u8]]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for value in lines.iter().filter_map(|line| data_value(line)) {
        let data = data.get_or_insert_with(Vec::new);
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    data.map(|mut data| {
        data.pop();
        data
    })
}

#[cfg(test)]
mod tests;
