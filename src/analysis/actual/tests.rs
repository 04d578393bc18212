#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::analysis::{Schema, Settings, analyse};

const SDL: &str = "
    type Query { users(first: Int = 10): [User!]! me: User search(ids: [ID!]!): [Result] heavy: Int @cost(weight: 4) }
    type User { id: ID! name: String friends(first: Int = 10): [User!]! posts: [Post!]! }
    type Post @cost(weight: 3) { id: ID! tags: [String] }
    union Result = User | Post
";

fn settings() -> Settings {
    Settings {
        schema: Some(Arc::new(Schema::from_sdl(SDL).unwrap())),
        ..Settings::default()
    }
}

/// Actual cost of `response` to `query`, pushed in chunks of every size from 1 to 7 bytes and
/// whole: every split must give the same answer.
fn actual(query: &str, response: &str) -> Result<u64, ActualCostError> {
    let document = analyse(query, &settings()).unwrap();
    let operation = document.operation(None).unwrap();
    let mut meter = ActualCost::new(operation, None);
    meter.push(response.as_bytes());
    let whole = meter.finish();
    assert_eq!(
        ActualCost::new(operation, None).measure(response.as_bytes()),
        whole,
        "read whole"
    );
    for size in 1..=7 {
        let mut meter = ActualCost::new(operation, None);
        for chunk in response.as_bytes().chunks(size) {
            meter.push(chunk);
        }
        assert_eq!(meter.finish(), whole, "chunks of {size}");
    }
    whole
}

#[test]
fn objects_cost_one_leaves_nothing_and_lists_count_per_element() {
    let response = json!({"data": {"users": [
        {"id": "1", "friends": [{"id": "2"}, {"id": "3"}]},
        {"id": "4", "friends": []}
    ]}});
    // 2 users + 2 friends.
    assert_eq!(
        actual("{ users { id friends { id } } }", &response.to_string()),
        Ok(4)
    );
}

#[test]
fn aliases_and_fragments_map_keys_back_to_their_fields() {
    let query = "{ a: users(first: 1) { ...U } b: me { ... on User { p: posts { id } } } }
        fragment U on User { n: name f: friends { id } }";
    let response = json!({"data": {
        "a": [{"n": "x", "f": [{"id": "1"}]}],
        "b": {"p": [{"id": "p1"}, {"id": "p2"}]}
    }});
    // a: 1 user + 1 friend; b: 1 + 2 posts × 3.
    assert_eq!(actual(query, &response.to_string()), Ok(1 + 1 + 1 + 2 * 3));
}

#[test]
fn cost_directives_weigh_leaves_and_nulls_of_costed_fields() {
    let response = json!({"data": {"heavy": 7, "me": null, "search": [{"__typename": "Post", "id": "p"}, null]}});
    // heavy 4; me null 0; search: one object 1 (by the field's weight), one null leaf 0.
    assert_eq!(
        actual(
            "{ heavy me { id } search(ids: [1, 2]) { __typename ... on Post { id } } }",
            &response.to_string()
        ),
        Ok(4 + 1)
    );
}

#[test]
fn errors_extensions_unknown_keys_and_typename_cost_nothing() {
    let response = r#"{"errors": [{"message": "x", "path": ["users", 0]}], "data": {"users": [{"__typename": "User", "unasked": {"deep": [{"a": 1}]}}]}, "extensions": {"cost": {"a": [{}, {}]}}}"#;
    assert_eq!(actual("{ users { __typename } }", response), Ok(1));
    assert_eq!(actual("{ users { id } }", r#"{"data": null}"#), Ok(0));
}

#[test]
fn malformed_and_deep_responses_are_reported() {
    assert_eq!(
        actual("{ users { id } }", r#"{"data": {"users": [}"#),
        Err(ActualCostError::Malformed)
    );
    assert_eq!(
        actual("{ users { id } }", r#"{"data": {}} {}"#),
        Err(ActualCostError::Malformed)
    );
    assert_eq!(
        actual("{ users { id } }", "[]"),
        Err(ActualCostError::Malformed)
    );
    assert_eq!(
        actual("{ users { id } }", r#"{"data": {"users": ["#),
        Err(ActualCostError::Malformed)
    );
    let deep = format!(
        r#"{{"data": {{"users": [{{"x": {}{}}}]}}}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    assert_eq!(
        actual("{ users { id } }", &deep),
        Err(ActualCostError::TooDeep)
    );
}

#[test]
fn fragment_fan_out_maps_to_shapes_linear_in_the_document() {
    let mut query = String::from("{ me { ...H1 } }\n");
    for i in 1..=40 {
        query.push_str(&format!(
            "fragment H{i} on User {{ a: friends {{ ...H{n} }} b: friends {{ ...H{n} }} }}\n",
            n = i + 1
        ));
    }
    query.push_str("fragment H41 on User { id }\n");
    let document = analyse(&query, &settings()).unwrap();
    let operation = document.operation(None).unwrap();
    // 2^40 response paths, 82 distinct positions.
    assert!(operation.response_shape().unwrap().len() <= 83);
    let response = r#"{"data": {"me": {"a": [{"b": [{"a": []}]}], "b": []}}}"#;
    assert_eq!(actual(&query, response), Ok(3));
}

#[test]
fn a_meter_can_travel_with_a_response_body_across_threads() {
    fn sendable<T: Send + 'static>() {}
    sendable::<ActualCost>();
    sendable::<ActualCostError>();
}

/// A JSON value shaped like a response to `DIFFERENTIAL` — its field names, others, lists,
/// `null`s, strings with escapes and numbers in every spelling — rendered with random
/// whitespace.
fn response_value(depth: u32) -> BoxedStrategy<String> {
    let scalar = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-0.5e+3".to_owned()),
        Just("1E400".to_owned()),
        "[a-z \"\\\\/\u{e9}]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#""\u00e9\n\"""#.to_owned()),
    ];
    if depth == 0 {
        return scalar.boxed();
    }
    let key = prop_oneof![
        8 => prop::sample::select(vec!["id", "name", "friends", "posts", "tags", "users", "me"])
            .prop_map(str::to_owned),
        1 => "[a-z]{1,6}",
        1 => Just("n\\u0061me".to_owned()),
        1 => Just("\u{e9}".to_owned()),
    ];
    let space = prop::sample::select(vec!["", " ", "\n  "]);
    prop_oneof![
        1 => scalar,
        3 => prop::collection::vec((key, response_value(depth - 1), space.clone()), 0..5)
            .prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v, s)| format!("{s}\"{k}\"{s}:{s}{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        1 => (prop::collection::vec(response_value(depth - 1), 0..4), space)
            .prop_map(|(items, s)| format!("[{s}{}{s}]", items.join(&format!(",{s}")))),
    ]
    .boxed()
}

const DIFFERENTIAL: &str = "{ users(first: 2) { id name friends { id posts { id tags } } } me { name posts { id } } heavy }";

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// The walk of a body read whole and the streaming meter agree on every body, valid or not,
    /// however it is chunked.
    #[test]
    fn reading_whole_and_streaming_agree(
        users in prop::collection::vec(response_value(4), 0..4),
        me in response_value(4),
        other in response_value(2),
        junk in prop::sample::select(vec!["", "", "", "", "", "", " ", "}", ",", "x"]),
        cut in any::<prop::sample::Index>(),
    ) {
        let users = users.join(",");
        let body = format!(
            "{{\"data\": {{\"users\": [{users}], \"me\": {me}, \"heavy\": 1}}, \"extensions\": {other}}}{junk}"
        );
        let document = analyse(DIFFERENTIAL, &settings()).unwrap();
        let operation = document.operation(None).unwrap();
        let mut streamed = ActualCost::new(operation, None);
        let (head, tail) = body.as_bytes().split_at(cut.index(body.len()));
        streamed.push(head);
        streamed.push(tail);
        let streamed = streamed.finish();
        prop_assert_eq!(ActualCost::new(operation, None).measure(body.as_bytes()), streamed);
    }

    /// The word-at-a-time search finds what a byte-by-byte one finds.
    #[test]
    fn string_stops_are_found_as_byte_by_byte(text in "[a\"\\\\]{0,70}", start in 0usize..4) {
        let bytes = text.as_bytes();
        let start = start.min(bytes.len());
        let expected = bytes[start..]
            .iter()
            .position(|&b| b == b'"')
            .filter(|&at| !bytes[start..start + at].contains(&b'\\'))
            .map(|at| start + at);
        prop_assert_eq!(crate::json_scan::plain_string_end(bytes, start), expected);
    }
}
