//! The `AUTH` stage of a request: read the credentials it carries, verify each with its source,
//! and [`decide`] who is calling.

use std::sync::Arc;

use http::HeaderMap;

use super::api_keys::{ApiKeySource, ApiKeys};
use super::jwt::{JwtVerifier, TokenSource};
use super::{AuthError, AuthMode, Credential, CredentialError, Identity, decide};

/// Where tokens come from and who verifies them.
#[derive(Debug)]
pub struct TokenCheck {
    pub source: TokenSource,
    pub verifier: Arc<JwtVerifier>,
}

/// Where API keys come from and the table they are checked against.
#[derive(Debug)]
pub struct KeyCheck {
    pub source: ApiKeySource,
    pub keys: Arc<ApiKeys>,
}

/// Every credential source and the `AUTH` mode.
#[derive(Debug)]
pub struct Authenticator {
    pub mode: AuthMode,
    pub tokens: Option<TokenCheck>,
    pub keys: Option<KeyCheck>,
}

/// A request let in, and a credential it presented that was not accepted (under
/// `AUTH=optional` such a caller goes on as anonymous; the refusal is still logged and counted).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    pub refused: Option<CredentialError>,
}

impl Authenticator {
    /// Whether the request's token would need a signature check (it is not a verification
    /// remembered): the expensive step, which the caller paces per client address before
    /// calling [`Authenticator::authenticate`].
    pub fn needs_verification(&self, headers: &HeaderMap) -> bool {
        let Some(check) = self.tokens.as_ref().filter(|_| self.mode != AuthMode::Off) else {
            return false;
        };
        match check.source.extract(headers) {
            Ok(Some(token)) => check.verifier.cached(token).is_none(),
            Ok(None) | Err(_) => false,
        }
    }

    /// Who is calling, or why the request may not go on.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Authenticated, AuthError> {
        if self.mode == AuthMode::Off {
            return Ok(Authenticated {
                identity: Identity::anonymous(),
                refused: None,
            });
        }
        let jwt = match &self.tokens {
            None => Credential::Absent,
            Some(check) => match check.source.extract(headers) {
                Ok(None) => Credential::Absent,
                Ok(Some(token)) => match check.verifier.verify(token).await {
                    Ok(identity) => Credential::Verified(identity),
                    Err(error) => Credential::Refused(error.into()),
                },
                Err(error) => Credential::Refused(error.into()),
            },
        };
        let api_key = match &self.keys {
            None => Credential::Absent,
            Some(check) => match check.source.extract(headers) {
                Ok(None) => Credential::Absent,
                Ok(Some(key)) => match check.keys.verify(key) {
                    Ok(identity) => Credential::Verified(identity),
                    Err(error) => Credential::Refused(error.into()),
                },
                Err(error) => Credential::Refused(error.into()),
            },
        };
        let refused = [&jwt, &api_key]
            .into_iter()
            .find_map(|credential| match credential {
                Credential::Refused(error) => Some(error.clone()),
                _ => None,
            });
        let identity = decide(self.mode, jwt, api_key)?;
        Ok(Authenticated { identity, refused })
    }
}
