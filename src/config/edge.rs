//! The browser- and network-facing edge: CORS, IP allow and deny lists, the admin listener's
//! allow list, HSTS.
//!
//! CORS and HSTS values are kept as text here and parsed by the HTTP edge when the app is built
//! (a bad value stops start-up there, exit 2 like any configuration error); the combinations
//! that need no parsing are checked here: CORS options without `CORS_ALLOW_ORIGINS`.

use std::time::Duration;

use super::parse::{parse_duration, parse_switch};
use super::table::*;
use super::{ConfigError, Reader};
use crate::net::IpNetworks;

/// Edge settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// `CORS_ALLOW_ORIGINS`; `None`: no origin allowed, every preflight refused.
    pub cors_allow_origins: Option<String>,
    pub cors_allow_credentials: bool,
    pub cors_allow_headers: String,
    pub cors_expose_headers: String,
    pub cors_max_age: Duration,
    /// `ALLOW_IPS`: when set, only these clients.
    pub allow_ips: Option<IpNetworks>,
    /// `DENY_IPS`.
    pub deny_ips: IpNetworks,
    /// `ADMIN_ALLOW_IPS`.
    pub admin_allow_ips: IpNetworks,
    /// `HSTS`: `off` or a `Strict-Transport-Security` value.
    pub hsts: String,
}

const CORS_OPTIONS: &[&str] = &[
    CORS_ALLOW_CREDENTIALS,
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE,
];

fn networks(text: &str) -> Result<IpNetworks, String> {
    text.parse::<IpNetworks>().map_err(|e| {
        format!(
            "a comma-separated list of IP addresses or CIDR blocks such as 10.0.0.0/8,::1 ({e})"
        )
    })
}

impl EdgeConfig {
    pub(super) fn read(read: &Reader<'_>) -> Result<EdgeConfig, ConfigError> {
        let cors_allow_origins = read.optional(CORS_ALLOW_ORIGINS, |v| Ok(v.to_owned()))?;
        if cors_allow_origins.is_none() {
            for name in CORS_OPTIONS {
                if read.is_set(name)? {
                    return Err(ConfigError::Invalid {
                        name: (*name).to_owned(),
                        value: "(set)".to_owned(),
                        accepted: format!("to be set only together with {CORS_ALLOW_ORIGINS}"),
                    });
                }
            }
        }
        Ok(EdgeConfig {
            cors_allow_origins,
            cors_allow_credentials: read.value(CORS_ALLOW_CREDENTIALS, parse_switch)?,
            cors_allow_headers: read.value(CORS_ALLOW_HEADERS, |v| Ok(v.to_owned()))?,
            cors_expose_headers: read.value(CORS_EXPOSE_HEADERS, |v| Ok(v.to_owned()))?,
            cors_max_age: read.value(CORS_MAX_AGE, parse_duration)?,
            allow_ips: read.optional(ALLOW_IPS, networks)?,
            deny_ips: read.optional(DENY_IPS, networks)?.unwrap_or_default(),
            admin_allow_ips: read.value(ADMIN_ALLOW_IPS, networks)?,
            hsts: read.value(HSTS, |v| Ok(v.to_owned()))?,
        })
    }
}
