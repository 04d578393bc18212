//! Measures a request's `variables` JSON: how many, how deeply nested, the longest list and the
//! approximate serialised size.
//!
//! # Why
//! The body cap alone does not bound what variables cost downstream: a 1 MiB body can carry a
//! list of 200,000 ids that the backend resolves one by one, or objects nested as deep as the
//! upstream's JSON parser allows. Nothing in the document shows it, so the variables are measured
//! on their own (iteratively: client-controlled nesting never drives recursion).

use serde_json::{Map, Value};

/// What the variables of one request measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VariableMetrics {
    /// Number of top-level variables.
    pub count: u32,
    /// Deepest list/object nesting inside any variable value (a scalar variable is depth 0).
    pub depth: u32,
    /// Length of the longest list anywhere.
    pub longest_list: u32,
    /// Serialised size, estimated from the parsed value (within a few bytes per number).
    pub bytes: u64,
}

/// Measures `variables` (absent variables measure zero everywhere).
pub fn measure_variables(variables: Option<&Map<String, Value>>) -> VariableMetrics {
    let Some(variables) = variables else {
        return VariableMetrics::default();
    };
    let mut metrics = VariableMetrics {
        count: saturate(variables.len()),
        bytes: 2,
        ..VariableMetrics::default()
    };
    let mut stack: Vec<(&Value, u32)> = Vec::new();
    for (name, value) in variables {
        metrics.bytes = metrics.bytes.saturating_add(name.len() as u64 + 4);
        stack.push((value, 0));
    }
    while let Some((value, depth)) = stack.pop() {
        metrics.depth = metrics.depth.max(depth);
        let size = match value {
            Value::Null => 4,
            Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(number) => number.to_string().len() as u64,
            Value::String(text) => text.len() as u64 + 2,
            Value::Array(items) => {
                metrics.longest_list = metrics.longest_list.max(saturate(items.len()));
                stack.extend(items.iter().map(|item| (item, depth + 1)));
                2 + items.len() as u64
            }
            Value::Object(members) => {
                for (key, member) in members {
                    metrics.bytes = metrics.bytes.saturating_add(key.len() as u64 + 4);
                    stack.push((member, depth + 1));
                }
                2
            }
        };
        metrics.bytes = metrics.bytes.saturating_add(size);
    }
    metrics
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn measure(value: Value) -> VariableMetrics {
        measure_variables(value.as_object())
    }

    #[test]
    fn absent_variables_measure_zero() {
        assert_eq!(measure_variables(None), VariableMetrics::default());
    }

    #[test]
    fn scalars_count_without_depth() {
        let metrics = measure(json!({"id": "u1", "first": 10, "flag": true}));
        assert_eq!(metrics.count, 3);
        assert_eq!(metrics.depth, 0);
        assert_eq!(metrics.longest_list, 0);
    }

    #[test]
    fn nesting_and_lists_are_measured() {
        let metrics =
            measure(json!({"input": {"tags": ["a", "b", "c"], "deep": [[[1]]]}, "ids": [1, 2]}));
        assert_eq!(metrics.count, 2);
        assert_eq!(metrics.depth, 4, "input → deep → [ → [ → [1]");
        assert_eq!(metrics.longest_list, 3);
    }

    #[test]
    fn size_estimate_is_close_to_the_serialised_size() {
        let value =
            json!({"input": {"tags": ["alpha", "beta"], "n": 12345, "ok": false, "x": null}});
        let exact = value.to_string().len() as u64;
        let estimate = measure(value).bytes;
        assert!(
            estimate >= exact && estimate <= exact + 16,
            "estimate {estimate}, exact {exact}"
        );
    }

    #[test]
    fn very_deep_values_do_not_recurse() {
        let mut value = json!(1);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        let variables = Map::from_iter([("v".to_owned(), value)]);
        let metrics = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let metrics = measure_variables(Some(&variables));
                // Dropping a 100,000-deep serde_json value recurses; leak it in this test only.
                std::mem::forget(variables);
                metrics
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(metrics.depth, 100_000);
    }
}
