//! The values an operator writes that are more than a number, a size, a duration or a switch: each
//! a small type with its own parser, whose error says what is accepted. Enumerated values are
//! case-insensitive.
//!
//! These types belong to the configuration; `lib.rs` turns them into each module's own settings,
//! so that no module depends on how its settings are spelt.

use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// Enforce (refuse) or monitor (log and forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        match text.to_ascii_lowercase().as_str() {
            "enforce" => Ok(Mode::Enforce),
            "monitor" => Ok(Mode::Monitor),
            _ => Err("enforce or monitor".to_owned()),
        }
    }
}

/// The rules a mode can be set for (`RULE_MODES`), by their configuration names.
pub const RULES: [&str; 13] = [
    "tokens",
    "depth",
    "aliases",
    "root_fields",
    "directives",
    "fields",
    "cost",
    "batch_cost",
    "introspection",
    "schema",
    "variables",
    "rate_limit",
    "cost_budget",
];

/// `RULE_MODES`: `cost:monitor,depth:enforce`; each rule is one of [`RULES`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleModes(pub Vec<(&'static str, Mode)>);

impl FromStr for RuleModes {
    type Err = String;

    fn from_str(text: &str) -> Result<RuleModes, String> {
        let accepted = || {
            format!(
                "a list of rule:mode pairs such as cost:monitor, with rules {} and modes enforce or monitor",
                RULES.join(", ")
            )
        };
        text.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (rule, mode) = pair.split_once(':').ok_or_else(accepted)?;
                let rule = rule.trim().to_ascii_lowercase();
                let rule = RULES
                    .into_iter()
                    .find(|known| *known == rule)
                    .ok_or_else(accepted)?;
                let mode = mode.trim().parse().map_err(|_| accepted())?;
                Ok((rule, mode))
            })
            .collect::<Result<_, String>>()
            .map(RuleModes)
    }
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

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text.to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("pretty or json".to_owned()),
        }
    }
}

/// `REJECT_STATUS`: the HTTP status of a rule rejection (limits, validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectStatus {
    /// 400, what Apollo clients and most tooling expect.
    BadRequest,
    /// 422, the 2026 GraphQL-over-HTTP draft's status for validation failures.
    UnprocessableEntity,
}

impl FromStr for RejectStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<RejectStatus, String> {
        match text {
            "400" => Ok(RejectStatus::BadRequest),
            "422" => Ok(RejectStatus::UnprocessableEntity),
            _ => Err("400 or 422".to_owned()),
        }
    }
}

/// `INTROSPECTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Block,
    Allow,
}

impl FromStr for Introspection {
    type Err = String;

    fn from_str(text: &str) -> Result<Introspection, String> {
        match text.to_ascii_lowercase().as_str() {
            "block" => Ok(Introspection::Block),
            "allow" => Ok(Introspection::Allow),
            _ => Err("block or allow".to_owned()),
        }
    }
}

/// `PERSISTED_QUERIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedQueries {
    Off,
    Apq,
    Audit,
    Allowlist,
}

impl FromStr for PersistedQueries {
    type Err = String;

    fn from_str(text: &str) -> Result<PersistedQueries, String> {
        match text.to_ascii_lowercase().as_str() {
            "off" => Ok(PersistedQueries::Off),
            "apq" => Ok(PersistedQueries::Apq),
            "audit" => Ok(PersistedQueries::Audit),
            "allowlist" => Ok(PersistedQueries::Allowlist),
            _ => Err("off, apq, audit or allowlist".to_owned()),
        }
    }
}

/// `PERSISTED_LIMIT_VIOLATIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitViolations {
    Error,
    Warn,
}

impl FromStr for LimitViolations {
    type Err = String;

    fn from_str(text: &str) -> Result<LimitViolations, String> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Ok(LimitViolations::Error),
            "warn" => Ok(LimitViolations::Warn),
            _ => Err("error or warn".to_owned()),
        }
    }
}

/// `MASK_ERRORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskErrors {
    Off,
    Details,
    All,
}

impl FromStr for MaskErrors {
    type Err = String;

    fn from_str(text: &str) -> Result<MaskErrors, String> {
        match text.to_ascii_lowercase().as_str() {
            "off" => Ok(MaskErrors::Off),
            "details" => Ok(MaskErrors::Details),
            "all" => Ok(MaskErrors::All),
            _ => Err("off, details or all".to_owned()),
        }
    }
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
    fn rule_modes_name_known_rules_in_any_case() {
        assert_eq!(
            "cost:monitor, Depth:ENFORCE".parse::<RuleModes>(),
            Ok(RuleModes(vec![
                ("cost", Mode::Monitor),
                ("depth", Mode::Enforce)
            ]))
        );
        let err = "cots:monitor".parse::<RuleModes>().unwrap_err();
        assert!(err.contains("batch_cost"), "{err}");
        assert!("cost:watch".parse::<RuleModes>().is_err());
    }

    #[test]
    fn enumerated_values_are_case_insensitive() {
        assert_eq!("Monitor".parse(), Ok(Mode::Monitor));
        assert_eq!("JSON".parse(), Ok(LogFormat::Json));
        assert_eq!("Allowlist".parse(), Ok(PersistedQueries::Allowlist));
        assert_eq!("ALL".parse(), Ok(MaskErrors::All));
        assert_eq!("Block".parse(), Ok(Introspection::Block));
        assert_eq!("WARN".parse(), Ok(LimitViolations::Warn));
    }
}
