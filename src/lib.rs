//! graphql-firewall: a security firewall for GraphQL APIs.
//!
//! It sits in front of any GraphQL-over-HTTP server and refuses what is not allowed before it costs
//! the backend anything. The modules read like the request pipeline:
//!
//! - [`config`] reads every variable once, into plain values;
//! - [`http`] is the edge: the guard at the door, the client's address, the body,
//!   GraphQL-over-HTTP decoding, forwarding, hardening the answer, the audit record, and the one
//!   place where refusals are rendered;
//! - [`admission`] spends each client's request and cost budgets (over [`ratelimit`]);
//! - [`inspect`] is the decision without HTTP types: [`persisted`] resolves ids and enforces the
//!   allowlist, [`analysis`] measures documents, [`policy`] judges them;
//! - [`upstream`] forwards, [`sanitise`] cleans the answers, [`metrics`] counts.
//!
//! [`build`] wires them from a [`Config`]: each module gets its own settings, built here from
//! the configuration's plain values, and every layer is applied here, so what the tests serve is
//! what the binary serves ([`serve`], [`serve_workers`]). [`demo`] is the embedded backend used by
//! `graphql-firewall demo` and by the tests.

#![forbid(unsafe_code)]
#![deny(clippy::dbg_macro, clippy::print_stdout, clippy::print_stderr)]

pub mod admission;
pub mod analysis;
pub mod config;
pub mod connection_slot;
pub mod demo;
pub mod files;
pub mod http;
pub mod identity;
pub mod inspect;
pub mod json_scan;
pub mod metrics;
pub mod net;
pub mod persisted;
pub mod policy;
pub mod ratelimit;
pub mod rules;
pub mod sanitise;
mod server;
pub mod state;
pub mod upstream;

pub use server::{ConnectionLimits, Traffic, serve, serve_workers};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{any, get};
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::files::Depth;
use crate::http::reject::{Render, RuleStatus};

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the upstream HTTP client could not be created: {0}")]
    Upstream(#[from] upstream::UrlError),
    #[error("{} ({path}): {reason}", config::SCHEMA)]
    Schema { path: String, reason: String },
    #[error("persisted queries: {0}")]
    Persisted(#[from] persisted::StoreError),
    #[error("shared state: {0}")]
    State(#[from] state::StateError),
    #[error(
        "STATE=redis: the app must be built inside a Tokio runtime (its Redis client runs there)"
    )]
    NoRuntime,
    #[error("GRAPHQL_FIREWALL_AUTH_JWKS_URLS: {0}")]
    Jwks(#[from] identity::jwks::JwksError),
    #[error("GRAPHQL_FIREWALL_API_KEYS_FILE: {0}")]
    ApiKeys(#[from] identity::api_keys::ApiKeysFileError),
    #[error("{name}: {reason}")]
    Edge { name: &'static str, reason: String },
}

/// The firewall's two faces: the traffic router (with its connection limits) and the admin router
/// (`/metrics`), which is served on its own listener so that it never faces the internet.
#[derive(Debug)]
pub struct App {
    pub traffic: Traffic,
    pub admin: Router,
    /// Persisted documents loaded at start-up.
    pub manifest_operations: usize,
    /// `STATE=redis`: the shared state, for the commands to verify before serving.
    pub redis: Option<Arc<state::RedisState>>,
}

/// Builds the firewall from a validated configuration; the binary and every test use it.
pub fn build(config: &Config) -> Result<App, BuildError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let analysis = analysis_settings(config)?;
    let manifests = manifest_source(config, &analysis);
    let loaded = manifests.load()?;
    persisted::load::log_warnings(&loaded.warnings);
    let manifest_operations = loaded.manifest.len();
    metrics.manifest_loaded(manifest_operations, true);
    let registry = Arc::new(persisted::Registry::new(loaded.manifest));
    let persisted = &config.persisted;
    let settings = http_settings(config);
    let edge = Arc::new(edge(config, settings.render, metrics.clone())?);
    let firewall = Arc::new(http::Firewall {
        settings,
        authenticator: authenticator(&config.identity)?,
        budgets: budgets(config, &metrics)?,
        inspector: inspect::Inspector::new(
            inspect::Settings {
                analysis,
                profiles: policy::LimitProfiles::new(
                    config.limits.limits.clone(),
                    relax(persisted.skip_limits),
                    relax(persisted.client_keys_skip_limits),
                ),
                modes: config.limits.modes.clone(),
                cache_bytes: config.limits.analysis_cache_bytes,
                resolver: persisted::Resolver {
                    mode: persisted_mode(persisted.mode),
                    require_id: persisted.require_id,
                    apq: persisted::ApqStore::new(persisted.apq_cache_bytes, persisted.apq_ttl),
                },
            },
            registry.clone(),
            metrics.clone(),
        ),
        upstream: upstream::Upstream::new(&upstream::Settings {
            url: config.server.upstream.url.clone(),
            timeout: config.server.upstream.timeout,
            connect_timeout: config.server.upstream.connect_timeout,
            max_concurrent: config.server.max_concurrent_upstream,
            queue_timeout: config.server.queue_timeout,
        })?,
        metrics: metrics.clone(),
        sampler: http::audit::Sampler::new(config.server.log_sample),
        ws_operations: http::ws::caps::ClientOperations::new(
            config.requests.websocket.max_subscriptions_per_client,
        ),
        readiness: http::readiness::Readiness::default(),
    });
    let redis = firewall
        .budgets
        .shared_state()
        .map(|shared| shared.redis.clone());
    spawn_housekeeping(&firewall);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        persisted::load::spawn_watcher(
            &runtime,
            manifests,
            Arc::downgrade(&registry),
            metrics.clone(),
            persisted.reload_interval,
        );
    }
    let admin = Router::new()
        .route("/metrics", get(http::metrics))
        .with_state(firewall.clone())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(config.edge.admin_allow_ips.clone()),
            http::edge::admin_guard,
        ));
    let router = edge_layers(
        Router::new()
            .route(&config.server.path, any(http::graphql))
            .route("/healthz", get(http::healthz))
            .route("/readyz", get(http::readyz))
            .fallback(http::not_found)
            .with_state(firewall)
            .layer(http::edge::EdgeLayer(edge)),
    );
    let server = &config.server;
    let traffic = Traffic {
        router,
        limits: ConnectionLimits {
            header_read_timeout: server.header_read_timeout,
            idle_timeout: server.idle_timeout,
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            exempt: config.clients.trusted_proxies.clone(),
        },
        metrics,
    };
    Ok(App {
        traffic,
        admin,
        manifest_operations,
        redis,
    })
}

/// The layers around every traffic route. They wrap from the inside out: the panic guard sits
/// inside the request-id layer, so a panic becomes a GraphQL-shaped 500 that still carries (and is
/// logged with) the request id, and the process keeps serving every other request.
pub fn edge_layers(router: Router) -> Router {
    router
        .layer(CatchPanicLayer::custom(http::request_id::caught_panic))
        .layer(http::request_id::RequestIdLayer)
}

/// Periodically drops idle clients' rate-limit state, for as long as the app lives.
fn spawn_housekeeping(firewall: &Arc<http::Firewall>) {
    // Without a runtime (a router built outside tokio) there is nothing to schedule on; the
    // budgets' hard cap still bounds memory.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(firewall);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(firewall) = weak.upgrade() else {
                return;
            };
            firewall.budgets.shrink();
        }
    });
}

// === Each module's settings, from the configuration ===

/// The traffic port's edge: IP lists, CORS, security headers.
fn edge(
    config: &Config,
    render: Render,
    metrics: Arc<metrics::Metrics>,
) -> Result<http::edge::Edge, BuildError> {
    let edge = &config.edge;
    let fail = |name: &'static str| {
        move |error: &dyn std::fmt::Display| BuildError::Edge {
            name,
            reason: error.to_string(),
        }
    };
    let cors = match &edge.cors_allow_origins {
        None => None,
        Some(origins) => {
            let settings = http::cors::CorsSettings {
                origins: origins
                    .parse()
                    .map_err(|e| fail(config::CORS_ALLOW_ORIGINS)(&e))?,
                credentials: edge.cors_allow_credentials,
                allow_headers: http::cors::parse_header_list(&edge.cors_allow_headers)
                    .map_err(|e| fail(config::CORS_ALLOW_HEADERS)(&e))?,
                expose_headers: http::cors::parse_header_list(&edge.cors_expose_headers)
                    .map_err(|e| fail(config::CORS_EXPOSE_HEADERS)(&e))?,
                max_age: Some(edge.cors_max_age),
            };
            Some(
                http::cors::Cors::new(settings)
                    .map_err(|e| fail(config::CORS_ALLOW_CREDENTIALS)(&e))?,
            )
        }
    };
    let hsts =
        http::security_headers::parse_hsts(&edge.hsts).map_err(|e| fail(config::HSTS)(&e))?;
    Ok(http::edge::Edge {
        cors,
        allow_ips: edge.allow_ips.clone(),
        deny_ips: edge.deny_ips.clone(),
        trusted_proxies: config.clients.trusted_proxies.clone(),
        headers: http::security_headers::SecurityHeaders::new(hsts),
        render,
        metrics,
    })
}

/// How long one JWKS fetch may take (connect and answer).
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The credential sources: keys loaded now (a bad file is a configuration error), refreshed and
/// reloaded in the background when there is a runtime to do it on (`check` has none).
fn authenticator(config: &config::IdentityConfig) -> Result<identity::Authenticator, BuildError> {
    let runtime = tokio::runtime::Handle::try_current().ok();
    let tiers = Arc::new(config.tiers.clone());
    let tokens = match &config.jwt {
        None => None,
        Some(jwt) => {
            let jwks = Arc::new(identity::jwks::Jwks::new(identity::jwks::JwksSettings {
                urls: jwt.jwks_urls.clone(),
                algorithms: jwt.algorithms.clone(),
                refresh: jwt.refresh,
                unknown_kid_interval: jwt.unknown_kid_interval,
                fetch_timeout: JWKS_FETCH_TIMEOUT,
            })?);
            if let Some(runtime) = &runtime {
                let _entered = runtime.enter();
                identity::jwks::Jwks::spawn_refresher(&jwks);
            }
            let verifier = identity::JwtVerifier::new(
                identity::jwt::JwtSettings {
                    issuers: jwt.issuers.clone(),
                    audiences: jwt.audiences.clone(),
                    leeway: jwt.leeway,
                    client_claim: jwt.client_claim.clone(),
                    tier_claim: jwt.tier_claim.clone(),
                    cache_entries: jwt.cache_entries,
                },
                &jwt.algorithms,
                jwks,
                tiers.clone(),
            );
            Some(identity::authenticate::TokenCheck {
                source: jwt.source.clone(),
                verifier: Arc::new(verifier),
            })
        }
    };
    let keys = match &config.api_keys {
        None => None,
        Some(api_keys) => {
            let keys = Arc::new(identity::ApiKeys::load(api_keys.file.clone(), tiers)?);
            if let Some(runtime) = &runtime {
                let _entered = runtime.enter();
                identity::ApiKeys::spawn_watcher(&keys, api_keys.reload_interval);
            }
            Some(identity::authenticate::KeyCheck {
                source: identity::api_keys::ApiKeySource::new(api_keys.header.clone()),
                keys,
            })
        }
    };
    Ok(identity::Authenticator {
        mode: config.mode,
        tokens,
        keys,
    })
}

/// The HTTP edge's settings.
fn http_settings(config: &Config) -> http::Settings {
    let hardening = &config.hardening;
    http::Settings {
        guard: http::guard::Guard {
            csrf_required_headers: config.requests.csrf_required_headers.clone(),
        },
        max_body_bytes: config.requests.max_body_bytes,
        max_batch: config.requests.max_batch,
        trusted_proxies: config.clients.trusted_proxies.clone(),
        client_key_header: config.clients.key_header.clone(),
        client_keys: config
            .persisted
            .client_keys
            .as_ref()
            .map(|keys| persisted::ClientKeys::new(keys.header.clone(), keys.hashes.clone())),
        pass_through: config.persisted.pass_through,
        log_subject: match config.identity.log_subject {
            config::LogSubject::Hash => http::audit::SubjectLog::Hash,
            config::LogSubject::Clear => http::audit::SubjectLog::Clear,
        },
        rate_limit_headers: config.clients.rate_limit_headers,
        ready_timeout: config.server.ready_timeout,
        body_read_timeout: config.server.body_read_timeout,
        render: Render {
            rule_status: match config.limits.reject_status {
                config::RejectStatus::BadRequest => RuleStatus::Fixed(StatusCode::BAD_REQUEST),
                config::RejectStatus::UnprocessableEntity => {
                    RuleStatus::Fixed(StatusCode::UNPROCESSABLE_ENTITY)
                }
                config::RejectStatus::Auto => RuleStatus::ByAccept,
            },
            expose_limits: config.limits.expose_limits,
        },
        harden: Arc::new(http::harden::Settings {
            rules: Arc::new(sanitise::Settings {
                block_suggestions: hardening.block_suggestions,
                mask: match hardening.mask {
                    config::MaskErrors::Off => sanitise::MaskMode::Off,
                    config::MaskErrors::Details => sanitise::MaskMode::Details,
                    config::MaskErrors::All => sanitise::MaskMode::All,
                },
                keep_codes: hardening.keep_codes.clone(),
            }),
            max_response_bytes: hardening.max_response_bytes,
            limits: sanitise::stream::StreamLimits {
                errors_cap: hardening.sanitise_max_bytes,
                max_depth: MAX_RESPONSE_DEPTH,
                on_overflow: match hardening.overflow {
                    config::SanitiseOverflow::Mask => sanitise::stream::OnOverflow::Mask,
                    config::SanitiseOverflow::Refuse => sanitise::stream::OnOverflow::Refuse,
                },
            },
            body_timeout: config.server.upstream.timeout,
        }),
        ws: websocket_settings(config),
    }
}

fn websocket_settings(config: &Config) -> http::ws::Settings {
    let websocket = &config.requests.websocket;
    let listed = &websocket.allowed_origins;
    // The CSRF guard's reasoning covers WebSocket upgrades: off with it, or with `*`.
    let origins =
        if config.requests.csrf_required_headers.is_none() || listed.iter().any(|o| o == "*") {
            http::ws::relay::Origins::Any
        } else {
            http::ws::relay::Origins::SameOr(listed.clone())
        };
    http::ws::Settings {
        session: http::ws::protocol::Settings {
            max_message_bytes: websocket.max_message_bytes,
            max_subscriptions: websocket.max_subscriptions,
            init_timeout: websocket.init_timeout,
            keepalive: websocket.keepalive,
            idle_timeout: websocket.idle_timeout,
        },
        origins,
        write_timeout: websocket.write_timeout,
    }
}

/// The deepest nesting of an upstream answer that is followed (deeper: the answer is refused or cut
/// off). GraphQL results nest as deep as the operation, which `MAX_DEPTH` bounds far below this.
const MAX_RESPONSE_DEPTH: usize = 512;

/// The budgets, on Redis with `STATE=redis`.
fn budgets(
    config: &Config,
    metrics: &Arc<metrics::Metrics>,
) -> Result<admission::Budgets, BuildError> {
    let settings = budget_settings(config);
    let budgets = admission::Budgets::new(&settings, config.limits.modes.clone(), metrics.clone());
    let Some(redis) = &config.state.redis else {
        return Ok(budgets);
    };
    let redis_settings = state::RedisSettings {
        url: redis.url.clone(),
        timeout: redis.timeout,
        key_prefix: redis.key_prefix.clone(),
        max_refused_clients: config.clients.max_clients as u64,
        apq_ttl: config.persisted.apq_ttl,
    };
    // Connects on first use; `REDIS_REQUIRED_TO_START` is checked by `serve`, which can wait.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(BuildError::NoRuntime);
    }
    let shared = state::RedisState::connect_lazy(&redis_settings, settings.shared_rules())?;
    let failure_mode = match redis.failure_mode {
        config::RedisFailureMode::Local => state::FailureMode::Local,
        config::RedisFailureMode::Open => state::FailureMode::Open,
        config::RedisFailureMode::Closed => state::FailureMode::Closed,
    };
    Ok(budgets.shared(admission::Shared::new(
        Arc::new(shared),
        failure_mode,
        metrics.clone(),
    )))
}

/// The budgets' settings.
fn budget_settings(config: &Config) -> admission::Settings {
    let clients = &config.clients;
    admission::Settings {
        request_rate: clients.rate_limit,
        cost_budget: clients.cost_budget,
        max_clients: clients.max_clients,
        // Probing is only recognised with a schema to check names against.
        probe_limit: clients
            .probe_limit
            .filter(|_| config.limits.schema.is_some()),
        probe_cooldown: clients.probe_cooldown,
        settle_with_actual_cost: clients.cost_budget_mode == config::CostBudgetMode::Actual,
        verification_rate: config
            .identity
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.verify_rate.as_ref())
            .map(ratelimit::quota),
        tiers: config
            .identity
            .tiers
            .iter()
            .map(|tier| {
                let resolve = |budget: identity::tiers::TierBudget,
                               global: &Option<rules::Rate>| {
                    match budget {
                        identity::tiers::TierBudget::Inherit => *global,
                        identity::tiers::TierBudget::Unlimited => None,
                        identity::tiers::TierBudget::Limited(rate) => Some(rate),
                    }
                };
                admission::TierBudgets {
                    name: tier.name.clone(),
                    request_rate: resolve(tier.rate, &clients.rate_limit),
                    cost_budget: resolve(tier.cost, &clients.cost_budget),
                }
            })
            .collect(),
    }
}

fn relax(skip: config::SkipLimits) -> policy::Relax {
    match skip {
        config::SkipLimits::Off => policy::Relax::No,
        config::SkipLimits::Text => policy::Relax::TextLimits,
        config::SkipLimits::All => policy::Relax::TextLimitsAndCost,
    }
}

fn persisted_mode(mode: config::PersistedQueries) -> persisted::Mode {
    match mode {
        config::PersistedQueries::Off => persisted::Mode::Off,
        config::PersistedQueries::Apq => persisted::Mode::Apq,
        config::PersistedQueries::Audit => persisted::Mode::Audit,
        config::PersistedQueries::Allowlist => persisted::Mode::Allowlist,
    }
}

/// Where the allowlist comes from and how its documents are judged.
pub fn manifest_source(config: &Config, analysis: &analysis::Settings) -> persisted::load::Source {
    let persisted = &config.persisted;
    persisted::load::Source {
        manifests: match &persisted.manifests {
            config::ManifestSource::None => persisted::load::Manifests::None,
            config::ManifestSource::Demo => persisted::load::Manifests::Embedded {
                name: "built-in demo manifest",
                text: demo::MANIFEST,
            },
            config::ManifestSource::Dir(dir) => persisted::load::Manifests::Dir(dir.clone()),
        },
        analysis: analysis.clone(),
        limits: config.limits.limits.clone(),
        modes: config.limits.modes.clone(),
        on_violation: match persisted.limit_violations {
            config::LimitViolations::Error => persisted::load::OnViolation::Error,
            config::LimitViolations::Warn => persisted::load::OnViolation::Warn,
        },
    }
}

/// The analyser's settings: parse-time limits are passed only for enforced rules (a monitored rule
/// must measure, not stop the parse), plus cost weights and the schema.
pub fn analysis_settings(config: &Config) -> Result<analysis::Settings, BuildError> {
    let limits = &config.limits;
    let enforced = |rule: rules::Rule| limits.modes.of(rule) == rules::Mode::Enforce;
    let mut schema = match &limits.schema {
        None => None,
        Some(config::SchemaSource::Demo) => Some(analysis::Schema::from_sdl(demo::SDL).map_err(
            |e| BuildError::Schema {
                path: "built-in demo schema".to_owned(),
                reason: e.to_string(),
            },
        )?),
        Some(config::SchemaSource::Path(path)) => Some(load_schema(path)?),
    };
    if let Some(schema) = &mut schema {
        schema
            .deny(&limits.deny_fields)
            .map_err(|e| BuildError::Schema {
                path: config::DENY_FIELDS.to_owned(),
                reason: e.to_string(),
            })?;
    }
    let schema = schema.map(Arc::new);
    let cost = &limits.cost_settings;
    Ok(analysis::Settings {
        limits: analysis::Limits {
            max_tokens: limits
                .limits
                .tokens
                .filter(|_| enforced(rules::Rule::Tokens)),
            max_depth: limits.limits.depth.filter(|_| enforced(rules::Rule::Depth)),
            max_value_nesting: limits.max_value_nesting,
        },
        cost: analysis::CostSettings {
            default_list_size: cost.default_list_size,
            max_list_size: cost.max_list_size,
            slicing_arguments: cost.slicing_arguments.clone(),
            object_weight: cost.object_weight,
            scalar_weight: cost.scalar_weight,
            mutation_weight: cost.mutation_weight,
        },
        schema,
    })
}

/// Reads an SDL file, or every `.graphql`/`.graphqls`/`.gql` file of a directory (sorted, concatenated).
fn load_schema(path: &std::path::Path) -> Result<analysis::Schema, BuildError> {
    let fail = |reason: String| BuildError::Schema {
        path: path.display().to_string(),
        reason,
    };
    let files = if path.is_dir() {
        let files = files::list(path, &["graphql", "graphqls", "gql"], Depth::Shallow)
            .map_err(|e| fail(e.to_string()))?;
        if files.is_empty() {
            return Err(fail("no .graphql files in the directory".to_owned()));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let mut sdl = String::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        sdl.push_str(&text);
        sdl.push('\n');
    }
    analysis::Schema::from_sdl(&sdl).map_err(|e| fail(e.to_string()))
}
