//! Shared test helpers: the async-graphql-parser oracle (on a big stack), a small-stack runner,
//! permissive settings, and a simple recursive reference for metrics and schema-less cost.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::HashMap;

use async_graphql_parser::parse_query;
use async_graphql_parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use graphql_firewall::analysis::{AnalysisError, Limits, Metrics, Settings};

/// Settings without token or depth limits, so only syntax decides.
pub fn open_settings() -> Settings {
    Settings {
        limits: Limits {
            max_tokens: None,
            max_depth: None,
            max_value_nesting: 32,
        },
        ..Settings::default()
    }
}

/// Run `f` on a thread with the given stack size (proves the absence of deep recursion when
/// small, gives the recursive oracle room when large).
pub fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("thread panicked")
}

pub const BIG_STACK: usize = 256 << 20;
pub const SMALL_STACK: usize = 64 << 10;

/// The oracle's verdict, syntax level (its own duplicate/anonymous/missing-operation checks
/// included).
pub fn oracle_accepts(src: &str) -> bool {
    let src = src.to_owned();
    on_stack(BIG_STACK, move || parse_query(&src).is_ok())
}

/// Whether our error is one the oracle also reports. Checks the oracle does not do (spreads of
/// undefined fragments, cycles) and our limits do not count as syntax verdicts.
pub fn syntax_level(result: &Result<(), AnalysisError>) -> bool {
    match result {
        Ok(()) => true,
        Err(
            AnalysisError::UnknownFragment { .. }
            | AnalysisError::FragmentCycle { .. }
            | AnalysisError::TokenLimit { .. }
            | AnalysisError::DepthLimit { .. }
            | AnalysisError::ValueNestingLimit { .. },
        ) => true,
        Err(_) => false,
    }
}

/// Metrics and schema-less cost computed the obvious way: recursion and literal expansion.
/// Cost follows the firewall's documented rules: GraphQL `Int` coercion of variables (an
/// invalid one makes the cost `u64::MAX`, what `Operation::cost` reports for a refusal), a
/// variable's default only when it is absent, `null` as "not given", a size that cannot be
/// known as the worst case (1000), literal `@skip`/`@include` leaving a subtree out entirely
/// and variable ones leaving its cost out (its variables are still checked).
pub struct Reference<'a> {
    document: &'a ExecutableDocument,
    variables: &'a serde_json::Map<String, serde_json::Value>,
    defaults: HashMap<String, serde_json::Value>,
    /// Declared variables: name → named type.
    declared: HashMap<String, String>,
    mutation: bool,
}

pub const SLICING: [&str; 4] = ["first", "last", "limit", "pageSize"];
const WORST: u64 = 1000;

/// Whether a selection is left out: `Some(true)` by a literal condition, `Some(false)` by a
/// variable one, `None` when it counts.
type Left = Option<bool>;

impl<'a> Reference<'a> {
    pub fn run(
        document: &'a ExecutableDocument,
        variables: &'a serde_json::Map<String, serde_json::Value>,
    ) -> (Metrics, u64) {
        let operation = match &document.operations {
            DocumentOperations::Single(op) => &op.node,
            DocumentOperations::Multiple(map) => &map.values().next().unwrap().node,
        };
        let defaults = operation
            .variable_definitions
            .iter()
            .filter_map(|v| {
                let d = v.node.default_value.as_ref()?;
                Some((
                    v.node.name.node.to_string(),
                    d.node.clone().into_json().ok()?,
                ))
            })
            .collect();
        let declared = operation
            .variable_definitions
            .iter()
            .map(|v| {
                (
                    v.node.name.node.to_string(),
                    v.node.var_type.node.to_string(),
                )
            })
            .collect();
        let reference = Reference {
            document,
            variables,
            defaults,
            declared,
            mutation: operation.ty == OperationType::Mutation,
        };
        let mut m = Metrics {
            directives: (operation.directives.len()
                + operation
                    .variable_definitions
                    .iter()
                    .map(|v| v.node.directives.len())
                    .sum::<usize>()) as u32,
            ..Metrics::default()
        };
        reference.walk(&operation.selection_set.node, 0, 0, &mut m);
        m.root_fields = reference.root_fields(&operation.selection_set.node);
        let cost = reference
            .cost(&operation.selection_set.node, true)
            .unwrap_or(u64::MAX);
        (m, cost)
    }

    fn walk(&self, set: &SelectionSet, level: u32, lists: u32, m: &mut Metrics) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let name = f.name.node.as_str();
                    m.fields += 1;
                    m.aliases += u32::from(f.alias.is_some());
                    m.directives += f.directives.len() as u32;
                    if name == "__schema" || name == "__type" {
                        m.introspection_fields += 1;
                    }
                    if name != "__typename" {
                        m.depth = m.depth.max(level + 1);
                    }
                    let list = f
                        .arguments
                        .iter()
                        .any(|(n, _)| SLICING.contains(&n.node.as_str()));
                    let lists = lists + u32::from(list);
                    m.list_depth = m.list_depth.max(lists);
                    self.walk(&f.selection_set.node, level + 1, lists, m);
                }
                Selection::InlineFragment(i) => {
                    m.directives += i.node.directives.len() as u32;
                    self.walk(&i.node.selection_set.node, level, lists, m);
                }
                Selection::FragmentSpread(s) => {
                    let fragment = &self.document.fragments[&s.node.fragment_name.node].node;
                    m.directives += (s.node.directives.len() + fragment.directives.len()) as u32;
                    self.walk(&fragment.selection_set.node, level, lists, m);
                }
            }
        }
    }

    fn root_fields(&self, set: &SelectionSet) -> u32 {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(i) => self.root_fields(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => self.root_fields(
                    &self.document.fragments[&s.node.fragment_name.node]
                        .node
                        .selection_set
                        .node,
                ),
            })
            .sum()
    }

    /// A variable's value as the operation sees it: the request's, else its default.
    fn given(&self, name: &str) -> Option<&serde_json::Value> {
        self.variables.get(name).or_else(|| self.defaults.get(name))
    }

    /// A slicing argument's size: `Ok(None)` when not given, `Err` when refused.
    fn size(&self, value: &str) -> Result<Option<u64>, ()> {
        let Some(name) = value.strip_prefix('$') else {
            return Ok(match value {
                "null" => None,
                _ => Some(match value.parse::<i32>() {
                    Ok(n) if n >= 0 => n as u64,
                    _ => WORST,
                }),
            });
        };
        let Some(given) = self.given(name) else {
            return Ok(None);
        };
        if given.is_null() {
            return Ok(None);
        }
        match self.declared.get(name).map(String::as_str) {
            // graphql-js `GraphQLInt.parseValue`: a whole number within 32 bits.
            Some("Int") => {
                let f = given.as_f64().ok_or(())?;
                if f.fract() != 0.0 || f < i32::MIN as f64 || f > i32::MAX as f64 {
                    return Err(());
                }
                Ok(Some(if f < 0.0 { WORST } else { f as u64 }))
            }
            _ => Ok(Some(given.as_u64().unwrap_or(WORST))),
        }
    }

    /// `@skip` / `@include` of a selection.
    fn left_out(
        &self,
        directives: &[async_graphql_parser::Positioned<async_graphql_parser::types::Directive>],
    ) -> Left {
        let mut left = None;
        for directive in directives {
            let skip = match directive.node.name.node.as_str() {
                "skip" => true,
                "include" => false,
                _ => continue,
            };
            let Some(value) = directive.node.get_argument("if") else {
                continue;
            };
            let text = value.node.to_string();
            let (literal, decided) = match text.strip_prefix('$') {
                Some(name) => (false, self.given(name).and_then(serde_json::Value::as_bool)),
                None => (true, text.parse::<bool>().ok()),
            };
            if decided == Some(skip) {
                left = Some(left.unwrap_or(false) || literal);
            }
        }
        left
    }

    fn cost(&self, set: &SelectionSet, root: bool) -> Result<u64, ()> {
        let mut total = 0u64;
        for item in &set.items {
            let (value, left) = match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let name = f.name.node.as_str();
                    let left = self.left_out(&f.directives);
                    if matches!(name, "__typename" | "__schema" | "__type") || left == Some(true) {
                        (0, left)
                    } else {
                        let has_selection = !f.selection_set.node.items.is_empty();
                        let weight = if root && self.mutation {
                            10
                        } else {
                            u64::from(has_selection)
                        };
                        let slicing: Vec<_> = f
                            .arguments
                            .iter()
                            .filter(|(n, _)| SLICING.contains(&n.node.as_str()))
                            .collect();
                        let mut multiplier = 1;
                        if !slicing.is_empty() {
                            let mut largest = None;
                            for (_, v) in &slicing {
                                if let Some(n) = self.size(&v.node.to_string())? {
                                    largest = Some(largest.map_or(n, |m: u64| m.max(n)));
                                }
                            }
                            multiplier = largest.unwrap_or(10);
                        }
                        let below = self.cost(&f.selection_set.node, false)?;
                        (
                            multiplier.saturating_mul(weight.saturating_add(below)),
                            left,
                        )
                    }
                }
                Selection::InlineFragment(i) => {
                    let left = self.left_out(&i.node.directives);
                    if left == Some(true) {
                        (0, left)
                    } else {
                        (self.cost(&i.node.selection_set.node, root)?, left)
                    }
                }
                Selection::FragmentSpread(s) => {
                    let left = self.left_out(&s.node.directives);
                    if left == Some(true) {
                        (0, left)
                    } else {
                        let fragment = &self.document.fragments[&s.node.fragment_name.node];
                        (self.cost(&fragment.node.selection_set.node, root)?, left)
                    }
                }
            };
            if left.is_none() {
                total = total.saturating_add(value);
            }
        }
        Ok(total)
    }
}

/// Documented, deliberate differences (see `documented_differences_from_async_graphql_parser_hold`
/// in `tests/differential.rs`): inputs that may touch them are not compared, only checked for
/// panics. Deliberately broad; a fuzzer finding anything else is a bug in one of the parsers.
pub fn may_touch_known_difference(src: &str) -> bool {
    let bytes = src.as_bytes();
    let compact: String = src
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}'))
        .collect();
    let keyword_prefix = [
        "true",
        "false",
        "null",
        "query",
        "mutation",
        "subscription",
        "fragment",
    ]
    .iter()
    .any(|k| {
        src.match_indices(k).any(|(at, _)| {
            bytes
                .get(at + k.len())
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
    });
    let leading_zero = bytes
        .windows(2)
        .any(|w| w[0] == b'0' && w[1].is_ascii_digit());
    let exponent = bytes
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && matches!(w[1], b'e' | b'E'));
    src.contains("\\u")
        || compact.contains("()")
        || names_a_fragment_on(src)
        || spreads_a_fragment_on(&compact)
        // Ignored tokens (spaces, commas) before a type's `!`: the spec allows them, the oracle
        // lexes type references atomically (found by the fuzzer as `$q: String,!`).
        || src.contains('$')
            && bytes.windows(2).any(|w| {
                matches!(w, [b' ' | b'\t' | b'\n' | b'\r' | b',', b'!'])
            })
        || src.contains('$') && (src.contains('@') || src.contains('['))
        || leading_zero
        || exponent
        || keyword_prefix
        || src.len() >= 4096
}

/// `fragment on …` with any ignored tokens between the words: a fragment named `on`, which the
/// spec forbids and the oracle accepts (found by the fuzzer with newlines between the words).
fn names_a_fragment_on(src: &str) -> bool {
    let words: Vec<&str> = src
        .split(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}')
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|pair| pair == ["fragment", "on"])
}

/// `...on` not followed by a type name (`{ ...on }`): a spread of a fragment named `on`, the
/// same difference seen from the spread side (also found by the fuzzer).
fn spreads_a_fragment_on(compact: &str) -> bool {
    compact.match_indices("...on").any(|(at, found)| {
        compact
            .get(at + found.len()..)
            .and_then(|rest| rest.chars().next())
            .is_none_or(|next| !(next.is_ascii_alphanumeric() || next == '_'))
    })
}

/// The fuzz target's body: never panic; same syntax verdict as the oracle outside the known
/// differences.
pub fn differential_check(src: &str) {
    let ours = graphql_firewall::analysis::analyse(src, &open_settings()).map(|_| ());
    let limited = matches!(
        ours,
        Err(AnalysisError::TokenLimit { .. }
            | AnalysisError::DepthLimit { .. }
            | AnalysisError::ValueNestingLimit { .. })
    );
    // A limit stops us before the end, so the verdict is not comparable; the oracle also has
    // its own selection nesting limit (64).
    if limited || may_touch_known_difference(src) || src.matches('{').count() > 60 {
        return;
    }
    let ours = syntax_level(&ours);
    let oracle = oracle_accepts(src);
    assert_eq!(ours, oracle, "verdicts differ on {src:?}");
}
