//! Captured messages from real servers, the masking modes, and hostile bodies.
//!
//! Suggestion formats, as read in the servers' sources:
//! - graphql-js `src/jsutils/didYouMean.ts`: ` Did you mean "A"?`, `"A" or "B"?`,
//!   `"A", "B", or "C"?` (at most 5), with sub-messages `to use an inline fragment on`
//!   (`src/validation/rules/FieldsOnCorrectTypeRule.ts`) and `the enum value` (`type/definition.ts`).
//! - graphql-core (Python) `src/graphql/pyutils/did_you_mean.py`: the same with single quotes.
//! - async-graphql `src/validation/suggestion.rs` (`make_suggestion`) and
//!   `src/validation/rules/fields_on_correct_type.rs`: `Unknown field "x" on type "T". Did you mean
//!   "a", "b"?` (comma list, no "or").
//! - gqlparser / gqlgen `validator/messaging.go` + `validator/rules/fields_on_correct_type.go`:
//!   like graphql-js.
//! - Sangria `sangria/validation/Violation.scala` + `sangria/util/StringUtil.scala`:
//!   ` Did you mean 'a', 'b' or 'c'?`, followed by ` (line 1, column 3):` and the source excerpt.
//! - Juniper `juniper/src/validation/rules/fields_on_correct_type.rs`, graphql-java
//!   `src/main/resources/i18n/Validation.properties`, Hot Chocolate
//!   `src/HotChocolate/Core/src/Validation/ErrorHelper.cs`: no suggestions (must pass unchanged).

use super::*;

fn settings(mask: MaskMode) -> Settings {
    Settings {
        mask,
        ..Settings::default()
    }
}

fn rewritten(body: &str, settings: &Settings) -> Value {
    match sanitise(body.as_bytes(), settings, "req-1") {
        Outcome::Rewritten(bytes) => serde_json::from_slice(&bytes).expect("output is JSON"),
        other => panic!("expected a rewrite of {body}, got {other:?}"),
    }
}

fn message_after(message: &str) -> String {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    match sanitise(body.as_bytes(), &settings(MaskMode::Off), "req-1") {
        Outcome::Unchanged => message.to_owned(),
        Outcome::Rewritten(bytes) => {
            let value: Value = serde_json::from_slice(&bytes).expect("output is JSON");
            value["errors"][0]["message"]
                .as_str()
                .expect("message stays a string")
                .to_owned()
        }
        Outcome::NotJson => panic!("NotJson for {body}"),
    }
}

#[test]
fn removes_every_known_suggestion_format_and_nothing_else() {
    let cases = [
        // graphql-js / gqlparser
        (
            r#"Cannot query field "nmae" on type "User". Did you mean "name"?"#,
            r#"Cannot query field "nmae" on type "User"."#,
        ),
        (
            r#"Cannot query field "nam" on type "User". Did you mean "name" or "names"?"#,
            r#"Cannot query field "nam" on type "User"."#,
        ),
        (
            r#"Cannot query field "createSesion" on type "RootMutation". Did you mean "createSession", "createUser", "createFile", or "createImage"?"#,
            r#"Cannot query field "createSesion" on type "RootMutation"."#,
        ),
        (
            r#"Cannot query field "meowVolume" on type "Pet". Did you mean to use an inline fragment on "Cat"?"#,
            r#"Cannot query field "meowVolume" on type "Pet"."#,
        ),
        (
            r#"Value "REDD" does not exist in "Color" enum. Did you mean the enum value "RED"?"#,
            r#"Value "REDD" does not exist in "Color" enum."#,
        ),
        (
            r#"Expected type Color, found REDD. Did you mean the enum value "RED" or "READ"?"#,
            r#"Expected type Color, found REDD."#,
        ),
        (
            r#"Unknown argument "frist" on field "Query.users". Did you mean "first"?"#,
            r#"Unknown argument "frist" on field "Query.users"."#,
        ),
        (
            r#"Unknown type "Usr". Did you mean "User" or "UserInput"?"#,
            r#"Unknown type "Usr"."#,
        ),
        // graphql-core (Python)
        (
            "Cannot query field 'nmae' on type 'User'. Did you mean 'name', 'names', or 'nameLong'?",
            "Cannot query field 'nmae' on type 'User'.",
        ),
        // async-graphql
        (
            r#"Unknown field "nmae" on type "User". Did you mean "name", "names"?"#,
            r#"Unknown field "nmae" on type "User"."#,
        ),
        // Sangria: the location excerpt after the suggestion survives
        (
            "Cannot query field 'nmae' on type 'User'. Did you mean 'name', 'names' or 'nam'? (line 1, column 3):\n{ nmae }\n  ^",
            "Cannot query field 'nmae' on type 'User'. (line 1, column 3):\n{ nmae }\n  ^",
        ),
        // any case, no question mark: cut to the end of the line
        (
            "Unknown field. did you mean 'name'\nsecond line",
            "Unknown field.\nsecond line",
        ),
        // names with quotes, escapes and question marks inside
        (
            r#"Bad value. Did you mean "we\"ird?" or 'it''s'?"#,
            r#"Bad value."#,
        ),
        // two suggestion sentences
        (r#"A. Did you mean "a"? B. DID YOU MEAN "b"?"#, r#"A. B."#),
        // a sentence that opens the text
        (
            r#"Did you mean "name"? Field unknown."#,
            r#"Field unknown."#,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(message_after(input), expected, "input: {input}");
    }
}

#[test]
fn leaves_messages_of_servers_without_suggestions_unchanged() {
    for message in [
        r#"Unknown field "nmae" on type "User""#, // Juniper
        "Validation error (FieldUndefined@[user/nmae]) : Field 'nmae' in type 'User' is undefined", // graphql-java
        "The field `nmae` does not exist on the type `User`.", // Hot Chocolate
    ] {
        let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
        assert_eq!(
            sanitise(body.as_bytes(), &settings(MaskMode::Off), "r"),
            Outcome::Unchanged,
            "{message}"
        );
    }
}

#[test]
fn strips_suggestions_inside_extensions_at_any_depth() {
    let body = r#"{"errors":[{"message":"Unknown field \"nmae\" on type \"User\".","extensions":{"code":"GRAPHQL_VALIDATION_FAILED","hint":"Did you mean \"name\"?","nested":[{"why":"x. Did you mean \"id\"?"}]}}],"data":null}"#;
    let out = rewritten(body, &settings(MaskMode::Off));
    let ext = &out["errors"][0]["extensions"];
    assert_eq!(ext["hint"], "");
    assert_eq!(ext["nested"][0]["why"], "x.");
    assert_eq!(ext["code"], "GRAPHQL_VALIDATION_FAILED");
}

#[test]
fn strips_suggestions_in_every_response_of_a_batch() {
    let body = r#"[{"data":{"a":1}},{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?"}]},{"errors":[{"message":"x. Did you mean 'y'?"}]}]"#;
    let Outcome::Rewritten(bytes) = sanitise(body.as_bytes(), &settings(MaskMode::Off), "r") else {
        panic!("batch not rewritten");
    };
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(text.starts_with(r#"[{"data":{"a":1}},"#), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("did you mean"),
        "{text}"
    );
}

#[test]
fn body_without_errors_is_unchanged_even_when_data_mentions_errors() {
    let plain = br#"{"data":{"user":{"name":"x"}}}"#;
    assert_eq!(
        sanitise(plain, &Settings::default(), "r"),
        Outcome::Unchanged
    );
    // The fast path is fooled into the slow one, which must still answer Unchanged.
    let tricky = br#"{"data":{"text":"\"errors\": Did you mean \"x\"?"}}"#;
    assert_eq!(
        sanitise(tricky, &Settings::default(), "r"),
        Outcome::Unchanged
    );
}

#[test]
fn clean_errors_are_unchanged_and_not_reserialised() {
    let body = br#"{ "errors" : [ {"message":"Not authorised","path":["me"],"extensions":{"code":"FORBIDDEN"}} ], "data" : {"me":null} }"#;
    assert_eq!(
        sanitise(body, &Settings::default(), "r"),
        Outcome::Unchanged
    );
}

#[test]
fn an_escaped_errors_key_is_not_looked_for() {
    // Deliberate: only the upstream's serialiser writes top-level keys, and none escapes letters;
    // looking for escapes would cost a second pass over every clean response.
    let body = br#"{"\u0065rrors":[{"message":"x. Did you mean \"y\"?"}]}"#;
    assert_eq!(
        sanitise(body, &Settings::default(), "r"),
        Outcome::Unchanged
    );
}

#[test]
fn data_and_other_members_survive_byte_for_byte() {
    let data = r#"{"n":12345678901234567890123,"f":1.50e+10,"z":{"b":1,"a":2},"s":"é\u00e9"}"#;
    let body = format!(
        r#"{{"data":{data},"errors":[{{"message":"x. Did you mean \"y\"?"}}],"extensions":{{"cost":1.0}}}}"#
    );
    let Outcome::Rewritten(bytes) = sanitise(body.as_bytes(), &Settings::default(), "r") else {
        panic!("not rewritten");
    };
    let text = String::from_utf8(bytes).expect("utf-8");
    assert_eq!(
        text,
        format!(r#"{{"data":{data},"errors":[{{"message":"x."}}],"extensions":{{"cost":1.0}}}}"#)
    );
}

const INTERNAL_ERROR: &str = r#"{"errors":[{"message":"Cannot read properties of undefined (reading 'id')\n    at resolve (/app/src/resolvers/user.js:42:17)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)","locations":[{"line":1,"column":3}],"path":["user"],"extensions":{"code":"INTERNAL_SERVER_ERROR","exception":{"stacktrace":["TypeError: x","    at resolve (/app/src/resolvers/user.js:42:17)"]},"debug":{"sql":"SELECT 1"},"file":"/home/svc/app/user.rs","where":"C:\\inetpub\\app\\User.cs","hint":"retry later","retryable":true}}],"data":{"user":null}}"#;

#[test]
fn details_mode_removes_traces_exceptions_paths_and_internal_locations() {
    let out = rewritten(INTERNAL_ERROR, &settings(MaskMode::Details));
    let error = &out["errors"][0];
    assert_eq!(
        error["message"],
        "Cannot read properties of undefined (reading 'id')"
    );
    assert!(error.get("locations").is_none());
    assert_eq!(error["path"], serde_json::json!(["user"]));
    assert_eq!(
        error["extensions"],
        serde_json::json!({"code":"INTERNAL_SERVER_ERROR","hint":"retry later","retryable":true})
    );
    assert_eq!(out["data"], serde_json::json!({"user": null}));
}

#[test]
fn details_mode_keeps_locations_of_request_errors() {
    let body = r#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?","locations":[{"line":1,"column":3}]}]}"#;
    let out = rewritten(body, &settings(MaskMode::Details));
    assert_eq!(
        out["errors"][0],
        serde_json::json!({"message":"Cannot query field \"nmae\" on type \"User\".","locations":[{"line":1,"column":3}]})
    );
}

#[test]
fn details_mode_replaces_a_message_that_names_a_server_file() {
    let body = r#"{"errors":[{"message":"ENOENT: no such file or directory, open '/app/config/secrets.json'","path":["x"]}]}"#;
    let out = rewritten(body, &settings(MaskMode::Details));
    assert_eq!(
        out["errors"][0]["message"],
        "Internal server error (request id: req-1)"
    );
}

#[test]
fn details_mode_keeps_a_path_the_client_sent_in_an_actionable_message() {
    let body = r#"{"errors":[{"message":"Variable \"$file\" got invalid value \"/home/me/a.txt\"; Did you mean \"ID\"?","extensions":{"code":"BAD_USER_INPUT"}}]}"#;
    let out = rewritten(body, &settings(MaskMode::Details));
    assert_eq!(
        out["errors"][0]["message"],
        "Variable \"$file\" got invalid value \"/home/me/a.txt\";"
    );
}

#[test]
fn details_mode_drops_python_and_java_traces() {
    let body = r#"{"errors":[{"message":"boom","path":["a"],"extensions":{"tb":"Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in f","java":"java.lang.NullPointerException\n\tat com.acme.UserResolver.get(UserResolver.java:123)","rust":"panicked at src/main.rs:12:5","ok":"fine"}}]}"#;
    let out = rewritten(body, &settings(MaskMode::Details));
    assert_eq!(
        out["errors"][0]["extensions"],
        serde_json::json!({"ok": "fine"})
    );
}

#[test]
fn off_mode_masks_nothing() {
    let off = Settings {
        block_suggestions: false,
        mask: MaskMode::Off,
        keep_codes: Vec::new(),
    };
    assert_eq!(
        sanitise(INTERNAL_ERROR.as_bytes(), &off, "r"),
        Outcome::Unchanged
    );
}

#[test]
fn all_mode_replaces_internal_messages_and_keeps_actionable_ones() {
    let body = r#"{"errors":[
        {"message":"db down at /app/db.js:1:1","path":["a"],"locations":[{"line":1,"column":1}],"extensions":{"code":"INTERNAL_SERVER_ERROR","exception":{}}},
        {"message":"resolver threw","path":["b"]},
        {"message":"Variable \"$id\" got invalid value. Did you mean \"ID\"?","locations":[{"line":1,"column":9}],"extensions":{"code":"BAD_USER_INPUT","argumentName":"id"},"stack":"x"},
        {"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?","locations":[{"line":2,"column":3}]}
    ],"data":null}"#;
    let out = rewritten(body, &settings(MaskMode::All));
    assert_eq!(
        out["errors"],
        serde_json::json!([
            {"message":"Internal server error (request id: req-1)","path":["a"],"extensions":{"code":"INTERNAL_SERVER_ERROR"}},
            {"message":"Internal server error (request id: req-1)","path":["b"]},
            {"message":"Variable \"$id\" got invalid value.","locations":[{"line":1,"column":9}],"extensions":{"code":"BAD_USER_INPUT"}},
            {"message":"Cannot query field \"nmae\" on type \"User\".","locations":[{"line":2,"column":3}]}
        ])
    );
}

#[test]
fn all_mode_strips_suggestions_even_when_blocking_is_off() {
    let strict = Settings {
        block_suggestions: false,
        ..settings(MaskMode::All)
    };
    let body = r#"{"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}]}"#;
    let out = rewritten(body, &strict);
    assert_eq!(
        out["errors"][0]["message"],
        "Cannot query field \"nmae\" on type \"User\"."
    );
}

#[test]
fn non_json_bodies_are_reported_as_such() {
    for body in [
        &b""[..],
        b"   ",
        b"<html>errors</html>",
        b"\"errors\"",
        b"42",
        b"{\"errors\": [",
        b"{\"errors\": [}",
        b"[{\"errors\":]",
        b"\xff\xfe{\"errors\":[]}",
        b"{\"errors\":[{\"message\":\"\xff\"}]}",
    ] {
        assert_eq!(
            sanitise(body, &Settings::default(), "r"),
            Outcome::NotJson,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn odd_shapes_pass_through_unchanged() {
    for body in [
        r#"{"errors":null}"#,
        r#"{"errors":"Did you mean \"x\"?"}"#,
        r#"{"errors":{"message":"Did you mean \"x\"?"}}"#,
        r#"{"errors":[1,"Did you mean \"x\"?",null,[]]}"#,
        r#"{"errors":[{"message":42}]}"#,
        r#"{"errors":[{"message":"ok","extensions":"plain"}]}"#,
        r#"[1,"errors",null]"#,
        r#"[]"#,
        r#"{}"#,
    ] {
        assert_eq!(
            sanitise(body.as_bytes(), &Settings::default(), "r"),
            Outcome::Unchanged,
            "{body}"
        );
    }
}

#[test]
fn extensions_too_deep_to_inspect_are_removed_without_recursion() {
    let deep = format!(
        r#"{{"errors":[{{"message":"m","extensions":{{"x":{}1{}}}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        sanitise(deep.as_bytes(), &Settings::default(), "r"),
        Outcome::Rewritten(br#"{"errors":[{"message":"m"}]}"#.to_vec())
    );
    let allowed = format!(
        r#"{{"errors":[{{"message":"m","extensions":{{"x":{}"Did you mean \"a\"?"{}}}}}]}}"#,
        "[".repeat(120),
        "]".repeat(120)
    );
    assert!(matches!(
        sanitise(allowed.as_bytes(), &Settings::default(), "r"),
        Outcome::Rewritten(_)
    ));
}

#[test]
fn echoed_client_input_full_of_quotes_is_stripped() {
    // With an unbounded quote scan these would be quadratic (minutes); the bound keeps them linear.
    let hostile = format!("Did you mean {}?", "'".repeat(200_000));
    assert_eq!(strip_suggestions(&hostile).as_deref(), Some(""));
    let many = "did you mean \"x ".repeat(50_000);
    assert_eq!(strip_suggestions(&many).as_deref(), Some(""));
}

#[test]
fn random_mutations_of_an_error_body_never_panic() {
    let seed_body = INTERNAL_ERROR.as_bytes();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for mode in [MaskMode::Off, MaskMode::Details, MaskMode::All] {
        let settings = settings(mode);
        for _ in 0..3_000 {
            let mut body = seed_body.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() as usize) % body.len();
                match next() % 3 {
                    0 => body[at] = next() as u8,
                    1 => {
                        body.remove(at);
                    }
                    _ => body.insert(at, b"\"{}[],:\\?'"[(next() % 10) as usize]),
                }
            }
            if let Outcome::Rewritten(out) = sanitise(&body, &settings, "r") {
                assert!(serde_json::from_slice::<Value>(&out).is_ok());
            }
        }
    }
}
