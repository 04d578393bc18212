//! Server-Sent Events and `multipart/mixed` through the firewall, in front of the demo backend:
//! an operation asking for a stream is inspected like any request, and the answer streams back
//! event by event (part by part), sanitised on the way, never held until it ends.

mod common;

use std::time::{Duration, Instant};

use common::{first_code, start, status_and_json};
use futures_util::StreamExt;
use serde_json::json;

/// A countdown whose events are `interval_ms` apart.
fn countdown(from: u32, interval_ms: u32) -> String {
    json!({"query": format!("subscription {{ countdown(from: {from}, intervalMs: {interval_ms}) }}")})
        .to_string()
}

/// Reads a streamed answer: (when the chunk holding `marker` arrived, when the stream ended, the
/// whole text), timed from `started`.
async fn read_stream(
    response: reqwest::Response,
    started: Instant,
    marker: &str,
) -> (Duration, Duration, String) {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut marker_at = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream moves within 10 s")
    {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if marker_at.is_none() && text.contains(marker) {
            marker_at = Some(started.elapsed());
        }
    }
    let marker_at = marker_at.unwrap_or_else(|| panic!("{marker} never arrived: {text}"));
    (marker_at, started.elapsed(), text)
}

#[tokio::test]
async fn sse_events_stream_through_the_firewall_before_the_stream_ends() {
    let harness = start(&[]).await;
    let started = Instant::now();
    let response = harness
        .post_json_with(&[("accept", "text/event-stream")], &countdown(3, 300))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (first, end, text) = read_stream(response, started, r#""countdown":3"#).await;
    assert!(
        end >= first + Duration::from_millis(600),
        "first event at {first:?}, end at {end:?}: held back"
    );
    for n in [3, 2, 1, 0] {
        assert!(
            text.contains(&format!(r#"{{"data":{{"countdown":{n}}}}}"#)),
            "{text}"
        );
    }
    assert!(text.ends_with("event: complete\ndata:\n\n"), "{text}");
}

#[tokio::test]
async fn multipart_parts_stream_through_the_firewall_before_the_stream_ends() {
    let harness = start(&[]).await;
    let started = Instant::now();
    let response = harness
        .post_json_with(
            &[(
                "accept",
                "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\", application/json",
            )],
            &countdown(3, 300),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/mixed")
    );
    let (first, end, text) = read_stream(response, started, r#""countdown":3"#).await;
    assert!(
        end >= first + Duration::from_millis(600),
        "first part at {first:?}, end at {end:?}: held back"
    );
    assert!(text.contains(r#"{"data":{"countdown":0}}"#), "{text}");
    assert!(text.ends_with("--graphql--\r\n"), "{text}");
}

#[tokio::test]
async fn a_streamed_operation_is_inspected_like_any_request() {
    let harness = start(&[]).await;
    for accept in [
        "text/event-stream",
        "multipart/mixed;subscriptionSpec=\"1.0\"",
    ] {
        let deep = "subscription { postAdded { author { posts { author { posts { author { posts { author { posts { author { posts { id } } } } } } } } } } } }";
        let response = harness
            .client
            .post(&harness.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(json!({ "query": deep }).to_string())
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 400, "{accept}: {body}");
        assert_eq!(first_code(&body), "DEPTH_LIMIT_EXCEEDED");
        let response = harness
            .client
            .post(&harness.url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(
                json!({"query": "subscription { __typename __schema { types { name } } }"})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 403, "{accept}: {body}");
        assert_eq!(first_code(&body), "INTROSPECTION_DISABLED");
    }
    assert_eq!(harness.upstream_requests(), 0);
}

#[tokio::test]
async fn a_suggestion_inside_an_sse_event_is_stripped() {
    // No schema: the misspelt field reaches the backend, whose error event suggests the name.
    let harness = start(&[]).await;
    let ask = |url: String| {
        harness
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(json!({"query": "subscription { countdwn(from: 1) }"}).to_string())
            .send()
    };
    let direct = ask(harness.backend().url().to_string()).await.unwrap();
    let direct = direct.text().await.unwrap();
    assert!(
        direct.contains("Did you mean"),
        "the backend suggests: {direct}"
    );
    let response = ask(harness.url.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(harness.upstream_requests(), 2);
    assert!(
        text.contains("countdwn"),
        "the error itself arrives: {text}"
    );
    assert!(!text.contains("Did you mean"), "{text}");
}

/// A GET through the firewall with the CSRF guard's preflight header and `accept`.
async fn get(harness: &common::Harness, accept: &str, query: &str) -> reqwest::Response {
    harness
        .client
        .get(&harness.url)
        .header("graphql-preflight", "1")
        .header("accept", accept)
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_over_get_streams_as_sse_and_a_mutation_still_needs_post() {
    let harness = start(&[]).await;
    let subscription = "subscription { countdown(from: 2, intervalMs: 0) }";
    let response = get(&harness, "text/event-stream", subscription).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"{"data":{"countdown":0}}"#), "{text}");
    assert!(text.ends_with("event: complete\ndata:\n\n"), "{text}");
    // Without asking for a stream, a GET stays queries-only; a mutation never goes over GET.
    let (status, body) =
        status_and_json(get(&harness, "application/json", subscription).await).await;
    assert_eq!((status, first_code(&body)), (405, "METHOD_NOT_ALLOWED"));
    let mutation = r#"mutation { createPost(authorId: "u1", title: "t", body: "b") { id } }"#;
    let (status, body) = status_and_json(get(&harness, "text/event-stream", mutation).await).await;
    assert_eq!((status, first_code(&body)), (405, "METHOD_NOT_ALLOWED"));
    let (status, body) = status_and_json(
        get(
            &harness,
            "text/event-stream;q=0, application/json",
            subscription,
        )
        .await,
    )
    .await;
    assert_eq!((status, first_code(&body)), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(harness.upstream_requests(), 1);
}
