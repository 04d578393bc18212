//! Schema-aware analysis: `@cost`, `@listSize` (slicing arguments, assumed size, sized fields),
//! list and scalar types from the SDL, and counting of names the schema does not define.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use graphql_firewall::analysis::{Schema, Settings, analyse};
use serde_json::json;

fn settings() -> Settings {
    let sdl = include_str!("schema/annotated.graphql");
    Settings {
        schema: Some(Arc::new(Schema::from_sdl(sdl).unwrap())),
        ..Settings::default()
    }
}

fn cost(src: &str, variables: serde_json::Value) -> u64 {
    let document = analyse(src, &settings()).unwrap();
    document
        .operation(None)
        .unwrap()
        .estimate(variables.as_object())
        .unwrap()
}

fn unknown(src: &str) -> u32 {
    let document = analyse(src, &settings()).unwrap();
    document
        .operation(None)
        .unwrap()
        .metrics()
        .unknown_schema_names
}

#[test]
fn objects_cost_one_and_scalars_and_enums_cost_nothing() {
    assert_eq!(cost("{ me { id name role avatar } }", json!({})), 1);
}

#[test]
fn cost_directives_on_fields_and_types_override_the_defaults() {
    assert_eq!(cost("{ expensive { rows } }", json!({})), 25);
    assert_eq!(
        cost(
            "{ node(id: 1) { ... on Post { author { name } } } }",
            json!({})
        ),
        2
    );
    assert_eq!(
        cost(
            "mutation { like(postId: 1) createPost(title: \"t\") { id } }",
            json!({})
        ),
        3 + 10
    );
}

#[test]
fn slicing_arguments_size_lists_from_literals_variables_and_defaults() {
    assert_eq!(cost("{ users(first: 4) { id } }", json!({})), 4);
    assert_eq!(cost("{ users(first: 4, last: 6) { id } }", json!({})), 6);
    let q = "query ($n: Int = 3) { users(first: $n) { friends { id } } }";
    assert_eq!(cost(q, json!({"n": 2})), 2 * (1 + 10));
    assert_eq!(cost(q, json!({})), 3 * (1 + 10));
    // Not an `Int`: refused, never guessed (the variable's default does not stand in).
    let document = analyse(q, &settings()).unwrap();
    let estimate = document
        .operation(None)
        .unwrap()
        .estimate(json!({"n": "two"}).as_object());
    assert!(estimate.is_err());
    // No slicing argument: the default list size.
    assert_eq!(cost("{ users { id } }", json!({})), 10);
}

#[test]
fn assumed_size_applies_without_slicing_arguments() {
    assert_eq!(
        cost(
            "{ search(term: \"x\") { ... on User { friends { id } } } }",
            json!({})
        ),
        5 * (1 + 10)
    );
}

#[test]
fn sized_fields_take_the_parent_slicing_size() {
    let q = "query ($n: Int) { me { posts(first: $n) { totalCount edges { node { author { id } } } nodes { id } } } }";
    // me 1 + posts 1 + edges n×(1 + node 1 + author 1) + nodes n×1
    assert_eq!(cost(q, json!({"n": 7})), 1 + 1 + 7 * 3 + 7);
    assert_eq!(cost(q, json!({})), 1 + 1 + 10 * 3 + 10);
    // Through an inline fragment, too.
    let q = "{ me { posts(first: 2) { ... on PostConnection { nodes { id } } } } }";
    assert_eq!(cost(q, json!({})), 1 + 1 + 2);
}

#[test]
fn sized_fields_reach_into_named_fragments_spread_below_the_sized_field() {
    let q = "query ($n: Int) { me { posts(first: $n) { ...Conn } } }
        fragment Conn on PostConnection { totalCount edges { node { id } } ... { ...Nodes } }
        fragment Nodes on PostConnection { nodes { id } }";
    // me 1 + posts 1 + edges n×(1 + node 1) + nodes n×1
    assert_eq!(cost(q, json!({"n": 500})), 2 + 500 * 2 + 500);
    assert_eq!(cost(q, json!({})), 2 + 10 * 2 + 10);
    // The same fragment elsewhere, outside any sized field, keeps its own sizes.
    let q = "query ($n: Int) { me { posts(first: $n) { ...Conn } } users(first: 2) { posts { ...Conn } } }
        fragment Conn on PostConnection { edges { cursor } }";
    // me 1 + posts 1 + edges 300×1; users 2×(1 + posts 1 + edges 10×1)
    assert_eq!(cost(q, json!({"n": 300})), 2 + 300 + 2 * (2 + 10));
}

#[test]
fn introspection_and_typename_are_free() {
    assert_eq!(
        cost(
            "{ __typename __schema { types { name } } me { __typename } }",
            json!({})
        ),
        1
    );
}

#[test]
fn counts_fields_arguments_and_type_conditions_the_schema_lacks() {
    assert_eq!(unknown("{ me { id name } users(first: 1) { role } }"), 0);
    assert_eq!(unknown("{ me { password } }"), 1);
    assert_eq!(unknown("{ user(id: 1, debug: true) { id } }"), 1);
    assert_eq!(unknown("{ me { ... on Admin { id } } }"), 1);
    assert_eq!(unknown("{ ...F } fragment F on Ghost { a b }"), 1);
    // Below an unknown field nothing more is checked; the fragment counts per spread.
    assert_eq!(
        unknown("{ secret { a b c } ...G ...G } fragment G on Root { nope }"),
        3
    );
    // Unions only have `__typename`; introspection is not a schema name.
    assert_eq!(
        unknown("{ search(term: \"a\") { __typename id } __schema { x } }"),
        1
    );
    // Fields of the extension are known.
    assert_eq!(unknown("{ me { avatar(size: 2) } }"), 0);
    // Mutation root from the schema definition.
    assert_eq!(unknown("mutation { like(postId: 1) }"), 0);
}

#[test]
fn schema_errors_do_not_panic_on_odd_sdl() {
    for sdl in [
        "type",
        "type Q { a: Int @cost(weight: \"heavy\") }",
        "type Q { a: [Int] @listSize(assumedSize: -1) }",
        "type Q { a: Int @cost }",
        "{ a }",
    ] {
        assert!(Schema::from_sdl(sdl).is_err(), "{sdl}");
    }
    assert!(
        Schema::from_sdl(
            "type Q { a: [[Int!]] @listSize(assumedSize: 3, slicingArguments: \"first\") }"
        )
        .is_ok()
    );
}

#[test]
fn sized_contexts_stay_linear_under_exponential_fragment_fan_out() {
    let mut q = String::from("{ me { posts(first: 5) { ...C1 } } }\n");
    for i in 1..=64 {
        q.push_str(&format!(
            "fragment C{i} on PostConnection {{ edges {{ cursor }} ...C{n} ...C{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str("fragment C65 on PostConnection { nodes { id } }\n");
    // 2^64 copies of `nodes` at size 5 overflow: the sum saturates, in microseconds.
    assert_eq!(cost(&q, json!({})), u64::MAX);
}

#[test]
fn an_sdl_naming_an_undefined_type_is_refused_naming_the_type_and_where_it_is_used() {
    let error =
        Schema::from_sdl("type Query { a: Strin, b(first: Int): [Post!]! }\ntype Post { id: ID! }")
            .unwrap_err()
            .to_string();
    assert!(
        error.contains("`Strin`") && error.contains("Query.a"),
        "{error}"
    );
    let error =
        Schema::from_sdl("type Query { a(filter: Filter): Int }\ninput Filter { by: Ordr }")
            .unwrap_err()
            .to_string();
    assert!(
        error.contains("`Ordr`") && error.contains("Filter.by"),
        "{error}"
    );
    assert!(
        !error.contains("other"),
        "Filter is defined, only Ordr is not: {error}"
    );
    // Types defined after their use, built-in scalars, extensions: all fine.
    assert!(
        Schema::from_sdl(
            "type Query { a: A, b: Boolean, c: Float }\ntype A { id: ID! }\nextend type A { n: Int }"
        )
        .is_ok()
    );
}
