//! JWT verification: the token from `Authorization: Bearer` (or the configured header, prefix or
//! cookie), its signature checked with a key of [`Jwks`], its claims checked (`exp` required,
//! `nbf`, `iss`, `aud`, clock leeway), and the caller's [`Identity`] read from it. A verified
//! token is remembered by its SHA-256 until it expires, so a hot token costs a hash lookup.
//!
//! # Threats
//! The classic JWT forgeries are each stopped at one place, named here so a reviewer can check:
//! - `alg: none` (CVE-2015-2951): `none` is not an algorithm of the verifying crate, so such a
//!   header does not even parse ([`JwtError::Malformed`]).
//! - RS256 → HS256 confusion (CVE-2016-10555): a key's algorithms come from the key
//!   ([`jwks`](super::jwks)); an RSA key never allows HS256 ([`JwtError::AlgorithmNotAllowed`]).
//! - An embedded `jwk` / `jku` / `x5u` header (CVE-2018-0114): never read; only configured keys.
//! - A `kid` carrying a path or SQL: only ever a hash-map lookup ([`JwtError::UnknownKey`]), and
//!   unknown `kid`s refresh the key set at a bounded rate.
//! - `exp` / `nbf` given as strings (CVE-2026-25537): jsonwebtoken ≥ 10.3 reports them as
//!   malformed; `exp` is required, so such a token is refused.
//! - A token for another service: `aud` and `iss` are required and checked, unless the operator
//!   says `any`.
//! - The verified-token cache is keyed by the token's SHA-256 (no collision can alias two
//!   tokens), bounded in entries, and an entry dies at the token's expiry or as soon as the key set
//!   changes (a removed key stops working at the next refresh).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header, get_current_timestamp};
use moka::sync::Cache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::{Jwks, NoKey};
use super::tiers::Tiers;
use super::{AuthMethod, Identity, Scopes, Subject};

/// Longest token looked at; anything longer is refused before parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
const MAX_KID_LEN: usize = 256;
const MAX_SUBJECT_LEN: usize = 512;
const MAX_SCOPES: usize = 256;
/// Longest accepted `AUTH_JWT_LEEWAY`.
const MAX_LEEWAY: Duration = Duration::from_secs(600);

/// `AUTH_JWT_ALGORITHMS` when unset: every asymmetric algorithm (HMAC only when asked for).
pub const DEFAULT_ALGORITHMS: &str = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA";

/// Why a token was refused (logged and counted, never told to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token header or cookie is repeated, empty or unreadable")]
    BadRequest,
    #[error("the token is malformed or too long")]
    Malformed,
    #[error("no key with the token's kid")]
    UnknownKey,
    #[error("the token's algorithm is not allowed for its key")]
    AlgorithmNotAllowed,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the issuer is not accepted")]
    WrongIssuer,
    #[error("the audience is not accepted")]
    WrongAudience,
    #[error("the claim {0} is missing")]
    MissingClaim(&'static str),
    #[error("the claim {0} has the wrong type")]
    InvalidClaim(&'static str),
    #[error("the subject claim is missing, not a string, empty or too long")]
    NoSubject,
    #[error("the key cannot verify this token")]
    KeyUnusable,
}

impl JwtError {
    /// A closed-set label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            JwtError::BadRequest => "bad_request",
            JwtError::Malformed => "malformed",
            JwtError::UnknownKey => "unknown_key",
            JwtError::AlgorithmNotAllowed => "algorithm_not_allowed",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::InvalidClaim(_) => "invalid_claim",
            JwtError::NoSubject => "no_subject",
            JwtError::KeyUnusable => "key_unusable",
        }
    }

    /// The request itself is at fault (RFC 6750 `invalid_request`), not the token.
    pub(super) fn is_malformed(self) -> bool {
        self == JwtError::BadRequest
    }

    fn from_kind(kind: &ErrorKind) -> JwtError {
        let claim = |name: &str| match name {
            "exp" => "exp",
            "nbf" => "nbf",
            "iss" => "iss",
            "aud" => "aud",
            "sub" => "sub",
            _ => "other",
        };
        match kind {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::MissingRequiredClaim(name) => JwtError::MissingClaim(claim(name)),
            ErrorKind::InvalidClaimFormat(name) => JwtError::InvalidClaim(claim(name)),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => JwtError::AlgorithmNotAllowed,
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::Provider(_) => JwtError::KeyUnusable,
            _ => JwtError::Malformed,
        }
    }
}

// === Settings and their parsers ===

/// Why a JWT setting cannot be used; each message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    #[error(
        "invalid algorithm list {0:?}: expected a comma-separated list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512"
    )]
    Algorithms(String),
    #[error("the algorithm none is never accepted: a token without a signature proves nothing")]
    AlgorithmNone,
    #[error("invalid list {0:?}: expected any, or a comma-separated list of values")]
    Values(String),
    #[error("invalid leeway {0:?}: expected 0 or a duration up to 10min such as 30s or 2min")]
    Leeway(String),
    #[error("invalid header name {0:?}: expected an HTTP header name such as authorization")]
    Header(String),
    #[error("invalid token prefix {0:?}: expected a word such as Bearer, or empty for none")]
    Prefix(String),
    #[error("invalid cookie name {0:?}: expected a cookie name (letters, digits, - _ .)")]
    Cookie(String),
    #[error("invalid claim name {0:?}: expected 1 to 64 visible ASCII characters")]
    Claim(String),
}

/// `AUTH_JWT_ALGORITHMS`: the algorithms keys may be used with (see [`DEFAULT_ALGORITHMS`]).
pub fn parse_algorithms(text: &str) -> Result<Vec<Algorithm>, JwtConfigError> {
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            return Err(JwtConfigError::AlgorithmNone);
        }
        let algorithm =
            Algorithm::from_str(name).map_err(|_| JwtConfigError::Algorithms(text.to_owned()))?;
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    if algorithms.is_empty() {
        return Err(JwtConfigError::Algorithms(text.to_owned()));
    }
    Ok(algorithms)
}

/// The accepted values of `iss` (`AUTH_JWT_ISSUERS`) or `aud` (`AUTH_JWT_AUDIENCES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// `any`: the claim is not checked (say so explicitly: accepting tokens minted for another
    /// service is rarely meant).
    Any,
    /// The claim must be present and one of these.
    OneOf(Vec<String>),
}

impl FromStr for Accepted {
    type Err = JwtConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("any") {
            return Ok(Accepted::Any);
        }
        let values: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if values.is_empty() {
            return Err(JwtConfigError::Values(text.to_owned()));
        }
        Ok(Accepted::OneOf(values))
    }
}

/// `AUTH_JWT_LEEWAY`: `0`, `30s`, `500ms`, `2min`; at most 10 minutes.
pub fn parse_leeway(text: &str) -> Result<Duration, JwtConfigError> {
    let invalid = || JwtConfigError::Leeway(text.to_owned());
    let text = text.trim();
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(end);
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let leeway = match unit.trim() {
        "" | "s" => Duration::from_secs(amount),
        "ms" => Duration::from_millis(amount),
        "m" | "min" => Duration::from_secs(amount.saturating_mul(60)),
        _ => return Err(invalid()),
    };
    if leeway > MAX_LEEWAY {
        return Err(invalid());
    }
    Ok(leeway)
}

/// `AUTH_CLIENT_CLAIM` / `AUTH_TIER_CLAIM`: a claim name.
pub fn parse_claim_name(text: &str) -> Result<String, JwtConfigError> {
    let name = text.trim();
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(JwtConfigError::Claim(text.to_owned()));
    }
    Ok(name.to_owned())
}

/// Where a request carries its token: `AUTH_JWT_HEADER` with `AUTH_JWT_PREFIX`, else the cookie
/// `AUTH_JWT_COOKIE`. The header wins when both are present.
#[derive(Debug, Clone)]
pub struct TokenSource {
    header: HeaderName,
    /// Without the space that separates it from the token; empty: the header holds the token alone.
    prefix: String,
    cookie: Option<String>,
}

impl Default for TokenSource {
    fn default() -> Self {
        TokenSource {
            header: header::AUTHORIZATION,
            prefix: "Bearer".to_owned(),
            cookie: None,
        }
    }
}

impl TokenSource {
    pub fn new(header: &str, prefix: &str, cookie: Option<&str>) -> Result<Self, JwtConfigError> {
        let header = HeaderName::from_str(header.trim())
            .map_err(|_| JwtConfigError::Header(header.to_owned()))?;
        let prefix_ok = prefix.len() <= 32 && prefix.bytes().all(|b| b.is_ascii_graphic());
        if !prefix_ok {
            return Err(JwtConfigError::Prefix(prefix.to_owned()));
        }
        let cookie = match cookie.map(str::trim) {
            None | Some("") => None,
            Some(name) if name.len() <= 64 && name.bytes().all(is_cookie_name_byte) => {
                Some(name.to_owned())
            }
            Some(name) => return Err(JwtConfigError::Cookie(name.to_owned())),
        };
        Ok(TokenSource {
            header,
            prefix: prefix.to_owned(),
            cookie,
        })
    }

    /// The header the token is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The cookie the token is read from, if any.
    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// The token the request presents, if any. A repeated header or cookie, an empty token, or
    /// one with bytes no JWT has, is [`JwtError::BadRequest`]; a header with another scheme (e.g.
    /// `Basic`) is no token.
    pub fn extract<'a>(&self, headers: &'a HeaderMap) -> Result<Option<&'a str>, JwtError> {
        let mut values = headers.get_all(&self.header).iter();
        if let Some(value) = values.next() {
            if values.next().is_some() {
                return Err(JwtError::BadRequest);
            }
            let value = value.to_str().map_err(|_| JwtError::BadRequest)?.trim();
            if let Some(token) = self.strip_prefix(value) {
                return checked(token).map(Some);
            }
        }
        let Some(cookie) = &self.cookie else {
            return Ok(None);
        };
        let mut found = None;
        for line in headers.get_all(header::COOKIE) {
            let line = line.to_str().map_err(|_| JwtError::BadRequest)?;
            for pair in line.split(';') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                if name.trim() != cookie {
                    continue;
                }
                // Two cookies of this name (cookie tossing from a sibling domain): neither is used.
                if found.is_some() {
                    return Err(JwtError::BadRequest);
                }
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                found = Some(checked(value)?);
            }
        }
        Ok(found)
    }

    fn strip_prefix<'a>(&self, value: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(value);
        }
        let (scheme, rest) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case(&self.prefix)
            .then_some(rest.trim_start())
    }
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.".contains(&b)
}

/// A JWT in compact form has only base64url characters and dots.
fn checked(token: &str) -> Result<&str, JwtError> {
    let valid = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b));
    if valid {
        Ok(token)
    } else {
        Err(JwtError::BadRequest)
    }
}

/// What the verifier needs from the configuration.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `AUTH_JWT_ISSUERS`.
    pub issuers: Accepted,
    /// `AUTH_JWT_AUDIENCES`.
    pub audiences: Accepted,
    /// `AUTH_JWT_LEEWAY`: clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// `AUTH_CLIENT_CLAIM`: the claim naming the caller; `None` means `sub`.
    pub client_claim: Option<String>,
    /// `AUTH_TIER_CLAIM`: the claim naming the caller's tier, if any.
    pub tier_claim: Option<String>,
    /// `AUTH_JWT_CACHE_ENTRIES`: verified tokens remembered; 0 turns the cache off.
    pub cache_entries: u64,
}

/// A verification remembered.
#[derive(Debug)]
struct Verified {
    identity: Identity,
    /// Unix seconds: `exp` plus the leeway, as the cold path would accept it.
    valid_until: u64,
    /// The key set it was verified under.
    generation: u64,
}

/// Entries live until their token stops being valid.
struct UntilInvalid;

impl moka::Expiry<[u8; 32], Arc<Verified>> for UntilInvalid {
    fn expire_after_create(
        &self,
        _token: &[u8; 32],
        verified: &Arc<Verified>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = verified.valid_until.saturating_sub(get_current_timestamp());
        Some(Duration::from_secs(left))
    }
}

/// Verifies tokens against the key sets and remembers the verified ones.
pub struct JwtVerifier {
    settings: JwtSettings,
    jwks: Arc<Jwks>,
    tiers: Arc<Tiers>,
    /// One per algorithm a key may allow; only the algorithm differs.
    validations: Vec<(Algorithm, Validation)>,
    cache: Option<Cache<[u8; 32], Arc<Verified>>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// `algorithms` are `AUTH_JWT_ALGORITHMS` (the same list the key sets were built with).
    pub fn new(
        settings: JwtSettings,
        algorithms: &[Algorithm],
        jwks: Arc<Jwks>,
        tiers: Arc<Tiers>,
    ) -> JwtVerifier {
        let validations = algorithms
            .iter()
            .map(|&algorithm| (algorithm, validation(&settings, algorithm)))
            .collect();
        let cache = (settings.cache_entries > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.cache_entries)
                .expire_after(UntilInvalid)
                .build()
        });
        JwtVerifier {
            settings,
            jwks,
            tiers,
            validations,
            cache,
        }
    }

    /// Verifies `token`; a token naming an unknown `kid` triggers a (rate-bounded) refresh of the
    /// key sets and is looked at once more.
    pub async fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        match self.verify_now(token) {
            Err(JwtError::UnknownKey) => {
                self.jwks.refresh_for_unknown_kid().await;
                self.verify_now(token)
            }
            other => other,
        }
    }

    /// Verifies `token` with the keys in force now, without waiting for any refresh.
    pub fn verify_now(&self, token: &str) -> Result<Identity, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let keys = self.jwks.keys();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cache_hit(&digest, keys.generation()) {
            return Ok(identity);
        }
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header
            .kid
            .as_ref()
            .is_some_and(|kid| kid.len() > MAX_KID_LEN)
        {
            return Err(JwtError::Malformed);
        }
        let candidates = keys
            .candidates(header.kid.as_deref(), header.alg)
            .map_err(|no_key| match no_key {
                NoKey::UnknownKid => JwtError::UnknownKey,
                NoKey::AlgorithmNotAllowed => JwtError::AlgorithmNotAllowed,
            })?;
        let validation = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .map(|(_, validation)| validation)
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let mut refusal = JwtError::BadSignature;
        for key in candidates {
            match decode::<Map<String, Value>>(token, key.decoding_key(), validation) {
                Ok(data) => {
                    let (identity, valid_until) = self.identity(&data.claims)?;
                    if let (Some(cache), Some(valid_until)) = (&self.cache, valid_until) {
                        cache.insert(
                            digest,
                            Arc::new(Verified {
                                identity: identity.clone(),
                                valid_until,
                                generation: keys.generation(),
                            }),
                        );
                    }
                    return Ok(identity);
                }
                // Claims are checked only after the signature: any other error is final.
                Err(error) => match JwtError::from_kind(error.kind()) {
                    JwtError::BadSignature => refusal = JwtError::BadSignature,
                    other => return Err(other),
                },
            }
        }
        Err(refusal)
    }

    /// The identity `token` proved when it was verified, if that is remembered and still valid:
    /// what a request costs without a signature check (a hash and a lookup).
    pub fn cached(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.cache_hit(&digest, self.jwks.keys().generation())
    }

    fn cache_hit(&self, digest: &[u8; 32], generation: u64) -> Option<Identity> {
        let cache = self.cache.as_ref()?;
        let hit = cache.get(digest)?;
        if hit.generation == generation && get_current_timestamp() < hit.valid_until {
            return Some(hit.identity.clone());
        }
        cache.invalidate(digest);
        None
    }

    /// Verified tokens remembered now (for tests and the metrics endpoint).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| {
            cache.run_pending_tasks();
            cache.entry_count()
        })
    }

    /// The identity a verified token proves, and until when it may be remembered.
    fn identity(&self, claims: &Map<String, Value>) -> Result<(Identity, Option<u64>), JwtError> {
        let subject_claim = self.settings.client_claim.as_deref().unwrap_or("sub");
        let subject = claims
            .get(subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN)
            .ok_or(JwtError::NoSubject)?;
        let tier = self
            .settings
            .tier_claim
            .as_deref()
            .and_then(|claim| claims.get(claim))
            .and_then(Value::as_str)
            .and_then(|name| self.tiers.name(name));
        let scopes = Scopes::new(
            ["scope", "scp"]
                .iter()
                .filter_map(|claim| claims.get(*claim))
                .flat_map(scope_values)
                .take(MAX_SCOPES),
        );
        let leeway = self.settings.leeway.as_secs();
        let valid_until = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map(|exp| exp.saturating_add(leeway));
        let identity = Identity::verified(AuthMethod::Jwt, Subject::new(subject), tier, scopes);
        Ok((identity, valid_until))
    }
}

/// `scope` is a space-separated string (RFC 8693); `scp` is an array (Okta) or a string (Entra
/// ID). Both forms are read from both claims; values of other types are ignored.
fn scope_values(value: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        Value::String(text) => Box::new(text.split_ascii_whitespace()),
        Value::Array(items) => Box::new(items.iter().filter_map(Value::as_str)),
        _ => Box::new(std::iter::empty()),
    }
}

fn validation(settings: &JwtSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = settings.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    match &settings.issuers {
        Accepted::Any => validation.iss = None,
        Accepted::OneOf(issuers) => {
            validation.set_issuer(issuers);
            required.push("iss");
        }
    }
    match &settings.audiences {
        Accepted::Any => validation.validate_aud = false,
        Accepted::OneOf(audiences) => {
            validation.set_audience(audiences);
            required.push("aud");
        }
    }
    validation.set_required_spec_claims(&required);
    validation
}

#[cfg(test)]
mod tests;
