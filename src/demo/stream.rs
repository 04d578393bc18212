//! The demo backend's streamed HTTP answers: GraphQL over Server-Sent Events (the graphql-sse
//! protocol's distinct-connections mode) and `multipart/mixed` (Apollo's multipart subscription
//! protocol, as async-graphql implements it), chosen by the request's `Accept`.
//!
//! Any operation may stream: a query or mutation gives one result, a subscription one per event.
//! Errors found before execution (validation) arrive as a result like any other, as graphql-sse
//! requires, so a streaming client always gets a `200` and reads the errors from the stream.

use std::time::Duration;

use async_graphql::Response as GraphqlResponse;
use async_graphql::http::{create_multipart_mixed_stream, is_accept_multipart_mixed};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{BoxStream, StreamExt};

/// Both streams send a heartbeat this often when there is nothing else to send, so that
/// intermediaries do not close a quiet subscription.
pub const HEARTBEAT: Duration = Duration::from_secs(12);

/// The `Content-Type` of a multipart answer.
pub const MULTIPART_CONTENT_TYPE: &str =
    "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"";

/// How a request asked for its results to be streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// `Accept: text/event-stream`: `event: next` per result, then `event: complete`.
    Sse,
    /// `Accept: multipart/mixed;boundary="graphql";subscriptionSpec="1.0"`: one part per result.
    Multipart,
}

impl Streaming {
    /// The streaming form `Accept` asks for, if any (SSE wins when both are listed).
    pub fn from_accept(headers: &HeaderMap) -> Option<Streaming> {
        let accept: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let names_sse = accept
            .iter()
            .flat_map(|value| value.split(','))
            .any(|range| {
                range
                    .split(';')
                    .next()
                    .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
            });
        if names_sse {
            Some(Streaming::Sse)
        } else if accept.iter().any(|value| is_accept_multipart_mixed(value)) {
            Some(Streaming::Multipart)
        } else {
            None
        }
    }

    /// Streams `results` back in this form.
    pub fn respond(self, results: BoxStream<'static, GraphqlResponse>) -> Response {
        let (content_type, body) = match self {
            Streaming::Sse => ("text/event-stream", Body::from_stream(sse(results))),
            Streaming::Multipart => (
                MULTIPART_CONTENT_TYPE,
                Body::from_stream(
                    create_multipart_mixed_stream(results, HEARTBEAT)
                        .map(Ok::<Bytes, std::convert::Infallible>),
                ),
            ),
        };
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// `event: next` per result and `event: complete` at the end, with a comment line as heartbeat.
fn sse(
    results: BoxStream<'static, GraphqlResponse>,
) -> BoxStream<'static, Result<Bytes, std::convert::Infallible>> {
    struct State {
        results: Option<BoxStream<'static, GraphqlResponse>>,
        heartbeat: tokio::time::Interval,
    }
    // The first heartbeat is due one period in: a fresh stream starts with its first result.
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        results: Some(results),
        heartbeat,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let results = state.results.as_mut()?;
        let event = tokio::select! {
            result = results.next() => match result {
                Some(result) => match serde_json::to_string(&result) {
                    Ok(json) => format!("event: next\ndata: {json}\n\n"),
                    Err(_) => ": a result could not be serialised\n\n".to_owned(),
                },
                None => {
                    state.results = None;
                    "event: complete\ndata:\n\n".to_owned()
                }
            },
            _ = state.heartbeat.tick() => ":\n\n".to_owned(),
        };
        Some((Ok(Bytes::from(event)), state))
    })
    .boxed()
}
