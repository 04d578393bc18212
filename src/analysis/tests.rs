#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

fn open() -> Settings {
    Settings {
        limits: Limits {
            max_tokens: None,
            max_depth: None,
            max_value_nesting: 32,
        },
        ..Settings::default()
    }
}

fn metrics(src: &str) -> Metrics {
    *analyse(src, &open())
        .unwrap()
        .operation(None)
        .unwrap()
        .metrics()
}

fn cost(src: &str, variables: serde_json::Value) -> u64 {
    let document = analyse(src, &open()).unwrap();
    let operation = document.operation(None).unwrap();
    operation.estimate(variables.as_object()).unwrap()
}

fn cost_error(src: &str, variables: serde_json::Value) -> CostError {
    let document = analyse(src, &open()).unwrap();
    let operation = document.operation(None).unwrap();
    operation.estimate(variables.as_object()).unwrap_err()
}

#[test]
fn counts_depth_from_one_at_the_root_and_ignores_typename() {
    assert_eq!(metrics("{ a }").depth, 1);
    assert_eq!(metrics("{ a { __typename } }").depth, 1);
    assert_eq!(metrics("{ __typename }").depth, 0);
    assert_eq!(metrics("{ a { b { c } } d }").depth, 3);
}

#[test]
fn adds_no_depth_for_spreads_or_inline_fragments() {
    let m = metrics("{ a { ...F ... on T { ... { c } } } } fragment F on T { b { c } }");
    assert_eq!(m.depth, 3);
    assert_eq!(metrics("{ ...F } fragment F on Q { a }").depth, 1);
}

#[test]
fn counts_expanded_aliases_including_typename_aliases() {
    let m = metrics("{ ...F ...F x: __typename } fragment F on Q { a: b c }");
    assert_eq!(m.aliases, 3);
    assert_eq!(m.fields, 5);
}

#[test]
fn counts_root_fields_through_root_level_fragments_only() {
    let m = metrics("{ a ...F ... { b c } d { ...F } } fragment F on Q { e f }");
    assert_eq!(m.root_fields, 6);
}

#[test]
fn counts_directives_everywhere_in_the_executed_operation() {
    let m = metrics(
        "query Q($v: Int @a) @b { f @c ...F @d ... @e { g } } fragment F on Q @f { h @g } fragment Unused on Q @h { i }",
    );
    assert_eq!(m.directives, 7);
}

#[test]
fn finds_introspection_in_every_disguise() {
    assert_eq!(
        metrics("{ x: __schema { types { name } } }").introspection_fields,
        1
    );
    assert_eq!(
        metrics("{ ...F } fragment F on Q { __type(name: \"A\") { name } }").introspection_fields,
        1
    );
    assert_eq!(
        metrics("{ ... on Q { a { __schema { b } } } }").introspection_fields,
        1
    );
    assert_eq!(
        metrics("{ ...__schema } fragment __schema on Q { a __typename }").introspection_fields,
        0
    );
}

#[test]
fn picks_operations_as_graphql_get_operation_does() {
    let document = analyse("query A { a } query B { b } mutation C { c }", &open()).unwrap();
    assert_eq!(document.operation(Some("B")).unwrap().name(), Some("B"));
    assert_eq!(
        document.operation(Some("C")).unwrap().kind(),
        OperationKind::Mutation
    );
    assert_eq!(
        document.operation(None).unwrap_err(),
        AnalysisError::OperationNotFound { operation: None }
    );
    assert!(document.operation(Some("D")).is_err());
    assert_eq!(document.operations().count(), 3);
    assert!(document.heap_bytes() > 0);
}

#[test]
fn rejects_document_level_errors() {
    let err = |src| analyse(src, &open()).unwrap_err();
    assert_eq!(err("{ a } { b }"), AnalysisError::AnonymousNotAlone);
    assert_eq!(
        err("query A { a } query A { b }"),
        AnalysisError::DuplicateOperation {
            operation: "A".into()
        }
    );
    assert_eq!(err("fragment F on Q { a }"), AnalysisError::NoOperation);
    assert_eq!(
        err("{ ...F } fragment F on Q { a } fragment F on Q { b }"),
        AnalysisError::DuplicateFragment {
            fragment: "F".into()
        }
    );
    assert_eq!(
        err("{ ...G }"),
        AnalysisError::UnknownFragment {
            fragment: "G".into()
        }
    );
    assert_eq!(
        err("{ ...A } fragment A on Q { a ...A @d b }"),
        AnalysisError::FragmentCycle {
            fragment: "A".into()
        }
    );
    assert_eq!(
        err(
            "{ a } fragment A on Q { ...B } fragment B on Q { x { ...C } } fragment C on Q { ... { ...A } }"
        ),
        AnalysisError::FragmentCycle {
            fragment: "A".into()
        }
    );
}

#[test]
fn truncates_names_in_errors_on_a_char_boundary() {
    let long = "é".repeat(100);
    match analyse(&format!("{{ ...{long} }}"), &open()) {
        Err(AnalysisError::Syntax { .. }) => {}
        other => panic!("non-ASCII names are not names: {other:?}"),
    }
    let long = "a".repeat(100);
    match analyse(&format!("{{ ...{long} }}"), &open()).unwrap_err() {
        AnalysisError::UnknownFragment { fragment } => assert_eq!(fragment.len(), 64),
        other => panic!("{other:?}"),
    }
    assert_eq!(truncate(&"é".repeat(40)).len(), 64);
    assert_eq!(truncate(&format!("a{}", "é".repeat(40))).len(), 63);
}

#[test]
fn costs_composites_one_and_scalars_zero_without_a_schema() {
    assert_eq!(cost("{ a b { c d { e } } }", serde_json::json!({})), 2);
    assert_eq!(
        cost(
            "{ __typename __schema { types { fields { name } } } }",
            serde_json::json!({})
        ),
        0
    );
}

#[test]
fn multiplies_list_subtrees_by_slicing_arguments_literals_variables_and_defaults() {
    let q = "query ($n: Int, $m: Int = 7) { a(first: $n) { b(last: 3) { c } } z(first: $m) { y } }";
    assert_eq!(cost(q, serde_json::json!({"n": 5})), 5 * (1 + 3) + 7);
    assert_eq!(cost(q, serde_json::json!({"n": 5, "m": 2})), 20 + 2);
    // GraphQL `Int` coercion: any spelling of a whole number.
    for spelled in ["5e0", "5.0", "0.5e1", "5.0000000000000001"] {
        let variables: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"n": {spelled}}}"#)).unwrap();
        assert_eq!(cost(q, variables), 5 * (1 + 3) + 7, "{spelled}");
    }
    // Missing or null: not given, the default list size.
    assert_eq!(cost(q, serde_json::json!({})), 10 * 4 + 7);
    assert_eq!(cost(q, serde_json::json!({"n": null})), 10 * 4 + 7);
    // Negative: unknowable, the worst case.
    assert_eq!(cost(q, serde_json::json!({"n": -4})), 1000 * 4 + 7);
    // Fractions, out of range, strings: not an `Int`, refused.
    for bad in [
        serde_json::json!({"n": 2.5}),
        serde_json::json!({"n": 1e20}),
        serde_json::json!({"n": "5"}),
        serde_json::json!({"n": true}),
        serde_json::json!({"n": 4_294_967_296_u64}),
    ] {
        assert!(
            matches!(cost_error(q, bad.clone()), CostError::VariableInvalid { ref variable, expected: "Int", .. } if variable == "n"),
            "{bad}"
        );
    }
    assert_eq!(
        cost("{ a(first: 2, last: 9) { b } }", serde_json::json!({})),
        9
    );
    assert_eq!(cost("{ a(limit: -3) { b } }", serde_json::json!({})), 1000);
    assert_eq!(
        cost("{ a(limit: \"3\") { b } }", serde_json::json!({})),
        1000
    );
    assert_eq!(cost("{ a(limit: null) { b } }", serde_json::json!({})), 10);
}

#[test]
fn costs_mutation_root_fields_ten_plus_their_selection() {
    assert_eq!(
        cost("mutation { a { b { c } } d }", serde_json::json!({})),
        10 + 1 + 10
    );
    assert_eq!(
        cost(
            "mutation { ...M } fragment M on Mutation { a }",
            serde_json::json!({})
        ),
        10
    );
}

#[test]
fn saturates_on_exponential_fragment_fan_out_in_microseconds() {
    let mut src = String::from("{ ...F1 }\n");
    for i in 1..=70 {
        src.push_str(&format!("fragment F{i} on Q {{ a: x(first: 1000) {{ y }} ...F{n} b: x(first: 1000) {{ y }} ...F{n} }}\n", n = i + 1));
    }
    src.push_str("fragment F71 on Q { leaf(first: 1000) { z } }\n");
    let document = analyse(&src, &open()).unwrap();
    let operation = document.operation(None).unwrap();
    assert_eq!(operation.metrics().fields, u32::MAX);
    assert_eq!(operation.metrics().aliases, u32::MAX);
    assert_eq!(operation.document_cost(), u64::MAX);
}

#[test]
fn documents_can_be_shared_across_threads_by_the_cache() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Document>();
    shareable::<AnalysisError>();
    shareable::<Schema>();
}
