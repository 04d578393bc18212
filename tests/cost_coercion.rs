//! How the firewall reads a request's variables where they size an operation, row by row
//! against what GraphQL servers do with the same JSON (GraphQL spec §3.5.1 `Int`, §3.5.2
//! `Boolean`, §3.11 list coercion, §6.4.1 `CoerceVariableValues`; graphql-js 16
//! `GraphQLInt.parseValue` / `coerceInputValue`, graphql-core 3.2 `coerce_int`). Where a
//! reference server accepts a value, the firewall sizes the list as that server would; where
//! every reference refuses it, the firewall refuses it (`VARIABLES_INVALID`) instead of
//! guessing. async-graphql 7.2, the demo backend, is stricter than both on number spellings:
//! `demo_backend_refuses_number_spellings_graphql_js_accepts` pins that difference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use graphql_firewall::analysis::{CostError, Schema, Settings, analyse};

fn settings() -> Settings {
    Settings {
        schema: Some(Arc::new(
            Schema::from_sdl(graphql_firewall::demo::SDL).unwrap(),
        )),
        ..Settings::default()
    }
}

/// What the firewall makes of `variables` (JSON text) for `query`: the list size it reads
/// (the estimate of `{ … { id } }`, one per item), or the refusal.
fn size(query: &str, variables: &str) -> Result<u64, CostError> {
    let document = analyse(query, &settings()).unwrap();
    let variables: serde_json::Value = serde_json::from_str(variables).unwrap();
    document
        .operation(None)
        .unwrap()
        .estimate(variables.as_object())
}

const NULLABLE: &str = "query ($n: Int) { users(first: $n) { id } }";
const WITH_DEFAULT: &str = "query ($n: Int = 3) { users(first: $n) { id } }";
const REQUIRED: &str = "query ($n: Int!) { users(first: $n) { id } }";
const IDS: &str = "query ($ids: [ID!]) { usersByIds(ids: $ids) { id } }";
const SKIP: &str =
    "query ($s: Boolean!) { users(first: 5) @skip(if: $s) { id } me: user(id: 1) { id } }";

#[test]
fn int_variables_coerce_as_graphql_js_and_graphql_core_do() {
    let refused = |r: Result<u64, CostError>| matches!(r, Err(CostError::VariableInvalid { .. }));
    // (variables, firewall's size, what graphql-js 16 and graphql-core 3.2 do)
    let table: &[(&str, Option<u64>, &str)] = &[
        (r#"{"n": 1000}"#, Some(1000), "both: 1000"),
        (
            r#"{"n": 1e3}"#,
            Some(1000),
            "JSON.parse gives 1000, Number.isInteger; core: float 1000.0 is whole",
        ),
        (r#"{"n": 1000.0}"#, Some(1000), "same number as 1e3 in both"),
        (
            r#"{"n": 1000.00000000000001}"#,
            Some(1000),
            "is 1000 as a double in both",
        ),
        (
            r#"{"n": 1E+3}"#,
            Some(1000),
            "exponent spellings are one number",
        ),
        (r#"{"n": 0}"#, Some(0), "both: 0"),
        (
            r#"{"n": -2147483648}"#,
            Some(1000),
            "both accept; a negative size is the worst case",
        ),
        (
            r#"{"n": 2147483647}"#,
            Some(2_147_483_647),
            "both: the largest Int",
        ),
        (
            r#"{"n": 2147483648}"#,
            None,
            "both: 'Int cannot represent non 32-bit signed integer value'",
        ),
        (r#"{"n": 3e9}"#, None, "both: non 32-bit"),
        (
            r#"{"n": 2.5}"#,
            None,
            "both: 'Int cannot represent non-integer value'",
        ),
        (
            r#"{"n": "10"}"#,
            None,
            "both: strings are not Ints on input",
        ),
        (r#"{"n": true}"#, None, "both: booleans are not Ints"),
        (r#"{"n": [10]}"#, None, "both: a list is not an Int"),
        (r#"{"n": {"v": 10}}"#, None, "both: an object is not an Int"),
    ];
    for &(variables, expected, reference) in table {
        let got = size(NULLABLE, variables);
        match expected {
            Some(n) => assert_eq!(got, Ok(n), "{variables}: {reference}"),
            None => assert!(
                refused(got.clone()),
                "{variables}: {reference}: got {got:?}"
            ),
        }
    }
    // `1e400` is not JSON serde_json reads (out of range), so the body is refused before any
    // variable is looked at; JSON.parse gives Infinity and both references refuse it.
    assert!(serde_json::from_str::<serde_json::Value>(r#"{"n": 1e400}"#).is_err());
}

#[test]
fn defaults_apply_only_to_absent_variables_and_null_is_a_value() {
    // §6.4.1: no value and a default → the default; explicit null → null.
    assert_eq!(
        size(WITH_DEFAULT, "{}"),
        Ok(3),
        "absent: the variable's default"
    );
    // null: the argument is not given (requireOneSlicingArgument on `users` then refuses it,
    // as `first: Int!` makes graphql-js refuse `null` too).
    assert_eq!(
        size(WITH_DEFAULT, r#"{"n": null}"#),
        Err(CostError::InvalidSlicing {
            field: "users".into(),
            found: 0
        })
    );
    // Absent without a variable default: the argument's schema default (`first: Int! = 10`).
    assert_eq!(size(NULLABLE, "{}"), Ok(10), "graphql-js: argument default");
    // A non-null variable must be given (graphql-js: 'Variable "$n" of required type "Int!"
    // was not provided.') and must not be null.
    assert!(
        matches!(size(REQUIRED, "{}"), Err(CostError::VariableInvalid { reason, .. }) if reason.contains("missing"))
    );
    assert!(
        matches!(size(REQUIRED, r#"{"n": null}"#), Err(CostError::VariableInvalid { reason, .. }) if reason.contains("null"))
    );
}

#[test]
fn lists_size_by_their_length_and_single_values_are_lists_of_one() {
    // §3.11: a single value where a list is expected is a list of one (graphql-js
    // `coerceInputValue`, graphql-core `coerce_input_value`).
    assert_eq!(size(IDS, r#"{"ids": ["u1", "u2", "u3"]}"#), Ok(3));
    assert_eq!(size(IDS, r#"{"ids": "u1"}"#), Ok(1));
    assert_eq!(size(IDS, r#"{"ids": 7}"#), Ok(1));
    assert_eq!(size(IDS, r#"{"ids": []}"#), Ok(0));
    // Null or absent: not given, the default list size.
    assert_eq!(size(IDS, r#"{"ids": null}"#), Ok(10));
    assert_eq!(size(IDS, "{}"), Ok(10));
}

#[test]
fn booleans_decide_skip_and_include_and_nothing_else_is_a_boolean() {
    // `users(first: 5)` costs 5, `user` 1.
    assert_eq!(size(SKIP, r#"{"s": true}"#), Ok(1));
    assert_eq!(size(SKIP, r#"{"s": false}"#), Ok(6));
    for not_boolean in [r#"{"s": "true"}"#, r#"{"s": 1}"#, r#"{"s": [true]}"#] {
        // Both references: 'Boolean cannot represent a non boolean value'.
        assert!(
            matches!(
                size(SKIP, not_boolean),
                Err(CostError::VariableInvalid { .. })
            ),
            "{not_boolean}"
        );
    }
}

#[tokio::test]
async fn demo_backend_refuses_number_spellings_graphql_js_accepts() {
    let schema = graphql_firewall::demo::schema::build();
    for (variables, accepted) in [
        (r#"{"n": 2}"#, true),
        (r#"{"n": 2.0}"#, false),
        (r#"{"n": 2e0}"#, false),
    ] {
        let variables: serde_json::Value = serde_json::from_str(variables).unwrap();
        let request = async_graphql::Request::new(NULLABLE)
            .variables(async_graphql::Variables::from_json(variables.clone()));
        let response = schema.execute(request).await;
        assert_eq!(response.errors.is_empty(), accepted, "{variables}");
        // The firewall reads all three as 2: the estimate covers the servers that accept them.
        assert_eq!(size(NULLABLE, &variables.to_string()), Ok(2));
    }
}
