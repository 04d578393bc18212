//! `check`: everything the server would load, loaded; every setting printed; exit 0 only when
//! the firewall would start.

use std::process::ExitCode;

use graphql_firewall::config::{self, Config, ManifestSource};

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
    println!("\npersisted documents: {}", app.manifest_operations);
    if let ManifestSource::Dir(dir) = &config.persisted.manifests {
        return super::manifest::check(config, dir);
    }
    ExitCode::SUCCESS
}
