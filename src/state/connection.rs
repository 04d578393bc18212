//! The connection to Redis: settings, a multiplexed connection per thread that reconnects by
//! itself, the per-call timeout, the scripts' `EVALSHA`, and the round-trip counters.
//!
//! # Why a connection per thread
//! The firewall serves traffic on one single-threaded runtime per core. A multiplexed connection's
//! socket is driven by a task on the runtime that opened it, so one connection shared by every
//! worker made each call cross threads twice (request to the driver, reply back), which cost the
//! proxy bench about half its throughput with two checks per request. Each thread now opens its
//! own connection on first use, on its own runtime: a replica holds one connection per worker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind, cmd};
use thread_local::ThreadLocal;

use super::StateError;
use super::budgets::BudgetRules;
use super::keys::Keys;
use super::refused::RefusedCache;

/// A Lua script run by `EVALSHA`, and its body for when Redis lost it.
#[derive(Debug, Clone, Copy)]
pub(super) struct LuaScript {
    pub(super) name: &'static str,
    body: &'static str,
}

/// The GCRA check; see its header for the protocol.
pub(super) const GCRA: LuaScript = LuaScript {
    name: "gcra",
    body: include_str!("gcra.lua"),
};

/// Settling a cost bucket with the measured cost.
pub(super) const SETTLE: LuaScript = LuaScript {
    name: "settle",
    body: include_str!("settle.lua"),
};

const SCRIPTS: [LuaScript; 2] = [GCRA, SETTLE];

/// How long one attempt to (re)connect may take. Longer than a call's timeout: a TLS handshake to
/// a remote Redis takes a few round trips, and calls wait for it only up to their own timeout.
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Reconnection backoff: the first retry after this, doubling up to [`RECONNECT_MAX_DELAY`], at
/// most [`RECONNECT_ATTEMPTS`] times; the next call after that starts a new round. So Redis is
/// found again within about a second of coming back.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(25);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
const RECONNECT_ATTEMPTS: usize = 4;

/// How to reach Redis and how long to wait for it.
#[derive(Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS (server
    /// certificate checked against the Mozilla roots, as for the upstream). A password in it is
    /// never logged by this module.
    pub url: String,
    /// `REDIS_TIMEOUT` (default 50 ms): the longest any one call may take, reconnection included.
    pub timeout: Duration,
    /// `REDIS_KEY_PREFIX` (default `graphql-firewall:`): lets several deployments share a Redis.
    /// Avoid `{` and `}` in it: Redis Cluster would hash every key by the prefix into one slot.
    pub key_prefix: String,
    /// The most "refused until t" entries this replica keeps (use `RATE_LIMIT_MAX_CLIENTS`).
    pub max_refused_clients: u64,
    /// `APQ_TTL`: how long a registration lives on Redis.
    pub apq_ttl: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .field("max_refused_clients", &self.max_refused_clients)
            .field("apq_ttl", &self.apq_ttl)
            .finish()
    }
}

impl RedisSettings {
    /// `REDIS_TIMEOUT`'s default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
    /// `REDIS_KEY_PREFIX`'s default.
    pub const DEFAULT_KEY_PREFIX: &'static str = "graphql-firewall:";

    /// Settings for `url` with the defaults above, 100,000 refused clients and a 24 h APQ TTL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            max_refused_clients: 100_000,
            apq_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Commands sent to Redis (a script that had to be sent again after `NOSCRIPT` counts twice).
    pub round_trips: u64,
    /// Checks answered without Redis: remembered refusals, zero points, more points than a bucket.
    pub answered_locally: u64,
}

/// Shared state on one Redis. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct RedisState {
    client: Client,
    config: ConnectionManagerConfig,
    /// Each thread's connection, opened on first use (see the module documentation).
    connections: ThreadLocal<ConnectionManager>,
    timeout: Duration,
    /// SHA1 of each of [`SCRIPTS`], in order.
    script_shas: [String; 2],
    pub(super) keys: Keys,
    pub(super) rules: BudgetRules,
    pub(super) refused: RefusedCache,
    pub(super) apq_ttl: Duration,
    round_trips: AtomicU64,
    answered_locally: AtomicU64,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("timeout", &self.timeout)
            .field("keys", &self.keys)
            .field("rules", &self.rules)
            .field("refused", &self.refused)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connects now and checks Redis (`PING`, script loaded), waiting at most `within`: for
    /// `REDIS_REQUIRED_TO_START=true`, where a firewall that cannot reach Redis must not start.
    pub async fn connect(
        settings: &RedisSettings,
        rules: BudgetRules,
        within: Duration,
    ) -> Result<Self, StateError> {
        let state = Self::connect_lazy(settings, rules)?;
        state.verify(within).await?;
        Ok(state)
    }

    /// Returns at once and connects on first use: a firewall that starts while Redis is away
    /// serves under `REDIS_FAILURE_MODE` until Redis answers. Must be called inside a Tokio
    /// runtime. Fails only for a `REDIS_URL` that cannot be used.
    pub fn connect_lazy(settings: &RedisSettings, rules: BudgetRules) -> Result<Self, StateError> {
        let client = Client::open(settings.url.as_str()).map_err(StateError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_ATTEMPT_TIMEOUT))
            .set_response_timeout(Some(settings.timeout))
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let state = Self {
            client,
            config,
            connections: ThreadLocal::new(),
            timeout: settings.timeout,
            script_shas: SCRIPTS.map(|script| Script::new(script.body).get_hash().to_owned()),
            keys: Keys::new(&settings.key_prefix),
            rules,
            refused: RefusedCache::new(settings.max_refused_clients),
            apq_ttl: settings.apq_ttl,
            round_trips: AtomicU64::new(0),
            answered_locally: AtomicU64::new(0),
        };
        // A URL the client cannot use fails here, not on the first request.
        state.connection()?;
        Ok(state)
    }

    /// This thread's connection, opened (lazily: it connects on first use) when there is none.
    fn connection(&self) -> Result<ConnectionManager, StateError> {
        self.connections
            .get_or_try(|| {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .cloned()
            .map_err(StateError::Url)
    }

    /// Checks that Redis answers and holds the scripts (loading them), within `within`: for
    /// start-up, `/readyz` and the `check` command.
    pub async fn verify(&self, within: Duration) -> Result<(), StateError> {
        let mut connection = self.connection()?;
        let checked = async {
            self.count_round_trip();
            cmd("PING").query_async::<String>(&mut connection).await?;
            let mut shas = Vec::with_capacity(SCRIPTS.len());
            for script in SCRIPTS {
                self.count_round_trip();
                let sha = cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(script.body)
                    .query_async::<String>(&mut connection)
                    .await?;
                shas.push(sha);
            }
            Ok(shas)
        };
        let shas = bounded(within, checked).await?;
        let same = shas
            .iter()
            .zip(&self.script_shas)
            .all(|(loaded, expected)| loaded.eq_ignore_ascii_case(expected));
        if same {
            Ok(())
        } else {
            Err(StateError::Reply("SCRIPT LOAD returned another SHA1"))
        }
    }

    /// The global budgets this state enforces by default.
    pub fn rules(&self) -> &BudgetRules {
        &self.rules
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            round_trips: self.round_trips.load(Ordering::Relaxed),
            answered_locally: self.answered_locally.load(Ordering::Relaxed),
        }
    }

    /// "Refused until t" entries this replica holds (bounded by `max_refused_clients`).
    pub fn refused_clients(&self) -> u64 {
        self.refused.len()
    }

    /// Runs `script` with `EVALSHA`. If Redis lost its script cache (a restart, a failover,
    /// `SCRIPT FLUSH`), `EVAL` sends the body once, which caches it again. Both within one
    /// timeout.
    pub(super) async fn run_script<T: FromRedisValue>(
        &self,
        script: LuaScript,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, StateError> {
        let sha = SCRIPTS
            .iter()
            .zip(&self.script_shas)
            .find_map(|(known, sha)| (known.name == script.name).then_some(sha.as_str()))
            .ok_or(StateError::Reply("a script this build does not know"))?;
        let mut connection = self.connection()?;
        let run = async {
            self.count_round_trip();
            let by_sha = cmd("EVALSHA")
                .arg(sha)
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .query_async::<T>(&mut connection)
                .await;
            match by_sha {
                Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    self.count_round_trip();
                    cmd("EVAL")
                        .arg(script.body)
                        .arg(keys.len())
                        .arg(keys)
                        .arg(args)
                        .query_async::<T>(&mut connection)
                        .await
                }
                other => other,
            }
        };
        bounded(self.timeout, run).await
    }

    /// Sends one plain command within the timeout.
    pub(super) async fn query<T: FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, StateError> {
        let mut connection = self.connection()?;
        self.count_round_trip();
        bounded(self.timeout, command.query_async::<T>(&mut connection)).await
    }

    pub(super) fn count_answered_locally(&self) {
        self.answered_locally.fetch_add(1, Ordering::Relaxed);
    }

    fn count_round_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs a Redis call for at most `limit`, whatever it is waiting for (a reply, a reconnection).
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StateError> {
    match tokio::time::timeout(limit, call).await {
        Err(_elapsed) => Err(StateError::Timeout(limit)),
        Ok(Err(err)) if err.is_timeout() => Err(StateError::Timeout(limit)),
        Ok(Err(err)) => Err(StateError::Redis(err)),
        Ok(Ok(value)) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tls_urls_are_accepted_and_malformed_ones_are_a_url_error() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://:secret@redis.internal:6380/2",
            "rediss://redis.example.com:6380",
        ] {
            let state = RedisState::connect_lazy(&RedisSettings::new(url), BudgetRules::default());
            assert!(state.is_ok(), "url={url} err={:?}", state.err());
        }
        for url in [
            "",
            "http://127.0.0.1:6379",
            "redis://[::1",
            "127.0.0.1:6379",
        ] {
            let state = RedisState::connect_lazy(&RedisSettings::new(url), BudgetRules::default());
            assert!(
                matches!(state, Err(StateError::Url(_))),
                "url={url:?} gave {state:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_password_in_the_url_is_never_printed() {
        let settings = RedisSettings::new("redis://:hunter2@127.0.0.1:6379");
        let state = RedisState::connect_lazy(&settings, BudgetRules::default()).unwrap();
        for printed in [format!("{settings:?}"), format!("{state:?}")] {
            assert!(!printed.contains("hunter2"), "{printed}");
        }
    }
}
