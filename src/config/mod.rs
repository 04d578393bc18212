//! Every `GRAPHQL_FIREWALL_*` variable: its name, default, parser and validation, in one place.
//!
//! # Why
//! A firewall whose protection can be switched off by a typo is not a firewall: configuration is
//! parsed once at start-up into a typed [`Config`], an invalid value stops the process with a message
//! naming the variable, the value and what is accepted, and unknown `GRAPHQL_FIREWALL_*` names are
//! reported. The environment sits behind [`Source`] so tests pass a map and never mutate the process
//! environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use url::Url;

use crate::http::client_ip::TrustedProxies;
use crate::persisted;
use crate::policy::{self, Mode};
use crate::ratelimit::Rate;
use crate::sanitise::{self, MaskMode};

/// Prefix shared by every variable.
pub const PREFIX: &str = "GRAPHQL_FIREWALL_";

pub const LISTEN: &str = "GRAPHQL_FIREWALL_LISTEN";
pub const PATH: &str = "GRAPHQL_FIREWALL_PATH";
pub const UPSTREAM_URL: &str = "GRAPHQL_FIREWALL_UPSTREAM_URL";
pub const UPSTREAM_TIMEOUT: &str = "GRAPHQL_FIREWALL_UPSTREAM_TIMEOUT";
pub const UPSTREAM_CONNECT_TIMEOUT: &str = "GRAPHQL_FIREWALL_UPSTREAM_CONNECT_TIMEOUT";
pub const READY_TIMEOUT: &str = "GRAPHQL_FIREWALL_READY_TIMEOUT";
pub const SHUTDOWN_TIMEOUT: &str = "GRAPHQL_FIREWALL_SHUTDOWN_TIMEOUT";
pub const WORKERS: &str = "GRAPHQL_FIREWALL_WORKERS";
pub const MAX_BODY_BYTES: &str = "GRAPHQL_FIREWALL_MAX_BODY_BYTES";
pub const MAX_BATCH: &str = "GRAPHQL_FIREWALL_MAX_BATCH";
pub const REJECT_STATUS: &str = "GRAPHQL_FIREWALL_REJECT_STATUS";
pub const CSRF_PROTECTION: &str = "GRAPHQL_FIREWALL_CSRF_PROTECTION";
pub const CSRF_REQUIRED_HEADERS: &str = "GRAPHQL_FIREWALL_CSRF_REQUIRED_HEADERS";
pub const LOG: &str = "GRAPHQL_FIREWALL_LOG";
pub const LOG_FORMAT: &str = "GRAPHQL_FIREWALL_LOG_FORMAT";
pub const MODE: &str = "GRAPHQL_FIREWALL_MODE";
pub const RULE_MODES: &str = "GRAPHQL_FIREWALL_RULE_MODES";
pub const MAX_TOKENS: &str = "GRAPHQL_FIREWALL_MAX_TOKENS";
pub const MAX_DEPTH: &str = "GRAPHQL_FIREWALL_MAX_DEPTH";
pub const MAX_ALIASES: &str = "GRAPHQL_FIREWALL_MAX_ALIASES";
pub const MAX_ROOT_FIELDS: &str = "GRAPHQL_FIREWALL_MAX_ROOT_FIELDS";
pub const MAX_DIRECTIVES: &str = "GRAPHQL_FIREWALL_MAX_DIRECTIVES";
pub const MAX_FIELDS: &str = "GRAPHQL_FIREWALL_MAX_FIELDS";
pub const MAX_COST: &str = "GRAPHQL_FIREWALL_MAX_COST";
pub const MAX_BATCH_COST: &str = "GRAPHQL_FIREWALL_MAX_BATCH_COST";
pub const INTROSPECTION: &str = "GRAPHQL_FIREWALL_INTROSPECTION";
pub const MAX_VALUE_NESTING: &str = "GRAPHQL_FIREWALL_MAX_VALUE_NESTING";
pub const MAX_VARIABLES: &str = "GRAPHQL_FIREWALL_MAX_VARIABLES";
pub const MAX_VARIABLE_DEPTH: &str = "GRAPHQL_FIREWALL_MAX_VARIABLE_DEPTH";
pub const MAX_VARIABLE_LIST: &str = "GRAPHQL_FIREWALL_MAX_VARIABLE_LIST";
pub const MAX_VARIABLES_BYTES: &str = "GRAPHQL_FIREWALL_MAX_VARIABLES_BYTES";
pub const EXPOSE_LIMITS: &str = "GRAPHQL_FIREWALL_EXPOSE_LIMITS";
pub const ANALYSIS_CACHE_BYTES: &str = "GRAPHQL_FIREWALL_ANALYSIS_CACHE_BYTES";
pub const SCHEMA: &str = "GRAPHQL_FIREWALL_SCHEMA";
pub const DEFAULT_LIST_SIZE: &str = "GRAPHQL_FIREWALL_DEFAULT_LIST_SIZE";
pub const SLICING_ARGUMENTS: &str = "GRAPHQL_FIREWALL_SLICING_ARGUMENTS";
pub const COST_OBJECT_WEIGHT: &str = "GRAPHQL_FIREWALL_COST_OBJECT_WEIGHT";
pub const COST_SCALAR_WEIGHT: &str = "GRAPHQL_FIREWALL_COST_SCALAR_WEIGHT";
pub const COST_MUTATION_WEIGHT: &str = "GRAPHQL_FIREWALL_COST_MUTATION_WEIGHT";
pub const BLOCK_FIELD_SUGGESTIONS: &str = "GRAPHQL_FIREWALL_BLOCK_FIELD_SUGGESTIONS";
pub const MASK_ERRORS: &str = "GRAPHQL_FIREWALL_MASK_ERRORS";
pub const MASK_KEEP_CODES: &str = "GRAPHQL_FIREWALL_MASK_KEEP_CODES";
pub const SANITISE_MAX_BYTES: &str = "GRAPHQL_FIREWALL_SANITISE_MAX_BYTES";
pub const CLIENT_KEY_HEADER: &str = "GRAPHQL_FIREWALL_CLIENT_KEY_HEADER";
pub const TRUSTED_PROXIES: &str = "GRAPHQL_FIREWALL_TRUSTED_PROXIES";
pub const RATE_LIMIT: &str = "GRAPHQL_FIREWALL_RATE_LIMIT";
pub const COST_BUDGET: &str = "GRAPHQL_FIREWALL_COST_BUDGET";
pub const RATE_LIMIT_HEADERS: &str = "GRAPHQL_FIREWALL_RATE_LIMIT_HEADERS";
pub const RATE_LIMIT_MAX_CLIENTS: &str = "GRAPHQL_FIREWALL_RATE_LIMIT_MAX_CLIENTS";
pub const PROBE_LIMIT: &str = "GRAPHQL_FIREWALL_PROBE_LIMIT";
pub const PROBE_COOLDOWN: &str = "GRAPHQL_FIREWALL_PROBE_COOLDOWN";
pub const METRICS_LISTEN: &str = "GRAPHQL_FIREWALL_METRICS_LISTEN";
pub const LOG_SAMPLE: &str = "GRAPHQL_FIREWALL_LOG_SAMPLE";
pub const PERSISTED_QUERIES: &str = "GRAPHQL_FIREWALL_PERSISTED_QUERIES";
pub const PERSISTED_QUERIES_DIR: &str = "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR";
pub const PERSISTED_REQUIRE_ID: &str = "GRAPHQL_FIREWALL_PERSISTED_REQUIRE_ID";
pub const PERSISTED_SKIP_LIMITS: &str = "GRAPHQL_FIREWALL_PERSISTED_SKIP_LIMITS";
pub const PERSISTED_LIMIT_VIOLATIONS: &str = "GRAPHQL_FIREWALL_PERSISTED_LIMIT_VIOLATIONS";
pub const PERSISTED_PASS_THROUGH: &str = "GRAPHQL_FIREWALL_PERSISTED_PASS_THROUGH";
pub const PERSISTED_RELOAD_INTERVAL: &str = "GRAPHQL_FIREWALL_PERSISTED_RELOAD_INTERVAL";
pub const APQ_CACHE_BYTES: &str = "GRAPHQL_FIREWALL_APQ_CACHE_BYTES";
pub const APQ_TTL: &str = "GRAPHQL_FIREWALL_APQ_TTL";
pub const TRUSTED_CLIENT_HEADER: &str = "GRAPHQL_FIREWALL_TRUSTED_CLIENT_HEADER";
pub const TRUSTED_CLIENT_KEY_HASHES: &str = "GRAPHQL_FIREWALL_TRUSTED_CLIENT_KEY_HASHES";
pub const TRUSTED_CLIENT_SKIP_LIMITS: &str = "GRAPHQL_FIREWALL_TRUSTED_CLIENT_SKIP_LIMITS";

/// Every variable this build understands; anything else with the prefix is reported as unknown.
pub const KNOWN: &[&str] = &[
    LISTEN,
    PATH,
    UPSTREAM_URL,
    UPSTREAM_TIMEOUT,
    UPSTREAM_CONNECT_TIMEOUT,
    READY_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    WORKERS,
    MAX_BODY_BYTES,
    MAX_BATCH,
    REJECT_STATUS,
    CSRF_PROTECTION,
    CSRF_REQUIRED_HEADERS,
    LOG,
    LOG_FORMAT,
    MODE,
    RULE_MODES,
    MAX_TOKENS,
    MAX_DEPTH,
    MAX_ALIASES,
    MAX_ROOT_FIELDS,
    MAX_DIRECTIVES,
    MAX_FIELDS,
    MAX_COST,
    MAX_BATCH_COST,
    INTROSPECTION,
    MAX_VALUE_NESTING,
    MAX_VARIABLES,
    MAX_VARIABLE_DEPTH,
    MAX_VARIABLE_LIST,
    MAX_VARIABLES_BYTES,
    EXPOSE_LIMITS,
    ANALYSIS_CACHE_BYTES,
    SCHEMA,
    DEFAULT_LIST_SIZE,
    SLICING_ARGUMENTS,
    COST_OBJECT_WEIGHT,
    COST_SCALAR_WEIGHT,
    COST_MUTATION_WEIGHT,
    BLOCK_FIELD_SUGGESTIONS,
    MASK_ERRORS,
    MASK_KEEP_CODES,
    SANITISE_MAX_BYTES,
    CLIENT_KEY_HEADER,
    TRUSTED_PROXIES,
    RATE_LIMIT,
    COST_BUDGET,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_MAX_CLIENTS,
    PROBE_LIMIT,
    PROBE_COOLDOWN,
    METRICS_LISTEN,
    LOG_SAMPLE,
    PERSISTED_QUERIES,
    PERSISTED_QUERIES_DIR,
    PERSISTED_REQUIRE_ID,
    PERSISTED_SKIP_LIMITS,
    PERSISTED_LIMIT_VIOLATIONS,
    PERSISTED_PASS_THROUGH,
    PERSISTED_RELOAD_INTERVAL,
    APQ_CACHE_BYTES,
    APQ_TTL,
    TRUSTED_CLIENT_HEADER,
    TRUSTED_CLIENT_KEY_HASHES,
    TRUSTED_CLIENT_SKIP_LIMITS,
];

/// Where variables come from: the process environment in production, a map in tests.
pub trait Source {
    /// The value of `name`, `Err` when it is set but not valid UTF-8.
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError>;
    /// Every variable name present in the source (to find unknown `GRAPHQL_FIREWALL_*` names).
    fn names(&self) -> Vec<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(raw)) => Err(ConfigError::Invalid {
                name: name.to_owned(),
                value: raw.to_string_lossy().into_owned(),
                accepted: "valid UTF-8".to_owned(),
            }),
        }
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl<K, V> Source for HashMap<K, V>
where
    K: AsRef<str> + Eq + std::hash::Hash,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .iter()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref().to_owned()))
    }

    fn names(&self) -> Vec<String> {
        self.keys().map(|key| key.as_ref().to_owned()).collect()
    }
}

/// A configuration problem, always naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is required and missing.
    #[error("{name} is required ({accepted})")]
    Missing { name: String, accepted: String },
    /// The value does not parse or is out of range.
    #[error("{name}={value:?} is not valid: expected {accepted}")]
    Invalid {
        name: String,
        value: String,
        accepted: String,
    },
    /// Unknown `GRAPHQL_FIREWALL_*` names: almost always a typo that would silently disable a setting.
    #[error("unknown variable(s) {}: not a setting of this version (known: see README.md)", names.join(", "))]
    Unknown { names: Vec<String> },
}

/// How the process is being started: `demo` embeds its own upstream, and offline tools
/// (`manifest check`) forward nothing, so neither requires the upstream URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Serve,
    Demo,
    Offline,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// HTTP status of a rule rejection (limits, validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectStatus {
    /// 400, what Apollo clients and most tooling expect.
    BadRequest,
    /// 422, the 2026 GraphQL-over-HTTP draft's status for validation failures.
    UnprocessableEntity,
}

/// The whole, validated configuration. Each field names its variable and default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `PATH`, default `/graphql`: the path the firewall serves GraphQL on.
    pub path: String,
    /// Upstream connection settings.
    pub upstream: UpstreamConfig,
    /// `READY_TIMEOUT`, default `2s`: how long `/readyz` waits for the upstream.
    pub ready_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT`, default `30s`: how long in-flight requests may take after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `WORKERS`, default `auto` (the CPUs this process may use): threads serving traffic, each
    /// with its own event loop.
    pub workers: NonZeroUsize,
    /// `MAX_BODY_BYTES`, default 1 MiB, after decompression.
    pub max_body_bytes: usize,
    /// `MAX_BATCH`, default 5; `off` = unbounded, `0` would disable batching: use 1.
    pub max_batch: Option<usize>,
    /// `REJECT_STATUS`, default 400.
    pub reject_status: RejectStatus,
    /// `CSRF_PROTECTION` (`on`|`off`, default on) and `CSRF_REQUIRED_HEADERS`.
    pub csrf: CsrfConfig,
    /// `LOG`, default `info` (a tracing `EnvFilter` directive).
    pub log_filter: String,
    /// `LOG_FORMAT`, default `pretty`.
    pub log_format: LogFormat,
    /// `LOG_SAMPLE`, default 1: share of allowed operations written to the audit log (rejections always are).
    pub log_sample: f64,
    /// `METRICS_LISTEN`, default `127.0.0.1:9090`, or `off`: the admin listener serving `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Document and variable limits (`MAX_*`, `INTROSPECTION`).
    pub limits: policy::Limits,
    /// `MODE` (`enforce`|`monitor`, default enforce) and `RULE_MODES` (`rule:mode,…`).
    pub modes: policy::Modes,
    /// `MAX_VALUE_NESTING`, default 32: list/object nesting inside a document's values.
    pub max_value_nesting: u32,
    /// `EXPOSE_LIMITS` (`on`|`off`, default on): `limit`/`actual` in rejections.
    pub expose_limits: bool,
    /// `ANALYSIS_CACHE_BYTES`, default 64 MiB.
    pub analysis_cache_bytes: u64,
    /// Static cost settings.
    pub cost: CostConfig,
    /// `SCHEMA`: SDL file or directory of `.graphql` files; `demo` defaults to its own schema.
    pub schema: Option<SchemaSource>,
    /// Response hardening.
    pub sanitise: SanitiseConfig,
    /// Client identity and budgets.
    pub clients: ClientConfig,
    /// Persisted queries and trusted clients.
    pub persisted: PersistedConfig,
}

/// Persisted-query settings.
#[derive(Debug, Clone)]
pub struct PersistedConfig {
    /// `PERSISTED_QUERIES` (`off`|`apq`|`audit`|`allowlist`, default off).
    pub mode: persisted::Mode,
    /// `PERSISTED_QUERIES_DIR`, default `persisted-queries/` (a missing default directory means no
    /// manifest; a missing directory the operator named is an error).
    pub dir: std::path::PathBuf,
    /// True when `dir` was set explicitly.
    pub dir_required: bool,
    /// `PERSISTED_REQUIRE_ID` (off): in allowlist mode, refuse manifest documents sent as text.
    pub require_id: bool,
    /// `PERSISTED_SKIP_LIMITS` (on): manifest documents skip the document limits.
    pub skip_limits: bool,
    /// `PERSISTED_LIMIT_VIOLATIONS` (`error`|`warn`, default error): manifest entries breaking limits at load.
    pub limit_violations_fatal: bool,
    /// `PERSISTED_PASS_THROUGH` (off): keep `extensions.persistedQuery` / `documentId` for an APQ-aware upstream.
    pub pass_through: bool,
    /// `PERSISTED_RELOAD_INTERVAL` (5s, or `off`): how often the manifest directory is checked for changes.
    pub reload_interval: Option<Duration>,
    /// `APQ_CACHE_BYTES` (16 MiB) and `APQ_TTL` (24h).
    pub apq_cache_bytes: u64,
    pub apq_ttl: Duration,
    /// `TRUSTED_CLIENT_HEADER` and `TRUSTED_CLIENT_KEY_HASHES` (SHA-256 hex of each accepted key).
    pub trusted_client_header: Option<String>,
    pub trusted_client_key_hashes: Vec<[u8; 32]>,
    /// `TRUSTED_CLIENT_SKIP_LIMITS` (off): trusted clients skip the document limits too.
    pub trusted_client_skip_limits: bool,
}

/// Response hardening settings.
#[derive(Debug, Clone)]
pub struct SanitiseConfig {
    /// `BLOCK_FIELD_SUGGESTIONS` (on), `MASK_ERRORS` (`off`|`details`|`all`, default details) and
    /// `MASK_KEEP_CODES` (codes whose message survives `all`).
    pub rules: sanitise::Settings,
    /// `SANITISE_MAX_BYTES`, default 8 MiB: larger (decoded) responses pass through unchanged.
    pub max_bytes: usize,
}

/// Who a client is and what it may spend.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `CLIENT_KEY_HEADER`: a header (e.g. `x-api-key`) identifying the client; else its IP.
    pub key_header: Option<http::HeaderName>,
    /// `TRUSTED_PROXIES`: CIDR list of peers whose `X-Forwarded-For`/`Forwarded` is believed.
    pub trusted_proxies: TrustedProxies,
    /// `RATE_LIMIT` (e.g. `100/s`, `6000/min:burst=200`), off by default.
    pub rate_limit: Option<Rate>,
    /// `COST_BUDGET` (e.g. `50000/min`), off by default.
    pub cost_budget: Option<Rate>,
    /// `RATE_LIMIT_HEADERS` (on): `RateLimit-*` headers on forwarded responses too.
    pub rate_limit_headers: bool,
    /// `RATE_LIMIT_MAX_CLIENTS`, default 100,000 tracked clients per budget.
    pub max_clients: usize,
    /// `PROBE_LIMIT`, default 10: schema-validation refusals per client per minute before a cool-down.
    pub probe_limit: Option<u32>,
    /// `PROBE_COOLDOWN`, default 60s.
    pub probe_cooldown: Duration,
}

/// Where the backend's SDL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// A file, or a directory of `.graphql`/`.graphqls`/`.gql` files.
    Path(std::path::PathBuf),
    /// The demo backend's annotated SDL, built into the binary.
    Demo,
}

/// Static cost settings (IBM cost spec semantics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostConfig {
    /// `DEFAULT_LIST_SIZE`, default 10: size of a list field with no slicing argument or `@listSize`.
    pub default_list_size: u64,
    /// `SLICING_ARGUMENTS`, default `first,last,limit,pageSize`: schema-less list-size arguments.
    pub slicing_arguments: Vec<String>,
    /// `COST_OBJECT_WEIGHT`, default 1.
    pub object_weight: u64,
    /// `COST_SCALAR_WEIGHT`, default 0.
    pub scalar_weight: u64,
    /// `COST_MUTATION_WEIGHT`, default 10.
    pub mutation_weight: u64,
}

/// Upstream settings.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `UPSTREAM_URL`, required for `serve`: the GraphQL endpoint requests are forwarded to.
    pub url: Url,
    /// `UPSTREAM_TIMEOUT`, default `30s`: total time for one upstream exchange.
    pub timeout: Duration,
    /// `UPSTREAM_CONNECT_TIMEOUT`, default `5s`.
    pub connect_timeout: Duration,
}

/// CSRF guard settings.
#[derive(Debug, Clone)]
pub struct CsrfConfig {
    /// Off only when the operator says so.
    pub enabled: bool,
    /// Lower-case header names; one of them, non-empty, proves the request was preflighted.
    pub required_headers: Vec<String>,
}

impl Config {
    /// Parses and validates every variable of `source`. Unknown `GRAPHQL_FIREWALL_*` names are errors.
    pub fn from_source(source: &dyn Source, profile: Profile) -> Result<Config, ConfigError> {
        report_unknown(source)?;
        let read = Reader { source };
        let upstream_url = match profile {
            Profile::Serve => read
                .optional(UPSTREAM_URL, parse_upstream_url)?
                .ok_or_else(|| ConfigError::Missing {
                    name: UPSTREAM_URL.to_owned(),
                    accepted: "an http:// or https:// URL of the GraphQL endpoint".to_owned(),
                })?,
            // The demo replaces this with its embedded backend's address once that is bound.
            Profile::Demo => Url::parse("http://127.0.0.1:0/graphql").expect("static URL parses"),
            Profile::Offline => read
                .optional(UPSTREAM_URL, parse_upstream_url)?
                .unwrap_or_else(|| {
                    Url::parse("http://127.0.0.1:0/graphql").expect("static URL parses")
                }),
        };
        Ok(Config {
            listen: read.or(LISTEN, "127.0.0.1:8080".parse().expect("static"), |v| {
                v.parse::<SocketAddr>()
                    .map_err(|_| "a socket address such as 127.0.0.1:8080 or [::]:8080".to_owned())
            })?,
            path: read.or(PATH, "/graphql".to_owned(), parse_path)?,
            upstream: UpstreamConfig {
                url: upstream_url,
                timeout: read.or(UPSTREAM_TIMEOUT, Duration::from_secs(30), parse_duration)?,
                connect_timeout: read.or(
                    UPSTREAM_CONNECT_TIMEOUT,
                    Duration::from_secs(5),
                    parse_duration,
                )?,
            },
            ready_timeout: read.or(READY_TIMEOUT, Duration::from_secs(2), parse_duration)?,
            shutdown_timeout: read.or(SHUTDOWN_TIMEOUT, Duration::from_secs(30), parse_duration)?,
            workers: read.or(WORKERS, available_cpus(), parse_workers)?,
            max_body_bytes: read.or(MAX_BODY_BYTES, 1 << 20, parse_size)?,
            max_batch: read.or(MAX_BATCH, Some(5), |v| {
                parse_limit(v).map(|n| n.map(|n| n as usize))
            })?,
            reject_status: read.or(REJECT_STATUS, RejectStatus::BadRequest, |v| match v {
                "400" => Ok(RejectStatus::BadRequest),
                "422" => Ok(RejectStatus::UnprocessableEntity),
                _ => Err("400 or 422".to_owned()),
            })?,
            csrf: CsrfConfig {
                enabled: read.or(CSRF_PROTECTION, true, parse_switch)?,
                required_headers: read.or(
                    CSRF_REQUIRED_HEADERS,
                    vec![
                        "x-apollo-operation-name".to_owned(),
                        "apollo-require-preflight".to_owned(),
                        "graphql-preflight".to_owned(),
                    ],
                    parse_header_names,
                )?,
            },
            log_filter: read.or(LOG, "info".to_owned(), |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .map(|_| v.to_owned())
                    .map_err(|_| {
                        "a tracing filter such as info, debug or graphql_firewall=debug,warn"
                            .to_owned()
                    })
            })?,
            log_format: read.or(LOG_FORMAT, LogFormat::Pretty, |v| match v {
                "pretty" => Ok(LogFormat::Pretty),
                "json" => Ok(LogFormat::Json),
                _ => Err("pretty or json".to_owned()),
            })?,
            log_sample: read.or(LOG_SAMPLE, 1.0, |v| match v.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
                _ => Err("a number from 0 to 1, such as 0.1".to_owned()),
            })?,
            metrics_listen: read.or(METRICS_LISTEN, Some("127.0.0.1:9090".parse().expect("static")), |v| {
                if v.eq_ignore_ascii_case("off") {
                    return Ok(None);
                }
                v.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| "a socket address such as 127.0.0.1:9090, or off".to_owned())
            })?,
            limits: read_limits(&read)?,
            modes: policy::Modes {
                default: read.or(MODE, Mode::Enforce, parse_mode)?,
                overrides: read.or(RULE_MODES, Vec::new(), parse_rule_modes)?,
            },
            max_value_nesting: read.or(MAX_VALUE_NESTING, 32, parse_count)?,
            expose_limits: read.or(EXPOSE_LIMITS, true, parse_switch)?,
            analysis_cache_bytes: read.or(ANALYSIS_CACHE_BYTES, 64 << 20, |v| {
                parse_size(v).map(|n| n as u64)
            })?,
            cost: CostConfig {
                default_list_size: read.or(DEFAULT_LIST_SIZE, 10, parse_weight)?,
                slicing_arguments: read.or(
                    SLICING_ARGUMENTS,
                    ["first", "last", "limit", "pageSize"]
                        .map(str::to_owned)
                        .to_vec(),
                    parse_names,
                )?,
                object_weight: read.or(COST_OBJECT_WEIGHT, 1, parse_weight)?,
                scalar_weight: read.or(COST_SCALAR_WEIGHT, 0, parse_weight)?,
                mutation_weight: read.or(COST_MUTATION_WEIGHT, 10, parse_weight)?,
            },
            sanitise: SanitiseConfig {
                rules: sanitise::Settings {
                    block_suggestions: read.or(BLOCK_FIELD_SUGGESTIONS, true, parse_switch)?,
                    mask: read.or(MASK_ERRORS, MaskMode::Details, |v| match v {
                        "off" => Ok(MaskMode::Off),
                        "details" => Ok(MaskMode::Details),
                        "all" => Ok(MaskMode::All),
                        _ => Err("off, details or all".to_owned()),
                    })?,
                    keep_codes: read.or(MASK_KEEP_CODES, sanitise::Settings::default().keep_codes, |v| {
                        let codes: Vec<String> = v
                            .split(',')
                            .map(|c| c.trim().to_owned())
                            .filter(|c| !c.is_empty())
                            .collect();
                        if codes.iter().all(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
                            Ok(codes)
                        } else {
                            Err("a comma-separated list of error codes such as BAD_USER_INPUT,FORBIDDEN".to_owned())
                        }
                    })?,
                },
                max_bytes: read.or(SANITISE_MAX_BYTES, 8 << 20, parse_size)?,
            },
            clients: ClientConfig {
                key_header: read.optional(CLIENT_KEY_HEADER, |v| {
                    parse_header_names(v).and_then(|names| match names.as_slice() {
                        [one] => http::HeaderName::from_bytes(one.as_bytes())
                            .map_err(|_| "one HTTP header name such as x-api-key".to_owned()),
                        _ => Err("one HTTP header name such as x-api-key".to_owned()),
                    })
                })?,
                trusted_proxies: read.or(TRUSTED_PROXIES, TrustedProxies::default(), |v| {
                    v.parse::<TrustedProxies>().map_err(|e| {
                        format!("a comma-separated list of IP addresses or CIDR blocks such as 10.0.0.0/8,::1 ({e})")
                    })
                })?,
                rate_limit: read.optional(RATE_LIMIT, |v| v.parse::<Rate>().map_err(|e| e.to_string()))?,
                cost_budget: read.optional(COST_BUDGET, |v| v.parse::<Rate>().map_err(|e| e.to_string()))?,
                rate_limit_headers: read.or(RATE_LIMIT_HEADERS, true, parse_switch)?,
                max_clients: read.or(RATE_LIMIT_MAX_CLIENTS, 100_000, |v| parse_count(v).map(|n| n as usize))?,
                probe_limit: read.or(PROBE_LIMIT, Some(10), parse_small_limit)?,
                probe_cooldown: read.or(PROBE_COOLDOWN, Duration::from_secs(60), parse_duration)?,
            },
            persisted: read_persisted(&read)?,
            // `off` runs without a schema (also in `demo`, whose default is its own schema).
            schema: match read.optional(SCHEMA, |v| {
                Ok((!v.eq_ignore_ascii_case("off")).then(|| std::path::PathBuf::from(v)))
            })? {
                Some(Some(path)) => Some(SchemaSource::Path(path)),
                Some(None) => None,
                None if profile == Profile::Demo => Some(SchemaSource::Demo),
                None => None,
            },
        })
    }
}

fn read_persisted(read: &Reader<'_>) -> Result<PersistedConfig, ConfigError> {
    let dir = read.optional(PERSISTED_QUERIES_DIR, |v| Ok(std::path::PathBuf::from(v)))?;
    let trusted_client_header = read.optional(TRUSTED_CLIENT_HEADER, |v| {
        parse_header_names(v).and_then(|names| match names.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err("one HTTP header name such as x-firewall-key".to_owned()),
        })
    })?;
    let trusted_client_key_hashes = read.or(TRUSTED_CLIENT_KEY_HASHES, Vec::new(), |v| {
        v.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(h.strip_prefix("sha256:").unwrap_or(h), &mut hash)
                    .map(|()| hash)
                    .map_err(|_| "a comma-separated list of SHA-256 hashes (64 hex digits) of the accepted keys, e.g. from `printf %s KEY | sha256sum`".to_owned())
            })
            .collect()
    })?;
    if trusted_client_header.is_some() == trusted_client_key_hashes.is_empty() {
        return Err(ConfigError::Missing {
            name: if trusted_client_header.is_some() {
                TRUSTED_CLIENT_KEY_HASHES
            } else {
                TRUSTED_CLIENT_HEADER
            }
            .to_owned(),
            accepted: format!(
                "{TRUSTED_CLIENT_HEADER} and {TRUSTED_CLIENT_KEY_HASHES} are set together"
            ),
        });
    }
    Ok(PersistedConfig {
        mode: read.or(PERSISTED_QUERIES, persisted::Mode::Off, |v| match v {
            "off" => Ok(persisted::Mode::Off),
            "apq" => Ok(persisted::Mode::Apq),
            "audit" => Ok(persisted::Mode::Audit),
            "allowlist" => Ok(persisted::Mode::Allowlist),
            _ => Err("off, apq, audit or allowlist".to_owned()),
        })?,
        dir_required: dir.is_some(),
        dir: dir.unwrap_or_else(|| std::path::PathBuf::from("persisted-queries")),
        require_id: read.or(PERSISTED_REQUIRE_ID, false, parse_switch)?,
        skip_limits: read.or(PERSISTED_SKIP_LIMITS, true, parse_switch)?,
        limit_violations_fatal: read.or(PERSISTED_LIMIT_VIOLATIONS, true, |v| match v {
            "error" => Ok(true),
            "warn" => Ok(false),
            _ => Err("error or warn".to_owned()),
        })?,
        pass_through: read.or(PERSISTED_PASS_THROUGH, false, parse_switch)?,
        reload_interval: read.or(
            PERSISTED_RELOAD_INTERVAL,
            Some(Duration::from_secs(5)),
            |v| {
                if v.eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    parse_duration(v).map(Some)
                }
            },
        )?,
        apq_cache_bytes: read.or(APQ_CACHE_BYTES, 16 << 20, |v| {
            parse_size(v).map(|n| n as u64)
        })?,
        apq_ttl: read.or(APQ_TTL, Duration::from_secs(24 * 3600), parse_duration)?,
        trusted_client_header,
        trusted_client_key_hashes,
        trusted_client_skip_limits: read.or(TRUSTED_CLIENT_SKIP_LIMITS, false, parse_switch)?,
    })
}

fn read_limits(read: &Reader<'_>) -> Result<policy::Limits, ConfigError> {
    let defaults = policy::Limits::default();
    let count = |name: &str, default: Option<u32>| {
        read.or(name, default, |v| {
            parse_limit(v).and_then(|n| {
                n.map(u32::try_from)
                    .transpose()
                    .map_err(|_| "a limit below 2^32 or off".to_owned())
            })
        })
    };
    let wide = |name: &str, default: Option<u64>| read.or(name, default, parse_limit);
    Ok(policy::Limits {
        tokens: count(MAX_TOKENS, defaults.tokens)?,
        depth: count(MAX_DEPTH, defaults.depth)?,
        aliases: count(MAX_ALIASES, defaults.aliases)?,
        root_fields: count(MAX_ROOT_FIELDS, defaults.root_fields)?,
        directives: count(MAX_DIRECTIVES, defaults.directives)?,
        fields: count(MAX_FIELDS, defaults.fields)?,
        cost: wide(MAX_COST, defaults.cost)?,
        batch_cost: wide(MAX_BATCH_COST, defaults.batch_cost)?,
        block_introspection: read.or(INTROSPECTION, defaults.block_introspection, |v| match v {
            "block" => Ok(true),
            "allow" => Ok(false),
            _ => Err("block or allow".to_owned()),
        })?,
        schema_validation: defaults.schema_validation,
        variables: policy::VariableLimits {
            count: count(MAX_VARIABLES, defaults.variables.count)?,
            depth: count(MAX_VARIABLE_DEPTH, defaults.variables.depth)?,
            longest_list: count(MAX_VARIABLE_LIST, defaults.variables.longest_list)?,
            bytes: read.or(MAX_VARIABLES_BYTES, defaults.variables.bytes, |v| {
                if v.eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    parse_size(v).map(|n| Some(n as u64))
                }
            })?,
        },
    })
}

fn report_unknown(source: &dyn Source) -> Result<(), ConfigError> {
    let mut unknown: Vec<String> = source
        .names()
        .into_iter()
        .filter(|name| name.starts_with(PREFIX) && !KNOWN.contains(&name.as_str()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(ConfigError::Unknown { names: unknown })
}

/// Reads one variable through one parser; the parser's error text is "what is accepted".
struct Reader<'a> {
    source: &'a dyn Source,
}

impl Reader<'_> {
    fn optional<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.source.get(name)? else {
            return Ok(None);
        };
        let value = raw.trim();
        // An empty variable means "unset", as in most shells' `FOO= cmd` idiom.
        if value.is_empty() {
            return Ok(None);
        }
        parse(value)
            .map(Some)
            .map_err(|accepted| ConfigError::Invalid {
                name: name.to_owned(),
                value: raw.clone(),
                accepted,
            })
    }

    fn or<T>(
        &self,
        name: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.optional(name, parse)?.unwrap_or(default))
    }
}

mod parse;
mod report;

use parse::*;
pub use parse::{parse_duration, parse_limit, parse_size, parse_switch};
pub use report::{describe, insecure_choices};

#[cfg(test)]
mod tests;
