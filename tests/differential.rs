//! Differential tests against async-graphql-parser: the corpus in `tests/corpus/` and random
//! documents must get the same syntax verdict, and random documents the same metrics and
//! schema-less cost as a simple recursive reference over the oracle's AST.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod oracle;

use async_graphql_parser::parse_query;
use graphql_firewall::analysis::analyse;
use oracle::{BIG_STACK, Reference, on_stack, open_settings, oracle_accepts, syntax_level};
use proptest::prelude::*;

fn ours_accepts(src: &str) -> bool {
    syntax_level(&analyse(src, &open_settings()).map(|_| ()))
}

#[test]
fn corpus_documents_get_the_same_verdict_as_async_graphql_parser() {
    let mut entries: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    entries.sort();
    let (mut valid, mut invalid) = (0, 0);
    let mut mismatches = Vec::new();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&path).unwrap();
        let expected = if name.starts_with("valid_") {
            valid += 1;
            true
        } else if name.starts_with("invalid_") {
            invalid += 1;
            false
        } else {
            continue;
        };
        if oracle_accepts(&src) != expected {
            mismatches.push(format!("oracle on {name}"));
        }
        if ours_accepts(&src) != expected {
            let error = analyse(&src, &open_settings()).err();
            mismatches.push(format!("ours on {name}: {error:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(
        valid >= 40 && invalid >= 25,
        "corpus too small: {valid} valid, {invalid} invalid"
    );
}

/// Deliberate differences, kept because we follow the GraphQL spec (Oct 2021 + draft) where
/// the oracle deviates. Each line: document, our verdict, the oracle's verdict.
#[test]
fn documented_differences_from_async_graphql_parser_hold() {
    let cases: &[(&str, bool, bool)] = &[
        // Draft spec: braced escapes and surrogate pairs are valid; the oracle knows neither.
        (r#"{ a(x: "\u{1F600}") }"#, true, false),
        (r#"{ a(x: "\uD83D\uDE00") }"#, true, false),
        // Spec: variable definitions need at least one variable.
        ("query Q() { a }", false, true),
        // Spec: `$v: Type = default @directives`; the oracle swaps the two.
        ("query Q($a: Int = 1 @d) { a }", true, false),
        ("query Q($a: Int @d = 1) { a }", false, true),
        // Spec: directives on variable definitions are constant.
        ("query Q($a: Int @d(x: $a)) { a }", false, true),
        // Spec: type references allow ignored tokens inside; the oracle lexes them atomically.
        ("query Q($a: [ Int ! ]) { a }", true, false),
        ("query Q($a: Int,! $b: Int) { a }", true, false),
        // Spec: no leading zeros, no name or digit right after a number.
        ("{ a(x: [00]) }", false, true),
        // Spec: enum values may start with `true`, `false` or `null` (only the exact words are
        // excluded); the oracle's negative lookahead refuses the prefix.
        ("{ a(x: truev, y: nullable, z: falsehood) }", true, false),
        // Spec: a float's range is not a syntax matter (the oracle fails to convert `1E499`).
        ("{ f(x: 1E499) }", true, false),
        // Spec: `queryve` is one name, not the keyword `query` followed by `ve`.
        ("queryve { a }", false, true),
        ("fragmentF on Q { a } { ...F }", false, true),
        // Spec: a fragment cannot be named `on`.
        ("fragment on on Q { a } { ...on }", false, true),
        // …nor spread under that name, and the words may be split by any ignored tokens.
        ("fragment gn on Q { a } { ...on }", false, true),
        ("fragment on \n\non Q { a } { ...F }", false, true),
    ];
    for &(src, ours, oracle) in cases {
        assert_eq!(ours_accepts(src), ours, "ours on {src}");
        assert_eq!(oracle_accepts(src), oracle, "oracle on {src}");
    }
}

/// A document generator driven by a tape of choices, so proptest shrinks towards small and
/// simple documents. Fragments only spread later fragments: no cycles.
struct Gen {
    tape: Vec<u32>,
    at: usize,
    out: String,
}

impl Gen {
    fn pick(&mut self, n: u32) -> u32 {
        let v = self.tape.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v % n
    }

    fn document(tape: Vec<u32>) -> String {
        let mut g = Gen {
            tape,
            at: 0,
            out: String::new(),
        };
        let fragments = g.pick(4);
        let kind = ["query", "query", "query", "subscription"][g.pick(4) as usize];
        if g.pick(3) == 0 {
            g.out.push('{');
            g.selection_set_body(1, 0, fragments);
            g.out.push('}');
        } else {
            g.out.push_str(kind);
            if g.pick(2) == 0 {
                g.out.push_str(" Op");
            }
            if g.pick(2) == 0 {
                let n = g.pick(30);
                g.out.push_str(&format!("($n: Int = {n}, $m: Int"));
                if g.pick(2) == 0 {
                    g.out.push_str(" @vd");
                }
                g.out
                    .push_str(", $b: Boolean = true, $o: In = {a: [1, {b: \"c\"}]})");
            }
            g.directives();
            g.out.push_str(" {");
            g.selection_set_body(1, 0, fragments);
            g.out.push('}');
        }
        for i in 0..fragments {
            g.out.push_str(&format!("\nfragment F{i} on Q"));
            g.directives();
            g.out.push_str(" {");
            g.selection_set_body(1, i + 1, fragments);
            g.out.push('}');
        }
        g.out
    }

    fn directives(&mut self) {
        for _ in 0..self.pick(3) {
            let d = [
                "@d",
                "@skip(if: $b)",
                "@include(if: true)",
                "@x(a: [1, 2], b: {c: ENUM})",
            ];
            let d = d[self.pick(4) as usize];
            self.out.push(' ');
            self.out.push_str(d);
        }
    }

    fn value(&mut self, nesting: u32) {
        let choice = self.pick(if nesting < 3 { 12 } else { 10 });
        let scalar = [
            "0",
            "7",
            "-3",
            "2147483648",
            "1.5",
            "\"s\"",
            "\"\"\"b\"\"\"",
            "true",
            "null",
            "$n",
        ];
        match choice {
            10 => {
                self.out.push('[');
                for _ in 0..self.pick(3) {
                    self.value(nesting + 1);
                    self.out.push(' ');
                }
                self.out.push(']');
            }
            11 => {
                self.out.push('{');
                for i in 0..self.pick(3) {
                    self.out.push_str(&format!("k{i}: "));
                    self.value(nesting + 1);
                    self.out.push(' ');
                }
                self.out.push('}');
            }
            c => self.out.push_str(scalar[c as usize]),
        }
    }

    fn selection_set_body(&mut self, level: u32, first_fragment: u32, fragments: u32) {
        for _ in 0..=self.pick(3) {
            self.out.push(' ');
            match self.pick(10) {
                0 | 1 if first_fragment < fragments => {
                    let f = first_fragment + self.pick(fragments - first_fragment);
                    self.out.push_str(&format!("...F{f}"));
                    self.directives();
                }
                2 => {
                    let head = ["...", "... on Q", "... on T"][self.pick(3) as usize];
                    self.out.push_str(head);
                    self.directives();
                    self.out.push_str(" {");
                    self.selection_set_body(level, first_fragment, fragments);
                    self.out.push('}');
                }
                _ => {
                    if self.pick(3) == 0 {
                        self.out.push_str("al: ");
                    }
                    let names = ["a", "b", "c", "__typename", "__schema", "__type", "d"];
                    let name = names[self.pick(7) as usize];
                    self.out.push_str(name);
                    let args = self.pick(3);
                    if args > 0 {
                        self.out.push('(');
                        for i in 0..args {
                            let arg = ["first", "last", "limit", "pageSize", "x", "y"]
                                [self.pick(6) as usize];
                            self.out.push_str(&format!(
                                "{arg}{}: ",
                                if i > 0 && arg.len() == 1 { "1" } else { "" }
                            ));
                            match self.pick(3) {
                                0 => {
                                    let v = ["$n", "$m", "$missing"][self.pick(3) as usize];
                                    self.out.push_str(v);
                                }
                                _ => self.value(0),
                            }
                            self.out.push(' ');
                        }
                        self.out.push(')');
                    }
                    self.directives();
                    if name != "__typename" && level < 5 && self.pick(2) == 0 {
                        self.out.push_str(" {");
                        self.selection_set_body(level + 1, first_fragment, fragments);
                        self.out.push('}');
                    }
                }
            }
        }
    }
}

fn variables(choice: u32) -> serde_json::Map<String, serde_json::Value> {
    let value = |c: u32| match c % 6 {
        0 => None,
        1 => Some(serde_json::json!(5)),
        2 => Some(serde_json::json!(-1)),
        3 => Some(serde_json::json!("x")),
        4 => Some(serde_json::Value::Null),
        _ => Some(serde_json::json!(3_000_000_000_u64)),
    };
    let mut map = serde_json::Map::new();
    if let Some(v) = value(choice) {
        map.insert("n".into(), v);
    }
    if let Some(v) = value(choice / 6) {
        map.insert("m".into(), v);
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_match_the_recursive_reference(
        tape in prop::collection::vec(any::<u32>(), 0..400),
        choice in 0u32..36,
    ) {
        let src = Gen::document(tape);
        let vars = variables(choice);
        let ours = analyse(&src, &open_settings());
        // Duplicate argument names are valid syntax (validation rejects them); both parse them.
        let (src2, vars2) = (src.clone(), vars.clone());
        let reference = on_stack(BIG_STACK, move || {
            parse_query(&src2).ok().map(|doc| Reference::run(&doc, &vars2))
        });
        let reference = reference.ok_or("oracle rejected a generated document").unwrap();
        let ours = ours.map_err(|e| format!("{e} in {src}")).unwrap();
        let operation = ours.operation(None).unwrap();
        prop_assert_eq!(*operation.metrics(), reference.0, "metrics of {}", src);
        prop_assert_eq!(operation.estimate(Some(&vars)).unwrap_or(u64::MAX), reference.1, "cost of {} with {:?}", src, vars);
    }
}

#[test]
fn fuzz_seed_corpus_passes_the_fuzz_target_check() {
    for dir in ["tests/corpus", "tests/attacks", "fuzz/corpus/differential"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let Ok(entries) = std::fs::read_dir(path) else {
            continue;
        };
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            // libFuzzer inputs may be any bytes; the target only sees UTF-8 ones.
            if let Ok(src) = std::str::from_utf8(&bytes) {
                oracle::differential_check(src);
            }
        }
    }
}
