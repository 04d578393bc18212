//! Who is calling: `AUTH`, the token settings (keys from `AUTH_JWKS_URLS`, pinned algorithms,
//! required `iss`/`aud`), API keys (`API_KEYS_FILE`) and `TIERS`.
//!
//! The values are parsed by [`crate::identity`]'s pure parsers (no I/O), the one place that knows
//! what a JWKS URL or an algorithm list is; loading the keys is `lib.rs`'s job. Combinations that
//! cannot be what the operator meant are errors here, at start-up: sources configured with
//! `AUTH=off`, `AUTH=required` without a source, a token source without `iss`/`aud` (say `any`
//! explicitly), token settings without a key set, a tier claim without tiers, one header for two
//! credentials.

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::Algorithm;

use super::clients::one_header_name;
use super::parse::{choice, parse_duration};
use super::table::*;
use super::values::LogSubject;
use super::{ConfigError, Reader};
use crate::identity::jwks::{JwksUrl, parse_jwks_urls};
use crate::identity::jwt::{
    Accepted, TokenSource, parse_algorithms, parse_claim_name, parse_leeway,
};
use crate::identity::{AuthMode, Tiers};
use crate::rules::{Rate, parse_rate};

/// The token settings, present only with `AUTH_JWKS_URLS`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub jwks_urls: Vec<JwksUrl>,
    pub refresh: Duration,
    pub unknown_kid_interval: Duration,
    pub issuers: Accepted,
    pub audiences: Accepted,
    pub algorithms: Vec<Algorithm>,
    pub source: TokenSource,
    pub leeway: Duration,
    pub cache_entries: u64,
    /// `AUTH_JWT_VERIFY_RATE`: signature checks per client address (`None`: unpaced).
    pub verify_rate: Option<Rate>,
    pub client_claim: Option<String>,
    pub tier_claim: Option<String>,
}

/// The API key settings, present only with `API_KEYS_FILE`.
#[derive(Debug, Clone)]
pub struct ApiKeysConfig {
    pub file: PathBuf,
    pub header: HeaderName,
    pub reload_interval: Duration,
}

/// Identity settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub mode: AuthMode,
    pub jwt: Option<JwtConfig>,
    pub api_keys: Option<ApiKeysConfig>,
    pub tiers: Tiers,
    /// `LOG_SUBJECT`.
    pub log_subject: LogSubject,
}

/// Token settings that mean nothing without a key set.
const JWT_ONLY: &[&str] = &[
    AUTH_JWT_ISSUERS,
    AUTH_JWT_AUDIENCES,
    AUTH_JWT_COOKIE,
    AUTH_CLIENT_CLAIM,
    AUTH_TIER_CLAIM,
];

fn invalid(name: &str, value: &str, accepted: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        accepted: accepted.into(),
    }
}

impl IdentityConfig {
    pub(super) fn read(
        read: &Reader<'_>,
        client_key_header: Option<&HeaderName>,
    ) -> Result<IdentityConfig, ConfigError> {
        let tiers: Tiers = read
            .optional(TIERS, |v| v.parse::<Tiers>().map_err(|e| e.to_string()))?
            .unwrap_or_default();
        let jwt = match read.optional(AUTH_JWKS_URLS, |v| {
            parse_jwks_urls(v).map_err(|e| e.to_string())
        })? {
            Some(jwks_urls) => Some(read_jwt(read, jwks_urls, &tiers)?),
            None => {
                for name in JWT_ONLY {
                    if read.is_set(name)? {
                        return Err(invalid(
                            name,
                            "(set)",
                            format!("to be set only together with {AUTH_JWKS_URLS}"),
                        ));
                    }
                }
                None
            }
        };
        let api_keys = match read.optional(API_KEYS_FILE, |v| Ok(PathBuf::from(v)))? {
            Some(file) => Some(ApiKeysConfig {
                file,
                header: read.value(API_KEY_HEADER, one_header_name)?,
                reload_interval: read.value(API_KEYS_RELOAD_INTERVAL, parse_duration)?,
            }),
            None => None,
        };
        let (has_jwt, has_keys) = (jwt.is_some(), api_keys.is_some());
        let mode = match read.optional(AUTH, |v| {
            v.parse::<AuthMode>()
                .map_err(|_| "required, optional or off".to_owned())
        })? {
            Some(mode) => {
                mode.check(has_jwt, has_keys).map_err(|error| {
                    invalid(AUTH, &format!("{mode:?}").to_lowercase(), error.to_string())
                })?;
                mode
            }
            None => AuthMode::default_for(has_jwt, has_keys),
        };
        if let Some(keys) = &api_keys {
            let clash = [
                client_key_header.map(|h| (CLIENT_KEY_HEADER, h)),
                jwt.as_ref().map(|j| (AUTH_JWT_HEADER, j.source.header())),
            ];
            for (name, header) in clash.into_iter().flatten() {
                if *header == keys.header {
                    return Err(invalid(
                        API_KEY_HEADER,
                        keys.header.as_str(),
                        format!(
                            "a header other than {name}'s: one header cannot carry two kinds of credential"
                        ),
                    ));
                }
            }
        }
        Ok(IdentityConfig {
            mode,
            jwt,
            api_keys,
            tiers,
            log_subject: read.value(LOG_SUBJECT, |v| choice(v, LogSubject::CHOICES))?,
        })
    }
}

fn read_jwt(
    read: &Reader<'_>,
    jwks_urls: Vec<JwksUrl>,
    tiers: &Tiers,
) -> Result<JwtConfig, ConfigError> {
    let accepted = |name: &str| -> Result<Accepted, ConfigError> {
        read.optional(name, |v| v.parse::<Accepted>().map_err(|e| e.to_string()))?
            .ok_or_else(|| ConfigError::Missing {
                name: name.to_owned(),
                accepted: format!(
                    "with {AUTH_JWKS_URLS}: the accepted values, comma-separated, or any (tokens minted for another service are otherwise accepted)"
                ),
            })
    };
    let header = read.value(AUTH_JWT_HEADER, |v| Ok(v.to_owned()))?;
    let prefix = read.value(AUTH_JWT_PREFIX, |v| {
        Ok(if v.eq_ignore_ascii_case("none") {
            String::new()
        } else {
            v.to_owned()
        })
    })?;
    let cookie = read.optional(AUTH_JWT_COOKIE, |v| Ok(v.to_owned()))?;
    let source = TokenSource::new(&header, &prefix, cookie.as_deref()).map_err(|error| {
        invalid(
            AUTH_JWT_HEADER,
            &format!("{header} / {prefix} / {}", cookie.as_deref().unwrap_or("-")),
            error.to_string(),
        )
    })?;
    let tier_claim = read.optional(AUTH_TIER_CLAIM, |v| {
        parse_claim_name(v).map_err(|e| e.to_string())
    })?;
    if tier_claim.is_some() && tiers.is_empty() {
        return Err(invalid(
            AUTH_TIER_CLAIM,
            tier_claim.as_deref().unwrap_or_default(),
            format!("to be set only together with {TIERS} (the tiers it may name)"),
        ));
    }
    Ok(JwtConfig {
        jwks_urls,
        refresh: read.value(AUTH_JWKS_REFRESH, parse_duration)?,
        unknown_kid_interval: read.value(AUTH_JWKS_UNKNOWN_KID_INTERVAL, parse_duration)?,
        issuers: accepted(AUTH_JWT_ISSUERS)?,
        audiences: accepted(AUTH_JWT_AUDIENCES)?,
        algorithms: read.value(AUTH_JWT_ALGORITHMS, |v| {
            parse_algorithms(v).map_err(|e| e.to_string())
        })?,
        source,
        leeway: read.value(AUTH_JWT_LEEWAY, |v| {
            parse_leeway(v).map_err(|e| e.to_string())
        })?,
        cache_entries: read.value(AUTH_JWT_CACHE_ENTRIES, |v| {
            v.parse::<u64>()
                .map_err(|_| "a number of entries, or 0 for no cache".to_owned())
        })?,
        verify_rate: read.value(AUTH_JWT_VERIFY_RATE, parse_rate)?,
        client_claim: read.optional(AUTH_CLIENT_CLAIM, |v| {
            parse_claim_name(v).map_err(|e| e.to_string())
        })?,
        tier_claim,
    })
}
