//! The streaming sanitiser against the whole-body one, chunked every way, and hostile bodies.

use proptest::prelude::*;
use serde_json::Value;

use std::sync::Arc;

use super::*;

const CLEAN: &str = r#"Cannot query field \"nmae\" on type \"User\"."#;
const SUGGESTION: &str = r#"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"#;

fn limits() -> StreamLimits {
    StreamLimits {
        errors_cap: 1 << 20,
        max_depth: 128,
        on_overflow: OnOverflow::Mask,
    }
}

/// Streams `body` cut at `cuts`; the bytes sent and how the stream ended.
fn stream_with(
    body: &[u8],
    cuts: &[usize],
    settings: &Settings,
    limits: StreamLimits,
) -> (Vec<u8>, Result<Streamed, StreamError>) {
    let mut sanitiser =
        StreamSanitiser::new(Arc::new(settings.clone()), Arc::from("req-1"), limits);
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        if let Err(error) = sanitiser.push(&body[from..cut], &mut out) {
            return (out, Err(error));
        }
        from = cut;
    }
    (out, sanitiser.finish())
}

fn stream(body: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<Streamed, StreamError>) {
    stream_with(body, cuts, &Settings::default(), limits())
}

/// What today's whole-body sanitiser sends for `body`.
fn whole(body: &[u8], settings: &Settings) -> Vec<u8> {
    match sanitise(body, settings, "req-1") {
        Outcome::Unchanged => body.to_vec(),
        Outcome::Rewritten(bytes) => bytes,
        Outcome::NotJson => panic!("not JSON: {}", String::from_utf8_lossy(body)),
    }
}

/// Streams `body` split at every single position and byte by byte: each must send `expected`.
fn assert_every_chunking(body: &str, expected: &[u8], outcome: Streamed) {
    let body = body.as_bytes();
    for cut in 0..=body.len() {
        assert_eq!(
            stream(body, &[cut]),
            (expected.to_vec(), Ok(outcome)),
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (0..body.len()).collect();
    assert_eq!(stream(body, &every), (expected.to_vec(), Ok(outcome)));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_body_without_errors_passes_byte_for_byte_however_it_is_cut() {
    let body = r#" {"data":{"errors":[{"message":"Did you mean \"x\"?"}],"s":"a\"b\\c\u00e9 é 😀","n":-1.5e+3,"t":[true,false,null,{}]},"extensions":{"cost":1}} "#;
    assert_every_chunking(body, body.as_bytes(), Streamed::Unchanged);
}

#[test]
fn errors_before_or_after_data_are_rewritten_and_data_keeps_its_bytes() {
    for body in [
        format!(r#"{{"errors":[{{"message":"{SUGGESTION}"}}],"data":{{"a":1.50}}}}"#),
        format!(r#"{{"data":{{"a":1.50}},"errors":[{{"message":"{SUGGESTION}"}}]}}"#),
        format!(
            "{{\n  \"data\" : {{\"a\":1.50}} ,\n  \"errors\"\t:\r\n [{{\"message\":\"{SUGGESTION}\"}}]\n}}\n"
        ),
    ] {
        let expected = text(&whole(body.as_bytes(), &Settings::default()));
        let (out, outcome) = stream(body.as_bytes(), &[]);
        assert_eq!(outcome, Ok(Streamed::Rewritten));
        let out = text(&out);
        assert!(out.contains(r#"{"a":1.50}"#), "{out}");
        assert!(!out.contains("Did you mean"), "{out}");
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            serde_json::from_str::<Value>(&expected).unwrap()
        );
        assert_every_chunking(&body, out.as_bytes(), Streamed::Rewritten);
    }
}

#[test]
fn every_duplicate_errors_member_is_sanitised() {
    let body = format!(
        r#"{{"errors":[{{"message":"{SUGGESTION}"}}],"data":null,"errors":[{{"message":"x. Did you mean \"y\"?"}}]}}"#
    );
    let (out, outcome) = stream(body.as_bytes(), &[]);
    assert_eq!(outcome, Ok(Streamed::Rewritten));
    assert_eq!(
        text(&out),
        r#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\"."}],"data":null,"errors":[{"message":"x."}]}"#
    );
}

#[test]
fn an_errors_key_spelt_with_escapes_is_recognised() {
    for key in [
        r#"\u0065rrors"#,
        r#"\u0045rrors"#,
        r#"err\u006Frs"#,
        r#"\u0065\u0072rors"#,
    ] {
        let body = format!(r#"{{"{key}":[{{"message":"{SUGGESTION}"}}]}}"#);
        let (out, outcome) = stream(body.as_bytes(), &[]);
        if key == r#"\u0045rrors"# {
            // `Errors` is another key: JSON keys are case-sensitive.
            assert_eq!(
                (text(&out), outcome),
                (body.clone(), Ok(Streamed::Unchanged))
            );
            continue;
        }
        assert_eq!(outcome, Ok(Streamed::Rewritten), "{key}");
        assert!(!text(&out).contains("Did you mean"), "{key}");
        assert!(text(&out).starts_with(&format!(r#"{{"{key}":"#)), "{key}");
    }
}

#[test]
fn errors_inside_data_or_extensions_are_never_touched() {
    let body = format!(
        r#"{{"data":{{"errors":[{{"message":"{SUGGESTION}"}}],"payload":{{"errors":[{{"message":"{SUGGESTION}"}}]}}}},"extensions":{{"errors":[{{"message":"{SUGGESTION}"}}]}}}}"#
    );
    assert_every_chunking(&body, body.as_bytes(), Streamed::Unchanged);
}

#[test]
fn a_batch_has_each_response_sanitised() {
    let body = format!(
        r#"[{{"data":{{"a":1}}}},{{"errors":[{{"message":"{SUGGESTION}"}}]}},7,[{{"errors":[{{"message":"{SUGGESTION}"}}]}}]]"#
    );
    let (out, outcome) = stream(body.as_bytes(), &[]);
    assert_eq!(outcome, Ok(Streamed::Rewritten));
    // A batch's elements are responses; an array inside it is not.
    assert_eq!(
        text(&out).matches("Did you mean").count(),
        1,
        "{}",
        text(&out)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()[1],
        serde_json::json!({"errors":[{"message":"Cannot query field \"nmae\" on type \"User\"."}]})
    );
}

#[test]
fn payload_incremental_and_completed_errors_are_sanitised() {
    let error = format!(r#"[{{"message":"{SUGGESTION}"}}]"#);
    for body in [
        format!(r#"{{"payload":{{"data":null,"errors":{error}}}}}"#),
        format!(r#"{{"id":"1","payload":{{"errors":{error}}}}}"#),
        format!(r#"{{"payload":null,"errors":{error}}}"#),
        format!(
            r#"{{"incremental":[{{"data":{{"x":1}},"path":["a"],"errors":{error}}},{{"items":[1],"path":["b"]}}],"hasNext":true}}"#
        ),
        format!(r#"{{"completed":[{{"id":"0","errors":{error}}}],"hasNext":false}}"#),
    ] {
        let (out, outcome) = stream(body.as_bytes(), &[]);
        assert_eq!(outcome, Ok(Streamed::Rewritten), "{body}");
        assert!(!text(&out).contains("Did you mean"), "{}", text(&out));
        assert!(serde_json::from_slice::<Value>(&out).is_ok());
    }
    // Heartbeats and empty payloads pass.
    for body in ["{}", r#"{"payload":null}"#, r#"{"hasNext":false}"#] {
        assert_eq!(
            stream(body.as_bytes(), &[]),
            (body.as_bytes().to_vec(), Ok(Streamed::Unchanged))
        );
    }
}

#[test]
fn a_byte_order_mark_and_whitespace_before_the_root_pass() {
    let body = format!("\u{FEFF}  \n{{\"errors\":[{{\"message\":\"{SUGGESTION}\"}}]}}");
    let expected = format!("\u{FEFF}  \n{{\"errors\":[{{\"message\":\"{CLEAN}\"}}]}}");
    assert_every_chunking(&body, expected.as_bytes(), Streamed::Rewritten);
}

#[test]
fn a_body_that_is_not_an_object_or_array_is_reported_before_it_is_sent() {
    for (body, resume_at) in [
        (&b"\"errors\""[..], 0),
        (b"  42", 2),
        (b"<html>", 0),
        (b"\xEF\xBB{}", 2),
        (b" \xEF\xBB\xBF{}", 1),
    ] {
        let (out, outcome) = stream(body, &[]);
        assert_eq!(outcome, Err(StreamError::NotJson { resume_at }), "{body:?}");
        assert_eq!(out, &body[..resume_at]);
    }
    for body in [&b""[..], b"  \n"] {
        assert_eq!(
            stream(body, &[]).1,
            Err(StreamError::NotJson { resume_at: 0 })
        );
    }
}

#[test]
fn malformed_or_truncated_bodies_stop_with_nothing_of_their_errors_sent() {
    let cases: [(String, StreamError); 7] = [
        (
            format!(r#"{{"data":{{"a":1}},"errors":[{{"message":"{SUGGESTION}"#),
            StreamError::Truncated,
        ),
        (
            r#"{"data":{"a":"unterminated"#.to_owned(),
            StreamError::Truncated,
        ),
        (
            r#"{"data" {"a":1}}"#.to_owned(),
            StreamError::Malformed { offset: 8 },
        ),
        (
            r#"{"errors":[],"data":1,}"#.to_owned(),
            StreamError::Malformed { offset: 22 },
        ),
        (
            r#"{"data":{"a":1]}"#.to_owned(),
            StreamError::Malformed { offset: 14 },
        ),
        (
            format!(r#"{{"data":1}} {{"errors":[{{"message":"{SUGGESTION}"}}]}}"#),
            StreamError::Malformed { offset: 11 },
        ),
        (
            format!(r#"{{"errors":[{{"message":"{SUGGESTION}\q"}}]}}"#),
            StreamError::Malformed { offset: 92 },
        ),
    ];
    for (body, error) in cases {
        for cut in 0..=body.len() {
            let (out, outcome) = stream(body.as_bytes(), &[cut]);
            assert_eq!(outcome, Err(error), "{body} cut at {cut}");
            assert!(
                !text(&out).contains("Did you mean"),
                "{body}: {}",
                text(&out)
            );
            assert!(body.as_bytes().starts_with(&out), "{body}: {}", text(&out));
        }
    }
    // A member that ended before the body did was sent sanitised.
    let body = format!(r#"{{"data":{{"a":1}},"errors":[{{"message":"{SUGGESTION}"}}]"#);
    let (out, outcome) = stream(body.as_bytes(), &[]);
    assert_eq!(outcome, Err(StreamError::Truncated));
    assert_eq!(
        text(&out),
        r#"{"data":{"a":1},"errors":[{"message":"Cannot query field \"nmae\" on type \"User\"."}]"#
    );
    for literal in [
        "tru",
        "nul1",
        "-",
        "01",
        "1.",
        "1e",
        "1.e3",
        "--1",
        "\"\\u12G4\"",
        "[1}",
    ] {
        let body = format!(r#"{{"data":{literal}}}"#);
        assert!(
            matches!(
                stream(body.as_bytes(), &[]).1,
                Err(StreamError::Malformed { .. })
            ),
            "{literal}"
        );
    }
}

#[test]
fn inside_a_skipped_value_only_strings_escapes_and_brackets_are_checked() {
    // Deliberate (see `scan`): a strict client rejects these, and none of them moves where a
    // value ends, so they pass as they came.
    for body in [r#"{"data":{"a" "b"}}"#, r#"{"data":[1,,tru]}"#] {
        assert_eq!(
            stream(body.as_bytes(), &[]),
            (body.as_bytes().to_vec(), Ok(Streamed::Unchanged))
        );
    }
    for body in [
        r#"{"data":{"a":[1}]}"#,
        r#"{"data":["\x"]}"#,
        r#"{"data":["\u00G0"]}"#,
    ] {
        assert!(
            matches!(
                stream(body.as_bytes(), &[]).1,
                Err(StreamError::Malformed { .. })
            ),
            "{body}"
        );
    }
}

#[test]
fn the_stream_stays_stopped_after_an_error() {
    let settings = Settings::default();
    let mut sanitiser = StreamSanitiser::new(Arc::new(settings.clone()), Arc::from("r"), limits());
    let mut out = Vec::new();
    assert!(sanitiser.push(br#"{"data":]"#, &mut out).is_err());
    let before = out.len();
    assert_eq!(
        sanitiser.push(br#"{"errors":[]}"#, &mut out),
        Err(StreamError::Malformed { offset: 8 })
    );
    assert_eq!(out.len(), before);
    assert_eq!(
        sanitiser.finish(),
        Err(StreamError::Malformed { offset: 8 })
    );
}

#[test]
fn deep_nesting_in_data_is_a_bounded_error_not_a_stack_overflow() {
    let body = format!(
        r#"{{"data":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (out, outcome) = stream(body.as_bytes(), &[70_000]);
    assert_eq!(outcome, Err(StreamError::TooDeep { max_depth: 128 }));
    assert!(out.len() < 200);
    let inside = format!(r#"{{"data":{}1{}}}"#, "[".repeat(126), "]".repeat(126));
    assert_eq!(stream(inside.as_bytes(), &[]).1, Ok(Streamed::Unchanged));
}

#[test]
fn invalid_utf8_in_errors_is_replaced_and_sanitised_and_elsewhere_passes() {
    let mut body = br#"{"data":{"s":"ok"#.to_vec();
    body.extend_from_slice(b"\xff\xfe");
    body.extend_from_slice(br#""},"errors":[{"message":"bad "#);
    body.extend_from_slice(b"\xc3(\xff");
    body.extend_from_slice(br#" here. Did you mean \"y\"?"}]}"#);
    let (out, outcome) = stream(&body, &[]);
    assert_eq!(outcome, Ok(Streamed::Rewritten));
    assert!(out.starts_with(b"{\"data\":{\"s\":\"ok\xff\xfe\"}"));
    let errors_at = memchr::memmem::find(&out, b"\"errors\"").unwrap();
    let errors = std::str::from_utf8(&out[errors_at..]).expect("errors are valid UTF-8");
    assert_eq!(
        errors,
        "\"errors\":[{\"message\":\"bad \u{FFFD}(\u{FFFD} here.\"}]}"
    );
    // Even when the rules change nothing, the repaired member is what is sent.
    let mut clean = br#"{"errors":[{"message":"bad "#.to_vec();
    clean.extend_from_slice(b"\xff");
    clean.extend_from_slice(br#""}]}"#);
    assert_eq!(
        stream(&clean, &[]),
        (
            "{\"errors\":[{\"message\":\"bad \u{FFFD}\"}]}"
                .as_bytes()
                .to_vec(),
            Ok(Streamed::Rewritten)
        )
    );
}

#[test]
fn errors_over_the_cap_are_refused_or_masked() {
    let body = format!(
        r#"{{"data":{{"a":1}},"errors":[{{"message":"{SUGGESTION}"}},{{"message":"{}"}}]}}"#,
        "x".repeat(500)
    );
    let small = StreamLimits {
        errors_cap: 256,
        ..limits()
    };
    let refuse = StreamLimits {
        on_overflow: OnOverflow::Refuse,
        ..small
    };
    for cut in [0, 30, 100, 300, body.len()] {
        let (out, outcome) = stream_with(body.as_bytes(), &[cut], &Settings::default(), refuse);
        assert_eq!(outcome, Err(StreamError::ErrorsTooLarge { cap: 256 }));
        assert!(!text(&out).contains("nmae"), "{}", text(&out));
        let (out, outcome) = stream_with(body.as_bytes(), &[cut], &Settings::default(), small);
        assert_eq!(outcome, Ok(Streamed::Masked));
        assert_eq!(
            text(&out),
            r#"{"data":{"a":1},"errors":[{"message":"Internal server error (request id: req-1)"}]}"#
        );
    }
}

#[test]
fn errors_the_rules_cannot_read_are_refused_or_masked() {
    // A raw control character: the scanner lets it by, serde_json does not.
    for member in ["[{\"message\":\"a\u{1}b\"}]", "[{\"message\":\"a\tb\"}]"] {
        let body = format!(r#"{{"errors":{member},"data":null}}"#);
        let (out, outcome) = stream(body.as_bytes(), &[]);
        assert_eq!(outcome, Ok(Streamed::Masked), "{member}");
        assert_eq!(
            text(&out),
            r#"{"errors":[{"message":"Internal server error (request id: req-1)"}],"data":null}"#
        );
        let refuse = StreamLimits {
            on_overflow: OnOverflow::Refuse,
            ..limits()
        };
        let (out, outcome) = stream_with(body.as_bytes(), &[], &Settings::default(), refuse);
        assert_eq!(outcome, Err(StreamError::ErrorsUnreadable));
        assert_eq!(text(&out), r#"{"errors""#);
    }
}

#[test]
fn lone_surrogates_in_errors_are_replaced_so_that_the_rules_can_read_them() {
    let body = r#"{"errors":[{"message":"\ud800x. Did you mean \"y\"? \udc00 \ud83d\ude00 \\ud800","extensions":{"hint":"\udbff"}}]}"#;
    let (out, outcome) = stream(body.as_bytes(), &[]);
    assert_eq!(outcome, Ok(Streamed::Rewritten));
    assert_eq!(
        text(&out),
        "{\"errors\":[{\"message\":\"\u{FFFD}x. \u{FFFD} 😀 \\\\ud800\",\"extensions\":{\"hint\":\"\\ufffd\"}}]}"
    );
}

#[test]
fn the_pre_check_passes_only_bodies_that_cannot_hold_an_errors_member() {
    assert!(!may_hold_errors(
        br#"{"data":{"user":{"name":"Did you mean \"x\"?","e":"\u20ac"}}}"#
    ));
    for body in [
        &br#"{"data":{"errors":1}}"#[..],
        br#"{"\u0065rrors":[]}"#,
        br#"{"err\u006frs":[]}"#,
        br#"{"data":"\u00e9"}"#,
    ] {
        assert!(may_hold_errors(body), "{}", text(body));
    }
}

#[test]
fn the_generic_error_carries_the_message_of_mask_mode_all() {
    let strict = Settings {
        mask: MaskMode::All,
        ..Settings::default()
    };
    let body = br#"{"errors":[{"message":"boom","path":["a"]}]}"#;
    let whole: Value = serde_json::from_slice(&whole(body, &strict)).unwrap();
    let generic: Value = serde_json::from_str(&generic_errors("req-1")).unwrap();
    assert_eq!(whole["errors"][0]["message"], generic[0]["message"]);
}

#[test]
fn with_nothing_to_remove_errors_stream_without_a_cap() {
    let off = Settings {
        block_suggestions: false,
        mask: MaskMode::Off,
        keep_codes: Vec::new(),
    };
    let body = format!(
        r#"{{"errors":[{{"message":"{}. {SUGGESTION}"}}]}}"#,
        "x".repeat(600)
    );
    let tiny = StreamLimits {
        errors_cap: 16,
        on_overflow: OnOverflow::Refuse,
        ..limits()
    };
    let (out, outcome) = stream_with(body.as_bytes(), &[7, 300], &off, tiny);
    assert_eq!((text(&out), outcome), (body, Ok(Streamed::Unchanged)));
}

#[test]
fn scalar_errors_values_pass_and_end_where_they_should() {
    for body in [
        r#"{"errors":12345,"data":1}"#,
        r#"{"errors":-0.5e-7}"#,
        r#"{"errors":null}"#,
        r#"{"errors":"Did you mean \"x\"?"}"#,
        r#"{"errors":{"message":"m"}}"#,
    ] {
        assert_every_chunking(body, body.as_bytes(), Streamed::Unchanged);
    }
}

#[test]
fn ten_megabytes_of_data_with_errors_at_the_end_hold_only_the_errors() {
    let settings = Settings::default();
    let mut sanitiser =
        StreamSanitiser::new(Arc::new(settings.clone()), Arc::from("req-1"), limits());
    let mut out = Vec::new();
    let row = br#"{"id":"123","name":"Did you mean \"errors\"?","list":[1,2,3,{"errors":[]}]},"#;
    sanitiser.push(br#"{"data":{"rows":["#, &mut out).unwrap();
    let mut sent = 0;
    while sent < 10 << 20 {
        out.clear();
        sanitiser.push(row, &mut out).unwrap();
        assert_eq!(out, row, "data is sent as it arrives");
        sent += row.len();
    }
    let errors = format!(r#"0]}},"errors":[{{"message":"{SUGGESTION}","path":["rows"]}}]}}"#);
    out.clear();
    sanitiser.push(errors.as_bytes(), &mut out).unwrap();
    assert!(!text(&out).contains("Did you mean"));
    assert!(
        sanitiser.peak_held() <= errors.len() * 2,
        "{}",
        sanitiser.peak_held()
    );
    assert_eq!(sanitiser.finish(), Ok(Streamed::Rewritten));
}

// === Random responses, random chunkings ===

fn message() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?",
        "Unknown argument \"frist\". Did you mean 'first' or 'last'?",
        "Cannot read properties of undefined (reading 'id')\n    at resolve (/app/src/resolvers/user.js:42:17)",
        "Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in f",
        "db down at /app/db.js:1:1",
        "Not authorised",
        "é ünïcode 😀 \u{1} \"quoted\"",
        "errors",
        "",
    ])
    .prop_map(str::to_owned)
}

fn error() -> impl Strategy<Value = Value> {
    (
        message(),
        prop::option::of(prop::sample::select(vec![
            "INTERNAL_SERVER_ERROR",
            "BAD_USER_INPUT",
            "GRAPHQL_VALIDATION_FAILED",
            "CUSTOM",
        ])),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(message()),
    )
        .prop_map(|(message, code, path, trace, hint)| {
            let mut error = serde_json::json!({ "message": message });
            if path {
                error["path"] = serde_json::json!(["user", 0]);
                error["locations"] = serde_json::json!([{"line": 1, "column": 3}]);
            }
            let mut extensions = serde_json::Map::new();
            if let Some(code) = code {
                extensions.insert("code".into(), code.into());
            }
            if trace {
                extensions.insert(
                    "exception".into(),
                    serde_json::json!({"stacktrace": ["Error: x", "    at f (/app/a.js:1:2)"]}),
                );
            }
            if let Some(hint) = hint {
                extensions.insert("hint".into(), hint.into());
            }
            if !extensions.is_empty() {
                error["extensions"] = Value::Object(extensions);
            }
            error
        })
}

fn data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6..1.0e6_f64).prop_map(Value::from),
        message().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["errors", "payload", "message", "name", "é"]),
                    inner
                ),
                0..6
            )
            .prop_map(|members| Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            )),
        ]
    })
}

/// One response as text, its members in the given order, compact or pretty.
fn response() -> impl Strategy<Value = String> {
    (
        prop::option::of(data()),
        prop::collection::vec(prop::collection::vec(error(), 0..4), 0..3),
        prop::option::of(data()),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(data, errors, extensions, order, pretty)| {
            let render = |value: &Value| {
                if pretty {
                    serde_json::to_string_pretty(value).unwrap()
                } else {
                    value.to_string()
                }
            };
            let mut members: Vec<String> = Vec::new();
            if let Some(data) = data {
                members.push(format!("\"data\":{}", render(&data)));
            }
            for list in errors {
                members.push(format!("\"errors\":{}", render(&Value::Array(list))));
            }
            if let Some(extensions) = extensions {
                members.push(format!("\"extensions\":{}", render(&extensions)));
            }
            let len = members.len().max(1) as u64;
            members.rotate_left((order % len) as usize);
            let separator = if pretty { ",\n  " } else { "," };
            format!("{{{}}}", members.join(separator))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn streaming_sends_what_the_whole_body_sanitiser_sends(
        responses in prop::collection::vec(response(), 1..4),
        batch in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        mode in prop::sample::select(vec![MaskMode::Off, MaskMode::Details, MaskMode::All]),
    ) {
        let body = if batch {
            format!("[{}]", responses.join(","))
        } else {
            responses[0].clone()
        };
        let settings = Settings { mask: mode, ..Settings::default() };
        let expected = whole(body.as_bytes(), &settings);
        let (out, outcome) = stream_with(body.as_bytes(), &cuts, &settings, limits());
        let outcome = outcome.expect("a valid response streams to its end");
        if !may_hold_errors(body.as_bytes()) {
            prop_assert_eq!(outcome, Streamed::Unchanged);
        }
        prop_assert_eq!(outcome == Streamed::Unchanged, out == body.as_bytes());
        prop_assert_eq!(
            serde_json::from_slice::<Value>(&out).expect("output is JSON"),
            serde_json::from_slice::<Value>(&expected).expect("expected is JSON")
        );
        if !body.contains('\n') {
            // Compact bodies: the whole-body sanitiser re-serialises nothing but errors either.
            prop_assert_eq!(text(&out), text(&expected));
        }
    }
}
