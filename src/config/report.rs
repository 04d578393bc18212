//! What the configuration amounts to, for people: every variable with the value in force (secrets
//! redacted), and a warning for each choice that weakens protection.

use super::table::*;
use super::values::{MaskErrors, RedisFailureMode};
use super::{Config, ConfigError, Source};
use crate::rules::{Introspection, Mode};

/// One variable and the value in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// As written (or the default), with secrets redacted; `None`: unset, no default.
    pub value: Option<String>,
    /// The value is the table's default (the operator did not set it).
    pub default: bool,
}

/// Every variable of the table with its value in `source`, in table order.
pub fn settings(source: &dyn Source) -> Result<Vec<Setting>, ConfigError> {
    VARIABLES
        .iter()
        .map(|variable| {
            let set = source
                .get(variable.name)?
                .map(|raw| raw.trim().to_owned())
                .filter(|value| !value.is_empty());
            let default = set.is_none();
            let value = set.or_else(|| variable.default.map(str::to_owned));
            Ok(Setting {
                name: variable.name,
                value: value.map(|value| redact(variable.name, value)),
                default,
            })
        })
        .collect()
}

/// The upstream's and Redis's passwords and the client key hashes never reach a log or a terminal.
fn redact(name: &str, value: String) -> String {
    match name {
        UPSTREAM_URL | REDIS_URL => match url::Url::parse(&value) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("REDACTED"));
                url.to_string()
            }
            _ => value,
        },
        TRUSTED_CLIENT_KEY_HASHES => {
            let count = value.split(',').filter(|h| !h.trim().is_empty()).count();
            format!("{count} key hash(es), redacted")
        }
        _ => value,
    }
}

/// Settings that weaken protection, for a warning each at start-up and in `check`.
pub fn insecure_choices(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let limits = &config.limits.limits;
    if limits.introspection == Introspection::Allow {
        warnings.push(format!(
            "{INTROSPECTION}=allow: anyone can read the whole schema"
        ));
    }
    if !config.hardening.block_suggestions {
        warnings.push(format!(
            "{BLOCK_FIELD_SUGGESTIONS}=off: \"Did you mean …?\" leaks field names"
        ));
    }
    if config.hardening.mask == MaskErrors::Off {
        warnings.push(format!(
            "{MASK_ERRORS}=off: upstream stack traces reach clients"
        ));
    }
    if config.limits.modes.default == Mode::Monitor {
        warnings.push(format!(
            "{MODE}=monitor: violations are logged, not refused"
        ));
    }
    for (rule, mode) in &config.limits.modes.overrides {
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
        (MAX_BATCH, config.requests.max_batch.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, is_off)| is_off.then_some(name))
    .collect();
    if !off.is_empty() {
        warnings.push(format!("limits switched off: {}", off.join(", ")));
    }
    if config.requests.csrf_required_headers.is_none() {
        warnings.push(format!(
            "{CSRF_PROTECTION}=off: browsers can send cross-site requests with cookies"
        ));
    }
    if config
        .server
        .metrics_listen
        .is_some_and(|a| !a.ip().is_loopback())
    {
        warnings.push(format!(
            "{METRICS_LISTEN} is not a loopback address: keep /metrics off the internet"
        ));
    }
    if let Some(redis) = &config.state.redis
        && redis.failure_mode == RedisFailureMode::Open
    {
        warnings.push(format!(
            "{REDIS_FAILURE_MODE}=open: whoever can slow Redis down switches the budgets off"
        ));
    }
    if let Some(jwt) = &config.identity.jwt {
        for (name, accepted) in [
            (AUTH_JWT_ISSUERS, &jwt.issuers),
            (AUTH_JWT_AUDIENCES, &jwt.audiences),
        ] {
            if *accepted == crate::identity::jwt::Accepted::Any {
                warnings.push(format!(
                    "{name}=any: tokens minted for other issuers or services are accepted"
                ));
            }
        }
    }
    if config.edge.cors_allow_credentials && config.requests.csrf_required_headers.is_none() {
        warnings.push(format!(
            "{CORS_ALLOW_CREDENTIALS}=on with {CSRF_PROTECTION}=off: cookies ride on cross-site simple requests"
        ));
    }
    if config.identity.mode == crate::identity::AuthMode::Optional {
        warnings.push(format!(
            "{AUTH}=optional: callers without a valid credential are let in as anonymous"
        ));
    }
    if config
        .edge
        .admin_allow_ips
        .contains(std::net::Ipv4Addr::new(192, 0, 2, 1).into())
    {
        warnings.push(format!(
            "{ADMIN_ALLOW_IPS} includes public addresses: keep /metrics off the internet"
        ));
    }
    warnings
}
