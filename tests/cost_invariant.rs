//! The invariant behind cost limits: for every response the backend really produces, the
//! estimate is at least the actual cost. Random operations against the demo schema (lists
//! sized by `first` literals and variables, `usersByIds`, aliases, named and inline fragments,
//! `@skip`/`@include`), variables in every spelling of their numbers, executed in-process on
//! the demo backend (`demo::schema::build()`); the response's actual cost is measured on its
//! serialised bytes, pushed in small chunks.
//!
//! async-graphql refuses `10.0` and `1e1` for an `Int` where graphql-js and graphql-core accept
//! them, so the backend is given the integer a graphql-js server would coerce them to, and the
//! estimate must not depend on the spelling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, OnceLock};

use graphql_firewall::analysis::{ActualCost, Schema, Settings, analyse};
use graphql_firewall::demo::schema::{DemoSchema, build};
use proptest::prelude::*;

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings {
        schema: Some(Arc::new(
            Schema::from_sdl(graphql_firewall::demo::SDL).unwrap(),
        )),
        ..Settings::default()
    })
}

fn backend() -> &'static (DemoSchema, tokio::runtime::Runtime) {
    static BACKEND: OnceLock<(DemoSchema, tokio::runtime::Runtime)> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (build(), runtime)
    })
}

/// Builds a valid operation from a tape of random numbers. Fields with arguments get unique
/// aliases, so merged selections never conflict.
struct Gen {
    tape: Vec<u32>,
    at: usize,
    out: String,
    aliases: u32,
    fragments: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Type {
    Query,
    User,
    Post,
    Comment,
}

impl Gen {
    fn pick(&mut self, n: u32) -> u32 {
        let v = self.tape.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v % n.max(1)
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("a{}: ", self.aliases)
    }

    fn first(&mut self) -> String {
        match self.pick(5) {
            0 => String::new(),
            1 => "(first: $n)".into(),
            2 => "(first: $m)".into(),
            _ => format!("(first: {})", [0, 1, 2, 5, 12][self.pick(5) as usize]),
        }
    }

    fn condition(&mut self) -> &'static str {
        [
            "",
            "",
            "",
            " @skip(if: $s)",
            " @include(if: $s)",
            " @skip(if: true)",
            " @include(if: true)",
            " @skip(if: false)",
        ][self.pick(8) as usize]
    }

    fn document(tape: Vec<u32>) -> String {
        let mut g = Gen {
            tape,
            at: 0,
            out: String::new(),
            aliases: 0,
            fragments: Vec::new(),
        };
        let mut body = String::new();
        std::mem::swap(&mut g.out, &mut body);
        g.selection(Type::Query, 0);
        let body = std::mem::take(&mut g.out);
        let fragments = g.fragments.join("\n");
        // GraphQL refuses unused variables: declare those the selections use.
        let used = |name: &str| {
            let needle = format!("${name})");
            body.contains(&needle) || fragments.contains(&needle)
        };
        let declared: Vec<&str> = [
            ("n", "$n: Int"),
            ("m", "$m: Int = 2"),
            ("ids", "$ids: [ID!]!"),
            ("s", "$s: Boolean = false"),
        ]
        .into_iter()
        .filter(|(name, _)| used(name))
        .map(|(_, declaration)| declaration)
        .collect();
        let variables = if declared.is_empty() {
            String::new()
        } else {
            format!("({})", declared.join(", "))
        };
        format!("query Q{variables} {{{body}}}\n{fragments}")
    }

    fn selection(&mut self, on: Type, depth: u32) {
        let items = 1 + self.pick(3);
        for _ in 0..items {
            self.out.push(' ');
            match self.pick(9) {
                0 if depth < 3 && self.fragments.len() < 4 => {
                    // A named fragment on this type, spread here.
                    let name = format!("F{}", self.fragments.len());
                    let type_name = match on {
                        Type::Query => "Query",
                        Type::User => "User",
                        Type::Post => "Post",
                        Type::Comment => "Comment",
                    };
                    let saved = std::mem::take(&mut self.out);
                    self.fragments.push(String::new());
                    let slot = self.fragments.len() - 1;
                    self.selection(on, depth);
                    let body = std::mem::replace(&mut self.out, saved);
                    self.fragments[slot] = format!("fragment {name} on {type_name} {{{body}}}");
                    let condition = self.condition();
                    self.out.push_str(&format!("...{name}{condition}"));
                }
                1 => {
                    let condition = self.condition();
                    self.out.push_str(&format!("...{condition} {{"));
                    self.selection(on, depth);
                    self.out.push('}');
                }
                2 => self.out.push_str("__typename"),
                _ => self.field(on, depth),
            }
        }
    }

    fn field(&mut self, on: Type, depth: u32) {
        let deeper = depth < 4;
        let condition = self.condition();
        let (head, below) = match (on, self.pick(if deeper { 4 } else { 1 })) {
            (Type::Query, 0) => (
                format!("{}users{}", self.alias(), self.first()),
                Some(Type::User),
            ),
            (Type::Query, 1) => (
                format!("{}usersByIds(ids: $ids)", self.alias()),
                Some(Type::User),
            ),
            (Type::Query, 2) => {
                let id = self.pick(25);
                (
                    format!("{}user(id: \"u{id}\")", self.alias()),
                    Some(Type::User),
                )
            }
            (Type::Query, _) => {
                let ids =
                    ["[]", "[\"u1\"]", "[\"u1\", \"u2\", \"x\"]", "\"u3\""][self.pick(4) as usize];
                (
                    format!("{}usersByIds(ids: {ids})", self.alias()),
                    Some(Type::User),
                )
            }
            (Type::User, 0) => (
                format!("{}friends{}", self.alias(), self.first()),
                Some(Type::User),
            ),
            (Type::User, 1) => (
                format!("{}posts{}", self.alias(), self.first()),
                Some(Type::Post),
            ),
            (Type::User, _) => (
                ["id", "name", "email"][self.pick(3) as usize].to_owned(),
                None,
            ),
            (Type::Post, 0) => (
                format!("{}comments{}", self.alias(), self.first()),
                Some(Type::Comment),
            ),
            (Type::Post, 1) => ("author".to_owned(), Some(Type::User)),
            (Type::Post, _) => (
                ["id", "title", "body"][self.pick(3) as usize].to_owned(),
                None,
            ),
            (Type::Comment, 0) => ("author".to_owned(), Some(Type::User)),
            (Type::Comment, _) => (["id", "text"][self.pick(2) as usize].to_owned(), None),
        };
        // Fields without arguments keep their name as key: give their selection a unique
        // alias too, since two `author { … }` with different selections merge fine but the
        // generator may nest different fragments under them.
        let head = match below {
            Some(_) if !head.contains(':') => format!("{}{head}", self.alias()),
            _ => head,
        };
        self.out.push_str(&head);
        self.out.push_str(condition);
        match below {
            Some(next) if deeper => {
                self.out.push_str(" {");
                self.selection(next, depth + 1);
                self.out.push('}');
            }
            Some(_) => self.out.push_str(" { id }"),
            None => {}
        }
    }
}

/// `n` and `m` as JSON text, spelled three ways.
fn spellings(n: u32) -> [String; 3] {
    [format!("{n}"), format!("{n}.0"), format!("{n}e0")]
}

fn actual_cost(query: &str, variables: &serde_json::Value, response: &[u8], chunk: usize) -> u64 {
    let document = analyse(query, settings()).unwrap();
    let operation = document.operation(None).unwrap();
    let mut meter = ActualCost::new(operation, variables.as_object());
    for piece in response.chunks(chunk.max(1)) {
        meter.push(piece);
    }
    meter.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_estimate_bounds_the_actual_cost_of_every_response(
        tape in prop::collection::vec(any::<u32>(), 0..120),
        n in prop::sample::select(vec![0u32, 1, 3, 10, 25]),
        m in prop::option::of(prop::sample::select(vec![0u32, 2, 7])),
        ids in 0usize..40,
        skip in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let query = Gen::document(tape);
        let ids: Vec<String> = (0..ids).map(|i| format!("u{}", i % 23)).collect();
        let canonical = |n_text: &str, m_text: Option<String>| -> serde_json::Value {
            let mut text = format!(r#"{{"n": {n_text}, "ids": {}, "s": {skip}"#, serde_json::to_string(&ids).unwrap());
            if let Some(m) = m_text {
                text.push_str(&format!(r#", "m": {m}"#));
            }
            text.push('}');
            serde_json::from_str(&text).unwrap()
        };
        let document = analyse(&query, settings()).map_err(|e| format!("{e}: {query}")).unwrap();
        let operation = document.operation(None).unwrap();
        let mut estimates = Vec::new();
        for (n_text, m_text) in spellings(n).iter().zip(spellings(m.unwrap_or(0))) {
            let variables = canonical(n_text, m.map(|_| m_text));
            estimates.push(operation.estimate(variables.as_object()).unwrap());
        }
        prop_assert!(estimates.windows(2).all(|w| w[0] == w[1]), "{:?} for {}", estimates, query);

        let variables = canonical(&n.to_string(), m.map(|m| m.to_string()));
        let (schema, runtime) = backend();
        let request = async_graphql::Request::new(query.clone())
            .variables(async_graphql::Variables::from_json(variables.clone()));
        let response = runtime.block_on(schema.execute(request));
        prop_assert!(response.errors.is_empty(), "{:?} for {}", response.errors, query);
        let body = serde_json::to_vec(&response).unwrap();
        let actual = actual_cost(&query, &variables, &body, chunk);
        prop_assert!(
            estimates[0] >= actual,
            "estimate {} < actual {} for {} with {}",
            estimates[0], actual, query, variables
        );
    }
}

#[test]
fn the_generator_reaches_every_kind_of_selection() {
    let mut seen = [false; 6];
    for seed in 0..400u32 {
        let tape: Vec<u32> = (0..120)
            .map(|i| seed.wrapping_mul(2_654_435_761).rotate_left(i % 32) ^ i)
            .collect();
        let query = Gen::document(tape);
        for (i, needle) in [
            "usersByIds(ids: $ids)",
            "fragment F",
            "... @",
            "@skip(if: $s)",
            "(first: $n)",
            "friends",
        ]
        .iter()
        .enumerate()
        {
            seen[i] |= query.contains(needle);
        }
    }
    assert_eq!(seen, [true; 6]);
}
