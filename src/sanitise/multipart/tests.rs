//! Multipart streams as Apollo Router, graphql-js/Yoga and hostile upstreams write them, cut
//! everywhere.

use std::sync::Arc;

use super::*;
use crate::sanitise::stream::OnOverflow;

const SUGGESTION: &str = r#"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"#;
const CLEAN: &str = r#"Cannot query field \"nmae\" on type \"User\"."#;
const APOLLO: &str = r#"multipart/mixed;boundary="graphql";subscriptionSpec="1.0""#;

fn limits() -> StreamLimits {
    StreamLimits {
        errors_cap: 1 << 16,
        max_depth: 64,
        on_overflow: OnOverflow::Mask,
    }
}

fn run(
    content_type: &str,
    body: &[u8],
    cuts: &[usize],
    cap: usize,
) -> (Vec<u8>, Result<Streamed, MultipartError>) {
    let settings = Settings::default();
    let mut sanitiser = MultipartSanitiser::new(
        content_type,
        Arc::new(settings.clone()),
        Arc::from("req-1"),
        limits(),
        cap,
    )
    .unwrap();
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

fn assert_every_chunking(
    content_type: &str,
    body: &str,
    expected: &str,
    outcome: Result<Streamed, MultipartError>,
) {
    let text = |(out, result): (Vec<u8>, _)| (String::from_utf8_lossy(&out).into_owned(), result);
    for cut in 0..=body.len() {
        assert_eq!(
            text(run(content_type, body.as_bytes(), &[cut], 4096)),
            (expected.to_owned(), outcome),
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (0..body.len()).collect();
    assert_eq!(
        text(run(content_type, body.as_bytes(), &every, 4096)),
        (expected.to_owned(), outcome)
    );
}

fn part(json: &str) -> String {
    format!("\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{json}")
}

#[test]
fn apollo_subscription_heartbeats_and_clean_payloads_pass_byte_for_byte() {
    let body = format!(
        "{}{}{}\r\n--graphql--\r\n",
        part("{}"),
        part(r#"{"payload":{"data":{"errors":"Did you mean \"x\"?"}}}"#),
        part("{}")
    );
    assert_every_chunking(APOLLO, &body, &body, Ok(Streamed::Unchanged));
}

#[test]
fn payload_errors_and_transport_errors_are_sanitised() {
    let body = format!(
        "{}{}{}\r\n--graphql--\r\n",
        part("{}"),
        part(&format!(
            r#"{{"payload":{{"data":null,"errors":[{{"message":"{SUGGESTION}"}}]}}}}"#
        )),
        part(&format!(
            r#"{{"payload":null,"errors":[{{"message":"{SUGGESTION}"}}]}}"#
        )),
    );
    let expected = format!(
        "{}{}{}\r\n--graphql--\r\n",
        part("{}"),
        part(&format!(
            r#"{{"payload":{{"data":null,"errors":[{{"message":"{CLEAN}"}}]}}}}"#
        )),
        part(&format!(
            r#"{{"payload":null,"errors":[{{"message":"{CLEAN}"}}]}}"#
        )),
    );
    assert_every_chunking(APOLLO, &body, &expected, Ok(Streamed::Rewritten));
}

#[test]
fn incremental_delivery_parts_have_their_errors_and_content_length_rewritten() {
    let first = r#"{"data":{"a":1},"hasNext":true}"#;
    let second = format!(
        r#"{{"incremental":[{{"data":{{"b":null}},"path":["a"],"errors":[{{"message":"{SUGGESTION}"}}]}}],"hasNext":false}}"#
    );
    let cleaned = second.replace(SUGGESTION, CLEAN);
    let yoga_part = |json: &str| {
        format!(
            "---\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{json}\r\n",
            json.len()
        )
    };
    let body = format!("{}{}-----\r\n", yoga_part(first), yoga_part(&second));
    let expected = format!("{}{}-----\r\n", yoga_part(first), yoga_part(&cleaned));
    assert_every_chunking(
        r#"multipart/mixed; boundary="-"; deferSpec=20220824"#,
        &body,
        &expected,
        Ok(Streamed::Rewritten),
    );
}

#[test]
fn a_part_is_sent_when_its_json_ends_not_when_the_next_delimiter_comes() {
    let settings = Settings::default();
    let mut sanitiser = MultipartSanitiser::new(
        APOLLO,
        Arc::new(settings.clone()),
        Arc::from("r"),
        limits(),
        4096,
    )
    .unwrap();
    let mut out = Vec::new();
    let event = part(r#"{"payload":{"data":{"n":1}}}"#);
    sanitiser.push(event.as_bytes(), &mut out).unwrap();
    assert_eq!(out, event.as_bytes());
}

#[test]
fn a_content_type_without_a_boundary_is_refused() {
    let settings = Settings::default();
    for content_type in [
        "multipart/mixed",
        "multipart/mixed; boundary=\"\"",
        "not a type",
    ] {
        assert_eq!(
            MultipartSanitiser::new(
                content_type,
                Arc::new(settings.clone()),
                Arc::from("r"),
                limits(),
                64
            )
            .err(),
            Some(MultipartError::NoBoundary),
            "{content_type}"
        );
    }
}

#[test]
fn a_delimiter_after_a_bare_lf_starts_a_part_too() {
    // A client that accepts LF alone would see a second part here; so does the firewall.
    let body = format!(
        "--graphql\r\n\r\n{{\"data\":1}}\n--graphql\n\n{{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]}}\n--graphql--"
    );
    let expected = format!(
        "--graphql\r\n\r\n{{\"data\":1}}\n--graphql\n\n{{\"errors\":[{{\"message\":\"{CLEAN}\"}}]}}\n--graphql--"
    );
    assert_every_chunking(APOLLO, &body, &expected, Ok(Streamed::Rewritten));
}

#[test]
fn a_string_that_runs_into_a_delimiter_stops_the_stream() {
    // Without the cut at the delimiter, the next part's errors would be read as the inside of
    // a string and sent untouched.
    let body = format!(
        "{}{}\r\n--graphql--",
        part(r#"{"data":"abc"#),
        part(&format!(r#"{{"errors":[{{"message":"{SUGGESTION}"}}]}}"#))
    );
    let (out, result) = run(APOLLO, body.as_bytes(), &[], 4096);
    assert_eq!(result, Err(MultipartError::Payload(StreamError::Truncated)));
    assert!(!String::from_utf8_lossy(&out).contains("Did you mean"));
}

#[test]
fn parts_that_are_not_json_or_not_framed_stop_the_stream() {
    let cases = [
        (part("hello"), MultipartError::PartNotJson),
        (part("{} {}"), MultipartError::PartMalformed),
        (part(r#"{"data":[1}"#), MultipartError::PartMalformed),
        (
            "\r\n--graphql junk\r\n\r\n{}".to_owned(),
            MultipartError::Malformed,
        ),
        (
            "\r\n--graphql\r\ncontent-type: application/json\r\n--graphql\r\n\r\n{}".to_owned(),
            MultipartError::Malformed,
        ),
    ];
    for (body, error) in cases {
        let (_, result) = run(APOLLO, body.as_bytes(), &[], 4096);
        assert_eq!(result, Err(error), "{body:?}");
    }
    let (_, result) = run(APOLLO, b"no delimiter at all", &[], 4096);
    assert_eq!(result, Err(MultipartError::Malformed));
    let (out, result) = run(APOLLO, b"", &[], 4096);
    assert_eq!((out, result), (Vec::new(), Ok(Streamed::Unchanged)));
}

#[test]
fn a_part_over_the_cap_stops_the_stream() {
    let big = part(&format!(r#"{{"data":"{}"}}"#, "x".repeat(300)));
    for cuts in [&[][..], &[40, 90, 200][..]] {
        let (out, result) = run(APOLLO, format!("{}{big}", part("{}")).as_bytes(), cuts, 256);
        assert_eq!(result, Err(MultipartError::PartTooLarge { cap: 256 }));
        assert!(
            out.len() <= part("{}").len() + 2,
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn the_preamble_is_dropped_and_only_whitespace_of_the_epilogue_is_sent() {
    let body = format!(
        "preamble --graphql{}\r\n--graphql--\r\n epilogue {{\"errors\":[]}}",
        part("{}")
    );
    let expected = format!("{}\r\n--graphql--\r\n ", part("{}"));
    assert_every_chunking(APOLLO, &body, &expected, Ok(Streamed::Unchanged));
}

#[test]
fn a_stream_that_ends_after_a_complete_part_without_closing_is_accepted() {
    let body = part(&format!(r#"{{"errors":[{{"message":"{SUGGESTION}"}}]}}"#));
    let expected = part(&format!(r#"{{"errors":[{{"message":"{CLEAN}"}}]}}"#));
    assert_every_chunking(APOLLO, &body, &expected, Ok(Streamed::Rewritten));
    let cut_short = part(&format!(r#"{{"errors":[{{"message":"{SUGGESTION}"}}]"#));
    let (out, result) = run(APOLLO, cut_short.as_bytes(), &[], 4096);
    assert_eq!(result, Err(MultipartError::Payload(StreamError::Truncated)));
    assert!(out.is_empty());
}
