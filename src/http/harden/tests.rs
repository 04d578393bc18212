//! The hardening stage on bodies built here: read whole or streamed, compressed or not, over the
//! caps, and bodies that are not what their media type says.

use std::io::Write;

use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};

use super::*;
use crate::sanitise::stream::OnOverflow;

const SUGGESTION: &str = r#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"}]}"#;

fn settings(max_response_bytes: u64, errors_cap: usize) -> Arc<Settings> {
    Arc::new(Settings {
        rules: Arc::new(sanitise::Settings::default()),
        max_response_bytes,
        limits: StreamLimits {
            errors_cap,
            max_depth: 64,
            on_overflow: OnOverflow::Mask,
        },
        body_timeout: Duration::from_secs(5),
    })
}

fn headers(content_type: &'static str, length: Option<usize>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
    // The upstream's length travels with its body (`Full`'s exact size), not as a header.
    let _ = length;
    headers
}

fn id() -> Arc<str> {
    Arc::from("req-1")
}

/// A body that arrives in `chunks` frames, without a declared length.
fn chunked(
    chunks: Vec<Vec<u8>>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Send + 'static>
{
    StreamBody::new(stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, io::Error>(Frame::data(Bytes::from(c)))),
    ))
}

async fn run(
    settings: &Arc<Settings>,
    headers: &mut HeaderMap,
    body: impl UpstreamBody,
) -> Result<(Result<Bytes, String>, Hardened), HardenError> {
    let metrics = Arc::new(Metrics::new());
    let (body, hardened) = harden(settings, &metrics, headers, body, &id(), None).await?;
    let collected = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string());
    Ok((collected, hardened))
}

#[tokio::test]
async fn a_small_answer_with_a_suggestion_is_rewritten_with_its_exact_length() {
    let mut headers = headers("application/json", Some(SUGGESTION.len()));
    let (body, hardened) = run(
        &settings(1 << 20, 1 << 20),
        &mut headers,
        Full::new(Bytes::from(SUGGESTION)),
    )
    .await
    .unwrap();
    let body = body.unwrap();
    assert_eq!(hardened, Hardened::Rewritten);
    assert!(!String::from_utf8_lossy(&body).contains("Did you mean"));
    assert_eq!(headers[header::CONTENT_LENGTH], body.len().to_string());
    assert!(headers.get(header::ETAG).is_none());
}

#[tokio::test]
async fn a_small_answer_without_errors_keeps_its_bytes_and_headers() {
    let original = r#"{"data":{"a":1}}"#;
    let mut headers = headers("application/graphql-response+json", Some(original.len()));
    let (body, hardened) = run(
        &settings(1 << 20, 1 << 20),
        &mut headers,
        Full::new(Bytes::from(original)),
    )
    .await
    .unwrap();
    assert_eq!(hardened, Hardened::Unchanged);
    assert_eq!(body.unwrap(), original);
    assert!(headers.get(header::ETAG).is_some());
}

#[tokio::test]
async fn a_gzip_answer_is_decoded_sanitised_and_sent_as_identity() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(SUGGESTION.as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    for declared in [Some(compressed.len()), None] {
        let mut headers = headers("application/json", declared);
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let body = chunked(vec![compressed.clone()]);
        let (body, _) = run(&settings(1 << 20, 1 << 20), &mut headers, body)
            .await
            .unwrap();
        let body = body.unwrap();
        assert!(
            headers.get(header::CONTENT_ENCODING).is_none(),
            "{declared:?}"
        );
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("Cannot query field") && !text.contains("Did you mean"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_large_streamed_answer_is_sanitised_whatever_its_size() {
    // Far larger than the errors cap: size switches nothing off, the errors member is what counts.
    let data = format!(r#"{{"data":{{"blob":"{}"}},"#, "x".repeat(300_000));
    let errors = r#""errors":[{"message":"boom","extensions":{"stacktrace":["at /app/src/resolver.py:12"]}},{"message":"Unknown field. Did you mean \"name\"?"}]}"#;
    let chunks: Vec<Vec<u8>> = format!("{data}{errors}")
        .into_bytes()
        .chunks(4096)
        .map(<[u8]>::to_vec)
        .collect();
    let mut headers = headers("application/json", None);
    let (body, hardened) = run(&settings(1 << 20, 1024), &mut headers, chunked(chunks))
        .await
        .unwrap();
    assert_eq!(hardened, Hardened::Streamed);
    let text = String::from_utf8(body.unwrap().to_vec()).unwrap();
    assert!(text.starts_with(&data));
    assert!(
        !text.contains("Did you mean") && !text.contains("/app/src"),
        "{}",
        &text[data.len()..]
    );
    assert!(headers.get(header::CONTENT_LENGTH).is_none());
}

#[tokio::test]
async fn an_errors_member_over_the_cap_is_masked_not_passed() {
    let secret = "Traceback (most recent call last): File \"/app/server.py\"";
    let body = format!(
        r#"{{"errors":[{{"message":"{secret} {}"}}],"data":null}}"#,
        "y".repeat(5_000)
    );
    let mut headers = headers("application/json", None);
    let (body, _) = run(
        &settings(1 << 20, 1024),
        &mut headers,
        chunked(vec![body.into_bytes()]),
    )
    .await
    .unwrap();
    let text = String::from_utf8(body.unwrap().to_vec()).unwrap();
    assert!(!text.contains("Traceback"), "{text}");
    assert!(
        text.contains("req-1"),
        "the generic error names the request: {text}"
    );
}

#[tokio::test]
async fn over_the_response_cap_a_declared_answer_is_refused_and_a_streamed_one_cut_off() {
    let mut declared = headers("application/json", None);
    let refused = run(
        &settings(1 << 20, 1024),
        &mut declared,
        Full::new(Bytes::from(vec![b' '; 2_000_000])),
    )
    .await;
    assert_eq!(
        refused.unwrap_err(),
        HardenError::TooLarge { limit: 1 << 20 }
    );
    let big = vec![vec![b' '; 600_000], vec![b' '; 600_000]];
    let mut streamed = headers("application/json", None);
    let (body, _) = run(&settings(1 << 20, 1024), &mut streamed, chunked(big))
        .await
        .unwrap();
    assert!(
        body.is_err(),
        "the body ends with an error: the connection is aborted"
    );
}

#[tokio::test]
async fn a_graphql_answer_that_is_not_json_is_not_sent() {
    let page = "<html>Internal Server Error at /app/main.py:7</html>";
    let mut small = headers("application/json", Some(page.len()));
    assert_eq!(
        run(
            &settings(1 << 20, 1024),
            &mut small,
            Full::new(Bytes::from(page))
        )
        .await
        .unwrap_err(),
        HardenError::Unreadable
    );
    let mut streamed = headers("application/json", None);
    let (body, _) = run(
        &settings(1 << 20, 1024),
        &mut streamed,
        chunked(vec![page.into()]),
    )
    .await
    .unwrap();
    assert!(body.is_err());
}

#[tokio::test]
async fn an_encoding_we_cannot_decode_is_refused_for_graphql_and_passed_otherwise() {
    let mut json = headers("application/json", None);
    json.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("compress"),
    );
    assert_eq!(
        run(
            &settings(1 << 20, 1024),
            &mut json,
            chunked(vec![b"xx".to_vec()])
        )
        .await
        .unwrap_err(),
        HardenError::Unreadable
    );
    let mut image = headers("image/png", Some(4));
    image.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("compress"),
    );
    let (body, hardened) = run(
        &settings(1 << 20, 1024),
        &mut image,
        Full::new(Bytes::from_static(b"\x89PNG")),
    )
    .await
    .unwrap();
    assert_eq!(hardened, Hardened::Passed);
    assert_eq!(body.unwrap(), &b"\x89PNG"[..]);
}

#[tokio::test]
async fn each_event_of_a_stream_is_sanitised_as_it_comes() {
    let events = vec![
        b": heartbeat\n\n".to_vec(),
        b"event: next\ndata: {\"data\":{\"n\":1}}\n\n".to_vec(),
        b"event: next\ndata: {\"errors\":[{\"message\":\"x. Did you mean \\\"y\\\"?\"}]}\n\n"
            .to_vec(),
    ];
    let mut headers = headers("text/event-stream", None);
    let (body, hardened) = run(&settings(1 << 20, 1024), &mut headers, chunked(events))
        .await
        .unwrap();
    assert_eq!(hardened, Hardened::Streamed);
    let text = String::from_utf8(body.unwrap().to_vec()).unwrap();
    assert!(
        text.contains(": heartbeat") && text.contains("\"n\":1"),
        "{text}"
    );
    assert!(!text.contains("Did you mean"), "{text}");
}
