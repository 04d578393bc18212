//! Cost semantics on the demo schema: the shapes of issue 12's findings, list-driven sizes,
//! `@skip`/`@include`, `requireOneSlicingArgument`, argument costs, list depth and the
//! breakdown `analyse` prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use graphql_firewall::analysis::{CostError, Schema, Settings, analyse};
use serde_json::{Value, json};

fn settings(sdl: &str) -> Settings {
    Settings {
        schema: Some(Arc::new(Schema::from_sdl(sdl).unwrap())),
        ..Settings::default()
    }
}

fn demo() -> Settings {
    settings(graphql_firewall::demo::SDL)
}

fn estimate(settings: &Settings, query: &str, variables: Value) -> Result<u64, CostError> {
    let document = analyse(query, settings).unwrap();
    document
        .operation(None)
        .unwrap()
        .estimate(variables.as_object())
}

const MAX_COST: u64 = 5000;

#[test]
fn finding_1_a_number_spelled_1e3_sizes_the_list_as_1000() {
    let query = "query Q($n: Int = 1) { users(first: $n) { id friends(first: $n) { id friends(first: $n) { id friends(first: $n) { id friends(first: $n) { id } } } } } }";
    let variables: Value = serde_json::from_str(r#"{"n": 1e3}"#).unwrap();
    let cost = estimate(&demo(), query, variables).unwrap();
    assert!(cost >= 1000u64.pow(4), "{cost}");
    assert!(cost > MAX_COST);
    assert_eq!(
        estimate(&demo(), query, json!({})).unwrap(),
        5,
        "absent: the default 1"
    );
}

#[test]
fn finding_2_a_list_argument_sizes_its_field_by_its_length() {
    let query = "query ($ids: [ID!]!) { usersByIds(ids: $ids) { id friends(first: 10) { id friends(first: 10) { id } } } }";
    let ids: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    let cost = estimate(&demo(), query, json!({ "ids": ids })).unwrap();
    // 1000 × (1 + 10 × (1 + 10 × 1))
    assert_eq!(cost, 1000 * (1 + 10 * 11));
    assert!(cost > MAX_COST);
    // Literal lists and single values count too.
    let literal = "{ usersByIds(ids: [\"u1\", \"u2\", \"u3\"]) { id } }";
    assert_eq!(estimate(&demo(), literal, json!({})), Ok(3));
    assert_eq!(
        estimate(&demo(), "{ usersByIds(ids: \"u1\") { id } }", json!({})),
        Ok(1)
    );
}

#[test]
fn finding_3_a_persisted_documents_cost_follows_its_variables() {
    let feed = "query Feed($n: Int = 10) { users(first: $n) { posts(first: $n) { comments(first: $n) { id } } } }";
    let document = analyse(feed, &demo()).unwrap();
    let operation = document.operation(None).unwrap();
    assert_eq!(operation.estimate(None), Ok(10 * (1 + 10 * (1 + 10))));
    let big = operation.estimate(json!({"n": 1000}).as_object()).unwrap();
    assert_eq!(big, 1000 * (1 + 1000 * (1 + 1000)));
}

#[test]
fn assumed_size_overrides_the_list_argument_rule() {
    let sdl = "type Query { a(ids: [ID!]!): [T] @listSize(assumedSize: 4) b(ids: [ID!]!, tags: [String]): [T] c(ids: [ID!]!): T }
               type T { id: ID }";
    let s = settings(sdl);
    let ids = json!({"ids": ["1", "2", "3", "4", "5", "6"]});
    let q = |f: &str| format!("query ($ids: [ID!]!) {{ {f}(ids: $ids) {{ id }} }}");
    assert_eq!(estimate(&s, &q("a"), ids.clone()), Ok(4));
    // Two list arguments: no single one drives the size; the default list size.
    assert_eq!(estimate(&s, &q("b"), ids.clone()), Ok(10));
    // Not a list field: one object.
    assert_eq!(estimate(&s, &q("c"), ids), Ok(1));
}

#[test]
fn list_typed_slicing_arguments_count_their_length() {
    let sdl = "type Query { a(keys: [String!], first: Int): [T] @listSize(slicingArguments: [\"keys\", \"first\"], requireOneSlicingArgument: false) }
               type T { id: ID }";
    let s = settings(sdl);
    assert_eq!(
        estimate(&s, "{ a(keys: [\"x\", \"y\"]) { id } }", json!({})),
        Ok(2)
    );
    assert_eq!(
        estimate(&s, "{ a(keys: [\"x\"], first: 5) { id } }", json!({})),
        Ok(5)
    );
}

#[test]
fn require_one_slicing_argument_refuses_none_or_several() {
    let sdl = "type Query { a(first: Int, last: Int): [T] @listSize(slicingArguments: [\"first\", \"last\"]) }
               type T { id: ID }";
    let s = settings(sdl);
    assert_eq!(estimate(&s, "{ a(first: 3) { id } }", json!({})), Ok(3));
    for (query, found) in [
        ("{ a { id } }", 0),
        ("{ a(first: 3, last: 4) { id } }", 2),
        ("{ a(first: null) { id } }", 0),
    ] {
        assert_eq!(
            estimate(&s, query, json!({})),
            Err(CostError::InvalidSlicing {
                field: "a".into(),
                found
            }),
            "{query}"
        );
    }
    // A variable that is absent and has no default is not given.
    let q = "query ($f: Int, $l: Int) { a(first: $f, last: $l) { id } }";
    assert_eq!(estimate(&s, q, json!({"f": 2})), Ok(2));
    assert!(estimate(&s, q, json!({})).is_err());
    // The demo's `users(first: Int! = 10)`: the schema default is the one slicing argument.
    assert_eq!(estimate(&demo(), "{ users { id } }", json!({})), Ok(10));
}

#[test]
fn literal_skip_and_include_discount_fields_and_variables_decide_per_request() {
    let q = "query ($s: Boolean = false) { a: users(first: 5) @skip(if: true) { id } b: users(first: 7) @include(if: false) { id } c: users(first: 2) @skip(if: $s) { id } ... @include(if: $s) { d: users(first: 3) { id } } }";
    assert_eq!(estimate(&demo(), q, json!({})), Ok(2));
    assert_eq!(estimate(&demo(), q, json!({"s": true})), Ok(3));
    // Undecidable (an undeclared variable): the worst case counts the field.
    let q = "{ users(first: 4) @skip(if: $nobody) { id } }";
    assert_eq!(estimate(&demo(), q, json!({})), Ok(4));
}

#[test]
fn argument_and_input_field_costs_count_once_per_field() {
    let sdl = "type Query { items(first: Int, filter: Filter, tag: Tag): [Item] @listSize(slicingArguments: [\"first\"]) }
               type Mutation { add(input: [NewItem!]!): Boolean @cost(weight: 0) }
               input Filter { text: String @cost(weight: 4) deep: Filter }
               input NewItem { name: String @cost(weight: 2) }
               scalar Tag @cost(weight: 3)
               type Item { id: ID }";
    let s = settings(sdl);
    // 5 items × 1 + filter (1 + text 4) + tag 3: arguments once, not per item.
    assert_eq!(
        estimate(
            &s,
            "{ items(first: 5, filter: {text: \"x\"}, tag: \"t\") { id } }",
            json!({})
        ),
        Ok(5 + 5 + 3)
    );
    // From a variable: (1 + 4) + (1 + 4) for the nested filter.
    let q = "query ($f: Filter) { items(first: 1, filter: $f) { id } }";
    assert_eq!(
        estimate(&s, q, json!({"f": {"text": "a", "deep": {"text": "b"}}})),
        Ok(1 + 5 + 5)
    );
    // Per element of an input list: 3 × (1 + 2).
    let q = "mutation ($in: [NewItem!]!) { add(input: $in) }";
    let input = json!({"in": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
    assert_eq!(estimate(&s, q, input), Ok(9));
}

#[test]
fn list_depth_counts_nested_list_fields_through_fragments() {
    let q = "{ users { id posts { comments { author { friends { id } } } } } ...F }
             fragment F on Query { usersByIds(ids: []) { friends { friends { friends { posts { id } } } } } }";
    let document = analyse(q, &demo()).unwrap();
    assert_eq!(document.operation(None).unwrap().metrics().list_depth, 5);
    let document = analyse("{ user(id: 1) { name } }", &demo()).unwrap();
    assert_eq!(document.operation(None).unwrap().metrics().list_depth, 0);
}

#[test]
fn the_breakdown_names_the_top_contributors_and_adds_up_to_the_estimate() {
    let q = "query ($n: Int) { users(first: $n) { id friends(first: 3) { ...P } } user(id: 1) { ...P } }
             fragment P on User { posts(first: 2) { id } }";
    let document = analyse(q, &demo()).unwrap();
    let operation = document.operation(None).unwrap();
    let variables = json!({"n": 4});
    let total = operation.estimate(variables.as_object()).unwrap();
    let breakdown = operation.cost_breakdown(variables.as_object(), 10).unwrap();
    assert_eq!(breakdown.iter().map(|c| c.subtotal).sum::<u64>(), total);
    let rows: Vec<(&str, u64, u64)> = breakdown
        .iter()
        .map(|c| (c.path.as_str(), c.multiplier, c.subtotal))
        .collect();
    // posts: 4 × 3 × 2 under users.friends, plus 2 under user.
    assert_eq!(rows[0], ("...P/posts", 26, 26));
    assert_eq!(rows[1], ("users.friends", 12, 12));
    assert_eq!(rows[2], ("users", 4, 4));
    assert_eq!(rows[3], ("user", 1, 1));
    assert_eq!(total, 26 + 12 + 4 + 1);
}

#[test]
fn a_document_alone_is_costed_with_required_variables_not_given() {
    let query = "query ($n: Int!) { users(first: $n) { id } }";
    let document = analyse(query, &demo()).unwrap();
    let operation = document.operation(None).unwrap();
    // A request without `n` is refused, as GraphQL refuses it…
    assert!(matches!(
        operation.estimate(None),
        Err(CostError::VariableInvalid { .. })
    ));
    // …but the document is reviewable: `first` falls back to its schema default.
    assert_eq!(operation.document_cost(), 10);
    assert_eq!(operation.document_cost(), 10);
}
