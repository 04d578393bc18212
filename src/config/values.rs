//! The values an operator writes that are more than a number, a size, a duration or a switch: each
//! a small type with its own parser, whose error says what is accepted. Enumerated values are
//! case-insensitive.
//!
//! These types belong to the configuration; `lib.rs` turns them into each module's own settings,
//! so that no module depends on how its settings are spelt. (The rules' own vocabulary — limits,
//! modes, rule names, budget rates — is `crate::rules`, shared with the policy and identity.)

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
    /// Per `Accept`, as GraphQL-over-HTTP says: 400 for `application/graphql-response+json`, 200
    /// with the errors for a client that accepts only `application/json`.
    Auto,
}

impl RejectStatus {
    pub const CHOICES: &[(&str, RejectStatus)] = &[
        ("400", RejectStatus::BadRequest),
        ("422", RejectStatus::UnprocessableEntity),
        ("auto", RejectStatus::Auto),
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

/// `PERSISTED_SKIP_LIMITS`, `TRUSTED_CLIENT_SKIP_LIMITS`: which limits a reviewed document (or a
/// caller holding a client key) skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipLimits {
    /// None.
    Off,
    /// The limits the document's text alone decides; cost, which depends on the request's
    /// variables, is still checked.
    Text,
    /// Those and cost.
    All,
}

impl SkipLimits {
    pub const CHOICES: &[(&str, SkipLimits)] = &[
        ("off", SkipLimits::Off),
        ("on", SkipLimits::Text),
        ("all", SkipLimits::All),
    ];
}

/// `COST_BUDGET_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostBudgetMode {
    /// The estimate is spent up front.
    Estimated,
    /// The estimate is spent up front, then settled with the measured cost of the answer.
    Actual,
}

impl CostBudgetMode {
    pub const CHOICES: &[(&str, CostBudgetMode)] = &[
        ("estimated", CostBudgetMode::Estimated),
        ("actual", CostBudgetMode::Actual),
    ];
}

/// `LOG_SUBJECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSubject {
    /// A SHA-256 prefix of the subject.
    Hash,
    /// The subject as verified.
    Clear,
}

impl LogSubject {
    pub const CHOICES: &[(&str, LogSubject)] =
        &[("hash", LogSubject::Hash), ("clear", LogSubject::Clear)];
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

/// `STATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateStore {
    Memory,
    Redis,
}

impl StateStore {
    pub const CHOICES: &[(&str, StateStore)] =
        &[("memory", StateStore::Memory), ("redis", StateStore::Redis)];
}

/// `REDIS_FAILURE_MODE`: what admission does when Redis does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailureMode {
    Local,
    Open,
    Closed,
}

impl RedisFailureMode {
    pub const CHOICES: &[(&str, RedisFailureMode)] = &[
        ("local", RedisFailureMode::Local),
        ("open", RedisFailureMode::Open),
        ("closed", RedisFailureMode::Closed),
    ];
}
