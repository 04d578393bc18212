//! Limits × measurements → verdict: which rules an operation breaks, and whether each one is
//! enforced or only monitored.
//!
//! # Why
//! Rolling out limits on a live API needs a dry run: `GRAPHQL_FIREWALL_MODE=monitor` logs every
//! would-be rejection and forwards the request, and a per-rule override runs one rule (say, `cost`)
//! in monitor mode while the others are enforced. Every rule here has a mode, the parser-level
//! ones (tokens, depth) included — a peer's `warn_only` skips those.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use crate::analysis::{Metrics, VariableMetrics};

/// A rule of the policy; its name is the label used in configuration, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    Tokens,
    Depth,
    Aliases,
    RootFields,
    Directives,
    Fields,
    Cost,
    BatchCost,
    Introspection,
    Schema,
    Variables,
    /// Requests per client (`RATE_LIMIT`), checked by the rate limiter, not by [`check`].
    RateLimit,
    /// Cost points per client (`COST_BUDGET`), checked by the rate limiter, not by [`check`].
    CostBudget,
}

impl Rule {
    pub const ALL: [Rule; 13] = [
        Rule::Tokens,
        Rule::Depth,
        Rule::Aliases,
        Rule::RootFields,
        Rule::Directives,
        Rule::Fields,
        Rule::Cost,
        Rule::BatchCost,
        Rule::Introspection,
        Rule::Schema,
        Rule::Variables,
        Rule::RateLimit,
        Rule::CostBudget,
    ];

    /// Configuration and label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Tokens => "tokens",
            Rule::Depth => "depth",
            Rule::Aliases => "aliases",
            Rule::RootFields => "root_fields",
            Rule::Directives => "directives",
            Rule::Fields => "fields",
            Rule::Cost => "cost",
            Rule::BatchCost => "batch_cost",
            Rule::Introspection => "introspection",
            Rule::Schema => "schema",
            Rule::Variables => "variables",
            Rule::RateLimit => "rate_limit",
            Rule::CostBudget => "cost_budget",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == name)
    }
}

/// Enforce (refuse) or monitor (log and forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Monitor,
}

/// The configured limits; `None` switches a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub tokens: Option<u32>,
    pub depth: Option<u32>,
    pub aliases: Option<u32>,
    pub root_fields: Option<u32>,
    pub directives: Option<u32>,
    pub fields: Option<u32>,
    pub cost: Option<u64>,
    pub batch_cost: Option<u64>,
    /// `false` lets `__schema` / `__type` through.
    pub block_introspection: bool,
    /// Refuse operations naming fields, arguments or types the schema lacks (only with a schema).
    pub schema_validation: bool,
    pub variables: VariableLimits,
}

/// Limits on the `variables` JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariableLimits {
    pub count: Option<u32>,
    pub depth: Option<u32>,
    pub longest_list: Option<u32>,
    pub bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            tokens: Some(15_000),
            depth: Some(10),
            aliases: Some(15),
            root_fields: Some(20),
            directives: Some(50),
            fields: Some(3_500),
            cost: Some(5_000),
            batch_cost: Some(10_000),
            block_introspection: true,
            schema_validation: true,
            variables: VariableLimits {
                count: Some(100),
                depth: Some(16),
                longest_list: Some(1_000),
                bytes: Some(256 * 1024),
            },
        }
    }
}

/// The mode of each rule: a default plus overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
    pub default: Mode,
    pub overrides: Vec<(Rule, Mode)>,
}

impl Modes {
    pub fn of(&self, rule: Rule) -> Mode {
        self.overrides
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or(self.default, |(_, mode)| *mode)
    }
}

impl Default for Modes {
    fn default() -> Modes {
        Modes {
            default: Mode::Enforce,
            overrides: Vec::new(),
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub limit: u64,
    pub actual: u64,
    pub mode: Mode,
}

/// What one operation measured, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured<'a> {
    pub tokens: u32,
    pub metrics: &'a Metrics,
    pub cost: u64,
    pub variables: &'a VariableMetrics,
}

/// Every rule `measured` breaks (empty: allowed), in [`Rule::ALL`] order.
pub fn check(measured: &Measured<'_>, limits: &Limits, modes: &Modes) -> Vec<Violation> {
    // Destructured so that a new metric cannot go unchecked: the compiler names the missing field.
    let Metrics {
        depth,
        aliases,
        root_fields,
        directives,
        fields,
        introspection_fields,
        unknown_schema_names,
        // TODO(#12): MAX_LIST_DEPTH (off by default) decides this one.
        list_depth: _,
    } = *measured.metrics;
    let VariableMetrics {
        count: variable_count,
        depth: variable_depth,
        longest_list,
        bytes: variable_bytes,
    } = *measured.variables;
    let variable_limits = &limits.variables;
    // Batch cost spans operations: `check_batch_cost` checks it.
    let candidates: [(Rule, Option<u64>, u64); 13] = [
        (
            Rule::Tokens,
            limits.tokens.map(u64::from),
            measured.tokens.into(),
        ),
        (Rule::Depth, limits.depth.map(u64::from), depth.into()),
        (Rule::Aliases, limits.aliases.map(u64::from), aliases.into()),
        (
            Rule::RootFields,
            limits.root_fields.map(u64::from),
            root_fields.into(),
        ),
        (
            Rule::Directives,
            limits.directives.map(u64::from),
            directives.into(),
        ),
        (Rule::Fields, limits.fields.map(u64::from), fields.into()),
        (Rule::Cost, limits.cost, measured.cost),
        (
            Rule::Introspection,
            limits.block_introspection.then_some(0),
            introspection_fields.into(),
        ),
        (
            Rule::Schema,
            limits.schema_validation.then_some(0),
            unknown_schema_names.into(),
        ),
        (
            Rule::Variables,
            variable_limits.count.map(u64::from),
            variable_count.into(),
        ),
        (
            Rule::Variables,
            variable_limits.depth.map(u64::from),
            variable_depth.into(),
        ),
        (
            Rule::Variables,
            variable_limits.longest_list.map(u64::from),
            longest_list.into(),
        ),
        (Rule::Variables, variable_limits.bytes, variable_bytes),
    ];
    candidates
        .into_iter()
        .filter_map(|(rule, limit, actual)| {
            let limit = limit?;
            (actual > limit).then(|| Violation {
                rule,
                limit,
                actual,
                mode: modes.of(rule),
            })
        })
        .collect()
}

/// The batch-wide cost rule: the sum of the members' costs.
pub fn check_batch_cost(total: u64, limits: &Limits, modes: &Modes) -> Option<Violation> {
    let limit = limits.batch_cost?;
    (total > limit).then(|| Violation {
        rule: Rule::BatchCost,
        limit,
        actual: total,
        mode: modes.of(Rule::BatchCost),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured<'a>(
        metrics: &'a Metrics,
        variables: &'a VariableMetrics,
        tokens: u32,
        cost: u64,
    ) -> Measured<'a> {
        Measured {
            tokens,
            metrics,
            cost,
            variables,
        }
    }

    #[test]
    fn an_operation_within_every_limit_breaks_nothing() {
        let metrics = Metrics {
            depth: 10,
            aliases: 15,
            root_fields: 20,
            directives: 50,
            fields: 100,
            ..Metrics::default()
        };
        let variables = VariableMetrics::default();
        let found = check(
            &measured(&metrics, &variables, 15_000, 5_000),
            &Limits::default(),
            &Modes::default(),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn each_limit_is_checked_with_limit_and_actual() {
        let metrics = Metrics {
            depth: 11,
            aliases: 16,
            introspection_fields: 1,
            ..Metrics::default()
        };
        let variables = VariableMetrics {
            longest_list: 5_000,
            ..VariableMetrics::default()
        };
        let found = check(
            &measured(&metrics, &variables, 10, 5_001),
            &Limits::default(),
            &Modes::default(),
        );
        let summary: Vec<(Rule, u64, u64)> =
            found.iter().map(|v| (v.rule, v.limit, v.actual)).collect();
        assert_eq!(
            summary,
            vec![
                (Rule::Depth, 10, 11),
                (Rule::Aliases, 15, 16),
                (Rule::Cost, 5_000, 5_001),
                (Rule::Introspection, 0, 1),
                (Rule::Variables, 1_000, 5_000),
            ]
        );
    }

    #[test]
    fn limits_that_are_off_are_not_checked() {
        let metrics = Metrics {
            depth: 1_000,
            introspection_fields: 3,
            ..Metrics::default()
        };
        let limits = Limits {
            depth: None,
            block_introspection: false,
            ..Limits::default()
        };
        let variables = VariableMetrics::default();
        assert!(
            check(
                &measured(&metrics, &variables, 1, 0),
                &limits,
                &Modes::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn per_rule_overrides_pick_the_mode() {
        let modes = Modes {
            default: Mode::Enforce,
            overrides: vec![(Rule::Cost, Mode::Monitor)],
        };
        let metrics = Metrics {
            depth: 11,
            ..Metrics::default()
        };
        let variables = VariableMetrics::default();
        let found = check(
            &measured(&metrics, &variables, 1, 1_000_000),
            &Limits::default(),
            &modes,
        );
        let modes: Vec<(Rule, Mode)> = found.iter().map(|v| (v.rule, v.mode)).collect();
        assert_eq!(
            modes,
            vec![(Rule::Depth, Mode::Enforce), (Rule::Cost, Mode::Monitor)]
        );
    }

    #[test]
    fn batch_cost_is_the_sum() {
        let limits = Limits::default();
        assert_eq!(check_batch_cost(10_000, &limits, &Modes::default()), None);
        assert_eq!(
            check_batch_cost(10_001, &limits, &Modes::default()).map(|v| (v.limit, v.actual)),
            Some((10_000, 10_001))
        );
    }

    #[test]
    fn rule_names_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.as_str()), Some(rule));
        }
    }
}
