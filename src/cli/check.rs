//! `check`: everything the server would load, loaded; every setting printed; exit 0 only when
//! the firewall would start.

use std::process::ExitCode;

use graphql_firewall::config::{self, Config};

pub fn run(config: &Config) -> ExitCode {
    // Building the app loads and checks everything the server would: schema, manifests, limits.
    let app = match graphql_firewall::build(config) {
        Ok(app) => app,
        Err(error) => return super::config_error("check", error),
    };
    println!("configuration is valid\n");
    let width = config
        .settings
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or_default();
    for setting in &config.settings {
        let value = setting.value.as_deref().unwrap_or("(unset)");
        let marker = if setting.default { "  (default)" } else { "" };
        println!("  {:<width$}  {value}{marker}", setting.name);
    }
    for warning in config::insecure_choices(config) {
        println!("  warning: {warning}");
    }
    if let Some(redis) = &app.redis
        && let Err(error) = verify_redis(redis, config)
    {
        eprintln!("check: {error}");
        return ExitCode::FAILURE;
    }
    println!("\npersisted documents: {}", app.manifest_operations);
    if app.manifest_operations > 0 {
        return super::manifest::check(config, &config.persisted.dir);
    }
    ExitCode::SUCCESS
}

/// `STATE=redis`: Redis answers within `READY_TIMEOUT` and holds the firewall's scripts.
fn verify_redis(
    redis: &graphql_firewall::state::RedisState,
    config: &Config,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime
        .block_on(redis.verify(config.server.ready_timeout))
        .map_err(|error| format!("shared state ({}): {error}", config::REDIS_URL))?;
    println!("\nshared state: Redis answers and holds the scripts");
    Ok(())
}
