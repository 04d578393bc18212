//! Argument costs: `@cost` on arguments, input fields and their types, and input objects (1
//! each, as Apollo Router scores them), summed over the value the request provides.
//!
//! # Why
//! An argument's cost depends on its value: `createPosts(input: [{…}, {…}])` costs per element,
//! and a variable's value is only known per request. A literal is turned into JSON once, when
//! the plan is compiled (variables inside it become `{"$": index}` markers: `$` cannot start a
//! GraphQL name, and markers are only read in document values, never in the client's JSON), and
//! scored then if it holds no variable, else per request. Both walks use explicit stacks: a
//! variable's nesting is the client's.

use serde_json::{Map, Value};

use super::super::lexer::{Lexer, TokenKind};
use super::super::schema::{Kind, Schema};

/// The key of a variable marker in a document value turned into JSON.
const MARKER: &str = "$";

/// Where a value sits: the definition's `@cost` (or its type's) and its named type.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) cost: Option<u64>,
    pub(crate) type_name: Box<str>,
}

/// A GraphQL value literal as JSON; `variable` interns `$name` and returns its index. Enum
/// values and strings become strings (their text is never costed). `None` on malformed input
/// (the parser already accepted it, so only a truncated span could cause that).
pub(crate) fn literal<'t>(
    text: &'t str,
    mut variable: impl FnMut(&'t str) -> u32,
) -> Option<Value> {
    enum Open {
        List(Vec<Value>),
        Object(Map<String, Value>, Option<String>),
    }
    let mut lexer = Lexer::new(text, None);
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let token = lexer.next_token().ok()?;
        let raw = text.get(token.start as usize..token.end as usize)?;
        let value = match token.kind {
            TokenKind::BracketL => {
                stack.push(Open::List(Vec::new()));
                continue;
            }
            TokenKind::BraceL => {
                stack.push(Open::Object(Map::new(), None));
                continue;
            }
            TokenKind::Name if matches!(stack.last(), Some(Open::Object(_, None))) => {
                if let Some(Open::Object(_, key)) = stack.last_mut() {
                    *key = Some(raw.to_owned());
                }
                continue;
            }
            TokenKind::Colon => continue,
            TokenKind::Dollar => {
                let name = lexer.next_token().ok()?;
                let name = text.get(name.start as usize..name.end as usize)?;
                let index = variable(name);
                Value::Object(Map::from_iter([(MARKER.to_owned(), Value::from(index))]))
            }
            TokenKind::BracketR => match stack.pop()? {
                Open::List(items) => Value::Array(items),
                Open::Object(..) => return None,
            },
            TokenKind::BraceR => match stack.pop()? {
                Open::Object(members, _) => Value::Object(members),
                Open::List(_) => return None,
            },
            TokenKind::Int | TokenKind::Float => serde_json::from_str(raw).ok()?,
            TokenKind::Name => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::String(raw.to_owned()),
            },
            TokenKind::String | TokenKind::BlockString => Value::String(raw.to_owned()),
            _ => return None,
        };
        match stack.last_mut() {
            None => return Some(value),
            Some(Open::List(items)) => items.push(value),
            Some(Open::Object(members, key)) => {
                members.insert(key.take()?, value);
            }
        }
    }
}

/// Whether a document value holds a variable marker.
pub(crate) fn has_variables(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(members) if is_marker(members).is_some() => return true,
            Value::Object(members) => stack.extend(members.values()),
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

fn is_marker(members: &Map<String, Value>) -> Option<u32> {
    if members.len() != 1 {
        return None;
    }
    members
        .get(MARKER)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// Cost of `value` in `slot` (Apollo Router's `score_argument`): an input object costs its
/// `@cost` or 1 plus its fields, a list its `@cost` or 0 plus its items, anything else its
/// `@cost` or 0, `null` nothing. `variable` gives a marker's value (the request's, else the
/// operation's default; `None` when absent).
pub(crate) fn score<'v>(
    schema: &Schema,
    value: &'v Value,
    slot: &Slot,
    variable: impl Fn(u32) -> Option<&'v Value>,
) -> u64 {
    // (value, its `@cost`, its named type, whether it comes from the document).
    let mut stack: Vec<(&'v Value, Option<u64>, &str, bool)> =
        vec![(value, slot.cost, &slot.type_name, true)];
    let mut total = 0u64;
    while let Some((value, cost, type_name, document)) = stack.pop() {
        let weight = match value {
            Value::Null => 0,
            Value::Object(members) if document && is_marker(members).is_some() => {
                if let Some(given) = is_marker(members).and_then(&variable) {
                    stack.push((given, cost, type_name, false));
                }
                0
            }
            Value::Object(members) => match schema.type_info(type_name) {
                Some(info) if info.kind == Kind::InputObject => {
                    for (name, member) in members {
                        if let Some(field) = info.input_fields.get(name) {
                            stack.push((member, field.cost, &field.type_name, document));
                        }
                    }
                    cost.unwrap_or(1)
                }
                _ => cost.unwrap_or(0),
            },
            Value::Array(items) => {
                stack.extend(items.iter().map(|item| (item, cost, type_name, document)));
                cost.unwrap_or(0)
            }
            _ => cost.unwrap_or(0),
        };
        total = total.saturating_add(weight);
    }
    total
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_become_json_with_variable_markers() {
        let mut names = Vec::new();
        let value = literal(
            r#"{a: [1, 2.5, "s"], b: {c: $x, d: ENUM}, e: null, f: true}"#,
            |n| {
                names.push(n.to_owned());
                7
            },
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"a": [1, 2.5, "\"s\""], "b": {"c": {"$": 7}, "d": "ENUM"}, "e": null, "f": true})
        );
        assert_eq!(names, ["x"]);
        assert!(has_variables(&value));
        assert!(!has_variables(&json!({"a": [1, {"$": 1, "b": 2}]})));
    }

    #[test]
    fn input_objects_cost_one_plus_their_fields_and_lists_their_items() {
        let schema = Schema::from_sdl(
            "type Query { a(i: In, t: [Tag]): Int }
             input In { n: Int @cost(weight: 3) inner: In tags: [Tag] }
             scalar Tag @cost(weight: 2)",
        )
        .unwrap();
        let slot = Slot {
            cost: None,
            type_name: "In".into(),
        };
        let (small, nested, null) = (
            json!({"n": 1}),
            json!({"inner": {"n": 1}, "tags": ["a", "b"]}),
            json!(null),
        );
        assert_eq!(score(&schema, &small, &slot, |_| None), 1 + 3);
        // As Apollo Router: a list costs its definition's `@cost` (here its type's) plus each item.
        assert_eq!(
            score(&schema, &nested, &slot, |_| None),
            1 + (1 + 3) + 2 + (2 + 2)
        );
        assert_eq!(score(&schema, &null, &slot, |_| None), 0);
        let given = json!({"n": 5});
        let marker = json!({"inner": {"$": 0}});
        assert_eq!(score(&schema, &marker, &slot, |_| Some(&given)), 1 + 1 + 3);
        // A client's JSON is never read as a marker.
        let tricky = json!({"$": 0});
        assert_eq!(score(&schema, &marker, &slot, |_| Some(&tricky)), 2);
    }
}
