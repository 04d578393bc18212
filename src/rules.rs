//! The rules an operator sets: each rule's name, the limits, the introspection switch, the mode
//! (enforce or monitor) of every rule, and the rates budgets are written in. Plain data, shared by
//! the configuration that fills it and the modules that judge or count by it; it imports nothing.

use std::num::NonZeroU32;
use std::time::Duration;

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
    /// Nested list fields (the amplification factor of an operation).
    ListDepth,
    Introspection,
    Schema,
    Variables,
    /// Requests per client (`RATE_LIMIT`), checked by the budgets (`admission`), not by the policy's `judge`.
    RateLimit,
    /// Cost points per client (`COST_BUDGET`), checked by the budgets (`admission`), not by the policy's `judge`.
    CostBudget,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::Tokens,
        Rule::Depth,
        Rule::Aliases,
        Rule::RootFields,
        Rule::Directives,
        Rule::Fields,
        Rule::Cost,
        Rule::BatchCost,
        Rule::ListDepth,
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
            Rule::ListDepth => "list_depth",
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
    /// Nested list fields (`MAX_LIST_DEPTH`).
    pub list_depth: Option<u32>,
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
    /// These limits without the ones a document's text alone decides (tokens, depth, aliases,
    /// root fields, directives, fields, list depth): what a reviewed document may skip. Cost
    /// depends on the request's variables and stays, as do the request-level rules
    /// (introspection, variables, batch cost).
    pub fn without_text_limits(&self) -> Limits {
        Limits {
            tokens: None,
            depth: None,
            aliases: None,
            root_fields: None,
            directives: None,
            fields: None,
            list_depth: None,
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

/// A budget: `amount` per `period`, with a burst of `burst` (default: `amount`), or `off`.
///
/// Written `<amount>/<unit>[:burst=<n>]`, unit `s`, `min` (or `m`) or `h` (also `sec`, `second`,
/// `minute`, `hour`): `100/s`, `6000/min`, `50000/min`, `10/h`, `100/s:burst=200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Units allowed per `period`.
    pub amount: NonZeroU32,
    /// 1 s, 1 min or 1 h.
    pub period: Duration,
    /// Bucket size; `None` means `amount`.
    pub burst: Option<NonZeroU32>,
}

impl Rate {
    /// Time between two units.
    pub fn interval(&self) -> Duration {
        self.period / self.amount.get()
    }

    /// The bucket size.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst.unwrap_or(self.amount)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.amount)?;
        if let Some(burst) = self.burst {
            write!(f, ":burst={burst}")?;
        }
        Ok(())
    }
}

/// Parses a rate, or `off` (`None`).
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    const ACCEPTED: &str = "<amount>/<unit>[:burst=<n>] with a positive amount and unit s, min or h (e.g. 100/s, 6000/min, 10/h, 100/s:burst=200), or off";
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let syntax = || ACCEPTED.to_owned();
    let (rate, burst) = match text.split_once(':') {
        Some((rate, options)) => {
            let (name, value) = options.split_once('=').ok_or_else(syntax)?;
            if !name.trim().eq_ignore_ascii_case("burst") {
                return Err(syntax());
            }
            let burst = value.trim().parse::<NonZeroU32>().map_err(|_| syntax())?;
            (rate, Some(burst))
        }
        None => (text, None),
    };
    let (amount, unit) = rate.split_once('/').ok_or_else(syntax)?;
    let amount = amount.trim().parse::<NonZeroU32>().map_err(|_| syntax())?;
    let period = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(syntax()),
    };
    let parsed = Rate {
        amount,
        period,
        burst,
    };
    // The limiter counts time in u64 nanoseconds: at most one unit per nanosecond, and a full
    // bucket's refill time (interval × burst) with a factor 2 of headroom.
    let interval = parsed.interval().as_nanos();
    if interval == 0 || interval * u128::from(parsed.burst().get()) > u128::from(u64::MAX / 2) {
        return Err(
            "a rate of at most one unit per nanosecond, whose burst refills in under 290 years"
                .to_owned(),
        );
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn parses_the_documented_rate_forms() {
        let cases = [
            ("100/s", 100, 1, None),
            ("6000/min", 6000, 60, None),
            ("6000/m", 6000, 60, None),
            ("50000/min", 50000, 60, None),
            ("10/h", 10, 3600, None),
            ("100/s:burst=200", 100, 1, Some(200)),
            (" 5 / minute : burst = 7 ", 5, 60, Some(7)),
            ("1/hour", 1, 3600, None),
            ("1/HOUR", 1, 3600, None),
        ];
        for (text, amount, secs, burst) in cases {
            assert_eq!(
                parse_rate(text),
                Ok(Some(Rate {
                    amount: nz(amount),
                    period: Duration::from_secs(secs),
                    burst: burst.map(nz),
                })),
                "text={text:?}"
            );
        }
        assert_eq!(parse_rate("off"), Ok(None));
    }

    #[test]
    fn rejects_malformed_rates_with_the_accepted_forms() {
        for text in [
            "",
            "100",
            "0/s",
            "-1/s",
            "100/ms",
            "100/day",
            "1.5/s",
            "100/s:burst=0",
            "100/s:bust=2",
            "100/s:burst=",
            "s/100",
        ] {
            let err = parse_rate(text).expect_err(text);
            assert!(err.contains("100/s:burst=200"), "{text}: {err}");
        }
    }

    #[test]
    fn rejects_rates_the_limiter_cannot_count() {
        for text in ["4000000000/s", "1/h:burst=4000000000"] {
            let err = parse_rate(text).expect_err(text);
            assert!(err.contains("nanosecond"), "{text}: {err}");
        }
    }

    #[test]
    fn rates_display_as_they_are_written() {
        for text in ["100/s", "6000/min", "10/h", "100/s:burst=200"] {
            let rate = parse_rate(text).unwrap().unwrap();
            assert_eq!(rate.to_string(), text);
        }
    }

    #[test]
    fn rule_names_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.as_str()), Some(rule));
        }
    }
}
