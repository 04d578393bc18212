//! Client keys: a caller presenting one of the configured secrets may bypass the persisted-query
//! allowlist and the introspection block (internal tooling, schema registries;
//! `TRUSTED_CLIENT_HEADER`, `TRUSTED_CLIENT_KEY_HASHES`).
//!
//! # Threats
//! The secret is a bearer credential for the schema: only its SHA-256 is configured (a leaked
//! configuration does not leak the key), and the presented key's hash is compared with every
//! configured hash in constant time, so response timing tells an attacker nothing about how many
//! leading bytes of a guess were right.

use axum::http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header and the accepted key hashes.
#[derive(Debug, Clone)]
pub struct ClientKeys {
    header: HeaderName,
    key_hashes: Vec<[u8; 32]>,
}

impl ClientKeys {
    pub fn new(header: HeaderName, key_hashes: Vec<[u8; 32]>) -> ClientKeys {
        ClientKeys { header, key_hashes }
    }

    /// True when `headers` present an accepted key.
    pub fn presented_by(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers.get(&self.header) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every configured hash is compared, whatever the outcome of the previous ones.
        self.key_hashes
            .iter()
            .fold(subtle::Choice::from(0), |found, accepted| {
                found | accepted.ct_eq(&digest)
            })
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn keys() -> ClientKeys {
        let hash: [u8; 32] = Sha256::digest(b"s3cret-key").into();
        ClientKeys::new(
            HeaderName::from_static("x-firewall-key"),
            vec![[7; 32], hash],
        )
    }

    fn with_key(key: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-firewall-key", HeaderValue::from_static(key));
        headers
    }

    #[test]
    fn the_right_key_is_accepted() {
        assert!(keys().presented_by(&with_key("s3cret-key")));
    }

    #[test]
    fn a_wrong_or_missing_key_is_not_accepted() {
        assert!(!keys().presented_by(&with_key("s3cret-kez")));
        assert!(!keys().presented_by(&with_key("")));
        assert!(!keys().presented_by(&HeaderMap::new()));
    }
}
