//! Persisted queries, APQ and client keys.

use std::path::PathBuf;
use std::time::Duration;

use super::clients::one_header_name;
use super::parse::{choice, parse_duration, parse_optional_duration, parse_size, parse_switch};
use super::table::*;
use super::values::{LimitViolations, PersistedQueries, SkipLimits};
use super::{ConfigError, Profile, Reader};

/// Persisted-query settings.
#[derive(Debug, Clone)]
pub struct PersistedConfig {
    /// `PERSISTED_QUERIES`.
    pub mode: PersistedQueries,
    /// `PERSISTED_QUERIES_DIR`, or the demo's built-in manifest.
    pub manifests: ManifestSource,
    /// `PERSISTED_REQUIRE_ID`: in allowlist mode, refuse manifest documents sent as text.
    pub require_id: bool,
    /// `PERSISTED_SKIP_LIMITS`.
    pub skip_limits: SkipLimits,
    /// `PERSISTED_LIMIT_VIOLATIONS`.
    pub limit_violations: LimitViolations,
    /// `PERSISTED_PASS_THROUGH`: keep `extensions.persistedQuery` / `documentId` upstream.
    pub pass_through: bool,
    /// `PERSISTED_RELOAD_INTERVAL`, or `None` (`off`: SIGHUP only).
    pub reload_interval: Option<Duration>,
    /// `APQ_CACHE_BYTES`.
    pub apq_cache_bytes: u64,
    /// `APQ_TTL`.
    pub apq_ttl: Duration,
    /// `TRUSTED_CLIENT_HEADER` and `TRUSTED_CLIENT_KEY_HASHES`, set together.
    pub client_keys: Option<ClientKeysConfig>,
    /// `TRUSTED_CLIENT_SKIP_LIMITS`.
    pub client_keys_skip_limits: SkipLimits,
}

/// Where the allowlist comes from. No default directory: a relative default would load whatever
/// `persisted-queries/` the working directory happens to hold (the demo's, in a clone) into the
/// operator's firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// `PERSISTED_QUERIES_DIR` unset: no manifest.
    None,
    /// The embedded demo client's manifest (`demo` without `PERSISTED_QUERIES_DIR`).
    Demo,
    /// `PERSISTED_QUERIES_DIR`: must exist.
    Dir(PathBuf),
}

/// The header carrying a client key and the SHA-256 of every accepted key.
#[derive(Debug, Clone)]
pub struct ClientKeysConfig {
    pub header: http::HeaderName,
    pub hashes: Vec<[u8; 32]>,
}

impl PersistedConfig {
    pub(super) fn read(
        read: &Reader<'_>,
        profile: Profile,
    ) -> Result<PersistedConfig, ConfigError> {
        let header = read.optional(TRUSTED_CLIENT_HEADER, one_header_name)?;
        let hashes = read.optional(TRUSTED_CLIENT_KEY_HASHES, parse_key_hashes)?;
        let client_keys = match (header, hashes) {
            (Some(header), Some(hashes)) => Some(ClientKeysConfig { header, hashes }),
            (None, None) => None,
            (header, _) => {
                return Err(ConfigError::Missing {
                    name: if header.is_some() {
                        TRUSTED_CLIENT_KEY_HASHES
                    } else {
                        TRUSTED_CLIENT_HEADER
                    }
                    .to_owned(),
                    accepted: format!(
                        "{TRUSTED_CLIENT_HEADER} and {TRUSTED_CLIENT_KEY_HASHES} are set together"
                    ),
                });
            }
        };
        Ok(PersistedConfig {
            mode: read.value(PERSISTED_QUERIES, |v| choice(v, PersistedQueries::CHOICES))?,
            manifests: match read.optional(PERSISTED_QUERIES_DIR, |v| Ok(PathBuf::from(v)))? {
                Some(dir) => ManifestSource::Dir(dir),
                None if profile == Profile::Demo => ManifestSource::Demo,
                None => ManifestSource::None,
            },
            require_id: read.value(PERSISTED_REQUIRE_ID, parse_switch)?,
            skip_limits: read.value(PERSISTED_SKIP_LIMITS, |v| choice(v, SkipLimits::CHOICES))?,
            limit_violations: read.value(PERSISTED_LIMIT_VIOLATIONS, |v| {
                choice(v, LimitViolations::CHOICES)
            })?,
            pass_through: read.value(PERSISTED_PASS_THROUGH, parse_switch)?,
            reload_interval: read.value(PERSISTED_RELOAD_INTERVAL, parse_optional_duration)?,
            apq_cache_bytes: read.value(APQ_CACHE_BYTES, |v| parse_size(v).map(|n| n as u64))?,
            apq_ttl: read.value(APQ_TTL, parse_duration)?,
            client_keys,
            client_keys_skip_limits: read.value(TRUSTED_CLIENT_SKIP_LIMITS, |v| {
                choice(v, SkipLimits::CHOICES)
            })?,
        })
    }
}

/// SHA-256 hex digests (optionally `sha256:`-prefixed), comma-separated; at least one.
fn parse_key_hashes(text: &str) -> Result<Vec<[u8; 32]>, String> {
    let accepted = || {
        "a comma-separated list of SHA-256 hashes (64 hex digits) of the accepted keys, e.g. from `printf %s KEY | sha256sum`".to_owned()
    };
    let hashes: Vec<[u8; 32]> = text
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(h.strip_prefix("sha256:").unwrap_or(h), &mut hash)
                .map(|()| hash)
                .map_err(|_| accepted())
        })
        .collect::<Result<_, _>>()?;
    if hashes.is_empty() {
        return Err(accepted());
    }
    Ok(hashes)
}
