//! Response hardening at the HTTP edge: the upstream's answer is bounded (`MAX_RESPONSE_BYTES`),
//! decoded when it is compressed, and its GraphQL errors are sanitised by [`crate::sanitise`]
//! while it streams — a JSON body, each event of a `text/event-stream`, each part of a
//! `multipart/mixed` — without holding more than one `errors` member (or event, or part).
//!
//! # Threats
//! Sanitising must not be something a large or odd answer switches off. A client who can make the
//! backend answer 9 MB must not receive the stack trace that a small answer would have lost; a
//! compressed answer must not slip through still compressed; bytes that are not valid UTF-8 must
//! not make a body "not JSON" and pass. So nothing here depends on size but the hard cap: a body
//! over `MAX_RESPONSE_BYTES` is refused (502 `RESPONSE_TOO_LARGE`) when that is known before the
//! head is sent, and cut off (the connection aborted) when it is found later; an `errors` member
//! over `SANITISE_MAX_BYTES` is masked or refused (`SANITISE_OVERFLOW`), never passed; a GraphQL
//! media type that is not valid JSON, or compressed with an encoding we cannot decode, is refused
//! or cut off; and the upstream's answer never makes the firewall hold it whole.
//!
//! # Small answers
//! An answer whose length is declared and small (the common case) is read whole first: an answer
//! in which no `errors` key can occur is sent byte for byte with its own headers (one SIMD scan),
//! and a rewritten one gets its exact `Content-Length`. Streamed answers lose `Content-Length`,
//! validators and digests, which no longer describe what the client receives.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};
use tokio_util::io::{ReaderStream, StreamReader};

use super::guard::media_type;
use crate::analysis::{ActualCost, ActualCostError};
use crate::metrics::{Metrics, count};
use crate::sanitise::multipart::{MultipartError, MultipartSanitiser};
use crate::sanitise::sse::{SseError, SseSanitiser};
use crate::sanitise::stream::{
    StreamError, StreamLimits, StreamSanitiser, Streamed, may_hold_errors,
};
use crate::sanitise::{self, MaskMode};

/// An answer's body as it comes from the upstream ([`crate::upstream::ResponseBody`]).
pub trait UpstreamBody:
    http_body::Body<Data = Bytes, Error: std::error::Error + Send + Sync + 'static> + Send + 'static
{
}

impl<B> UpstreamBody for B where
    B: http_body::Body<Data = Bytes, Error: std::error::Error + Send + Sync + 'static>
        + Send
        + 'static
{
}

/// The answer's actual cost, measured on the bytes the client receives (a JSON answer to one
/// operation), and what to do with it once known: `report` is called once, when the whole answer
/// has been read (before `harden` returns for an answer read whole, when the body ends for a
/// streamed one; never for an answer cut off).
pub struct Metering {
    pub meter: ActualCost,
    pub report: Box<dyn FnOnce(Result<u64, ActualCostError>) + Send>,
}

/// Settings of the hardening stage.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules: Arc<sanitise::Settings>,
    /// Largest answer, decoded (`MAX_RESPONSE_BYTES`).
    pub max_response_bytes: u64,
    /// The `errors` cap, nesting bound and overflow rule; `errors_cap` also bounds one SSE event
    /// or multipart part.
    pub limits: StreamLimits,
    /// An answer's body must arrive within this (a stream's next frame, for event streams).
    pub body_timeout: Duration,
}

/// Answers up to this size, declared by `Content-Length`, are read whole before the head is sent.
const READ_WHOLE_BYTES: u64 = 64 * 1024;

/// What happened to one answer (for logs and metrics: `graphql_firewall_responses_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardened {
    /// Read whole; nothing to change: the original bytes were sent.
    Unchanged,
    /// Read whole; errors were rewritten.
    Rewritten,
    /// Read whole; an `errors` member could not be inspected and was replaced by a generic error.
    Masked,
    /// Sent as it streamed, sanitised on the way (its outcome is counted when it ends).
    Streamed,
    /// Not a GraphQL media type, or sanitising is off: passed through, bounded.
    Passed,
}

impl Hardened {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Hardened::Unchanged => "unchanged",
            Hardened::Rewritten => "rewritten",
            Hardened::Masked => "masked",
            Hardened::Streamed => "streamed",
            Hardened::Passed => "passed",
        }
    }
}

/// Why an answer cannot be sent (its head has not been sent yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HardenError {
    #[error("the upstream's answer is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// A GraphQL media type whose body cannot be decoded or is not valid JSON, or an answer that
    /// broke off: it cannot be inspected, so it is not sent.
    #[error("the upstream's answer could not be read")]
    Unreadable,
    #[error("the upstream did not send its answer in time")]
    Timeout,
}

/// How the answer's body is sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Json,
    EventStream,
    Multipart(String),
    /// Not a GraphQL media type.
    Other,
}

fn kind(headers: &HeaderMap) -> Kind {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Kind::Other;
    };
    let essence = media_type(content_type).to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Kind::Json,
        "text/event-stream" => Kind::EventStream,
        "multipart/mixed" => Kind::Multipart(content_type.to_owned()),
        _ if essence.ends_with("+json") => Kind::Json,
        _ => Kind::Other,
    }
}

/// A `Content-Encoding` we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// The answer's encoding; `None` for one we cannot decode (several, or an unknown one).
fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Some(Encoding::Identity);
    };
    if values.next().is_some() {
        return None;
    }
    match value.to_str().ok()?.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Some(Encoding::Identity),
        "gzip" | "x-gzip" => Some(Encoding::Gzip),
        "deflate" => Some(Encoding::Deflate),
        "br" => Some(Encoding::Brotli),
        "zstd" => Some(Encoding::Zstd),
        _ => None,
    }
}

/// Hardens the answer whose head is `headers` and whose body is `body`: the body to send (the
/// headers adjusted to it), or the reason no answer can be sent.
pub async fn harden<B>(
    settings: &Arc<Settings>,
    metrics: &Arc<Metrics>,
    headers: &mut HeaderMap,
    body: B,
    request_id: &Arc<str>,
    metering: Option<Metering>,
) -> Result<(Body, Hardened), HardenError>
where
    B: UpstreamBody,
{
    let kind = kind(headers);
    let encoding = encoding(headers);
    // The upstream's `Content-Length` (hop-by-hop handling drops the header, the body keeps it).
    let declared = body.size_hint().exact();
    let limit = settings.max_response_bytes;
    if encoding == Some(Encoding::Identity) && declared.is_some_and(|length| length > limit) {
        return Err(HardenError::TooLarge { limit });
    }
    let rules = &settings.rules;
    let sanitising = rules.block_suggestions || rules.mask != MaskMode::Off;
    if kind == Kind::Other || !sanitising {
        // Nothing GraphQL to look at: passed through as it comes, bounded in size and time.
        let mut stream = Bounded::new(raw_frames(body), settings, deadline_kind(&kind), metrics);
        stream.metering =
            metering.filter(|_| kind == Kind::Json && encoding == Some(Encoding::Identity));
        return Ok((Body::new(stream), Hardened::Passed));
    }
    let Some(encoding) = encoding else {
        return Err(HardenError::Unreadable);
    };
    if kind == Kind::Json && declared.is_some_and(|length| length <= READ_WHOLE_BYTES) {
        return read_whole(settings, headers, body, encoding, request_id, metering).await;
    }
    let sanitiser = match &kind {
        Kind::Json => Sanitiser::Json(Box::new(StreamSanitiser::new(
            rules.clone(),
            request_id.clone(),
            settings.limits,
        ))),
        Kind::EventStream => Sanitiser::Sse(Box::new(SseSanitiser::new(
            rules.clone(),
            request_id.clone(),
            settings.limits,
            settings.limits.errors_cap,
        ))),
        Kind::Multipart(content_type) => Sanitiser::Multipart(Box::new(
            MultipartSanitiser::new(
                content_type,
                rules.clone(),
                request_id.clone(),
                settings.limits,
                settings.limits.errors_cap,
            )
            .map_err(|_| HardenError::Unreadable)?,
        )),
        Kind::Other => Sanitiser::None,
    };
    streamed_headers(headers, encoding != Encoding::Identity);
    let mut stream = Bounded::new(
        decoded(body, encoding),
        settings,
        deadline_kind(&kind),
        metrics,
    );
    stream.sanitiser = sanitiser;
    // Only a JSON answer is one result; an event stream's results are not metered.
    stream.metering = metering.filter(|_| kind == Kind::Json);
    Ok((Body::new(stream), Hardened::Streamed))
}

/// Reads a small JSON answer whole (its declared length fits [`READ_WHOLE_BYTES`]) and sanitises
/// it in one pass.
async fn read_whole(
    settings: &Settings,
    headers: &mut HeaderMap,
    body: impl UpstreamBody,
    encoding: Encoding,
    request_id: &Arc<str>,
    metering: Option<Metering>,
) -> Result<(Body, Hardened), HardenError> {
    let read = body.collect();
    let original = tokio::time::timeout(settings.body_timeout, read)
        .await
        .map_err(|_| HardenError::Timeout)?
        .map_err(|_| HardenError::Unreadable)?
        .to_bytes();
    let decoded = match encoding {
        Encoding::Identity => original.clone(),
        _ => {
            let mut decoded = Vec::new();
            let mut frames = decoded_frames(
                futures_util::stream::iter([Ok::<_, io::Error>(original.clone())]),
                encoding,
            );
            while let Some(chunk) = frames.next().await {
                let chunk = chunk.map_err(|_| HardenError::Unreadable)?;
                decoded.extend_from_slice(&chunk);
                if decoded.len() as u64 > settings.max_response_bytes {
                    return Err(HardenError::TooLarge {
                        limit: settings.max_response_bytes,
                    });
                }
            }
            Bytes::from(decoded)
        }
    };
    if !starts_like_json(&decoded) {
        return Err(HardenError::Unreadable);
    }
    if let Some(Metering { meter, report }) = metering {
        report(meter.measure(&decoded));
    }
    if !may_hold_errors(&decoded) {
        return Ok((Body::from(original), Hardened::Unchanged));
    }
    let mut sanitiser =
        StreamSanitiser::new(settings.rules.clone(), request_id.clone(), settings.limits);
    let mut out = Vec::with_capacity(decoded.len());
    sanitiser
        .push(&decoded, &mut out)
        .map_err(|_| HardenError::Unreadable)?;
    let outcome = sanitiser.finish().map_err(|_| HardenError::Unreadable)?;
    if outcome == Streamed::Unchanged {
        return Ok((Body::from(original), Hardened::Unchanged));
    }
    rewritten_headers(headers, encoding != Encoding::Identity);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    let hardened = match outcome {
        Streamed::Masked => Hardened::Masked,
        _ => Hardened::Rewritten,
    };
    Ok((Body::from(out), hardened))
}

/// An empty body, or one whose first significant byte opens an object or an array (what the
/// streaming sanitiser would accept): anything else under a JSON media type is not sent, even
/// when no `errors` key occurs in it (an error page labelled JSON carries its own internals).
fn starts_like_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(first) => matches!(first, b'{' | b'['),
    }
}

/// Headers that describe the upstream's exact bytes, which a rewritten body no longer is.
const REPRESENTATION_HEADERS: [header::HeaderName; 4] = [
    header::ETAG,
    header::ACCEPT_RANGES,
    header::HeaderName::from_static("content-md5"),
    header::HeaderName::from_static("digest"),
];

fn rewritten_headers(headers: &mut HeaderMap, decoded: bool) {
    for name in REPRESENTATION_HEADERS {
        headers.remove(name);
    }
    headers.remove("content-digest");
    headers.remove("repr-digest");
    if decoded {
        headers.remove(header::CONTENT_ENCODING);
    }
}

fn streamed_headers(headers: &mut HeaderMap, decoded: bool) {
    rewritten_headers(headers, decoded);
    headers.remove(header::CONTENT_LENGTH);
}

/// How the body's time limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// The whole body within the timeout.
    Whole,
    /// Each frame within the timeout of the previous one (event streams live long).
    PerFrame,
}

fn deadline_kind(kind: &Kind) -> Deadline {
    match kind {
        Kind::EventStream | Kind::Multipart(_) => Deadline::PerFrame,
        Kind::Json | Kind::Other => Deadline::Whole,
    }
}

type Frames = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

fn raw_frames(body: impl UpstreamBody) -> Frames {
    Box::pin(
        body.into_data_stream()
            .map_err(|_| io::Error::other("upstream broke off")),
    )
}

fn decoded(body: impl UpstreamBody, encoding: Encoding) -> Frames {
    decoded_frames(raw_frames(body), encoding)
}

fn decoded_frames(
    frames: impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    encoding: Encoding,
) -> Frames {
    if encoding == Encoding::Identity {
        return Box::pin(frames);
    }
    let reader = StreamReader::new(frames);
    match encoding {
        Encoding::Identity => Box::pin(ReaderStream::new(reader)),
        Encoding::Gzip => Box::pin(ReaderStream::new(GzipDecoder::new(reader))),
        Encoding::Deflate => Box::pin(ReaderStream::new(ZlibDecoder::new(reader))),
        Encoding::Brotli => Box::pin(ReaderStream::new(BrotliDecoder::new(reader))),
        Encoding::Zstd => Box::pin(ReaderStream::new(ZstdDecoder::new(reader))),
    }
}

/// The sanitiser of a streamed body (boxed: one allocation per streamed answer).
enum Sanitiser {
    None,
    Json(Box<StreamSanitiser>),
    Sse(Box<SseSanitiser>),
    Multipart(Box<MultipartSanitiser>),
}

/// Why a streamed body was cut off (`graphql_firewall_responses_aborted_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    TooLarge,
    Timeout,
    Upstream,
    Unreadable,
}

impl Abort {
    fn as_str(self) -> &'static str {
        match self {
            Abort::TooLarge => "too_large",
            Abort::Timeout => "timeout",
            Abort::Upstream => "upstream",
            Abort::Unreadable => "unreadable",
        }
    }
}

impl From<StreamError> for Abort {
    fn from(error: StreamError) -> Abort {
        match error {
            StreamError::ErrorsTooLarge { .. } | StreamError::TooDeep { .. } => Abort::TooLarge,
            _ => Abort::Unreadable,
        }
    }
}

impl From<SseError> for Abort {
    fn from(error: SseError) -> Abort {
        match error {
            SseError::EventTooLarge { .. } => Abort::TooLarge,
            SseError::Payload(error) => error.into(),
        }
    }
}

impl From<MultipartError> for Abort {
    fn from(error: MultipartError) -> Abort {
        match error {
            MultipartError::PartTooLarge { .. } => Abort::TooLarge,
            MultipartError::Payload(error) => error.into(),
            _ => Abort::Unreadable,
        }
    }
}

/// A streamed answer: bounded in bytes and time, sanitised frame by frame. An error ends the
/// body with an error, so the server aborts the connection instead of ending the answer cleanly:
/// what the client got is then visibly incomplete, and holds no unsanitised `errors`.
struct Bounded {
    frames: Frames,
    sanitiser: Sanitiser,
    out: Vec<u8>,
    sent: u64,
    limit: u64,
    timeout: Duration,
    deadline: Deadline,
    timer: Pin<Box<Sleep>>,
    metrics: Arc<Metrics>,
    metering: Option<Metering>,
    done: bool,
}

impl Bounded {
    fn new(
        frames: Frames,
        settings: &Settings,
        deadline: Deadline,
        metrics: &Arc<Metrics>,
    ) -> Bounded {
        Bounded {
            frames,
            sanitiser: Sanitiser::None,
            out: Vec::new(),
            sent: 0,
            limit: settings.max_response_bytes,
            timeout: settings.body_timeout,
            deadline,
            timer: Box::pin(tokio::time::sleep(settings.body_timeout)),
            metrics: metrics.clone(),
            metering: None,
            done: false,
        }
    }

    fn abort(&mut self, reason: Abort) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.done = true;
        count(&self.metrics.responses_aborted, reason.as_str());
        Poll::Ready(Some(Err(io::Error::other(reason.as_str()))))
    }

    /// Sanitises `chunk` into `self.out`.
    fn push(&mut self, chunk: &[u8]) -> Result<(), Abort> {
        self.out.clear();
        match &mut self.sanitiser {
            Sanitiser::None => Ok(()),
            Sanitiser::Json(s) => s.push(chunk, &mut self.out).map_err(Abort::from),
            Sanitiser::Sse(s) => s.push(chunk, &mut self.out).map_err(Abort::from),
            Sanitiser::Multipart(s) => s.push(chunk, &mut self.out).map_err(Abort::from),
        }
    }

    /// The end of the upstream's body: what the sanitiser still holds, and its outcome.
    fn finish(&mut self) -> Result<Hardened, Abort> {
        self.out.clear();
        let outcome = match std::mem::replace(&mut self.sanitiser, Sanitiser::None) {
            Sanitiser::None => return Ok(Hardened::Passed),
            Sanitiser::Json(s) => s.finish().map_err(Abort::from)?,
            Sanitiser::Sse(s) => s.finish(&mut self.out).map_err(Abort::from)?,
            Sanitiser::Multipart(s) => s.finish(&mut self.out).map_err(Abort::from)?,
        };
        Ok(match outcome {
            Streamed::Unchanged => Hardened::Unchanged,
            Streamed::Rewritten => Hardened::Rewritten,
            Streamed::Masked => Hardened::Masked,
        })
    }
}

impl http_body::Body for Bounded {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let chunk = match self.frames.poll_next_unpin(cx) {
                Poll::Pending => {
                    if self.timer.as_mut().poll(cx).is_ready() {
                        return self.abort(Abort::Timeout);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(_))) => return self.abort(Abort::Upstream),
                Poll::Ready(Some(Ok(chunk))) => chunk,
                Poll::Ready(None) => {
                    return match self.finish() {
                        Err(reason) => self.abort(reason),
                        Ok(outcome) => {
                            self.done = true;
                            count(&self.metrics.responses_streamed, outcome.as_str());
                            if let Some(Metering { meter, report }) = self.metering.take() {
                                report(meter.finish());
                            }
                            let rest = std::mem::take(&mut self.out);
                            if rest.is_empty() {
                                Poll::Ready(None)
                            } else {
                                Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))))
                            }
                        }
                    };
                }
            };
            self.sent = self.sent.saturating_add(chunk.len() as u64);
            if self.sent > self.limit {
                return self.abort(Abort::TooLarge);
            }
            if self.deadline == Deadline::PerFrame {
                let next = Instant::now() + self.timeout;
                self.timer.as_mut().reset(next);
            }
            if let Some(metering) = &mut self.metering {
                metering.meter.push(&chunk);
            }
            if matches!(self.sanitiser, Sanitiser::None) {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if let Err(reason) = self.push(&chunk) {
                return self.abort(reason);
            }
            if !self.out.is_empty() {
                let out = Bytes::from(std::mem::take(&mut self.out));
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }
}

#[cfg(test)]
mod tests;
