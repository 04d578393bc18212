//! `check`: everything the server would load, loaded; every setting printed, for people or (with
//! `--json`) for tools; exit 0 only when the firewall would start.

use std::process::ExitCode;

use graphql_firewall::config::{self, Config, ManifestSource};
use graphql_firewall::persisted::load::OnViolation;
use serde_json::json;

pub fn run(config: &Config, json: bool, offline: bool) -> ExitCode {
    // The shared state's client (`STATE=redis`) lives on a runtime, as when serving.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("graphql-firewall check: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _entered = runtime.enter();
    // Building the app loads and checks everything the server would: schema, manifests, limits.
    let app = match graphql_firewall::build(config) {
        Ok(app) => app,
        Err(error) => return super::config_error("check", error),
    };
    // `STATE=redis`: the shared state must answer, unless only the configuration is checked.
    let redis = app
        .redis
        .as_ref()
        .filter(|_| !offline)
        .map(|redis| verify_redis(&runtime, redis, config));
    if json {
        return print_json(config, app.manifest_operations, redis);
    }
    println!("configuration is valid\n");
    let width = config
        .settings
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or_default();
    for setting in &config.settings {
        let value = setting.value.as_deref().unwrap_or("(unset)");
        let effective = effective(config, setting.name)
            .map(|n| format!(" (= {n})"))
            .unwrap_or_default();
        let marker = if setting.default { "  (default)" } else { "" };
        println!("  {:<width$}  {value}{effective}{marker}", setting.name);
    }
    for warning in config::insecure_choices(config) {
        println!("  warning: {warning}");
    }
    match redis {
        Some(Err(error)) => {
            eprintln!("check: {error}");
            return ExitCode::FAILURE;
        }
        Some(Ok(())) => println!("\nshared state: Redis answers and holds the scripts"),
        None => {}
    }
    println!("\npersisted documents: {}", app.manifest_operations);
    if let ManifestSource::Dir(dir) = &config.persisted.manifests {
        return super::manifest::check(config, dir);
    }
    ExitCode::SUCCESS
}

/// `STATE=redis`: Redis answers within `READY_TIMEOUT` and holds the firewall's scripts.
fn verify_redis(
    runtime: &tokio::runtime::Runtime,
    redis: &graphql_firewall::state::RedisState,
    config: &Config,
) -> Result<(), String> {
    runtime
        .block_on(redis.verify(config.server.ready_timeout))
        .map_err(|error| format!("shared state ({}): {error}", config::REDIS_URL))
}

/// One JSON object: every setting (`value` as written or the default, `null` when unset;
/// `default`), the insecure choices, the persisted documents and the manifest entries that break
/// an enforced limit (accepted with `PERSISTED_LIMIT_VIOLATIONS=warn`; exit 1 when there are any,
/// as in the text form), and Redis's state (`null` without `STATE=redis` or with `--offline`).
fn print_json(
    config: &Config,
    manifest_operations: usize,
    redis: Option<Result<(), String>>,
) -> ExitCode {
    let settings: serde_json::Map<String, serde_json::Value> = config
        .settings
        .iter()
        .map(|s| {
            let value = match effective(config, s.name) {
                Some(n) => json!({ "value": s.value, "default": s.default, "effective": n }),
                None => json!({ "value": s.value, "default": s.default }),
            };
            (s.name.to_owned(), value)
        })
        .collect();
    let problems = match manifest_problems(config) {
        Ok(problems) => problems,
        Err(error) => return super::config_error("check", error),
    };
    let report = json!({
        "valid": true,
        "settings": settings,
        "warnings": config::insecure_choices(config),
        "persisted_documents": manifest_operations,
        "manifest_limit_problems": problems,
        "redis": match &redis {
            None => json!(null),
            Some(Ok(())) => json!("ok"),
            Some(Err(error)) => json!(error),
        },
    });
    println!("{report:#}");
    if problems.is_empty() && !matches!(redis, Some(Err(_))) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn manifest_problems(config: &Config) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let analysis = graphql_firewall::analysis_settings(config)?;
    let mut source = graphql_firewall::manifest_source(config, &analysis);
    source.on_violation = OnViolation::Warn;
    Ok(source.load()?.warnings)
}

/// The number an `auto` setting resolved to on this machine (for the others, the value is what
/// is in force).
fn effective(config: &Config, name: &str) -> Option<usize> {
    match name {
        config::WORKERS => Some(config.server.workers.get()),
        config::MAX_CONNECTIONS => Some(config.server.max_connections),
        _ => None,
    }
}
