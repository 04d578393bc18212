//! Admission: who the client is, whether it may send another request, whether it may spend an
//! operation's cost, and whether it is cooling down after probing the schema.
//!
//! # Threats
//! One client must not exhaust the backend by request count or by a few expensive operations, and
//! a schema prober (clairvoyance sends 64 guesses per request) must not be able to keep guessing:
//! after `PROBE_LIMIT` schema-validation refusals in a minute, the client is refused outright for
//! `PROBE_COOLDOWN`. A client is known by the subject the firewall verified (a token's, an API
//! key's, or a key a trusted gateway set), else by its IP address (which the edge reads from
//! forwarding headers only behind a trusted proxy) — never by a header the caller writes itself.
//!
//! A verified caller with a tier (`TIERS`: an API key's tier, or a token's tier claim) spends that
//! tier's budgets instead of the global ones; a tier's table of clients is its own.
//!
//! A budget in monitor mode refuses nothing: its violation goes the same way as a monitored
//! limit's ([`policy::Verdict`]), so it is logged, counted and shown in the audit verdict.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::identity::{AuthMethod, Identity, TierName};
use crate::metrics::{Metrics, RuleLabels};
use crate::policy::{self, Violation};
use crate::ratelimit::{BucketKey, ClientKey, Decision, Limiter, Quota};
use crate::rules::{Modes, Rule};

/// A client as the firewall knows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub key: ClientKey,
    /// Who it proved to be (anonymous: known by `ip`).
    pub identity: Identity,
    bucket: BucketKey,
}

/// Budgets and probing defence, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests per client (`RATE_LIMIT`).
    pub request_rate: Option<governor::Quota>,
    /// Cost points per client (`COST_BUDGET`).
    pub cost_budget: Option<governor::Quota>,
    /// Clients tracked per budget before new ones share overflow buckets.
    pub max_clients: usize,
    /// Schema-validation refusals per client per minute before a cool-down (`PROBE_LIMIT`).
    pub probe_limit: Option<NonZeroU32>,
    pub probe_cooldown: Duration,
    /// `COST_BUDGET_MODE=actual`: the estimate spent up front is settled with the measured cost.
    pub settle_with_actual_cost: bool,
    /// `TIERS`: each tier's budgets, already resolved (a budget a tier leaves out is the global one).
    pub tiers: Vec<TierBudgets>,
    /// `AUTH_JWT_VERIFY_RATE`: tokens per client address whose signature is checked (remembered
    /// verifications are free).
    pub verification_rate: Option<governor::Quota>,
}

/// One tier's budgets.
#[derive(Debug, Clone)]
pub struct TierBudgets {
    pub name: TierName,
    pub request_rate: Option<governor::Quota>,
    pub cost_budget: Option<governor::Quota>,
}

/// Per-client budgets and probe cool-downs.
#[derive(Debug)]
pub struct Budgets {
    limiter: Limiter,
    /// Per tier, in `TIERS` order (a handful: a scan is cheaper than a hash).
    tiers: Vec<(TierName, Limiter)>,
    settle_with_actual_cost: bool,
    modes: Modes,
    /// Only with a probe limit.
    probing: Option<Probing>,
    /// Signature checks per client address.
    verifications: Limiter,
    metrics: Arc<Metrics>,
}

/// Schema-probing defence: invalid operations per client, and who is cooling down until when.
#[derive(Debug)]
struct Probing {
    limiter: Limiter,
    cooldowns: Cache<ClientKey, Instant>,
    cooldown: Duration,
}

/// A client may go on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admit {
    /// What the budget has left (for `RateLimit-*` headers); `None` without a budget.
    pub quota: Option<Quota>,
    /// A budget rule broken in monitor mode.
    pub monitored: Option<Violation>,
}

/// A client may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Over its request rate or cost budget.
    #[error("{}", match rule { Rule::CostBudget => "cost budget exhausted", _ => "request rate limit exceeded" })]
    OverBudget {
        rule: Rule,
        retry_after: Duration,
        quota: Quota,
    },
    /// Cooling down after too many schema-validation refusals.
    #[error("too many invalid operations: try again later")]
    CoolingDown { retry_after: Duration },
    /// Over the address's rate of token signature checks (`AUTH_JWT_VERIFY_RATE`).
    #[error("too many new tokens: try again later")]
    TooManyVerifications { retry_after: Duration },
}

impl Refusal {
    /// How long the client should wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Refusal::OverBudget { retry_after, .. }
            | Refusal::CoolingDown { retry_after }
            | Refusal::TooManyVerifications { retry_after } => retry_after,
        }
    }

    /// The `rule` label of `graphql_firewall_rate_limited_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::OverBudget { rule, .. } => rule.as_str(),
            Refusal::CoolingDown { .. } => "probe_cooldown",
            Refusal::TooManyVerifications { .. } => "token_verifications",
        }
    }

    /// The budget's state, when a budget refused.
    pub fn quota(&self) -> Option<Quota> {
        match *self {
            Refusal::OverBudget { quota, .. } => Some(quota),
            Refusal::CoolingDown { .. } | Refusal::TooManyVerifications { .. } => None,
        }
    }
}

impl Budgets {
    /// Budgets from `settings`; `modes` decides whether each budget is enforced.
    pub fn new(settings: &Settings, modes: Modes, metrics: Arc<Metrics>) -> Budgets {
        let probing = settings.probe_limit.map(|amount| Probing {
            limiter: Limiter::new(
                None,
                Some(governor::Quota::per_minute(amount)),
                settings.max_clients,
            ),
            cooldowns: Cache::builder()
                .max_capacity(settings.max_clients as u64)
                .time_to_live(settings.probe_cooldown)
                .build(),
            cooldown: settings.probe_cooldown,
        });
        Budgets {
            limiter: Limiter::new(
                settings.request_rate,
                settings.cost_budget,
                settings.max_clients,
            ),
            tiers: settings
                .tiers
                .iter()
                .map(|tier| {
                    let limiter =
                        Limiter::new(tier.request_rate, tier.cost_budget, settings.max_clients);
                    (tier.name.clone(), limiter)
                })
                .collect(),
            settle_with_actual_cost: settings.settle_with_actual_cost,
            modes,
            probing,
            verifications: Limiter::new(settings.verification_rate, None, settings.max_clients),
            metrics,
        }
    }

    /// The client: the verified subject of `identity`, else the address `ip`.
    pub fn identify(&self, ip: IpAddr, identity: Identity) -> Client {
        let bucket = match (&identity.subject, identity.method) {
            (None, _) | (_, AuthMethod::Anonymous) => BucketKey::anonymous(ip),
            (Some(subject), AuthMethod::ApiKey | AuthMethod::Gateway) => {
                BucketKey::verified(ClientKey::from_api_key(subject.as_str()), ip)
            }
            (Some(subject), AuthMethod::Jwt) => {
                BucketKey::verified(ClientKey::from_subject("jwt", subject.as_str()), ip)
            }
        };
        Client {
            ip,
            key: *bucket.client(),
            identity,
            bucket,
        }
    }

    /// Counts one request; refuses a client over its rate or cooling down after probing.
    pub fn admit_request(&self, client: &Client) -> Result<Admit, Refusal> {
        if let Some(until) = self
            .probing
            .as_ref()
            .and_then(|probing| probing.cooldowns.get(&client.key))
        {
            let refusal = Refusal::CoolingDown {
                retry_after: until.saturating_duration_since(Instant::now()),
            };
            self.count(&refusal);
            return Err(refusal);
        }
        self.decide(
            Rule::RateLimit,
            self.limiter_of(client).check_request(&client.bucket),
        )
    }

    /// Consumes the cost of the request's operations from the client's budget.
    pub fn admit_cost(&self, client: &Client, points: u64) -> Result<Admit, Refusal> {
        self.decide(
            Rule::CostBudget,
            self.limiter_of(client).check_cost(&client.bucket, points),
        )
    }

    /// Settles the cost spent up front with what the answer really cost, when the budget is metered
    /// by actual cost (as GitHub meters GraphQL); otherwise the estimate stands.
    pub fn settle_cost(&self, client: &Client, estimated: u64, actual: u64) {
        if self.settle_with_actual_cost {
            self.limiter_of(client)
                .settle_cost(&client.bucket, estimated, actual);
        }
    }

    /// Counts one token signature check for the client address `ip` (the expensive step of
    /// authentication: a flood of distinct forged tokens must not buy one each). Always
    /// enforced: it guards the firewall's own CPU.
    pub fn admit_verification(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.verifications.check_request(&BucketKey::anonymous(ip)) {
            Decision::Unlimited | Decision::Allowed(_) => Ok(()),
            Decision::Limited { retry_after, .. } => {
                let refusal = Refusal::TooManyVerifications { retry_after };
                self.count(&refusal);
                Err(refusal)
            }
        }
    }

    /// Records a schema-validation refusal; past the probe limit the client cools down.
    pub fn record_probe(&self, client: &Client) {
        let Some(probing) = &self.probing else {
            return;
        };
        if let Decision::Limited { .. } = probing.limiter.check_cost(&client.bucket, 1) {
            tracing::warn!(
                target: "graphql_firewall::policy",
                client = %client.ip,
                client_key = %client.key.short_hex(),
                cooldown_s = probing.cooldown.as_secs(),
                "schema probing detected: client cooling down"
            );
            probing
                .cooldowns
                .insert(client.key, Instant::now() + probing.cooldown);
        }
    }

    /// Drops idle clients' state; called periodically.
    pub fn shrink(&self) {
        self.limiter.shrink();
        self.verifications.shrink();
        for (_, limiter) in &self.tiers {
            limiter.shrink();
        }
        if let Some(probing) = &self.probing {
            probing.limiter.shrink();
        }
    }

    /// The budgets the client spends: its tier's, else the global ones.
    fn limiter_of(&self, client: &Client) -> &Limiter {
        client
            .identity
            .tier
            .as_ref()
            .and_then(|tier| self.tiers.iter().find(|(name, _)| name == tier))
            .map_or(&self.limiter, |(_, limiter)| limiter)
    }

    fn count(&self, refusal: &Refusal) {
        self.metrics
            .rate_limited
            .get_or_create(&RuleLabels {
                rule: refusal.label(),
            })
            .inc();
    }

    fn decide(&self, rule: Rule, decision: Decision) -> Result<Admit, Refusal> {
        let (retry_after, quota, over_by) = match decision {
            Decision::Unlimited => return Ok(Admit::default()),
            Decision::Allowed(quota) => {
                return Ok(Admit {
                    quota: Some(quota),
                    monitored: None,
                });
            }
            Decision::Limited {
                retry_after,
                quota,
                over_by,
            } => (retry_after, quota, over_by),
        };
        // What the client would have used had it been admitted: the bucket, and then some.
        let violation = Violation {
            rule,
            limit: quota.limit.into(),
            actual: u64::from(quota.limit).saturating_add(over_by),
        };
        let verdict = policy::Verdict::split([violation], &self.modes);
        if verdict.allows() {
            return Ok(Admit {
                quota: Some(quota),
                monitored: verdict.monitored.first().copied(),
            });
        }
        let refusal = Refusal::OverBudget {
            rule,
            retry_after,
            quota,
        };
        self.count(&refusal);
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::identity::{Scopes, Subject};
    use crate::rules::Mode;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    fn settings() -> Settings {
        Settings {
            request_rate: Some(governor::Quota::per_hour(NonZeroU32::new(2).unwrap())),
            cost_budget: Some(governor::Quota::per_hour(NonZeroU32::new(100).unwrap())),
            max_clients: 1_000,
            probe_limit: NonZeroU32::new(2),
            probe_cooldown: Duration::from_secs(60),
            settle_with_actual_cost: false,
            tiers: vec![TierBudgets {
                name: "pro".parse().unwrap(),
                request_rate: Some(governor::Quota::per_hour(NonZeroU32::new(5).unwrap())),
                cost_budget: None,
            }],
            verification_rate: Some(governor::Quota::per_hour(NonZeroU32::new(2).unwrap())),
        }
    }

    fn modes(mode: Mode) -> Modes {
        Modes {
            default: mode,
            overrides: Vec::new(),
        }
    }

    fn budgets(mode: Mode) -> Budgets {
        Budgets::new(&settings(), modes(mode), Arc::new(Metrics::new()))
    }

    #[test]
    fn a_client_over_its_request_rate_is_refused_with_the_time_to_wait() {
        let budgets = budgets(Mode::Enforce);
        let client = budgets.identify(IP, Identity::anonymous());
        for _ in 0..2 {
            let admit = budgets.admit_request(&client).unwrap();
            assert_eq!(admit.monitored, None);
        }
        let refusal = budgets.admit_request(&client).unwrap_err();
        assert!(matches!(
            refusal,
            Refusal::OverBudget {
                rule: Rule::RateLimit,
                ..
            }
        ));
        assert!(refusal.retry_after() > Duration::ZERO);
        assert_eq!(refusal.quota().map(|q| q.remaining), Some(0));
        let other = budgets.identify(
            IP,
            Identity::verified(
                AuthMethod::ApiKey,
                Subject::new("another client"),
                None,
                Scopes::default(),
            ),
        );
        assert!(
            budgets.admit_request(&other).is_ok(),
            "budgets are per client"
        );
    }

    #[test]
    fn a_monitored_budget_admits_and_reports_the_violation() {
        let budgets = budgets(Mode::Monitor);
        let client = budgets.identify(IP, Identity::anonymous());
        budgets.admit_cost(&client, 80).unwrap();
        let admit = budgets.admit_cost(&client, 30).unwrap();
        assert_eq!(
            admit.monitored,
            Some(Violation {
                rule: Rule::CostBudget,
                limit: 100,
                actual: 110,
            })
        );
    }

    #[test]
    fn a_probing_client_cools_down_after_the_probe_limit() {
        let budgets = budgets(Mode::Enforce);
        let prober = budgets.identify(IP, Identity::anonymous());
        budgets.record_probe(&prober);
        budgets.record_probe(&prober);
        assert!(budgets.admit_request(&prober).is_ok());
        budgets.record_probe(&prober);
        let refusal = budgets.admit_request(&prober).unwrap_err();
        assert!(
            matches!(refusal, Refusal::CoolingDown { .. }),
            "{refusal:?}"
        );
        assert!(refusal.retry_after() <= Duration::from_secs(60));
    }

    #[test]
    fn without_budgets_everything_is_admitted_without_a_quota() {
        let budgets = Budgets::new(
            &Settings {
                request_rate: None,
                cost_budget: None,
                probe_limit: None,
                ..settings()
            },
            modes(Mode::Enforce),
            Arc::new(Metrics::new()),
        );
        let client = budgets.identify(IP, Identity::anonymous());
        for _ in 0..10 {
            assert_eq!(budgets.admit_request(&client), Ok(Admit::default()));
            assert_eq!(budgets.admit_cost(&client, 1_000_000), Ok(Admit::default()));
        }
    }

    #[test]
    fn a_tier_has_its_own_budgets_and_others_keep_the_global_ones() {
        let budgets = budgets(Mode::Enforce);
        let caller = |name: &str, tier: Option<&str>| {
            budgets.identify(
                IP,
                Identity::verified(
                    AuthMethod::ApiKey,
                    Subject::new(name),
                    tier.map(|t| t.parse().unwrap()),
                    Scopes::default(),
                ),
            )
        };
        let pro = caller("paying", Some("pro"));
        for _ in 0..5 {
            assert!(budgets.admit_request(&pro).is_ok());
        }
        assert!(budgets.admit_request(&pro).is_err(), "pro: 5 an hour");
        // No cost budget for the tier: unlimited, where the global one holds 100.
        assert_eq!(budgets.admit_cost(&pro, 1_000_000), Ok(Admit::default()));
        let free = caller("free-rider", None);
        for _ in 0..2 {
            assert!(budgets.admit_request(&free).is_ok());
        }
        assert!(budgets.admit_request(&free).is_err(), "global: 2 an hour");
    }

    #[test]
    fn signature_checks_are_paced_per_address() {
        let budgets = budgets(Mode::Monitor);
        for _ in 0..2 {
            assert_eq!(budgets.admit_verification(IP), Ok(()));
        }
        let refusal = budgets.admit_verification(IP).unwrap_err();
        assert!(
            matches!(refusal, Refusal::TooManyVerifications { .. }),
            "enforced even in monitor mode: {refusal:?}"
        );
        assert_eq!(refusal.label(), "token_verifications");
        let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(budgets.admit_verification(elsewhere), Ok(()));
    }
}
