//! graphql-firewall: a security firewall for GraphQL APIs.
//!
//! It sits in front of any GraphQL-over-HTTP server and refuses what is not allowed before it costs
//! the backend anything. The modules read like the request pipeline of DESIGN.md: [`config`] is
//! read once; [`http`] decodes, guards against CSRF, admits by client budget ([`ratelimit`]),
//! resolves [`persisted`] queries, measures with [`analysis`] and judges with [`policy`], forwards
//! through [`upstream`], hardens the answer with [`sanitise`] and records into [`metrics`];
//! [`allowlist`] loads and reloads the manifests; [`demo`] is the embedded backend used by
//! `graphql-firewall demo` and by the tests.

#![forbid(unsafe_code)]
#![deny(clippy::dbg_macro, clippy::print_stdout, clippy::print_stderr)]

pub mod allowlist;
pub mod analysis;
pub mod config;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod persisted;
pub mod policy;
pub mod ratelimit;
pub mod sanitise;
mod server;
pub mod upstream;

pub use server::{serve, serve_workers};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};

use crate::config::Config;
use crate::http::reject::Render;

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the upstream HTTP client could not be created: {0}")]
    Client(#[from] upstream::ClientError),
    #[error("{} ({path}): {reason}", config::SCHEMA)]
    Schema { path: String, reason: String },
    #[error("rate limits: {0}")]
    Rate(#[from] ratelimit::RateError),
    #[error("persisted queries: {0}")]
    Persisted(#[from] persisted::StoreError),
}

/// Builds the firewall's router from a validated configuration; `main` and every test use it.
pub fn build_app(config: &Config) -> Result<Router, BuildError> {
    Ok(build(config)?.traffic)
}

/// The firewall's two faces: the traffic router and the admin router (`/metrics`), which is
/// served on its own listener so that it never faces the internet.
#[derive(Debug)]
pub struct App {
    pub traffic: Router,
    pub admin: Router,
    /// Persisted documents loaded at start-up.
    pub manifest_operations: usize,
}

/// Builds both routers; see [`build_app`].
pub fn build(config: &Config) -> Result<App, BuildError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let analysis = analysis_settings(config)?;
    let manifests = manifest_source(config, &analysis);
    let loaded = manifests.load()?;
    allowlist::log_warnings(&loaded.warnings);
    let manifest_operations = loaded.manifest.len();
    metrics.manifest_loaded(manifest_operations, true);
    let registry = Arc::new(persisted::Registry::new(loaded.manifest));
    let upstream = upstream::Upstream::new(&upstream::Settings {
        url: config.upstream.url.clone(),
        timeout: config.upstream.timeout,
        connect_timeout: config.upstream.connect_timeout,
    })?;
    let firewall = Arc::new(http::Firewall {
        settings: http::Settings {
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch,
            csrf_required_headers: config
                .csrf
                .enabled
                .then(|| config.csrf.required_headers.clone()),
            ready_timeout: config.ready_timeout,
            render: Render {
                reject_status: config.reject_status,
                expose_limits: config.expose_limits,
            },
        },
        budgets: http::budget::Budgets::new(
            config::ClientConfig {
                // Probing is only recognised with a schema to check names against.
                probe_limit: config
                    .clients
                    .probe_limit
                    .filter(|_| config.schema.is_some()),
                ..config.clients.clone()
            },
            config.modes.clone(),
            metrics.clone(),
        )?,
        inspector: http::inspect::Inspector::new(
            http::inspect::Settings {
                analysis,
                limits: config.limits.clone(),
                modes: config.modes.clone(),
                cache_bytes: config.analysis_cache_bytes,
                persisted: http::inspect::PersistedSettings {
                    mode: config.persisted.mode,
                    require_id: config.persisted.require_id,
                    skip_limits: config.persisted.skip_limits,
                    trusted_client_skip_limits: config.persisted.trusted_client_skip_limits,
                    apq_cache_bytes: config.persisted.apq_cache_bytes,
                    apq_ttl: config.persisted.apq_ttl,
                },
            },
            registry.clone(),
            metrics.clone(),
        ),
        trusted: config
            .persisted
            .trusted_client_header
            .as_deref()
            .and_then(|name| axum::http::HeaderName::from_bytes(name.as_bytes()).ok())
            .map(|header| {
                http::trusted::TrustedClients::new(
                    header,
                    config.persisted.trusted_client_key_hashes.clone(),
                )
            }),
        pass_through: config.persisted.pass_through,
        metrics: metrics.clone(),
        sampler: http::audit::Sampler::new(config.log_sample),
        upstream,
        harden: http::harden::Settings {
            rules: config.sanitise.rules.clone(),
            max_bytes: config.sanitise.max_bytes,
        },
    });
    spawn_housekeeping(&firewall);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        allowlist::spawn_watcher(
            &runtime,
            manifests,
            Arc::downgrade(&registry),
            metrics.clone(),
            config.persisted.reload_interval,
        );
    }
    let admin = Router::new()
        .route("/metrics", get(http::metrics))
        .with_state(firewall.clone());
    let traffic = Router::new()
        .route(&config.path, any(http::graphql))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .fallback(http::not_found)
        .with_state(firewall);
    Ok(App {
        traffic,
        admin,
        manifest_operations,
    })
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

/// Where the allowlist comes from and how its documents are judged.
pub fn manifest_source(config: &Config, analysis: &analysis::Settings) -> allowlist::Source {
    allowlist::Source {
        dir: config.persisted.dir.clone(),
        dir_required: config.persisted.dir_required,
        analysis: analysis.clone(),
        limits: config.limits.clone(),
        modes: config.modes.clone(),
        limit_violations_fatal: config.persisted.limit_violations_fatal,
    }
}

/// The analyser's settings: parse-time limits are passed only for enforced rules (a monitored rule
/// must measure, not stop the parse), plus cost weights and the schema.
pub fn analysis_settings(config: &Config) -> Result<analysis::Settings, BuildError> {
    let enforced = |rule: policy::Rule| config.modes.of(rule) == policy::Mode::Enforce;
    let schema = match &config.schema {
        None => None,
        Some(config::SchemaSource::Demo) => Some(Arc::new(
            analysis::Schema::from_sdl(demo::SDL).map_err(|e| BuildError::Schema {
                path: "built-in demo schema".to_owned(),
                reason: e.to_string(),
            })?,
        )),
        Some(config::SchemaSource::Path(path)) => Some(Arc::new(load_schema(path)?)),
    };
    Ok(analysis::Settings {
        limits: analysis::Limits {
            max_tokens: config
                .limits
                .tokens
                .filter(|_| enforced(policy::Rule::Tokens)),
            max_depth: config
                .limits
                .depth
                .filter(|_| enforced(policy::Rule::Depth)),
            max_value_nesting: config.max_value_nesting,
        },
        cost: analysis::CostSettings {
            default_list_size: config.cost.default_list_size,
            // TODO(#12): from MAX_LIST_SIZE once the config has it.
            max_list_size: analysis::CostSettings::default().max_list_size,
            slicing_arguments: config.cost.slicing_arguments.clone(),
            object_weight: config.cost.object_weight,
            scalar_weight: config.cost.scalar_weight,
            mutation_weight: config.cost.mutation_weight,
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
    let sdl = if path.is_dir() {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|ext| ext == "graphql" || ext == "graphqls" || ext == "gql")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(fail("no .graphql files in the directory".to_owned()));
        }
        let mut sdl = String::new();
        for file in files {
            sdl.push_str(
                &std::fs::read_to_string(&file)
                    .map_err(|e| fail(format!("{}: {e}", file.display())))?,
            );
            sdl.push('\n');
        }
        sdl
    } else {
        std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?
    };
    analysis::Schema::from_sdl(&sdl).map_err(|e| fail(e.to_string()))
}
