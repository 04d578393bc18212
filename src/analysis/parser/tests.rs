#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

fn limits() -> Limits {
    Limits {
        max_tokens: None,
        max_depth: None,
        max_value_nesting: 32,
    }
}

fn ok(src: &str) {
    if let Err(e) = parse(src, &limits()) {
        panic!("{src:?} must parse: {e}");
    }
}

fn syntax_error(src: &str) {
    match parse(src, &limits()) {
        Err(AnalysisError::Syntax { .. }) => {}
        other => panic!("{src:?} must be a syntax error, got {other:?}"),
    }
}

#[test]
fn parses_every_executable_construct() {
    ok(r#"
        query Q($a: Int = 1 @d, $b: [[String!]!]! @d(x: 1) @e, $c: In = {x: [1, 2.5, "s", """b""", true, null, E]}) @op(a: $a) {
          alias: field(a: 1, b: $a, c: [$b, {d: $c}], e: ENUM) @skip(if: $b) @include(if: true) { sub }
          ... on T @d { x }
          ... @d { y }
          ... { z }
          ...F @d
        }
        mutation { m }
        subscription S { s }
        fragment F on T @d(a: $a) { f }
    "#);
    ok("{ a }");
    ok("query { a }");
    ok("{ query mutation fragment on subscription true null }");
    ok("{ a(x: []) b(x: {}) c(x: [[]]) }");
}

#[test]
fn rejects_empty_documents_and_empty_selection_sets() {
    syntax_error("");
    syntax_error("  # only a comment\n");
    syntax_error("{ }");
    syntax_error("{ a { } }");
    syntax_error("query Q() { a }");
    syntax_error("{ a() }");
}

#[test]
fn rejects_variables_in_constant_positions() {
    syntax_error("query ($a: Int = $b) { a }");
    syntax_error("query ($a: Int @d(x: $a)) { a }");
    syntax_error("query ($a: Int = [1, {x: $b}]) { a }");
}

#[test]
fn rejects_malformed_definitions() {
    syntax_error("fragment on on T { a }");
    syntax_error("fragment F { a }");
    syntax_error("fragment F on { a }");
    syntax_error("query Q");
    syntax_error("{ a } }");
    syntax_error("{ a: }");
    syntax_error("{ a(b) }");
    syntax_error("{ a(b:) }");
    syntax_error("{ ... on { a } }");
    syntax_error("{ a(x: [1, 2) }");
    syntax_error("{ a(x: {b 1}) }");
    syntax_error("query ($a: [Int) { a }");
    syntax_error("query ($a: Int!!) { a }");
    syntax_error("query (a: Int) { a }");
    syntax_error("{ a @ }");
    syntax_error("Query { a }");
    syntax_error("\"description\" query { a }");
}

#[test]
fn refuses_type_system_definitions() {
    for src in [
        "type Q { a: Int }",
        "{ a } scalar X",
        "extend type Q { b: Int }",
        "schema { query: Q }",
        "directive @d on FIELD",
    ] {
        assert!(
            matches!(
                parse(src, &limits()),
                Err(AnalysisError::NotExecutable { .. })
            ),
            "{src}"
        );
    }
}

#[test]
fn enforces_value_nesting_in_arguments_defaults_directives_and_types() {
    let limits = Limits {
        max_value_nesting: 3,
        ..limits()
    };
    let refused = Err(AnalysisError::ValueNestingLimit { limit: 3 });
    assert!(parse("{ a(x: [[[1]]]) }", &limits).is_ok());
    assert_eq!(parse("{ a(x: [[[[1]]]]) }", &limits).map(|_| ()), refused);
    assert_eq!(
        parse("{ a(x: {a: {b: {c: {d: 1}}}}) }", &limits).map(|_| ()),
        refused
    );
    assert_eq!(
        parse("query ($a: I = [[[[1]]]]) { a }", &limits).map(|_| ()),
        refused
    );
    assert_eq!(
        parse("{ a @d(x: [{a: [{}]}]) }", &limits).map(|_| ()),
        refused
    );
    assert_eq!(
        parse("query ($a: [[[[Int]]]]) { a }", &limits).map(|_| ()),
        refused
    );
}

#[test]
fn enforces_raw_depth_on_fields_but_not_on_typename_or_inline_fragments() {
    let limits = Limits {
        max_depth: Some(2),
        ..limits()
    };
    assert!(parse("{ a { b { __typename } } }", &limits).is_ok());
    assert!(parse("{ a { ... { ... on T { b } } } }", &limits).is_ok());
    assert_eq!(
        parse("{ a { b { c } } }", &limits).map(|_| ()),
        Err(AnalysisError::DepthLimit {
            limit: 2,
            at_least: 3
        })
    );
}

#[test]
fn records_alias_arguments_and_levels() {
    let (ir, tokens) = parse("{ x: a(first: 5, after: $c, last: -1) { b } }", &limits()).unwrap();
    assert_eq!(tokens, 20);
    let a = &ir.nodes[0];
    assert!(a.alias.is_some() && a.has_selection && a.level == 1);
    let args = ir.arguments_of(a);
    assert_eq!(args[0].value, ValueSummary::Int(5));
    assert!(matches!(args[1].value, ValueSummary::Variable(_)));
    assert_eq!(args[2].value, ValueSummary::Int(-1));
    assert_eq!(
        args[2]
            .value_span
            .text("{ x: a(first: 5, after: $c, last: -1) { b } }"),
        "-1"
    );
    assert_eq!(ir.nodes[1].level, 2);
    assert_eq!(ir.nodes[1].parent, 0);
}

#[test]
fn summarises_lists_booleans_nulls_and_conditions() {
    let src = "query Q($ids: [[ID!]]! = [[1], [2]], $n: Int) { a(ids: [1, [2, 3], {x: [4]}], b: true, c: null, d: []) @skip(if: $n) @include(if: false) { b @skip(if: true) } }";
    let (ir, _) = parse(src, &limits()).unwrap();
    let args = ir.arguments_of(&ir.nodes[0]);
    assert_eq!(args[0].value, ValueSummary::List(3));
    assert_eq!(args[1].value, ValueSummary::Bool(true));
    assert_eq!(args[2].value, ValueSummary::Null);
    assert_eq!(args[3].value, ValueSummary::List(0));
    let ids = &ir.definitions[0].variables[0];
    assert_eq!(ids.ty.name.text(src), "ID");
    assert_eq!((ids.ty.list_depth, ids.ty.non_null), (2, true));
    assert_eq!(ids.default, Some(ValueSummary::List(2)));
    assert_eq!(ids.default_span.text(src), "[[1], [2]]");
    let n = &ir.definitions[0].variables[1];
    assert_eq!(
        (n.ty.list_depth, n.ty.non_null, n.default),
        (0, false, None)
    );
    let conditions: Vec<_> = ir
        .conditions
        .iter()
        .map(|c| (c.node, c.skip, c.value))
        .collect();
    assert!(matches!(
        conditions[0],
        (0, true, ValueSummary::Variable(_))
    ));
    assert_eq!(conditions[1], (0, false, ValueSummary::Bool(false)));
    assert_eq!(conditions[2], (1, true, ValueSummary::Bool(true)));
}

#[test]
fn treats_integers_outside_graphql_int_as_unknown_sizes() {
    assert_eq!(int_summary("2147483647"), ValueSummary::Int(2_147_483_647));
    assert_eq!(int_summary("2147483648"), ValueSummary::Other);
    assert_eq!(int_summary("-1"), ValueSummary::Int(-1));
    assert_eq!(int_summary("-2147483649"), ValueSummary::Other);
    assert_eq!(int_summary("99999999999999999999999"), ValueSummary::Other);
}
