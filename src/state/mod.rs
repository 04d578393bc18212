//! State shared by every replica (`STATE=redis`): the request and cost budgets, probe counters and
//! cool-downs, and APQ registrations, kept on Redis so that N replicas enforce one limit per client.
//!
//! # Why
//! Each replica's in-process limiter gives every client its own budget: three replicas behind a
//! load balancer give a client three budgets, and a prober cooling down on one replica keeps
//! guessing on the others. Here a budget is one Redis key per client and budget, updated by one
//! Lua script (`src/state/gcra.lua`, run with `EVALSHA`) that reads Redis's own clock, so the
//! replicas' clocks never matter and every check is atomic. Its arithmetic is governor's, so a
//! client sees the same limits, `RateLimit-*` values and `Retry-After` as with `STATE=memory`.
//!
//! # Threats
//! - Redis becomes a dependency of every request. Each call is bounded by `REDIS_TIMEOUT` and fails
//!   with a typed [`StateError`]; [`FailureMode`] turns that into what admission does next, so an
//!   outage of Redis is neither an outage of the API nor, by default, an open door.
//! - A client already over its limit must not cost a Redis round trip per request (a flood would
//!   become a flood on Redis): every replica remembers "refused until t" locally, in a cache
//!   bounded by the same client cap as the in-process limiter.
//! - A flood of distinct identities must not grow Redis: every bucket key lives exactly as long as
//!   its bucket takes to refill, so an idle client's state expires by itself.
//! - Cache poisoning through APQ: as in process, a document is stored only under its own SHA-256,
//!   and it is checked again when read, so a text written into Redis by anything else under a
//!   well-known hash is never served.
//!
//! # Round trips
//! One per admitted check (the cool-down and the request budget are read by the same script), none
//! for a client refused until a time that has not come, none for zero points or for more points
//! than the bucket holds. [`RedisState::stats`] counts them.
//!
//! # Keys
//! `<prefix>` is `REDIS_KEY_PREFIX`. The client part is a Redis Cluster hash tag, so all of one
//! client's keys share a slot (the script touches two of them):
//! - `<prefix>budget:{<client>}:requests` / `:cost` / `:probes`: a bucket's theoretical arrival
//!   time, with a TTL of the time to refill.
//! - `<prefix>cooldown:{<client>}`: present while the client cools down after probing.
//! - `<prefix>apq:<sha256 hex>`: a registered document, with the APQ TTL.
//!
//! `<client>` is the hex of the 16-byte [`ClientKey`](crate::ratelimit::ClientKey) (a digest: no
//! API key or address is stored).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod apq;
mod budgets;
mod connection;
mod failure;
mod keys;
mod refused;

pub use self::apq::ApqError;
pub use self::budgets::{BudgetRules, ProbeOutcome, ProbeRule, RequestCheck};
pub use self::connection::{RedisSettings, RedisState, Stats};
pub use self::failure::{FailureMode, Fallback, Operation};

use std::time::Duration;

/// A client's budgets on Redis: one bucket each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// The request rate (`RATE_LIMIT`).
    Requests,
    /// The cost-point rate (`COST_BUDGET`).
    Cost,
    /// Schema-validation refusals counted towards a probe cool-down (`PROBE_LIMIT`).
    Probes,
}

impl Budget {
    /// The bucket's name in its Redis key.
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Requests => "requests",
            Budget::Cost => "cost",
            Budget::Probes => "probes",
        }
    }
}

/// Why shared state could not be read or written. Admission decides what to do through
/// [`FailureMode::fallback`].
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `REDIS_URL` cannot be used (syntax, scheme, TLS not available).
    #[error("REDIS_URL is not a usable Redis address: {0}")]
    Url(#[source] ::redis::RedisError),
    /// No answer within `REDIS_TIMEOUT` (Redis slow, paused, or the connection being re-made).
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or Redis answered with an error.
    #[error("Redis failed: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// Redis answered, but not in the shape the firewall expects.
    #[error("Redis answered in an unexpected shape: {0}")]
    Reply(&'static str),
}

impl StateError {
    /// The `error` label of `graphql_firewall_redis_errors_total`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StateError::Url(_) => "url",
            StateError::Timeout(_) => "timeout",
            StateError::Redis(_) => "redis",
            StateError::Reply(_) => "reply",
        }
    }
}
