//! Hostile documents: each has an expected outcome and a bound on the work done, and every one
//! runs on a 64 KiB stack, which only non-recursive code survives at these nesting depths.
//!
//! Small documents live in `tests/attacks/` named `<EXPECTED>__<description>.graphql`; the big
//! ones (over 100 KB, or parametric) are generated here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod oracle;

use graphql_firewall::analysis::{AnalysisError, Document, Limits, Settings, analyse};
use oracle::{SMALL_STACK, on_stack, open_settings};

fn run(src: String, settings: Settings) -> Result<Document, AnalysisError> {
    on_stack(SMALL_STACK, move || analyse(&src, &settings))
}

fn defaults(src: String) -> Result<Document, AnalysisError> {
    run(src, Settings::default())
}

/// Default limits without the token budget, to reach the checks behind it.
fn unbudgeted(src: String) -> Result<Document, AnalysisError> {
    let limits = Limits {
        max_tokens: None,
        ..Limits::default()
    };
    run(
        src,
        Settings {
            limits,
            ..Settings::default()
        },
    )
}

fn token_limit_at(result: Result<Document, AnalysisError>, limit: u32) {
    match result {
        // Work bound: scanning stops at the first token over the limit.
        Err(AnalysisError::TokenLimit { limit: l, at_least }) => {
            assert_eq!((l, at_least), (limit, limit + 1));
        }
        other => panic!("expected the token limit, got {other:?}"),
    }
}

#[test]
fn attack_files_get_their_expected_outcome_on_a_small_stack() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/attacks");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((expected, _)) = name.split_once("__") else {
            continue;
        };
        let src = std::fs::read_to_string(&path).unwrap();
        let result = run(src, open_settings());
        let ok = |r: &Result<Document, AnalysisError>| {
            r.as_ref()
                .map(|d| *d.operation(None).unwrap().metrics())
                .map_err(Clone::clone)
        };
        match expected {
            "FRAGMENT_CYCLE" => assert!(
                matches!(result, Err(AnalysisError::FragmentCycle { .. })),
                "{name}: {result:?}"
            ),
            "UNKNOWN_FRAGMENT" => assert!(
                matches!(result, Err(AnalysisError::UnknownFragment { .. })),
                "{name}: {result:?}"
            ),
            "SYNTAX" => assert!(
                matches!(result, Err(AnalysisError::Syntax { .. })),
                "{name}: {result:?}"
            ),
            "FANOUT" => {
                let m = ok(&result).unwrap();
                assert!(m.fields >= 1 << 30 && m.aliases >= 1 << 30, "{name}: {m:?}");
                assert_eq!(m.depth, 1);
                let document = result.unwrap();
                assert!(document.operation(None).unwrap().document_cost() < u64::MAX);
            }
            introspection => {
                let n: u32 = introspection
                    .strip_prefix("INTROSPECTION_")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(ok(&result).unwrap().introspection_fields, n, "{name}");
            }
        }
        seen += 1;
    }
    assert!(seen >= 15);
}

#[test]
fn fifty_thousand_nested_braces_are_refused_without_recursion() {
    let braces = "{".repeat(50_000);
    token_limit_at(defaults(braces.clone()), 15_000);
    assert!(matches!(
        unbudgeted(braces),
        Err(AnalysisError::Syntax { .. })
    ));
    // The token budget stops it first, then the depth limit; with no limit at all it is a
    // syntax error (never closed), reached through 50,000 levels of explicit stack.
    let fields = "{a".repeat(50_000);
    token_limit_at(defaults(fields.clone()), 15_000);
    assert_eq!(
        unbudgeted(fields.clone()).err(),
        Some(AnalysisError::DepthLimit {
            limit: 10,
            at_least: 11
        })
    );
    assert!(matches!(
        run(fields, open_settings()),
        Err(AnalysisError::Syntax { .. })
    ));
    let inline = format!("{{a{{{}", "...{".repeat(50_000));
    assert!(matches!(
        run(inline, open_settings()),
        Err(AnalysisError::Syntax { .. })
    ));
}

#[test]
fn fifty_thousand_nested_brackets_hit_the_value_nesting_limit() {
    let nesting = Err(AnalysisError::ValueNestingLimit { limit: 32 });
    let deep = "[".repeat(50_000);
    token_limit_at(defaults(format!("{{ a(x: {deep}) }}")), 15_000);
    let defaults = unbudgeted;
    assert_eq!(defaults(format!("{{ a(x: {deep}) }}")).map(|_| ()), nesting);
    assert_eq!(
        defaults(format!("query ($v: [Int] = {deep}) {{ a }}")).map(|_| ()),
        nesting
    );
    assert_eq!(
        defaults(format!("{{ a @d(x: {deep}) }}")).map(|_| ()),
        nesting
    );
    assert_eq!(
        defaults(format!("query ($v: {deep}Int) {{ a }}")).map(|_| ()),
        nesting
    );
    let objects = "{a:".repeat(50_000);
    assert_eq!(
        defaults(format!("{{ f(x: {objects}) }}")).map(|_| ()),
        nesting
    );
    // Just under the limit is fine.
    let ok = format!("{{ f(x: {}1{}) }}", "[".repeat(32), "]".repeat(32));
    assert!(defaults(ok).is_ok());
}

#[test]
fn thousand_aliases_and_directives_and_five_thousand_fields_are_measured() {
    let aliases: String = (0..1000).map(|i| format!("a{i}: x ")).collect();
    let doc = defaults(format!("{{ {aliases} }}")).unwrap();
    assert_eq!(doc.operation(None).unwrap().metrics().aliases, 1000);
    let directives = "@d ".repeat(1000);
    let doc = defaults(format!("{{ a {directives} }}")).unwrap();
    assert_eq!(doc.operation(None).unwrap().metrics().directives, 1000);
    let fields = "a ".repeat(5000);
    let doc = defaults(format!("{{ {fields} }}")).unwrap();
    assert_eq!(doc.operation(None).unwrap().metrics().fields, 5000);
    assert_eq!(doc.tokens(), 5002);
}

#[test]
fn ten_thousand_operations_exceed_the_token_budget_or_are_all_indexed() {
    let ops: String = (0..10_000)
        .map(|i| format!("query Q{i} {{ a }}\n"))
        .collect();
    token_limit_at(defaults(ops.clone()), 15_000);
    let doc = run(ops, open_settings()).unwrap();
    assert_eq!(doc.operations().count(), 10_000);
    assert_eq!(doc.operation(Some("Q9999")).unwrap().name(), Some("Q9999"));
    assert_eq!(
        doc.operation(Some("Nope")).err(),
        Some(AnalysisError::OperationNotFound {
            operation: Some("Nope".into())
        })
    );
    assert_eq!(
        doc.operation(None).err(),
        Some(AnalysisError::OperationNotFound { operation: None })
    );
}

#[test]
fn one_megabyte_single_line_stops_at_the_token_limit() {
    let fields = format!("{{ {}}}", "a ".repeat(500_000));
    assert!(fields.len() > 1_000_000);
    token_limit_at(defaults(fields), 15_000);
    let comments = "# comment\n".repeat(100_000);
    token_limit_at(defaults(comments), 15_000);
    let strings = format!("{{ a(x: [{}]) }}", "\"s\" ".repeat(300_000));
    token_limit_at(defaults(strings), 15_000);
}

#[test]
fn huge_names_and_strings_stay_single_tokens_and_errors_stay_short() {
    let name = "a".repeat(1_000_000);
    let error = defaults(format!("{{ ...{name} }}")).unwrap_err();
    assert!(error.to_string().len() < 200, "{error}");
    let string = format!("{{ a(x: \"{}\") }}", "x".repeat(1_000_000));
    assert_eq!(defaults(string).unwrap().tokens(), 8);
}

#[test]
fn nul_bytes_and_control_characters_are_syntax_errors_outside_strings() {
    for src in ["\0", "{ a }\0", "{\u{1}a }", "{ a\u{7f} }"] {
        assert!(
            matches!(defaults(src.into()), Err(AnalysisError::Syntax { .. })),
            "{src:?}"
        );
    }
}
