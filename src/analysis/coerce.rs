//! GraphQL input coercion of the request's variables, as far as cost needs it: list sizes
//! (`Int` slicing arguments, list lengths) and `@skip`/`@include` conditions.
//!
//! # Threats
//! A size the firewall reads differently from the backend is a cost bypass: `{"n": 1e3}` is
//! not a `u64` to serde, but graphql-js (`GraphQLInt.parseValue`) and graphql-core
//! (`coerce_int`) accept any finite whole number within ±2³¹, whatever its spelling, so a
//! backend built on them pages through 1,000 rows. The rules here follow the GraphQL spec
//! (§3.5.1 `Int`, §3.5.2 `Boolean`, §3.11 list input coercion, §6.4.1 variable values) and
//! graphql-js 16:
//! - a JSON number is an `Int` when it is whole and within ±2³¹ (`1e3`, `1000.0` and
//!   `1000.00000000000001`, which is 1000 as an f64, are all 1000); strings, booleans,
//!   fractions and out-of-range numbers are not, and the request is refused rather than guessed
//!   at (`1e400` never gets here: serde_json refuses it as out of range, like `JSON.parse` turns
//!   it into `Infinity`, which graphql-js refuses);
//! - a variable's default applies only when the variable is absent; an explicit `null` is null;
//! - a single value where a list is expected is a list of one;
//! - a size that still cannot be known (a negative `Int`, a custom scalar holding a string) is
//!   the worst case, `max_list_size`, never a value the client chose.
//!
//! async-graphql 7.2 (the demo backend) is stricter: it refuses `1e3` and `1000.0` for an `Int`
//! (only JSON integers), and refuses an absent nullable variable where the argument has a
//! default; graphql-js accepts both. Following graphql-js is the upper bound of the two.

use serde_json::Value;

/// The named type of a declared variable, as far as coercion distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Int,
    Boolean,
    /// Any other type (`Float`, `ID`, custom scalars, enums, input objects).
    Other,
}

/// A variable's declared type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Declared {
    pub(crate) scalar: Scalar,
    pub(crate) list_depth: u32,
    pub(crate) non_null: bool,
}

/// What a value says about a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    Known(u64),
    /// `null`: the argument counts as not given.
    Null,
    /// Variable absent without default: the argument's schema default applies.
    Absent,
}

/// Why a value does not coerce (the message names the variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    NotANumber,
    Fraction,
    OutOfRange,
    NotABoolean,
    NullForNonNull,
    MissingRequired,
}

impl Invalid {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Invalid::NotANumber => "not a number",
            Invalid::Fraction => "not a whole number",
            Invalid::OutOfRange => "outside the 32-bit range",
            Invalid::NotABoolean => "not a boolean",
            Invalid::NullForNonNull => "null for a non-null type",
            Invalid::MissingRequired => "missing for a non-null type",
        }
    }
}

/// GraphQL `Int` input coercion of a JSON value (graphql-js `GraphQLInt.parseValue`).
pub(crate) fn coerce_int(value: &Value) -> Result<i64, Invalid> {
    let Value::Number(number) = value else {
        return Err(Invalid::NotANumber);
    };
    let range = i64::from(i32::MIN)..=i64::from(i32::MAX);
    if let Some(n) = number.as_i64() {
        return if range.contains(&n) {
            Ok(n)
        } else {
            Err(Invalid::OutOfRange)
        };
    }
    if number.is_u64() {
        return Err(Invalid::OutOfRange);
    }
    let f = number.as_f64().ok_or(Invalid::NotANumber)?;
    if !f.is_finite() {
        return Err(Invalid::OutOfRange);
    }
    if f.fract() != 0.0 {
        return Err(Invalid::Fraction);
    }
    if f < i32::MIN as f64 || f > i32::MAX as f64 {
        return Err(Invalid::OutOfRange);
    }
    // Whole and within ±2³¹: exact.
    Ok(f as i64)
}

/// A list size from a coerced `Int`: a negative size means nothing a backend agrees on (SQL's
/// `LIMIT -1` is "no limit" in SQLite), so it is the worst case.
pub(crate) fn size_of_int(n: i64, worst: u64) -> u64 {
    u64::try_from(n).unwrap_or(worst)
}

/// The size a variable gives where an `Int` (a slicing argument) is expected.
pub(crate) fn int_size(
    value: Option<&Value>,
    declared: Option<Declared>,
    worst: u64,
) -> Result<Size, Invalid> {
    let Some(value) = value else {
        return absent(declared);
    };
    if value.is_null() {
        return null(declared);
    }
    match declared {
        Some(Declared {
            scalar: Scalar::Int,
            list_depth: 0,
            ..
        }) => coerce_int(value).map(|n| Size::Known(size_of_int(n, worst))),
        // Another scalar (a custom `PositiveInt`, `Float`…) or no declaration (the document is
        // invalid): a whole number is read as such, anything else is unknowable.
        _ => Ok(Size::Known(whole_number(value).unwrap_or(worst))),
    }
}

/// The size a variable gives where a list is expected: its length, or 1 for a single value.
pub(crate) fn list_length(
    value: Option<&Value>,
    declared: Option<Declared>,
) -> Result<Size, Invalid> {
    let Some(value) = value else {
        return absent(declared);
    };
    match value {
        Value::Null => null(declared),
        Value::Array(items) => Ok(Size::Known(items.len() as u64)),
        _ => Ok(Size::Known(1)),
    }
}

/// A `Boolean` variable (`@skip(if: $b)`): `None` when it cannot decide (the field then counts).
pub(crate) fn boolean(
    value: Option<&Value>,
    declared: Option<Declared>,
) -> Result<Option<bool>, Invalid> {
    match (value, declared) {
        (Some(Value::Bool(b)), _) => Ok(Some(*b)),
        (None, _) => absent(declared).map(|_| None),
        (Some(Value::Null), _) => null(declared).map(|_| None),
        (
            Some(_),
            Some(Declared {
                scalar: Scalar::Boolean,
                list_depth: 0,
                ..
            }),
        ) => Err(Invalid::NotABoolean),
        (Some(_), _) => Ok(None),
    }
}

fn absent(declared: Option<Declared>) -> Result<Size, Invalid> {
    match declared {
        Some(Declared { non_null: true, .. }) => Err(Invalid::MissingRequired),
        _ => Ok(Size::Absent),
    }
}

fn null(declared: Option<Declared>) -> Result<Size, Invalid> {
    match declared {
        Some(Declared { non_null: true, .. }) => Err(Invalid::NullForNonNull),
        _ => Ok(Size::Null),
    }
}

/// A non-negative whole JSON number, saturating.
fn whole_number(value: &Value) -> Option<u64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(n) = number.as_u64() {
        return Some(n);
    }
    let f = number.as_f64()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0).then(|| f.min(u64::MAX as f64) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn int(text: &str) -> Result<i64, Invalid> {
        coerce_int(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn whole_numbers_are_ints_whatever_their_spelling() {
        for text in [
            "1000",
            "1e3",
            "1000.0",
            "1000.00000000000001",
            "1E+3",
            "10000e-1",
        ] {
            assert_eq!(int(text), Ok(1000), "{text}");
        }
        assert_eq!(int("-2147483648"), Ok(-2_147_483_648));
        assert_eq!(int("2147483647.0"), Ok(2_147_483_647));
    }

    #[test]
    fn fractions_strings_booleans_and_big_numbers_are_not_ints() {
        assert_eq!(int("2.5"), Err(Invalid::Fraction));
        assert_eq!(int("2147483648"), Err(Invalid::OutOfRange));
        assert_eq!(int("3e9"), Err(Invalid::OutOfRange));
        assert_eq!(int("-2147483649"), Err(Invalid::OutOfRange));
        assert_eq!(int("18446744073709551615"), Err(Invalid::OutOfRange));
        assert_eq!(int("\"10\""), Err(Invalid::NotANumber));
        assert_eq!(int("true"), Err(Invalid::NotANumber));
        assert_eq!(int("[10]"), Err(Invalid::NotANumber));
        assert!(serde_json::from_str::<Value>("1e400").is_err());
    }

    #[test]
    fn negative_sizes_are_the_worst_case() {
        assert_eq!(size_of_int(-1, 1000), 1000);
        assert_eq!(size_of_int(7, 1000), 7);
    }

    #[test]
    fn custom_scalars_keep_whole_numbers_and_assume_the_worst_otherwise() {
        let other = Some(Declared {
            scalar: Scalar::Other,
            list_depth: 0,
            non_null: false,
        });
        assert_eq!(
            int_size(Some(&json!(5e1)), other, 1000),
            Ok(Size::Known(50))
        );
        assert_eq!(
            int_size(Some(&json!("50")), other, 1000),
            Ok(Size::Known(1000))
        );
        assert_eq!(
            int_size(Some(&json!(-5)), other, 1000),
            Ok(Size::Known(1000))
        );
    }
}
