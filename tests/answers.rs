//! What the upstream answers cannot switch sanitising off or take the firewall down: large,
//! endless, compressed, malformed and streamed answers, over real sockets.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use common::{Process, start_with_upstream};
use futures_util::StreamExt;
use tokio::net::TcpListener;

const QUERY: &str = r#"{"query":"{ users(first: 1) { id } }"}"#;
const TRACEBACK: &str = "Traceback (most recent call last):\\n  File \\\"/app/server/resolvers.py\\\", line 42, in resolve_user";
const SUGGESTION: &str =
    "Cannot query field \\\"nmae\\\" on type \\\"User\\\". Did you mean \\\"name\\\"?";

/// An upstream whose every answer is `answer()`.
async fn upstream<F>(answer: F) -> SocketAddr
where
    F: Fn() -> axum::response::Response + Clone + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { answer() }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn json(body: impl Into<Body>) -> axum::response::Response {
    let mut response = body.into().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"data":{"blob":"xxxx…"},"errors":[…]}` of about `size` bytes, in 64 KiB frames.
fn padded_answer(size: usize, errors: &'static str) -> Body {
    let head = Bytes::from_static(br#"{"data":{"blob":""#);
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let tail = Bytes::from(format!(r#""}},"errors":{errors}}}"#));
    let frames = (size / chunk.len()).max(1);
    let stream = futures_util::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(chunk, frames))
            .chain(std::iter::once(tail))
            .map(Ok::<_, std::io::Error>),
    );
    Body::from_stream(stream)
}

async fn post(url: &str) -> reqwest::Result<(u16, HeaderMap, Bytes)> {
    let response = common::client()
        .post(url)
        .header("content-type", "application/json")
        .body(QUERY)
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?))
}

#[tokio::test]
async fn a_stack_trace_in_a_9_mb_answer_is_masked_like_in_a_small_one() {
    let errors: &'static str = Box::leak(
        format!(r#"[{{"message":"{TRACEBACK}","extensions":{{"stacktrace":["{TRACEBACK}"]}}}}]"#)
            .into_boxed_str(),
    );
    let upstream = upstream(move || json(padded_answer(9 << 20, errors))).await;
    let harness = start_with_upstream(&format!("http://{upstream}/graphql"), &[]).await;
    let (status, _, body) = post(&harness.url).await.unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.len() > 9 << 20, "the data arrived whole");
    assert!(
        !text.contains("resolvers.py"),
        "{}",
        &text[text.len() - 400..]
    );
}

#[tokio::test]
async fn a_compressed_answer_past_the_errors_cap_loses_its_suggestion() {
    let body = format!(
        r#"{{"data":{{"blob":"{}"}},"errors":[{{"message":"{SUGGESTION}"}}]}}"#,
        "x".repeat(2 << 20)
    );
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body.as_bytes()).unwrap();
    let compressed = Bytes::from(encoder.finish().unwrap());
    let upstream = upstream(move || {
        let mut response = json(compressed.clone());
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    })
    .await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[("GRAPHQL_FIREWALL_SANITISE_MAX_BYTES", "64KiB")],
    )
    .await;
    let (status, headers, body) = post(&harness.url).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        headers.get(header::CONTENT_ENCODING).is_none(),
        "sent decoded"
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Cannot query field"));
    assert!(!text.contains("Did you mean"));
}

#[tokio::test]
async fn invalid_utf8_in_an_answer_does_not_let_its_errors_through() {
    // Bytes that are not UTF-8 inside the message: a sanitiser that needs text must not give up.
    let mut body = br#"{"errors":[{"message":"bad "#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(
        br#" bytes. Did you mean "name"?","extensions":{"exception":{"stacktrace":["at /app/x.js:1"]}}}]}"#,
    );
    let body = Bytes::from(body);
    let upstream = upstream(move || json(body.clone())).await;
    let harness = start_with_upstream(&format!("http://{upstream}/graphql"), &[]).await;
    let (status, _, body) = post(&harness.url).await.unwrap();
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("Did you mean") && !text.contains("/app/x.js"),
        "{text}"
    );
}

#[tokio::test]
async fn an_answer_declared_over_the_cap_is_refused_with_502() {
    let upstream = upstream(|| json(vec![b' '; 3 << 20])).await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[("GRAPHQL_FIREWALL_MAX_RESPONSE_BYTES", "1MiB")],
    )
    .await;
    let (status, _, body) = post(&harness.url).await.unwrap();
    assert_eq!(status, 502);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "RESPONSE_TOO_LARGE"
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_at_the_cap() {
    let upstream = upstream(|| {
        let endless = futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[b' '; 64 * 1024]))
        });
        json(Body::from_stream(
            futures_util::stream::once(async { Ok(Bytes::from_static(b"{\"data\":\"")) })
                .chain(endless),
        ))
    })
    .await;
    let harness = start_with_upstream(
        &format!("http://{upstream}/graphql"),
        &[("GRAPHQL_FIREWALL_MAX_RESPONSE_BYTES", "2MiB")],
    )
    .await;
    let outcome = tokio::time::timeout(Duration::from_secs(60), post(&harness.url))
        .await
        .expect("the firewall ends an endless answer");
    assert!(outcome.is_err(), "the answer is visibly incomplete");
    let metrics = common::scrape(&harness).await;
    assert_eq!(
        metrics[r#"graphql_firewall_responses_aborted_total{outcome="too_large"}"#],
        1.0
    );
}

#[tokio::test]
async fn the_first_event_of_a_stream_arrives_before_the_stream_ends() {
    let (release, released) = tokio::sync::watch::channel(false);
    let upstream = upstream(move || {
        let mut released = released.clone();
        let events = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(
                b"event: next\ndata: {\"data\":{\"n\":1}}\n\n",
            ))
        })
        .chain(futures_util::stream::once(async move {
            let _ = released.wait_for(|r| *r).await;
            Ok(Bytes::from_static(b"event: complete\ndata:\n\n"))
        }));
        let mut response = Body::from_stream(events).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        response
    })
    .await;
    let harness = start_with_upstream(&format!("http://{upstream}/graphql"), &[]).await;
    let response = common::client()
        .post(&harness.url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(QUERY)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the first event is not held back until the stream ends")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"n\":1"));
    release.send(true).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("event: complete"));
}

/// The resident memory of a process (`VmRSS`), in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc")
        * 1024
}

#[test]
fn a_gigabyte_answer_streams_through_in_bounded_memory() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(upstream(|| {
        json(padded_answer(
            1 << 30,
            r#"[{"message":"Unknown field. Did you mean \"id\"?"}]"#,
        ))
    }));
    let process = Process::start(
        &["serve"],
        &[
            (
                "GRAPHQL_FIREWALL_UPSTREAM_URL",
                &format!("http://{upstream}/graphql"),
            ),
            ("GRAPHQL_FIREWALL_MAX_RESPONSE_BYTES", "2GiB"),
            ("GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT", "5min"),
            ("GRAPHQL_FIREWALL_WORKERS", "1"),
        ],
    );
    let url = process.url();
    let (received, tail) = runtime.block_on(async move {
        let response = common::client()
            .post(url)
            .header("content-type", "application/json")
            .body(QUERY)
            .send()
            .await
            .unwrap();
        let mut stream = response.bytes_stream();
        let mut received = 0usize;
        let mut tail = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            received += chunk.len();
            tail.extend_from_slice(&chunk);
            let keep = tail.len().saturating_sub(256);
            tail.drain(..keep);
        }
        (received, tail)
    });
    assert!(received > 1 << 30, "the whole answer arrived: {received}");
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.contains("Unknown field") && !tail.contains("Did you mean"),
        "{tail}"
    );
    let peak = resident_bytes(process.pid());
    assert!(peak < 128 << 20, "peak resident memory {} MiB", peak >> 20);
}
