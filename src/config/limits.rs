//! The rules: the document and variable limits, introspection, each rule's mode; how rejections
//! are rendered; the schema and the static cost settings.

use std::path::PathBuf;

use crate::rules::{Introspection, Limits, Mode, Modes, Rule, VariableLimits};

use super::parse::{
    choice, parse_count, parse_limit, parse_names, parse_size, parse_switch, parse_weight,
};
use super::table::*;
use super::values::RejectStatus;
use super::{ConfigError, Profile, Reader};

/// The rules and what goes with them.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `MAX_TOKENS` … `MAX_BATCH_COST`, `INTROSPECTION` and the `MAX_VARIABLE*` limits.
    pub limits: Limits,
    /// `MODE` and `RULE_MODES`.
    pub modes: Modes,
    /// `MAX_VALUE_NESTING`: list/object nesting inside a document's values (always enforced).
    pub max_value_nesting: u32,
    /// `EXPOSE_LIMITS`: `limit`/`actual` in rejections.
    pub expose_limits: bool,
    /// `REJECT_STATUS`.
    pub reject_status: RejectStatus,
    /// `ANALYSIS_CACHE_BYTES`.
    pub analysis_cache_bytes: u64,
    /// `SCHEMA`; `demo` defaults to its own schema.
    pub schema: Option<SchemaSource>,
    /// `DENY_FIELDS`: schema coordinates nobody may select.
    pub deny_fields: Vec<String>,
    pub cost_settings: CostConfig,
}

/// Where the schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// The embedded demo backend's SDL.
    Demo,
    /// An SDL file, or a directory of `.graphql`/`.graphqls`/`.gql` files.
    Path(PathBuf),
}

/// Static cost settings.
#[derive(Debug, Clone)]
pub struct CostConfig {
    /// `DEFAULT_LIST_SIZE`.
    pub default_list_size: u64,
    /// `MAX_LIST_SIZE`.
    pub max_list_size: u64,
    /// `SLICING_ARGUMENTS`.
    pub slicing_arguments: Vec<String>,
    /// `COST_OBJECT_WEIGHT`.
    pub object_weight: u64,
    /// `COST_SCALAR_WEIGHT`.
    pub scalar_weight: u64,
    /// `COST_MUTATION_WEIGHT`.
    pub mutation_weight: u64,
}

impl LimitsConfig {
    pub(super) fn read(read: &Reader<'_>, profile: Profile) -> Result<LimitsConfig, ConfigError> {
        let count = |name: &str| read.value(name, parse_count_limit);
        let wide = |name: &str| read.value(name, parse_limit);
        let schema = match read.optional(SCHEMA, |v| {
            Ok((!v.eq_ignore_ascii_case("off")).then(|| PathBuf::from(v)))
        })? {
            Some(Some(path)) => Some(SchemaSource::Path(path)),
            // `off` runs without a schema, also in `demo`.
            Some(None) => None,
            None if profile == Profile::Demo => Some(SchemaSource::Demo),
            None => None,
        };
        let deny_fields = read
            .optional(DENY_FIELDS, parse_coordinates)?
            .unwrap_or_default();
        if !deny_fields.is_empty() && schema.is_none() {
            return Err(ConfigError::Invalid {
                name: DENY_FIELDS.to_owned(),
                value: deny_fields.join(","),
                accepted: format!(
                    "to be set together with {SCHEMA}: coordinates are checked against it"
                ),
            });
        }
        Ok(LimitsConfig {
            limits: Limits {
                tokens: count(MAX_TOKENS)?,
                depth: count(MAX_DEPTH)?,
                aliases: count(MAX_ALIASES)?,
                root_fields: count(MAX_ROOT_FIELDS)?,
                directives: count(MAX_DIRECTIVES)?,
                fields: count(MAX_FIELDS)?,
                cost: wide(MAX_COST)?,
                batch_cost: wide(MAX_BATCH_COST)?,
                list_depth: count(MAX_LIST_DEPTH)?,
                introspection: read.value(INTROSPECTION, |v| choice(v, Introspection::CHOICES))?,
                variables: VariableLimits {
                    count: count(MAX_VARIABLES)?,
                    depth: count(MAX_VARIABLE_DEPTH)?,
                    longest_list: count(MAX_VARIABLE_LIST)?,
                    bytes: read.value(MAX_VARIABLES_BYTES, |v| {
                        if v.eq_ignore_ascii_case("off") {
                            Ok(None)
                        } else {
                            parse_size(v).map(|n| Some(n as u64))
                        }
                    })?,
                },
            },
            modes: Modes {
                default: read.value(MODE, |v| choice(v, Mode::CHOICES))?,
                overrides: read
                    .optional(RULE_MODES, parse_rule_modes)?
                    .unwrap_or_default(),
            },
            max_value_nesting: read.value(MAX_VALUE_NESTING, parse_count)?,
            expose_limits: read.value(EXPOSE_LIMITS, parse_switch)?,
            reject_status: read.value(REJECT_STATUS, |v| choice(v, RejectStatus::CHOICES))?,
            analysis_cache_bytes: read
                .value(ANALYSIS_CACHE_BYTES, |v| parse_size(v).map(|n| n as u64))?,
            schema,
            deny_fields,
            cost_settings: CostConfig {
                default_list_size: read.value(DEFAULT_LIST_SIZE, parse_weight)?,
                max_list_size: read.value(MAX_LIST_SIZE, parse_weight)?,
                slicing_arguments: read.value(SLICING_ARGUMENTS, parse_names)?,
                object_weight: read.value(COST_OBJECT_WEIGHT, parse_weight)?,
                scalar_weight: read.value(COST_SCALAR_WEIGHT, parse_weight)?,
                mutation_weight: read.value(COST_MUTATION_WEIGHT, parse_weight)?,
            },
        })
    }
}

/// A positive limit below 2^32, or `off`.
fn parse_count_limit(text: &str) -> Result<Option<u32>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_count(text)
        .map(Some)
        .map_err(|_| "a positive integer below 2^32, or off".to_owned())
}

/// `cost:monitor,depth:enforce`: rule names as `Rule::as_str` writes them, any case.
fn parse_rule_modes(text: &str) -> Result<Vec<(Rule, Mode)>, String> {
    let rules: Vec<(&str, Rule)> = Rule::ALL.iter().map(|r| (r.as_str(), *r)).collect();
    let accepted = || {
        let names: Vec<&str> = rules.iter().map(|(name, _)| *name).collect();
        format!(
            "a list of rule:mode pairs such as cost:monitor, with modes enforce or monitor and rules {}",
            names.join(", ")
        )
    };
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (rule, mode) = pair.split_once(':').ok_or_else(accepted)?;
            let rule = choice(rule, &rules).map_err(|_| accepted())?;
            let mode = choice(mode, Mode::CHOICES).map_err(|_| accepted())?;
            Ok((rule, mode))
        })
        .collect()
}

/// `User.passwordHash,Query.secretAdminToken,AdminLog`: schema coordinates (a type or a field).
fn parse_coordinates(text: &str) -> Result<Vec<String>, String> {
    let name = |part: &str| {
        part.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|coordinate| {
            let valid = match coordinate.split_once('.') {
                Some((type_name, field)) => name(type_name) && name(field),
                None => name(coordinate),
            };
            valid.then(|| coordinate.to_owned()).ok_or_else(|| {
                format!("schema coordinates such as User.passwordHash or AdminLog, comma-separated ({coordinate:?} is not one)")
            })
        })
        .collect()
}
