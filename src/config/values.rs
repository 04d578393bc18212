//! The values an operator writes that are more than a number, a size, a duration or a switch: each
//! a small type with its own parser, whose error says what is accepted. Enumerated values are
//! case-insensitive.
//!
//! These types belong to the configuration; `lib.rs` turns them into each module's own settings,
//! so that no module depends on how its settings are spelt. (The rules' own vocabulary — limits,
//! modes, rule names — is `crate::rules`, shared with the policy.)

use std::num::NonZeroU32;
use std::time::Duration;

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

impl LogFormat {
    pub const CHOICES: &[(&str, LogFormat)] =
        &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)];
}

/// `REJECT_STATUS`: the HTTP status of a rule rejection (limits, validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectStatus {
    /// 400, what Apollo clients and most tooling expect.
    BadRequest,
    /// 422, the 2026 GraphQL-over-HTTP draft's status for validation failures.
    UnprocessableEntity,
}

impl RejectStatus {
    pub const CHOICES: &[(&str, RejectStatus)] = &[
        ("400", RejectStatus::BadRequest),
        ("422", RejectStatus::UnprocessableEntity),
    ];
}

/// `PERSISTED_QUERIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedQueries {
    Off,
    Apq,
    Audit,
    Allowlist,
}

impl PersistedQueries {
    pub const CHOICES: &[(&str, PersistedQueries)] = &[
        ("off", PersistedQueries::Off),
        ("apq", PersistedQueries::Apq),
        ("audit", PersistedQueries::Audit),
        ("allowlist", PersistedQueries::Allowlist),
    ];
}

/// `PERSISTED_LIMIT_VIOLATIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitViolations {
    Error,
    Warn,
}

impl LimitViolations {
    pub const CHOICES: &[(&str, LimitViolations)] = &[
        ("error", LimitViolations::Error),
        ("warn", LimitViolations::Warn),
    ];
}

/// `SANITISE_OVERFLOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanitiseOverflow {
    Mask,
    Refuse,
}

impl SanitiseOverflow {
    pub const CHOICES: &[(&str, SanitiseOverflow)] = &[
        ("mask", SanitiseOverflow::Mask),
        ("refuse", SanitiseOverflow::Refuse),
    ];
}

/// `MASK_ERRORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskErrors {
    Off,
    Details,
    All,
}

impl MaskErrors {
    pub const CHOICES: &[(&str, MaskErrors)] = &[
        ("off", MaskErrors::Off),
        ("details", MaskErrors::Details),
        ("all", MaskErrors::All),
    ];
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
    fn enumerated_values_are_case_insensitive_and_errors_list_the_choices() {
        use super::super::parse::choice;
        assert_eq!(choice("JSON", LogFormat::CHOICES), Ok(LogFormat::Json));
        assert_eq!(
            choice("Allowlist", PersistedQueries::CHOICES),
            Ok(PersistedQueries::Allowlist)
        );
        assert_eq!(choice("ALL", MaskErrors::CHOICES), Ok(MaskErrors::All));
        assert_eq!(
            choice("WARN", LimitViolations::CHOICES),
            Ok(LimitViolations::Warn)
        );
        assert_eq!(
            choice("detail", MaskErrors::CHOICES),
            Err("off, details or all".to_owned())
        );
    }
}
