//! Admission: who the client is, whether it may send another request, whether it may spend an
//! operation's cost, and whether it is cooling down after probing the schema.
//!
//! # Threats
//! One client must not exhaust the backend by request count or by a few expensive operations, and
//! a schema prober (clairvoyance sends 64 guesses per request) must not be able to keep guessing:
//! after `PROBE_LIMIT` schema-validation refusals in a minute, the client is refused outright for
//! `PROBE_COOLDOWN`. A client is known by its API key when it sends one, else by its IP address
//! (which the edge reads from forwarding headers only behind a trusted proxy).
//!
//! A budget in monitor mode refuses nothing: its violation goes the same way as a monitored
//! limit's ([`policy::Verdict`]), so it is logged, counted and shown in the audit verdict.
//!
//! # Several replicas
//! With `STATE=redis` every check is made on Redis ([`crate::state`]), so N replicas enforce one
//! budget and one cool-down per client. When Redis does not answer within `REDIS_TIMEOUT`,
//! `REDIS_FAILURE_MODE` decides ([`FailureMode::fallback`]): this replica's own budgets (`local`,
//! the default), admit (`open`), or 503 `STATE_UNAVAILABLE` (`closed`). Every failure is counted
//! and logged (at most one warning per [`WARN_EVERY`], so an outage does not flood the log).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::metrics::{Metrics, RedisErrorLabels, RedisFallbackLabels, RuleLabels};
use crate::policy::{self, Violation};
use crate::ratelimit::{self, ClientKey, Decision, Limiter, Quota};
use crate::rules::{Modes, Rate, Rule};
use crate::state::{
    BudgetRules, FailureMode, Fallback, Operation, ProbeOutcome, ProbeRule, RedisState,
    RequestCheck, StateError,
};

/// The most one replica warns about Redis failures: one line per this period, however many
/// requests fail (each is counted in the metrics).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// A client as the firewall knows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub key: ClientKey,
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
}

impl Settings {
    /// The same budgets, as the shared state on Redis enforces them.
    pub fn shared_rules(&self) -> BudgetRules {
        BudgetRules {
            requests: self.request_rate,
            cost: self.cost_budget,
            probes: self.probe_limit.map(|amount| ProbeRule {
                limit: Rate {
                    amount,
                    period: Duration::from_secs(60),
                    burst: None,
                },
                cooldown: self.probe_cooldown,
            }),
        }
    }
}

/// Per-client budgets and probe cool-downs.
#[derive(Debug)]
pub struct Budgets {
    limiter: Limiter,
    settle_with_actual_cost: bool,
    modes: Modes,
    /// Only with a probe limit.
    probing: Option<Probing>,
    /// `STATE=redis`.
    shared: Option<Shared>,
    metrics: Arc<Metrics>,
}

/// Budgets kept on Redis for every replica, and what to do when Redis does not answer.
#[derive(Debug)]
pub struct Shared {
    pub redis: Arc<RedisState>,
    pub failure_mode: FailureMode,
    metrics: Arc<Metrics>,
    /// When this replica last warned about a Redis failure (ms since `started`).
    last_warning_ms: AtomicU64,
    started: Instant,
}

impl Shared {
    pub fn new(redis: Arc<RedisState>, failure_mode: FailureMode, metrics: Arc<Metrics>) -> Shared {
        Shared {
            redis,
            failure_mode,
            metrics,
            last_warning_ms: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        }
    }

    /// Runs one call on Redis, timed and counted; a failure becomes what `REDIS_FAILURE_MODE`
    /// says to do instead.
    pub async fn call<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, StateError>>,
    ) -> Result<T, Fallback> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .redis_call_duration
            .observe(started.elapsed().as_secs_f64());
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let fallback = self.failure_mode.fallback(operation);
        self.metrics
            .redis_errors
            .get_or_create(&RedisErrorLabels {
                operation: operation.as_str(),
                error: error.as_str(),
            })
            .inc();
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

    /// Whether this failure is the first in [`WARN_EVERY`].
    fn should_warn(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
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
    /// The shared budgets on Redis could not be read, and `REDIS_FAILURE_MODE=closed`.
    #[error("the rate limiter is unavailable: try again shortly")]
    StateUnavailable,
}

impl Refusal {
    /// How long the client should wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Refusal::OverBudget { retry_after, .. } | Refusal::CoolingDown { retry_after } => {
                retry_after
            }
            Refusal::StateUnavailable => Duration::from_secs(1),
        }
    }

    /// The `rule` label of `graphql_firewall_rate_limited_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::OverBudget { rule, .. } => rule.as_str(),
            Refusal::CoolingDown { .. } => "probe_cooldown",
            Refusal::StateUnavailable => "state_unavailable",
        }
    }

    /// The budget's state, when a budget refused.
    pub fn quota(&self) -> Option<Quota> {
        match *self {
            Refusal::OverBudget { quota, .. } => Some(quota),
            Refusal::CoolingDown { .. } | Refusal::StateUnavailable => None,
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
                settings.request_rate.as_ref().map(ratelimit::quota),
                settings.cost_budget.as_ref().map(ratelimit::quota),
                settings.max_clients,
            ),
            settle_with_actual_cost: settings.settle_with_actual_cost,
            modes,
            probing,
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

    /// The client behind `ip`, or behind the API key it sent.
    pub fn identify(&self, ip: IpAddr, api_key: Option<&str>) -> Client {
        let key = match api_key {
            Some(api_key) => ClientKey::from_api_key(api_key),
            None => ClientKey::from_ip(ip),
        };
        Client { ip, key }
    }

    /// Counts one request; refuses a client over its rate or cooling down after probing.
    pub async fn admit_request(&self, client: &Client) -> Result<Admit, Refusal> {
        if let Some(shared) = &self.shared {
            match shared
                .call(Operation::Budget, shared.redis.check_request(&client.key))
                .await
            {
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
        self.decide(Rule::RateLimit, self.limiter.check_request(&client.key))
    }

    /// Consumes the cost of the request's operations from the client's budget.
    pub async fn admit_cost(&self, client: &Client, points: u64) -> Result<Admit, Refusal> {
        if let Some(shared) = &self.shared {
            match shared
                .call(
                    Operation::Budget,
                    shared.redis.check_cost(&client.key, points),
                )
                .await
            {
                Ok(decision) => return self.decide(Rule::CostBudget, decision),
                Err(Fallback::Proceed) => return Ok(Admit::default()),
                Err(Fallback::Refuse) => return Err(self.refuse(Refusal::StateUnavailable)),
                Err(Fallback::UseLocal) => {}
            }
        }
        self.decide(
            Rule::CostBudget,
            self.limiter.check_cost(&client.key, points),
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
            let settled = shared.redis.settle_cost(&client.key, estimated, actual);
            match shared.call(Operation::Settle, settled).await {
                Ok(()) | Err(Fallback::Proceed | Fallback::Refuse) => return,
                Err(Fallback::UseLocal) => {}
            }
        }
        self.limiter.settle_cost(&client.key, estimated, actual);
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
        if let Decision::Limited { .. } = probing.limiter.check_cost(&client.key, 1) {
            warn_probing(client, probing.cooldown);
            probing
                .cooldowns
                .insert(client.key, Instant::now() + probing.cooldown);
        }
    }

    /// Drops idle clients' state; called periodically.
    pub fn shrink(&self) {
        self.limiter.shrink();
        if let Some(probing) = &self.probing {
            probing.limiter.shrink();
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
        let client = budgets.identify(IP, None);
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
        let other = budgets.identify(IP, Some("another client's key"));
        assert!(
            budgets.admit_request(&other).await.is_ok(),
            "budgets are per client"
        );
    }

    #[tokio::test]
    async fn a_monitored_budget_admits_and_reports_the_violation() {
        let budgets = budgets(Mode::Monitor);
        let client = budgets.identify(IP, None);
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
        let prober = budgets.identify(IP, None);
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
        let client = budgets.identify(IP, None);
        for _ in 0..10 {
            assert_eq!(budgets.admit_request(&client).await, Ok(Admit::default()));
            assert_eq!(
                budgets.admit_cost(&client, 1_000_000).await,
                Ok(Admit::default())
            );
        }
    }
}
