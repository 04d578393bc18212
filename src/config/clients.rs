//! Who a client is and what it may spend: identity, trusted proxies, budgets, probing defence.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::net::IpNetworks;

use super::parse::{
    choice, parse_count, parse_duration, parse_header_names, parse_limit, parse_switch,
};
use super::table::*;
use super::values::CostBudgetMode;
use super::{ConfigError, Reader};
use crate::rules::{Rate, parse_rate};

/// Client identity and budgets.
#[derive(Debug, Clone)]
pub struct ClientsConfig {
    /// `CLIENT_KEY_HEADER`: a header (e.g. `x-api-key`) a gateway in front sets to name the client;
    /// believed only from a peer in `trusted_proxies`.
    pub key_header: Option<http::HeaderName>,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For`/`Forwarded` is believed.
    pub trusted_proxies: IpNetworks,
    /// `RATE_LIMIT`.
    pub rate_limit: Option<Rate>,
    /// `COST_BUDGET`.
    pub cost_budget: Option<Rate>,
    /// `COST_BUDGET_MODE`.
    pub cost_budget_mode: CostBudgetMode,
    /// `RATE_LIMIT_HEADERS`: `RateLimit-*` on forwarded responses too.
    pub rate_limit_headers: bool,
    /// `RATE_LIMIT_MAX_CLIENTS`: clients tracked per budget.
    pub max_clients: usize,
    /// `PROBE_LIMIT`: schema-validation refusals per client per minute before a cool-down.
    pub probe_limit: Option<NonZeroU32>,
    /// `PROBE_COOLDOWN`.
    pub probe_cooldown: Duration,
}

impl ClientsConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<ClientsConfig, ConfigError> {
        let config = ClientsConfig {
            key_header: read.optional(CLIENT_KEY_HEADER, one_header_name)?,
            trusted_proxies: read
                .optional(TRUSTED_PROXIES, |v| {
                    v.parse::<IpNetworks>().map_err(|e| {
                        format!("a comma-separated list of IP addresses or CIDR blocks such as 10.0.0.0/8,::1 ({e})")
                    })
                })?
                .unwrap_or_default(),
            rate_limit: read.value(RATE_LIMIT, parse_rate)?,
            cost_budget: read.value(COST_BUDGET, parse_rate)?,
            cost_budget_mode: read.value(COST_BUDGET_MODE, |v| choice(v, CostBudgetMode::CHOICES))?,
            rate_limit_headers: read.value(RATE_LIMIT_HEADERS, parse_switch)?,
            max_clients: read.value(RATE_LIMIT_MAX_CLIENTS, |v| {
                parse_count(v).map(|n| n as usize)
            })?,
            probe_limit: read.value(PROBE_LIMIT, |v| {
                parse_limit(v)?
                    .map(|n| u32::try_from(n).ok().and_then(NonZeroU32::new))
                    .map(|n| n.ok_or_else(|| "a positive integer below 2^32, or off".to_owned()))
                    .transpose()
            })?,
            probe_cooldown: read.value(PROBE_COOLDOWN, parse_duration)?,
        };
        // The key header is a gateway's, believed only from a trusted peer: without one it would
        // be believed from no one, which is never what the operator meant.
        if let Some(header) = &config.key_header
            && config.trusted_proxies.is_empty()
        {
            return Err(ConfigError::Invalid {
                name: CLIENT_KEY_HEADER.to_owned(),
                value: header.to_string(),
                accepted: format!(
                    "a header set by a gateway in front, together with {TRUSTED_PROXIES} naming that gateway"
                ),
            });
        }
        Ok(config)
    }
}

/// Exactly one HTTP header name, lower-cased.
pub(super) fn one_header_name(text: &str) -> Result<http::HeaderName, String> {
    let accepted = || "one HTTP header name such as x-api-key".to_owned();
    match parse_header_names(text)?.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(accepted()),
    }
}
