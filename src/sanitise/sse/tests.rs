//! Event streams cut everywhere: graphql-sse events, comments, CR/LF/CRLF line ends, caps.

use std::sync::Arc;

use super::*;
use crate::sanitise::stream::OnOverflow;

const SUGGESTION: &str = r#"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"#;
const CLEAN: &str = r#"Cannot query field \"nmae\" on type \"User\"."#;

fn limits() -> StreamLimits {
    StreamLimits {
        errors_cap: 1 << 16,
        max_depth: 64,
        on_overflow: OnOverflow::Mask,
    }
}

/// Streams `body` cut at `cuts` with an event cap of `cap`: the bytes sent, how it ended, and the
/// bytes sent before the last chunk (to check when events are released).
fn run(body: &[u8], cuts: &[usize], cap: usize) -> (Vec<u8>, Result<Streamed, SseError>) {
    let settings = Settings::default();
    let mut sanitiser = SseSanitiser::new(
        Arc::new(settings.clone()),
        Arc::from("req-1"),
        limits(),
        cap,
    );
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        if let Err(error) = sanitiser.push(&body[from..cut], &mut out) {
            return (out, Err(error));
        }
        from = cut;
    }
    let outcome = sanitiser.finish(&mut out);
    (out, outcome)
}

fn assert_every_chunking(body: &str, expected: &str, outcome: Streamed) {
    for cut in 0..=body.len() {
        let (out, result) = run(body.as_bytes(), &[cut], 4096);
        assert_eq!(
            (String::from_utf8_lossy(&out).into_owned(), result),
            (expected.to_owned(), Ok(outcome)),
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (0..body.len()).collect();
    let (out, result) = run(body.as_bytes(), &every, 4096);
    assert_eq!(
        (String::from_utf8_lossy(&out).into_owned(), result),
        (expected.to_owned(), Ok(outcome))
    );
}

#[test]
fn comments_heartbeats_and_clean_events_pass_byte_for_byte() {
    let body = concat!(
        ": heartbeat\n\n",
        "event: next\r\ndata: {\"data\":{\"errors\":\"Did you mean x?\"}}\r\n\r\n",
        "event: next\rdata: {\"id\":\"1\",\"payload\":{\"data\":1}}\r\r",
        "event: complete\ndata\n\n",
        "data: not json, Did you mean \"x\"?\n\n",
        ":\n\n",
    );
    assert_every_chunking(body, body, Streamed::Unchanged);
}

#[test]
fn next_events_in_both_graphql_sse_modes_are_sanitised() {
    let body = format!(
        "event: next\ndata: {{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}],\"data\":null}}\n\n\
         : keep-alive\n\n\
         event: next\r\nid: 7\r\ndata: {{\"id\":\"op\",\"payload\":{{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]}}}}\r\n\r\n\
         event: complete\ndata: {{\"id\":\"op\"}}\n\n"
    );
    let expected = format!(
        "event: next\ndata: {{\"errors\":[{{\"message\":\"{CLEAN}\"}}],\"data\":null}}\n\n\
         : keep-alive\n\n\
         event: next\nid: 7\ndata: {{\"id\":\"op\",\"payload\":{{\"errors\":[{{\"message\":\"{CLEAN}\"}}]}}}}\n\n\
         event: complete\ndata: {{\"id\":\"op\"}}\n\n"
    );
    assert_every_chunking(&body, &expected, Streamed::Rewritten);
}

#[test]
fn data_split_over_several_lines_is_joined_before_it_is_sanitised() {
    let body = format!(
        "data: {{\ndata:\"data\": {{\"a\": 1}},\ndata:  \"errors\": [{{\"message\":\"{SUGGESTION}\"}}]\ndata: }}\nretry: 10\n\n"
    );
    let expected = format!(
        "data: {{\ndata: \"data\": {{\"a\": 1}},\ndata:  \"errors\": [{{\"message\":\"{CLEAN}\"}}]\ndata: }}\nretry: 10\n\n"
    );
    assert_every_chunking(&body, &expected, Streamed::Rewritten);
}

#[test]
fn an_event_is_sent_as_soon_as_its_blank_line_arrives() {
    let settings = Settings::default();
    let mut sanitiser =
        SseSanitiser::new(Arc::new(settings.clone()), Arc::from("r"), limits(), 4096);
    let mut out = Vec::new();
    sanitiser.push(b"data: {\"data\":1}\n", &mut out).unwrap();
    assert!(out.is_empty());
    sanitiser.push(b"\n", &mut out).unwrap();
    assert_eq!(out, b"data: {\"data\":1}\n\n");
}

#[test]
fn an_event_over_the_cap_stops_the_stream() {
    let body = format!("data: {{\"data\":\"{}\"}}\n\n", "x".repeat(200));
    let (out, result) = run(b"data: {}\n\n", &[], 64);
    assert_eq!((out.len(), result), (10, Ok(Streamed::Unchanged)));
    let (out, result) = run(format!("data: {{}}\n\n{body}").as_bytes(), &[50], 64);
    assert_eq!(result, Err(SseError::EventTooLarge { cap: 64 }));
    assert_eq!(out, b"data: {}\n\n");
}

#[test]
fn malformed_json_data_stops_the_stream_without_its_errors() {
    let body = format!("data: {{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]\n\n");
    let (out, result) = run(body.as_bytes(), &[], 4096);
    assert_eq!(result, Err(SseError::Payload(StreamError::Truncated)));
    assert!(out.is_empty());
}

#[test]
fn an_errors_key_spelt_with_escapes_is_not_waved_through_by_the_pre_check() {
    let body = format!("data: {{\"\\u0065rrors\":[{{\"message\":\"{SUGGESTION}\"}}]}}\n\n");
    let expected = format!("data: {{\"\\u0065rrors\":[{{\"message\":\"{CLEAN}\"}}]}}\n\n");
    assert_every_chunking(&body, &expected, Streamed::Rewritten);
}

#[test]
fn an_unfinished_last_event_is_sanitised_too() {
    let body = format!("data: {{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]}}");
    let expected = format!("data: {{\"errors\":[{{\"message\":\"{CLEAN}\"}}]}}\n");
    assert_every_chunking(&body, &expected, Streamed::Rewritten);
}

#[test]
fn a_byte_order_mark_before_the_first_event_is_kept() {
    let body = format!("\u{FEFF}data: {{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]}}\n\n");
    let expected = format!("\u{FEFF}data: {{\"errors\":[{{\"message\":\"{CLEAN}\"}}]}}\n\n");
    assert_every_chunking(&body, &expected, Streamed::Rewritten);
}
