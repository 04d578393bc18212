//! Limits × measurements → verdict: which rules an operation breaks, and whether each one is
//! enforced or only monitored ([`judge`] → [`Verdict`]); and which limits apply to which documents
//! and callers ([`LimitProfiles`]).
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
use crate::rules::{Introspection, Limits, Mode, Modes, Rule};

/// Which limits apply to an operation: one set per kind of document and caller.
///
/// # Why
/// A document from the operator's own manifest was reviewed when it was built, so the limits its
/// text alone decides may be skipped (`PERSISTED_SKIP_LIMITS`) — but not its cost, which the
/// request's variables decide, unless the operator says so; a caller holding a client key
/// (internal tooling, schema registries) may introspect, with the depth the standard
/// introspection query needs (`TRUSTED_CLIENT_SKIP_LIMITS` lifts the document limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitProfiles {
    standard: Limits,
    reviewed: Limits,
    keyed: Limits,
}

/// The depth the standard introspection query needs.
const INTROSPECTION_DEPTH: u32 = 15;

/// Whether a set of limits is relaxed for some documents or callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relax {
    /// The same limits as everyone.
    No,
    /// Without the limits the document's text alone decides; cost is still checked.
    TextLimits,
    /// Without those and without the cost limit.
    TextLimitsAndCost,
}

impl LimitProfiles {
    pub fn new(standard: Limits, reviewed: Relax, keyed: Relax) -> LimitProfiles {
        let relax = |relax: Relax| match relax {
            Relax::No => standard.clone(),
            Relax::TextLimits => standard.without_text_limits(),
            Relax::TextLimitsAndCost => Limits {
                cost: None,
                ..standard.without_text_limits()
            },
        };
        let keyed = match keyed {
            Relax::No => Limits {
                depth: standard.depth.map(|d| d.max(INTROSPECTION_DEPTH)),
                ..standard.clone()
            },
            relaxed => relax(relaxed),
        };
        LimitProfiles {
            reviewed: relax(reviewed),
            keyed: Limits {
                introspection: Introspection::Allow,
                ..keyed
            },
            standard,
        }
    }

    /// The limits for everyone.
    pub fn standard(&self) -> &Limits {
        &self.standard
    }

    /// The limits for a document: `reviewed` (in the manifest), asked for by a caller that holds
    /// a client key or not.
    pub fn select(&self, reviewed: bool, keyed: bool) -> &Limits {
        match (keyed, reviewed) {
            (true, _) => &self.keyed,
            (false, true) => &self.reviewed,
            (false, false) => &self.standard,
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub limit: u64,
    pub actual: u64,
}

/// For people (`check`, `analyse`, manifest load errors): the schema rule's limit is always 0,
/// so "schema 1 > limit 0" would say nothing; it says what is wrong instead.
impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            Rule::Schema => write!(
                f,
                "schema: {} field(s), argument(s) or type(s) the schema does not define",
                self.actual
            ),
            rule => write!(
                f,
                "{} {} > limit {}",
                rule.as_str(),
                self.actual,
                self.limit
            ),
        }
    }
}

/// The rules broken by one operation, a batch or a budget check, split by mode: the enforced ones
/// refuse the request, the monitored ones are logged and counted, and the request goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub enforced: Vec<Violation>,
    pub monitored: Vec<Violation>,
}

impl Verdict {
    /// Splits `violations` by the mode of their rule: the one place where monitor mode is applied.
    pub fn split(violations: impl IntoIterator<Item = Violation>, modes: &Modes) -> Verdict {
        let (enforced, monitored) = violations
            .into_iter()
            .partition(|violation| modes.of(violation.rule) == Mode::Enforce);
        Verdict {
            enforced,
            monitored,
        }
    }

    /// Nothing refuses the request.
    pub fn allows(&self) -> bool {
        self.enforced.is_empty()
    }
}

/// What one operation measured, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured<'a> {
    pub tokens: u32,
    pub metrics: &'a Metrics,
    pub cost: u64,
    pub variables: &'a VariableMetrics,
}

/// Judges one operation: every rule `measured` breaks, in [`Rule::ALL`] order, split by mode.
pub fn judge(measured: &Measured<'_>, limits: &Limits, modes: &Modes) -> Verdict {
    // Destructured so that a new metric cannot go unchecked: the compiler names the missing field.
    let Metrics {
        depth,
        aliases,
        root_fields,
        directives,
        fields,
        introspection_fields,
        unknown_schema_names,
        list_depth,
    } = *measured.metrics;
    let VariableMetrics {
        count: variable_count,
        depth: variable_depth,
        longest_list,
        bytes: variable_bytes,
    } = *measured.variables;
    let variable_limits = &limits.variables;
    // Batch cost spans operations: `judge_batch_cost` checks it.
    let candidates: [(Rule, Option<u64>, u64); 14] = [
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
            Rule::ListDepth,
            limits.list_depth.map(u64::from),
            list_depth.into(),
        ),
        (
            Rule::Introspection,
            (limits.introspection == Introspection::Block).then_some(0),
            introspection_fields.into(),
        ),
        // Unknown names are only counted when there is a schema to check them against.
        (Rule::Schema, Some(0), unknown_schema_names.into()),
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
    let broken = candidates.into_iter().filter_map(|(rule, limit, actual)| {
        let limit = limit?;
        (actual > limit).then_some(Violation {
            rule,
            limit,
            actual,
        })
    });
    Verdict::split(broken, modes)
}

/// Judges a batch: the sum of its members' costs against the batch cost limit.
pub fn judge_batch_cost(total: u64, limits: &Limits, modes: &Modes) -> Verdict {
    let broken = limits
        .batch_cost
        .filter(|&limit| total > limit)
        .map(|limit| Violation {
            rule: Rule::BatchCost,
            limit,
            actual: total,
        });
    Verdict::split(broken, modes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::VariableLimits;

    /// The shipped defaults (README's table), written out: tests state the limits they judge by.
    fn limits() -> Limits {
        Limits {
            tokens: Some(15_000),
            depth: Some(10),
            aliases: Some(15),
            root_fields: Some(20),
            directives: Some(50),
            fields: Some(3_500),
            cost: Some(5_000),
            batch_cost: Some(10_000),
            list_depth: None,
            introspection: Introspection::Block,
            variables: VariableLimits {
                count: Some(100),
                depth: Some(16),
                longest_list: Some(1_000),
                bytes: Some(256 * 1024),
            },
        }
    }

    fn enforce() -> Modes {
        Modes {
            default: Mode::Enforce,
            overrides: Vec::new(),
        }
    }

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

    fn summary(violations: &[Violation]) -> Vec<(Rule, u64, u64)> {
        violations
            .iter()
            .map(|v| (v.rule, v.limit, v.actual))
            .collect()
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
        let verdict = judge(
            &measured(&metrics, &variables, 15_000, 5_000),
            &limits(),
            &enforce(),
        );
        assert_eq!(verdict, Verdict::default());
        assert!(verdict.allows());
    }

    #[test]
    fn each_limit_is_checked_with_limit_and_actual() {
        let metrics = Metrics {
            depth: 11,
            aliases: 16,
            introspection_fields: 1,
            unknown_schema_names: 2,
            ..Metrics::default()
        };
        let variables = VariableMetrics {
            longest_list: 5_000,
            ..VariableMetrics::default()
        };
        let verdict = judge(
            &measured(&metrics, &variables, 10, 5_001),
            &limits(),
            &enforce(),
        );
        assert_eq!(
            summary(&verdict.enforced),
            vec![
                (Rule::Depth, 10, 11),
                (Rule::Aliases, 15, 16),
                (Rule::Cost, 5_000, 5_001),
                (Rule::Introspection, 0, 1),
                (Rule::Schema, 0, 2),
                (Rule::Variables, 1_000, 5_000),
            ]
        );
        assert!(verdict.monitored.is_empty());
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
            introspection: Introspection::Allow,
            ..limits()
        };
        let variables = VariableMetrics::default();
        assert!(judge(&measured(&metrics, &variables, 1, 0), &limits, &enforce()).allows());
    }

    #[test]
    fn per_rule_overrides_split_the_verdict() {
        let modes = Modes {
            default: Mode::Enforce,
            overrides: vec![(Rule::Cost, Mode::Monitor)],
        };
        let metrics = Metrics {
            depth: 11,
            ..Metrics::default()
        };
        let variables = VariableMetrics::default();
        let verdict = judge(
            &measured(&metrics, &variables, 1, 1_000_000),
            &limits(),
            &modes,
        );
        assert_eq!(summary(&verdict.enforced), vec![(Rule::Depth, 10, 11)]);
        assert_eq!(
            summary(&verdict.monitored),
            vec![(Rule::Cost, 5_000, 1_000_000)]
        );
    }

    #[test]
    fn batch_cost_is_the_sum() {
        assert!(judge_batch_cost(10_000, &limits(), &enforce()).allows());
        assert_eq!(
            summary(&judge_batch_cost(10_001, &limits(), &enforce()).enforced),
            vec![(Rule::BatchCost, 10_000, 10_001)]
        );
    }

    #[test]
    fn reviewed_documents_skip_only_the_text_limits_unless_cost_too() {
        let profiles = LimitProfiles::new(limits(), Relax::TextLimits, Relax::No);
        let reviewed = profiles.select(true, false);
        assert_eq!(reviewed.depth, None);
        assert_eq!(
            reviewed.cost,
            limits().cost,
            "cost depends on the variables"
        );
        let all = LimitProfiles::new(limits(), Relax::TextLimitsAndCost, Relax::No);
        assert_eq!(all.select(true, false).cost, None);
        assert_eq!(reviewed.introspection, Introspection::Block);
        assert_eq!(reviewed.variables, limits().variables);
        assert_eq!(reviewed.batch_cost, limits().batch_cost);
        assert_eq!(profiles.select(false, false), &limits());
    }

    #[test]
    fn keyed_callers_may_introspect_with_the_depth_it_needs() {
        let profiles = LimitProfiles::new(limits(), Relax::No, Relax::No);
        let keyed = profiles.select(false, true);
        assert_eq!(keyed.introspection, Introspection::Allow);
        assert_eq!(keyed.depth, Some(INTROSPECTION_DEPTH));
        assert_eq!(keyed.aliases, limits().aliases);
        let relaxed = LimitProfiles::new(limits(), Relax::No, Relax::TextLimits);
        assert_eq!(relaxed.select(true, true).depth, None);
    }
}
