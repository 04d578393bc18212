//! Caller tiers (`TIERS`): named request-rate and cost budgets that a verified caller's tier
//! (an API key's tier, or a JWT claim) selects instead of the global `RATE_LIMIT` / `COST_BUDGET`.
//!
//! Written `<name>:<option>=<value>,…;<name>:…`, options `rate` and `cost`, each a rate
//! (`10/s`, `1000/min`, `100/s:burst=200`) or `off` (no limit for that tier):
//! `free:rate=10/s,cost=1000/min;pro:rate=100/s,cost=50000/min;internal:rate=off`.
//! An option left out means the global budget applies to that tier.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::rules::{Rate, parse_rate};

/// Longest accepted tier name.
const MAX_NAME_LEN: usize = 64;

/// A tier's name: 1–64 ASCII letters, digits, `-` or `_` (it appears in metric labels, so it is
/// drawn from the closed set the operator configured, never from request bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TierName(Arc<str>);

impl TierName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TierName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TierName {
    type Err = TiersError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = !text.is_empty()
            && text.len() <= MAX_NAME_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(TierName(Arc::from(text)))
        } else {
            Err(TiersError::Name(text.to_owned()))
        }
    }
}

/// One budget of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierBudget {
    /// Not given: the global budget (`RATE_LIMIT` or `COST_BUDGET`) applies.
    Inherit,
    /// `off`: this tier has no such limit.
    Unlimited,
    /// This tier's own rate.
    Limited(Rate),
}

/// A named tier and its budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: TierName,
    /// Requests per period.
    pub rate: TierBudget,
    /// Cost points per period.
    pub cost: TierBudget,
}

/// Every configured tier, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tiers(Vec<Tier>);

/// Why `TIERS` could not be parsed; each message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TiersError {
    #[error(
        "tier {0:?}: expected <name>:<option>=<value>,… such as free:rate=10/s,cost=1000/min (tiers separated by ';')"
    )]
    Syntax(String),
    #[error("tier name {0:?}: expected 1 to 64 ASCII letters, digits, '-' or '_'")]
    Name(String),
    #[error("tier {0:?} is defined twice")]
    Duplicate(String),
    #[error("tier {tier:?}: unknown option {option:?}; the options are rate and cost")]
    UnknownOption { tier: String, option: String },
    #[error("tier {tier:?}: option {option} is given twice")]
    RepeatedOption { tier: String, option: &'static str },
    #[error("tier {tier:?}: {option}: expected {accepted}")]
    Rate {
        tier: String,
        option: &'static str,
        accepted: String,
    },
}

impl Tiers {
    /// The tier called `name`, if configured.
    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.0.iter().find(|tier| tier.name.as_str() == name)
    }

    /// The configured name equal to `name`, to carry in an identity (`None` when unknown).
    pub fn name(&self, name: &str) -> Option<TierName> {
        self.get(name).map(|tier| tier.name.clone())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tier> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Tiers {
    type Err = TiersError;

    /// An empty text configures no tier.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut tiers: Vec<Tier> = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let tier = parse_tier(entry)?;
            if tiers.iter().any(|known| known.name == tier.name) {
                return Err(TiersError::Duplicate(tier.name.to_string()));
            }
            tiers.push(tier);
        }
        Ok(Tiers(tiers))
    }
}

fn parse_tier(entry: &str) -> Result<Tier, TiersError> {
    let syntax = || TiersError::Syntax(entry.to_owned());
    let (name, options) = entry.split_once(':').ok_or_else(syntax)?;
    let name: TierName = name.trim().parse()?;
    let mut rate = None;
    let mut cost = None;
    for option in options.split(',').map(str::trim) {
        let (key, value) = option.split_once('=').ok_or_else(syntax)?;
        let (slot, option) = match key.trim() {
            "rate" => (&mut rate, "rate"),
            "cost" => (&mut cost, "cost"),
            other => {
                return Err(TiersError::UnknownOption {
                    tier: name.to_string(),
                    option: other.to_owned(),
                });
            }
        };
        if slot.is_some() {
            return Err(TiersError::RepeatedOption {
                tier: name.to_string(),
                option,
            });
        }
        *slot = Some(
            parse_budget(value.trim()).map_err(|accepted| TiersError::Rate {
                tier: name.to_string(),
                option,
                accepted,
            })?,
        );
    }
    Ok(Tier {
        name,
        rate: rate.unwrap_or(TierBudget::Inherit),
        cost: cost.unwrap_or(TierBudget::Inherit),
    })
}

fn parse_budget(value: &str) -> Result<TierBudget, String> {
    Ok(match parse_rate(value)? {
        None => TierBudget::Unlimited,
        Some(rate) => TierBudget::Limited(rate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> TierBudget {
        TierBudget::Limited(parse_rate(text).unwrap().unwrap())
    }

    #[test]
    fn the_documented_example_parses() {
        let tiers: Tiers = "free:rate=10/s,cost=1000/min;pro:rate=100/s,cost=50000/min"
            .parse()
            .unwrap();
        let free = tiers.get("free").unwrap();
        assert_eq!(free.rate, rate("10/s"));
        assert_eq!(free.cost, rate("1000/min"));
        let pro = tiers.get("pro").unwrap();
        assert_eq!(pro.rate, rate("100/s"));
        assert_eq!(pro.cost, rate("50000/min"));
        assert!(tiers.get("gold").is_none());
    }

    #[test]
    fn good_inputs_parse_to_their_budgets() {
        let table: &[(&str, &str, TierBudget, TierBudget)] = &[
            ("free:rate=10/s", "free", rate("10/s"), TierBudget::Inherit),
            (
                "free:cost=5/min",
                "free",
                TierBudget::Inherit,
                rate("5/min"),
            ),
            (
                " pro : rate = 100/s:burst=200 , cost = off ",
                "pro",
                rate("100/s:burst=200"),
                TierBudget::Unlimited,
            ),
            (
                "internal_2:rate=OFF;",
                "internal_2",
                TierBudget::Unlimited,
                TierBudget::Inherit,
            ),
        ];
        for (text, name, want_rate, want_cost) in table {
            let tiers: Tiers = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            let tier = tiers
                .get(name)
                .unwrap_or_else(|| panic!("{text}: no {name}"));
            assert_eq!((tier.rate, tier.cost), (*want_rate, *want_cost), "{text}");
        }
    }

    #[test]
    fn an_empty_text_configures_no_tier() {
        assert!("".parse::<Tiers>().unwrap().is_empty());
        assert!(" ; ".parse::<Tiers>().unwrap().is_empty());
    }

    #[test]
    fn bad_inputs_are_refused_with_what_is_accepted() {
        let table: &[(&str, &str)] = &[
            ("free", "expected <name>:<option>=<value>"),
            ("free:", "expected <name>:<option>=<value>"),
            ("free:rate", "expected <name>:<option>=<value>"),
            ("free:rate=10/s,", "expected <name>:<option>=<value>"),
            (":rate=10/s", "expected 1 to 64 ASCII letters"),
            ("fr ee:rate=10/s", "expected 1 to 64 ASCII letters"),
            ("frée:rate=10/s", "expected 1 to 64 ASCII letters"),
            ("free:burst=10", "the options are rate and cost"),
            ("free:rate=1/s,rate=2/s", "option rate is given twice"),
            ("free:rate=10/day", "expected <amount>/<unit>"),
            ("free:cost=0/min", "expected <amount>/<unit>"),
            ("free:rate=10/s;free:cost=1/s", "defined twice"),
        ];
        for (text, needle) in table {
            let error = text.parse::<Tiers>().unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
        let long = format!("{}:rate=1/s", "a".repeat(65));
        assert!(matches!(long.parse::<Tiers>(), Err(TiersError::Name(_))));
    }

    #[test]
    fn a_configured_name_is_returned_only_for_known_tiers() {
        let tiers: Tiers = "free:rate=1/s".parse().unwrap();
        assert_eq!(tiers.name("free").unwrap().as_str(), "free");
        assert_eq!(tiers.name("FREE"), None);
        assert_eq!(tiers.name("gold"), None);
    }
}
