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
//!
//! # Several replicas
//! With `STATE=redis` every check is made on Redis ([`crate::state`]), so N replicas enforce one
//! budget and one cool-down per client (a tier's rates included). When Redis does not answer
//! within `REDIS_TIMEOUT`, `REDIS_FAILURE_MODE` decides ([`FailureMode::fallback`]): this
//! replica's own budgets (`local`, the default), admit (`open`), or 503 `STATE_UNAVAILABLE`
//! (`closed`). Every failure is counted and logged (at most one warning per [`WARN_EVERY`], so an
//! outage does not flood the log). Signature checks (`AUTH_JWT_VERIFY_RATE`) stay per replica:
//! they guard each replica's own CPU.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::identity::{AuthMethod, Identity, TierName};
use crate::metrics::{Metrics, RedisErrorLabels, RedisFallbackLabels, RuleLabels};
use crate::policy::{self, Violation};
use crate::ratelimit::{self, BucketKey, ClientKey, Decision, Limiter, Quota};
use crate::rules::{Modes, Rate, Rule};
use crate::state::{
    BudgetRules, FailureMode, Fallback, Operation, ProbeOutcome, ProbeRule, RedisState,
    RequestCheck, StateError,
};

/// The most one replica warns about Redis failures: one line per this period, however many
/// requests fail (each is counted in the metrics).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// After a failed call, how long this replica uses `REDIS_FAILURE_MODE` without asking Redis;
/// the first call after it tries Redis again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

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
    pub request_rate: Option<Rate>,
    /// Cost points per client (`COST_BUDGET`).
    pub cost_budget: Option<Rate>,
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
    pub request_rate: Option<Rate>,
    pub cost_budget: Option<Rate>,
}

impl Settings {
    /// The global budgets and the probe defence, as the shared state on Redis enforces them (a
    /// tier's rates are passed with each check).
    pub fn shared_rules(&self) -> BudgetRules {
        BudgetRules {
            requests: self.request_rate,
            cost: self.cost_budget,
            probes: self.probe_rate().map(|limit| ProbeRule {
                limit,
                cooldown: self.probe_cooldown,
            }),
        }
    }

    /// `PROBE_LIMIT` as a rate: refusals per client per minute, in process and on Redis alike.
    fn probe_rate(&self) -> Option<Rate> {
        self.probe_limit.map(|amount| Rate {
            amount,
            period: Duration::from_secs(60),
            burst: None,
        })
    }
}

/// Per-client budgets and probe cool-downs.
#[derive(Debug)]
pub struct Budgets {
    limiter: Limiter,
    /// Per tier, in `TIERS` order (a handful: a scan is cheaper than a hash).
    tiers: Vec<Tier>,
    settle_with_actual_cost: bool,
    modes: Modes,
    /// Only with a probe limit.
    probing: Option<Probing>,
    /// Signature checks per client address.
    verifications: Limiter,
    /// `STATE=redis`.
    shared: Option<Shared>,
    metrics: Arc<Metrics>,
}

/// One tier: its rates (for Redis) and its in-process limiter.
#[derive(Debug)]
struct Tier {
    budgets: TierBudgets,
    limiter: Limiter,
}

/// Budgets kept on Redis for every replica, and what to do when Redis does not answer.
#[derive(Debug)]
pub struct Shared {
    pub redis: Arc<RedisState>,
    pub failure_mode: FailureMode,
    metrics: Arc<Metrics>,
    /// When this replica last warned about a Redis failure (ms since `started`).
    last_warning_ms: AtomicU64,
    /// Until when calls go straight to the fallback after a failure (ms since `started`).
    failing_until_ms: AtomicU64,
    started: Instant,
}

impl Shared {
    pub fn new(redis: Arc<RedisState>, failure_mode: FailureMode, metrics: Arc<Metrics>) -> Shared {
        Shared {
            redis,
            failure_mode,
            metrics,
            last_warning_ms: AtomicU64::new(u64::MAX),
            failing_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Runs one call on Redis, timed and counted; a failure becomes what `REDIS_FAILURE_MODE`
    /// says to do instead. For [`RETRY_AFTER_FAILURE`] after a failure, calls are not made at
    /// all: a Redis that is slow, not down, would otherwise add `REDIS_TIMEOUT` to every request
    /// (twice with a cost budget) for as long as whoever slows it down likes.
    ///
    /// The call is boxed: a Redis client's futures weigh kilobytes, and held inline they would
    /// make every request's future — memory path included — that much larger to move and box.
    pub fn call<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: impl Future<Output = Result<T, StateError>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, Fallback>> + Send + 'a>> {
        Box::pin(self.attempt(operation, call))
    }

    async fn attempt<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, StateError>>,
    ) -> Result<T, Fallback> {
        let fallback = self.failure_mode.fallback(operation);
        if self.now_ms() < self.failing_until_ms.load(Ordering::Relaxed) {
            self.count_fallback(operation, fallback);
            return Err(fallback);
        }
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .redis_call_duration
            .observe(started.elapsed().as_secs_f64());
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        self.failing_until_ms.store(
            self.now_ms()
                .saturating_add(RETRY_AFTER_FAILURE.as_millis() as u64),
            Ordering::Relaxed,
        );
        self.metrics
            .redis_errors
            .get_or_create(&RedisErrorLabels {
                operation: operation.as_str(),
                error: error.as_str(),
            })
            .inc();
        self.count_fallback(operation, fallback);
        if self.should_warn() {
            tracing::warn!(
                target: "graphql_firewall::state",
                %error,
                operation = operation.as_str(),
                fallback = ?fallback,
                "shared state on Redis unavailable: REDIS_FAILURE_MODE applies (further failures are counted in graphql_firewall_redis_errors_total)"
            );
        }
        Err(fallback)
    }

    fn count_fallback(&self, operation: Operation, fallback: Fallback) {
        self.metrics
            .redis_fallbacks
            .get_or_create(&RedisFallbackLabels {
                operation: operation.as_str(),
                fallback: match fallback {
                    Fallback::UseLocal => "local",
                    Fallback::Proceed => "proceed",
                    Fallback::Refuse => "refuse",
                },
            })
            .inc();
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this failure is the first in [`WARN_EVERY`].
    fn should_warn(&self) -> bool {
        let now = self.now_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        due && self
            .last_warning_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
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
    /// The shared budgets on Redis could not be read, and `REDIS_FAILURE_MODE=closed`.
    #[error("the rate limiter is unavailable: try again shortly")]
    StateUnavailable,
}

impl Refusal {
    /// How long the client should wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Refusal::OverBudget { retry_after, .. }
            | Refusal::CoolingDown { retry_after }
            | Refusal::TooManyVerifications { retry_after } => retry_after,
            Refusal::StateUnavailable => Duration::from_secs(1),
        }
    }

    /// The `rule` label of `graphql_firewall_rate_limited_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::OverBudget { rule, .. } => rule.as_str(),
            Refusal::CoolingDown { .. } => "probe_cooldown",
            Refusal::TooManyVerifications { .. } => "token_verifications",
            Refusal::StateUnavailable => "state_unavailable",
        }
    }

    /// The budget's state, when a budget refused.
    pub fn quota(&self) -> Option<Quota> {
        match *self {
            Refusal::OverBudget { quota, .. } => Some(quota),
            Refusal::CoolingDown { .. }
            | Refusal::TooManyVerifications { .. }
            | Refusal::StateUnavailable => None,
        }
    }
}

impl Budgets {
    /// Budgets from `settings`; `modes` decides whether each budget is enforced.
    pub fn new(settings: &Settings, modes: Modes, metrics: Arc<Metrics>) -> Budgets {
        let probing = settings.probe_rate().map(|rate| Probing {
            limiter: Limiter::new(None, Some(ratelimit::quota(&rate)), settings.max_clients),
            cooldowns: Cache::builder()
                .max_capacity(settings.max_clients as u64)
                .time_to_live(settings.probe_cooldown)
                .build(),
            cooldown: settings.probe_cooldown,
        });
        let limiter = |requests: &Option<Rate>, cost: &Option<Rate>| {
            Limiter::new(
                requests.as_ref().map(ratelimit::quota),
                cost.as_ref().map(ratelimit::quota),
                settings.max_clients,
            )
        };
        Budgets {
            limiter: limiter(&settings.request_rate, &settings.cost_budget),
            tiers: settings
                .tiers
                .iter()
                .map(|tier| Tier {
                    budgets: tier.clone(),
                    limiter: limiter(&tier.request_rate, &tier.cost_budget),
                })
                .collect(),
            settle_with_actual_cost: settings.settle_with_actual_cost,
            modes,
            probing,
            verifications: Limiter::new(settings.verification_rate, None, settings.max_clients),
            shared: None,
            metrics,
        }
    }

    /// The same budgets, checked on Redis first (`STATE=redis`); this replica's own state is what
    /// `REDIS_FAILURE_MODE=local` falls back to.
    pub fn shared(mut self, shared: Shared) -> Budgets {
        self.shared = Some(shared);
        self
    }

    /// The shared state, when budgets are kept on Redis.
    pub fn shared_state(&self) -> Option<&Shared> {
        self.shared.as_ref()
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
    pub async fn admit_request(&self, client: &Client) -> Result<Admit, Refusal> {
        if let Some(shared) = &self.shared {
            let checked = shared
                .redis
                .check_request_at(&client.key, self.rates_of(client).0);
            match shared.call(Operation::Budget, checked).await {
                Ok(RequestCheck::CoolingDown { retry_after }) => {
                    return Err(self.refuse(Refusal::CoolingDown { retry_after }));
                }
                Ok(RequestCheck::Budget(decision)) => {
                    return self.decide(Rule::RateLimit, decision);
                }
                Err(Fallback::Proceed) => return Ok(Admit::default()),
                Err(Fallback::Refuse) => return Err(self.refuse(Refusal::StateUnavailable)),
                Err(Fallback::UseLocal) => {}
            }
        }
        if let Some(until) = self
            .probing
            .as_ref()
            .and_then(|probing| probing.cooldowns.get(&client.key))
        {
            return Err(self.refuse(Refusal::CoolingDown {
                retry_after: until.saturating_duration_since(Instant::now()),
            }));
        }
        self.decide(
            Rule::RateLimit,
            self.limiter_of(client).check_request(&client.bucket),
        )
    }

    /// Consumes the cost of the request's operations from the client's budget.
    pub async fn admit_cost(&self, client: &Client, points: u64) -> Result<Admit, Refusal> {
        if let Some(shared) = &self.shared {
            let checked = shared
                .redis
                .check_cost_at(&client.key, self.rates_of(client).1, points);
            match shared.call(Operation::Budget, checked).await {
                Ok(decision) => return self.decide(Rule::CostBudget, decision),
                Err(Fallback::Proceed) => return Ok(Admit::default()),
                Err(Fallback::Refuse) => return Err(self.refuse(Refusal::StateUnavailable)),
                Err(Fallback::UseLocal) => {}
            }
        }
        self.decide(
            Rule::CostBudget,
            self.limiter_of(client).check_cost(&client.bucket, points),
        )
    }

    /// `COST_BUDGET_MODE=actual`: [`Budgets::settle_cost`] has something to do.
    pub fn settles_with_actual_cost(&self) -> bool {
        self.settle_with_actual_cost
    }

    /// Settles the cost spent up front with what the answer really cost, when the budget is metered
    /// by actual cost (as GitHub meters GraphQL); otherwise the estimate stands.
    pub async fn settle_cost(&self, client: &Client, estimated: u64, actual: u64) {
        if !self.settle_with_actual_cost {
            return;
        }
        if let Some(shared) = &self.shared {
            let settled = shared.redis.settle_cost_at(
                &client.key,
                self.rates_of(client).1,
                estimated,
                actual,
            );
            match shared.call(Operation::Settle, settled).await {
                Ok(()) | Err(Fallback::Proceed | Fallback::Refuse) => return,
                Err(Fallback::UseLocal) => {}
            }
        }
        self.limiter_of(client)
            .settle_cost(&client.bucket, estimated, actual);
    }

    /// Counts one token signature check for the client address `ip` (the expensive step of
    /// authentication: a flood of distinct forged tokens must not buy one each). Always
    /// enforced: it guards the firewall's own CPU.
    pub fn admit_verification(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.verifications.check_request(&BucketKey::anonymous(ip)) {
            Decision::Unlimited | Decision::Allowed(_) => Ok(()),
            Decision::Limited { retry_after, .. } => {
                Err(self.refuse(Refusal::TooManyVerifications { retry_after }))
            }
        }
    }

    /// Records a schema-validation refusal; past the probe limit the client cools down (on every
    /// replica, with `STATE=redis`).
    pub async fn record_probe(&self, client: &Client) {
        let Some(probing) = &self.probing else {
            return;
        };
        if let Some(shared) = &self.shared {
            let recorded = shared.redis.record_probe(&client.key);
            match shared.call(Operation::Probe, recorded).await {
                Ok(ProbeOutcome::CoolDownStarted { .. }) => {
                    warn_probing(client, probing.cooldown);
                    return;
                }
                Ok(ProbeOutcome::Counted | ProbeOutcome::NotConfigured)
                | Err(Fallback::Proceed | Fallback::Refuse) => return,
                Err(Fallback::UseLocal) => {}
            }
        }
        if let Decision::Limited { .. } = probing.limiter.check_cost(&client.bucket, 1) {
            warn_probing(client, probing.cooldown);
            probing
                .cooldowns
                .insert(client.key, Instant::now() + probing.cooldown);
        }
    }

    /// Drops idle clients' state; called periodically.
    pub fn shrink(&self) {
        self.limiter.shrink();
        self.verifications.shrink();
        for tier in &self.tiers {
            tier.limiter.shrink();
        }
        if let Some(probing) = &self.probing {
            probing.limiter.shrink();
        }
    }

    /// The client's tier, if it has one that `TIERS` defines.
    fn tier_of(&self, client: &Client) -> Option<&Tier> {
        let name = client.identity.tier.as_ref()?;
        self.tiers.iter().find(|tier| tier.budgets.name == *name)
    }

    /// The budgets the client spends: its tier's, else the global ones.
    fn limiter_of(&self, client: &Client) -> &Limiter {
        self.tier_of(client)
            .map_or(&self.limiter, |tier| &tier.limiter)
    }

    /// The request rate and cost budget the client spends on Redis: its tier's, else the global
    /// ones (`None`: that budget is off for it).
    fn rates_of(&self, client: &Client) -> (Option<Rate>, Option<Rate>) {
        match self.tier_of(client) {
            Some(tier) => (tier.budgets.request_rate, tier.budgets.cost_budget),
            None => self.shared.as_ref().map_or((None, None), |shared| {
                let rules = shared.redis.rules();
                (rules.requests, rules.cost)
            }),
        }
    }

    /// Counts a refusal and hands it back.
    fn refuse(&self, refusal: Refusal) -> Refusal {
        self.metrics
            .rate_limited
            .get_or_create(&RuleLabels {
                rule: refusal.label(),
            })
            .inc();
        refusal
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
        Err(self.refuse(Refusal::OverBudget {
            rule,
            retry_after,
            quota,
        }))
    }
}

fn warn_probing(client: &Client, cooldown: Duration) {
    tracing::warn!(
        target: "graphql_firewall::policy",
        client = %client.ip,
        client_key = %client.key.short_hex(),
        cooldown_s = cooldown.as_secs(),
        "schema probing detected: client cooling down"
    );
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
            request_rate: crate::rules::parse_rate("2/h").unwrap(),
            cost_budget: crate::rules::parse_rate("100/h").unwrap(),
            max_clients: 1_000,
            probe_limit: NonZeroU32::new(2),
            probe_cooldown: Duration::from_secs(60),
            settle_with_actual_cost: false,
            tiers: vec![TierBudgets {
                name: "pro".parse().unwrap(),
                request_rate: crate::rules::parse_rate("5/h").unwrap(),
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

    #[tokio::test]
    async fn a_client_over_its_request_rate_is_refused_with_the_time_to_wait() {
        let budgets = budgets(Mode::Enforce);
        let client = budgets.identify(IP, Identity::anonymous());
        for _ in 0..2 {
            let admit = budgets.admit_request(&client).await.unwrap();
            assert_eq!(admit.monitored, None);
        }
        let refusal = budgets.admit_request(&client).await.unwrap_err();
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
            budgets.admit_request(&other).await.is_ok(),
            "budgets are per client"
        );
    }

    #[tokio::test]
    async fn a_monitored_budget_admits_and_reports_the_violation() {
        let budgets = budgets(Mode::Monitor);
        let client = budgets.identify(IP, Identity::anonymous());
        budgets.admit_cost(&client, 80).await.unwrap();
        let admit = budgets.admit_cost(&client, 30).await.unwrap();
        assert_eq!(
            admit.monitored,
            Some(Violation {
                rule: Rule::CostBudget,
                limit: 100,
                actual: 110,
            })
        );
    }

    #[tokio::test]
    async fn a_probing_client_cools_down_after_the_probe_limit() {
        let budgets = budgets(Mode::Enforce);
        let prober = budgets.identify(IP, Identity::anonymous());
        budgets.record_probe(&prober).await;
        budgets.record_probe(&prober).await;
        assert!(budgets.admit_request(&prober).await.is_ok());
        budgets.record_probe(&prober).await;
        let refusal = budgets.admit_request(&prober).await.unwrap_err();
        assert!(
            matches!(refusal, Refusal::CoolingDown { .. }),
            "{refusal:?}"
        );
        assert!(refusal.retry_after() <= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn without_budgets_everything_is_admitted_without_a_quota() {
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
            assert_eq!(budgets.admit_request(&client).await, Ok(Admit::default()));
            assert_eq!(
                budgets.admit_cost(&client, 1_000_000).await,
                Ok(Admit::default())
            );
        }
    }

    #[tokio::test]
    async fn a_tier_has_its_own_budgets_and_others_keep_the_global_ones() {
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
            assert!(budgets.admit_request(&pro).await.is_ok());
        }
        assert!(budgets.admit_request(&pro).await.is_err(), "pro: 5 an hour");
        // No cost budget for the tier: unlimited, where the global one holds 100.
        assert_eq!(
            budgets.admit_cost(&pro, 1_000_000).await,
            Ok(Admit::default())
        );
        let free = caller("free-rider", None);
        for _ in 0..2 {
            assert!(budgets.admit_request(&free).await.is_ok());
        }
        assert!(
            budgets.admit_request(&free).await.is_err(),
            "global: 2 an hour"
        );
    }

    #[tokio::test]
    async fn signature_checks_are_paced_per_address() {
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
