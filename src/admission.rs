//! The admission stages: who the client is, whether it may send another request, whether it may
//! spend an operation's cost, and whether it is cooling down after probing the schema.
//!
//! # Threats
//! One client must not exhaust the backend by request count or by a few expensive operations, and
//! a schema prober (clairvoyance sends 64 guesses per request) must not be able to keep guessing:
//! after `PROBE_LIMIT` schema-validation refusals in a minute, the client is refused outright for
//! `PROBE_COOLDOWN`. Identity comes from a configured API-key header, else the client IP, which is
//! read from `X-Forwarded-For`/`Forwarded` only when the socket peer is a trusted proxy.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use moka::sync::Cache;

use crate::metrics::{Metrics, RuleLabels};
use crate::policy::{Mode, Modes, Rule};
use crate::ratelimit::{ClientKey, Decision, Limiter, Quota, Rate, RateError};

use crate::config::ClientConfig;

use crate::http::client_ip::client_ip;
use crate::http::reject::{RejectCode, Rejection};

/// A client as the firewall knows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub key: ClientKey,
}

/// Per-client budgets and probe cool-downs.
#[derive(Debug)]
pub struct Budgets {
    settings: ClientConfig,
    modes: Modes,
    limiter: Limiter,
    /// Only with a probe limit.
    probing: Option<Probing>,
    metrics: std::sync::Arc<Metrics>,
}

/// Schema-probing defence: invalid operations per client, and who is cooling down until when.
#[derive(Debug)]
struct Probing {
    limiter: Limiter,
    cooldowns: Cache<ClientKey, Instant>,
}

impl Budgets {
    /// Budgets from the client settings; `modes` decides whether each budget is enforced.
    pub fn new(
        settings: ClientConfig,
        modes: Modes,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Budgets, RateError> {
        let limiter = Limiter::new(
            settings.rate_limit,
            settings.cost_budget,
            settings.max_clients,
        )?;
        let probing = settings
            .probe_limit
            .and_then(std::num::NonZeroU32::new)
            .map(|amount| {
                let rate = Rate {
                    amount,
                    period: Duration::from_secs(60),
                    burst: None,
                };
                Ok::<_, RateError>(Probing {
                    limiter: Limiter::new(None, Some(rate), settings.max_clients)?,
                    cooldowns: Cache::builder()
                        .max_capacity(settings.max_clients as u64)
                        .time_to_live(settings.probe_cooldown)
                        .build(),
                })
            })
            .transpose()?;
        Ok(Budgets {
            settings,
            modes,
            limiter,
            probing,
            metrics,
        })
    }

    /// Identifies the client of a request.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        let ip = client_ip(peer, headers, &self.settings.trusted_proxies);
        let api_key = self
            .settings
            .key_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty());
        let key = match api_key {
            Some(api_key) => ClientKey::from_api_key(api_key),
            None => ClientKey::from_ip(ip),
        };
        Client { ip, key }
    }

    /// Counts one request; refuses a client over its rate or cooling down after probing.
    pub fn admit_request(&self, client: &Client) -> Result<Option<Quota>, Rejection> {
        if let Some(until) = self
            .probing
            .as_ref()
            .and_then(|probing| probing.cooldowns.get(&client.key))
        {
            let wait = until.saturating_duration_since(Instant::now());
            self.count("probe_cooldown");
            return Err(limited(
                "too many invalid operations: try again later",
                wait,
                None,
            ));
        }
        self.decide(
            Rule::RateLimit,
            self.limiter.check_request(&client.key),
            "request rate limit exceeded",
        )
    }

    /// Consumes the cost of the request's operations from the client's budget.
    pub fn admit_cost(&self, client: &Client, points: u64) -> Result<Option<Quota>, Rejection> {
        self.decide(
            Rule::CostBudget,
            self.limiter.check_cost(&client.key, points),
            "cost budget exhausted",
        )
    }

    /// Records a schema-validation refusal; past the probe limit the client cools down.
    pub fn record_probe(&self, client: &Client) {
        let Some(probing) = &self.probing else {
            return;
        };
        if let Decision::Limited { .. } = probing.limiter.check_cost(&client.key, 1) {
            tracing::warn!(
                target: "graphql_firewall::policy",
                client = %client.ip,
                client_key = %client.key.short_hex(),
                cooldown_s = self.settings.probe_cooldown.as_secs(),
                "schema probing detected: client cooling down"
            );
            probing
                .cooldowns
                .insert(client.key, Instant::now() + self.settings.probe_cooldown);
        }
    }

    /// Drops idle clients' state; called periodically.
    pub fn shrink(&self) {
        self.limiter.shrink();
        if let Some(probing) = &self.probing {
            probing.limiter.shrink();
        }
    }

    /// `RateLimit-*` headers for a forwarded response, when enabled.
    pub fn headers(&self, quota: Option<Quota>) -> HeaderMap {
        match quota {
            Some(quota) if self.settings.rate_limit_headers => quota_headers(&quota),
            _ => HeaderMap::new(),
        }
    }

    fn count(&self, rule: &'static str) {
        self.metrics
            .rate_limited
            .get_or_create(&RuleLabels { rule })
            .inc();
    }

    fn decide(
        &self,
        rule: Rule,
        decision: Decision,
        message: &'static str,
    ) -> Result<Option<Quota>, Rejection> {
        match decision {
            Decision::Unlimited => Ok(None),
            Decision::Allowed(quota) => Ok(Some(quota)),
            Decision::Limited { retry_after, quota } => match self.modes.of(rule) {
                Mode::Enforce => {
                    self.count(rule.as_str());
                    Err(limited(message, retry_after, Some(quota)))
                }
                Mode::Monitor => {
                    tracing::warn!(
                        target: "graphql_firewall::policy",
                        rule = rule.as_str(),
                        retry_after_ms = retry_after.as_millis() as u64,
                        "rule broken in monitor mode: forwarded"
                    );
                    Ok(Some(quota))
                }
            },
        }
    }
}

fn limited(message: &'static str, retry_after: Duration, quota: Option<Quota>) -> Rejection {
    let mut rejection = Rejection::new(RejectCode::RateLimited, message);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    rejection
        .headers
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    if let Some(quota) = quota {
        rejection.headers.extend(quota_headers(&quota));
    }
    rejection.with_detail("retryAfter", seconds.max(1))
}

/// IETF draft `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` (seconds, rounded up).
fn quota_headers(quota: &Quota) -> HeaderMap {
    let reset = quota.reset.as_secs() + u64::from(quota.reset.subsec_nanos() > 0);
    let mut headers = HeaderMap::new();
    headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset));
    headers
}
