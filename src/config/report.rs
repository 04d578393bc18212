//! What the configuration amounts to, for people: the effective settings (secrets redacted) and a
//! warning for each choice that weakens protection.

use std::collections::BTreeMap;

use super::*;
use crate::policy::Mode;
use crate::sanitise::MaskMode;

/// Effective settings for the start-up banner and `graphql-firewall check`, secrets redacted.
pub fn describe(config: &Config) -> BTreeMap<&'static str, String> {
    let limit = |value: Option<u64>| value.map_or_else(|| "off".to_owned(), |n| n.to_string());
    let small = |value: Option<u32>| limit(value.map(u64::from));
    let switch = |on: bool| if on { "on" } else { "off" }.to_owned();
    let mut upstream = config.upstream.url.clone();
    if upstream.password().is_some() {
        let _ = upstream.set_password(Some("REDACTED"));
    }
    let rules: Vec<String> = config
        .modes
        .overrides
        .iter()
        .map(|(rule, mode)| format!("{}:{}", rule.as_str(), mode_name(*mode)))
        .collect();
    let limits = &config.limits;
    BTreeMap::from([
        ("listen", config.listen.to_string()),
        ("workers", config.workers.to_string()),
        (
            "metrics_listen",
            config
                .metrics_listen
                .map_or_else(|| "off".to_owned(), |a| a.to_string()),
        ),
        ("upstream", upstream.to_string()),
        ("mode", mode_name(config.modes.default).to_owned()),
        ("rule_modes", rules.join(",")),
        ("max_body_bytes", config.max_body_bytes.to_string()),
        ("max_batch", limit(config.max_batch.map(|n| n as u64))),
        ("max_tokens", small(limits.tokens)),
        ("max_depth", small(limits.depth)),
        ("max_aliases", small(limits.aliases)),
        ("max_root_fields", small(limits.root_fields)),
        ("max_directives", small(limits.directives)),
        ("max_fields", small(limits.fields)),
        ("max_cost", limit(limits.cost)),
        ("max_batch_cost", limit(limits.batch_cost)),
        (
            "introspection",
            if limits.block_introspection {
                "block"
            } else {
                "allow"
            }
            .to_owned(),
        ),
        ("csrf", switch(config.csrf.enabled)),
        (
            "block_field_suggestions",
            switch(config.sanitise.rules.block_suggestions),
        ),
        (
            "mask_errors",
            format!("{:?}", config.sanitise.rules.mask).to_lowercase(),
        ),
        (
            "rate_limit",
            config
                .clients
                .rate_limit
                .map_or_else(|| "off".to_owned(), |r| format!("{r:?}")),
        ),
        (
            "cost_budget",
            config
                .clients
                .cost_budget
                .map_or_else(|| "off".to_owned(), |r| format!("{r:?}")),
        ),
        (
            "persisted_queries",
            format!("{:?}", config.persisted.mode).to_lowercase(),
        ),
        (
            "persisted_queries_dir",
            config.persisted.dir.display().to_string(),
        ),
        (
            "trusted_clients",
            config.persisted.trusted_client_header.as_ref().map_or_else(
                || "off".to_owned(),
                |h| {
                    format!(
                        "header {h}, {} key hash(es) (redacted)",
                        config.persisted.trusted_client_key_hashes.len()
                    )
                },
            ),
        ),
        (
            "schema",
            match &config.schema {
                None => "none".to_owned(),
                Some(SchemaSource::Demo) => "built-in demo schema".to_owned(),
                Some(SchemaSource::Path(path)) => path.display().to_string(),
            },
        ),
    ])
}

pub(super) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Monitor => "monitor",
    }
}

/// Settings that weaken protection, for a warning each at start-up.
pub fn insecure_choices(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let limits = &config.limits;
    if !limits.block_introspection {
        warnings.push(format!(
            "{INTROSPECTION}=allow: anyone can read the whole schema"
        ));
    }
    if !config.sanitise.rules.block_suggestions {
        warnings.push(format!(
            "{BLOCK_FIELD_SUGGESTIONS}=off: \"Did you mean …?\" leaks field names"
        ));
    }
    if config.sanitise.rules.mask == MaskMode::Off {
        warnings.push(format!(
            "{MASK_ERRORS}=off: upstream stack traces reach clients"
        ));
    }
    if config.modes.default == Mode::Monitor {
        warnings.push(format!(
            "{MODE}=monitor: violations are logged, not refused"
        ));
    }
    for (rule, mode) in &config.modes.overrides {
        if *mode == Mode::Monitor {
            warnings.push(format!("{RULE_MODES}: {} is only monitored", rule.as_str()));
        }
    }
    let off: Vec<&str> = [
        (MAX_TOKENS, limits.tokens.is_none()),
        (MAX_DEPTH, limits.depth.is_none()),
        (MAX_ALIASES, limits.aliases.is_none()),
        (MAX_ROOT_FIELDS, limits.root_fields.is_none()),
        (MAX_DIRECTIVES, limits.directives.is_none()),
        (MAX_FIELDS, limits.fields.is_none()),
        (MAX_COST, limits.cost.is_none()),
        (MAX_BATCH, config.max_batch.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, is_off)| is_off.then_some(name))
    .collect();
    if !off.is_empty() {
        warnings.push(format!("limits switched off: {}", off.join(", ")));
    }
    if !config.csrf.enabled {
        warnings.push(format!(
            "{CSRF_PROTECTION}=off: browsers can send cross-site requests with cookies"
        ));
    }
    if config.metrics_listen.is_some_and(|a| !a.ip().is_loopback()) {
        warnings.push(format!(
            "{METRICS_LISTEN} is not a loopback address: keep /metrics off the internet"
        ));
    }
    warnings
}
