//! Who is calling: verified identities from JWTs ([`jwt`], keys from [`jwks`]) and API keys
//! ([`api_keys`]), the tiers that carry their budgets ([`tiers`]), and the `AUTH` decision that turns
//! the credentials a request presented into an [`Identity`] or an [`AuthError`].
//!
//! # Threats
//! Budgets and access rules keyed by a header the caller invents are no protection: a client that
//! sends a fresh `x-api-key` on each request gets a fresh budget each time, and a flood of invented
//! keys fills the limiter's table. Every identity here is verified (a signature checked against
//! keys the operator configured, or an API key whose SHA-256 the operator listed); anything else
//! is anonymous and the caller is known by its IP. Why a credential was refused is logged, never
//! told to the client: the answer carries only the RFC 6750 error code.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod api_keys;
pub mod authenticate;
pub mod jwks;
pub mod jwt;
pub mod tiers;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use http::HeaderValue;

pub use api_keys::{ApiKeyError, ApiKeys};
pub use authenticate::{Authenticated, Authenticator};
pub use jwt::{JwtError, JwtVerifier};
pub use tiers::{TierName, Tiers};

/// How the caller proved who it is; a closed set, usable as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
    /// A client key set by a gateway in front (`CLIENT_KEY_HEADER`, believed only from a peer in
    /// `TRUSTED_PROXIES`): the gateway verified the caller, the firewall verified the gateway.
    Gateway,
    Anonymous,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Gateway => "gateway",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

/// A verified caller's name: the JWT subject (or `AUTH_CLIENT_CLAIM`), or the API key's name.
/// Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(Arc<str>);

impl Subject {
    pub fn new(name: &str) -> Subject {
        Subject(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scopes a caller holds (JWT `scope` / `scp`, or the API key's scopes). Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Arc<[Box<str>]>);

impl Scopes {
    /// Scopes without duplicates, in the order first seen.
    pub fn new<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Scopes {
        let mut unique: Vec<Box<str>> = Vec::new();
        for scope in scopes {
            if !scope.is_empty() && !unique.iter().any(|known| &**known == scope) {
                unique.push(Box::from(scope));
            }
        }
        Scopes(Arc::from(unique))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|held| &**held == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|scope| &**scope)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who is calling, as far as the firewall could verify.
///
/// `subject` is `Some` exactly when `method` is `Jwt` or `ApiKey`; an anonymous caller is known by
/// its IP, which the admission stage adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: Option<Subject>,
    pub method: AuthMethod,
    /// A configured tier (unknown names in a token are dropped, never invented).
    pub tier: Option<TierName>,
    pub scopes: Scopes,
}

impl Identity {
    /// The caller that proved nothing.
    pub fn anonymous() -> Identity {
        Identity {
            subject: None,
            method: AuthMethod::Anonymous,
            tier: None,
            scopes: Scopes::default(),
        }
    }

    /// A caller verified by `method` (`Jwt` or `ApiKey`).
    pub fn verified(
        method: AuthMethod,
        subject: Subject,
        tier: Option<TierName>,
        scopes: Scopes,
    ) -> Identity {
        Identity {
            subject: Some(subject),
            method,
            tier,
            scopes,
        }
    }

    pub fn is_verified(&self) -> bool {
        self.subject.is_some() && self.method != AuthMethod::Anonymous
    }
}

/// `AUTH`: whether a request must prove who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No credential, or a refused one: 401 `UNAUTHENTICATED`.
    Required,
    /// A verified credential identifies the caller; none, or a refused one, makes it anonymous.
    Optional,
    /// Credentials are not looked at: every caller is anonymous.
    Off,
}

impl AuthMode {
    /// The default when `AUTH` is not set: `required` as soon as a credential source is
    /// configured (configuring keys and then letting everyone in unverified is never meant), else
    /// `off`.
    pub fn default_for(jwt_configured: bool, api_keys_configured: bool) -> AuthMode {
        if jwt_configured || api_keys_configured {
            AuthMode::Required
        } else {
            AuthMode::Off
        }
    }

    /// Refuses the combinations that cannot be what the operator meant.
    pub fn check(
        self,
        jwt_configured: bool,
        api_keys_configured: bool,
    ) -> Result<(), AuthConfigError> {
        let any = jwt_configured || api_keys_configured;
        match self {
            AuthMode::Required | AuthMode::Optional if !any => {
                Err(AuthConfigError::NoCredentialSource)
            }
            AuthMode::Off if any => Err(AuthConfigError::SourcesIgnored),
            _ => Ok(()),
        }
    }
}

impl FromStr for AuthMode {
    type Err = AuthConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "required" => Ok(AuthMode::Required),
            "optional" => Ok(AuthMode::Optional),
            "off" => Ok(AuthMode::Off),
            _ => Err(AuthConfigError::Mode(text.to_owned())),
        }
    }
}

/// Why the authentication settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("invalid AUTH {0:?}: expected required, optional or off")]
    Mode(String),
    #[error(
        "AUTH=required or optional needs a credential source: AUTH_JWKS_URLS and/or API_KEYS_FILE"
    )]
    NoCredentialSource,
    #[error(
        "AUTH=off but AUTH_JWKS_URLS or API_KEYS_FILE is set: set AUTH=required or optional, or remove them"
    )]
    SourcesIgnored,
}

/// What one kind of credential amounted to on a request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The request did not carry it (or its source is not configured).
    Absent,
    Verified(Identity),
    Refused(CredentialError),
}

/// Why a presented credential was refused (for logs and metrics, never for the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("token refused: {0}")]
    Jwt(#[from] JwtError),
    #[error("API key refused: {0}")]
    ApiKey(#[from] ApiKeyError),
}

impl CredentialError {
    /// A closed-set label: the method and the reason.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialError::Jwt(error) => error.reason(),
            CredentialError::ApiKey(error) => error.reason(),
        }
    }

    /// RFC 6750 §3.1: a request the server cannot parse is `invalid_request`; a credential that is
    /// well formed but not accepted is `invalid_token`.
    fn is_malformed(&self) -> bool {
        match self {
            CredentialError::Jwt(error) => error.is_malformed(),
            CredentialError::ApiKey(error) => error.is_malformed(),
        }
    }
}

/// Why a request is not let in; the HTTP layer answers 401 `UNAUTHENTICATED` with
/// [`AuthError::www_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credential presented")]
    Missing,
    #[error("{0}")]
    Refused(CredentialError),
    /// A token and an API key on one request: which one's budget and scopes would apply is not
    /// for the client to pick, so neither is.
    #[error("both a token and an API key presented")]
    Ambiguous,
}

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "graphql";

impl AuthError {
    /// The RFC 6750 `error` code, or none when no credential was presented (§3.1: the server
    /// SHOULD NOT include an error code then).
    pub fn rfc6750_code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::Ambiguous => Some("invalid_request"),
            AuthError::Refused(error) if error.is_malformed() => Some("invalid_request"),
            AuthError::Refused(_) => Some("invalid_token"),
        }
    }

    /// `WWW-Authenticate: Bearer realm="graphql"[, error="…"]`.
    pub fn www_authenticate(&self) -> HeaderValue {
        match self.rfc6750_code() {
            None => HeaderValue::from_static("Bearer realm=\"graphql\""),
            Some("invalid_request") => {
                HeaderValue::from_static("Bearer realm=\"graphql\", error=\"invalid_request\"")
            }
            Some(_) => {
                HeaderValue::from_static("Bearer realm=\"graphql\", error=\"invalid_token\"")
            }
        }
    }

    /// The message for the client: what is needed, never why a credential failed.
    pub fn client_message(&self) -> &'static str {
        match self {
            AuthError::Missing => "authentication required",
            AuthError::Refused(_) | AuthError::Ambiguous => "invalid credentials",
        }
    }

    /// A closed-set label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Ambiguous => "ambiguous",
            AuthError::Refused(error) => error.reason(),
        }
    }
}

/// The `AUTH` decision: the credentials a request presented, each already verified, → who is
/// calling, or why the request is refused.
///
/// - `off`: nothing is looked at; everyone is anonymous.
/// - a token *and* an API key: refused (`invalid_request`) under `required` and `optional`.
/// - `required`: the one verified credential, else [`AuthError::Missing`] / [`AuthError::Refused`].
/// - `optional`: the one verified credential, else anonymous (a refused credential counts as
///   none; the caller logs the refusal).
pub fn decide(mode: AuthMode, jwt: Credential, api_key: Credential) -> Result<Identity, AuthError> {
    if mode == AuthMode::Off {
        return Ok(Identity::anonymous());
    }
    let presented = match (jwt, api_key) {
        (Credential::Absent, Credential::Absent) => None,
        (one, Credential::Absent) | (Credential::Absent, one) => Some(one),
        (_, _) => return Err(AuthError::Ambiguous),
    };
    match (mode, presented) {
        (_, Some(Credential::Verified(identity))) => Ok(identity),
        (AuthMode::Required, None | Some(Credential::Absent)) => Err(AuthError::Missing),
        (AuthMode::Required, Some(Credential::Refused(error))) => Err(AuthError::Refused(error)),
        _ => Ok(Identity::anonymous()),
    }
}

#[cfg(test)]
mod tests;
