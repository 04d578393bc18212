//! The demo's identity provider (`graphql-firewall demo --identity`): a fixed P-256 key, its JWKS,
//! and tokens signed with it, so that verified identity can be tried without an identity
//! provider.
//!
//! The private key is in this source file on purpose: it is a demonstration key, public by
//! construction, and the issuer and audience below (`*.invalid`) belong to no real service. Never
//! configure its JWKS outside the demo.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::json;

/// The demo key (PKCS#8 DER, P-256, in hex): public by construction, see the module documentation.
const DEMO_KEY_DER_HEX: &str = concat!(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420b37152684b31e55d",
    "5cb343be73a8530b2edc737925347cc78c7f7fd4301d7405a14403420004d13a3a90261acf860543f6df553d",
    "ed2736dd14f6d821b8d4480deaa43642dc944830c905ad49aad997c2647b95da5b4cc71ab9de7b28ae289e4f",
    "5a2193cc1c16",
);

/// The demo tokens' `kid`, `iss` and `aud`.
pub const KID: &str = "graphql-firewall-demo-1";
pub const ISSUER: &str = "https://idp.demo.invalid/";
pub const AUDIENCE: &str = "graphql-firewall-demo";

/// Why the demo identity could not be prepared (never expected with the embedded key).
#[derive(Debug, thiserror::Error)]
pub enum DemoIdentityError {
    #[error("demo identity: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("demo identity: the embedded key is not hex: {0}")]
    Key(#[from] hex::FromHexError),
}

fn key() -> Result<EncodingKey, DemoIdentityError> {
    Ok(EncodingKey::from_ec_der(&hex::decode(DEMO_KEY_DER_HEX)?))
}

/// The JWKS publishing the demo key's public half.
pub fn jwks() -> Result<String, DemoIdentityError> {
    let mut jwk = Jwk::from_encoding_key(&key()?, Algorithm::ES256)?;
    jwk.common.key_id = Some(KID.to_owned());
    Ok(json!({ "keys": [jwk] }).to_string())
}

/// A token for `subject` with `scope` (space-separated), valid for an hour.
pub fn token(subject: &str, scope: &str) -> Result<String, DemoIdentityError> {
    let now = get_current_timestamp();
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "scope": scope,
        "iat": now,
        "exp": now + 3600,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.to_owned());
    Ok(encode(&header, &claims, &key()?)?)
}
