//! Where per-client state lives: in this process, or on a Redis shared by every replica.

use std::time::Duration;

use super::parse::{choice, parse_duration, parse_switch};
use super::table::*;
use super::values::{RedisFailureMode, StateStore};
use super::{ConfigError, Reader};

/// `STATE` and, with `STATE=redis`, how to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// `None`: `STATE=memory`.
    pub redis: Option<RedisConfig>,
}

/// The `REDIS_*` variables.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL`; may hold a password, so it is never printed (see the `Debug` impl).
    pub url: String,
    pub timeout: Duration,
    pub key_prefix: String,
    pub required_to_start: bool,
    pub failure_mode: RedisFailureMode,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .field("required_to_start", &self.required_to_start)
            .field("failure_mode", &self.failure_mode)
            .finish()
    }
}

impl StateConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<StateConfig, ConfigError> {
        let store = read.value(STATE, |v| choice(v, StateStore::CHOICES))?;
        let url = read.optional(REDIS_URL, redis_url)?;
        let redis = match (store, url) {
            (StateStore::Memory, None) => None,
            (StateStore::Memory, Some(_)) => {
                // A URL that is silently not used would leave N replicas with N budgets.
                return Err(ConfigError::Invalid {
                    name: REDIS_URL.to_owned(),
                    value: "(set)".to_owned(),
                    accepted: format!("unset unless {STATE}=redis"),
                });
            }
            (StateStore::Redis, None) => {
                return Err(ConfigError::Missing {
                    name: REDIS_URL.to_owned(),
                    accepted: format!("{STATE}=redis needs a redis:// or rediss:// address"),
                });
            }
            (StateStore::Redis, Some(url)) => Some(RedisConfig {
                url,
                timeout: read.value(REDIS_TIMEOUT, parse_duration)?,
                key_prefix: read.value(REDIS_KEY_PREFIX, key_prefix)?,
                required_to_start: read.value(REDIS_REQUIRED_TO_START, parse_switch)?,
                failure_mode: read
                    .value(REDIS_FAILURE_MODE, |v| choice(v, RedisFailureMode::CHOICES))?,
            }),
        };
        Ok(StateConfig { redis })
    }
}

/// A `redis://` or `rediss://` URL with a host.
fn redis_url(text: &str) -> Result<String, String> {
    const ACCEPTED: &str = "redis://[[user]:password@]host[:port][/db] or rediss:// for TLS";
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "redis" | "rediss") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(ACCEPTED.to_owned()),
    }
}

/// A key prefix without the braces of a Redis Cluster hash tag (which would put every client's
/// keys into one slot).
fn key_prefix(text: &str) -> Result<String, String> {
    if text.contains(['{', '}']) || text.chars().any(char::is_whitespace) {
        return Err("a key prefix without braces or spaces, e.g. graphql-firewall:".to_owned());
    }
    Ok(text.to_owned())
}
