//! The rules an operator sets: each rule's name, the limits, the introspection switch and the
//! mode (enforce or monitor) of every rule. Plain data, shared by the configuration that fills
//! it and the policy that judges by it; it imports nothing.

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
    /// Requests per client (`RATE_LIMIT`), checked by the budgets (`admission`), not by the policy's `judge`.
    RateLimit,
    /// Cost points per client (`COST_BUDGET`), checked by the budgets (`admission`), not by the policy's `judge`.
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

/// Whether `__schema` / `__type` may be queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Block,
    Allow,
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
    pub introspection: Introspection,
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

impl Limits {
    /// These limits with the ones a reviewed document's text alone decides switched off (tokens,
    /// depth, aliases, root fields, directives, fields, cost); request-level rules — introspection,
    /// variables, batch cost — stay.
    pub fn without_document_limits(&self) -> Limits {
        Limits {
            tokens: None,
            depth: None,
            aliases: None,
            root_fields: None,
            directives: None,
            fields: None,
            cost: None,
            ..self.clone()
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

impl Mode {
    pub const CHOICES: &[(&str, Mode)] = &[("enforce", Mode::Enforce), ("monitor", Mode::Monitor)];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl Introspection {
    pub const CHOICES: &[(&str, Introspection)] = &[
        ("block", Introspection::Block),
        ("allow", Introspection::Allow),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.as_str()), Some(rule));
        }
    }
}
