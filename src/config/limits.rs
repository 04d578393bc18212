//! The document limits, the policy's modes, how rejections are rendered, the schema and the static
//! cost settings.

use std::path::PathBuf;

use super::parse::{parse_count, parse_limit, parse_names, parse_size, parse_switch, parse_weight};
use super::requests::parse_count_limit;
use super::table::*;
use super::values::{Introspection, Mode, RejectStatus, RuleModes};
use super::{ConfigError, Profile, Reader};

/// Document limits and the policy.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `MAX_TOKENS`.
    pub tokens: Option<u32>,
    /// `MAX_DEPTH`.
    pub depth: Option<u32>,
    /// `MAX_ALIASES`.
    pub aliases: Option<u32>,
    /// `MAX_ROOT_FIELDS`.
    pub root_fields: Option<u32>,
    /// `MAX_DIRECTIVES`.
    pub directives: Option<u32>,
    /// `MAX_FIELDS`.
    pub fields: Option<u32>,
    /// `MAX_COST`.
    pub cost: Option<u64>,
    /// `MAX_BATCH_COST`.
    pub batch_cost: Option<u64>,
    /// `MAX_VALUE_NESTING`: list/object nesting inside a document's values (always enforced).
    pub max_value_nesting: u32,
    /// `INTROSPECTION`.
    pub introspection: Introspection,
    /// `MODE`.
    pub mode: Mode,
    /// `RULE_MODES`.
    pub rule_modes: RuleModes,
    /// `EXPOSE_LIMITS`: `limit`/`actual` in rejections.
    pub expose_limits: bool,
    /// `REJECT_STATUS`.
    pub reject_status: RejectStatus,
    /// `ANALYSIS_CACHE_BYTES`.
    pub analysis_cache_bytes: u64,
    /// `SCHEMA`; `demo` defaults to its own schema.
    pub schema: Option<SchemaSource>,
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
        Ok(LimitsConfig {
            tokens: count(MAX_TOKENS)?,
            depth: count(MAX_DEPTH)?,
            aliases: count(MAX_ALIASES)?,
            root_fields: count(MAX_ROOT_FIELDS)?,
            directives: count(MAX_DIRECTIVES)?,
            fields: count(MAX_FIELDS)?,
            cost: wide(MAX_COST)?,
            batch_cost: wide(MAX_BATCH_COST)?,
            max_value_nesting: read.value(MAX_VALUE_NESTING, parse_count)?,
            introspection: read.value(INTROSPECTION, str::parse)?,
            mode: read.value(MODE, str::parse)?,
            rule_modes: read.optional(RULE_MODES, str::parse)?.unwrap_or_default(),
            expose_limits: read.value(EXPOSE_LIMITS, parse_switch)?,
            reject_status: read.value(REJECT_STATUS, str::parse)?,
            analysis_cache_bytes: read
                .value(ANALYSIS_CACHE_BYTES, |v| parse_size(v).map(|n| n as u64))?,
            schema,
            cost_settings: CostConfig {
                default_list_size: read.value(DEFAULT_LIST_SIZE, parse_weight)?,
                slicing_arguments: read.value(SLICING_ARGUMENTS, parse_names)?,
                object_weight: read.value(COST_OBJECT_WEIGHT, parse_weight)?,
                scalar_weight: read.value(COST_SCALAR_WEIGHT, parse_weight)?,
                mutation_weight: read.value(COST_MUTATION_WEIGHT, parse_weight)?,
            },
        })
    }

    /// The mode of the rule named `rule` (one of [`super::RULES`]).
    pub fn mode_of(&self, rule: &str) -> Mode {
        self.rule_modes
            .0
            .iter()
            .find(|(name, _)| *name == rule)
            .map_or(self.mode, |(_, mode)| *mode)
    }
}
